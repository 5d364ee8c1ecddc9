// SPDX-License-Identifier: MIT
/*
 * Session overhead: moves the same number of bytes over one socketpair, once
 * raw (write/read of 256 KiB) and once through a session (256 KiB records,
 * per-record XXH3, whole-stream hash, acknowledgements, confirmation), in the
 * same run, and prints both rates and their ratio.  When the processors are
 * the bottleneck, as here, the ratio is the cost of the session on the CPU.
 *
 * Usage: bench-session [MiB]   (default 1024)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tbstream.h"

#define CHUNK TBS_SESSION_MAX_RECORD

struct side {
	int fd;
	uint64_t bytes;
	int r;
	struct tbs_session *s;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *raw_writer(void *arg)
{
	struct side *w = arg;
	uint8_t *buf = calloc(1, CHUNK);
	uint64_t left = w->bytes;
	ssize_t n;

	while (left) {
		n = write(w->fd, buf, left < CHUNK ? left : CHUNK);
		if (n <= 0)
			break;
		left -= (uint64_t)n;
	}
	shutdown(w->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static double raw_rate(uint64_t bytes)
{
	uint8_t *buf = malloc(CHUNK);
	struct side w = { .bytes = bytes };
	int sv[2];
	pthread_t t;
	double t0 = now_s();
	ssize_t n;
	uint64_t got = 0;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	w.fd = sv[0];
	pthread_create(&t, NULL, raw_writer, &w);
	while ((n = read(sv[1], buf, CHUNK)) > 0)
		got += (uint64_t)n;
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	free(buf);
	return got == bytes ? (double)bytes / (now_s() - t0) / 1e9 : 0;
}

static void *session_side(void *arg)
{
	struct side *e = arg;
	uint8_t *buf = calloc(1, CHUNK);
	uint64_t left = e->bytes;
	ssize_t n = 0;

	e->r = tbs_session_start(e->s);
	while (!e->r && left) {
		n = tbs_session_send(e->s, 1, buf, left < CHUNK ? left : CHUNK,
				     10000);
		if (n < 0)
			break;
		left -= (uint64_t)n;
	}
	if (!e->r && !e->bytes) {
		while ((n = tbs_session_recv(e->s, NULL, buf, CHUNK, 10000)) >
		       0)
			;
		if (!n)
			n = tbs_session_confirm(e->s);
	}
	if (!e->r)
		e->r = n < 0 ? (int)n : tbs_session_close(e->s);
	free(buf);
	return NULL;
}

static double session_rate(uint64_t bytes)
{
	struct side a = { .bytes = bytes }, b = { 0 };
	pthread_t ta, tb;
	int sv[2];
	double t0;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (tbs_session_new(&a.s, sv[0], sv[0], NULL) ||
	    tbs_session_new(&b.s, sv[1], sv[1], NULL))
		return 0;
	t0 = now_s();
	pthread_create(&ta, NULL, session_side, &a);
	pthread_create(&tb, NULL, session_side, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	t0 = now_s() - t0;
	if (a.r || b.r)
		fprintf(stderr, "session failed: %s / %s\n",
			tbs_session_error(a.s), tbs_session_error(b.s));
	tbs_session_free(a.s);
	tbs_session_free(b.s);
	close(sv[0]);
	close(sv[1]);
	return a.r || b.r ? 0 : (double)bytes / t0 / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	double raw, ses;

	raw = raw_rate(mib << 20);
	ses = session_rate(mib << 20);
	printf("raw socketpair: %.2f GB/s\n", raw);
	printf("session:        %.2f GB/s\n", ses);
	printf("session/raw:    %.0f%% (processors are the bottleneck)\n",
	       raw > 0 ? 100 * ses / raw : 0);
	return ses > 0 ? 0 : 1;
}
