/* SPDX-License-Identifier: MIT */
/*
 * libtbstream internal: little-endian fields of the wire formats, at any
 * alignment.  Every record codec (session, file trees) reads and writes
 * its integers through these.
 */
#ifndef TBS_BYTEORDER_H
#define TBS_BYTEORDER_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void tbsi_le_put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void tbsi_le_put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void tbsi_le_put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t tbsi_le_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t tbsi_le_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t tbsi_le_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

#endif
