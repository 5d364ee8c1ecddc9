// SPDX-License-Identifier: MIT
/*
 * tbstream bench: the clock, percentiles of round trips, rates.
 */
#include <stdlib.h>
#include <time.h>

#include "bench.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of @n sorted samples. */
static uint64_t rank(const uint64_t *ns, uint32_t n, unsigned int pct)
{
	uint64_t i = ((uint64_t)n * pct + 99) / 100;

	return ns[i ? i - 1 : 0];
}

/* Sorts the samples and fills the round-trip percentiles of @r. */
void bench_percentiles(uint64_t *ns, uint32_t n, struct bench_res *r)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	r->p50_ns = rank(ns, n, 50);
	r->p90_ns = rank(ns, n, 90);
	r->p99_ns = rank(ns, n, 99);
}

uint64_t bench_rate(uint64_t bytes, uint64_t ns)
{
	return ns ? (uint64_t)((double)bytes * 1e9 / (double)ns) : 0;
}
