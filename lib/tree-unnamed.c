// SPDX-License-Identifier: MIT
/*
 * Unnamed files, for a file-tree receiver.
 *
 * A new small file is created without a name (O_TMPFILE) in its
 * directory, written, made durable, and only then given its name with
 * linkat(2), which never replaces anything: a name that appeared in the
 * meantime makes it fail with EEXIST, atomically.  So a new file costs no
 * temporary name, no rename and no unlink, and a killed receiver leaves
 * nothing behind.  Files that replace another (--overwrite, --update) and
 * large files (which keep a journal to be resumed) still go under a
 * temporary name, as does everything where the file system has no
 * unnamed files (FAT and exFAT through FUSE, for instance).
 *
 * linkat(2) names an unnamed file either from its descriptor
 * (AT_EMPTY_PATH, which some kernels allow only with CAP_DAC_READ_SEARCH)
 * or through its /proc/self/fd link (AT_SYMLINK_FOLLOW, which follows
 * that link of our own, never a name from the wire).  The receiver tries
 * both once, at the start, and keeps the first that works; with neither,
 * it uses no unnamed files.
 *
 * Each unnamed file holds a descriptor until it is named, at the commit
 * of its batch.  Their number is bounded by what RLIMIT_NOFILE leaves
 * (rx->unnamed_max, and rx->batch_fds per batch); beyond it, a file is
 * made under a temporary name.  The same share bounds the directories
 * the batches and the files created ahead hold.
 *
 * TBSTREAM_RECV_UNNAMED=0 turns unnamed files off, =proc names them
 * through /proc only (for tests, and for file systems that misbehave).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-recv.h"

#define FD_RESERVE 24 /* descriptors left to everything else */

/* The process's umask, from /proc (reading it with umask(2) would change
 * it for a moment, for every thread); -1 when unknown. */
static int read_umask(void)
{
	char line[128];
	unsigned int m;
	int r = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1) {
			r = (int)(m & 0777);
			break;
		}
	fclose(f);
	return r;
}

/* Descriptors open now (an estimate when /proc is not there). */
static long fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;

	if (!d)
		return 256;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static size_t clamp(long v, long lo, long hi)
{
	return (size_t)(v < lo ? lo : v > hi ? hi : v);
}

/*
 * Shares out the descriptors RLIMIT_NOFILE leaves: an eighth to the
 * directories the batches hold, a quarter to the files created ahead
 * and their directories, the rest to unnamed files (none if too few).
 */
static void share_fds(struct rx *rx)
{
	long want = RX_BATCHES * RX_COMMIT_FILES + RX_AHEAD_MAX;
	long room = 1L << 20, rest;
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)room)
		room = (long)rl.rlim_cur;
	room -= fds_open() + FD_RESERVE;
	rx->batch_dirs = clamp(room / 8 / RX_BATCHES, 1, RX_COMMIT_DIRS);
	rx->ahead_max = clamp(room / 8, 0, RX_AHEAD_MAX);
	rest = room - (long)(RX_BATCHES * rx->batch_dirs + 2 * rx->ahead_max);
	if (rest < RX_BATCHES * 16 + (long)rx->ahead_max)
		rest = 0; /* batches would be too small */
	rx->unnamed_max = (unsigned int)clamp(rest, 0, want);
	rx->batch_fds = rest ? (rx->unnamed_max - rx->ahead_max) / RX_BATCHES
			     : 0;
}

static int link_empty(int fd, int dfd, const char *name)
{
	return linkat(fd, "", dfd, name, AT_EMPTY_PATH) ? -errno : 0;
}

static int link_proc(int fd, int dfd, const char *name)
{
	char p[40];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, p, dfd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

/*
 * Which way of naming an unnamed file works in directory @dfd.  Each is
 * tried with the directory itself as the new name: linkat(2) looks the
 * file up first (which is what may not be allowed), then finds that the
 * new name exists (EEXIST).  So nothing is named, nothing changes.
 */
static int probe(int dfd, bool proc_only)
{
	int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	int how = RX_UNNAMED_OFF;

	if (fd < 0)
		return RX_UNNAMED_OFF;
	if (!proc_only && link_empty(fd, dfd, ".") == -EEXIST)
		how = RX_UNNAMED_EMPTY;
	else if (link_proc(fd, dfd, ".") == -EEXIST)
		how = RX_UNNAMED_PROC;
	close(fd);
	return how;
}

/**
 * rx_unnamed_setup() - how many descriptors this receiver may hold, and
 * whether, and how, it makes new files unnamed
 * @rx: receiver, its directory open
 *
 * Called at START.  Sets @rx->batch_dirs, @rx->ahead_max,
 * @rx->unnamed_how, @rx->unnamed_max, @rx->batch_fds and @rx->umask.
 */
void rx_unnamed_setup(struct rx *rx)
{
	const char *env = secure_getenv("TBSTREAM_RECV_UNNAMED");

	rx->umask = read_umask();
	share_fds(rx);
	rx->unnamed_how = RX_UNNAMED_OFF;
	if (rx->dry || rx->root < 0 || !rx->unnamed_max ||
	    (env && !strcmp(env, "0")))
		return;
	rx->unnamed_how = probe(rx->root, env && !strcmp(env, "proc"));
}

/* Whether entry @re may be made unnamed (it replaces nothing, is new). */
bool rx_unnamed_for(const struct rx *rx, const struct rx_entry *re)
{
	return rx->unnamed_how != RX_UNNAMED_OFF &&
	       !__atomic_load_n(&rx->unnamed_off, __ATOMIC_RELAXED) &&
	       !(re->wflags & TWF_REPLACE) && re->size < RX_RESUME_MIN;
}

/**
 * rx_unnamed_open() - a new unnamed file in directory @dfd
 * @rx:   receiver
 * @dfd:  the directory (O_PATH will do)
 * @mode: its permissions (see rx_create_mode())
 *
 * Either thread may call it.  Where the file system has no unnamed
 * files, they are turned off for the rest of the transfer.
 *
 * Return: the descriptor; -EMFILE when too many are open; -errno.
 */
int rx_unnamed_open(struct rx *rx, int dfd, mode_t mode)
{
	int fd;

	if (__atomic_add_fetch(&rx->unnamed_open, 1, __ATOMIC_RELAXED) >
	    rx->unnamed_max) {
		__atomic_sub_fetch(&rx->unnamed_open, 1, __ATOMIC_RELAXED);
		return -EMFILE;
	}
	fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
	if (fd >= 0)
		return fd;
	fd = -errno;
	__atomic_sub_fetch(&rx->unnamed_open, 1, __ATOMIC_RELAXED);
	if (fd == -EOPNOTSUPP || fd == -EISDIR || fd == -EINVAL)
		__atomic_store_n(&rx->unnamed_off, true, __ATOMIC_RELAXED);
	return fd;
}

/* Closes an unnamed file (named or not). */
void rx_unnamed_close(struct rx *rx, int fd)
{
	close(fd);
	__atomic_sub_fetch(&rx->unnamed_open, 1, __ATOMIC_RELAXED);
}

/**
 * rx_unnamed_link() - give unnamed file @fd its name, never replacing
 * @rx:   receiver
 * @fd:   the file
 * @dfd:  its directory (where it was made)
 * @name: the name
 *
 * Return: 0, -EEXIST when something has the name, or -errno.
 */
int rx_unnamed_link(const struct rx *rx, int fd, int dfd, const char *name)
{
	int r = -ENOENT;

	if (rx->unnamed_how == RX_UNNAMED_EMPTY)
		r = link_empty(fd, dfd, name);
	if (r == -ENOENT) /* or not allowed after all */
		r = link_proc(fd, dfd, name);
	return r;
}

/**
 * rx_create_mode() - the permissions to create file @re with
 * @rx: receiver
 * @re: the file
 *
 * Its own when the umask leaves them whole, they have no set-id or
 * sticky bit, and they let the owner write (its attributes are set while
 * it is written, which takes that unless as root): then the file needs
 * no fchmod() once complete (unless its directory's default ACL, or one
 * of its own, changes them).  Else 0600.  (A file under a temporary
 * name always gets 0600: its name is seen while it is incomplete.)
 *
 * Return: the permissions; 0600 means "not its own" unless @re's are.
 */
mode_t rx_create_mode(const struct rx *rx, const struct rx_entry *re)
{
	mode_t m = re->mode & 07777;

	if (rx->umask < 0 || (m & 07000) || (m & (mode_t)rx->umask) ||
	    (!(m & S_IWUSR) && !rx->is_root))
		return 0600;
	return m;
}

/* Whether a file created with @mode already has @re's permissions. */
bool rx_mode_final(const struct rx *rx, const struct rx_entry *re,
		   mode_t mode)
{
	return rx->umask >= 0 && !(mode & (mode_t)rx->umask) &&
	       mode == (re->mode & 07777);
}
