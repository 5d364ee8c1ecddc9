// SPDX-License-Identifier: MIT
/*
 * The forward messages (src/forward-wire.c): every type encoded and
 * decoded, every wrong length and range refused, random bytes never read
 * out of bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz-replay.h"
#include "tap.h"
#include "../../fuzz/forward-target.h"
#include "../../lib/byteorder.h"
#include "../../src/forward.h"

static uint8_t b[FWD_MSG_MAX + 16];

static void roundtrip(void)
{
	struct fwd_hello h = { .version = 1, .role = FWD_ROLE_CONNECT,
			       .max_conns = 7, .window = 1 << 20,
			       .max_data = FWD_MAX_DATA };
	struct fwd_msg m;
	const char *why = NULL;
	size_t n;

	n = fwd_encode_hello(b, &h);
	ok(n == FWD_HELLO_LEN && !fwd_decode(FWD_HELLO, b, n, &m, &why) &&
		       m.hello.role == FWD_ROLE_CONNECT &&
		       m.hello.max_conns == 7 && m.hello.window == 1 << 20,
	       "HELLO round trip");
	n = fwd_encode(b, FWD_OPEN, 9, 0, "10.1.2.3:4");
	ok(!fwd_decode(FWD_OPEN, b, n, &m, &why) && m.id == 9 &&
		       m.len == 10 && !memcmp(m.data, "10.1.2.3:4", 10),
	       "OPEN round trip with its text");
	n = fwd_encode(b, FWD_REFUSE, 3, ECONNREFUSED, "no");
	ok(!fwd_decode(FWD_REFUSE, b, n, &m, &why) &&
		       m.err == ECONNREFUSED && m.len == 2,
	       "REFUSE round trip");
	n = fwd_encode(b, FWD_CREDIT, 3, 65536, NULL);
	ok(!fwd_decode(FWD_CREDIT, b, n, &m, &why) && m.credit == 65536,
	       "CREDIT round trip");
	n = fwd_encode(b, FWD_RESET, 3, 99999, NULL);
	ok(!fwd_decode(FWD_RESET, b, n, &m, &why) && m.err == EIO,
	       "RESET with an errno out of range reads as EIO");
}

struct bad_case {
	uint16_t type;
	size_t len;
	const char *what;
};

static const struct bad_case bad_cases[] = {
	{ FWD_HELLO, 15, "HELLO of 15 bytes" },
	{ FWD_OPEN, 3, "OPEN shorter than its id" },
	{ FWD_OPEN, FWD_HDR + FWD_TEXT_MAX + 1, "OPEN text of 201 bytes" },
	{ FWD_ACCEPT, 5, "ACCEPT of 5 bytes" },
	{ FWD_REFUSE, 7, "REFUSE without its errno" },
	{ FWD_DATA, 4, "DATA of no bytes" },
	{ FWD_DATA, FWD_MSG_MAX + 1, "DATA above one record" },
	{ FWD_CREDIT, 12, "CREDIT of 12 bytes" },
	{ FWD_SHUT, 0, "SHUT of no bytes" },
	{ FWD_RESET, 4, "RESET without its errno" },
	{ FWD_CLOSE, 8, "CLOSE of 8 bytes" },
	{ 0x4600, 4, "type 0x4600" },
	{ 0x460a, 4, "type 0x460a" },
	{ 0, 4, "type 0" },
};

static void refused(void)
{
	struct fwd_msg m;
	const char *why;
	size_t i;

	memset(b, 0, sizeof(b));
	tbsi_le_put32(b, 1);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		why = NULL;
		ok(fwd_decode(bad_cases[i].type, b, bad_cases[i].len, &m,
				  &why) == -EPROTO &&
			       why,
		       "refused: %s (%s)", bad_cases[i].what,
		       why ? why : "no reason");
	}
	tbsi_le_put32(b, 0);
	ok(fwd_decode(FWD_SHUT, b, 4, &m, &why) == -EPROTO,
	       "refused: connection id 0");
	tbsi_le_put32(b, 1);
	tbsi_le_put32(b + 4, 0);
	ok(fwd_decode(FWD_CREDIT, b, 8, &m, &why) == -EPROTO,
	       "refused: CREDIT of 0");
	tbsi_le_put32(b + 4, FWD_MAX_WINDOW + 1);
	ok(fwd_decode(FWD_CREDIT, b, 8, &m, &why) == -EPROTO,
	       "refused: CREDIT above the largest window");
}

/* Each field of HELLO out of range. */
static void hello_ranges(void)
{
	static const struct { int off, size; uint32_t v; const char *w; } f[] = {
		{ 0, 2, 2, "version 2" },
		{ 2, 1, 3, "role 3" },
		{ 4, 4, 0, "no connections" },
		{ 4, 4, FWD_MAX_CONNS + 1, "too many connections" },
		{ 8, 4, FWD_MIN_WINDOW - 1, "window too small" },
		{ 8, 4, FWD_MAX_WINDOW + 1, "window too large" },
		{ 12, 4, FWD_MIN_DATA - 1, "data size too small" },
		{ 12, 4, FWD_MAX_DATA + 1, "data size too large" },
	};
	struct fwd_hello h = { .version = 1, .role = FWD_ROLE_LISTEN,
			       .max_conns = 1, .window = FWD_MIN_WINDOW,
			       .max_data = FWD_MIN_DATA };
	struct fwd_msg m;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		fwd_encode_hello(b, &h);
		if (f[i].size == 1)
			b[f[i].off] = (uint8_t)f[i].v;
		else if (f[i].size == 2)
			tbsi_le_put16(b + f[i].off, (uint16_t)f[i].v);
		else
			tbsi_le_put32(b + f[i].off, f[i].v);
		ok(fwd_decode(FWD_HELLO, b, FWD_HELLO_LEN, &m, &why) ==
			       -EPROTO,
		       "HELLO refused: %s", f[i].w);
	}
	fwd_encode_hello(b, &h);
	ok(!fwd_decode(FWD_HELLO, b, 40, &m, &why),
	       "HELLO with appended fields is taken (later versions)");
}

/* Random types and lengths: decoding never reads beyond @len. */
static void random_bytes(void)
{
	struct fwd_msg m;
	const char *why;
	unsigned int i, ok = 0;
	uint8_t *p;
	size_t len;

	srand(7);
	for (i = 0; i < 20000; i++) {
		len = (size_t)rand() % 64;
		p = malloc(len ? len : 1); /* ASan sees any read past it */
		for (size_t k = 0; k < len; k++)
			p[k] = (uint8_t)rand();
		if (!fwd_decode((uint16_t)(FWD_HELLO + rand() % 11 - 1), p,
				len, &m, &why) &&
		    m.data + m.len <= p + len)
			ok++;
		else if (!why)
			ok = 1u << 31;
		free(p);
	}
	ok(ok < 1u << 31, "20000 random messages decoded or refused "
			      "with a reason (%u taken)",
	       ok);
}

static int replay_one(const uint8_t *d, size_t n)
{
	return fuzz_forward_one(d, n);
}

/* The fuzz target over its corpus (it traps on a broken invariant). */
static void corpus(void)
{
	static uint8_t in[FWD_MSG_MAX + 1];
	int n = fuzz_replay_corpus(FUZZ_CORPUS, in, sizeof(in), replay_one);

	ok(n >= 9, "the fuzz target over its corpus: %d inputs", n);
}

int main(void)
{
	corpus();
	roundtrip();
	refused();
	hello_ranges();
	random_bytes();
	return tap_done();
}
