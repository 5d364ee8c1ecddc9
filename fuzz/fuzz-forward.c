// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the forward message decoder (src/forward-wire.c).
 * The first byte picks the message type (0x4600 + byte), the rest is the
 * body.  Build with CC=clang meson setup build-fuzz -Dfuzz=true, then run
 * build-fuzz/fuzz/fuzz-forward fuzz/corpus/forward
 */
#include <stddef.h>
#include <stdint.h>

#include "forward-target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_forward_one(data, size);
}
