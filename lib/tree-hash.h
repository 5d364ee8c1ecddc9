/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the content hash of files and disk
 * images, a hash tree over 64 KiB blocks (tree-hash.c draws it; the
 * specification is docs/PROTOCOL.md).  Runs of zeros cost O(log n).
 */
#ifndef TBS_TREE_HASH_H
#define TBS_TREE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#define TREE_HASH_BLOCK 65536

struct tree_hash;
struct tree_hash *tree_hash_new(void);
void tree_hash_free(struct tree_hash *h);
void tree_hash_reset(struct tree_hash *h);
void tree_hash_update(struct tree_hash *h, const void *buf, size_t len);
void tree_hash_zeros(struct tree_hash *h, uint64_t len);
uint64_t tree_hash_size(const struct tree_hash *h);
/* The hash of what was fed so far (feeding may continue). */
XXH128_hash_t tree_hash_digest128(struct tree_hash *h);
uint64_t tree_hash_digest(struct tree_hash *h); /* a file's: the low half */
int tree_hash_range(struct tree_hash *h, int fd, uint64_t off, uint64_t len,
		    void *buf, size_t buf_len);
/* Hashes the first @len bytes of @fd into @h (reset first). */
int tree_hash_fd(struct tree_hash *h, int fd, uint64_t len, void *buf,
		 size_t buf_len);

#endif
