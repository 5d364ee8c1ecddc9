// SPDX-License-Identifier: MIT
/*
 * The file-tree sender.  The main thread sends START, one ENTRY per entry
 * and LISTED, then for each regular file, in order, waits for the
 * receiver's WANT and sends what it asks for (FILE, DATA..., FILE_END, or
 * SKIP), then DONE.  A second thread reads the receiver's messages: WANT,
 * CONFIRM, FAIL and FINISH.  Many small messages share one session record;
 * a record is sent when it is full or when the main thread must wait.
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

#define HASH_BUF (256 * 1024)
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

static int put(struct tx *tx, uint8_t type, const void *body, size_t len)
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

static int send_list(struct tx *tx)
{
	uint8_t b[24] = { 0 };
	size_t i;
	int r;

	for (i = 0; i < tx->n; i++)
		count(tx, &tx->ents[i]);
	tbsi_le_put32(b, TREE_VERSION);
	tbsi_le_put64(b + 8, tx->n);
	tbsi_le_put64(b + 16, tx->st.bytes_total);
	r = put(tx, TM_START, b, sizeof(b));
	for (i = 0; !r && i < tx->n; i++)
		r = put_entry(tx, &tx->ents[i]);
	tbsi_le_put64(b, tx->n);
	return r ? r : put(tx, TM_LISTED, b, 8);
}

/* ---- file data ---- */

static int put_file_msg(struct tx *tx, uint8_t type, uint32_t idx, uint64_t a,
			uint64_t b)
{
	uint8_t m[24] = { 0 };

	tbsi_le_put32(m, idx);
	tbsi_le_put64(m + 8, a);
	tbsi_le_put64(m + 16, b);
	return put(tx, type, m, type == TM_FILE_END ? 24 : 16);
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
	return put(tx, TM_SKIP, m, 8 + n);
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

/* Sends the data segments of [pos, size), holes skipped. */
static int send_segments(struct tx *tx, int fd, struct tx_entry *te,
			 uint64_t pos)
{
	uint64_t size = te->e.size, end;
	off_t d;
	ssize_t n;

	while (pos < size) {
		d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			d = (off_t)pos;
		if (d < 0 || (uint64_t)d >= size)
			d = (off_t)size;
		tree_hash_zeros(tx->hash, (uint64_t)d - pos);
		pos = (uint64_t)d;
		end = pos < size ? (uint64_t)lseek(fd, (off_t)pos, SEEK_HOLE)
				 : size;
		if ((off_t)end < 0 || end > size)
			end = size;
		while (pos < end) {
			n = put_data(tx, fd, te->e.index, pos, end - pos);
			if (n < 0)
				return (int)n;
			pos += (uint64_t)n;
			progress(tx);
		}
	}
	return 0;
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

/* @te is not sent after all: the receiver drops what it has of it. */
static int not_sent(struct tx *tx, struct tx_entry *te, const char *why)
{
	tx_fail_note(tx, "not sent: '%s' %s", te->path, why);
	te->failed = true;
	return put_skip(tx, te->e.index, TS_ERROR, why);
}

/*
 * Sends the file from @from (the hash covers [0, from) already).  A file
 * written to while it was read is not ended with FILE_END but skipped: a
 * mix of old and new bytes must not arrive as the file.
 */
static int stream_file(struct tx *tx, int fd, struct tx_entry *te,
		       uint64_t from, const struct stat *at)
{
	int r = put_file_msg(tx, TM_FILE, te->e.index, from, 0);

	if (!r)
		r = send_segments(tx, fd, te, from);
	if (r == -ENODATA || (!r && !unchanged(fd, at)))
		return not_sent(tx, te,
				"changed while it was being sent (send it "
				"again)");
	if (r == -EIO)
		return not_sent(tx, te, "could not be read");
	if (r)
		return r;
	return put_file_msg(tx, TM_FILE_END, te->e.index, te->e.size,
			    tree_hash_digest(tx->hash));
}

/* The receiver has a prefix (RESUME) or all (VERIFY): does it match? */
static bool same_prefix(struct tx *tx, int fd, uint64_t len, uint64_t hash)
{
	if (len > UINT64_MAX / 2 ||
	    tree_hash_fd(tx->hash, fd, len, tx->buf, HASH_BUF))
		return false;
	return tree_hash_digest(tx->hash) == hash;
}

static int verified_same(struct tx *tx, struct tx_entry *te)
{
	pthread_mutex_lock(&tx->lock);
	te->present = true;
	tx->st.files_present++;
	tx->st.bytes_done += te->e.size;
	pthread_mutex_unlock(&tx->lock);
	return put_skip(tx, te->e.index, TS_SAME, "");
}

static int send_verify(struct tx *tx, int fd, struct tx_entry *te,
		       const struct stat *at)
{
	bool same = same_prefix(tx, fd, te->e.size, te->whash);

	if (!unchanged(fd, at))
		return not_sent(tx, te,
				"changed while it was being compared (send "
				"it again)");
	if (same)
		return verified_same(tx, te);
	if (te->wflags & TWF_REPLACE) {
		tree_hash_reset(tx->hash);
		return stream_file(tx, fd, te, 0, at);
	}
	tx_fail_note(tx,
		     "not sent: '%s' differs from the receiver's file of the "
		     "same size and time (the receiver's --overwrite replaces "
		     "it)",
		     te->path);
	te->failed = true;
	return put_skip(tx, te->e.index, TS_DIFFERS, "differs");
}

static int send_resume(struct tx *tx, int fd, struct tx_entry *te,
		       const struct stat *at)
{
	if (te->woff && te->woff <= te->e.size &&
	    same_prefix(tx, fd, te->woff, te->whash)) {
		pthread_mutex_lock(&tx->lock);
		tx->st.files_resumed++;
		tx->st.bytes_resumed += te->woff;
		pthread_mutex_unlock(&tx->lock);
		return stream_file(tx, fd, te, te->woff, at);
	}
	tree_hash_reset(tx->hash);
	return stream_file(tx, fd, te, 0, at);
}

static int wait_want(struct tx *tx, struct tx_entry *te)
{
	int r = 0;

	pthread_mutex_lock(&tx->lock);
	if (!te->want && !tx->fatal) {
		pthread_mutex_unlock(&tx->lock);
		r = flush(tx);
		pthread_mutex_lock(&tx->lock);
	}
	while (!r && !te->want && !tx->fatal && !tx->reader_done)
		pthread_cond_wait(&tx->cv, &tx->lock);
	if (!r)
		r = tx->fatal;
	if (!r && !te->want)
		r = -ECONNRESET; /* the receiver ended without answering */
	pthread_mutex_unlock(&tx->lock);
	return r;
}

/*
 * Opens the file listed as @te, if it still is that regular file with the
 * size and time the receiver was told.  Never blocks: a file replaced by
 * a FIFO since it was listed would wait for a writer forever.
 * Return: the descriptor, -ESTALE when it changed, or -errno.
 */
static int open_listed(const struct tx_entry *te, struct stat *at)
{
	int fd = open(te->path,
		      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

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

static int send_file(struct tx *tx, struct tx_entry *te)
{
	struct stat at;
	int fd, r = wait_want(tx, te);

	if (r)
		return r;
	if (te->want == TW_REFUSE || te->want == TW_KEEP) {
		if (te->want == TW_KEEP)
			verified_same(tx, te);
		return 0;
	}
	fd = open_listed(te, &at);
	if (fd < 0)
		return not_sent(tx, te,
				fd == -ESTALE ? "changed since it was listed "
						"(send it again)"
					      : strerror(-fd));
	tree_hash_reset(tx->hash);
	if (te->want == TW_VERIFY)
		r = send_verify(tx, fd, te, &at);
	else if (te->want == TW_RESUME)
		r = send_resume(tx, fd, te, &at);
	else
		r = stream_file(tx, fd, te, 0, &at);
	close(fd);
	return r;
}

static int send_files(struct tx *tx)
{
	uint8_t b[8];
	size_t i;
	int r = 0;

	for (i = 0; !r && i < tx->n; i++)
		if (tx->ents[i].e.kind == TK_FILE)
			r = send_file(tx, &tx->ents[i]);
	if (r)
		return r;
	tbsi_le_put64(b, tx->n);
	r = put(tx, TM_DONE, b, 8);
	return r ? r : flush(tx);
}

/* ---- the receiver's messages ---- */

static int on_want(struct tx *tx, const struct tree_msg *m)
{
	struct tx_entry *te;

	if (m->index >= tx->n || tx->ents[m->index].e.kind != TK_FILE ||
	    tx->ents[m->index].want)
		return -EPROTO;
	te = &tx->ents[m->index];
	te->wflags = (uint8_t)m->flags;
	te->woff = m->a;
	te->whash = m->b;
	te->want = (uint8_t)m->u32;
	if (te->want == TW_REFUSE)
		te->failed = true;
	return 0;
}

static void on_fail(struct tx *tx, const struct tree_msg *m)
{
	char text[TREE_TEXT_MAX + 1];
	size_t i;

	for (i = 0; i < m->len; i++)
		text[i] = m->data[i] >= 0x20 && m->data[i] < 0x7f
				  ? (char)m->data[i]
				  : '?';
	text[i] = 0;
	if (m->index == TREE_NONE) {
		char msg[TREE_TEXT_MAX + 32];

		snprintf(msg, sizeof(msg), "the receiver gave up: %s", text);
		set_fatal(tx, -EPROTO, msg);
		return;
	}
	if (m->index < tx->n)
		tx->ents[m->index].failed = true;
	pthread_mutex_unlock(&tx->lock);
	tx_fail_note(tx, "receiver: %s", text);
	pthread_mutex_lock(&tx->lock);
}

/* One message from the receiver; lock held. */
static int on_msg(void *arg, const struct tree_msg *m)
{
	struct tx *tx = arg;
	struct tx_entry *te;

	switch (m->type) {
	case TM_WANT:
		return on_want(tx, m);
	case TM_CONFIRM:
		if (m->index >= tx->n || tx->ents[m->index].confirmed)
			return -EPROTO;
		te = &tx->ents[m->index];
		te->confirmed = true;
		tx->st.files_done++;
		tx->st.bytes_done += te->e.size;
		return 0;
	case TM_FAIL:
		on_fail(tx, m);
		return 0;
	case TM_FINISH:
		tx->finished = true;
		tx->fin_applied = m->a;
		tx->fin_failed = m->b;
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
	uint64_t failed = 0;
	size_t i;

	for (i = 0; i < tx->n; i++) {
		struct tx_entry *te = &tx->ents[i];

		if (te->failed ||
		    (te->e.kind == TK_FILE && !te->confirmed && !te->present))
			failed++;
	}
	if (tx->fin_failed > failed)
		failed = tx->fin_failed;
	tx->st.failed += failed;
	if (!tx->st.failed)
		return 0;
	return tbsi_err(tx->err, -EIO, "%llu %s not transferred; %s%s",
			(unsigned long long)tx->st.failed,
			tx->st.failed == 1 ? "entry was" : "entries were",
			tx->st.failed == 1 ? "" : "the first: ",
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
	int r = send_list(tx);

	if (!r)
		r = send_files(tx);
	if (!r)
		r = wait_finish(tx);
	if (r) {
		wait_reader(tx);
		pthread_mutex_lock(&tx->lock);
		tx->stop = true;
		if (tx->fatal_msg[0])
			tbsi_err(tx->err, r, "%s", tx->fatal_msg);
		else
			tbsi_err(tx->err, r, "%s", tbs_session_error(tx->s));
		pthread_mutex_unlock(&tx->lock);
	}
	pthread_join(tx->reader, NULL);
	return r ? r : verdict(tx);
}

static int tx_init(struct tx *tx, struct tbs_session *s,
		   const struct tbs_tree_opts *opts, struct tbs_error *err)
{
	int r;

	memset(tx, 0, sizeof(*tx));
	tx->s = s;
	tx->err = err;
	pthread_mutex_init(&tx->lock, NULL);
	pthread_cond_init(&tx->cv, NULL);
	r = TBSI_OPTS_LOAD(&tx->o, opts, arg, arg);
	if (r)
		return tbsi_err(err, r, "struct tbs_tree_opts is not valid");
	tx->out = malloc(TREE_REC_MAX);
	tx->buf = malloc(HASH_BUF);
	tx->hash = tree_hash_new();
	if (!tx->out || !tx->buf || !tx->hash)
		return tbsi_err(err, -ENOMEM, "out of memory");
	return 0;
}

static void tx_free(struct tx *tx)
{
	size_t i;

	for (i = 0; i < tx->n; i++) {
		free(tx->ents[i].path);
		free(tx->ents[i].target);
	}
	free(tx->ents);
	free(tx->inos);
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
	if (!r)
		r = tx_walk(&tx, paths, n);
	if (!r && tx.n > TREE_NONE - 1)
		r = tbsi_err(err, -E2BIG, "too many entries to send");
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
