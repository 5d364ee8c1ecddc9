/* SPDX-License-Identifier: MIT */
/*
 * The decoder under fuzzing, shared by the libFuzzer harness (fuzz-wire.c)
 * and by the replay test that runs in the normal test suite
 * (tests/unit/test-wire-fuzz.c).
 *
 * The input is scanned twice, the way the session's I/O thread does: once
 * whole, once fed in small pieces; both must find the same records, every
 * result must stay inside the input, and every HELLO payload is decoded.
 * A broken invariant traps.
 */
#ifndef TBS_FUZZ_WIRE_TARGET_H
#define TBS_FUZZ_WIRE_TARGET_H

#include <stdlib.h>
#include <string.h>

#include "../lib/wire.h"

/* the session key the decoder is fuzzed with: records under it are valid */
#define WIRE_FUZZ_KEY 0x5eed5eed5eed5eedull

#define FUZZ_CHECK(c)                                                         \
	do {                                                                  \
		if (!(c))                                                     \
			__builtin_trap();                                     \
	} while (0)

struct fuzz_digest {
	uint64_t records, bad, skipped, sum;
};

static inline void fuzz_note(struct fuzz_digest *d, int r,
			     const struct tbs_wire_scan *sc)
{
	struct tbs_wire_hello h;

	d->skipped += sc->skipped;
	if (r == TBS_WIRE_BAD_PAYLOAD) {
		d->bad++;
		return;
	}
	d->records++;
	d->sum = d->sum * 31 + sc->hdr.type + sc->hdr.len + sc->hdr.off +
		 sc->hdr.app + tbs_wire_csum(sc->payload, sc->hdr.len);
	if (sc->hdr.type == TBS_REC_HELLO &&
	    tbs_wire_hello_decode(sc->payload, sc->hdr.len, &h) == 0)
		FUZZ_CHECK(h.id_len <= TBS_WIRE_MAX_ID);
}

/* Scans buf[0..len) to the end; returns the bytes left undecided. */
static inline size_t fuzz_scan(const uint8_t *buf, size_t len, size_t max,
			       struct fuzz_digest *d)
{
	struct tbs_wire_scan sc;
	size_t pos = 0;
	int r;

	for (;;) {
		r = tbs_wire_scan(buf + pos, len - pos, max, WIRE_FUZZ_KEY, &sc);
		FUZZ_CHECK(sc.used <= len - pos);
		FUZZ_CHECK(sc.skipped <= sc.used);
		if (r == TBS_WIRE_RECORD) {
			FUZZ_CHECK(sc.hdr.len <= max);
			FUZZ_CHECK(sc.payload >= buf + pos &&
				   sc.payload + sc.hdr.len <= buf + len);
			FUZZ_CHECK(sc.used >= TBS_WIRE_HDR_LEN + sc.hdr.len);
		}
		if (r != TBS_WIRE_MORE) {
			FUZZ_CHECK(sc.used > 0);
			fuzz_note(d, r, &sc);
		}
		pos += sc.used;
		if (r == TBS_WIRE_MORE)
			return len - pos;
	}
}

/* Feeds the input in pieces of 1..97 bytes through a window buffer. */
static inline void fuzz_scan_pieces(const uint8_t *data, size_t size,
				    size_t max, struct fuzz_digest *d)
{
	uint8_t *buf = malloc(size + 1);
	size_t have = 0, in = 0, k, left;

	FUZZ_CHECK(buf);
	while (in < size) {
		k = 1 + data[in] % 97;
		if (k > size - in)
			k = size - in;
		memcpy(buf + have, data + in, k);
		have += k;
		in += k;
		left = fuzz_scan(buf, have, max, d);
		memmove(buf, buf + have - left, left);
		have = left;
	}
	free(buf);
}

static inline int fuzz_wire_one(const uint8_t *data, size_t size)
{
	struct fuzz_digest whole = { 0 }, pieces = { 0 };
	size_t max = size && data[0] & 1 ? 4096 : TBS_WIRE_MAX_PAYLOAD;
	struct tbs_wire_hello h;

	fuzz_scan(data, size, max, &whole);
	fuzz_scan_pieces(data, size, max, &pieces);
	FUZZ_CHECK(whole.records == pieces.records);
	FUZZ_CHECK(whole.sum == pieces.sum);
	tbs_wire_hello_decode(data, size, &h);
	return 0;
}

#endif /* TBS_FUZZ_WIRE_TARGET_H */
