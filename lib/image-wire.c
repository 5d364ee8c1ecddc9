// SPDX-License-Identifier: MIT
/*
 * The records of a disk image transfer: encoding and checked decoding.
 * Nothing read from the wire is trusted: lengths, offsets and sizes are
 * checked against the record's length and the announced image size, and
 * the image size itself against IMG_MAX_SIZE.  The layouts are drawn in
 * image-int.h and specified in docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "image-int.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_str(uint8_t *p, const char *s, size_t n)
{
	size_t l = strnlen(s, n - 1);

	memset(p, 0, n);
	memcpy(p, s, l);
}

/* Copies a fixed field, always terminated, control characters replaced. */
static void get_str(char *s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n - 1 && p[i]; i++)
		s[i] = p[i] < 0x20 || p[i] == 0x7f ? '?' : (char)p[i];
	s[i] = '\0';
}

size_t tbsi_img_put_header(uint8_t *p, const struct img_header *h)
{
	put_le(p, IMG_MAGIC, 4);
	put_le(p + 4, IMG_VERSION, 2);
	put_le(p + 6, h->flags, 2);
	put_le(p + 8, h->info.block_size, 4);
	put_le(p + 12, IMG_HASH_TREE, 4);
	put_le(p + 16, h->info.size, 8);
	put_str(p + 24, h->info.model, 64);
	put_str(p + 88, h->info.serial, 64);
	put_str(p + 152, h->info.source, 256);
	return IMG_HEADER_LEN;
}

int tbsi_img_get_header(const uint8_t *p, size_t len, struct img_header *h)
{
	uint32_t bs;

	memset(h, 0, sizeof(*h));
	if (len < IMG_HEADER_LEN || get_le(p, 4) != IMG_MAGIC ||
	    get_le(p + 4, 2) != IMG_VERSION ||
	    get_le(p + 12, 4) != IMG_HASH_TREE)
		return -EPROTO;
	bs = (uint32_t)get_le(p + 8, 4);
	if (bs < 512 || bs > (1u << 20) || (bs & (bs - 1)))
		return -EPROTO;
	h->flags = (uint16_t)get_le(p + 6, 2);
	h->info.block_size = bs;
	h->info.size = get_le(p + 16, 8);
	if (h->info.size > IMG_MAX_SIZE)
		return -EPROTO;
	get_str(h->info.model, p + 24, 64);
	get_str(h->info.serial, p + 88, 64);
	get_str(h->info.source, p + 152, 256);
	return 0;
}

size_t tbsi_img_put_extent_hdr(uint8_t *p, const struct img_extent *x)
{
	put_le(p, x->offset, 8);
	put_le(p + 8, x->raw_len, 4);
	p[12] = x->enc;
	p[13] = p[14] = p[15] = 0;
	put_le(p + 16, x->sum, 8);
	return IMG_EXTENT_HDR;
}

/* Checks an extent against the record's length and the image's size. */
int tbsi_img_get_extent(const uint8_t *p, size_t len, uint64_t size,
			struct img_extent *x)
{
	if (len <= IMG_EXTENT_HDR)
		return -EPROTO;
	x->offset = get_le(p, 8);
	x->raw_len = (uint32_t)get_le(p + 8, 4);
	x->enc = p[12];
	x->sum = get_le(p + 16, 8);
	x->data = p + IMG_EXTENT_HDR;
	x->data_len = len - IMG_EXTENT_HDR;
	if (!x->raw_len || x->raw_len > IMG_MAX_EXTENT || x->offset > size ||
	    x->raw_len > size - x->offset)
		return -EPROTO;
	if (x->enc == IMG_ENC_RAW)
		return x->data_len == x->raw_len ? 0 : -EPROTO;
	return x->enc == IMG_ENC_ZSTD ? 0 : -EPROTO;
}

size_t tbsi_img_put_u64s(uint8_t *p, const uint64_t *v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		put_le(p + 8 * i, v[i], 8);
	return 8 * (size_t)n;
}

int tbsi_img_get_u64s(const uint8_t *p, size_t len, uint64_t *v, int n)
{
	int i;

	if (len != 8 * (size_t)n)
		return -EPROTO;
	for (i = 0; i < n; i++)
		v[i] = get_le(p + 8 * i, 8);
	return 0;
}

void tbsi_img_hash_hex(const XXH128_hash_t *h, char *buf)
{
	snprintf(buf, 33, "%016llx%016llx", (unsigned long long)h->high64,
		 (unsigned long long)h->low64);
}

int tbsi_img_hash_parse(const char *s, XXH128_hash_t *h)
{
	unsigned long long hi, lo;
	int n = 0;

	if (strlen(s) != 32 || sscanf(s, "%16llx%16llx%n", &hi, &lo, &n) != 2 ||
	    n != 32)
		return -EINVAL;
	h->high64 = hi;
	h->low64 = lo;
	return 0;
}
