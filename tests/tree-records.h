/* SPDX-License-Identifier: MIT */
/*
 * Builds file-tree records by hand, as a hostile sender would: any entry
 * (any path, kind, size, time, link), any message, in any order.  Shared
 * by the hostile sender (hostile-send.c), the hostile-sender unit test
 * and the receiver's fuzz target.  Not part of the library.
 */
#ifndef TBS_TREE_RECORDS_H
#define TBS_TREE_RECORDS_H

#include <string.h>

#include "../lib/tree-int.h"

/* One record of messages being built. */
struct trec {
	uint8_t buf[TREE_REC_MAX];
	size_t len;
};

/* What an entry says beyond its path; zero fields are defaults. */
struct trec_meta {
	uint32_t mode; /* 0: 0644 (0755 for a directory) */
	uint32_t uid, gid;
	uint64_t size;
	int64_t mtime;
	uint32_t link; /* hard link: the index of its file */
	const char *target; /* symbolic link */
	uint8_t flags; /* TEF_* */
};

/* ENTRY @idx of @kind at @path ('/' between its components). */
static inline void trec_entry(struct trec *r, uint32_t idx, uint8_t kind,
			      const char *path, const struct trec_meta *m)
{
	const char *names[TREE_DEPTH_MAX];
	uint16_t lens[TREE_DEPTH_MAX];
	const char *p = path, *slash;
	uint16_t n = 0;
	struct tree_entry e = {
		.index = idx,
		.kind = kind,
		.flags = m ? m->flags : 0,
		.mode = m && m->mode ? m->mode : kind == TK_DIR ? 0755 : 0644,
		.uid = m ? m->uid : 0,
		.gid = m ? m->gid : 0,
		.link = kind == TK_HARDLINK && m ? m->link : TREE_NONE,
		.size = m ? m->size : 0,
		.mtime_s = m ? m->mtime : 0,
		.atime_s = m ? m->mtime : 0,
		.target_len = m && m->target ? (uint16_t)strlen(m->target) : 0,
	};

	do {
		slash = strchr(p, '/');
		names[n] = p;
		lens[n++] = (uint16_t)(slash ? (size_t)(slash - p) : strlen(p));
		p = slash ? slash + 1 : NULL;
	} while (p && n < TREE_DEPTH_MAX);
	e.ncomp = n;
	r->len += tree_entry_encode(r->buf + r->len, sizeof(r->buf) - r->len,
				    &e, names, lens, m ? m->target : NULL);
}

/*
 * Any other message: START (@a entries, @b its flags), LISTED (@a
 * entries, @b bytes), DONE (@a entries, @b errors), FILE (@idx, from
 * offset @a), DATA (@idx at offset @a, @data), FILE_END (@idx, size @a,
 * hash @b), SKIP (@idx, reason @a, text @data), HASH (@idx, hash @a).
 */
static inline void trec_msg(struct trec *r, uint8_t type, uint32_t idx,
			    uint64_t a, uint64_t b, const void *data,
			    size_t len)
{
	uint8_t m[24 + TREE_TEXT_MAX] = { 0 };
	size_t n = 16;

	tbsi_le_put32(m, idx);
	tbsi_le_put64(m + 8, a);
	if (type == TM_START) {
		tbsi_le_put32(m, TREE_VERSION);
		tbsi_le_put32(m + 4, (uint32_t)b);
		tbsi_le_put64(m + 8, a);
		n = 24;
	} else if (type == TM_LISTED || type == TM_DONE) {
		tbsi_le_put64(m, a);
		tbsi_le_put64(m + 8, b);
		n = 16;
	} else if (type == TM_FILE_END || type == TM_FILE) {
		tbsi_le_put64(m + 16, b);
		n = 24;
	} else if (type == TM_SKIP) {
		tbsi_le_put32(m + 4, (uint32_t)a);
		n = 8;
	}
	if (data && len <= sizeof(m) - n) {
		memcpy(m + n, data, len);
		n += len;
	}
	r->len += tree_msg_put(r->buf + r->len, sizeof(r->buf) - r->len, type,
			       m, n);
}

/* XATTR for entry @idx: attribute @name with @len bytes of @value. */
static inline void trec_xattr(struct trec *r, uint32_t idx, const char *name,
			      const void *value, size_t len)
{
	size_t n = strlen(name);
	uint8_t *p = r->buf + r->len;

	if (8 + n + len > sizeof(r->buf) - r->len - TREE_MSG_HDR)
		return;
	tree_msg_put(p, sizeof(r->buf) - r->len, TM_XATTR, NULL, 8 + n + len);
	memset(p + TREE_MSG_HDR, 0, 8);
	tbsi_le_put32(p + TREE_MSG_HDR, idx);
	p[TREE_MSG_HDR + 4] = (uint8_t)n;
	memcpy(p + TREE_MSG_HDR + 8, name, n);
	memcpy(p + TREE_MSG_HDR + 8 + n, value, len);
	r->len += TREE_MSG_HDR + 8 + n + len;
}

/* NAME: the sender's user (@kind TN_USER) or group @id is @name. */
static inline void trec_name(struct trec *r, uint8_t kind, uint32_t id,
			     const char *name)
{
	uint8_t m[8 + 256] = { 0 };
	size_t n = strlen(name) & 0xff;

	tbsi_le_put32(m, id);
	m[4] = kind;
	m[5] = (uint8_t)n;
	memcpy(m + 8, name, n);
	r->len += tree_msg_put(r->buf + r->len, sizeof(r->buf) - r->len,
			       TM_NAME, m, 8 + n);
}

/* DATA of any length (up to what the record holds) at offset @off. */
static inline void trec_data(struct trec *r, uint32_t idx, uint64_t off,
			     const void *data, size_t len)
{
	uint8_t *p = r->buf + r->len;

	if (len > sizeof(r->buf) - r->len - TREE_MSG_HDR - TREE_DATA_HDR)
		return;
	tree_msg_put(p, sizeof(r->buf) - r->len, TM_DATA, NULL,
		     TREE_DATA_HDR + len);
	memset(p + TREE_MSG_HDR, 0, TREE_DATA_HDR);
	tbsi_le_put32(p + TREE_MSG_HDR, idx);
	tbsi_le_put64(p + TREE_MSG_HDR + 8, off);
	memcpy(p + TREE_MSG_HDR + TREE_DATA_HDR, data, len);
	r->len += TREE_MSG_HDR + TREE_DATA_HDR + len;
}

#endif
