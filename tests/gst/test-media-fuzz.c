// SPDX-License-Identifier: MIT
/*
 * Runs the fuzz target of the media decoders (fuzz/media-target.h)
 * without libFuzzer: over every file of the seed corpus, then over
 * deterministic random inputs made from valid messages by flipping,
 * cutting and splicing.  "test-media-fuzz --write-corpus DIR" writes the
 * seeds.
 */
#include <stdio.h>

#include "../../fuzz/media-target.h"
#include "../fuzz-replay.h"

#define ITERATIONS 100000
#define INPUT_CAP 4096

/* One valid message of a random type, with its type byte first. */
static size_t put_msg(uint8_t *out, uint64_t *st)
{
	struct tbs_media_frame f = { rnd(st), rnd(st), rnd(st), rnd(st),
				     rnd(st), rnd(st), rnd(st), rnd(st),
				     rnd(st) % 64 };
	struct tbs_media_segment s = { rnd(st), 1.0, 1.0, rnd(st), 0, 5,
				       rnd(st) % 2 ? 9 : TBS_MEDIA_NONE, 0,
				       0, TBS_MEDIA_NONE };
	struct tbs_media_keyunit k = { rnd(st) % 2, rnd(st), rnd(st) };
	static const char *caps[] = { "image/jpeg", "video/x-raw, width=(int)8",
				      "audio/x-raw" };
	const char *c;
	size_t n = 1, i;

	switch (rnd(st) % 5) {
	case 0:
		out[0] = TBS_MEDIA_FRAME & 0xff;
		n += tbs_media_frame_encode(out + 1, &f);
		for (i = 0; i < f.len; i++)
			out[n++] = (uint8_t)rnd(st);
		break;
	case 1:
		out[0] = TBS_MEDIA_SEGMENT & 0xff;
		n += tbs_media_segment_encode(out + 1, &s);
		break;
	case 2:
		out[0] = TBS_MEDIA_KEYUNIT & 0xff;
		n += tbs_media_keyunit_encode(out + 1, &k);
		break;
	case 3:
		c = caps[rnd(st) % 3];
		out[0] = TBS_MEDIA_CAPS & 0xff;
		n += tbs_media_caps_encode(out + 1, c, strlen(c));
		break;
	default:
		out[0] = TBS_MEDIA_EOS & 0xff;
		n += tbs_media_eos_encode(out + 1);
	}
	return n;
}

static size_t make_input(uint8_t *buf, uint64_t *st)
{
	size_t n = 0, k;

	while (n < INPUT_CAP / 2 && rnd(st) % 6)
		n += put_msg(buf + n, st);
	for (k = rnd(st) % 4; k--;)
		if (n)
			buf[rnd(st) % n] ^= (uint8_t)(1u << (rnd(st) % 8));
	if (n && rnd(st) % 3 == 0)
		n -= rnd(st) % n;
	return n;
}

int main(int argc, char **argv)
{
	static uint8_t buf[INPUT_CAP];
	const struct fuzz_replay r = {
		.corpus = FUZZ_CORPUS,
		.one = fuzz_media_one,
		.make = make_input,
		.buf = buf,
		.file_cap = INPUT_CAP,
		.iterations = ITERATIONS,
	};

	return fuzz_replay_main(argc, argv, &r);
}
