// SPDX-License-Identifier: MIT
/*
 * tbstream bench: the session phases.  The first carries the plan, each
 * a block of the session's measurements (bench.h), the last the results.  Every message is
 * checked for its type and length; the follower does only what the plan,
 * checked when it arrived, allows.
 *
 *	leader				follower
 *	PLAN			->		(first session only)
 *				<-	READY
 *	in the last block only, per size:
 *	DATA x n	->	<-	DONE (one way)
 *	GO		->
 *	DATA x n	<->		DATA x n, then DONE (both ways)
 *	per size: PING	->	<-	PING (the block's round trips)
 *	(raw phase, bench-raw.c; then the next block)
 *	RESULTS		->		(a last session)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

enum {
	MSG_PLAN = 0x4201,
	MSG_READY = 0x4202,
	MSG_PING = 0x4203,
	MSG_DATA = 0x4204,
	MSG_DONE = 0x4205,
	MSG_GO = 0x4206,
	MSG_RESULTS = 0x4207,
};

struct phase {
	struct bench *b;
	struct tbs_session *s;
	uint8_t *rbuf; /* what arrives; b->buf holds what is sent */
	size_t cap;
};

static int session_err(struct phase *ph, int err, const char *what)
{
	const char *m = tbs_session_error(ph->s);

	if (!ph->b->err[0])
		snprintf(ph->b->err, sizeof(ph->b->err), "%s: %s", what,
			 m[0] ? m : strerror(-err));
	return err;
}

static int send_msg(struct phase *ph, uint16_t type, const void *p,
		    size_t len)
{
	ssize_t n = tbs_session_send_msg(ph->s, type, p, len, -1);

	return n < 0 ? session_err(ph, (int)n, "sending") : 0;
}

/* The next message, which must be of @type and @len bytes (0: any). */
static int expect(struct phase *ph, uint16_t type, size_t len, size_t *got)
{
	uint16_t t = 0;
	ssize_t n = tbs_session_recv_msg(ph->s, &t, ph->rbuf, ph->cap, -1);

	if (n < 0)
		return session_err(ph, (int)n, "receiving");
	if (n == 0 || t != type || (len && (size_t)n != len)) {
		snprintf(ph->b->err, sizeof(ph->b->err),
			 "the peer sent message type %#x of %zd bytes where type %#x was due: is it another version of tbstream?",
			 t, n, type);
		return -EPROTO;
	}
	if (got)
		*got = (size_t)n;
	return 0;
}

/* One round trip: the leader sends and receives, the follower echoes. */
static int trip(void *arg, uint32_t size)
{
	struct phase *ph = arg;
	int r;

	if (ph->b->leader) {
		r = send_msg(ph, MSG_PING, ph->b->buf, size);
		return r ? r : expect(ph, MSG_PING, size, NULL);
	}
	r = expect(ph, MSG_PING, size, NULL);
	return r ? r : send_msg(ph, MSG_PING, ph->rbuf, size);
}

struct sender {
	struct phase *ph;
	uint32_t size;
	uint64_t n;
	int err;
};

static void *send_run(void *arg)
{
	struct sender *sd = arg;
	uint64_t i;

	for (i = 0; !sd->err && i < sd->n; i++)
		sd->err = send_msg(sd->ph, MSG_DATA, sd->ph->b->buf, sd->size);
	return NULL;
}

static int receive_data(struct phase *ph, uint32_t size, uint64_t n)
{
	uint64_t i;
	int r = 0;

	for (i = 0; !r && i < n; i++)
		r = expect(ph, MSG_DATA, size, NULL);
	return r;
}

/* One way: the leader sends, the follower counts and says DONE. */
static int one_way(struct phase *ph, int k)
{
	const struct bench_plan *pl = &ph->b->plan;
	uint64_t n = pl->bytes[k] / pl->size[k], t0 = cli_now_ns();
	struct sender sd = { .ph = ph, .size = pl->size[k], .n = n };
	int r;

	if (!ph->b->leader) {
		r = receive_data(ph, pl->size[k], n);
		return r ? r : send_msg(ph, MSG_DONE, "", 1);
	}
	send_run(&sd);
	r = sd.err ? sd.err : expect(ph, MSG_DONE, 1, NULL);
	if (!r)
		ph->b->res[BENCH_SESSION][k].one_bps =
			bench_rate(n * pl->size[k], cli_now_ns() - t0);
	return r;
}

/* Both ways at once, after the leader's GO; DONE from the follower ends it. */
static int both_ways(struct phase *ph, int k)
{
	const struct bench_plan *pl = &ph->b->plan;
	uint64_t n = pl->bytes[k] / pl->size[k], t0;
	struct sender sd = { .ph = ph, .size = pl->size[k], .n = n };
	pthread_t t;
	int r;

	r = ph->b->leader ? send_msg(ph, MSG_GO, "", 1) :
			    expect(ph, MSG_GO, 1, NULL);
	if (r)
		return r;
	t0 = cli_now_ns();
	if (pthread_create(&t, NULL, send_run, &sd))
		return -EAGAIN;
	r = receive_data(ph, pl->size[k], n);
	if (r)
		tbs_session_abort(ph->s, r, "tbstream bench failed");
	pthread_join(t, NULL);
	r = r ? r : sd.err;
	if (!r && ph->b->leader)
		r = expect(ph, MSG_DONE, 1, NULL);
	else if (!r)
		r = send_msg(ph, MSG_DONE, "", 1);
	if (!r && ph->b->leader)
		ph->b->res[BENCH_SESSION][k].both_bps =
			bench_rate(2 * n * pl->size[k], cli_now_ns() - t0);
	return r;
}

/* The plan: the leader's goes over, the follower checks it. */
static int agree(struct phase *ph)
{
	uint8_t p[BENCH_PLAN_LEN];
	size_t len;
	int r;

	if (ph->b->leader) {
		bench_plan_encode(&ph->b->plan, p);
		r = send_msg(ph, MSG_PLAN, p, sizeof(p));
		return r ? r : expect(ph, MSG_READY, 1, NULL);
	}
	r = expect(ph, MSG_PLAN, 0, &len);
	if (r)
		return r;
	r = bench_plan_decode(&ph->b->plan, ph->rbuf, len);
	if (r == -EPROTONOSUPPORT)
		snprintf(ph->b->err, sizeof(ph->b->err),
			 "the peer runs another version of tbstream bench: run the same version on both hosts");
	else if (r)
		snprintf(ph->b->err, sizeof(ph->b->err),
			 "the peer's plan is not one this tbstream accepts (a size above %u bytes, or too many round trips or bytes)",
			 BENCH_MAX_SIZE);
	return r ? r : send_msg(ph, MSG_READY, "", 1);
}

/*
 * The current block of round trips of every size; in the last block,
 * the throughput runs before them (so that the last blocks of both kinds
 * follow each other, bench.h).
 */
static int measure(struct phase *ph)
{
	struct bench *b = ph->b;
	uint32_t k;
	int r = 0;

	for (k = 0; !r && b->block + 1 == BENCH_BLOCKS && k < b->plan.nsizes;
	     k++) {
		r = one_way(ph, (int)k);
		if (!r)
			r = both_ways(ph, (int)k);
	}
	for (k = 0; !r && k < b->plan.nsizes; k++)
		r = bench_round_trips(b, BENCH_SESSION, (int)k, trip, ph);
	return r;
}

static int results(struct phase *ph)
{
	uint8_t p[BENCH_RES_LEN];
	size_t len;
	int r;

	if (ph->b->leader) {
		bench_res_encode(ph->b, p);
		return send_msg(ph, MSG_RESULTS, p, sizeof(p));
	}
	r = expect(ph, MSG_RESULTS, sizeof(p), &len);
	return r ? r : bench_res_decode(ph->b, ph->rbuf, len);
}

static int run(struct phase *ph, bool results_only)
{
	int r;

	r = tbs_session_start(ph->s);
	if (r)
		return session_err(ph, r, "no session with the peer");
	if (results_only) {
		r = results(ph);
	} else if (!ph->b->block) {
		r = agree(ph);
		if (!r)
			r = bench_buffers(ph->b);
	}
	if (!r && !results_only) {
		ph->rbuf = ph->b->rbuf;
		ph->cap = ph->b->buf_len;
		r = measure(ph);
	}
	if (!r) {
		r = tbs_session_close(ph->s);
		if (r)
			session_err(ph, r, "closing");
	}
	return r;
}

/*
 * One session phase on the job's descriptors: a block of the session's
 * measurements (the first one after the plan), or (@results_only) the
 * results.  The receiving thread reads the device itself, as a program
 * of requests and replies would have it (TBS_SESSION_CALLER_READS).
 */
int bench_session_phase(struct bench *b, bool results_only)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(
		tbs_session_opts, .role = TBS_ROLE_DUPLEX, .id = "bench",
		.id_len = 5, .handshake_ms = b->timeout_ms,
		.flags = TBS_SESSION_CALLER_READS,
		.read_signal = BENCH_READ_SIGNAL);
	uint8_t small[BENCH_PLAN_LEN + BENCH_RES_LEN];
	struct phase ph = { .b = b, .rbuf = small, .cap = sizeof(small) };
	int r;

	r = tbs_session_new(&ph.s, b->rfd, b->wfd, &o);
	if (r) {
		snprintf(b->err, sizeof(b->err), "could not start a session: %s",
			 strerror(-r));
		return r;
	}
	r = run(&ph, results_only);
	tbs_session_free(ph.s);
	return r;
}
