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
#include <xxhash.h>

#include "tree-recv.h"

#define DEF_MAX_ENTRIES (16u << 20)
#define DEF_MAX_FILE_SIZE (1ull << 50)
#define ARENA_MAX (1ull << 30) /* bytes of last names */
#define COMMIT_FILES 8192
#define COMMIT_BYTES (256ull << 20)
#define COMMIT_MS 2000
#define IDLE_POLL_MS 300
#define END_WAIT_MS 60000 /* for the sender's end after FINISH */

int rx_put(struct rx *rx, uint8_t type, const void *body, size_t len)
{
	int r;

	if (rx->out_len + TREE_MSG_HDR + len > TREE_REC_MAX) {
		r = rx->emit(rx->emit_arg, rx->out, rx->out_len);
		if (r < 0)
			return r;
		rx->out_len = 0;
	}
	rx->out_len +=
		tree_msg_put(rx->out + rx->out_len, TREE_REC_MAX - rx->out_len,
			     type, body, len);
	return 0;
}

static int flush(struct rx *rx)
{
	int r;

	if (!rx->out_len)
		return 0;
	r = rx->emit(rx->emit_arg, rx->out, rx->out_len);
	if (r < 0)
		return r;
	rx->out_len = 0;
	return 0;
}

/* A message for the person running the receiver; the first failure is
 * kept for the final verdict, which must stand on its own (--quiet). */
static void notify(struct rx *rx, const char *msg, bool failure)
{
	if (failure && !rx->first[0])
		snprintf(rx->first, sizeof(rx->first), "%.400s", msg);
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

static void mark_failed(struct rx *rx, struct rx_entry *re)
{
	if (re->state != RS_FAILED) {
		re->state = RS_FAILED;
		rx->st.failed++;
	}
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
	notify(rx, msg, true);
	mark_failed(rx, re);
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

/* ---- entries: a parent and a name each ---- */

static uint64_t path_hash(const uint8_t *comps, size_t len)
{
	uint64_t h = XXH3_64bits(comps, len);

	return h ? h : 1;
}

/* Whether directory entry @idx has the path @comps[0, @len). */
static bool same_path(const struct rx *rx, uint32_t idx, const uint8_t *comps,
		      size_t len)
{
	struct tree_entry e = { .comps = comps, .comps_len = len };
	uint32_t up[TREE_DEPTH_MAX];
	struct tree_comp c;
	size_t pos = 0;
	int n = rx_chain(rx, idx, up), i = 0;

	while (tree_comp_next(&e, &pos, &c)) {
		const struct rx_entry *d = &rx->ents[up[i]];

		if (i == n || d->name_len != c.len ||
		    memcmp(rx->arena + d->name, c.name, c.len))
			return false;
		i++;
	}
	return i == n;
}

/* The first directory entry with path @comps[0, @len), or TREE_NONE. */
static uint32_t dir_find(const struct rx *rx, const uint8_t *comps,
			 size_t len)
{
	uint64_t h = path_hash(comps, len);
	size_t i, mask = rx->dirs_cap - 1;

	if (!rx->dirs_cap)
		return TREE_NONE;
	for (i = h & mask; rx->dirs[i].hash; i = (i + 1) & mask)
		if (rx->dirs[i].hash == h &&
		    same_path(rx, rx->dirs[i].idx, comps, len))
			return rx->dirs[i].idx;
	return TREE_NONE;
}

static void dir_put(struct rx_dir *t, size_t cap, struct rx_dir d)
{
	size_t i = d.hash & (cap - 1);

	while (t[i].hash)
		i = (i + 1) & (cap - 1);
	t[i] = d;
}

static int dir_add(struct rx *rx, uint32_t idx, const struct tree_entry *e)
{
	struct rx_dir *t;
	size_t cap, i;

	if (rx->ndirs * 2 >= rx->dirs_cap) {
		cap = rx->dirs_cap ? rx->dirs_cap * 2 : 256;
		t = calloc(cap, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (i = 0; i < rx->dirs_cap; i++)
			if (rx->dirs[i].hash)
				dir_put(t, cap, rx->dirs[i]);
		free(rx->dirs);
		rx->dirs = t;
		rx->dirs_cap = cap;
	}
	dir_put(rx->dirs, rx->dirs_cap,
		(struct rx_dir){ .hash = path_hash(e->comps, e->comps_len),
				 .idx = idx });
	rx->ndirs++;
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 1024;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

/*
 * Keeps what the receiver needs of entry @e: its parent, which must be a
 * directory listed before it (as a sender lists them), and its last name.
 */
static int store_entry(struct rx *rx, const struct tree_entry *e,
		       struct rx_entry **out)
{
	struct tree_comp c = { 0 };
	size_t pos = 0, last = 0;
	struct rx_entry *re;
	uint32_t parent = TREE_NONE;

	while (tree_comp_next(e, &pos, &c))
		if (pos < e->comps_len)
			last = pos;
	if (last && (parent = dir_find(rx, e->comps, last)) == TREE_NONE)
		return violation(rx, "an entry before its directory");
	if (grow((void **)&rx->ents, &rx->cap, rx->n + 1, sizeof(*re)) ||
	    grow((void **)&rx->arena, &rx->arena_cap, rx->arena_len + c.len, 1))
		return -ENOMEM;
	re = &rx->ents[rx->n++];
	*re = (struct rx_entry){
		.kind = e->kind,
		.name = (uint32_t)rx->arena_len,
		.name_len = (uint8_t)c.len,
		.parent = parent,
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
	};
	memcpy(rx->arena + rx->arena_len, c.name, c.len);
	rx->arena_len += c.len;
	*out = re;
	return e->kind == TK_DIR ? dir_add(rx, (uint32_t)(rx->n - 1), e) : 0;
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
	uint64_t off = 0, hash = 0;
	int w = re->state == RS_FAILED ? -EPERM : rx_decide(rx, re, &off, &hash);

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

static bool reserved(const struct tree_entry *e)
{
	struct tree_comp c;
	size_t pos = 0;

	while (tree_comp_next(e, &pos, &c))
		if (tree_name_reserved(c.name, c.len))
			return true;
	return false;
}

static int on_entry(struct rx *rx, const struct tree_entry *e)
{
	struct rx_entry *re = NULL;
	int r;

	if (!rx->started || rx->listed)
		return violation(rx, "an entry out of place");
	if (e->index != rx->n)
		return violation(rx, "entry %u out of order", e->index);
	if (rx->n >= rx->announced)
		return violation(rx, "more entries than the %llu it announced",
				 (unsigned long long)rx->announced);
	if (rx->arena_len + TREE_NAME_MAX > ARENA_MAX)
		return violation(rx, "more bytes of names than the limit");
	if (e->size > rx->o.max_file_size)
		return violation(rx, "a file of %llu bytes (limit %llu)",
				 (unsigned long long)e->size,
				 (unsigned long long)rx->o.max_file_size);
	r = store_entry(rx, e, &re);
	if (r)
		return r;
	count(rx, re);
	if (reserved(e))
		r = rx_refuse(rx, re,
			      "names beginning with '" TREE_TMP_PREFIX
			      "' are the receiver's temporary files; not "
			      "created");
	if (r && re->kind != TK_FILE)
		return r == -EPERM ? 0 : r;
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

/* The sender did not send a file it was asked for: say so, with its
 * reason. */
static int skipped(struct rx *rx, struct rx_entry *re, const struct tree_msg *m)
{
	char path[400], msg[TREE_TEXT_MAX + 512];

	rx_path(rx, re, path, sizeof(path));
	snprintf(msg, sizeof(msg), "not received '%s': %s%s%.*s", path,
		 m->u32 == TS_DIFFERS ? "it differs from the sender's and "
					"may not be replaced"
				      : "the sender could not send it",
		 m->len ? ": " : "", (int)m->len, (const char *)m->data);
	notify(rx, msg, true);
	mark_failed(rx, re);
	return 0;
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
	return skipped(rx, re, m);
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
	rx->announced = m->a;
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

/* Drops the file being written after a violation: nothing more of it. */
static void abandon(struct rx *rx)
{
	if (!rx->cur.active || rx->cur.fd < 0)
		return;
	close(rx->cur.fd);
	rx->cur.fd = -1;
	rx->cur.active = false;
	rx_drop_tmp(rx, &rx->ents[rx->cur.index]);
}

/**
 * rx_record() - handle one record of the sender
 * @rx:   receiver
 * @type: the record's application type
 * @buf:  its bytes
 * @len:  their count
 *
 * Return: 0; -EPROTO when the sender broke the protocol (@rx->fatal says
 * how, the file being written is dropped); another negative errno when
 * the receiver cannot go on.
 */
int rx_record(struct rx *rx, uint16_t type, const uint8_t *buf, size_t len)
{
	char why[200] = "";
	int r;

	if (type != TBS_TREE_APP)
		r = violation(rx, "a record of type %u, not a file tree", type);
	else
		r = tree_parse_record(buf, len, on_msg, rx, why, sizeof(why));
	if (r == -EPROTO && !rx->fatal[0])
		violation(rx, "%s", why);
	if (r == -EPROTO)
		abandon(rx);
	if (!r)
		r = maybe_commit(rx, false);
	if (!r)
		r = flush(rx);
	progress(rx);
	return r;
}

/* Nothing came for a while: commit what is pending, answer what is. */
int rx_idle(struct rx *rx)
{
	int r = maybe_commit(rx, true);

	return r ? r : flush(rx);
}

/* After DONE: links, directories, the last sync, then FINISH. */
int rx_end(struct rx *rx)
{
	uint8_t b[16];
	int r;

	if (!rx->done)
		return violation(rx, "%s", "no end");
	r = rx_finalize(rx);
	if (r)
		return r;
	tbsi_le_put64(b, rx->st.entries - rx->st.failed);
	tbsi_le_put64(b + 8, rx->st.failed);
	r = rx_put(rx, TM_FINISH, b, sizeof(b));
	if (!r)
		r = flush(rx);
	progress(rx);
	return r;
}

static int open_dir(struct rx *rx, const char *dir)
{
	struct stat sb;
	int fd;

	if (mkdir(dir, 0777) && errno != EEXIST)
		return tbsi_err(rx->err, -errno, "cannot create '%s': %s", dir,
				strerror(errno));
	rx->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rx->root < 0)
		return tbsi_err(rx->err, -errno, "cannot open '%s': %s", dir,
				strerror(errno));
	rx->fs = calloc(1, sizeof(*rx->fs));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!rx->fs || fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		return tbsi_err(rx->err, rx->fs ? -errno : -ENOMEM,
				"cannot open '%s': %s", dir,
				strerror(rx->fs ? errno : ENOMEM));
	}
	rx->fs[0] = (struct rx_fs){ .dev = sb.st_dev, .fd = fd };
	rx->nfs = 1;
	return 0;
}

/**
 * rx_open() - set up a receiver on a directory
 * @rx:       receiver to set up (rx_close() it in every case)
 * @dir:      the directory, created when missing
 * @opts:     options, or NULL
 * @emit:     sends a record of messages to the sender
 * @emit_arg: passed to @emit
 * @err:      receives the reason of a failure
 *
 * Return: 0 or a negative errno.
 */
int rx_open(struct rx *rx, const char *dir, const struct tbs_tree_opts *opts,
	    rx_emit_fn emit, void *emit_arg, struct tbs_error *err)
{
	int r;

	memset(rx, 0, sizeof(*rx));
	rx->emit = emit;
	rx->emit_arg = emit_arg;
	rx->err = err;
	rx->root = rx->pfd = -1;
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
	rx->hbuf = malloc(TREE_REC_MAX);
	rx->cur.hash = tree_hash_new();
	if (!rx->out || !rx->hbuf || !rx->cur.hash)
		return tbsi_err(err, -ENOMEM, "out of memory");
	return open_dir(rx, dir);
}

void rx_close(struct rx *rx)
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
	rx_fs_free(rx);
	tree_hash_free(rx->cur.hash);
	free(rx->ents);
	free(rx->arena);
	free(rx->pend);
	free(rx->dirs);
	free(rx->out);
	free(rx->hbuf);
}

/* ---- over a session ---- */

static int session_emit(void *arg, const uint8_t *buf, size_t len)
{
	ssize_t r = tbs_session_send(arg, TBS_TREE_APP, buf, len, -1);

	return r < 0 ? (int)r : 0;
}

static int session_err(struct rx *rx, struct tbs_session *s, int r)
{
	const char *m = tbs_session_error(s);

	if (rx->cur.active)
		rx_checkpoint(rx, &rx->ents[rx->cur.index], true);
	if (r == 0)
		return tbsi_err(rx->err, -ECONNRESET,
				"the sender ended the transfer early");
	return tbsi_err(rx->err, r, "%s", m && m[0] ? m : strerror(-r));
}

static int one_record(struct rx *rx, struct tbs_session *s, uint8_t *buf)
{
	uint16_t type;
	ssize_t n;

	n = tbs_session_recv(s, &type, buf, TREE_REC_MAX, IDLE_POLL_MS);
	if (n == -EAGAIN)
		return rx_idle(rx);
	if (n <= 0)
		return session_err(rx, s, (int)n);
	return rx_record(rx, type, buf, (size_t)n);
}

/* After FINISH: the sender ends its stream, which is then confirmed. */
static int finish(struct rx *rx, struct tbs_session *s, uint8_t *buf)
{
	ssize_t n;
	int r = rx_end(rx);

	if (r == -EPROTO && rx->fatal[0])
		return r;
	if (r) /* a local failure already explained, or the session's */
		return rx->err->code == r ? r : session_err(rx, s, r);
	n = tbs_session_recv(s, NULL, buf, TREE_REC_MAX, END_WAIT_MS);
	if (n == -EAGAIN)
		return tbsi_err(rx->err, -ETIMEDOUT,
				"the sender did not end the transfer within "
				"%d s of its end (every file is in place)",
				END_WAIT_MS / 1000);
	if (n != 0)
		return n > 0 ? violation(rx, "%s", "data after the end")
			     : session_err(rx, s, (int)n);
	return tbs_session_confirm(s);
}

/* Tells the sender why the transfer ends, waits until it heard it. */
static int give_up(struct rx *rx, struct tbs_session *s)
{
	if (!put_fail(rx, TREE_NONE, EPROTO, rx->fatal) && !flush(rx))
		tbs_session_finish(s);
	return tbsi_err(rx->err, -EPROTO, "%s", rx->fatal);
}

static int verdict(struct rx *rx)
{
	unsigned long long n = rx->st.failed;

	if (!n)
		return 0;
	return tbsi_err(rx->err, -EIO, "%llu %s refused or failed; %s%s", n,
			n == 1 ? "entry was" : "entries were",
			n == 1 ? "" : "the first: ", rx->first);
}

static int run(struct rx *rx, struct tbs_session *s)
{
	uint8_t *buf = malloc(TREE_REC_MAX);
	int r = buf ? 0 : tbsi_err(rx->err, -ENOMEM, "out of memory");

	while (!r && !rx->done)
		r = one_record(rx, s, buf);
	if (!r)
		r = finish(rx, s, buf);
	free(buf);
	if (r == -EPROTO && rx->fatal[0])
		return give_up(rx, s);
	return r ? r : verdict(rx);
}

int tbs_tree_recv(struct tbs_session *s, const char *dir,
		  const struct tbs_tree_opts *opts, struct tbs_tree_stats *st,
		  struct tbs_error *err)
{
	struct tbs_error e = { 0 };
	struct rx rx;
	int r;

	r = rx_open(&rx, dir, opts, session_emit, s, err ? err : &e);
	if (!r)
		r = run(&rx, s);
	if (st)
		*st = rx.st;
	rx_close(&rx);
	return r;
}
