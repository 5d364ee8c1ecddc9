// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the file-tree receiver's file-system state
 * machine (fuzz/tree-rx-target.h): record sequences over a directory laid
 * out afresh for every input, checked afterwards for anything changed
 * outside it or, without a flag, inside it.  Build with
 * CC=clang meson setup build-fuzz -Dfuzz=true, then run (as root, so
 * that owners are applied too)
 * build-fuzz/fuzz/fuzz-tree-rx fuzz/corpus/tree-rx
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tree-rx-target.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fini(void)
{
	fuzz_rx_fini();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (fuzz_rx_init())
		abort();
	atexit(fini);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_rx_one(data, size);
}
