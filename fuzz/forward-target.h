/* SPDX-License-Identifier: MIT */
/*
 * The forward message decoder under fuzzing, shared by the libFuzzer
 * harness (fuzz-forward.c) and the unit test that replays its corpus
 * (tests/unit/test-forward-wire.c).  A decoded message must point inside
 * its input, and a refused one must say why; otherwise it traps.
 */
#ifndef TBS_FUZZ_FORWARD_TARGET_H
#define TBS_FUZZ_FORWARD_TARGET_H

#include <stdlib.h>
#include <string.h>

#include "../src/forward.h"

static inline int fuzz_forward_one(const uint8_t *data, size_t size)
{
	struct fwd_msg m;
	const char *why = NULL;
	uint8_t *body;
	size_t n;

	if (!size)
		return 0;
	n = size - 1;
	body = malloc(n ? n : 1); /* exactly the body: reads past it show */
	if (!body)
		return 0;
	memcpy(body, data + 1, n);
	if (!fwd_decode((uint16_t)(0x4600 + data[0]), body, n, &m, &why)) {
		if (m.len && (m.data < body || m.data + m.len > body + n))
			__builtin_trap();
	} else if (!why) {
		__builtin_trap();
	}
	free(body);
	return 0;
}

#endif
