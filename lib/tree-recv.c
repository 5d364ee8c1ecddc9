// SPDX-License-Identifier: MIT
/*
 * The file-tree receiver, protocol side: reads the sender's records, checks
 * every message against what came before (index order, tree order, sizes,
 * offsets, limits), answers each regular file with WANT, writes file data
 * through tree-apply.c, commits finished files in batches and confirms
 * them, removes what the sender no longer has (--delete, tree-mirror.c)
 * and ends with FINISH.  A message that breaks the protocol ends the
 * transfer (FAIL for the whole transfer); an entry that cannot be written
 * is refused alone (FAIL for that entry) and the others go on.
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
#define NAMES_MAX (1ull << 30) /* bytes of names kept */
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

void rx_warn(struct rx *rx, const char *fmt, ...)
{
	char msg[TBS_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rx->st.warnings++;
	notify(rx, msg, false);
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

static void mark_failed(struct rx *rx, struct rx_node *n)
{
	if (n->state != RS_FAILED) {
		n->state = RS_FAILED;
		rx->st.failed++;
	}
}

/* Refuses entry @n with a message; returns -EPERM (or the send error). */
int rx_refuse(struct rx *rx, struct rx_node *n, const char *fmt, ...)
{
	char path[400], why[400], msg[TREE_TEXT_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rx_path(rx, n, path, sizeof(path));
	snprintf(msg, sizeof(msg), "refused '%s': %s", path, why);
	notify(rx, msg, true);
	mark_failed(rx, n);
	r = put_fail(rx, n->index, EPERM, msg);
	return r ? r : -EPERM;
}

/* The sender broke the protocol: nothing more is accepted. */
int rx_violation(struct rx *rx, const char *fmt, ...)
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

/* ---- entries: directories for good, the others in a window ---- */

int rx_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 64;
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

struct rx_entry *rx_ent(struct rx *rx, uint64_t idx)
{
	if (idx < rx->base || idx >= rx->n)
		return NULL;
	return &rx->win[idx & (rx->win_cap - 1)];
}

const uint8_t *rx_name(const struct rx *rx, const struct rx_node *n)
{
	if (n->arena == RA_DIR)
		return rx->darena + n->name;
	if (n->arena == RA_LINK)
		return rx->larena + n->name;
	return rx->warena + n->name;
}

static uint64_t path_hash(const uint8_t *comps, size_t len)
{
	uint64_t h = XXH3_64bits(comps, len);

	return h ? h : 1;
}

/* Whether directory @id has the path @comps[0, @len). */
static bool same_path(const struct rx *rx, uint32_t id, const uint8_t *comps,
		      size_t len)
{
	struct tree_entry e = { .comps = comps, .comps_len = len };
	uint32_t up[TREE_DEPTH_MAX];
	struct tree_comp c;
	size_t pos = 0;
	int n = rx_chain(rx, id, up), i = 0;

	while (tree_comp_next(&e, &pos, &c)) {
		const struct rx_dir *d = &rx->dirs[up[i]];

		if (i == n || d->n.name_len != c.len ||
		    memcmp(rx->darena + d->n.name, c.name, c.len))
			return false;
		i++;
	}
	return i == n;
}

static void slot_put(struct rx_slot *t, size_t cap, struct rx_slot s)
{
	size_t i = s.hash & (cap - 1);

	while (t[i].hash)
		i = (i + 1) & (cap - 1);
	t[i] = s;
}

/* Adds (@hash, @id) to table @t of @n entries; 0 or -ENOMEM. */
static int slot_add(struct rx_slot **t, size_t *cap, size_t n, uint64_t hash,
		    uint32_t id)
{
	struct rx_slot *nt;
	size_t c, i;

	if (n * 2 >= *cap) {
		c = *cap ? *cap * 2 : 256;
		nt = calloc(c, sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		for (i = 0; i < *cap; i++)
			if ((*t)[i].hash)
				slot_put(nt, c, (*t)[i]);
		free(*t);
		*t = nt;
		*cap = c;
	}
	slot_put(*t, *cap, (struct rx_slot){ .hash = hash, .id = id });
	return 0;
}

/* The first directory with path @comps[0, @len), or TREE_NONE. */
static uint32_t dir_find(const struct rx *rx, const uint8_t *comps,
			 size_t len)
{
	uint64_t h = path_hash(comps, len);
	size_t i, mask = rx->dtab_cap - 1;

	if (!rx->dtab_cap)
		return TREE_NONE;
	for (i = h & mask; rx->dtab[i].hash; i = (i + 1) & mask)
		if (rx->dtab[i].hash == h &&
		    same_path(rx, rx->dtab[i].id, comps, len))
			return rx->dtab[i].id;
	return TREE_NONE;
}

static bool names_full(const struct rx *rx)
{
	return (uint64_t)rx->darena_len + rx->larena_len +
		       (rx->warena_len - rx->warena_start) + TREE_NAME_MAX >
	       NAMES_MAX;
}

static int new_dir(struct rx *rx, const struct tree_entry *e, uint32_t parent,
		   const struct tree_comp *c, struct rx_dir **out)
{
	struct rx_dir *d;
	uint32_t id = (uint32_t)rx->ndirs;

	if (rx_grow((void **)&rx->dirs, &rx->dirs_cap, rx->ndirs + 1,
		    sizeof(*d)) ||
	    rx_grow((void **)&rx->darena, &rx->darena_cap,
		    rx->darena_len + c->len, 1) ||
	    slot_add(&rx->dtab, &rx->dtab_cap, rx->ndirs,
		     path_hash(e->comps, e->comps_len), id))
		return -ENOMEM;
	d = &rx->dirs[rx->ndirs++];
	*d = (struct rx_dir){
		.n = { .index = e->index,
		       .parent = parent,
		       .name = (uint32_t)rx->darena_len,
		       .name_len = (uint8_t)c->len,
		       .kind = TK_DIR,
		       .arena = RA_DIR },
		.mode = e->mode,
		.uid = rx_map_id(rx, TN_USER, e->uid),
		.gid = rx_map_id(rx, TN_GROUP, e->gid),
		.mtime_ns = e->mtime_ns,
		.atime_ns = e->atime_ns,
		.mtime_s = e->mtime_s,
		.atime_s = e->atime_s,
	};
	memcpy(rx->darena + rx->darena_len, c->name, c->len);
	rx->darena_len += c->len;
	*out = d;
	return 0;
}

/* Makes room for one more entry in the window. */
static int win_room(struct rx *rx, size_t name_len)
{
	struct rx_entry *nw;
	size_t cap;
	uint64_t i;

	if (rx_grow((void **)&rx->warena, &rx->warena_cap,
		    rx->warena_len + name_len, 1))
		return -ENOMEM;
	if (rx->n - rx->base < rx->win_cap)
		return 0;
	cap = rx->win_cap ? rx->win_cap * 2 : 1024;
	nw = malloc(cap * sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	for (i = rx->base; i < rx->n; i++)
		nw[i & (cap - 1)] = rx->win[i & (rx->win_cap - 1)];
	free(rx->win);
	rx->win = nw;
	rx->win_cap = cap;
	return 0;
}

/*
 * Keeps entry @e: its parent, which must be a directory listed before it
 * (as a sender lists them), its last name and what the receiver needs.
 */
static int store_entry(struct rx *rx, const struct tree_entry *e,
		       struct rx_entry **out)
{
	struct tree_comp c = { 0 };
	size_t pos = 0, last = 0;
	uint32_t parent = TREE_NONE;
	struct rx_dir *d = NULL;
	struct rx_entry *re;
	int r;

	while (tree_comp_next(e, &pos, &c))
		if (pos < e->comps_len)
			last = pos;
	if (last && (parent = dir_find(rx, e->comps, last)) == TREE_NONE)
		return rx_violation(rx, "an entry before its directory");
	r = rx_tree_enter(rx, parent, c.name, c.len);
	if (!r)
		r = win_room(rx, e->kind == TK_DIR ? 0 : c.len);
	if (r)
		return r;
	re = &rx->win[rx->n & (rx->win_cap - 1)];
	*re = (struct rx_entry){
		.n = { .index = e->index, .parent = parent, .kind = e->kind,
		       .name_len = (uint8_t)c.len, .arena = RA_WIN,
		       .name = (uint32_t)rx->warena_len },
		.eflags = e->flags,
		.mode = e->mode,
		.uid = rx_map_id(rx, TN_USER, e->uid),
		.gid = rx_map_id(rx, TN_GROUP, e->gid),
		.link = e->link,
		.mtime_ns = e->mtime_ns,
		.atime_ns = e->atime_ns,
		.mtime_s = e->mtime_s,
		.atime_s = e->atime_s,
		.size = e->size,
		.rdev = e->rdev,
	};
	rx->n++;
	if (e->kind == TK_DIR) {
		r = new_dir(rx, e, parent, &c, &d);
		re->dir = d ? (uint32_t)(d - rx->dirs) : 0;
	} else {
		memcpy(rx->warena + rx->warena_len, c.name, c.len);
		rx->warena_len += c.len;
	}
	*out = re;
	return r;
}

/* The node to report for entry @re: a directory's own. */
static struct rx_node *node_of(struct rx *rx, struct rx_entry *re)
{
	return re->n.kind == TK_DIR ? &rx->dirs[re->dir].n : &re->n;
}

static void count(struct rx *rx, const struct rx_entry *re)
{
	rx->st.entries++;
	if (re->n.kind == TK_FILE) {
		rx->st.files++;
		rx->st.bytes_total += re->size;
	} else if (re->n.kind == TK_DIR) {
		rx->st.dirs++;
	} else if (re->n.kind == TK_SYMLINK) {
		rx->st.symlinks++;
	} else if (re->n.kind == TK_HARDLINK) {
		rx->st.hardlinks++;
	} else {
		rx->st.specials++;
	}
}

/* ---- retiring entries no longer needed ---- */

struct rx_link *rx_link_find(struct rx *rx, uint32_t idx)
{
	uint64_t h = (uint64_t)idx + 1;
	size_t i, mask = rx->ltab_cap - 1;

	if (!rx->ltab_cap)
		return NULL;
	for (i = h & mask; rx->ltab[i].hash; i = (i + 1) & mask)
		if (rx->ltab[i].hash == h)
			return &rx->links[rx->ltab[i].id];
	return NULL;
}

/* A file with further names leaves the window: what its links need. */
static int keep_link(struct rx *rx, const struct rx_entry *re)
{
	struct rx_link *l;

	if (rx_grow((void **)&rx->links, &rx->links_cap, rx->nlinks + 1,
		    sizeof(*l)) ||
	    rx_grow((void **)&rx->larena, &rx->larena_cap,
		    rx->larena_len + re->n.name_len, 1) ||
	    slot_add(&rx->ltab, &rx->ltab_cap, rx->nlinks,
		     (uint64_t)re->n.index + 1, (uint32_t)rx->nlinks))
		return -ENOMEM;
	l = &rx->links[rx->nlinks++];
	*l = (struct rx_link){ .n = re->n,
			       .want = re->want,
			       .dev = re->dev,
			       .ino = re->ino };
	l->n.arena = RA_LINK;
	l->n.name = (uint32_t)rx->larena_len;
	memcpy(rx->larena + rx->larena_len, rx_name(rx, &re->n),
	       re->n.name_len);
	rx->larena_len += re->n.name_len;
	return 0;
}

static bool finished(const struct rx *rx, const struct rx_entry *re)
{
	return (re->n.state == RS_DONE || re->n.state == RS_FAILED) &&
	       !(rx->cur.active && rx->cur.index == re->n.index);
}

/* Moves the names still needed to the front of their arena. */
static void compact_names(struct rx *rx)
{
	size_t start = rx->warena_start;
	uint64_t i;

	if (start < (64u << 10) || start < rx->warena_len / 2)
		return;
	memmove(rx->warena, rx->warena + start, rx->warena_len - start);
	rx->warena_len -= start;
	rx->warena_start = 0;
	for (i = rx->base; i < rx->n; i++)
		if (rx->win[i & (rx->win_cap - 1)].n.kind != TK_DIR)
			rx->win[i & (rx->win_cap - 1)].n.name -= (uint32_t)start;
}

/* Drops the entries at the start of the window that are done with. */
static int retire(struct rx *rx)
{
	struct rx_entry *re;

	while (rx->base < rx->n) {
		re = &rx->win[rx->base & (rx->win_cap - 1)];
		if (!finished(rx, re))
			break;
		if ((re->eflags & TEF_LINKED) && keep_link(rx, re))
			return -ENOMEM;
		tree_hash_free(re->resume);
		re->resume = NULL;
		rx->base++;
	}
	rx->warena_start = rx->warena_len;
	for (uint64_t i = rx->base; i < rx->n; i++) {
		re = &rx->win[i & (rx->win_cap - 1)];
		if (re->n.kind != TK_DIR) {
			rx->warena_start = re->n.name;
			break;
		}
	}
	compact_names(rx);
	return 0;
}

/* ---- the entries ---- */

static int want_file(struct rx *rx, struct rx_entry *re)
{
	uint8_t b[24] = { 0 }; /* the last 8: reserved, zero */
	uint64_t off = 0;
	int w = re->n.state == RS_FAILED ? -EPERM : rx_decide(rx, re, &off);

	if (w == -EPERM)
		w = TW_REFUSE;
	if (w < 0)
		return w;
	re->want = (uint8_t)w;
	re->woff = off;
	re->n.state = w == TW_REFUSE ? RS_FAILED : RS_WANTED;
	if (w == TW_KEEP || w == TW_SAME || (rx->dry && w != TW_REFUSE)) {
		re->n.state = RS_DONE;
		if (w == TW_KEEP || w == TW_SAME) {
			rx->st.files_present++;
			rx->st.bytes_done += re->size;
		}
	}
	if (rx->dry && (w == TW_FULL || w == TW_RESUME)) {
		re->wflags |= TWF_DRY;
		rx_change(rx, re->wflags & TWF_REPLACE ? TBS_TREE_REPLACED
						       : TBS_TREE_CREATED,
			  &re->n);
	}
	if (w == TW_FULL)
		rx_ahead_fill(rx);
	tbsi_le_put32(b, re->n.index);
	b[4] = (uint8_t)w;
	b[5] = re->wflags;
	tbsi_le_put64(b + 8, off);
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

/* A hard link: made at once if its file is settled, else later. */
static int on_hardlink(struct rx *rx, struct rx_entry *re)
{
	struct rx_entry *t = rx_ent(rx, re->link);

	if (!t && !rx_link_find(rx, re->link))
		return rx_refuse(rx, &re->n,
				 "the file it is a link to was not received");
	if (t && (t->n.kind != TK_FILE || !(t->eflags & TEF_LINKED)))
		return rx_refuse(rx, &re->n,
				 "it is a link to an entry that has no "
				 "further names");
	re->n.state = RS_LINK;
	if (rx_grow((void **)&rx->lwait, &rx->lwait_cap, rx->nlwait + 1,
		    sizeof(*rx->lwait)))
		return -ENOMEM;
	rx->lwait[rx->nlwait++] = re->n.index;
	rx_links(rx);
	return 0;
}

static int check_entry(struct rx *rx, const struct tree_entry *e)
{
	if (!rx->started || rx->listed)
		return rx_violation(rx, "an entry out of place");
	if (rx->cur.active)
		return rx_violation(rx, "an entry inside a file's data");
	if (e->index != rx->n)
		return rx_violation(rx, "entry %u out of order", e->index);
	if (rx->n >= rx->o.max_entries)
		return rx_violation(rx, "more entries than the limit of %llu",
				    (unsigned long long)rx->o.max_entries);
	if (names_full(rx))
		return rx_violation(rx, "more bytes of names than the limit");
	if (e->size > rx->o.max_file_size)
		return rx_violation(rx, "a file of %llu bytes (limit %llu)",
				    (unsigned long long)e->size,
				    (unsigned long long)rx->o.max_file_size);
	return 0;
}

/* Whether file @re waits for its HASH before it is decided. */
static bool needs_hash(const struct rx *rx, const struct rx_entry *re)
{
	return (re->eflags & TEF_LINKED) || (rx->sflags & TSF_CHECKSUM);
}

static int make(struct rx *rx, struct rx_entry *re, const struct tree_entry *e)
{
	int r;

	switch (re->n.kind) {
	case TK_FILE:
		if (needs_hash(rx, re)) {
			re->eflags |= REF_HASHWAIT; /* decided at its HASH */
			return 0;
		}
		return want_file(rx, re);
	case TK_DIR:
		return rx_mkdir(rx, &rx->dirs[re->dir]);
	case TK_SYMLINK:
		r = rx_symlink(rx, re, e->target, e->target_len);
		break;
	case TK_HARDLINK:
		return on_hardlink(rx, re);
	default:
		r = rx_special(rx, re);
	}
	if (!r)
		re->n.state = RS_DONE;
	return r;
}

/* An entry with one of the receiver's own names: refused, answered. */
static int refuse_reserved(struct rx *rx, struct rx_entry *re)
{
	int r = rx_refuse(rx, node_of(rx, re),
			  "names beginning with '" TREE_TMP_PREFIX
			  "' are the receiver's temporary files; not created");

	re->n.state = RS_FAILED;
	if (r != -EPERM || re->n.kind != TK_FILE)
		return r;
	if (needs_hash(rx, re)) {
		re->eflags |= REF_HASHWAIT;
		return 0;
	}
	return want_file(rx, re);
}

static int on_entry(struct rx *rx, const struct tree_entry *e)
{
	struct rx_entry *re = NULL;
	bool bad = reserved(e);
	int r = check_entry(rx, e);

	if (!r)
		r = store_entry(rx, e, &re);
	if (r)
		return r;
	count(rx, re);
	r = bad ? refuse_reserved(rx, re) : make(rx, re, e);
	if (re->n.kind == TK_DIR)
		re->n.state = RS_DONE; /* the directory's own node says more */
	if (r == -EPERM)
		r = 0;
	if (!r && re->n.kind != TK_FILE && re->n.kind != TK_HARDLINK)
		rx->attr_idx = e->index; /* its XATTR messages follow */
	if (!r && re->n.kind == TK_DIR)
		r = rx_tree_push(rx, re->dir);
	return r;
}

/* HASH: the sender's hash of the file it just listed. */
static int on_hash(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = rx->n ? rx_ent(rx, rx->n - 1) : NULL;

	if (!re || re->n.index != m->index || !(re->eflags & REF_HASHWAIT))
		return rx_violation(rx, "a hash for no file");
	re->hash = m->a;
	re->eflags = (uint8_t)((re->eflags & ~REF_HASHWAIT) | REF_HASHED);
	return want_file(rx, re);
}

/* ---- file data ---- */

static struct rx_entry *data_entry(struct rx *rx, uint32_t idx)
{
	if (!rx->cur.active || rx->cur.index != idx)
		return NULL;
	return rx_ent(rx, idx);
}

/*
 * The sender's first bytes are not the partial copy's: that copy goes,
 * the data that follows is dropped, and the file is refused this time
 * (a next run sends it in full).
 */
static int resume_differs(struct rx *rx, struct rx_entry *re)
{
	int r;

	tree_hash_reset(rx->cur.hash);
	rx_drop_tmp(rx, re);
	r = rx_refuse(rx, &re->n,
		      "the partial copy of an earlier run does not match the "
		      "sender's file; removed (send it again)");
	return r == -EPERM ? 0 : r;
}

static int on_file(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = rx_ent(rx, m->index);
	struct rx_file *f = &rx->cur;
	bool ok_full, ok_resume;

	if (f->active || !re)
		return rx_violation(rx, "file data out of place");
	ok_full = re->want == TW_FULL || re->want == TW_RESUME;
	ok_resume = re->want == TW_RESUME && m->a == re->woff && re->resume;
	if (re->n.kind != TK_FILE || re->n.state != RS_WANTED ||
	    !(m->a ? ok_resume : ok_full))
		return rx_violation(rx, "data for a file it was not asked for");
	*f = (struct rx_file){ .active = true,
			       .index = m->index,
			       .pos = m->a,
			       .ckpt_pos = m->a,
			       .ckpt_ms = tbsi_now_ms(),
			       .hash = f->hash,
			       .fd = -1 };
	if (m->a && tree_hash_digest(re->resume) != m->b)
		return resume_differs(rx, re);
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

/* Stops writing the current file: what was written of it goes. */
static void drop_current(struct rx *rx, struct rx_entry *re)
{
	if (rx->cur.fd < 0)
		return;
	rx_close_cur(rx, rx->cur.fd);
	rx->cur.fd = -1;
	if (!rx->cur.unnamed) /* an unnamed one went as it was closed */
		rx_drop_tmp(rx, re);
}

static int on_data(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = data_entry(rx, m->index);
	struct rx_file *f = &rx->cur;
	int r;

	if (!re)
		return rx_violation(rx, "data for a file not begun");
	if (m->a < f->pos || m->a > re->size || m->len > re->size - m->a)
		return rx_violation(rx, "data at offset %llu outside the file",
				    (unsigned long long)m->a);
	tree_hash_zeros(f->hash, m->a - f->pos);
	tree_hash_update(f->hash, m->data, m->len);
	f->pos = m->a + m->len;
	rx->st.bytes_data += m->len;
	if (f->fd < 0)
		return 0;
	r = tbsi_write_all(f->fd, m->data, m->len, (off_t)m->a);
	if (r) {
		drop_current(rx, re);
		r = rx_refuse(rx, &re->n, "writing: %s", strerror(-r));
		return r == -EPERM ? 0 : r;
	}
	rx_writeback(rx);
	rx_checkpoint(rx, re, false);
	return 0;
}

static int on_file_end(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = data_entry(rx, m->index);
	struct rx_file *f = &rx->cur;
	int r;

	if (!re || m->a != re->size)
		return rx_violation(rx, "the end of a file not begun");
	tree_hash_zeros(f->hash, re->size - f->pos);
	f->active = false;
	if (f->fd < 0)
		return 0;
	if (tree_hash_digest(f->hash) != m->b) {
		drop_current(rx, re);
		r = rx_refuse(rx, &re->n,
			      "its content does not match the sender's hash; "
			      "not kept (send it again)");
		return r == -EPERM ? 0 : r;
	}
	r = rx_finish_file(rx, re);
	if (!r)
		r = rx_pend(rx, re);
	return r == -EPERM ? 0 : r;
}

/* The sender did not send a file it was asked for: say so, in the
 * sender's words when it gave them. */
static void skipped(struct rx *rx, struct rx_entry *re,
		    const struct tree_msg *m)
{
	char path[400], msg[TREE_TEXT_MAX + 512];

	rx_path(rx, &re->n, path, sizeof(path));
	if (m->len)
		snprintf(msg, sizeof(msg), "not received '%s': the sender: %.*s",
			 path, (int)m->len, (const char *)m->data);
	else
		snprintf(msg, sizeof(msg), "not received '%s': %s", path,
			 m->u32 == TS_CHANGED ? "it changed on the sender "
						"while it was being read"
					      : "the sender could not read it");
	notify(rx, msg, true);
	mark_failed(rx, &re->n);
}

static int on_skip(struct rx *rx, const struct tree_msg *m)
{
	struct rx_entry *re = rx_ent(rx, m->index);

	if (!re || re->n.kind != TK_FILE || re->n.state != RS_WANTED ||
	    (rx->cur.active && rx->cur.index != m->index) ||
	    (m->u32 != TS_UNREADABLE && m->u32 != TS_CHANGED))
		return rx_violation(rx, "a skip of an unknown file");
	if (rx->cur.active) {
		rx->cur.active = false;
		drop_current(rx, re);
	}
	skipped(rx, re, m);
	return 0;
}

/* ---- the message dispatcher ---- */

/* The transfer is refused as a whole, for a reason that is no fault. */
static int refuse_all(struct rx *rx, const char *msg)
{
	snprintf(rx->fatal, sizeof(rx->fatal), "%s", msg);
	return -EPROTO;
}

static int on_start(struct rx *rx, const struct tree_msg *m)
{
	if (rx->started)
		return rx_violation(rx, "a second start");
	if (m->u32 != TREE_VERSION) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "the sender speaks file-tree protocol version %u, "
			 "this receiver version %u: install the same tbstream "
			 "release on both hosts",
			 m->u32, TREE_VERSION);
		return refuse_all(rx, msg);
	}
	if (m->flags & ~(uint32_t)TSF_ALL)
		return rx_violation(rx, "a start with unknown flags");
	if (m->a > rx->o.max_entries)
		return rx_violation(rx, "a list of %llu entries (limit %llu)",
				    (unsigned long long)m->a,
				    (unsigned long long)rx->o.max_entries);
	rx->sflags = m->flags;
	rx->announced = m->a;
	rx->st.bytes_total = m->b;
	rx->started = true;
	rx->dry |= !!(m->flags & TSF_DRY_RUN);
	if (rx->dry && rx->made_root && !rmdir(rx->made_root))
		rx->root_dry = true; /* made for nothing: a dry run after all */
	rx_unnamed_setup(rx);
	if ((m->flags & TSF_MIRROR) && !rx->mirror.on)
		return refuse_all(
			rx, "the sender asks to remove what it does not have "
			    "(--mirror); this receiver removes nothing unless "
			    "it was started with --delete");
	return 0;
}

static int on_done(struct rx *rx, const struct tree_msg *m)
{
	uint64_t i;
	int r = 0;

	if (!rx->listed || rx->cur.active || m->a != rx->n)
		return rx_violation(rx, "an early end");
	rx->sender_errors = m->b;
	rx->done = true;
	/* a file asked for whose data never came is not a success */
	for (i = rx->base; i < rx->n && (!r || r == -EPERM); i++) {
		struct rx_entry *re = &rx->win[i & (rx->win_cap - 1)];

		if (re->n.kind == TK_FILE && re->n.state == RS_WANTED)
			r = rx_refuse(rx, &re->n,
				      "not received: the sender did not send "
				      "it");
	}
	return r == -EPERM ? 0 : r;
}

static int on_listed(struct rx *rx, const struct tree_msg *m)
{
	if (!rx->started || rx->listed || rx->cur.active || m->a != rx->n)
		return rx_violation(rx, "a wrong count of entries");
	rx->listed = true;
	rx->st.bytes_total = rx->st.bytes_total > m->b ? rx->st.bytes_total
						       : m->b;
	return rx_tree_close(rx, 0);
}

static int dispatch(struct rx *rx, const struct tree_msg *m)
{
	switch (m->type) {
	case TM_START:
		return on_start(rx, m);
	case TM_ENTRY:
		return on_entry(rx, &m->e);
	case TM_LISTED:
		return on_listed(rx, m);
	case TM_FILE:
		return on_file(rx, m);
	case TM_DATA:
		return on_data(rx, m);
	case TM_FILE_END:
		return on_file_end(rx, m);
	case TM_SKIP:
		return on_skip(rx, m);
	case TM_DONE:
		return on_done(rx, m);
	case TM_HASH:
		return on_hash(rx, m);
	case TM_XATTR:
		return rx_on_xattr(rx, m);
	case TM_NAME:
		/* with an entry, or with the ACL that names the id */
		return rx->started && !rx->done
			       ? rx_on_name(rx, m)
			       : rx_violation(rx, "a name out of place");
	default:
		return rx_violation(
			rx, "a message of type %u, which only a receiver sends",
			m->type);
	}
}

static int on_msg(void *arg, const struct tree_msg *m)
{
	struct rx *rx = arg;
	struct rx_entry *last = rx->n ? rx_ent(rx, rx->n - 1) : NULL;

	if (rx->done)
		return rx_violation(rx, "messages after the end");
	if (!rx->started && m->type != TM_START)
		return rx_violation(rx, "a message before the start");
	if (last && (last->eflags & REF_HASHWAIT) && m->type != TM_HASH)
		return rx_violation(rx, "a file without its hash");
	if (m->type != TM_XATTR && m->type != TM_NAME)
		rx->attr_idx = TREE_NONE;
	return dispatch(rx, m);
}

/* Drops the file being written after a violation: nothing more of it. */
static void abandon(struct rx *rx)
{
	struct rx_entry *re;

	if (!rx->cur.active)
		return;
	re = rx_ent(rx, rx->cur.index);
	rx->cur.active = false;
	if (re)
		drop_current(rx, re);
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

	if (rx->fatal[0])
		return -EPROTO;
	if (type != TBS_TREE_APP)
		r = rx_violation(rx, "a record of type %u, not a file tree",
				 type);
	else
		r = tree_parse_record(buf, len, on_msg, rx, why, sizeof(why));
	if (r == -EPROTO && !rx->fatal[0])
		rx_violation(rx, "%s", why);
	if (r == -EPROTO)
		abandon(rx);
	if (!r)
		r = rx_commit_poll(rx, false);
	if (!r)
		r = retire(rx);
	if (!r)
		r = flush(rx);
	progress(rx);
	return r;
}

/* Nothing came for a while: commit what is pending, answer what is. */
int rx_idle(struct rx *rx)
{
	int r = rx_commit_poll(rx, true);

	if (!r)
		r = retire(rx);
	return r ? r : flush(rx);
}

/* After DONE: links, removal, directories, the last sync, then FINISH. */
int rx_end(struct rx *rx)
{
	uint8_t b[24];
	int r;

	if (!rx->done)
		return rx_violation(rx, "%s", "no end");
	r = rx_finalize(rx);
	if (!r)
		r = rx_mirror_apply(rx);
	if (!r)
		r = rx_finish_dirs(rx);
	if (r)
		return r;
	tbsi_le_put64(b, rx->st.entries - rx->st.failed);
	tbsi_le_put64(b + 8, rx->st.failed);
	tbsi_le_put64(b + 16, rx->mirror.removed);
	r = rx_put(rx, TM_FINISH, b, sizeof(b));
	if (!r)
		r = flush(rx);
	progress(rx);
	return r;
}

static int open_dir(struct rx *rx, const char *dir)
{
	int r;

	if (!rx->dry && !mkdir(dir, 0777))
		rx->made_root = dir;
	else if (!rx->dry && errno != EEXIST)
		return tbsi_err(rx->err, -errno, "cannot create '%s': %s", dir,
				strerror(errno));
	rx->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rx->root < 0 && rx->dry && errno == ENOENT) {
		rx->root_dry = true; /* everything in it would be made */
		return 0;
	}
	if (rx->root < 0)
		return tbsi_err(rx->err, -errno, "cannot open '%s': %s", dir,
				strerror(errno));
	r = rx_fs_open(rx, dir);
	if (r)
		return tbsi_err(rx->err, r, "cannot open '%s': %s", dir,
				strerror(-r));
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
	rx->umask = -1;
	rx->attr_idx = TREE_NONE;
	r = TBSI_OPTS_LOAD(&rx->o, opts, arg, change);
	if (r)
		return tbsi_err(err, r, "struct tbs_tree_opts is not valid");
	if (!rx->o.max_entries || rx->o.max_entries > TREE_NONE - 1)
		rx->o.max_entries = DEF_MAX_ENTRIES;
	if (!rx->o.max_file_size)
		rx->o.max_file_size = DEF_MAX_FILE_SIZE;
	rx->is_root = geteuid() == 0;
	rx->dry = rx->o.flags & TBS_TREE_DRY_RUN;
	rx->mirror.on = rx->o.flags & TBS_TREE_DELETE;
	rx->out = malloc(TREE_REC_MAX);
	rx->hbuf = malloc(TREE_REC_MAX);
	rx->cur.hash = tree_hash_new();
	if (!rx->out || !rx->hbuf || !rx->cur.hash)
		return tbsi_err(err, -ENOMEM, "out of memory");
	return open_dir(rx, dir);
}

void rx_close(struct rx *rx)
{
	uint64_t i;

	if (rx->cur.fd >= 0)
		rx_close_cur(rx, rx->cur.fd);
	rx_ahead_stop(rx);
	for (i = rx->base; rx->win && i < rx->n; i++)
		tree_hash_free(rx->win[i & (rx->win_cap - 1)].resume);
	if (rx->pfd >= 0)
		close(rx->pfd);
	if (rx->root >= 0)
		close(rx->root);
	rx_fs_free(rx);
	tree_hash_free(rx->cur.hash);
	free(rx->dirs);
	free(rx->darena);
	free(rx->dtab);
	free(rx->win);
	free(rx->warena);
	free(rx->links);
	free(rx->ltab);
	free(rx->larena);
	free(rx->path);
	rx_mirror_free(&rx->mirror);
	rx_ids_free(&rx->ids);
	free(rx->lwait);
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
	struct rx_entry *re = rx->cur.active ? rx_ent(rx, rx->cur.index) : NULL;

	if (re)
		rx_checkpoint(rx, re, true);
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
		return n > 0 ? rx_violation(rx, "%s", "data after the end")
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

/* Refused or failed here, or not sent at all: the transfer failed. */
static int verdict(struct rx *rx)
{
	unsigned long long n = rx->st.failed, m = rx->sender_errors;
	char lost[200];

	if (!n && !m && rx_lost_text(rx, lost, sizeof(lost)))
		return tbsi_err(rx->err, -EIO,
				"every entry arrived, but the file system "
				"here did not keep their %s (said above)",
				lost);

	if (!n && m)
		return tbsi_err(rx->err, -EIO,
				"the sender could not send %llu %s (it names "
				"them); the rest arrived",
				m, m == 1 ? "entry" : "entries");
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
	if (r == -ENOMEM && !rx->err->msg[0])
		return tbsi_err(rx->err, r, "out of memory");
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
