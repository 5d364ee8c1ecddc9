// SPDX-License-Identifier: MIT
/*
 * tbstream bench's plan and results on the wire (src/bench-wire.c): they
 * come back as they went, and a plan the follower must not carry out is
 * refused, field by field.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "../../src/bench.h"
#include "../tap.h"

static struct bench_plan good(void)
{
	struct bench_plan p = { .nsizes = 2 };

	p.size[0] = 64;
	p.rounds[0] = 1000;
	p.bytes[0] = 1 << 20;
	p.size[1] = BENCH_MAX_SIZE;
	p.rounds[1] = 20;
	p.bytes[1] = BENCH_MAX_BYTES;
	memset(p.token, 0xa5, sizeof(p.token));
	return p;
}

/* Encodes @p, writes @v at @off (nothing past the end), decodes @len. */
static int roundtrip(struct bench_plan p, size_t off, uint32_t v, size_t len)
{
	uint8_t buf[BENCH_PLAN_LEN];
	struct bench_plan q;

	bench_plan_encode(&p, buf);
	if (off < sizeof(buf)) {
		v = htole32(v);
		memcpy(buf + off, &v, 4);
	}
	return bench_plan_decode(&q, buf, len);
}

#define SLOT(i, field) (8 + (i) * 16 + (field))

int main(void)
{
	struct bench_plan p = good(), q;
	uint8_t buf[BENCH_PLAN_LEN], res[BENCH_RES_LEN];
	struct bench a = { 0 }, b = { 0 };

	bench_plan_encode(&p, buf);
	ok(!bench_plan_decode(&q, buf, sizeof(buf)) &&
		   !memcmp(&p, &q, sizeof(p)),
	   "a plan comes back as it went");
	ok(roundtrip(p, ~0u, 0, BENCH_PLAN_LEN - 1) < 0, "a short plan is refused");
	ok(roundtrip(p, 0, 1, BENCH_PLAN_LEN) == -EPROTONOSUPPORT,
	   "another version is refused as such");
	ok(roundtrip(p, 4, 0, BENCH_PLAN_LEN) < 0, "no sizes is refused");
	ok(roundtrip(p, 4, BENCH_MAX_SIZES + 1, BENCH_PLAN_LEN) < 0,
	   "more sizes than slots are refused");
	ok(roundtrip(p, SLOT(0, 0), 0, BENCH_PLAN_LEN) < 0,
	   "a size of 0 is refused");
	ok(roundtrip(p, SLOT(1, 0), BENCH_MAX_SIZE + 1, BENCH_PLAN_LEN) < 0,
	   "a size above the largest is refused");
	ok(roundtrip(p, SLOT(0, 4), 0, BENCH_PLAN_LEN) < 0,
	   "no round trips is refused");
	ok(roundtrip(p, SLOT(0, 4), BENCH_MAX_ROUNDS + 1, BENCH_PLAN_LEN) < 0,
	   "too many round trips are refused");
	ok(roundtrip(p, SLOT(0, 8), 1, BENCH_PLAN_LEN) < 0,
	   "fewer bytes than one message are refused");
	ok(roundtrip(p, SLOT(1, 12), 1u << 9, BENCH_PLAN_LEN) < 0,
	   "more bytes than the most are refused");
	ok(!roundtrip(p, SLOT(5, 0), 0, BENCH_PLAN_LEN),
	   "unused slots are not looked at");

	a.res[BENCH_RAW][0].p50_ns = 16000;
	a.res[BENCH_SESSION][BENCH_MAX_SIZES - 1].both_bps = 5000000000ull;
	a.res[BENCH_SESSION][3].p99_ns = 1;
	a.res[BENCH_SESSION][2].ratio_ppm = 1450000;
	bench_res_encode(&a, res);
	ok(!bench_res_decode(&b, res, sizeof(res)) &&
		   !memcmp(a.res, b.res, sizeof(a.res)),
	   "results come back as they went");
	ok(bench_res_decode(&b, res, sizeof(res) - 1) < 0,
	   "short results are refused");
	return tap_done();
}
