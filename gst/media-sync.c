// SPDX-License-Identifier: MIT
/* The receiver's clock mapping (media-sync.h). */
#include <string.h>

#include "media-sync.h"

#define MS 1000000LL
#define EARLIER_NS (1 * MS) /* follow a lower floor past this */
#define LATER_NS (5 * MS) /* follow a higher floor past this */
#define MARGIN_NS (2 * MS) /* for the work between arrival and push */
#define STEP_NS MS /* the latency is a whole number of ms */
#define MAX_NS (250 * MS) /* later buffers are late, not waited for */

/*
 * @a - @b and @a + @b, saturated: the times come from the peer, and a
 * difference of two of them may not fit.
 */
static int64_t sub_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

void tbs_sync_reset(struct tbs_sync *y, uint64_t latency)
{
	memset(y, 0, sizeof(*y));
	y->latency = latency;
}

static void next_bucket(struct tbs_sync *y, int64_t now, int64_t d)
{
	while (now >= y->bucket_end) {
		y->cur = (y->cur + 1) % SYNC_BUCKETS;
		y->lo[y->cur] = y->hi[y->cur] = d;
		y->bucket_end += SYNC_BUCKET_NS;
		if (now - y->bucket_end > SYNC_BUCKETS * SYNC_BUCKET_NS)
			y->bucket_end = now + SYNC_BUCKET_NS; /* a long gap */
	}
}

static void window(const struct tbs_sync *y, int64_t *lo, int64_t *hi)
{
	int i;

	*lo = y->lo[0];
	*hi = y->hi[0];
	for (i = 1; i < SYNC_BUCKETS; i++) {
		if (y->lo[i] < *lo)
			*lo = y->lo[i];
		if (y->hi[i] > *hi)
			*hi = y->hi[i];
	}
}

static uint64_t round_up(int64_t ns)
{
	if (ns <= 0)
		return STEP_NS;
	return (uint64_t)((ns + STEP_NS - 1) / STEP_NS * STEP_NS);
}

unsigned int tbs_sync_add(struct tbs_sync *y, int64_t now, int64_t rt)
{
	int64_t d = sub_sat(now, rt), lo, hi, need;
	unsigned int changed = 0;
	int i;

	if (!y->started) {
		for (i = 0; i < SYNC_BUCKETS; i++)
			y->lo[i] = y->hi[i] = d;
		y->bucket_end = now + SYNC_BUCKET_NS;
		y->offset = d;
		y->started = true;
		changed |= 1;
	}
	next_bucket(y, now, d);
	if (d < y->lo[y->cur])
		y->lo[y->cur] = d;
	if (d > y->hi[y->cur])
		y->hi[y->cur] = d;
	window(y, &lo, &hi);
	if (lo < sub_sat(y->offset, EARLIER_NS) ||
	    lo > add_sat(y->offset, LATER_NS)) {
		y->offset = lo;
		changed |= 1;
	}
	need = add_sat(sub_sat(hi, y->offset), MARGIN_NS);
	if (need < 0)
		need = 0;
	if (need > MAX_NS)
		need = MAX_NS;
	if ((uint64_t)need > y->latency || (uint64_t)need * 2 < y->latency) {
		y->latency = round_up(need + need / 4);
		if (y->latency > MAX_NS)
			y->latency = MAX_NS;
		changed |= 2;
	}
	return changed;
}
