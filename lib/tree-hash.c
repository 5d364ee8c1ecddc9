// SPDX-License-Identifier: MIT
/*
 * The content hash of a file (file trees) and of a disk image: a hash tree
 * over blocks of 64 KiB, so that a run of zeros costs a few hashes
 * whatever its length.  A receiver is told "2^50 bytes of zeros" in a
 * message of a few bytes; hashing them one by one would keep a core busy
 * for a day.  Here the work per message is bounded by its bytes, plus at
 * most two partial blocks of zeros and a few dozen node hashes.
 *
 *   leaf i   XXH3-128 (seed 0) of bytes [64 KiB * i, 64 KiB * (i + 1)),
 *            the last one possibly shorter
 *   node     XXH3-128 of 0x01, left (high, low), right (high, low), each
 *            half a little-endian u64 (33 bytes)
 *   root     of leaves [0, n): the leaf when n = 1, else node(root of the
 *            first k, root of the rest), k the largest power of two < n;
 *            XXH3-128 of nothing when n = 0
 *   hash     XXH3-128 of 0x02, root (high, low), size (u64): 25 bytes
 *
 * A file's hash is the low half.  Zeros hash the same whether they were
 * read, written or holes, so the hash does not depend on how either side
 * stores holes: an aligned run of 2^k zero blocks is the precomputed
 * root Z(k) = node(Z(k-1), Z(k-1)), Z(0) the leaf of 64 KiB of zeros.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "byteorder.h"
#include "tree-hash.h"

#define LEVELS 64

struct tree_hash {
	XXH3_state_t *leaf; /* the block being filled */
	uint32_t fill; /* its bytes */
	uint64_t leaves; /* complete blocks */
	uint64_t size; /* bytes in all */
	int depth; /* subtrees on the stack, largest first */
	uint8_t level[LEVELS];
	XXH128_hash_t node[LEVELS];
};

static const uint8_t zeros[TREE_HASH_BLOCK];
static XXH128_hash_t zero_root[LEVELS]; /* constant once computed */
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static XXH128_hash_t node(XXH128_hash_t l, XXH128_hash_t r)
{
	uint8_t b[33];

	b[0] = 1;
	tbsi_le_put64(b + 1, l.high64);
	tbsi_le_put64(b + 9, l.low64);
	tbsi_le_put64(b + 17, r.high64);
	tbsi_le_put64(b + 25, r.low64);
	return XXH3_128bits(b, sizeof(b));
}

static void zero_roots(void)
{
	int k;

	zero_root[0] = XXH3_128bits(zeros, sizeof(zeros));
	for (k = 1; k < LEVELS; k++)
		zero_root[k] = node(zero_root[k - 1], zero_root[k - 1]);
}

struct tree_hash *tree_hash_new(void)
{
	struct tree_hash *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->leaf = XXH3_createState();
	if (!h->leaf) {
		free(h);
		return NULL;
	}
	pthread_once(&zero_once, zero_roots);
	tree_hash_reset(h);
	return h;
}

void tree_hash_free(struct tree_hash *h)
{
	if (!h)
		return;
	XXH3_freeState(h->leaf);
	free(h);
}

void tree_hash_reset(struct tree_hash *h)
{
	XXH3_128bits_reset(h->leaf);
	h->fill = 0;
	h->leaves = 0;
	h->size = 0;
	h->depth = 0;
}

/* Appends a complete subtree of 2^@level blocks; equal neighbours merge. */
static void push(struct tree_hash *h, int level, XXH128_hash_t x)
{
	h->level[h->depth] = (uint8_t)level;
	h->node[h->depth++] = x;
	while (h->depth > 1 &&
	       h->level[h->depth - 1] == h->level[h->depth - 2]) {
		h->node[h->depth - 2] =
			node(h->node[h->depth - 2], h->node[h->depth - 1]);
		h->level[h->depth - 2]++;
		h->depth--;
	}
	h->leaves += 1ull << level;
}

/* Feeds @len bytes (at most what the block lacks) to the block. */
static void fill(struct tree_hash *h, const void *buf, size_t len)
{
	XXH3_128bits_update(h->leaf, buf, len);
	h->fill += (uint32_t)len;
	h->size += len;
	if (h->fill < TREE_HASH_BLOCK)
		return;
	push(h, 0, XXH3_128bits_digest(h->leaf));
	XXH3_128bits_reset(h->leaf);
	h->fill = 0;
}

void tree_hash_update(struct tree_hash *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t n;

	while (len) {
		n = TREE_HASH_BLOCK - h->fill;
		n = len < n ? len : n;
		fill(h, p, n);
		p += n;
		len -= n;
	}
}

/* The largest aligned run of zero blocks that may be appended now. */
static int zero_level(const struct tree_hash *h, uint64_t blocks)
{
	int k = 0;

	while (k < LEVELS - 2 && (2ull << k) <= blocks &&
	       !(h->leaves & ((2ull << k) - 1)))
		k++;
	return k;
}

void tree_hash_zeros(struct tree_hash *h, uint64_t len)
{
	uint64_t n;
	int k;

	if (h->fill && len) {
		n = TREE_HASH_BLOCK - h->fill;
		n = len < n ? len : n;
		fill(h, zeros, (size_t)n);
		len -= n;
	}
	while (len >= TREE_HASH_BLOCK) {
		k = zero_level(h, len / TREE_HASH_BLOCK);
		push(h, k, zero_root[k]);
		h->size += (uint64_t)TREE_HASH_BLOCK << k;
		len -= (uint64_t)TREE_HASH_BLOCK << k;
	}
	if (len)
		fill(h, zeros, (size_t)len);
}

uint64_t tree_hash_size(const struct tree_hash *h)
{
	return h->size;
}

/* The hash of what was fed so far; feeding may go on afterwards. */
XXH128_hash_t tree_hash_digest128(struct tree_hash *h)
{
	XXH128_hash_t root;
	uint8_t b[25];
	int i = h->depth;

	if (h->fill || !h->size)
		root = XXH3_128bits_digest(h->leaf);
	else
		root = h->node[--i];
	while (i-- > 0)
		root = node(h->node[i], root);
	b[0] = 2;
	tbsi_le_put64(b + 1, root.high64);
	tbsi_le_put64(b + 9, root.low64);
	tbsi_le_put64(b + 17, h->size);
	return XXH3_128bits(b, sizeof(b));
}

uint64_t tree_hash_digest(struct tree_hash *h)
{
	return tree_hash_digest128(h).low64;
}

/**
 * tree_hash_range() - feed bytes [@off, @off + @len) of a file
 * @h:       the hash, continued
 * @fd:      the file (or block device)
 * @off:     where to start
 * @len:     how many bytes
 * @buf:     room for reading
 * @buf_len: its size
 *
 * Holes (SEEK_DATA) are fed as zeros without reading them.
 *
 * Return: 0, or a negative errno (-ENODATA: the file is shorter).
 */
int tree_hash_range(struct tree_hash *h, int fd, uint64_t off, uint64_t len,
		    void *buf, size_t buf_len)
{
	uint64_t end = off + len, stop;
	off_t d;
	ssize_t n;

	while (off < end) {
		d = lseek(fd, (off_t)off, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			d = (off_t)off; /* no SEEK_DATA: all of it is data */
		if (d < 0 || (uint64_t)d >= end) {
			tree_hash_zeros(h, end - off);
			return 0;
		}
		tree_hash_zeros(h, (uint64_t)d - off);
		off = (uint64_t)d;
		stop = (uint64_t)lseek(fd, (off_t)off, SEEK_HOLE);
		if ((off_t)stop < 0 || stop > end || stop <= off)
			stop = end;
		while (off < stop) {
			n = pread(fd, buf,
				  stop - off < buf_len ? stop - off : buf_len,
				  (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -ENODATA;
			tree_hash_update(h, buf, (size_t)n);
			off += (uint64_t)n;
		}
	}
	return 0;
}

/* Hashes the first @len bytes of @fd into @h (reset first). */
int tree_hash_fd(struct tree_hash *h, int fd, uint64_t len, void *buf,
		 size_t buf_len)
{
	tree_hash_reset(h);
	return tree_hash_range(h, fd, 0, len, buf, buf_len);
}
