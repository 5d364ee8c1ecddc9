/* SPDX-License-Identifier: MIT */
/*
 * tbstream bench: round trips and throughput of the raw device and of a
 * session, measured on one stream in one run (docs/PROTOCOL.md, section
 * "tbstream bench", describes the exchange).
 *
 *	phase		on the stream
 *	session 0	a session: the leader's plan, the follower's READY,
 *			then the first block of the session's round trips
 *	raw 0		the same descriptors without a session: a mark to
 *			start on, then the first block of raw round trips
 *	...		BENCH_BLOCKS such pairs, alternating; the last
 *			session block begins, and the last raw block ends,
 *			with the throughput runs
 *	results		a last session: the leader's results, so that both
 *			hosts print the same figures
 *
 * The round trips of both kinds alternate in blocks so that a change of
 * the machine's load in the middle of a run weighs on both alike, as
 * in bench/bench-latency.sh; the percentiles are over all blocks.  The
 * host whose unique id sorts lower leads: it decides the plan and
 * measures; the other follows and echoes.
 */
#ifndef TBS_BENCH_H
#define TBS_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "job.h"

#define BENCH_MAX_SIZES 8
#define BENCH_MAX_SIZE (16u << 20) /* largest message */
#define BENCH_MAX_ROUNDS 1000000
#define BENCH_MAX_BYTES (1ull << 40)
#define BENCH_TOKEN 16 /* the mark the raw phase starts on */
#define BENCH_WARMUP 10 /* round trips before those counted, per block */
#define BENCH_BLOCKS 10 /* blocks of round trips of each kind */
#define BENCH_RESULTS (-1) /* the session phase that carries the results */
/* interrupts a receiving thread's read of the device (session phases) */
#define BENCH_READ_SIGNAL (SIGRTMIN + 1)

enum bench_kind { BENCH_RAW, BENCH_SESSION, BENCH_KINDS };

/* What the leader decided; the follower checks every field. */
struct bench_plan {
	uint32_t nsizes;
	uint32_t size[BENCH_MAX_SIZES];
	uint32_t rounds[BENCH_MAX_SIZES]; /* round trips counted */
	uint64_t bytes[BENCH_MAX_SIZES]; /* each way, per throughput run */
	uint8_t token[BENCH_TOKEN];
};

/* What one kind measured at one size. */
struct bench_res {
	uint64_t p50_ns, p90_ns, p99_ns; /* round trip */
	uint64_t one_bps; /* bytes per second, one way */
	uint64_t both_bps; /* bytes per second, both ways together */
	uint64_t ratio_ppm; /* session: p50 / the raw device's, block by block */
};

struct bench {
	struct bench_plan plan;
	bool leader;
	int rfd, wfd;
	int timeout_ms;
	struct bench_res res[BENCH_KINDS][BENCH_MAX_SIZES];
	uint64_t *ns[BENCH_KINDS][BENCH_MAX_SIZES]; /* the leader's samples */
	uint32_t block; /* of round trips, 0 to BENCH_BLOCKS - 1 */
	uint8_t *buf, *rbuf; /* what is sent, what arrives (page-aligned) */
	size_t buf_len; /* the largest size, at least 1 MiB */
	char err[TBS_MSG_MAX]; /* what failed, for a person */
};

/* cmd-bench.c: the buffers and the leader's samples, once the plan is known */
int bench_buffers(struct bench *b);

/* bench-wire.c: the plan and the results as messages */
#define BENCH_PLAN_LEN (8 + BENCH_MAX_SIZES * 16 + BENCH_TOKEN)
#define BENCH_RES_LEN (BENCH_KINDS * BENCH_MAX_SIZES * 48)
void bench_plan_encode(const struct bench_plan *p, uint8_t *out);
int bench_plan_decode(struct bench_plan *p, const uint8_t *in, size_t len);
void bench_res_encode(const struct bench *b, uint8_t *out);
int bench_res_decode(struct bench *b, const uint8_t *in, size_t len);

/* bench-stats.c: round-trip samples and rates (cli_now_ns() times them) */
typedef int (*bench_trip_fn)(void *arg, uint32_t size);
int bench_round_trips(struct bench *b, int kind, int k, bench_trip_fn trip,
		      void *arg);
void bench_percentiles(struct bench *b);
uint64_t bench_rate(uint64_t bytes, uint64_t ns);

/*
 * bench-session.c, bench-raw.c: the phases, 0 or a negative errno.  A
 * session phase measures block b->block, or carries the results.
 */
int bench_session_phase(struct bench *b, bool results);
int bench_raw_phase(struct bench *b);

#endif
