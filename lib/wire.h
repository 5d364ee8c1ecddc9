/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the byte layout of session records.
 *
 * Every record is a 40-byte header followed by 0..TBS_WIRE_MAX_PAYLOAD bytes
 * of payload.  All integers are little-endian.  docs/PROTOCOL.md is the
 * specification; this header only mirrors it.
 *
 *   off size field
 *     0    4 magic      'T' 'B' 'S' 0xA5
 *     4    1 type       enum tbs_wire_type
 *     5    1 flags      TBS_WF_*
 *     6    2 app        application record type (DATA only, else 0)
 *     8    4 length     payload bytes, at most TBS_WIRE_MAX_PAYLOAD
 *    12    4 aux        type-specific (DATA/NACK: epoch, ABORT: errno)
 *    16    8 offset     type-specific stream offset
 *    24    8 pcsum      XXH3-64 of the payload
 *    32    8 hcsum      XXH3-64 of bytes 0..31, seeded with the session
 *                       key (HELLO: seed 0)
 *
 * The session key binds every record but HELLO to one session: a record
 * of an earlier run fails the header check like any damaged bytes.
 */
#ifndef TBS_WIRE_H
#define TBS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "byteorder.h"

#define TBS_WIRE_MAGIC_0 0x54 /* 'T' */
#define TBS_WIRE_MAGIC_1 0x42 /* 'B' */
#define TBS_WIRE_MAGIC_2 0x53 /* 'S' */
#define TBS_WIRE_MAGIC_3 0xA5
#define TBS_WIRE_HDR_LEN 40
#define TBS_WIRE_MAX_PAYLOAD (256u * 1024)
#define TBS_WIRE_MAX_ID 64
#define TBS_WIRE_HELLO_LEN 40 /* fixed part of a HELLO payload */
#define TBS_WIRE_MAX_MSG 200 /* longest ABORT message */

#define TBS_PROTO_MAJOR 2
#define TBS_PROTO_MINOR 0

enum tbs_wire_type {
	TBS_REC_HELLO = 1,
	TBS_REC_DATA = 2,
	TBS_REC_ACK = 3,
	TBS_REC_NACK = 4,
	TBS_REC_END = 5,
	TBS_REC_ENDACK = 6,
	TBS_REC_BYE = 7,
	TBS_REC_ABORT = 8,
};

/* header flags */
/* a receiver that does not know the record's type skips it */
#define TBS_WF_OPTIONAL 0x01
/* DATA: the last record of a message */
#define TBS_WF_EOM 0x02

/* HELLO flags */
#define TBS_HF_ESTABLISHED 0x01 /* sender has seen its own nonce echoed */

struct tbs_wire_hdr {
	uint8_t type;
	uint8_t flags;
	uint16_t app;
	uint32_t len;
	uint32_t aux;
	uint64_t off;
	uint64_t pcsum;
};

struct tbs_wire_hello {
	uint16_t major;
	uint16_t minor;
	uint32_t options;
	uint64_t nonce;
	uint64_t peer_nonce;
	uint64_t rx_window;
	uint32_t max_payload;
	uint8_t role;
	uint8_t hflags;
	uint8_t id_len;
	uint8_t id[TBS_WIRE_MAX_ID];
};

enum tbs_wire_result {
	TBS_WIRE_MORE = 0, /* no complete record yet; feed more bytes */
	TBS_WIRE_RECORD = 1, /* a valid record */
	TBS_WIRE_BAD_PAYLOAD = 2, /* valid header, payload checksum wrong */
};

struct tbs_wire_scan {
	size_t used; /* bytes of the input the caller may drop */
	size_t skipped; /* of those, bytes that were not part of a record */
	size_t foreign; /* record starts whose header check failed */
	struct tbs_wire_hdr hdr; /* RECORD and BAD_PAYLOAD */
	const uint8_t *payload; /* RECORD only; points into the input */
};

#pragma GCC visibility push(hidden) /* not exported by the library */

uint64_t tbs_wire_csum(const void *p, size_t n);

uint64_t tbs_wire_key(uint64_t nonce_a, uint64_t nonce_b);
void tbs_wire_hdr_encode(uint8_t out[TBS_WIRE_HDR_LEN],
			 const struct tbs_wire_hdr *h, uint64_t key);
int tbs_wire_hdr_decode(const uint8_t in[TBS_WIRE_HDR_LEN], size_t max_payload,
			uint64_t key, struct tbs_wire_hdr *h);
size_t tbs_wire_encode(uint8_t *out, size_t cap, struct tbs_wire_hdr *h,
		       const void *payload, uint64_t key);
int tbs_wire_scan(const uint8_t *buf, size_t len, size_t max_payload,
		  uint64_t key, struct tbs_wire_scan *out);

size_t tbs_wire_hello_encode(uint8_t *out, size_t cap,
			     const struct tbs_wire_hello *h);
int tbs_wire_hello_decode(const uint8_t *p, size_t n,
			  struct tbs_wire_hello *h);

#pragma GCC visibility pop

#endif /* TBS_WIRE_H */
