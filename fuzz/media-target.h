/* SPDX-License-Identifier: MIT */
/*
 * The media decoders under fuzzing (gst/media-wire.h), shared by the
 * libFuzzer harness (fuzz-media.c) and the replay test of the normal test
 * suite (tests/gst/test-media-fuzz.c).
 *
 * The input is a run of messages as a receiver meets them: a byte that
 * picks the application type (0x4d00 + it), a u32 length word, then the
 * rest of the message.  Each message goes through the length check and,
 * when that passes, its type's decoder; what a decoder accepts must keep
 * every invariant the elements rely on.  A broken invariant traps.
 */
#ifndef TBS_FUZZ_MEDIA_TARGET_H
#define TBS_FUZZ_MEDIA_TARGET_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../gst/media-wire.h"

#define FUZZ_CHECK(c)                                                         \
	do {                                                                  \
		if (!(c))                                                     \
			__builtin_trap();                                     \
	} while (0)

static inline void fuzz_media_msg(uint16_t type, const uint8_t *p,
				  uint32_t len)
{
	struct tbs_media_segment seg;
	struct tbs_media_keyunit k;
	struct tbs_media_frame f;
	const char *text;
	size_t i, n;

	if (tbs_media_check_len(type, len))
		return;
	if (type == TBS_MEDIA_FRAME && !tbs_media_frame_decode(p, &f)) {
		FUZZ_CHECK(f.len == len - TBS_MEDIA_FRAME_HDR);
		FUZZ_CHECK(f.len <= TBS_MEDIA_FRAME_MAX);
		FUZZ_CHECK(!(f.flags & ~(uint32_t)TBS_MF_KNOWN));
	} else if (type == TBS_MEDIA_SEGMENT &&
		   !tbs_media_segment_decode(p, len, &seg)) {
		FUZZ_CHECK(isfinite(seg.rate) && seg.rate != 0.0);
		FUZZ_CHECK(isfinite(seg.applied_rate));
		FUZZ_CHECK(seg.start != TBS_MEDIA_NONE);
		FUZZ_CHECK(seg.stop == TBS_MEDIA_NONE || seg.stop >= seg.start);
	} else if (type == TBS_MEDIA_CAPS &&
		   !tbs_media_caps_decode(p, len, &text, &n)) {
		FUZZ_CHECK(n >= 1 && n <= TBS_MEDIA_CAPS_MAX);
		FUZZ_CHECK(text == (const char *)p + TBS_MEDIA_WORD);
		for (i = 0; i < n; i++)
			FUZZ_CHECK((uint8_t)text[i] >= 0x20 && text[i] != 0x7f);
	} else if (type == TBS_MEDIA_KEYUNIT &&
		   !tbs_media_keyunit_decode(p, len, &k)) {
		FUZZ_CHECK(len == TBS_MEDIA_KEYUNIT_LEN);
	}
}

/* Each message's length word is made to fit the input (little-endian). */
static inline int fuzz_media_one(const uint8_t *data, size_t size)
{
	uint32_t len;
	uint16_t type;
	uint8_t *m;

	while (size >= 1 + TBS_MEDIA_WORD) {
		type = (uint16_t)(0x4d00 | data[0]);
		data++;
		size--;
		memcpy(&len, data, sizeof(len));
		if (len < TBS_MEDIA_WORD || len > size)
			len = (uint32_t)size;
		m = malloc(len);
		if (!m)
			return 0;
		memcpy(m, data, len);
		memcpy(m, &len, sizeof(len));
		fuzz_media_msg(type, m, len);
		free(m);
		data += len;
		size -= len;
	}
	return 0;
}

#endif
