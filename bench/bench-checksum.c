// SPDX-License-Identifier: MIT
/*
 * Throughput of the session's checksum layer (XXH3-64 as used for every
 * record payload and for the whole-stream hash) on one core, next to
 * memcpy of the same buffer as the baseline measured in the same run.
 *
 * Usage: bench-checksum [SECONDS]   (per measurement, default 1)
 * Prints one line per measurement and a final line
 *   checksum: N.N GB/s (record-sized buffers, one core)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "../lib/wire.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum what { CSUM, STREAM, COPY };

static volatile uint64_t sink;

static double measure(enum what w, uint8_t *buf, uint8_t *dst, size_t len,
		      double secs)
{
	XXH3_state_t *st = XXH3_createState();
	double t0 = now_s(), t;
	uint64_t bytes = 0;
	int i;

	XXH3_64bits_reset(st);
	do {
		for (i = 0; i < 16; i++) {
			if (w == CSUM)
				sink += tbs_wire_csum(buf, len);
			else if (w == STREAM)
				XXH3_64bits_update(st, buf, len);
			else
				memcpy(dst, buf, len);
			bytes += len;
		}
		t = now_s() - t0;
	} while (t < secs);
	sink += XXH3_64bits_digest(st) + dst[len - 1];
	XXH3_freeState(st);
	return (double)bytes / t / 1e9;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 64 << 10, TBS_WIRE_MAX_PAYLOAD,
					64 << 20 };
	static const char *const names[] = { "record checksum XXH3-64",
					     "stream hash XXH3-64 update",
					     "memcpy (baseline)" };
	double secs = argc > 1 ? atof(argv[1]) : 1.0, rec = 0, r;
	uint8_t *buf = malloc(64 << 20), *dst = malloc(64 << 20);
	size_t i;
	int w;

	if (!buf || !dst || secs <= 0)
		return 1;
	for (i = 0; i < (64u << 20); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	memset(dst, 0, 64 << 20);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (w = CSUM; w <= COPY; w++) {
			r = measure((enum what)w, buf, dst, sizes[i], secs);
			printf("%-28s %6zu KiB buffers: %6.1f GB/s\n", names[w],
			       sizes[i] >> 10, r);
			if (w == CSUM && sizes[i] == TBS_WIRE_MAX_PAYLOAD)
				rec = r;
		}
	}
	printf("checksum: %.1f GB/s (record-sized buffers, one core)\n", rec);
	free(buf);
	free(dst);
	return 0;
}
