// SPDX-License-Identifier: MIT
/*
 * The file-tree engine's content hash: XXH3-64 (seed 0) of a file's bytes
 * in order, holes hashed as the zeros they read as, so that the hash does
 * not depend on how either file system lays the holes out.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "tree-int.h"

struct tree_hash {
	XXH3_state_t *st;
};

static const uint8_t zeros[64 * 1024];

struct tree_hash *tree_hash_new(void)
{
	struct tree_hash *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->st = XXH3_createState();
	if (!h->st) {
		free(h);
		return NULL;
	}
	tree_hash_reset(h);
	return h;
}

void tree_hash_free(struct tree_hash *h)
{
	if (!h)
		return;
	XXH3_freeState(h->st);
	free(h);
}

void tree_hash_reset(struct tree_hash *h)
{
	XXH3_64bits_reset(h->st);
}

void tree_hash_update(struct tree_hash *h, const void *buf, size_t len)
{
	XXH3_64bits_update(h->st, buf, len);
}

void tree_hash_zeros(struct tree_hash *h, uint64_t len)
{
	size_t n;

	while (len) {
		n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		XXH3_64bits_update(h->st, zeros, n);
		len -= n;
	}
}

uint64_t tree_hash_digest(struct tree_hash *h)
{
	return XXH3_64bits_digest(h->st);
}

/* Hashes bytes [0, @len) of @fd, skipping the reads of holes. */
int tree_hash_fd(struct tree_hash *h, int fd, uint64_t len, void *buf,
		 size_t buf_len)
{
	uint64_t pos = 0, end;
	off_t d;
	ssize_t n;

	tree_hash_reset(h);
	while (pos < len) {
		d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			d = (off_t)pos; /* no SEEK_DATA: all of it is data */
		if (d < 0 || (uint64_t)d >= len) {
			tree_hash_zeros(h, len - pos);
			return 0;
		}
		tree_hash_zeros(h, (uint64_t)d - pos);
		pos = (uint64_t)d;
		end = (uint64_t)lseek(fd, (off_t)pos, SEEK_HOLE);
		if ((off_t)end < 0 || end > len)
			end = len;
		while (pos < end) {
			n = pread(fd, buf,
				  end - pos < buf_len ? end - pos : buf_len,
				  (off_t)pos);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -ENODATA;
			tree_hash_update(h, buf, (size_t)n);
			pos += (uint64_t)n;
		}
	}
	return 0;
}
