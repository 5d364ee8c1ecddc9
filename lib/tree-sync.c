// SPDX-License-Identifier: MIT
/*
 * The file systems a file-tree receiver writes to, and the commits of the
 * files it writes.
 *
 * A file is confirmed to the sender only once it is durable under its
 * name: its data synced, then linked (an unnamed file) or renamed into
 * place, then that synced (every file system written to: the receiving
 * directory's, and any mounted inside it that an entry went to).  The
 * receiving thread adds each written file to a batch; a full batch (1024
 * files, 32 MiB, as many directories or unnamed files as its share of
 * descriptors allows, or one second) goes to a second thread, the
 * committer, which syncs it, links or renames its files (closing the
 * unnamed ones), syncs again, and hands it back.  The
 * receiving thread confirms (or refuses) its files when it next looks,
 * and never waits for the disk but when RX_BATCHES - 1 batches are in
 * flight, and at the end.  One sync serves every batch that waits for
 * one: the renames of a batch and the data of the next are synced
 * together, so the disk works while the cable does.
 *
 * Locking: @fs_lock guards @fs, @nfs, @bhead, @btail and every batch's
 * @state and @err (the receiving thread, their only writer, reads them
 * without it); a batch from RB_QUEUED to RB_DONE is the committer's,
 * otherwise the receiving thread's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-recv.h"

#define COMMIT_FILES RX_COMMIT_FILES
#define COMMIT_BYTES (32ull << 20)
#define COMMIT_MS 1000

static struct rx_batch *batch_at(struct rx *rx, uint64_t i)
{
	return &rx->batch[i % RX_BATCHES];
}

/* Syncs every file system written to; 0 or -errno.  Lock not held. */
static int sync_all(struct rx *rx)
{
	int fds[16], r = 0;
	size_t n, i;

	pthread_mutex_lock(&rx->fs_lock);
	n = rx->nfs < 16 ? rx->nfs : 16;
	for (i = 0; i < n; i++)
		fds[i] = rx->fs[i].fd;
	pthread_mutex_unlock(&rx->fs_lock);
	for (i = 0; i < n; i++)
		if (syncfs(fds[i]) && !r)
			r = -errno;
	return r;
}

static void place_all(struct rx *rx, struct rx_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		b->f[i].err = rx_place_file(rx, b, &b->f[i]);
}

/* Whether a batch waits for the committer; lock held. */
static bool committer_work(struct rx *rx)
{
	uint64_t i;

	for (i = rx->bhead; i < rx->btail; i++) {
		int st = batch_at(rx, i)->state;

		if (st == RB_QUEUED || st == RB_PLACED)
			return true;
	}
	return false;
}

/*
 * One round: the batches whose renames wait are marked for this sync,
 * and so are those whose data waits; after the sync the first are done,
 * the second renamed (they wait for the next round).  Lock held.
 */
static void commit_round(struct rx *rx)
{
	uint64_t i;
	int r;

	for (i = rx->bhead; i < rx->btail; i++) {
		struct rx_batch *b = batch_at(rx, i);

		if (b->state == RB_QUEUED)
			b->state = RB_SYNCING;
		else if (b->state == RB_PLACED)
			b->state = RB_RENAME_SYNC;
	}
	pthread_mutex_unlock(&rx->fs_lock);
	r = sync_all(rx);
	pthread_mutex_lock(&rx->fs_lock);
	for (i = rx->bhead; i < rx->btail; i++) {
		struct rx_batch *b = batch_at(rx, i);

		if (b->state == RB_RENAME_SYNC || (r && b->state == RB_SYNCING)) {
			b->err = r;
			b->state = RB_DONE;
		}
	}
	pthread_cond_broadcast(&rx->done_cv);
	for (i = rx->bhead; i < rx->btail; i++) {
		struct rx_batch *b = batch_at(rx, i);

		if (b->state != RB_SYNCING)
			continue;
		pthread_mutex_unlock(&rx->fs_lock);
		place_all(rx, b);
		pthread_mutex_lock(&rx->fs_lock);
		b->state = RB_PLACED;
	}
}

static void *committer_main(void *arg)
{
	struct rx *rx = arg;

	pthread_mutex_lock(&rx->fs_lock);
	for (;;) {
		while (!rx->committer_stop && !committer_work(rx))
			pthread_cond_wait(&rx->fs_cv, &rx->fs_lock);
		if (!committer_work(rx))
			break;
		commit_round(rx);
	}
	pthread_mutex_unlock(&rx->fs_lock);
	return NULL;
}

/**
 * rx_fs_open() - the receiving directory's file system, and the committer
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
	pthread_cond_init(&rx->done_cv, NULL);
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
	if (!rx->dry &&
	    !pthread_create(&rx->committer, NULL, committer_main, rx))
		rx->committer_on = true;
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
	return sync_all(rx);
}

/* ---- the receiving thread's side of the commits ---- */

/* The directory file @re goes to, held by batch @b: its slot. */
static int batch_dir(struct rx *rx, struct rx_batch *b,
		     const struct rx_entry *re, int pfd)
{
	int fd;

	if (b->ndfd && b->last_dir == re->n.parent)
		return 0;
	if (rx_grow((void **)&b->dfd, &b->dfd_cap, b->ndfd + 1,
		    sizeof(*b->dfd)))
		return -ENOMEM;
	fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	b->dfd[b->ndfd++] = fd;
	b->last_dir = re->n.parent;
	return 0;
}

/* Hands the batch being filled to the committer. */
static void queue_batch(struct rx *rx)
{
	struct rx_batch *b = batch_at(rx, rx->btail);

	pthread_mutex_lock(&rx->fs_lock);
	b->state = RB_QUEUED;
	rx->btail++;
	pthread_cond_signal(&rx->fs_cv);
	pthread_mutex_unlock(&rx->fs_lock);
}

static int confirm(struct rx *rx, uint32_t idx)
{
	uint8_t b[4];

	tbsi_le_put32(b, idx);
	return rx_put(rx, TM_CONFIRM, b, 4);
}

/*
 * Empties batch @b: the directories it held are closed, and so are the
 * unnamed files it did not place (a sync failed, or the transfer ends):
 * they go with their descriptor.
 */
static void batch_clear(struct rx *rx, struct rx_batch *b)
{
	size_t i;

	for (i = 0; b->nfd && i < b->n; i++)
		if (b->f[i].fd >= 0)
			rx_unnamed_close(rx, b->f[i].fd);
	for (i = 0; i < b->ndfd; i++)
		close(b->dfd[i]);
	b->n = b->ndfd = b->names_len = b->nfd = 0;
	b->bytes = 0;
}

/* A batch back from the committer: its files confirmed or refused. */
static int finish_batch(struct rx *rx, struct rx_batch *b)
{
	int e = b->err, r = e;
	size_t i;

	for (i = 0; !r && i < b->n; i++) {
		const struct rx_cfile *f = &b->f[i];
		struct rx_entry *re = rx_ent(rx, f->index);

		rx_placed(rx, f);
		if (!re || re->n.state != RS_PENDING)
			continue;
		re->n.state = RS_DONE;
		rx->st.files_done++;
		rx->st.bytes_done += re->size;
		r = confirm(rx, f->index);
	}
	batch_clear(rx, b);
	b->state = RB_OPEN;
	b->err = 0;
	if (e)
		return tbsi_err(rx->err, r,
				"could not make the files durable: %s",
				strerror(-r));
	if (r)
		return r;
	rx_links(rx);
	return 0;
}

/* Without a committer (it could not start): the whole commit here. */
static void commit_here(struct rx *rx, struct rx_batch *b)
{
	b->err = sync_all(rx);
	if (!b->err) {
		place_all(rx, b);
		b->err = sync_all(rx);
	}
	b->state = RB_DONE;
}

/* The oldest batch in flight, once done (waiting for it if @wait). */
static int finish_oldest(struct rx *rx, bool wait)
{
	struct rx_batch *b = batch_at(rx, rx->bhead);
	bool done;

	if (!rx->committer_on && b->state == RB_QUEUED)
		commit_here(rx, b);
	pthread_mutex_lock(&rx->fs_lock);
	while (wait && b->state != RB_DONE)
		pthread_cond_wait(&rx->done_cv, &rx->fs_lock);
	done = b->state == RB_DONE;
	if (done)
		rx->bhead++;
	pthread_mutex_unlock(&rx->fs_lock);
	if (!done)
		return -EAGAIN;
	return finish_batch(rx, b);
}

/*
 * Hands the batch being filled to the committer, first waiting for the
 * oldest in flight when there is no room for another.
 */
static int hand_on(struct rx *rx)
{
	int r;

	if (rx->btail - rx->bhead == RX_BATCHES - 1) {
		r = finish_oldest(rx, true); /* the disk is behind */
		if (r)
			return r;
	}
	queue_batch(rx);
	if (!rx->committer_on) {
		r = finish_oldest(rx, true);
		if (r != -EAGAIN)
			return r;
	}
	return 0;
}

/* Whether file @re with unnamed file @fd fits in batch @b, within what
 * it may hold of descriptors. */
static bool batch_fits(const struct rx *rx, const struct rx_batch *b,
		       const struct rx_entry *re, int fd)
{
	bool new_dir = !b->ndfd || b->last_dir != re->n.parent;

	return !b->n || ((fd < 0 || b->nfd < rx->batch_fds) &&
			 (!new_dir || b->ndfd < rx->batch_dirs));
}

/**
 * rx_pend() - a file written and verified waits for its commit
 * @rx: receiver
 * @re: the file: its temporary file closed, or its unnamed file still
 *      open in @rx->cur (the batch takes it)
 *
 * It goes into the batch being filled (rx_commit_poll() hands it on, or
 * this function first when the batch holds as many descriptors, of
 * unnamed files or of directories, as it may).
 *
 * Return: 0 or -errno.
 */
int rx_pend(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1];
	struct rx_batch *b = batch_at(rx, rx->btail);
	int fd = rx->cur.unnamed ? rx->cur.fd : -1;
	int pfd, r;
	struct rx_cfile *f;

	rx->cur.fd = -1;
	r = batch_fits(rx, b, re, fd) ? 0 : hand_on(rx);
	b = batch_at(rx, rx->btail);
	pfd = rx_parent(rx, &re->n, name); /* after: links may be made */
	if (!r && pfd >= 0)
		r = batch_dir(rx, b, re, pfd);
	if (!r && (rx_grow((void **)&b->f, &b->cap, b->n + 1, sizeof(*f)) ||
		   rx_grow((void **)&b->names, &b->names_cap,
			   b->names_len + re->n.name_len, 1)))
		r = -ENOMEM;
	if (r && fd >= 0)
		rx_unnamed_close(rx, fd); /* it goes */
	if (pfd < 0)
		return rx_refuse(rx, &re->n, "its directory is gone: %s",
				 strerror(-pfd));
	if (r)
		return r;
	if (!b->n)
		b->since_ms = tbsi_now_ms();
	f = &b->f[b->n++];
	*f = (struct rx_cfile){
		.index = re->n.index,
		.dir = (uint16_t)(b->ndfd - 1),
		.name_len = re->n.name_len,
		.name = (uint32_t)b->names_len,
		.mtime_s = re->mtime_s,
		.mtime_ns = re->mtime_ns,
		.fd = fd,
	};
	b->nfd += fd >= 0;
	if (re->wflags & TWF_REPLACE)
		f->flags |= CF_REPLACE;
	if ((re->wflags & TWF_REPLACE) && !(rx->o.flags & TBS_TREE_OVERWRITE))
		f->flags |= CF_UPDATE;
	if (re->size >= RX_RESUME_MIN)
		f->flags |= CF_STATE;
	memcpy(b->names + b->names_len, name, re->n.name_len);
	b->names_len += re->n.name_len;
	b->bytes += re->size;
	re->n.state = RS_PENDING;
	return 0;
}

/**
 * rx_commit_poll() - confirm what the committer made durable; hand it
 * the batch being filled when it is full (or @idle: nothing comes)
 * @rx:   receiver
 * @idle: the sender sent nothing for a while
 *
 * Return: 0 or -errno.
 */
int rx_commit_poll(struct rx *rx, bool idle)
{
	struct rx_batch *b = batch_at(rx, rx->btail);
	int r = 0;

	while (!r && rx->bhead < rx->btail)
		r = finish_oldest(rx, false);
	if (r != -EAGAIN && r)
		return r;
	if (!b->n)
		return 0;
	if (!idle && b->n < COMMIT_FILES && b->bytes < COMMIT_BYTES &&
	    b->ndfd < rx->batch_dirs && (!b->nfd || b->nfd < rx->batch_fds) &&
	    tbsi_now_ms() - b->since_ms < COMMIT_MS)
		return 0;
	r = hand_on(rx);
	if (!r && idle && rx->committer_on) {
		r = finish_oldest(rx, false);
		if (r != -EAGAIN)
			return r;
	}
	return r == -EAGAIN ? 0 : r;
}

/**
 * rx_commit_all() - commit and confirm every file written
 * @rx: receiver
 *
 * Return: 0 or -errno.
 */
int rx_commit_all(struct rx *rx)
{
	int r = 0;

	if (batch_at(rx, rx->btail)->n)
		queue_batch(rx);
	while (!r && rx->bhead < rx->btail)
		r = finish_oldest(rx, true);
	return r;
}

void rx_fs_free(struct rx *rx)
{
	size_t i;

	if (!rx->fs)
		return; /* never opened (a dry run into nothing) */
	if (rx->committer_on) {
		pthread_mutex_lock(&rx->fs_lock);
		rx->committer_stop = true;
		pthread_cond_signal(&rx->fs_cv);
		pthread_mutex_unlock(&rx->fs_lock);
		pthread_join(rx->committer, NULL);
		rx->committer_on = false;
	}
	for (i = 0; i < RX_BATCHES; i++) {
		struct rx_batch *b = &rx->batch[i];

		batch_clear(rx, b);
		free(b->f);
		free(b->dfd);
		free(b->names);
	}
	for (i = 0; i < rx->nfs; i++)
		close(rx->fs[i].fd);
	free(rx->fs);
	rx->fs = NULL;
	rx->nfs = 0;
	pthread_mutex_destroy(&rx->fs_lock);
	pthread_cond_destroy(&rx->fs_cv);
	pthread_cond_destroy(&rx->done_cv);
}
