// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the media message decoders.  Build with
 * CC=clang meson setup build-fuzz -Dfuzz=true, then run
 * build-fuzz/fuzz/fuzz-media fuzz/corpus/media
 */
#include <stddef.h>
#include <stdint.h>

#include "media-target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_media_one(data, size);
}
