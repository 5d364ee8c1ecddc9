// SPDX-License-Identifier: MIT
/*
 * Encoder and decoder of session records: round trips, every bit of a
 * record corrupted, truncation, resynchronisation after garbage, hostile
 * lengths and HELLO versions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/wire.h"
#include "../tap.h"

#define TEST_KEY 0x1234abcd5678ef00ull

static size_t make_record(uint8_t *out, size_t cap, uint8_t type,
			  uint16_t app, uint64_t off, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	struct tbs_wire_hdr h = {
		.type = type, .flags = 0, .app = app, .len = (uint32_t)len,
		.aux = 7, .off = off,
	};
	size_t i, n;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + 5);
	n = tbs_wire_encode(out, cap, &h, p, TEST_KEY);
	free(p);
	return n;
}

static void test_round_trip(void)
{
	uint8_t buf[2048];
	struct tbs_wire_scan sc;
	size_t n = make_record(buf, sizeof(buf), TBS_REC_DATA, 0xBEEF,
			       0x0123456789ABCDEFull, 1000);
	int r;

	is_int(n, TBS_WIRE_HDR_LEN + 1000, "record size is header + payload");
	r = tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc);
	is_int(r, TBS_WIRE_RECORD, "a record decodes");
	is_int(sc.used, n, "all of it is used");
	is_int(sc.skipped, 0, "nothing skipped");
	ok(sc.hdr.type == TBS_REC_DATA && sc.hdr.app == 0xBEEF &&
	   sc.hdr.len == 1000 && sc.hdr.aux == 7 &&
	   sc.hdr.off == 0x0123456789ABCDEFull,
	   "every header field survives the round trip");
	ok(sc.payload == buf + TBS_WIRE_HDR_LEN && sc.payload[999] ==
	   (uint8_t)(999 * 31 + 5), "payload points at the bytes");
	ok(buf[0] == 'T' && buf[1] == 'B' && buf[2] == 'S' && buf[3] == 0xA5,
	   "magic is TBS\\xA5");
	ok(tbsi_le_get64(buf + 16) == 0x0123456789ABCDEFull,
	   "offset is little-endian at byte 16");
	n = make_record(buf, sizeof(buf), TBS_REC_NACK, 0, 5, 0);
	r = tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc);
	ok(r == TBS_WIRE_RECORD && sc.hdr.len == 0 && sc.used == n,
	   "an empty record decodes");
	is_int(make_record(buf, 100, TBS_REC_DATA, 0, 0, 61), 0,
	       "encode refuses a buffer that is too small");
}

/* Flips every bit of a record: it must never decode as that record. */
static void test_every_bit(void)
{
	uint8_t buf[256], orig[256];
	struct tbs_wire_scan sc;
	size_t n = make_record(orig, sizeof(orig), TBS_REC_DATA, 3, 4096, 150);
	size_t bit, bad_hdr = 0, bad_payload = 0, wrong = 0;
	int r;

	for (bit = 0; bit < n * 8; bit++) {
		memcpy(buf, orig, n);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc);
		if (r == TBS_WIRE_RECORD)
			wrong++;
		else if (r == TBS_WIRE_BAD_PAYLOAD)
			bad_payload++;
		else
			bad_hdr++;
	}
	is_int(wrong, 0, "no flipped bit yields a record");
	is_int(bad_hdr, TBS_WIRE_HDR_LEN * 8,
	       "every header bit is caught by the magic or header checksum");
	is_int(bad_payload, 150 * 8,
	       "every payload bit is caught by the payload checksum");
}

static void test_truncated(void)
{
	uint8_t buf[512];
	struct tbs_wire_scan sc;
	size_t n = make_record(buf, sizeof(buf), TBS_REC_DATA, 0, 0, 300);
	size_t len, bad = 0;

	for (len = 0; len < n; len++)
		if (tbs_wire_scan(buf, len, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc) !=
			    TBS_WIRE_MORE ||
		    sc.used != 0)
			bad++;
	is_int(bad, 0, "every truncation asks for more and keeps the bytes");
}

static void test_resync(void)
{
	static const char fake[] = "TBS\xA5" "garbage after a fake magic....";
	uint8_t buf[8192];
	struct tbs_wire_scan sc;
	size_t g = 1000, n, pos, found = 0;
	int r;

	/* garbage with fake magics, then a truncated record, then a record */
	for (n = 0; n < g; n++)
		buf[n] = (uint8_t)(n * 7);
	memcpy(buf + 10, "TBS\xA5", 4);
	memcpy(buf + 500, fake, sizeof(fake) - 1);
	n = make_record(buf + g, 2000, TBS_REC_DATA, 1, 0, 1000);
	g += n / 2; /* keep half of it */
	n = make_record(buf + g, sizeof(buf) - g, TBS_REC_DATA, 2, 1000, 1500);
	r = tbs_wire_scan(buf, 1000, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc);
	ok(r == TBS_WIRE_MORE && sc.used == 1000 && sc.skipped == 1000,
	   "pure garbage is skipped, fake magics included");
	for (pos = 0; pos < g + n && found < 2; pos += sc.used) {
		r = tbs_wire_scan(buf + pos, g + n - pos, TBS_WIRE_MAX_PAYLOAD,
				  TEST_KEY, &sc);
		if (r == TBS_WIRE_RECORD)
			found = sc.hdr.app;
		if (r == TBS_WIRE_MORE && !sc.used)
			break;
	}
	is_int(found, 2, "the record after a truncated one is found");
	is_int(pos, g + n, "and everything up to its end was used");
}

static void test_hostile_length(void)
{
	uint8_t buf[TBS_WIRE_HDR_LEN];
	struct tbs_wire_hdr h = { .type = TBS_REC_DATA, .len = 0xFFFFFFFFu };
	struct tbs_wire_hdr out;
	struct tbs_wire_scan sc;
	int r;

	tbs_wire_hdr_encode(buf, &h, TEST_KEY);
	is_int(tbs_wire_hdr_decode(buf, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &out), -EMSGSIZE,
	       "a length of 4 GiB is refused even with a valid checksum");
	r = tbs_wire_scan(buf, sizeof(buf), TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc);
	ok(r == TBS_WIRE_MORE && sc.used == sizeof(buf),
	   "the scanner skips it instead of waiting for 4 GiB");
	h.len = TBS_WIRE_MAX_PAYLOAD + 1;
	tbs_wire_hdr_encode(buf, &h, TEST_KEY);
	is_int(tbs_wire_hdr_decode(buf, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &out), -EMSGSIZE,
	       "one byte above the maximum is refused");
	h.len = 4096;
	tbs_wire_hdr_encode(buf, &h, TEST_KEY);
	is_int(tbs_wire_hdr_decode(buf, 1024, TEST_KEY, &out), -EMSGSIZE,
	       "the caller's maximum applies");
}

static void test_hello(void)
{
	struct tbs_wire_hello h = {
		.major = 2, .minor = 0, .options = 0xA5, .nonce = 42,
		.peer_nonce = 43, .rx_window = 1 << 22, .max_payload = 65536,
		.role = 1, .hflags = 1, .id_len = 3, .id = "abc",
	};
	struct tbs_wire_hello d;
	uint8_t p[TBS_WIRE_HELLO_LEN + TBS_WIRE_MAX_ID + 8];
	size_t n = tbs_wire_hello_encode(p, sizeof(p), &h);

	is_int(n, TBS_WIRE_HELLO_LEN + 3, "HELLO is 40 bytes + identity");
	is_int(tbs_wire_hello_decode(p, n, &d), 0, "HELLO decodes");
	ok(!memcmp(&h, &d, sizeof(h)), "every HELLO field survives");
	memset(p + n, 0xEE, 8);
	p[2] = 7; /* minor 7 with fields appended */
	is_int(tbs_wire_hello_decode(p, n + 8, &d), 0,
	       "a later minor version with more fields is accepted");
	is_int(d.minor, 7, "and its minor version is seen");
	is_int(tbs_wire_hello_decode(p, n - 1, &d), -EBADMSG,
	       "a HELLO shorter than its identity is refused");
	is_int(tbs_wire_hello_decode(p, 20, &d), -EBADMSG,
	       "a HELLO shorter than 40 bytes is refused");
	p[38] = TBS_WIRE_MAX_ID + 1;
	is_int(tbs_wire_hello_decode(p, sizeof(p), &d), -EBADMSG,
	       "an identity above 64 bytes is refused");
	tbsi_le_put16(p, 1);
	tbsi_le_put16(p + 2, 3);
	is_int(tbs_wire_hello_decode(p, 4, &d), -EPROTONOSUPPORT,
	       "major version 1 is refused from its first 4 bytes");
	ok(d.major == 1 && d.minor == 3, "and the peer's version is reported");
	tbsi_le_put16(p, 3);
	is_int(tbs_wire_hello_decode(p, 4, &d), -EPROTONOSUPPORT,
	       "so is major version 3");
	h.id_len = TBS_WIRE_MAX_ID + 1;
	is_int(tbs_wire_hello_encode(p, sizeof(p), &h), 0,
	       "encode refuses a long identity");
}

/*
 * Records are bound to their session: only HELLO is valid without the key,
 * and a record under another key (an earlier session's) is not a record.
 */
static void test_keys(void)
{
	uint64_t other = tbs_wire_key(1, 2);
	uint8_t buf[256], hello[TBS_WIRE_HELLO_LEN];
	struct tbs_wire_hdr h = { .type = TBS_REC_DATA, .len = 4 };
	struct tbs_wire_scan sc;
	size_t n;

	ok(tbs_wire_key(1, 2) == tbs_wire_key(2, 1) && tbs_wire_key(1, 2) &&
	   tbs_wire_key(1, 2) != tbs_wire_key(1, 3),
	   "the key is the same on both sides and differs per session");
	n = tbs_wire_encode(buf, sizeof(buf), &h, "data", TEST_KEY);
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc),
	       TBS_WIRE_RECORD, "a record decodes under its session's key");
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, other, &sc),
	       TBS_WIRE_MORE, "not under another session's key");
	ok(sc.skipped == n && sc.foreign == 1,
	   "it is skipped, and counted as a foreign record start");
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, 0, &sc),
	       TBS_WIRE_MORE, "nor before any key is known");
	n = tbs_wire_encode(buf, sizeof(buf), &h, "data", 0);
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, TEST_KEY, &sc),
	       TBS_WIRE_MORE, "a DATA record with the fixed seed of 1.x is not one");
	memset(hello, 0, sizeof(hello));
	h.type = TBS_REC_HELLO;
	h.len = sizeof(hello);
	n = tbs_wire_encode(buf, sizeof(buf), &h, hello, TEST_KEY);
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, 0, &sc),
	       TBS_WIRE_RECORD, "a HELLO decodes without a key");
	is_int(tbs_wire_scan(buf, n, TBS_WIRE_MAX_PAYLOAD, other, &sc),
	       TBS_WIRE_RECORD, "and under any key");
}

int main(void)
{
	test_keys();
	test_round_trip();
	test_every_bit();
	test_truncated();
	test_resync();
	test_hostile_length();
	test_hello();
	return tap_done();
}
