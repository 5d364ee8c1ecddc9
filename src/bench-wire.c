// SPDX-License-Identifier: MIT
/*
 * tbstream bench: the plan and the results as message payloads, all
 * integers little-endian (docs/PROTOCOL.md, "tbstream bench").
 *
 *	PLAN	u32 version (2), u32 sizes; per size (8 slots): u32 size,
 *		u32 round trips, u64 bytes; 16 bytes of mark
 *	RESULTS	per kind (raw, session) and size slot: u64 p50, p90, p99
 *		in ns, u64 one-way and both-ways rates in bytes per second,
 *		u64 the session's p50 over the raw device's in millionths,
 *		block by block (0 for raw)
 *
 * A plan from the wire is checked before anything is done with it: the
 * follower's work is bounded by what it allows.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "bench.h"

/*
 * 2: the round trips in BENCH_BLOCKS blocks, alternating with the raw
 * device's (1 measured them in one block each)
 */
#define PLAN_VERSION 2

static void put32(uint8_t **p, uint32_t v)
{
	v = htole32(v);
	memcpy(*p, &v, 4);
	*p += 4;
}

static void put64(uint8_t **p, uint64_t v)
{
	v = htole64(v);
	memcpy(*p, &v, 8);
	*p += 8;
}

static uint32_t get32(const uint8_t **p)
{
	uint32_t v;

	memcpy(&v, *p, 4);
	*p += 4;
	return le32toh(v);
}

static uint64_t get64(const uint8_t **p)
{
	uint64_t v;

	memcpy(&v, *p, 8);
	*p += 8;
	return le64toh(v);
}

void bench_plan_encode(const struct bench_plan *pl, uint8_t *out)
{
	uint8_t *p = out;
	int i;

	put32(&p, PLAN_VERSION);
	put32(&p, pl->nsizes);
	for (i = 0; i < BENCH_MAX_SIZES; i++) {
		put32(&p, pl->size[i]);
		put32(&p, pl->rounds[i]);
		put64(&p, pl->bytes[i]);
	}
	memcpy(p, pl->token, BENCH_TOKEN);
}

int bench_plan_decode(struct bench_plan *pl, const uint8_t *in, size_t len)
{
	const uint8_t *p = in;
	uint32_t i;

	if (len < 4 || get32(&p) != PLAN_VERSION)
		return -EPROTONOSUPPORT; /* another version of tbstream */
	if (len != BENCH_PLAN_LEN)
		return -EPROTO;
	memset(pl, 0, sizeof(*pl));
	pl->nsizes = get32(&p);
	if (!pl->nsizes || pl->nsizes > BENCH_MAX_SIZES)
		return -EPROTO;
	for (i = 0; i < BENCH_MAX_SIZES; i++) {
		pl->size[i] = get32(&p);
		pl->rounds[i] = get32(&p);
		pl->bytes[i] = get64(&p);
		if (i >= pl->nsizes)
			continue;
		if (!pl->size[i] || pl->size[i] > BENCH_MAX_SIZE ||
		    !pl->rounds[i] || pl->rounds[i] > BENCH_MAX_ROUNDS ||
		    pl->bytes[i] < pl->size[i] ||
		    pl->bytes[i] > BENCH_MAX_BYTES)
			return -EPROTO;
	}
	memcpy(pl->token, p, BENCH_TOKEN);
	return 0;
}

void bench_res_encode(const struct bench *b, uint8_t *out)
{
	const struct bench_res *r;
	uint8_t *p = out;
	int k, i;

	for (k = 0; k < BENCH_KINDS; k++)
		for (i = 0; i < BENCH_MAX_SIZES; i++) {
			r = &b->res[k][i];
			put64(&p, r->p50_ns);
			put64(&p, r->p90_ns);
			put64(&p, r->p99_ns);
			put64(&p, r->one_bps);
			put64(&p, r->both_bps);
			put64(&p, r->ratio_ppm);
		}
}

int bench_res_decode(struct bench *b, const uint8_t *in, size_t len)
{
	const uint8_t *p = in;
	struct bench_res *r;
	int k, i;

	if (len != BENCH_RES_LEN)
		return -EPROTO;
	for (k = 0; k < BENCH_KINDS; k++)
		for (i = 0; i < BENCH_MAX_SIZES; i++) {
			r = &b->res[k][i];
			r->p50_ns = get64(&p);
			r->p90_ns = get64(&p);
			r->p99_ns = get64(&p);
			r->one_bps = get64(&p);
			r->both_bps = get64(&p);
			r->ratio_ppm = get64(&p);
		}
	return 0;
}
