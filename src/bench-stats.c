// SPDX-License-Identifier: MIT
/*
 * tbstream bench: timed round trips in blocks, their percentiles, rates.
 */
#include <stdlib.h>

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

/*
 * The round trips of size slot @k in block @blk: the plan's are shared
 * out among BENCH_BLOCKS blocks.  Sets *@first to the index of the
 * block's first sample.
 */
static uint32_t block_rounds(const struct bench *b, int k, uint32_t blk,
			     uint32_t *first)
{
	uint64_t n = b->plan.rounds[k];

	*first = (uint32_t)(n * blk / BENCH_BLOCKS);
	return (uint32_t)(n * (blk + 1) / BENCH_BLOCKS) - *first;
}

/*
 * One block (the current one) of round trips of size slot @k, each made
 * by @trip; the leader times them, into its samples of @kind.  A few
 * first, not counted, warm the path up.
 */
int bench_round_trips(struct bench *b, int kind, int k, bench_trip_fn trip,
		      void *arg)
{
	uint32_t first, n = block_rounds(b, k, b->block, &first);
	int64_t i, warm = n < BENCH_WARMUP ? n : BENCH_WARMUP;
	uint64_t *ns = b->leader ? b->ns[kind][k] + first : NULL, t0;
	int r = 0;

	for (i = -warm; !r && i < (int64_t)n; i++) {
		t0 = cli_now_ns();
		r = trip(arg, b->plan.size[k]);
		if (ns && i >= 0)
			ns[i] = cli_now_ns() - t0;
	}
	return r;
}

/* The median of a block's samples of @kind (sorted in place). */
static uint64_t block_p50(struct bench *b, int kind, int k, uint32_t blk)
{
	uint32_t first, n = block_rounds(b, k, blk, &first);
	uint64_t *ns = b->ns[kind][k] + first;

	qsort(ns, n, sizeof(*ns), cmp_u64);
	return rank(ns, n, 50);
}

/*
 * The session's p50 against the raw device's, in millionths: the median
 * of the ratios of neighbouring blocks, which a change of the machine's
 * load in the middle of the run moves least.
 */
static uint64_t block_ratio(struct bench *b, int k)
{
	uint64_t ratio[BENCH_BLOCKS], raw;
	uint32_t blk, first, n = 0;

	for (blk = 0; blk < BENCH_BLOCKS; blk++) {
		if (!block_rounds(b, k, blk, &first))
			continue;
		raw = block_p50(b, BENCH_RAW, k, blk);
		ratio[n++] = raw ? block_p50(b, BENCH_SESSION, k, blk) *
					   1000000 / raw :
				   0;
	}
	qsort(ratio, n, sizeof(*ratio), cmp_u64);
	return n ? ratio[(n - 1) / 2] : 0;
}

/* The leader's figures of all blocks, of both kinds and every size. */
void bench_percentiles(struct bench *b)
{
	struct bench_res *r;
	uint32_t i, n;
	int k;

	for (i = 0; i < b->plan.nsizes; i++) {
		b->res[BENCH_SESSION][i].ratio_ppm = block_ratio(b, (int)i);
		for (k = 0; k < BENCH_KINDS; k++) {
			n = b->plan.rounds[i];
			r = &b->res[k][i];
			qsort(b->ns[k][i], n, sizeof(uint64_t), cmp_u64);
			r->p50_ns = rank(b->ns[k][i], n, 50);
			r->p90_ns = rank(b->ns[k][i], n, 90);
			r->p99_ns = rank(b->ns[k][i], n, 99);
		}
	}
}

uint64_t bench_rate(uint64_t bytes, uint64_t ns)
{
	return ns ? (uint64_t)((double)bytes * 1e9 / (double)ns) : 0;
}
