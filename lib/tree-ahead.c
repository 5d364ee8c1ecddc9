// SPDX-License-Identifier: MIT
/*
 * Files created ahead, for a file-tree receiver.
 *
 * Creating a file costs the receiving file system more than anything
 * else a small file needs.  So, for the next small files the receiver
 * asked for in full, a second thread creates them while the receiving
 * thread writes the current one: unnamed where it can (tree-unnamed.c),
 * else under their temporary name, exclusively, as the receiving thread
 * would (own.h), in the directory the receiver checked when it asked, of
 * which it holds a descriptor.  The receiving thread takes them in the
 * order it asked for them; one whose data never came (the sender skipped
 * it, the transfer ended) is removed.
 *
 * The jobs for one directory, one after the other, share one descriptor
 * of it: the last of them closes it once taken.
 *
 * The helper, once idle, is woken only when AHEAD_WAKE files wait, or
 * when the receiving thread needs one: it creates them a few at a time,
 * not one per wake-up.
 *
 * Locking: @lock guards the ring; a job's @fd, @unnamed and @done are the
 * helper's until @done is set, everything else the receiving thread's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "own.h"
#include "tree-recv.h"

#define AHEAD_MAX RX_AHEAD_MAX /* files created ahead at most */
#define AHEAD_WAKE 16 /* asks that wake the helper when it is idle */

struct ahead_job {
	uint32_t index;
	int dfd; /* the directory, held */
	bool close_dfd; /* the last job of its directory: closes @dfd */
	bool try_unnamed; /* it may be made unnamed */
	bool unnamed; /* it was */
	bool done;
	int fd; /* the file, or -errno, once @done */
	mode_t mode;
	char name[TREE_NAME_MAX + 1]; /* its name, for a temporary one */
};

struct rx_ahead {
	pthread_mutex_t lock;
	pthread_cond_t work; /* for the helper: asks, or stop */
	pthread_cond_t made; /* for the receiving thread: a job done */
	pthread_t thread;
	bool stop;
	bool idle; /* the helper waits for asks */
	bool waiting; /* the receiving thread waits for a job */
	uint64_t head, next, tail; /* oldest, next to create, one past newest */
	struct ahead_job job[AHEAD_MAX];
	uint64_t scan; /* the next entry to consider (receiving thread's) */
	uint32_t dir; /* the directory @dfd holds */
	int dfd; /* of the newest jobs, -1: none */
	struct rx *rx;
};

/* Creates job @j's file: unnamed if it may, else under its temporary
 * name; the helper, without the lock. */
static void create(struct rx *rx, struct ahead_job *j)
{
	char tmp[64];
	int fd = -EOPNOTSUPP;

	if (j->try_unnamed)
		fd = rx_unnamed_open(rx, j->dfd, j->mode);
	j->unnamed = fd >= 0;
	if (fd >= 0)
		return (void)(j->fd = fd);
	rx_tmp_name(j->name, "part", tmp, sizeof(tmp));
	j->fd = tbsi_create_excl(j->dfd, tmp, O_WRONLY, 0600);
}

static void *ahead_main(void *arg)
{
	struct rx_ahead *a = arg;
	struct ahead_job *j;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->stop && a->next == a->tail) {
			a->idle = true;
			pthread_cond_wait(&a->work, &a->lock);
		}
		a->idle = false;
		if (a->stop)
			break;
		j = &a->job[a->next % AHEAD_MAX];
		pthread_mutex_unlock(&a->lock);
		create(a->rx, j);
		pthread_mutex_lock(&a->lock);
		j->done = true;
		a->next++;
		if (a->waiting)
			pthread_cond_signal(&a->made);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* A job that is not taken: its file (if made) goes, and the directory
 * if it is the job's to close. */
static void drop_job(struct rx *rx, struct ahead_job *j)
{
	char tmp[64];

	if (j->done && j->fd >= 0 && j->unnamed) {
		rx_unnamed_close(rx, j->fd);
	} else if (j->done && j->fd >= 0) {
		close(j->fd);
		rx_tmp_name(j->name, "part", tmp, sizeof(tmp));
		unlinkat(j->dfd, tmp, 0);
	}
	if (j->close_dfd)
		close(j->dfd);
}

static struct rx_ahead *ahead_start(struct rx *rx)
{
	struct rx_ahead *a = calloc(1, sizeof(*a));

	if (!a) {
		rx->ahead_off = true;
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->made, NULL);
	a->dfd = -1;
	a->rx = rx;
	if (pthread_create(&a->thread, NULL, ahead_main, a)) {
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->work);
		pthread_cond_destroy(&a->made);
		free(a);
		rx->ahead_off = true;
		return NULL;
	}
	rx->ahead = a;
	return a;
}

/* A file to create ahead: asked for in full, small, its data to come. */
static bool wanted_small(const struct rx *rx, const struct rx_entry *re)
{
	return re->n.kind == TK_FILE && re->n.state == RS_WANTED &&
	       re->want == TW_FULL && !re->woff && re->size < RX_RESUME_MIN &&
	       !rx->dry && !(rx->cur.active && rx->cur.index >= re->n.index);
}

/*
 * The jobs asked so far are done with directory @a->dfd: the newest of
 * them closes it once taken, or it is closed now if none is left.  Lock
 * held, or the helper stopped.
 */
static void end_dir(struct rx_ahead *a)
{
	struct ahead_job *last = &a->job[(a->tail - 1) % AHEAD_MAX];

	if (a->dfd < 0)
		return;
	if (a->tail > a->head && last->dfd == a->dfd)
		last->close_dfd = true;
	else
		close(a->dfd);
	a->dfd = -1;
}

/* The directory of @re, held for the jobs in it; -errno. */
static int ahead_dir(struct rx *rx, struct rx_ahead *a,
		     const struct rx_entry *re)
{
	int fd;

	if (a->dfd >= 0 && a->dir == re->n.parent)
		return a->dfd;
	fd = rx_walk_to(rx, re->n.parent);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&a->lock);
	end_dir(a);
	a->dfd = fd;
	a->dir = re->n.parent;
	pthread_mutex_unlock(&a->lock);
	return fd;
}

/* Queues entry @re for creation; false when the ring is full. */
static bool ahead_ask(struct rx *rx, struct rx_ahead *a, struct rx_entry *re)
{
	struct ahead_job *j;
	int dfd;

	if (a->tail - a->head >= rx->ahead_max)
		return false;
	dfd = ahead_dir(rx, a, re);
	if (dfd < 0)
		return true; /* not this one: the receiving thread makes it */
	pthread_mutex_lock(&a->lock);
	j = &a->job[a->tail % AHEAD_MAX];
	*j = (struct ahead_job){ .index = re->n.index,
				 .dfd = dfd,
				 .fd = -1,
				 .try_unnamed = rx_unnamed_for(rx, re),
				 .mode = rx_create_mode(rx, re) };
	memcpy(j->name, rx_name(rx, &re->n), re->n.name_len);
	j->name[re->n.name_len] = 0;
	a->tail++;
	if (a->idle && a->tail - a->next >= AHEAD_WAKE)
		pthread_cond_signal(&a->work); /* a few at a time */
	pthread_mutex_unlock(&a->lock);
	return true;
}

/**
 * rx_ahead_fill() - create ahead the temporary files of the next small
 * files asked for in full, as far as @rx->ahead_max allows
 * @rx: receiver
 *
 * Each file is considered once, in order.  Nothing is done when the
 * thread could not start: the receiving thread creates the files itself.
 */
void rx_ahead_fill(struct rx *rx)
{
	struct rx_ahead *a = rx->ahead;
	uint64_t i;

	if (rx->ahead_off || rx->dry || !rx->ahead_max)
		return;
	if (!a && !(a = ahead_start(rx)))
		return;
	i = a->scan > rx->base ? a->scan : rx->base;
	for (; i < rx->n; i++) {
		struct rx_entry *re = rx_ent(rx, i);

		if (wanted_small(rx, re) && !ahead_ask(rx, a, re))
			break;
	}
	a->scan = i;
}

/**
 * rx_ahead_take() - the file created ahead for entry @index
 * @rx:      receiver
 * @index:   the entry whose data begins
 * @unnamed: set when it is an unnamed file (else under its temporary
 *           name)
 * @mode:    set to the permissions it was created with
 *
 * Files asked for before @index, whose data never came, are removed.
 *
 * Return: the descriptor, or -errno (none: the caller creates it).
 */
int rx_ahead_take(struct rx *rx, uint32_t index, bool *unnamed, mode_t *mode)
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
		if (!j->done) {
			pthread_cond_signal(&a->work);
			a->waiting = true;
			while (!j->done)
				pthread_cond_wait(&a->made, &a->lock);
			a->waiting = false;
		}
		a->head++;
		if (j->index == index) {
			fd = j->fd;
			*unnamed = j->unnamed;
			*mode = j->unnamed ? j->mode : 0600;
			if (j->close_dfd)
				close(j->dfd);
			break;
		}
		drop_job(rx, j);
	}
	pthread_mutex_unlock(&a->lock);
	rx_ahead_fill(rx);
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
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (; a->head < a->tail; a->head++)
		drop_job(rx, &a->job[a->head % AHEAD_MAX]);
	end_dir(a);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->made);
	free(a);
	rx->ahead = NULL;
}
