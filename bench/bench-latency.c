// SPDX-License-Identifier: MIT
/*
 * bench-latency: round trips of one message, the raw device against a
 * session, in the same run.
 *
 *   bench-latency RAW_A RAW_B SES_A SES_B [COUNT [BLOCKS]]
 *
 * RAW_A/RAW_B are the two ends of one stream, SES_A/SES_B the two ends of
 * a twin stream with the same profile on the same link.  For each size,
 * COUNT round trips of each kind are measured in BLOCKS alternating blocks
 * (raw, session, raw, ...), so that a change in the machine's load weighs
 * on both alike.  An echo thread answers on the B ends; the main thread
 * measures on the A ends: read/write on the raw device, and
 * tbs_session_send_msg() / tbs_session_recv_msg() on a session that each
 * end runs over two descriptors of its device, as tbs_endpoint_open()
 * gives them.  Prints p50 and p99 in microseconds and the ratios
 * session / raw, and the median of the p50 ratios of neighbouring blocks
 * (on a shared machine, the load changes between blocks more than within
 * a pair of them).  A third kind, in the same blocks: the raw device
 * read after poll(2), what a caller that read the device itself instead
 * of taking what the session's reader thread hands it would pay to stay
 * interruptible (a read(2) blocked on a silent peer cannot be woken).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tbstream.h>

#include "rtt.h"

static const size_t sizes[] = { 64, 4096 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct echo {
	int fd;
	bool poll; /* wait in poll(2) before reading */
	struct tbs_session *s;
	size_t len;
	int n;
};

/*
 * Reads @len bytes at @buf, waiting in poll(2) before each read when
 * @poll_first: what a reader that must stay interruptible (by a time-out,
 * by another thread) pays, where a read(2) blocked on a silent peer is
 * not.
 */
static int get(int fd, char *buf, size_t len, bool poll_first)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll_first && poll(&p, 1, -1) != 1)
		return -1;
	return full(fd, buf, len, false);
}

static void *raw_echo(void *arg)
{
	struct echo *e = arg;
	char buf[4096];
	int i;

	for (i = 0; i < e->n; i++)
		if (get(e->fd, buf, e->len, e->poll) ||
		    full(e->fd, buf, e->len, true))
			break;
	return NULL;
}

static void *msg_echo(void *arg)
{
	struct echo *e = arg;
	char buf[4096];
	uint16_t t;
	ssize_t n;

	while ((n = tbs_session_recv_msg(e->s, &t, buf, sizeof(buf), -1)) > 0)
		if (tbs_session_send_msg(e->s, t, buf, (size_t)n, -1) < 0)
			break;
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts the samples; returns p50 and p99. */
static void pct(double *t, int n, double *p50, double *p99)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	*p50 = t[n / 2];
	*p99 = t[n * 99 / 100];
}

/*
 * @n raw round trips of @len bytes on @a, answered on @b; both ends wait
 * in poll(2) before they read if @poll_first.
 */
static void raw_block(int a, int b, size_t len, int n, bool poll_first,
		      double *t)
{
	struct echo e = { .fd = b, .poll = poll_first, .len = len,
			  .n = n + WARMUP };
	char buf[4096] = { 0 };
	pthread_t th;
	double t0;
	int i;

	pthread_create(&th, NULL, raw_echo, &e);
	for (i = -WARMUP; i < n; i++) {
		t0 = now_us();
		if (full(a, buf, len, true) || get(a, buf, len, poll_first)) {
			fprintf(stderr, "bench-latency: raw round trip failed\n");
			exit(1);
		}
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	pthread_join(th, NULL);
}

/* @n session round trips of @len bytes (the echo thread answers). */
static void msg_block(struct tbs_session *s, size_t len, int n, double *t)
{
	char buf[4096] = { 0 };
	double t0;
	int i;

	for (i = -WARMUP; i < n; i++) {
		t0 = now_us();
		if (tbs_session_send_msg(s, 1, buf, len, -1) < 0 ||
		    tbs_session_recv_msg(s, NULL, buf, sizeof(buf), -1) < 0) {
			fprintf(stderr, "bench-latency: session round trip failed: %s\n",
				tbs_session_error(s));
			exit(1);
		}
		if (i >= 0)
			t[i] = now_us() - t0;
	}
}

static int open_dev(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

static void *start(void *arg)
{
	return (void *)(intptr_t)tbs_session_start(arg);
}

/* A session on each end of the twin stream, each over two descriptors. */
static void sessions(const char *pa, const char *pb, struct tbs_session **sa,
		     struct tbs_session **sb)
{
	pthread_t th;
	void *r;

	if (tbs_session_new(sa, open_dev(pa), open_dev(pa), NULL) ||
	    tbs_session_new(sb, open_dev(pb), open_dev(pb), NULL))
		exit(1);
	pthread_create(&th, NULL, start, *sb);
	if (tbs_session_start(*sa)) {
		fprintf(stderr, "bench-latency: %s\n", tbs_session_error(*sa));
		exit(1);
	}
	pthread_join(th, &r);
}

int main(int argc, char **argv)
{
	double *raw, *ses, *rpoll, *pair, *ppair, r50, r99, s50, s99, m50;
	double p50, p99, pm50;
	int a, b, count = 2000, blocks = 10, per, k, i;
	struct tbs_session *sa, *sb;
	struct echo e = { 0 };
	pthread_t th;

	if (argc < 5) {
		fprintf(stderr, "usage: bench-latency RAW_A RAW_B SES_A SES_B [COUNT [BLOCKS]]\n");
		return 2;
	}
	if (argc > 5)
		count = atoi(argv[5]);
	if (argc > 6)
		blocks = atoi(argv[6]);
	if (count < 100 || blocks < 1 || count / blocks < 10) {
		fprintf(stderr, "bench-latency: COUNT at least 100, 10 per block\n");
		return 2;
	}
	per = count / blocks;
	count = per * blocks;
	a = open_dev(argv[1]);
	b = open_dev(argv[2]);
	sessions(argv[3], argv[4], &sa, &sb);
	e.s = sb;
	pthread_create(&th, NULL, msg_echo, &e);
	raw = calloc((size_t)count, sizeof(double));
	ses = calloc((size_t)count, sizeof(double));
	rpoll = calloc((size_t)count, sizeof(double));
	pair = calloc((size_t)blocks, sizeof(double));
	ppair = calloc((size_t)blocks, sizeof(double));
	for (k = 0; k < (int)NSIZES; k++) {
		for (i = 0; i < blocks; i++) {
			raw_block(a, b, sizes[k], per, false, raw + i * per);
			msg_block(sa, sizes[k], per, ses + i * per);
			raw_block(a, b, sizes[k], per, true, rpoll + i * per);
			pct(raw + i * per, per, &r50, &r99);
			pct(ses + i * per, per, &s50, &s99);
			pct(rpoll + i * per, per, &p50, &p99);
			pair[i] = s50 / r50;
			ppair[i] = p50 / r50;
		}
		pct(pair, blocks, &m50, &r99);
		pct(ppair, blocks, &pm50, &r99);
		pct(raw, count, &r50, &r99);
		pct(ses, count, &s50, &s99);
		pct(rpoll, count, &p50, &p99);
		printf("raw      %5zu B  p50 %8.1f us  p99 %8.1f us\n", sizes[k],
		       r50, r99);
		printf("session  %5zu B  p50 %8.1f us  p99 %8.1f us\n", sizes[k],
		       s50, s99);
		printf("ratio    %5zu B  p50 session/raw %.2f  p99 session/raw %.2f  (block by block: p50 %.2f)\n",
		       sizes[k], s50 / r50, s99 / r99, m50);
		printf("raw+poll %5zu B  p50 %8.1f us  p99 %8.1f us  p50/raw %.2f (block by block %.2f): poll(2) before each read\n",
		       sizes[k], p50, p99, p50 / r50, pm50);
	}
	tbs_session_abort(sa, -ECANCELED, "benchmark over");
	pthread_join(th, NULL);
	tbs_session_free(sa);
	tbs_session_free(sb);
	return 0;
}
