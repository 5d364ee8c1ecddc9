// SPDX-License-Identifier: MIT
/*
 * tbstream bench: the raw phase, plain read(2) and write(2) on the device
 * as the published ping-pong figures are measured, right after a session
 * closed on both hosts (bench.h: the phases alternate).
 *
 * The raw phase starts on marks, because a session's reader may still be
 * waiting in read(2) on the other host when this one starts writing: what
 * it reads then is lost with it when the session is freed.  So the leader
 * repeats MARK (the plan's 16 random bytes) every MARK_MS until the
 * follower, which drops what comes before it, sends MARK back; the
 * follower writes only after the leader's session is gone (the leader
 * sends MARK only then), so that one arrives.  The leader drops what
 * comes before it and ends with END (MARK inverted), up to which the
 * follower drops the extra MARKs.  Then, per size, the block's round
 * trips; after the last block, per size, one way (the follower answers
 * the last byte with one byte) and both ways (the follower's last byte
 * comes after all its data and all the leader's).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MARK_SEARCH (4u << 20) /* bytes dropped at most before a mark */
#define MARK_MS 20 /* the leader repeats MARK this often */
#define RD_MAX (1u << 20) /* one read of a throughput run */

static int raw_err(struct bench *b, int err, const char *what)
{
	if (b->err[0])
		return err;
	if (err == -ENXIO)
		snprintf(b->err, sizeof(b->err),
			 "%s: the cable was unplugged or the stream removed",
			 what);
	else if (!err)
		snprintf(b->err, sizeof(b->err),
			 "%s: the peer closed its end", what);
	else
		snprintf(b->err, sizeof(b->err), "%s: %s", what,
			 strerror(-err));
	return err ? err : -ECONNRESET;
}

static int write_all(struct bench *b, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(b->wfd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return raw_err(b, n < 0 ? -errno : -EIO,
				       "writing the raw device");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(struct bench *b, uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = read(b->rfd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return raw_err(b, n < 0 ? -errno : 0,
				       "reading the raw device");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether @c, after *@have bytes of @m matched, completes @m. */
static bool match(const uint8_t *m, size_t *have, uint8_t c)
{
	if (c == m[*have])
		return ++*have == BENCH_TOKEN;
	/* the marks are random: a restart at the first byte will do */
	*have = c == m[0];
	return false;
}

/* Reads, dropping what comes before @m, until @m has gone by. */
static int find(struct bench *b, const uint8_t *m)
{
	size_t have = 0, dropped = 0;
	uint8_t c;
	int r;

	do {
		r = read_all(b, &c, 1);
		if (r)
			return r;
		if (++dropped > MARK_SEARCH + BENCH_TOKEN) {
			snprintf(b->err, sizeof(b->err),
				 "the raw phase did not start: %u bytes came without the agreed mark",
				 MARK_SEARCH);
			return -EPROTO;
		}
	} while (!match(m, &have, c));
	return 0;
}

/* The leader: MARK every MARK_MS until the follower's MARK came back. */
static int call(struct bench *b)
{
	struct pollfd p = { .fd = b->rfd, .events = POLLIN };
	uint64_t end = cli_now_ns() + (uint64_t)b->timeout_ms * 1000000;
	size_t have = 0;
	uint8_t c;
	int r;

	for (;;) {
		r = write_all(b, b->plan.token, BENCH_TOKEN);
		while (!r && poll(&p, 1, MARK_MS) > 0) {
			r = read_all(b, &c, 1);
			if (!r && match(b->plan.token, &have, c))
				return 0;
		}
		if (r)
			return r;
		if (cli_now_ns() > end) {
			snprintf(b->err, sizeof(b->err),
				 "the peer did not answer the raw phase's mark within %d s",
				 b->timeout_ms / 1000);
			return -ETIMEDOUT;
		}
	}
}

static int mark(struct bench *b)
{
	uint8_t end[BENCH_TOKEN];
	int i, r;

	for (i = 0; i < BENCH_TOKEN; i++)
		end[i] = (uint8_t)~b->plan.token[i];
	if (b->leader) {
		r = call(b);
		return r ? r : write_all(b, end, BENCH_TOKEN);
	}
	r = find(b, b->plan.token);
	if (!r)
		r = write_all(b, b->plan.token, BENCH_TOKEN);
	return r ? r : find(b, end);
}

/* One raw round trip: the leader writes and reads, the follower echoes. */
static int trip(void *arg, uint32_t size)
{
	struct bench *b = arg;
	int r;

	if (b->leader) {
		r = write_all(b, b->buf, size);
		return r ? r : read_all(b, b->rbuf, size);
	}
	r = read_all(b, b->rbuf, size);
	return r ? r : write_all(b, b->rbuf, size);
}

/* Reads @len bytes in reads of up to RD_MAX, what the device has. */
static int drain(struct bench *b, uint64_t len)
{
	size_t n;
	int r = 0;

	while (!r && len) {
		n = len < RD_MAX ? (size_t)len : RD_MAX;
		r = read_all(b, b->rbuf, n);
		len -= n;
	}
	return r;
}

struct writer {
	struct bench *b;
	uint32_t size;
	uint64_t len;
	int err;
};

static void *write_run(void *arg)
{
	struct writer *w = arg;
	uint64_t left = w->len;
	size_t n;

	while (!w->err && left) {
		n = left < w->size ? (size_t)left : w->size;
		w->err = write_all(w->b, w->b->buf, n);
		left -= n;
	}
	return NULL;
}

static int one_way(struct bench *b, int k)
{
	struct writer w = { .b = b, .size = b->plan.size[k],
			    .len = b->plan.bytes[k] };
	uint64_t t0 = cli_now_ns();
	uint8_t c = 1;
	int r;

	if (!b->leader) {
		r = drain(b, w.len);
		return r ? r : write_all(b, &c, 1);
	}
	write_run(&w);
	r = w.err ? w.err : read_all(b, &c, 1);
	if (!r)
		b->res[BENCH_RAW][k].one_bps =
			bench_rate(w.len, cli_now_ns() - t0);
	return r;
}

/*
 * Both ways: each side writes from a thread while it reads.  The
 * follower starts as soon as it answered the one-way run; its one byte at
 * the end follows all of its data.
 */
static int both_ways(struct bench *b, int k)
{
	struct writer w = { .b = b, .size = b->plan.size[k],
			    .len = b->plan.bytes[k] };
	uint64_t t0 = cli_now_ns();
	uint8_t c = 1;
	pthread_t t;
	int r;

	if (pthread_create(&t, NULL, write_run, &w))
		return -EAGAIN;
	r = drain(b, w.len + (b->leader ? 1 : 0));
	pthread_join(t, NULL);
	r = r ? r : w.err;
	if (!r && !b->leader)
		r = write_all(b, &c, 1);
	if (!r && b->leader)
		b->res[BENCH_RAW][k].both_bps =
			bench_rate(2 * w.len, cli_now_ns() - t0);
	return r;
}

/*
 * One raw phase: the current block of round trips of every size, and in
 * the last block the throughput runs after them.
 */
int bench_raw_phase(struct bench *b)
{
	uint32_t k;
	int r;

	r = mark(b);
	for (k = 0; !r && k < b->plan.nsizes; k++)
		r = bench_round_trips(b, BENCH_RAW, (int)k, trip, b);
	for (k = 0; !r && b->block + 1 == BENCH_BLOCKS && k < b->plan.nsizes;
	     k++) {
		r = one_way(b, (int)k);
		if (!r)
			r = both_ways(b, (int)k);
	}
	return r;
}
