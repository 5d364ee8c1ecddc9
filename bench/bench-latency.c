// SPDX-License-Identifier: MIT
/*
 * bench-latency: round trips of one message, the raw device against a
 * session, in the same run over the same pair of devices.
 *
 *   bench-latency DEV_A DEV_B [COUNT]
 *
 * DEV_A and DEV_B are the two ends of one stream (two hosts of tbsim, or
 * the same stream on two machines is not possible from one process).  An
 * echo thread answers on DEV_B; the main thread measures on DEV_A: first
 * read/write on the raw descriptors, then tbs_session_send_msg() and
 * tbs_session_recv_msg() on sessions over the same descriptors.  Prints
 * p50 and p99 in microseconds and the ratio session / raw.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tbstream.h>

static int count = 2000;
static const size_t sizes[] = { 64, 4096 };

struct echo {
	int fd;
	struct tbs_session *s;
	size_t len;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int full(int fd, void *buf, size_t len, bool wr)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = wr ? write(fd, (char *)buf + done, len - done) :
			 read(fd, (char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void *raw_echo(void *arg)
{
	struct echo *e = arg;
	char buf[4096];
	int i;

	for (i = 0; i < count + 10; i++)
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

static void report(const char *kind, size_t len, double *t, double *p50)
{
	qsort(t, (size_t)count, sizeof(*t), cmp);
	*p50 = t[count / 2];
	printf("%-8s %5zu B  p50 %8.1f us  p99 %8.1f us\n", kind, len,
	       t[count / 2], t[count * 99 / 100]);
}

static void raw_run(int a, int b, size_t len, double *t)
{
	struct echo e = { .fd = b, .len = len };
	char buf[4096] = { 0 };
	pthread_t th;
	double t0;
	int i;

	pthread_create(&th, NULL, raw_echo, &e);
	for (i = -10; i < count; i++) {
		t0 = now_us();
		if (full(a, buf, len, true) || full(a, buf, len, false))
			exit(1);
		if (i >= 0)
			t[i] = now_us() - t0;
	}
	pthread_join(th, NULL);
}

static void *start(void *arg)
{
	return (void *)(intptr_t)tbs_session_start(arg);
}

static void msg_run(int a, int b, double *t[2])
{
	struct tbs_session *sa, *sb;
	struct echo e = { 0 };
	char buf[4096] = { 0 };
	pthread_t th;
	void *r;
	size_t k;
	int i;

	if (tbs_session_new(&sa, a, a, NULL) ||
	    tbs_session_new(&sb, b, b, NULL))
		exit(1);
	pthread_create(&th, NULL, start, sb);
	if (tbs_session_start(sa))
		exit(1);
	pthread_join(th, &r);
	e.s = sb;
	pthread_create(&th, NULL, msg_echo, &e);
	for (k = 0; k < 2; k++)
		for (i = -10; i < count; i++) {
			double t0 = now_us();

			if (tbs_session_send_msg(sa, 1, buf, sizes[k], -1) < 0 ||
			    tbs_session_recv_msg(sa, NULL, buf, sizeof(buf),
						 -1) < 0)
				exit(1);
			if (i >= 0)
				t[k][i] = now_us() - t0;
		}
	tbs_session_abort(sa, -ECANCELED, "benchmark over");
	pthread_join(th, NULL);
	tbs_session_free(sa);
	tbs_session_free(sb);
}

int main(int argc, char **argv)
{
	double *raw[2], *ses[2], p_raw[2], p_ses[2];
	int a, b, k;

	if (argc < 3) {
		fprintf(stderr, "usage: bench-latency DEV_A DEV_B [COUNT]\n");
		return 2;
	}
	if (argc > 3)
		count = atoi(argv[3]);
	a = open(argv[1], O_RDWR);
	b = open(argv[2], O_RDWR);
	if (a < 0 || b < 0 || count < 100) {
		perror("open");
		return 1;
	}
	for (k = 0; k < 2; k++) {
		raw[k] = calloc((size_t)count, sizeof(double));
		ses[k] = calloc((size_t)count, sizeof(double));
		raw_run(a, b, sizes[k], raw[k]);
	}
	msg_run(a, b, ses);
	for (k = 0; k < 2; k++) {
		report("raw", sizes[k], raw[k], &p_raw[k]);
		report("session", sizes[k], ses[k], &p_ses[k]);
		printf("ratio    %5zu B  p50 session/raw %.2f\n", sizes[k],
		       p_ses[k] / p_raw[k]);
	}
	return 0;
}
