// SPDX-License-Identifier: MIT
/*
 * The file-tree sender.  The main thread walks the paths and sends START,
 * then one ENTRY per entry as it walks (with the HASH, NAME and XATTR
 * messages that go with it), at most TX_AHEAD entries ahead of the file
 * whose data it sends: for each regular file, in order, once the
 * receiver's WANT for it is there, what the receiver asks for (FILE,
 * DATA..., XATTR..., FILE_END, or SKIP); then LISTED and DONE.  A second
 * thread reads the receiver's messages: WANT, CONFIRM, FAIL, REMOVED and
 * FINISH.  Many small messages share one session record; a record is
 * sent when it is full or when the main thread must wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tree-send.h"
#include "tree-attr.h"

#define HASH_BUF TREE_REC_MAX
#define SEND_WAIT_MS 200

__attribute__((format(printf, 3, 0))) static void
notify_v(struct tx *tx, bool failure, const char *fmt, va_list ap)
{
	char msg[TBS_MSG_MAX + TREE_TEXT_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (failure) {
		pthread_mutex_lock(&tx->lock);
		if (!tx->first[0])
			snprintf(tx->first, sizeof(tx->first), "%.400s", msg);
		pthread_mutex_unlock(&tx->lock);
	}
	if (tx->o.notify)
		tx->o.notify(tx->o.arg, msg);
}

void tx_notify(struct tx *tx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_v(tx, false, fmt, ap);
	va_end(ap);
}

void tx_fail_note(struct tx *tx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_v(tx, true, fmt, ap);
	va_end(ap);
}

void tx_error(struct tx *tx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_v(tx, true, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&tx->lock);
	tx->errors++;
	pthread_mutex_unlock(&tx->lock);
}

/* The transfer cannot go on; lock held. */
static void set_fatal(struct tx *tx, int err, const char *msg)
{
	if (tx->fatal)
		return;
	tx->fatal = err;
	snprintf(tx->fatal_msg, sizeof(tx->fatal_msg), "%.400s", msg);
	pthread_cond_broadcast(&tx->cv);
}

static int fatal_now(struct tx *tx)
{
	int r;

	pthread_mutex_lock(&tx->lock);
	r = tx->fatal;
	pthread_mutex_unlock(&tx->lock);
	return r;
}

static int flush(struct tx *tx)
{
	ssize_t r;

	while (tx->out_len) {
		r = tbs_session_send(tx->s, TBS_TREE_APP, tx->out, tx->out_len,
				     SEND_WAIT_MS);
		if (r == -EAGAIN) {
			if (fatal_now(tx))
				return fatal_now(tx);
			continue;
		}
		if (r < 0)
			return (int)r;
		tx->out_len = 0;
	}
	return fatal_now(tx);
}

/* Makes room for @n bytes in the record; 0 or a negative errno. */
static int reserve(struct tx *tx, size_t n)
{
	if (tx->out_len + n <= TREE_REC_MAX)
		return 0;
	return flush(tx);
}

int tx_put(struct tx *tx, uint8_t type, const void *body, size_t len)
{
	int r = reserve(tx, TREE_MSG_HDR + len);

	if (r)
		return r;
	tx->out_len +=
		tree_msg_put(tx->out + tx->out_len, TREE_REC_MAX - tx->out_len,
			     type, body, len);
	return 0;
}

static void progress(struct tx *tx)
{
	struct tbs_tree_stats st;

	if (!tx->o.progress)
		return;
	pthread_mutex_lock(&tx->lock);
	st = tx->st;
	pthread_mutex_unlock(&tx->lock);
	tx->o.progress(tx->o.arg, &st);
}

static void change(struct tx *tx, unsigned int what, const char *path)
{
	if (tx->o.change)
		tx->o.change(tx->o.arg,
			     what | (tx->sflags & TSF_DRY_RUN ? TBS_TREE_WOULD
							      : 0),
			     path);
}

static struct tx_entry *slot(struct tx *tx, uint64_t idx)
{
	return &tx->ring[idx & (TX_AHEAD - 1)];
}

/* ---- the list of entries ---- */

static int put_entry(struct tx *tx, struct tx_entry *te)
{
	const char *names[TREE_DEPTH_MAX];
	uint16_t lens[TREE_DEPTH_MAX];
	char *p = te->path + te->rel, *slash;
	size_t n = 0, len;
	int r;

	while (*p && n < TREE_DEPTH_MAX) {
		slash = strchr(p, '/');
		names[n] = p;
		lens[n++] = (uint16_t)(slash ? (size_t)(slash - p) : strlen(p));
		p = slash ? slash + 1 : p + strlen(p);
	}
	te->e.ncomp = (uint16_t)n;
	r = reserve(tx, TREE_MSG_HDR + TREE_ENTRY_FIXED + TREE_PATH_MAX * 2 +
				TREE_TARGET_MAX);
	if (r)
		return r;
	len = tree_entry_encode(tx->out + tx->out_len,
				TREE_REC_MAX - tx->out_len, &te->e, names, lens,
				te->target);
	if (!len)
		return -ENAMETOOLONG;
	tx->out_len += len;
	return 0;
}

static void count(struct tx *tx, const struct tx_entry *te)
{
	struct tbs_tree_stats *st = &tx->st;

	st->entries++;
	switch (te->e.kind) {
	case TK_FILE:
		st->files++;
		st->bytes_total += te->e.size;
		break;
	case TK_DIR:
		st->dirs++;
		break;
	case TK_SYMLINK:
		st->symlinks++;
		break;
	case TK_HARDLINK:
		st->hardlinks++;
		break;
	default:
		st->specials++;
	}
}

static int put_index_u64(struct tx *tx, uint8_t type, uint32_t idx,
			 uint64_t a)
{
	uint8_t m[16] = { 0 };

	tbsi_le_put32(m, idx);
	tbsi_le_put64(m + 8, a);
	return tx_put(tx, type, m, sizeof(m));
}

/*
 * Lists the next entry of the walk: ENTRY, preceded by the names of its
 * owners and followed by its hash or attributes.  1 listed, 0 at the end.
 */
static int list_one(struct tx *tx)
{
	struct tx_entry te;
	int r = tx_walk_next(tx, &tx->walk, &te);

	if (r <= 0)
		return r;
	r = tx_attr_owner(tx, &te);
	if (!r)
		r = put_entry(tx, &te);
	if (!r && te.e.kind == TK_FILE &&
	    ((te.e.flags & TEF_LINKED) || (tx->sflags & TSF_CHECKSUM)))
		r = put_index_u64(tx, TM_HASH, te.e.index, te.hash);
	if (!r && te.e.kind != TK_FILE && te.e.kind != TK_HARDLINK)
		r = tx_attr_path(tx, &te);
	if (r) {
		tx_entry_free(&te);
		return r;
	}
	pthread_mutex_lock(&tx->lock);
	*slot(tx, tx->n) = te;
	tx->n++;
	count(tx, &te);
	pthread_mutex_unlock(&tx->lock);
	return 1;
}

static int put_start(struct tx *tx)
{
	uint8_t b[24] = { 0 };

	tbsi_le_put32(b, TREE_VERSION);
	tbsi_le_put32(b + 4, tx->sflags);
	tbsi_le_put64(b + 8, tx->expect_entries);
	tbsi_le_put64(b + 16, tx->expect_bytes);
	return tx_put(tx, TM_START, b, sizeof(b));
}

static int put_counts(struct tx *tx, uint8_t type, uint64_t a, uint64_t b)
{
	uint8_t m[16];

	tbsi_le_put64(m, a);
	tbsi_le_put64(m + 8, b);
	return tx_put(tx, type, m, sizeof(m));
}

/* The totals for the progress line, from a first walk that only counts. */
static int count_ahead(struct tx *tx, const char *const *paths, size_t n)
{
	struct tx_walk w = { .count_only = true };
	struct tx_entry te;
	int r = tx_walk_start(tx, &w, paths, n);

	while (!r && (r = tx_walk_next(tx, &w, &te)) == 1) {
		tx->expect_entries++;
		if (te.e.kind == TK_FILE)
			tx->expect_bytes += te.e.size;
	}
	tx_walk_free(&w);
	if (r < 0)
		return r;
	pthread_mutex_lock(&tx->lock);
	tx->st.bytes_total = tx->expect_bytes;
	pthread_mutex_unlock(&tx->lock);
	return 0;
}

/* ---- file data ---- */

static int put_file_msg(struct tx *tx, uint8_t type, uint32_t idx, uint64_t a,
			uint64_t b)
{
	uint8_t m[24] = { 0 };

	tbsi_le_put32(m, idx);
	tbsi_le_put64(m + 8, a);
	tbsi_le_put64(m + 16, b);
	return tx_put(tx, type, m, 24);
}

static int put_skip(struct tx *tx, uint32_t idx, uint32_t reason,
		    const char *text)
{
	uint8_t m[8 + 256];
	size_t n = strlen(text);

	if (n > sizeof(m) - 8)
		n = sizeof(m) - 8;
	tbsi_le_put32(m, idx);
	tbsi_le_put32(m + 4, reason);
	memcpy(m + 8, text, n);
	return tx_put(tx, TM_SKIP, m, 8 + n);
}

/* One DATA message of up to @len bytes read at @pos; returns bytes. */
static ssize_t put_data(struct tx *tx, int fd, uint32_t idx, uint64_t pos,
			uint64_t len)
{
	size_t room, hdr = TREE_MSG_HDR + TREE_DATA_HDR;
	uint8_t *p;
	ssize_t n;
	int r;

	if (TREE_REC_MAX - tx->out_len < hdr + 4096) {
		r = flush(tx);
		if (r)
			return r;
	}
	room = TREE_REC_MAX - tx->out_len - hdr;
	if (len < room)
		room = (size_t)len;
	p = tx->out + tx->out_len;
	do
		n = pread(fd, p + hdr, room, (off_t)pos);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	tree_hash_update(tx->hash, p + hdr, (size_t)n);
	memset(p, 0, hdr);
	p[0] = TM_DATA;
	tbsi_le_put32(p + 4, (uint32_t)(TREE_DATA_HDR + (size_t)n));
	tbsi_le_put32(p + TREE_MSG_HDR, idx);
	tbsi_le_put64(p + TREE_MSG_HDR + 8, pos);
	tx->out_len += hdr + (size_t)n;
	pthread_mutex_lock(&tx->lock);
	tx->st.bytes_data += (uint64_t)n;
	pthread_mutex_unlock(&tx->lock);
	return n;
}

/* Whether the file open as @fd is still as it was when opened (@at). */
static bool unchanged(int fd, const struct stat *at)
{
	struct stat now;

	return !fstat(fd, &now) && now.st_ino == at->st_ino &&
	       now.st_size == at->st_size &&
	       now.st_mtim.tv_sec == at->st_mtim.tv_sec &&
	       now.st_mtim.tv_nsec == at->st_mtim.tv_nsec &&
	       now.st_ctim.tv_sec == at->st_ctim.tv_sec &&
	       now.st_ctim.tv_nsec == at->st_ctim.tv_nsec;
}

#define CHANGE_CHECK (8u << 20) /* bytes read between two looks */

/*
 * Sends the data segments of [pos, size), holes skipped; -ENODATA as soon
 * as the file is seen to change (it is looked at every CHANGE_CHECK bytes,
 * so that a file written to is not read to its end for nothing).  A file
 * with as many blocks as bytes has no hole to look for (and zeros sent as
 * data are the same content to the hash).
 */
static int send_segments(struct tx *tx, int fd, struct tx_entry *te,
			 uint64_t pos, const struct stat *at)
{
	uint64_t size = te->e.size, end, look = pos + CHANGE_CHECK;
	bool dense = (uint64_t)at->st_blocks * 512 >= size;
	off_t d;
	ssize_t n;

	while (pos < size) {
		d = dense ? (off_t)pos : lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			d = (off_t)pos;
		if (d < 0 || (uint64_t)d >= size)
			d = (off_t)size;
		tree_hash_zeros(tx->hash, (uint64_t)d - pos);
		pos = (uint64_t)d;
		end = pos < size && !dense
			      ? (uint64_t)lseek(fd, (off_t)pos, SEEK_HOLE)
			      : size;
		if ((off_t)end < 0 || end > size)
			end = size;
		while (pos < end) {
			n = put_data(tx, fd, te->e.index, pos, end - pos);
			if (n < 0)
				return (int)n;
			pos += (uint64_t)n;
			progress(tx);
			if (pos >= look) {
				if (!unchanged(fd, at))
					return -ENODATA;
				look = pos + CHANGE_CHECK;
			}
		}
	}
	return 0;
}

/* @te is not sent after all: the receiver drops what it has of it. */
static int not_sent(struct tx *tx, struct tx_entry *te, uint32_t reason,
		    const char *why)
{
	tx_error(tx, "not sent: '%s' %s", te->path, why);
	return put_skip(tx, te->e.index, reason, why);
}

/* File @te is ended: it waits for the receiver's CONFIRM (unless the
 * receiver refused it already, while it was being sent). */
static int awaiting(struct tx *tx, const struct tx_entry *te)
{
	pthread_mutex_lock(&tx->lock);
	if (tx->fifo_len == tx->fifo_cap) {
		size_t cap = tx->fifo_cap ? tx->fifo_cap * 2 : 1024, i;
		struct tx_pend *n = malloc(cap * sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&tx->lock);
			return -ENOMEM;
		}
		for (i = 0; i < tx->fifo_len; i++)
			n[i] = tx->fifo[(tx->fifo_head + i) % tx->fifo_cap];
		free(tx->fifo);
		tx->fifo = n;
		tx->fifo_cap = cap;
		tx->fifo_head = 0;
	}
	tx->fifo[(tx->fifo_head + tx->fifo_len++) % tx->fifo_cap] =
		(struct tx_pend){ .index = te->e.index, .failed = te->failed };
	pthread_mutex_unlock(&tx->lock);
	return 0;
}

/*
 * Sends the file from @from (the hash covers [0, from) already), then its
 * attributes.  A file written to while it was read is not ended with
 * FILE_END but skipped: a mix of old and new bytes must not arrive as the
 * file (tar says "file changed as we read it").
 */
static int stream_file(struct tx *tx, int fd, struct tx_entry *te,
		       uint64_t from, const struct stat *at)
{
	int r = put_file_msg(tx, TM_FILE, te->e.index, from,
			     from ? tree_hash_digest(tx->hash) : 0);

	if (!r)
		r = send_segments(tx, fd, te, from, at);
	if (r == -ENODATA || (!r && !unchanged(fd, at)))
		return not_sent(tx, te, TS_CHANGED,
				"changed while it was being read (send it "
				"again)");
	if (r == -EIO)
		return not_sent(tx, te, TS_UNREADABLE, "could not be read");
	if (!r)
		r = tx_attr_fd(tx, te, fd);
	if (!r)
		r = awaiting(tx, te);
	if (r)
		return r;
	return put_file_msg(tx, TM_FILE_END, te->e.index, te->e.size,
			    tree_hash_digest(tx->hash));
}

/*
 * The receiver has the first @te->woff bytes from an earlier run
 * (RESUME): the rest follows our hash of those bytes, which the receiver
 * compares with its copy (it never sends its own hash).
 */
static int send_resume(struct tx *tx, int fd, struct tx_entry *te,
		       const struct stat *at)
{
	if (te->woff && te->woff <= te->e.size &&
	    !tree_hash_fd(tx->hash, fd, te->woff, tx->buf, HASH_BUF)) {
		pthread_mutex_lock(&tx->lock);
		tx->st.files_resumed++;
		tx->st.bytes_resumed += te->woff;
		pthread_mutex_unlock(&tx->lock);
		return stream_file(tx, fd, te, te->woff, at);
	}
	tree_hash_reset(tx->hash);
	return stream_file(tx, fd, te, 0, at);
}

/* Whether the receiver's answer for @te is there; lock held. */
static bool answered(struct tx *tx, const struct tx_entry *te)
{
	return te->want || tx->fatal || tx->reader_done;
}

static int wait_want(struct tx *tx, struct tx_entry *te)
{
	int r = 0;

	pthread_mutex_lock(&tx->lock);
	if (!answered(tx, te)) {
		pthread_mutex_unlock(&tx->lock);
		r = flush(tx);
		pthread_mutex_lock(&tx->lock);
	}
	while (!r && !answered(tx, te))
		pthread_cond_wait(&tx->cv, &tx->lock);
	if (!r)
		r = tx->fatal;
	if (!r && !te->want)
		r = -ECONNRESET; /* the receiver ended without answering */
	pthread_mutex_unlock(&tx->lock);
	return r;
}

/*
 * The directory of the file at @path, for opening it by its last
 * component (@name): files are sent in the walk's order, those of a
 * directory one after the other, so the directory of the last one sent
 * is held, and each file costs the lookup of one name, not of its whole
 * path.  AT_FDCWD when the directory cannot be held (@name is @path).
 */
static int src_dir(struct tx *tx, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	char *copy;
	int fd;

	*name = path;
	if (!slash || !len)
		return AT_FDCWD;
	if (tx->dir_fd >= 0 && tx->dir_len == len &&
	    !memcmp(tx->dir_path, path, len)) {
		*name = slash + 1;
		return tx->dir_fd;
	}
	copy = strndup(path, len);
	fd = copy ? open(copy, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd < 0) {
		free(copy);
		return AT_FDCWD;
	}
	if (tx->dir_fd >= 0)
		close(tx->dir_fd);
	free(tx->dir_path);
	tx->dir_fd = fd;
	tx->dir_path = copy;
	tx->dir_len = len;
	*name = slash + 1;
	return fd;
}

/*
 * Opens the file listed as @te, if it still is that regular file with the
 * size and time the receiver was told.  Never blocks: a file replaced by
 * a FIFO since it was listed would wait for a writer forever.
 * Return: the descriptor, -ESTALE when it changed, or -errno.
 */
static int open_listed(struct tx *tx, const struct tx_entry *te,
		       struct stat *at)
{
	const char *name;
	int dfd = src_dir(tx, te->path, &name);
	int fd = openat(dfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, at) || !S_ISREG(at->st_mode) || at->st_dev != te->dev ||
	    at->st_ino != te->ino || (uint64_t)at->st_size != te->e.size ||
	    at->st_mtim.tv_sec != te->e.mtime_s ||
	    (uint32_t)at->st_mtim.tv_nsec != te->e.mtime_ns) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static void present(struct tx *tx, const struct tx_entry *te)
{
	pthread_mutex_lock(&tx->lock);
	tx->st.files_present++;
	tx->st.bytes_done += te->e.size;
	pthread_mutex_unlock(&tx->lock);
}

/* What the receiver asked for file @te, once it asked. */
static int send_file(struct tx *tx, struct tx_entry *te)
{
	struct stat at;
	int fd, r = wait_want(tx, te);

	if (r)
		return r;
	if (te->want == TW_SAME || te->want == TW_KEEP) {
		present(tx, te);
		return 0;
	}
	if (te->want == TW_REFUSE)
		return 0;
	change(tx,
	       (te->wflags & TWF_REPLACE ? TBS_TREE_REPLACED
					 : TBS_TREE_CREATED) |
		       (te->wflags & TWF_DRY ? TBS_TREE_WOULD : 0),
	       te->path + te->rel);
	if ((tx->sflags & TSF_DRY_RUN) || (te->wflags & TWF_DRY))
		return 0;
	fd = open_listed(tx, te, &at);
	if (fd < 0)
		return not_sent(tx, te,
				fd == -ESTALE ? TS_CHANGED : TS_UNREADABLE,
				fd == -ESTALE ? "changed since it was listed "
						"(send it again)"
					      : strerror(-fd));
	tree_hash_reset(tx->hash);
	if (te->want == TW_RESUME)
		r = send_resume(tx, fd, te, &at);
	else
		r = stream_file(tx, fd, te, 0, &at);
	close(fd);
	return r;
}

/* Drops the oldest entry of the ring, its data sent or not needed. */
static void retire(struct tx *tx)
{
	struct tx_entry *te = slot(tx, tx->head);

	pthread_mutex_lock(&tx->lock);
	if (te->failed)
		tx->failed++;
	tx->head++;
	pthread_mutex_unlock(&tx->lock);
	tx_entry_free(te);
}

/* Whether the receiver answered file @te already. */
static bool have_want(struct tx *tx, const struct tx_entry *te)
{
	bool r;

	pthread_mutex_lock(&tx->lock);
	r = te->want != 0;
	pthread_mutex_unlock(&tx->lock);
	return r;
}

/* One step: list ahead, or send the oldest file; 1 when all is done. */
static int step(struct tx *tx)
{
	struct tx_entry *te;
	int r;

	if (tx->head < tx->n && slot(tx, tx->head)->e.kind != TK_FILE) {
		retire(tx);
		return 0;
	}
	te = tx->head < tx->n ? slot(tx, tx->head) : NULL;
	if (!tx->walk_done && tx->n - tx->head < TX_AHEAD &&
	    (!te || !have_want(tx, te))) {
		r = list_one(tx);
		if (r == 0) {
			tx->walk_done = true;
			r = put_counts(tx, TM_LISTED, tx->st.entries,
				       tx->st.bytes_total);
		}
		return r < 0 ? r : 0;
	}
	if (!te)
		return 1;
	r = send_file(tx, te);
	retire(tx);
	progress(tx);
	return r;
}

static int send_all(struct tx *tx)
{
	int r = put_start(tx);

	while (!r)
		r = step(tx);
	if (r < 0)
		return r;
	r = put_counts(tx, TM_DONE, tx->n, tx->errors);
	return r ? r : flush(tx);
}

/* ---- the receiver's messages ---- */

static int on_want(struct tx *tx, const struct tree_msg *m)
{
	struct tx_entry *te;

	if (m->index < tx->head || m->index >= tx->n)
		return -EPROTO;
	te = slot(tx, m->index);
	if (te->e.kind != TK_FILE || te->want ||
	    (m->u32 == TW_RESUME && (m->flags & TWF_DRY)))
		return -EPROTO;
	te->wflags = (uint8_t)m->flags;
	te->woff = m->a;
	te->want = (uint8_t)m->u32;
	if (te->want == TW_REFUSE)
		te->failed = true;
	return 0;
}

/* CONFIRM: the next file awaiting it (the failed ones before it drop). */
static int on_confirm(struct tx *tx, const struct tree_msg *m)
{
	struct tx_pend *p;

	while (tx->fifo_len) {
		p = &tx->fifo[tx->fifo_head];
		if (!p->failed)
			break;
		tx->fifo_head = (tx->fifo_head + 1) % tx->fifo_cap;
		tx->fifo_len--;
	}
	if (!tx->fifo_len || tx->fifo[tx->fifo_head].index != m->index)
		return -EPROTO;
	tx->fifo_head = (tx->fifo_head + 1) % tx->fifo_cap;
	tx->fifo_len--;
	tx->st.files_done++;
	return 0;
}

/*
 * Marks entry @idx failed, once (counted when it leaves the ring, or
 * here if it left it); also where it awaits its CONFIRM, which will not
 * come.  Lock held.
 */
static void mark_failed(struct tx *tx, uint32_t idx)
{
	bool in_ring = idx >= tx->head && idx < tx->n;
	size_t i;

	if (in_ring)
		slot(tx, idx)->failed = true;
	for (i = 0; i < tx->fifo_len; i++) {
		struct tx_pend *p =
			&tx->fifo[(tx->fifo_head + i) % tx->fifo_cap];

		if (p->index == idx) {
			tx->failed += !in_ring && !p->failed;
			p->failed = true;
			return;
		}
	}
	tx->failed += !in_ring;
}

static void on_fail(struct tx *tx, const struct tree_msg *m)
{
	char text[TREE_TEXT_MAX + 1];

	memcpy(text, m->data, m->len);
	text[m->len] = 0;
	if (m->index == TREE_NONE) {
		char msg[TREE_TEXT_MAX + 32];

		snprintf(msg, sizeof(msg), "the receiver gave up: %s", text);
		set_fatal(tx, -EPROTO, msg);
		return;
	}
	if (m->index < tx->n)
		mark_failed(tx, m->index);
	pthread_mutex_unlock(&tx->lock);
	tx_fail_note(tx, "receiver: %s", text);
	pthread_mutex_lock(&tx->lock);
}

static void on_removed(struct tx *tx, const struct tree_msg *m)
{
	char path[TREE_REMOVED_MAX + 1];

	memcpy(path, m->data, m->len);
	path[m->len] = 0;
	tx->removed++;
	pthread_mutex_unlock(&tx->lock);
	if (tx->o.change && !memchr(m->data, 0, m->len))
		tx->o.change(tx->o.arg,
			     TBS_TREE_REMOVED |
				     (m->u32 & TRF_DRY ? TBS_TREE_WOULD : 0),
			     path);
	pthread_mutex_lock(&tx->lock);
}

/* One message from the receiver; lock held. */
static int on_msg(void *arg, const struct tree_msg *m)
{
	struct tx *tx = arg;

	switch (m->type) {
	case TM_WANT:
		return on_want(tx, m);
	case TM_CONFIRM:
		return on_confirm(tx, m);
	case TM_FAIL:
		on_fail(tx, m);
		return 0;
	case TM_REMOVED:
		on_removed(tx, m);
		return 0;
	case TM_FINISH:
		tx->finished = true;
		tx->fin_applied = m->a;
		tx->fin_failed = m->b;
		tx->fin_removed = m->c;
		return 0;
	default:
		return -EPROTO;
	}
}

static void reader_record(struct tx *tx, uint16_t type, const uint8_t *buf,
			  size_t n)
{
	char why[160] = "";
	int r = -EPROTO;

	pthread_mutex_lock(&tx->lock);
	if (type == TBS_TREE_APP)
		r = tree_parse_record(buf, n, on_msg, tx, why, sizeof(why));
	if (r) {
		char msg[256];

		snprintf(msg, sizeof(msg),
			 "the receiver sent an invalid message%s%s",
			 why[0] ? ": " : "", why);
		set_fatal(tx, -EPROTO, msg);
	}
	pthread_cond_broadcast(&tx->cv);
	pthread_mutex_unlock(&tx->lock);
}

static void *reader_main(void *arg)
{
	struct tx *tx = arg;
	uint8_t *buf = malloc(TREE_REC_MAX);
	uint16_t type;
	ssize_t n = -ENOMEM;

	while (buf && !tx->stop) {
		n = tbs_session_recv(tx->s, &type, buf, TREE_REC_MAX, 500);
		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			break;
		reader_record(tx, type, buf, (size_t)n);
		progress(tx);
	}
	if (n == 0)
		tbs_session_confirm(tx->s);
	pthread_mutex_lock(&tx->lock);
	if (n < 0 && n != -EAGAIN && !tx->finished)
		set_fatal(tx, (int)n, tbs_session_error(tx->s));
	tx->reader_done = true;
	pthread_cond_broadcast(&tx->cv);
	pthread_mutex_unlock(&tx->lock);
	free(buf);
	return NULL;
}

/* ---- the whole transfer ---- */

static int wait_finish(struct tx *tx)
{
	int r;

	pthread_mutex_lock(&tx->lock);
	while (!tx->finished && !tx->fatal && !tx->reader_done)
		pthread_cond_wait(&tx->cv, &tx->lock);
	r = tx->fatal;
	if (!r && !tx->finished)
		r = -ECONNRESET;
	pthread_mutex_unlock(&tx->lock);
	if (r)
		return r;
	return tbs_session_finish(tx->s);
}

static int verdict(struct tx *tx)
{
	uint64_t failed = tx->failed + tx->errors;
	size_t i;

	for (i = 0; i < tx->fifo_len; i++)
		failed += !tx->fifo[(tx->fifo_head + i) % tx->fifo_cap].failed;
	if (tx->fin_failed > failed)
		failed = tx->fin_failed;
	tx->st.failed = failed;
	if (!failed)
		return 0;
	return tbsi_err(tx->err, -EIO, "%llu %s not transferred; %s%s",
			(unsigned long long)failed,
			failed == 1 ? "entry was" : "entries were",
			failed == 1 ? "" : "the first: ",
			tx->first[0] ? tx->first
				     : "the receiver refused or failed it");
}

/*
 * After a failure, gives the reader a moment to see the receiver end its
 * stream (the receiver waits for that confirmation after a FAIL).
 */
static void wait_reader(struct tx *tx)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&tx->lock);
	while (!tx->reader_done && tx->fatal == -EPROTO &&
	       pthread_cond_timedwait(&tx->cv, &tx->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&tx->lock);
}

static int run(struct tx *tx)
{
	int r = send_all(tx);

	if (!r)
		r = wait_finish(tx);
	if (r) {
		wait_reader(tx);
		pthread_mutex_lock(&tx->lock);
		tx->stop = true;
		if (tx->fatal_msg[0])
			tbsi_err(tx->err, r, "%s", tx->fatal_msg);
		else if (r == -ENOMEM)
			tbsi_err(tx->err, r, "out of memory");
		else
			tbsi_err(tx->err, r, "%s", tbs_session_error(tx->s));
		pthread_mutex_unlock(&tx->lock);
	}
	pthread_join(tx->reader, NULL);
	return r ? r : verdict(tx);
}

static uint32_t start_flags(unsigned int f)
{
	return (f & TBS_TREE_CHECKSUM ? TSF_CHECKSUM : 0) |
	       (f & TBS_TREE_DELETE ? TSF_MIRROR : 0) |
	       (f & TBS_TREE_DRY_RUN ? TSF_DRY_RUN : 0) |
	       (f & TBS_TREE_NUMERIC_IDS ? TSF_NUMERIC_IDS : 0);
}

static int tx_init(struct tx *tx, struct tbs_session *s,
		   const struct tbs_tree_opts *opts, struct tbs_error *err)
{
	int r;

	memset(tx, 0, sizeof(*tx));
	tx->s = s;
	tx->err = err;
	tx->dir_fd = -1;
	pthread_mutex_init(&tx->lock, NULL);
	pthread_cond_init(&tx->cv, NULL);
	r = TBSI_OPTS_LOAD(&tx->o, opts, arg, change);
	if (r)
		return tbsi_err(err, r, "struct tbs_tree_opts is not valid");
	tx->sflags = start_flags(tx->o.flags);
	tx->out = malloc(TREE_REC_MAX);
	tx->buf = malloc(HASH_BUF);
	tx->hash = tree_hash_new();
	tx->ring = calloc(TX_AHEAD, sizeof(*tx->ring));
	if (!tx->out || !tx->buf || !tx->hash || !tx->ring)
		return tbsi_err(err, -ENOMEM, "out of memory");
	return 0;
}

static void tx_free(struct tx *tx)
{
	uint64_t i;

	for (i = tx->head; tx->ring && i < tx->n; i++)
		tx_entry_free(slot(tx, i));
	tx_walk_free(&tx->walk);
	if (tx->dir_fd >= 0)
		close(tx->dir_fd);
	free(tx->dir_path);
	free(tx->ring);
	free(tx->fifo);
	free(tx->inos);
	free(tx->ids.v);
	free(tx->out);
	free(tx->buf);
	tree_hash_free(tx->hash);
	pthread_mutex_destroy(&tx->lock);
	pthread_cond_destroy(&tx->cv);
}

int tbs_tree_send(struct tbs_session *s, const char *const *paths, size_t n,
		  const struct tbs_tree_opts *opts, struct tbs_tree_stats *st,
		  struct tbs_error *err)
{
	struct tx tx;
	int r;

	r = tx_init(&tx, s, opts, err);
	if (!r && tx.o.progress)
		r = count_ahead(&tx, paths, n);
	if (!r)
		r = tx_walk_start(&tx, &tx.walk, paths, n);
	if (!r) {
		if (pthread_create(&tx.reader, NULL, reader_main, &tx))
			r = tbsi_err(err, -EAGAIN, "could not start a thread");
		else
			r = run(&tx);
	}
	if (st)
		*st = tx.st;
	tx_free(&tx);
	return r;
}
