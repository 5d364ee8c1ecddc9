// SPDX-License-Identifier: MIT
/*
 * The file-tree receiver, protocol side: reads the sender's records, checks
 * every message against what came before (index order, sizes, offsets,
 * limits), answers each regular file with WANT, writes file data through
 * tree-apply.c, commits finished files in batches and confirms them, and
 * ends with FINISH.  A message that breaks the protocol ends the transfer
 * (FAIL for the whole transfer); an entry that cannot be written is refused
 * alone (FAIL for that entry) and the others go on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-recv.h"

#define DEF_MAX_ENTRIES (16u << 20)
#define DEF_MAX_FILE_SIZE (1ull << 50)
#define ARENA_MAX (1ull << 30)
#define COMMIT_FILES 8192
#define COMMIT_BYTES (256ull << 20)
#define COMMIT_MS 2000
#define IDLE_POLL_MS 300

int rx_put(struct rx *rx, uint8_t type, const void *body, size_t len)
{
	ssize_t r;

	if (rx->out_len + TREE_MSG_HDR + len > TREE_REC_MAX) {
		r = tbs_session_send(rx->s, TBS_TREE_APP, rx->out, rx->out_len,
				     -1);
		if (r < 0)
			return (int)r;
		rx->out_len = 0;
	}
	rx->out_len +=
		tree_msg_put(rx->out + rx->out_len, TREE_REC_MAX - rx->out_len,
			     type, body, len);
	return 0;
}

static int flush(struct rx *rx)
{
	ssize_t r;

	if (!rx->out_len)
		return 0;
	r = tbs_session_send(rx->s, TBS_TREE_APP, rx->out, rx->out_len, -1);
	if (r < 0)
		return (int)r;
	rx->out_len = 0;
	return 0;
}

static void notify(struct rx *rx, const char *msg)
{
	if (rx->o.notify)
		rx->o.notify(rx->o.arg, msg);
}

static int put_fail(struct rx *rx, uint32_t idx, int err, const char *msg)
{
	uint8_t b[8 + TREE_TEXT_MAX];
	size_t n = strlen(msg);

	if (n > TREE_TEXT_MAX)
		n = TREE_TEXT_MAX;
	tbsi_le_put32(b, idx);
	tbsi_le_put32(b + 4, (uint32_t)err);
	memcpy(b + 8, msg, n);
	return rx_put(rx, TM_FAIL, b, 8 + n);
}

/* Refuses entry @re with a message; returns -EPERM (or the send error). */
int rx_refuse(struct rx *rx, struct rx_entry *re, const char *fmt, ...)
{
	char path[400], why[400], msg[TREE_TEXT_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rx_path(rx, re, path, sizeof(path));
	snprintf(msg, sizeof(msg), "refused '%s': %s", path, why);
	notify(rx, msg);
	if (re->state != RS_FAILED) {
		re->state = RS_FAILED;
		rx->st.failed++;
	}
	r = put_fail(rx, (uint32_t)(re - rx->ents), EPERM, msg);
	return r ? r : -EPERM;
}

/* The sender broke the protocol: nothing more is accepted. */
__attribute__((format(printf, 2, 3))) static int violation(struct rx *rx,
							   const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(rx->fatal, sizeof(rx->fatal),
		 "the sender sent %s; transfer refused (nothing is written "
		 "outside the directory)",
		 why);
	return -EPROTO;
}

static void progress(struct rx *rx)
{
	if (rx->o.progress)
		rx->o.progress(rx->o.arg, &rx->st);
}

/* ---- entries ---- */

static int store_entry(struct rx *rx, const struct tree_entry *e,
		       struct rx_entry **out)
{
	struct rx_entry *re;

	if (rx->n == rx->cap) {
		size_t cap = rx->cap ? rx->cap * 2 : 1024;

		re = realloc(rx->ents, cap * sizeof(*re));
		if (!re)
			return -ENOMEM;
		rx->ents = re;
		rx->cap = cap;
	}
	if (rx->arena_len + e->comps_len > rx->arena_cap) {
		size_t cap = (rx->arena_cap + e->comps_len) * 2;
		uint8_t *a = realloc(rx->arena, cap);

		if (!a)
			return -ENOMEM;
		rx->arena = a;
		rx->arena_cap = cap;
	}
	re = &rx->ents[rx->n++];
	*re = (struct rx_entry){
		.kind = e->kind,
		.ncomp = e->ncomp,
		.mode = e->mode,
		.uid = e->uid,
		.gid = e->gid,
		.link = e->link,
		.mtime_ns = e->mtime_ns,
		.atime_ns = e->atime_ns,
		.mtime_s = e->mtime_s,
		.atime_s = e->atime_s,
		.size = e->size,
		.rdev = e->rdev,
		.path = rx->arena_len,
		.path_len = e->comps_len,
	};
	memcpy(rx->arena + rx->arena_len, e->comps, e->comps_len);
	rx->arena_len += e->comps_len;
	*out = re;
	return 0;
}

static void count(struct rx *rx, const struct rx_entry *re)
{
	rx->st.entries++;
	if (re->kind == TK_FILE) {
		rx->st.files++;
		rx->st.bytes_total += re->size;
	} else if (re->kind == TK_DIR) {
		rx->st.dirs++;
	} else if (re->kind == TK_SYMLINK) {
		rx->st.symlinks++;
	} else if (re->kind == TK_HARDLINK) {
		rx->st.hardlinks++;
	} else {
		rx->st.specials++;
	}
}

static int want_file(struct rx *rx, struct rx_entry *re)
{
	uint8_t b[24] = { 0 };
	uint64_t off, hash;
	int w = rx_decide(rx, re, &off, &hash);

	if (w == -EPERM)
		w = TW_REFUSE;
	if (w < 0)
		return w;
	re->want = (uint8_t)w;
	re->woff = off;
	re->state = w == TW_REFUSE ? RS_FAILED : RS_WANTED;
	if (w == TW_KEEP) {
		re->state = RS_DONE;
		rx->st.files_present++;
		rx->st.bytes_done += re->size;
	}
	tbsi_le_put32(b, (uint32_t)(re - rx->ents));
	b[4] = (uint8_t)w;
	b[5] = re->wflags;
	tbsi_le_put64(b + 8, off);
	tbsi_le_put64(b + 16, hash);
	return rx_put(rx, TM_WANT, b, sizeof(b));
}

static int on_entry(struct rx *rx, const struct tree_entry *e)
{
	struct rx_entry *re;
	int r;

	if (!rx->started || rx->listed)
		return violation(rx, "an entry out of place");
	if (e->index != rx->n)
		return violation(rx, "entry %u out of order", e->index);
	if (rx->n >= rx->o.max_entries)
		return violation(rx, "more than %llu entries (the limit)",
				 (unsigned long long)rx->o.max_entries);
	if (rx->arena_len + e->comps_len > ARENA_MAX)
		return violation(rx, "more path bytes than the limit");
	if (e->size > rx->o.max_file_size)
		return violation(rx, "a file of %llu bytes (limit %llu)",
				 (unsigned long long)e->size,
				 (unsigned long long)rx->o.max_file_size);
	r = store_entry(rx, e, &re);
	if (r)
		return r;
	count(rx, re);
	switch (re->kind) {
	case TK_FILE:
		r = want_file(rx, re);
		break;
	case TK_DIR:
		r = rx_mkdir(rx, re);
		break;
	case TK_SYMLINK:
		r = rx_symlink(rx, re, e->target, e->target_len);
		if (!r)
			re->state = RS_DONE;
		break;
	case TK_HARDLINK:
		r = 0; /* made once its file is in place */
		break;
	default:
		r = rx_special(rx, re);
		if (!r)
			re->state = RS_DONE;
	}
	return r == -EPERM ? 0 : r;
}

/* ---- file data ---- */

static struct rx_entry *data_entry(struct rx *rx, uint32_t idx)
{
	if (!rx->cur.active || rx->cur.index != idx)
		return NULL;
	return &rx->ents[idx];
}

static int on_file(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re;
	struct rx_file *f = &rx->cur;
	bool ok_full, ok_resume;

	if (f->active || m->index >= rx->n)
		return violation(rx, "file data out of place");
	re = &rx->ents[m->index];
	ok_full = re->want == TW_FULL || re->want == TW_RESUME ||
		  (re->want == TW_VERIFY && (re->wflags & TWF_REPLACE));
	ok_resume = re->want == TW_RESUME && m->a == re->woff && re->resume;
	if (re->kind != TK_FILE || re->state != RS_WANTED ||
	    !(m->a ? ok_resume : ok_full))
		return violation(rx, "data for a file it was not asked for");
	*f = (struct rx_file){ .active = true,
			       .index = m->index,
			       .pos = m->a,
			       .ckpt_pos = m->a,
			       .ckpt_ms = tbsi_now_ms(),
			       .hash = f->hash };
	if (m->a) {
		tree_hash_free(f->hash);
		f->hash = re->resume;
		re->resume = NULL;
		rx->st.files_resumed++;
		rx->st.bytes_resumed += m->a;
	} else {
		tree_hash_reset(f->hash);
	}
	f->fd = rx_open_tmp(rx, re, m->a);
	return f->fd == -EPERM ? 0 : f->fd < 0 ? f->fd : 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	ssize_t w;

	while (n) {
		w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int on_data(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = data_entry(rx, m->index);
	struct rx_file *f = &rx->cur;
	int r;

	if (!re)
		return violation(rx, "data for a file not begun");
	if (m->a < f->pos || m->a > re->size || m->len > re->size - m->a)
		return violation(rx, "data at offset %llu outside the file",
				 (unsigned long long)m->a);
	tree_hash_zeros(f->hash, m->a - f->pos);
	tree_hash_update(f->hash, m->data, m->len);
	f->pos = m->a + m->len;
	rx->st.bytes_data += m->len;
	if (f->fd < 0)
		return 0;
	r = write_all(f->fd, m->data, m->len, m->a);
	if (r) {
		close(f->fd);
		f->fd = -1;
		rx_drop_tmp(rx, re);
		r = rx_refuse(rx, re, "writing: %s", strerror(-r));
		return r == -EPERM ? 0 : r;
	}
	rx_writeback(rx);
	rx_checkpoint(rx, re, false);
	return 0;
}

static int pend(struct rx *rx, uint32_t idx)
{
	if (rx->npend == rx->pend_cap) {
		size_t cap = rx->pend_cap ? rx->pend_cap * 2 : 64;
		uint32_t *p = realloc(rx->pend, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		rx->pend = p;
		rx->pend_cap = cap;
	}
	if (!rx->npend)
		rx->pend_ms = tbsi_now_ms();
	rx->pend[rx->npend++] = idx;
	rx->pend_bytes += rx->ents[idx].size;
	rx->ents[idx].state = RS_PENDING;
	return 0;
}

static int on_file_end(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = data_entry(rx, m->index);
	struct rx_file *f = &rx->cur;
	int r;

	if (!re || m->a != re->size)
		return violation(rx, "the end of a file not begun");
	tree_hash_zeros(f->hash, re->size - f->pos);
	f->active = false;
	if (f->fd < 0)
		return 0;
	if (tree_hash_digest(f->hash) != m->b) {
		close(f->fd);
		f->fd = -1;
		rx_drop_tmp(rx, re);
		r = rx_refuse(rx, re,
			      "its content does not match the sender's hash; "
			      "not kept (send it again)");
		return r == -EPERM ? 0 : r;
	}
	r = rx_finish_file(rx, re);
	if (r)
		return r == -EPERM ? 0 : r;
	return pend(rx, m->index);
}

static int on_skip(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re;

	if (m->index >= rx->n || rx->ents[m->index].kind != TK_FILE ||
	    (rx->cur.active && rx->cur.index != m->index))
		return violation(rx, "a skip of an unknown file");
	re = &rx->ents[m->index];
	if (rx->cur.active) {
		rx->cur.active = false;
		if (rx->cur.fd >= 0)
			close(rx->cur.fd);
		rx->cur.fd = -1;
		rx_drop_tmp(rx, re);
	}
	if (re->state != RS_WANTED)
		return 0;
	if (m->u32 == TS_SAME && re->want == TW_VERIFY) {
		re->state = RS_DONE;
		rx->st.files_present++;
		rx->st.bytes_done += re->size;
		return 0;
	}
	re->state = RS_FAILED;
	rx->st.failed++;
	return 0;
}

/* ---- the message dispatcher ---- */

static int on_start(struct rx *rx, const struct tree_msg *m)
{
	if (rx->started)
		return violation(rx, "a second start");
	if (m->u32 != TREE_VERSION)
		return violation(rx,
				 "file-tree protocol version %u (this is 1)",
				 m->u32);
	if (m->a > rx->o.max_entries)
		return violation(rx, "a list of %llu entries (limit %llu)",
				 (unsigned long long)m->a,
				 (unsigned long long)rx->o.max_entries);
	rx->started = true;
	return 0;
}

static int on_msg(void *arg, const struct tree_msg *m)
{
	struct rx *rx = arg;

	if (rx->done)
		return violation(rx, "messages after the end");
	switch (m->type) {
	case TM_START:
		return on_start(rx, m);
	case TM_ENTRY:
		return on_entry(rx, &m->e);
	case TM_LISTED:
		if (!rx->started || rx->listed || m->a != rx->n)
			return violation(rx, "a wrong count of entries");
		rx->listed = true;
		return 0;
	case TM_FILE:
		return rx->listed ? on_file(rx, m)
				  : violation(rx, "data before the list");
	case TM_DATA:
		return on_data(rx, m);
	case TM_FILE_END:
		return on_file_end(rx, m);
	case TM_SKIP:
		return on_skip(rx, m);
	case TM_DONE:
		if (!rx->listed || rx->cur.active || m->a != rx->n)
			return violation(rx, "an early end");
		rx->done = true;
		return 0;
	default:
		return violation(
			rx, "a message of type %u, which only a receiver sends",
			m->type);
	}
}

static int maybe_commit(struct rx *rx, bool idle)
{
	if (!rx->npend)
		return 0;
	if (idle || rx->npend >= COMMIT_FILES ||
	    rx->pend_bytes >= COMMIT_BYTES ||
	    tbsi_now_ms() - rx->pend_ms >= COMMIT_MS)
		return rx_commit(rx);
	return 0;
}

static int session_err(struct rx *rx, int r)
{
	const char *m = tbs_session_error(rx->s);

	if (rx->cur.active)
		rx_checkpoint(rx, &rx->ents[rx->cur.index], true);
	if (r == 0)
		return tbsi_err(rx->err, -ECONNRESET,
				"the sender ended the transfer early");
	return tbsi_err(rx->err, r, "%s", m && m[0] ? m : strerror(-r));
}

static int one_record(struct rx *rx)
{
	char why[200] = "";
	uint16_t type;
	ssize_t n;
	int r;

	n = tbs_session_recv(rx->s, &type, rx->buf, TREE_REC_MAX, IDLE_POLL_MS);
	if (n == -EAGAIN) {
		r = maybe_commit(rx, true);
		return r ? r : flush(rx);
	}
	if (n <= 0)
		return session_err(rx, (int)n);
	if (type != TBS_TREE_APP)
		return violation(rx, "a record of type %u, not a file tree",
				 type);
	r = tree_parse_record(rx->buf, (size_t)n, on_msg, rx, why, sizeof(why));
	if (r == -EPROTO && !rx->fatal[0])
		violation(rx, "%s", why);
	if (!r)
		r = maybe_commit(rx, false);
	if (!r)
		r = flush(rx);
	progress(rx);
	return r;
}

static int finish(struct rx *rx)
{
	uint8_t b[16];
	ssize_t n;
	int r = rx_finalize(rx);

	if (r)
		return r;
	tbsi_le_put64(b, rx->st.entries - rx->st.failed);
	tbsi_le_put64(b + 8, rx->st.failed);
	r = rx_put(rx, TM_FINISH, b, sizeof(b));
	if (!r)
		r = flush(rx);
	if (r)
		return session_err(rx, r);
	progress(rx);
	n = tbs_session_recv(rx->s, NULL, rx->buf, TREE_REC_MAX, -1);
	if (n != 0)
		return n > 0 ? violation(rx, "%s", "data after the end")
			     : session_err(rx, (int)n);
	return tbs_session_confirm(rx->s);
}

/* Tells the sender why the transfer ends, waits until it heard it. */
static int give_up(struct rx *rx)
{
	if (!put_fail(rx, TREE_NONE, EPROTO, rx->fatal) && !flush(rx))
		tbs_session_finish(rx->s);
	return tbsi_err(rx->err, -EPROTO, "%s", rx->fatal);
}

static int run(struct rx *rx)
{
	int r = 0;

	while (!r && !rx->done)
		r = one_record(rx);
	if (r == -EPROTO && rx->fatal[0]) {
		if (rx->cur.active && rx->cur.fd >= 0) {
			close(rx->cur.fd);
			rx->cur.fd = -1;
			rx_drop_tmp(rx, &rx->ents[rx->cur.index]);
		}
		return give_up(rx);
	}
	if (r)
		return r;
	r = finish(rx);
	if (r == -EPROTO && rx->fatal[0])
		return give_up(rx);
	if (r || !rx->st.failed)
		return r;
	return tbsi_err(rx->err, -EIO,
			"%llu %s refused or failed (see the messages above)",
			(unsigned long long)rx->st.failed,
			rx->st.failed == 1 ? "entry was" : "entries were");
}

static int open_dir(struct rx *rx, const char *dir)
{
	if (mkdir(dir, 0777) && errno != EEXIST)
		return tbsi_err(rx->err, -errno, "cannot create '%s': %s", dir,
				strerror(errno));
	rx->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rx->root < 0)
		return tbsi_err(rx->err, -errno, "cannot open '%s': %s", dir,
				strerror(errno));
	rx->syncfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rx->syncfd < 0)
		return tbsi_err(rx->err, -errno, "cannot open '%s': %s", dir,
				strerror(errno));
	return 0;
}

static int rx_init(struct rx *rx, struct tbs_session *s, const char *dir,
		   const struct tbs_tree_opts *opts, struct tbs_error *err)
{
	int r;

	memset(rx, 0, sizeof(*rx));
	rx->s = s;
	rx->err = err;
	rx->root = rx->syncfd = rx->pfd = -1;
	rx->cur.fd = -1;
	r = TBSI_OPTS_LOAD(&rx->o, opts, arg, arg);
	if (r)
		return tbsi_err(err, r, "struct tbs_tree_opts is not valid");
	if (!rx->o.max_entries || rx->o.max_entries > TREE_NONE - 1)
		rx->o.max_entries = DEF_MAX_ENTRIES;
	if (!rx->o.max_file_size)
		rx->o.max_file_size = DEF_MAX_FILE_SIZE;
	rx->is_root = geteuid() == 0;
	rx->out = malloc(TREE_REC_MAX);
	rx->buf = malloc(TREE_REC_MAX);
	rx->hbuf = malloc(TREE_REC_MAX);
	rx->cur.hash = tree_hash_new();
	if (!rx->out || !rx->buf || !rx->hbuf || !rx->cur.hash)
		return tbsi_err(err, -ENOMEM, "out of memory");
	return open_dir(rx, dir);
}

static void rx_free(struct rx *rx)
{
	size_t i;

	if (rx->cur.fd >= 0)
		close(rx->cur.fd);
	for (i = 0; i < rx->n; i++)
		tree_hash_free(rx->ents[i].resume);
	if (rx->pfd >= 0)
		close(rx->pfd);
	if (rx->root >= 0)
		close(rx->root);
	if (rx->syncfd >= 0)
		close(rx->syncfd);
	tree_hash_free(rx->cur.hash);
	free(rx->ents);
	free(rx->arena);
	free(rx->pend);
	free(rx->fresh);
	free(rx->out);
	free(rx->buf);
	free(rx->hbuf);
}

int tbs_tree_recv(struct tbs_session *s, const char *dir,
		  const struct tbs_tree_opts *opts, struct tbs_tree_stats *st,
		  struct tbs_error *err)
{
	struct rx rx;
	int r;

	r = rx_init(&rx, s, dir, opts, err);
	if (!r)
		r = run(&rx);
	if (st)
		*st = rx.st;
	rx_free(&rx);
	return r;
}
