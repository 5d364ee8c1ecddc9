// SPDX-License-Identifier: MIT
/*
 * Session records: encoding, decoding and resynchronisation.
 *
 *   type    name    payload                      offset field
 *   0x01    HELLO   tbs_wire_hello (40 + id)     0
 *   0x02    DATA    application bytes            stream offset of byte 0
 *   0x03    ACK     u64 credit limit             next expected offset
 *   0x04    NACK    none                         next expected offset
 *   0x05    END     u64 stream hash              total bytes sent
 *   0x06    ENDACK  u64 stream hash              total bytes confirmed
 *   0x07    BYE     u64 stream hash              total bytes confirmed
 *   0x08    ABORT   message text (<= 200)        0
 *
 * The header checksum of HELLO is seeded with 0, so that any side, of any
 * version, can read it; every other record's is seeded with the session
 * key, derived from both HELLO nonces, so that a record of another session
 * (an earlier run's frames, delivered late) is rejected like damaged bytes.
 *
 * The scanner never trusts a length before the header checksum matched, and
 * never accepts a length above the caller's maximum.  After any mismatch it
 * moves one byte past the suspected record start and looks for the magic
 * again, so a record hidden behind garbage or behind a truncated record is
 * still found.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "wire.h"

uint64_t tbs_wire_csum(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

/*
 * The key of the session between the HELLO nonces @nonce_a and @nonce_b:
 * the same on both sides (the order does not matter), never 0.
 */
uint64_t tbs_wire_key(uint64_t nonce_a, uint64_t nonce_b)
{
	uint8_t d[16];
	uint64_t k;

	tbsi_le_put64(d, nonce_a < nonce_b ? nonce_a : nonce_b);
	tbsi_le_put64(d + 8, nonce_a < nonce_b ? nonce_b : nonce_a);
	k = XXH3_64bits(d, sizeof(d));
	return k ? k : 1;
}

static uint64_t hdr_csum(const uint8_t *p, uint64_t key)
{
	return XXH3_64bits_withSeed(p, 32, key);
}

void tbs_wire_hdr_encode(uint8_t out[TBS_WIRE_HDR_LEN],
			 const struct tbs_wire_hdr *h, uint64_t key)
{
	out[0] = TBS_WIRE_MAGIC_0;
	out[1] = TBS_WIRE_MAGIC_1;
	out[2] = TBS_WIRE_MAGIC_2;
	out[3] = TBS_WIRE_MAGIC_3;
	out[4] = h->type;
	out[5] = h->flags;
	tbsi_le_put16(out + 6, h->app);
	tbsi_le_put32(out + 8, h->len);
	tbsi_le_put32(out + 12, h->aux);
	tbsi_le_put64(out + 16, h->off);
	tbsi_le_put64(out + 24, h->pcsum);
	tbsi_le_put64(out + 32,
		      hdr_csum(out, h->type == TBS_REC_HELLO ? 0 : key));
}

static int is_magic(const uint8_t *p)
{
	return p[0] == TBS_WIRE_MAGIC_0 && p[1] == TBS_WIRE_MAGIC_1 &&
	       p[2] == TBS_WIRE_MAGIC_2 && p[3] == TBS_WIRE_MAGIC_3;
}

/*
 * Whether the header checksum matches: seed 0 for a HELLO, the session key
 * for anything else (no record but HELLO is valid before the key is known).
 */
static int hdr_valid(const uint8_t *in, uint64_t key)
{
	uint64_t c = tbsi_le_get64(in + 32);

	if (in[4] == TBS_REC_HELLO)
		return c == hdr_csum(in, 0);
	return key && c == hdr_csum(in, key);
}

/*
 * Returns 0, -EBADMSG for a bad magic or header checksum (or a record of
 * another session), -EMSGSIZE for a length above max_payload (only
 * reported once the checksum matched).
 */
int tbs_wire_hdr_decode(const uint8_t in[TBS_WIRE_HDR_LEN], size_t max_payload,
			uint64_t key, struct tbs_wire_hdr *h)
{
	if (!is_magic(in))
		return -EBADMSG;
	if (!hdr_valid(in, key))
		return -EBADMSG;
	h->type = in[4];
	h->flags = in[5];
	h->app = tbsi_le_get16(in + 6);
	h->len = tbsi_le_get32(in + 8);
	h->aux = tbsi_le_get32(in + 12);
	h->off = tbsi_le_get64(in + 16);
	h->pcsum = tbsi_le_get64(in + 24);
	if (h->len > max_payload)
		return -EMSGSIZE;
	return 0;
}

/*
 * Writes header and payload into out; fills in h->pcsum.  Returns the record
 * size, or 0 when it does not fit in cap.
 */
size_t tbs_wire_encode(uint8_t *out, size_t cap, struct tbs_wire_hdr *h,
		       const void *payload, uint64_t key)
{
	size_t n = TBS_WIRE_HDR_LEN + (size_t)h->len;

	if (n > cap)
		return 0;
	h->pcsum = tbs_wire_csum(payload, h->len);
	if (h->len)
		memcpy(out + TBS_WIRE_HDR_LEN, payload, h->len);
	tbs_wire_hdr_encode(out, h, key);
	return n;
}

/* First position at or after from where the magic could start. */
static size_t find_magic(const uint8_t *buf, size_t len, size_t from)
{
	while (from < len) {
		const uint8_t *p = memchr(buf + from, TBS_WIRE_MAGIC_0,
					  len - from);
		size_t i;

		if (!p)
			return len;
		i = (size_t)(p - buf);
		if (len - i < 4 || is_magic(p))
			return i;
		from = i + 1;
	}
	return len;
}

static int scan_at(const uint8_t *buf, size_t len, size_t i,
		   size_t max_payload, uint64_t key, struct tbs_wire_scan *out)
{
	struct tbs_wire_hdr *h = &out->hdr;

	if (len - i < TBS_WIRE_HDR_LEN)
		return TBS_WIRE_MORE;
	if (tbs_wire_hdr_decode(buf + i, max_payload, key, h)) {
		out->foreign++;
		return -1;
	}
	if (len - i - TBS_WIRE_HDR_LEN < h->len)
		return TBS_WIRE_MORE;
	if (tbs_wire_csum(buf + i + TBS_WIRE_HDR_LEN, h->len) != h->pcsum)
		return TBS_WIRE_BAD_PAYLOAD;
	out->payload = buf + i + TBS_WIRE_HDR_LEN;
	return TBS_WIRE_RECORD;
}

/*
 * Looks for the next record in buf.  Returns an enum tbs_wire_result; out->used
 * says how many bytes the caller may drop (for MORE: the garbage before a
 * possible record start; for BAD_PAYLOAD: up to one byte past the bad
 * record's start, so that its payload is searched for records too).
 */
int tbs_wire_scan(const uint8_t *buf, size_t len, size_t max_payload,
		  uint64_t key, struct tbs_wire_scan *out)
{
	size_t i = 0;
	int r;

	memset(out, 0, sizeof(*out));
	for (;;) {
		i = find_magic(buf, len, i);
		if (i == len) {
			out->used = out->skipped = len;
			return TBS_WIRE_MORE;
		}
		r = scan_at(buf, len, i, max_payload, key, out);
		if (r == TBS_WIRE_MORE) {
			out->used = out->skipped = i;
			return r;
		}
		if (r == TBS_WIRE_RECORD) {
			out->skipped = i;
			out->used = i + TBS_WIRE_HDR_LEN + out->hdr.len;
			return r;
		}
		if (r == TBS_WIRE_BAD_PAYLOAD) {
			out->skipped = i + 1;
			out->used = i + 1;
			return r;
		}
		i++;
	}
}

size_t tbs_wire_hello_encode(uint8_t *out, size_t cap,
			     const struct tbs_wire_hello *h)
{
	size_t n = TBS_WIRE_HELLO_LEN + h->id_len;

	if (n > cap || h->id_len > TBS_WIRE_MAX_ID)
		return 0;
	memset(out, 0, TBS_WIRE_HELLO_LEN);
	tbsi_le_put16(out + 0, h->major);
	tbsi_le_put16(out + 2, h->minor);
	tbsi_le_put32(out + 4, h->options);
	tbsi_le_put64(out + 8, h->nonce);
	tbsi_le_put64(out + 16, h->peer_nonce);
	tbsi_le_put64(out + 24, h->rx_window);
	tbsi_le_put32(out + 32, h->max_payload);
	out[36] = h->role;
	out[37] = h->hflags;
	out[38] = h->id_len;
	memcpy(out + TBS_WIRE_HELLO_LEN, h->id, h->id_len);
	return n;
}

/*
 * Returns 0, -EPROTONOSUPPORT for another major version (major and minor are
 * filled in), -EBADMSG for a malformed HELLO.  Bytes after the identity are
 * ignored: later minor versions may append fields.
 */
int tbs_wire_hello_decode(const uint8_t *p, size_t n, struct tbs_wire_hello *h)
{
	memset(h, 0, sizeof(*h));
	if (n < 4)
		return -EBADMSG;
	h->major = tbsi_le_get16(p);
	h->minor = tbsi_le_get16(p + 2);
	if (h->major != TBS_PROTO_MAJOR)
		return -EPROTONOSUPPORT;
	if (n < TBS_WIRE_HELLO_LEN)
		return -EBADMSG;
	h->options = tbsi_le_get32(p + 4);
	h->nonce = tbsi_le_get64(p + 8);
	h->peer_nonce = tbsi_le_get64(p + 16);
	h->rx_window = tbsi_le_get64(p + 24);
	h->max_payload = tbsi_le_get32(p + 32);
	h->role = p[36];
	h->hflags = p[37];
	h->id_len = p[38];
	if (h->id_len > TBS_WIRE_MAX_ID ||
	    n < TBS_WIRE_HELLO_LEN + (size_t)h->id_len)
		return -EBADMSG;
	memcpy(h->id, p + TBS_WIRE_HELLO_LEN, h->id_len);
	return 0;
}
