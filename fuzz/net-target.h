/* SPDX-License-Identifier: MIT */
/*
 * The network transport's message decoder under fuzzing, shared by the
 * libFuzzer harness (fuzz-net.c) and the replay in tests/unit/test-net.c.
 *
 * An input of 104 bytes gets its checksum appended first, so that the
 * fuzzer reaches the checks of every field; an input of any other length
 * is decoded as it is.  A message that decodes must encode back to the
 * same bytes (nothing is accepted that the encoder would not write), and
 * its strings stay within their fields.  A broken invariant traps.
 */
#ifndef TBS_FUZZ_NET_TARGET_H
#define TBS_FUZZ_NET_TARGET_H

#include <string.h>
#include <xxhash.h>

#include "../lib/byteorder.h"
#include "../lib/net-int.h"

static inline int fuzz_net_one(const uint8_t *data, size_t size)
{
	uint8_t in[TBSI_NET_MSG_LEN], out[TBSI_NET_MSG_LEN];
	struct tbsi_net_msg m;
	const uint8_t *p = data;

	if (size == TBSI_NET_MSG_LEN - 8) {
		memcpy(in, data, size);
		tbsi_le_put64(in + size, XXH3_64bits(in, size));
		p = in;
		size = TBSI_NET_MSG_LEN;
	}
	if (tbsi_net_decode(p, size, &m))
		return 0;
	if (memchr(m.name, 0, sizeof(m.name)) == NULL ||
	    memchr(m.uid, 0, sizeof(m.uid)) == NULL || !m.nonce)
		__builtin_trap();
	tbsi_net_encode(&m, out);
	if (memcmp(out, p, TBSI_NET_MSG_LEN))
		__builtin_trap();
	return 1;
}

#endif
