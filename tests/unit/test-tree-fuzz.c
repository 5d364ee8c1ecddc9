// SPDX-License-Identifier: MIT
/*
 * Runs the fuzz target of the file-tree decoder (fuzz/tree-target.h)
 * without libFuzzer: over every file of the seed corpus, then over
 * deterministic random records made of valid messages with bits flipped,
 * lengths changed, pieces cut out and garbage inserted.
 * "test-tree-fuzz --write-corpus DIR" writes the seeds.
 */
#include <stdio.h>

#include "../../fuzz/tree-target.h"
#include "../fuzz-replay.h"
#include "../tap.h"

#define ITERATIONS 200000
#define INPUT_CAP 8192

static size_t put_entry(uint8_t *out, size_t cap, uint64_t *st)
{
	static const char *const pool[] = { "a",    "dir",	"..",
					    ".",    "",		"x/y",
					    "n\nl", "\xff\xfe", "long" };
	const char *names[4];
	uint16_t lens[4];
	struct tree_entry e = { .kind = (uint8_t)(1 + rnd(st) % 7),
				.ncomp = (uint16_t)(1 + rnd(st) % 4),
				.mode = rnd(st) % 8 ? 0644 : rnd(st),
				.link = rnd(st) % 2 ? TREE_NONE : rnd(st) % 4,
				.index = rnd(st) % 8,
				.size = rnd(st) % 4 ? rnd(st)
						    : (uint64_t)-1 / rnd(st) };
	size_t i;

	for (i = 0; i < e.ncomp; i++) {
		names[i] = pool[rnd(st) % 9];
		lens[i] = (uint16_t)strlen(names[i]);
	}
	e.target_len = e.kind == TK_SYMLINK ? 3 : 0;
	return tree_entry_encode(out, cap, &e, names, lens, "../");
}

static size_t put_msg(uint8_t *out, size_t cap, uint64_t *st)
{
	static const uint8_t types[] = {
		1, 2, 2, 2, 3, 4, 5, 5, 6, 7, 8, 0x41, 0x42, 0x43, 0x44, 0x99
	};
	static const uint8_t lens[] = { 24, 0,	0, 0,  8, 16, 40, 40,
					24, 20, 8, 24, 4, 30, 16, 3 };
	uint8_t body[64];
	size_t i, k = rnd(st) % sizeof(types);

	if (types[k] == TM_ENTRY)
		return put_entry(out, cap, st);
	for (i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(rnd(st) % 4 ? rnd(st) % 3 : rnd(st));
	if (types[k] == TM_START)
		body[0] = 1;
	return tree_msg_put(out, cap, types[k], body, lens[k]);
}

static size_t make_input(uint8_t *buf, uint64_t *st)
{
	size_t n = 0, k, i;

	while (n < INPUT_CAP / 2 && rnd(st) % 6)
		n += put_msg(buf + n, INPUT_CAP / 2 - n, st);
	for (k = rnd(st) % 3; k--;)
		if (n)
			buf[rnd(st) % n] ^= (uint8_t)(1u << (rnd(st) % 8));
	if (n > 8 && rnd(st) % 4 == 0) /* a length that lies */
		tbsi_le_put32(buf + 4, rnd(st) % 2 ? rnd(st) : (uint32_t)n);
	if (n && rnd(st) % 4 == 0)
		n -= rnd(st) % n;
	if (n > 8 && rnd(st) % 5 == 0) { /* cut a piece out */
		i = rnd(st) % n;
		k = rnd(st) % (n - i);
		memmove(buf + i, buf + i + k, n - i - k);
		n -= k;
	}
	if (rnd(st) % 6 == 0) /* garbage at the end */
		for (k = rnd(st) % 32; k-- && n < INPUT_CAP;)
			buf[n++] = (uint8_t)rnd(st);
	return n;
}

static int replay_corpus(const char *dir)
{
	static uint8_t buf[TREE_REC_MAX];

	return fuzz_replay_corpus(dir, buf, sizeof(buf), fuzz_tree_one);
}

static int write_corpus(const char *dir)
{
	static uint8_t buf[INPUT_CAP];

	return fuzz_write_corpus(dir, buf, make_input);
}

/* How many random records decode completely (the generator is useful). */
static unsigned long count_valid(struct fuzz_tree_in *in)
{
	return tree_parse_record(in->data, in->size, fuzz_tree_msg, in, NULL,
				 0) == 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[INPUT_CAP];
	struct fuzz_tree_in in;
	unsigned long valid = 0;
	uint64_t st = 1;
	int i, n;

	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]);
	n = replay_corpus(FUZZ_CORPUS);
	ok(n > 0, "replayed %d corpus inputs from %s", n, FUZZ_CORPUS);
	for (i = 0; i < ITERATIONS; i++) {
		in = (struct fuzz_tree_in){ .data = buf };
		in.size = make_input(buf, &st);
		fuzz_tree_one(buf, in.size);
		valid += count_valid(&in);
	}
	ok(1, "%d random records decoded without breaking an invariant",
	   ITERATIONS);
	ok(valid > ITERATIONS / 100, "%lu of them were valid records", valid);
	return tap_done();
}
