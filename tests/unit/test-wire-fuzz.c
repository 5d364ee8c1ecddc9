// SPDX-License-Identifier: MIT
/*
 * Runs the fuzz target of the record decoder (fuzz/wire-target.h) without
 * libFuzzer: over every file of the seed corpus, then over deterministic
 * random inputs made from valid records by flipping, cutting, splicing and
 * inserting garbage.  "test-wire-fuzz --write-corpus DIR" writes the seeds.
 */
#include <stdio.h>

#include "../../fuzz/wire-target.h"
#include "../fuzz-replay.h"

#define ITERATIONS 100000
#define INPUT_CAP 65536
#define TEST_KEY WIRE_FUZZ_KEY

static size_t put_record(uint8_t *out, size_t cap, uint64_t *st)
{
	static const uint8_t types[] = { 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 0x40 };
	uint8_t p[3000];
	struct tbs_wire_hdr h = { 0 };
	struct tbs_wire_hello hello = { .major = 2, .id_len = 5,
					.id = "ident" };
	size_t i;

	h.type = types[rnd(st) % sizeof(types)];
	h.len = rnd(st) % 300;
	h.off = rnd(st) % 3 ? rnd(st) : UINT64_MAX;
	h.app = (uint16_t)rnd(st);
	for (i = 0; i < h.len; i++)
		p[i] = (uint8_t)rnd(st);
	if (h.type == TBS_REC_HELLO) {
		hello.minor = (uint16_t)(rnd(st) % 3);
		hello.major = rnd(st) % 4 ? 2 : 1;
		h.len = (uint32_t)tbs_wire_hello_encode(p, sizeof(p), &hello);
		h.len += rnd(st) % 16;
	}
	return tbs_wire_encode(out, cap, &h, p, TEST_KEY);
}

static size_t make_input(uint8_t *buf, uint64_t *st)
{
	size_t n = 0, k, i;

	while (n < INPUT_CAP / 2 && rnd(st) % 8) {
		if (rnd(st) % 5 == 0)
			for (k = rnd(st) % 64; k-- && n < INPUT_CAP / 2;)
				buf[n++] = (uint8_t)rnd(st);
		n += put_record(buf + n, INPUT_CAP - n, st);
	}
	for (k = rnd(st) % 4; k--;)
		if (n)
			buf[rnd(st) % n] ^= (uint8_t)(1u << (rnd(st) % 8));
	if (n && rnd(st) % 3 == 0)
		n -= rnd(st) % n;
	if (n > 8 && rnd(st) % 4 == 0) { /* cut a piece out */
		i = rnd(st) % n;
		k = rnd(st) % (n - i);
		memmove(buf + i, buf + i + k, n - i - k);
		n -= k;
	}
	return n;
}

int main(int argc, char **argv)
{
	static uint8_t buf[INPUT_CAP];
	const struct fuzz_replay r = {
		.corpus = FUZZ_CORPUS,
		.one = fuzz_wire_one,
		.make = make_input,
		.buf = buf,
		.file_cap = 1 << 20,
		.iterations = ITERATIONS,
	};

	return fuzz_replay_main(argc, argv, &r);
}
