/* SPDX-License-Identifier: MIT */
/*
 * The file-tree record decoder under fuzzing, shared by the libFuzzer
 * harness (fuzz-tree.c) and by the replay test that runs in the normal
 * test suite (tests/unit/test-tree-fuzz.c).
 *
 * The input is one record as tbstream recv gets it from the session.  It
 * is decoded as a whole record and, message type by message type, as a
 * single message body; every result must stay inside the input, every
 * path component the decoder lets through must be one a receiver may
 * create, and paths must print within their buffer.  A broken invariant
 * traps.
 */
#ifndef TBS_FUZZ_TREE_TARGET_H
#define TBS_FUZZ_TREE_TARGET_H

#include <errno.h>
#include <string.h>

#include "../lib/tree-int.h"

#define FUZZ_CHECK(c)                                                          \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

struct fuzz_tree_in {
	const uint8_t *data;
	size_t size;
	unsigned long messages;
};

static inline void fuzz_inside(const struct fuzz_tree_in *in, const uint8_t *p,
			       size_t len)
{
	FUZZ_CHECK(!len || (p >= in->data && len <= in->size &&
			    p + len <= in->data + in->size));
}

static inline void fuzz_check_entry(const struct fuzz_tree_in *in,
				    const struct tree_entry *e)
{
	struct tree_comp c;
	size_t pos = 0, n = 0, total = 0;
	char path[TREE_PATH_MAX * 4 + 16];

	fuzz_inside(in, e->comps, e->comps_len);
	fuzz_inside(in, e->target, e->target_len);
	FUZZ_CHECK(e->ncomp >= 1 && e->ncomp <= TREE_DEPTH_MAX);
	FUZZ_CHECK(e->kind >= TK_FILE && e->kind <= TK_BLK);
	FUZZ_CHECK(e->target_len <= TREE_TARGET_MAX);
	FUZZ_CHECK(!memchr(e->target, 0, e->target_len));
	while (tree_comp_next(e, &pos, &c)) {
		FUZZ_CHECK(pos <= e->comps_len);
		FUZZ_CHECK(!tree_name_problem(c.name, c.len));
		total += c.len + 1u;
		n++;
	}
	FUZZ_CHECK(n == e->ncomp && pos == e->comps_len);
	FUZZ_CHECK(total <= TREE_PATH_MAX);
	FUZZ_CHECK(tree_path_text(e, path, sizeof(path)) == 0);
	FUZZ_CHECK(strlen(path) < sizeof(path));
	tree_path_text(e, path, 16); /* may be cut, must not overflow */
}

static inline int fuzz_tree_msg(void *arg, const struct tree_msg *m)
{
	struct fuzz_tree_in *in = arg;

	in->messages++;
	fuzz_inside(in, m->data, m->len);
	if (m->type == TM_ENTRY)
		fuzz_check_entry(in, &m->e);
	if (m->type == TM_SKIP || m->type == TM_FAIL)
		FUZZ_CHECK(m->len <= TREE_TEXT_MAX);
	if (m->type == TM_WANT)
		FUZZ_CHECK(m->u32 >= TW_FULL && m->u32 <= TW_REFUSE);
	return 0;
}

static inline int fuzz_tree_one(const uint8_t *data, size_t size)
{
	static const uint8_t types[] = { TM_START,   TM_ENTRY, TM_LISTED,
					 TM_FILE,    TM_DATA,  TM_FILE_END,
					 TM_SKIP,    TM_DONE,  TM_WANT,
					 TM_CONFIRM, TM_FAIL,  TM_FINISH };
	struct fuzz_tree_in in = { .data = data, .size = size };
	struct tree_msg m;
	char why[128];
	size_t i;
	int r;

	r = tree_parse_record(data, size, fuzz_tree_msg, &in, why, sizeof(why));
	FUZZ_CHECK(r == 0 || r == -EPROTO);
	FUZZ_CHECK(r || size);
	for (i = 0; i < sizeof(types); i++) {
		if (tree_decode(types[i], data, size, &m, why, sizeof(why)))
			continue;
		fuzz_tree_msg(&in, &m);
	}
	return 0;
}

#endif /* TBS_FUZZ_TREE_TARGET_H */
