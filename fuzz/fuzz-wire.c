// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the session record decoder.  Build with
 * CC=clang meson setup build-fuzz -Dfuzz=true, then run
 * build-fuzz/fuzz/fuzz-wire fuzz/corpus/wire
 */
#include <stddef.h>
#include <stdint.h>

#include "wire-target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_wire_one(data, size);
}
