// SPDX-License-Identifier: MIT
/*
 * The content hash of files and images (lib/tree-hash.c), a hash tree
 * over 64 KiB blocks: zeros hash the same fed as bytes or as a run,
 * however the input is cut, and a run of 2^60 zeros costs next to
 * nothing (a hostile peer announces such runs in a few bytes).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/tree-hash.h"
#include "../fuzz-replay.h"
#include "../tap.h"

#define LEN (5 * TREE_HASH_BLOCK + 12345)

/* @buf fed in pieces cut by @st, zero pieces as runs when @runs. */
static XXH128_hash_t feed(const uint8_t *buf, size_t len, uint64_t *st,
			  bool runs)
{
	struct tree_hash *h = tree_hash_new();
	XXH128_hash_t d;
	size_t pos = 0, n, i;

	while (pos < len) {
		n = 1 + rnd(st) % (3 * TREE_HASH_BLOCK);
		n = n < len - pos ? n : len - pos;
		for (i = 0; i < n && !buf[pos + i]; i++)
			;
		if (runs && i == n)
			tree_hash_zeros(h, n);
		else
			tree_hash_update(h, buf + pos, n);
		pos += n;
	}
	d = tree_hash_digest128(h);
	tree_hash_free(h);
	return d;
}

static void test_cuts(void)
{
	static uint8_t buf[LEN];
	XXH128_hash_t whole, h;
	uint64_t st = 7;
	int i, same = 0;

	for (i = 0; i < LEN; i += 4096) /* data and zeros, in turns */
		if ((i / 4096) % 3 == 0)
			memset(buf + i, i / 4096 + 1, 4096 < LEN - i ? 4096 :
								     LEN - i);
	whole = feed(buf, LEN, &st, false);
	for (i = 0; i < 200; i++) {
		h = feed(buf, LEN - (size_t)(i % 3) * 1000, &st, i & 1);
		same += XXH128_isEqual(h, whole) == (i % 3 == 0);
	}
	is_int(same, 200, "the same bytes hash the same however fed; "
			  "others differ");
	buf[LEN / 2] ^= 1;
	ok(!XXH128_isEqual(feed(buf, LEN, &st, true), whole),
	   "one bit changed changes the hash");
}

static void test_sizes(void)
{
	static uint8_t z[3 * TREE_HASH_BLOCK];
	struct tree_hash *a = tree_hash_new(), *b = tree_hash_new();
	size_t sizes[] = { 0, 1, TREE_HASH_BLOCK - 1, TREE_HASH_BLOCK,
			   TREE_HASH_BLOCK + 1, 2 * TREE_HASH_BLOCK,
			   3 * TREE_HASH_BLOCK };
	int i, ok_ = 0;

	for (i = 0; i < 7; i++) {
		tree_hash_reset(a);
		tree_hash_reset(b);
		tree_hash_update(a, z, sizes[i]);
		tree_hash_zeros(b, sizes[i]);
		ok_ += XXH128_isEqual(tree_hash_digest128(a),
				      tree_hash_digest128(b));
	}
	is_int(ok_, 7, "zeros as bytes and as a run agree at block edges");
	tree_hash_reset(a);
	tree_hash_reset(b);
	tree_hash_zeros(b, 1);
	ok(!XXH128_isEqual(tree_hash_digest128(a), tree_hash_digest128(b)),
	   "the size counts: nothing and one zero differ");
	tree_hash_free(a);
	tree_hash_free(b);
}

/* The receiver's work for "2^60 zeros": a hang before the hash tree. */
static void test_huge_run(void)
{
	struct tree_hash *a = tree_hash_new(), *b = tree_hash_new();
	uint64_t big = 1ull << 60;

	alarm(30);
	tree_hash_update(a, "x", 1);
	tree_hash_zeros(a, big);
	tree_hash_update(b, "x", 1);
	tree_hash_zeros(b, big / 2);
	tree_hash_zeros(b, big / 2);
	alarm(0);
	ok(tree_hash_size(a) == big + 1, "2^60 zeros are hashed at once");
	ok(XXH128_isEqual(tree_hash_digest128(a), tree_hash_digest128(b)),
	   "in one run or two");
	tree_hash_free(a);
	tree_hash_free(b);
}

int main(void)
{
	test_cuts();
	test_sizes();
	test_huge_run();
	return tap_done();
}
