// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the network transport's message decoder.  Build
 * with CC=clang meson setup build-fuzz -Dfuzz=true, then run
 * build-fuzz/fuzz/fuzz-net
 */
#include <stddef.h>
#include <stdint.h>

#include "net-target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_net_one(data, size);
	return 0;
}
