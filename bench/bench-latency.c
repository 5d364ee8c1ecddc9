// SPDX-License-Identifier: MIT
/*
 * bench-latency: round trips of one message, the raw device against a
 * session, in the same run.
 *
 *   bench-latency RAW_A RAW_B SES_A SES_B [THR_A THR_B] [COUNT [BLOCKS]]
 *
 * RAW_A/RAW_B are the two ends of one stream, SES_A/SES_B the two ends of
 * a twin stream with the same profile on the same link, THR_A/THR_B a
 * third one.  For each size, COUNT round trips of each kind are measured
 * in BLOCKS alternating blocks (raw, session, ...), so that a change in
 * the machine's load weighs on all kinds alike.  An echo thread answers
 * on the B ends; the main thread measures on the A ends: read/write on the
 * raw device, and tbs_session_send_msg() / tbs_session_recv_msg() on a
 * session that each end runs over two descriptors of its device, as
 * tbs_endpoint_open() gives them.  The sessions on SES read the device in
 * the receiving thread (TBS_SESSION_CALLER_READS); those on THR, if
 * given, leave the reads to the session's reader thread, which hands each
 * message to the receiving thread (the default).  Prints p50 and p99 in
 * microseconds, the ratios to raw, and the median of the p50 ratios of
 * neighbouring blocks (on a shared machine, the load changes between
 * blocks more than within a group of them).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	struct tbs_session *s;
	size_t len;
	int n;
};

static void *raw_echo(void *arg)
{
	struct echo *e = arg;
	char buf[4096];
	int i;

	for (i = 0; i < e->n; i++)
		if (full(e->fd, buf, e->len, false) ||
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

/* @n raw round trips of @len bytes on @a, answered on @b. */
static void raw_block(int a, int b, size_t len, int n, double *t)
{
	struct echo e = { .fd = b, .len = len, .n = n + WARMUP };
	char buf[4096] = { 0 };
	pthread_t th;
	double t0;
	int i;

	pthread_create(&th, NULL, raw_echo, &e);
	for (i = -WARMUP; i < n; i++) {
		t0 = now_us();
		if (full(a, buf, len, true) || full(a, buf, len, false)) {
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

/*
 * A session on each end of a stream, each over two descriptors; the
 * receiving threads read themselves if @caller_reads.
 */
static void sessions(const char *pa, const char *pb, bool caller_reads,
		     struct tbs_session **sa, struct tbs_session **sb)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(tbs_session_opts);
	pthread_t th;
	void *r;

	if (caller_reads) {
		o.flags = TBS_SESSION_CALLER_READS;
		o.read_signal = SIGRTMIN + 1;
	}
	if (tbs_session_new(sa, open_dev(pa), open_dev(pa), &o) ||
	    tbs_session_new(sb, open_dev(pb), open_dev(pb), &o))
		exit(1);
	pthread_create(&th, NULL, start, *sb);
	if (tbs_session_start(*sa)) {
		fprintf(stderr, "bench-latency: %s\n", tbs_session_error(*sa));
		exit(1);
	}
	pthread_join(th, &r);
}

/* One kind of round trip: its samples, and the p50 ratio of each block. */
struct kind {
	const char *name;
	struct tbs_session *a, *b; /* NULL: the raw device */
	struct echo e;
	pthread_t echo;
	double *t, *pair;
};

static void kind_init(struct kind *k, const char *name, int count,
		      int blocks)
{
	k->name = name;
	k->t = calloc((size_t)count, sizeof(double));
	k->pair = calloc((size_t)blocks, sizeof(double));
	if (!k->t || !k->pair)
		exit(1);
}

static void kind_start(struct kind *k, const char *pa, const char *pb,
		       bool caller_reads)
{
	sessions(pa, pb, caller_reads, &k->a, &k->b);
	k->e.s = k->b;
	pthread_create(&k->echo, NULL, msg_echo, &k->e);
}

static void kind_stop(struct kind *k)
{
	if (!k->a)
		return;
	tbs_session_abort(k->a, -ECANCELED, "benchmark over");
	pthread_join(k->echo, NULL);
	tbs_session_free(k->a);
	tbs_session_free(k->b);
}

static void report(struct kind *k, const struct kind *raw, size_t size,
		   int count, int blocks)
{
	double p50, p99, r50, r99, m50, x;

	pct(k->t, count, &p50, &p99);
	printf("%-8s %5zu B  p50 %8.1f us  p99 %8.1f us", k->name, size, p50,
	       p99);
	if (k != raw) {
		pct(raw->t, count, &r50, &r99);
		pct(k->pair, blocks, &m50, &x);
		printf("  %s/raw p50 %.2f p99 %.2f (block by block: p50 %.2f)",
		       k->name, p50 / r50, p99 / r99, m50);
	}
	printf("\n");
}

static bool is_number(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

int main(int argc, char **argv)
{
	int a, b, count = 2000, blocks = 10, per, nk = 2, k, i, j, arg = 5;
	struct kind kinds[3] = { 0 };
	double r50, r99, x50, x99;

	if (argc < 5) {
		fprintf(stderr, "usage: bench-latency RAW_A RAW_B SES_A SES_B [THR_A THR_B] [COUNT [BLOCKS]]\n");
		return 2;
	}
	if (argc > 6 && !is_number(argv[5])) {
		nk = 3;
		arg = 7;
	}
	if (argc > arg)
		count = atoi(argv[arg]);
	if (argc > arg + 1)
		blocks = atoi(argv[arg + 1]);
	if (count < 100 || blocks < 1 || count / blocks < 10) {
		fprintf(stderr, "bench-latency: COUNT at least 100, 10 per block\n");
		return 2;
	}
	per = count / blocks;
	count = per * blocks;
	a = open_dev(argv[1]);
	b = open_dev(argv[2]);
	kind_init(&kinds[0], "raw", count, blocks);
	kind_init(&kinds[1], "session", count, blocks);
	kind_start(&kinds[1], argv[3], argv[4], true);
	if (nk == 3) {
		kind_init(&kinds[2], "thread", count, blocks);
		kind_start(&kinds[2], argv[5], argv[6], false);
	}
	for (j = 0; j < (int)NSIZES; j++) {
		for (i = 0; i < blocks; i++) {
			raw_block(a, b, sizes[j], per, kinds[0].t + i * per);
			pct(kinds[0].t + i * per, per, &r50, &r99);
			for (k = 1; k < nk; k++) {
				msg_block(kinds[k].a, sizes[j], per,
					  kinds[k].t + i * per);
				pct(kinds[k].t + i * per, per, &x50, &x99);
				kinds[k].pair[i] = x50 / r50;
			}
		}
		for (k = 0; k < nk; k++)
			report(&kinds[k], &kinds[0], sizes[j], count, blocks);
	}
	for (k = 1; k < nk; k++)
		kind_stop(&kinds[k]);
	return 0;
}
