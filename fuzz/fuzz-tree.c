// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the file-tree record decoder that tbstream recv
 * runs on everything the sender sends.  Build with
 * CC=clang meson setup build-fuzz -Dfuzz=true, then run
 * build-fuzz/fuzz/fuzz-tree fuzz/corpus/tree
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "tree-target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_tree_one(data, size);
}
