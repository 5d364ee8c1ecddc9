// SPDX-License-Identifier: MIT
/*
 * The files a receiver makes and opens again (see own.h): a hard link,
 * symbolic link or FIFO planted under such a name by a sender or a local
 * user is never opened through, and another user's file is not trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "own.h"

/**
 * tbsi_open_own() - open a file this receiver made, never another
 * @dfd:   the directory it is in
 * @name:  its name there
 * @flags: O_RDONLY, O_WRONLY or O_RDWR
 * @dev:   the device it must be on, 0 for any
 * @sb:    receives its status
 *
 * Return: the descriptor; -EPERM when it is not a regular file with one
 * link owned by this process (on @dev); or -errno.
 */
int tbsi_open_own(int dfd, const char *name, int flags, uint64_t dev,
		  struct stat *sb)
{
	int fd = openat(dfd, name,
			flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, sb) || !S_ISREG(sb->st_mode) || sb->st_nlink != 1 ||
	    sb->st_uid != geteuid() || (dev && sb->st_dev != dev)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/**
 * tbsi_read_own() - read a small text file this receiver made
 * @dfd:  the directory it is in
 * @name: its name there
 * @dev:  the device it must be on, 0 for any
 * @buf:  receives its start, always terminated
 * @len:  size of @buf
 *
 * Return: 0, -EINVAL when it is empty, or as tbsi_open_own().
 */
int tbsi_read_own(int dfd, const char *name, uint64_t dev, char *buf,
		  size_t len)
{
	struct stat sb;
	ssize_t n;
	int fd = tbsi_open_own(dfd, name, O_RDONLY, dev, &sb);

	if (fd < 0)
		return fd;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	return 0;
}

/**
 * tbsi_create_excl() - create a file exclusively, replacing a stale name
 * @dfd:   the directory
 * @name:  the name in it
 * @flags: O_WRONLY or O_RDWR
 * @mode:  its permissions
 *
 * Whatever was left under @name (by a killed run, or planted) is unlinked
 * first: that removes the name, never what it points to.
 *
 * Return: the descriptor, or -errno.
 */
int tbsi_create_excl(int dfd, const char *name, int flags, mode_t mode)
{
	int f = flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dfd, name, f, mode);

	if (fd < 0 && errno == EEXIST && !unlinkat(dfd, name, 0))
		fd = openat(dfd, name, f, mode);
	return fd < 0 ? -errno : fd;
}
