// SPDX-License-Identifier: MIT
/*
 * Files created ahead, for a file-tree receiver.
 *
 * Creating a file costs the receiving file system more than anything
 * else a small file needs.  So, for the next small files the receiver
 * asked for in full, a second thread creates their temporary files while
 * the receiving thread writes the current one: each exclusively, as the
 * receiving thread would (own.h), in the directory the receiver checked
 * when it asked, of which it holds a descriptor.  The receiving thread
 * takes them in the order it asked for them; one whose data never came
 * (the sender skipped it, the transfer ended) is removed.
 *
 * Locking: @lock guards the ring; a job's @fd and @done are the helper's
 * until @done is set, everything else the receiving thread's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "own.h"
#include "tree-recv.h"

#define AHEAD_MAX 64 /* files created ahead at most */

struct ahead_job {
	uint32_t index;
	int dfd; /* the directory, held */
	int fd; /* the file, or -errno, once @done */
	bool done;
	char tmp[64];
};

struct rx_ahead {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	uint64_t head, next, tail; /* oldest, next to create, one past newest */
	struct ahead_job job[AHEAD_MAX];
};

static void *ahead_main(void *arg)
{
	struct rx_ahead *a = arg;
	struct ahead_job *j;
	int fd;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->stop && a->next == a->tail)
			pthread_cond_wait(&a->cv, &a->lock);
		if (a->stop)
			break;
		j = &a->job[a->next % AHEAD_MAX];
		pthread_mutex_unlock(&a->lock);
		fd = tbsi_create_excl(j->dfd, j->tmp, O_WRONLY, 0600);
		pthread_mutex_lock(&a->lock);
		j->fd = fd;
		j->done = true;
		a->next++;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* A job that is not taken: its file (if made) goes, and the directory. */
static void drop_job(struct ahead_job *j)
{
	if (j->done && j->fd >= 0) {
		close(j->fd);
		unlinkat(j->dfd, j->tmp, 0);
	}
	close(j->dfd);
}

/**
 * rx_ahead_ask() - create the temporary file of entry @index ahead
 * @rx:    receiver
 * @index: the entry, asked for in full
 * @pfd:   its directory, checked
 * @tmp:   the temporary name
 *
 * Does nothing when AHEAD_MAX files are waiting, or the thread could not
 * start: the receiving thread then creates the file itself.
 */
void rx_ahead_ask(struct rx *rx, uint32_t index, int pfd, const char *tmp)
{
	struct rx_ahead *a = rx->ahead;
	struct ahead_job *j;
	int dfd;

	if (rx->ahead_off)
		return;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return;
		pthread_mutex_init(&a->lock, NULL);
		pthread_cond_init(&a->cv, NULL);
		if (pthread_create(&a->thread, NULL, ahead_main, a)) {
			free(a);
			rx->ahead_off = true;
			return;
		}
		rx->ahead = a;
	}
	if (a->tail - a->head == AHEAD_MAX)
		return;
	dfd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return;
	pthread_mutex_lock(&a->lock);
	j = &a->job[a->tail % AHEAD_MAX];
	*j = (struct ahead_job){ .index = index, .dfd = dfd, .fd = -1 };
	snprintf(j->tmp, sizeof(j->tmp), "%s", tmp);
	a->tail++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->lock);
}

/**
 * rx_ahead_take() - the temporary file created ahead for entry @index
 * @rx:    receiver
 * @index: the entry whose data begins
 *
 * Files asked for before @index, whose data never came, are removed.
 *
 * Return: the descriptor, or -errno (none: the caller creates it).
 */
int rx_ahead_take(struct rx *rx, uint32_t index)
{
	struct rx_ahead *a = rx->ahead;
	struct ahead_job *j;
	int fd = -ENOENT;

	if (!a)
		return fd;
	pthread_mutex_lock(&a->lock);
	while (a->head < a->tail) {
		j = &a->job[a->head % AHEAD_MAX];
		if (j->index > index)
			break;
		while (!j->done)
			pthread_cond_wait(&a->cv, &a->lock);
		a->head++;
		if (j->index == index) {
			fd = j->fd;
			close(j->dfd);
			break;
		}
		drop_job(j);
	}
	pthread_mutex_unlock(&a->lock);
	return fd;
}

/**
 * rx_ahead_stop() - stop creating ahead, remove what was not taken
 * @rx: receiver
 */
void rx_ahead_stop(struct rx *rx)
{
	struct rx_ahead *a = rx->ahead;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (; a->head < a->tail; a->head++)
		drop_job(&a->job[a->head % AHEAD_MAX]);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cv);
	free(a);
	rx->ahead = NULL;
}
