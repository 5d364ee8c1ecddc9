// SPDX-License-Identifier: MIT
/*
 * The file systems a file-tree receiver writes to, and their write-back.
 *
 * Every file system written to (the receiving directory's, and any
 * mounted inside it that an entry went to) is synced before a file is
 * confirmed.  So that a commit has little left to write when it syncs, a
 * second thread, the flusher, syncs them in the background as data
 * arrives (every 16 MiB or 1024 files written): the disk works while the
 * cable does, and the receiving thread never waits for it but at a
 * commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-recv.h"

#define FLUSH_BYTES (16u << 20)
#define FLUSH_FILES 1024

static void *flusher_main(void *arg)
{
	struct rx *rx = arg;
	int fds[16];
	size_t n, i;
	uint64_t gen;

	pthread_mutex_lock(&rx->fs_lock);
	for (;;) {
		while (!rx->flusher_stop && rx->flush_asked == rx->flush_done)
			pthread_cond_wait(&rx->fs_cv, &rx->fs_lock);
		if (rx->flusher_stop)
			break;
		gen = rx->flush_asked;
		n = rx->nfs < 16 ? rx->nfs : 16;
		for (i = 0; i < n; i++)
			fds[i] = rx->fs[i].fd;
		pthread_mutex_unlock(&rx->fs_lock);
		for (i = 0; i < n; i++)
			syncfs(fds[i]);
		pthread_mutex_lock(&rx->fs_lock);
		rx->flush_done = gen;
	}
	pthread_mutex_unlock(&rx->fs_lock);
	return NULL;
}

/**
 * rx_fs_open() - the receiving directory's file system, and the flusher
 * @rx:  receiver
 * @dir: the receiving directory
 *
 * Return: 0 or -errno.
 */
int rx_fs_open(struct rx *rx, const char *dir)
{
	struct stat sb;
	int fd;

	pthread_mutex_init(&rx->fs_lock, NULL);
	pthread_cond_init(&rx->fs_cv, NULL);
	rx->fs = calloc(1, sizeof(*rx->fs));
	if (!rx->fs)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return -e;
	}
	rx->fs[0] = (struct rx_fs){ .dev = sb.st_dev, .fd = fd };
	rx->nfs = 1;
	if (!rx->dry && !pthread_create(&rx->flusher, NULL, flusher_main, rx))
		rx->flusher_on = true;
	return 0;
}

/* Notes the file system of directory @dfd, so that commits sync it. */
int rx_fs_add(struct rx *rx, int dfd, uint64_t dev)
{
	struct rx_fs *n;
	size_t i;
	int fd;

	for (i = 0; i < rx->nfs; i++)
		if (rx->fs[i].dev == dev)
			return 0;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&rx->fs_lock);
	n = realloc(rx->fs, (rx->nfs + 1) * sizeof(*n));
	if (n) {
		rx->fs = n;
		rx->fs[rx->nfs++] = (struct rx_fs){ .dev = dev, .fd = fd };
	}
	pthread_mutex_unlock(&rx->fs_lock);
	if (!n) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Makes everything written so far durable, on every file system. */
int rx_sync(struct rx *rx)
{
	size_t i;

	for (i = 0; i < rx->nfs; i++)
		if (syncfs(rx->fs[i].fd))
			return -errno;
	rx->unflushed = 0;
	rx->unflushed_files = 0;
	return 0;
}

/* @bytes more were written: the flusher starts on them now and then. */
void rx_flush_soon(struct rx *rx, uint64_t bytes)
{
	rx->unflushed += bytes;
	rx->unflushed_files++;
	if (!rx->flusher_on || (rx->unflushed < FLUSH_BYTES &&
				rx->unflushed_files < FLUSH_FILES))
		return;
	rx->unflushed = 0;
	rx->unflushed_files = 0;
	pthread_mutex_lock(&rx->fs_lock);
	if (rx->flush_asked == rx->flush_done) {
		rx->flush_asked++;
		pthread_cond_signal(&rx->fs_cv);
	}
	pthread_mutex_unlock(&rx->fs_lock);
}

void rx_fs_free(struct rx *rx)
{
	size_t i;

	if (!rx->fs)
		return; /* never opened (a dry run into nothing) */
	if (rx->flusher_on) {
		pthread_mutex_lock(&rx->fs_lock);
		rx->flusher_stop = true;
		pthread_cond_signal(&rx->fs_cv);
		pthread_mutex_unlock(&rx->fs_lock);
		pthread_join(rx->flusher, NULL);
		rx->flusher_on = false;
	}
	for (i = 0; i < rx->nfs; i++)
		close(rx->fs[i].fd);
	free(rx->fs);
	rx->fs = NULL;
	rx->nfs = 0;
	pthread_mutex_destroy(&rx->fs_lock);
	pthread_cond_destroy(&rx->fs_cv);
}
