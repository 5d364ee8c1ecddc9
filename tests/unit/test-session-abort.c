// SPDX-License-Identifier: MIT
/*
 * tbs_session_abort() from one thread while tbs_session_close() runs in
 * another: the close returns the abort's error, the peer hears of it, and
 * nothing is joined twice, used after it was freed or leaked (run under
 * AddressSanitizer by tests/run).  Hundreds of sessions over socket pairs,
 * each aborted before, during or after its close, at a random moment,
 * against a peer that reads everything or one that reads nothing (it is
 * alive, but would never confirm: a close would wait for the confirm
 * time-out, a minute).  Verdicts depend on what each call returned, never
 * on how long it took; every wait has a generous limit.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tbstream.h"
#include "../tap.h"

#define ROUNDS 240
#define WAIT_S 20 /* far below the confirm time-out (60 s) */
#define PAYLOAD (64 * 1024)

enum when { BEFORE, DURING, AFTER };

/* The far end, in a thread of its own; it owns its session and socket. */
struct peer {
	int fd;
	bool reads; /* reads to the end and closes; else never reads */
	pthread_t thread;
	int start_r, recv_r, close_r;
	uint64_t received;
	char err[256];
};

struct closer {
	struct tbs_session *s;
	int r;
	pthread_t thread;
};

static void peer_reads(struct peer *p, struct tbs_session *s)
{
	static __thread uint8_t buf[PAYLOAD];
	ssize_t n;

	while ((n = tbs_session_recv(s, NULL, buf, sizeof(buf),
				     WAIT_S * 1000)) > 0)
		p->received += (uint64_t)n;
	p->recv_r = (int)n;
	if (!n)
		p->close_r = tbs_session_close(s);
}

/* Alive but reading nothing: waits, on the session's descriptor, to fail. */
static void peer_idles(struct peer *p, struct tbs_session *s)
{
	struct pollfd f = { .fd = tbs_session_fd(s), .events = POLLIN };
	int i;

	for (i = 0; i < WAIT_S * 10; i++) {
		if (tbs_session_ready(s) & TBS_SESSION_ERROR)
			return;
		poll(&f, 1, 100);
	}
}

static void *peer_main(void *arg)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(tbs_session_opts,
						  .role = TBS_ROLE_RECEIVER,
						  .idle_ms = 5000);
	struct peer *p = arg;
	struct tbs_session *s;

	p->recv_r = p->close_r = 1;
	p->start_r = tbs_session_new(&s, p->fd, p->fd, &o);
	if (p->start_r)
		goto out;
	p->start_r = tbs_session_start(s);
	if (!p->start_r && p->reads)
		peer_reads(p, s);
	else if (!p->start_r)
		peer_idles(p, s);
	snprintf(p->err, sizeof(p->err), "%s", tbs_session_error(s));
	tbs_session_free(s);
out:
	close(p->fd); /* the aborting side sees the end at once */
	return NULL;
}

static void *closer_main(void *arg)
{
	struct closer *c = arg;

	c->r = tbs_session_close(c->s);
	return NULL;
}

/* A call that never returned: the session cannot be freed, nor the test go on. */
static void bail_out(const char *why)
{
	printf("not ok - %s\nBail out! %s\n", why, why);
	fflush(stdout);
	_exit(1);
}

/* Joins @t, waiting at most WAIT_S; false if it did not end. */
static bool join_within(pthread_t t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	return !pthread_timedjoin_np(t, NULL, &ts);
}

struct tally {
	int rounds, bad_close, dishonest, peer_unaware, failed_setup;
	int closed_ok, aborted[3];
};

/* The session's side of one round; false when it could not start. */
static bool send_some(struct tbs_session *s)
{
	static uint8_t buf[PAYLOAD];
	size_t i;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	return !tbs_session_start(s) &&
	       tbs_session_send(s, 1, buf, sizeof(buf), WAIT_S * 1000) ==
		       (ssize_t)sizeof(buf);
}

/* Aborts @c's session @when, with a random small delay during the close. */
static void close_and_abort(struct closer *c, enum when when, bool *hung)
{
	*hung = false;
	if (when == BEFORE)
		tbs_session_abort(c->s, -ECANCELED, "stopped by the test");
	pthread_create(&c->thread, NULL, closer_main, c);
	if (when == DURING) {
		usleep((useconds_t)(rand() % 3000));
		tbs_session_abort(c->s, -ECANCELED, "stopped by the test");
	}
	*hung = !join_within(c->thread);
	if (*hung)
		return;
	if (when == AFTER)
		tbs_session_abort(c->s, -ECANCELED, "stopped by the test");
}

static void judge(struct tally *t, const struct closer *c,
		  const struct peer *p, enum when when)
{
	if (c->r == 0) {
		t->closed_ok++;
		/* a close that succeeded: the peer read and confirmed all */
		if (p->received != PAYLOAD || p->recv_r != 0)
			t->dishonest++;
		return;
	}
	t->aborted[when]++;
	if (c->r != -ECANCELED || when == AFTER)
		t->bad_close++;
	/* the peer hears of the abort, or sees the stream end */
	if (!p->reads && !strstr(p->err, "peer aborted: stopped by the test") &&
	    !strstr(p->err, "peer closed"))
		t->peer_unaware++;
}

static void round_once(struct tally *t, int i)
{
	/* a peer that reads nothing is aborted before or during the close */
	enum when when = (enum when)(rand() % 3);
	struct closer c = { .r = 1 };
	struct peer p = { .reads = i % 2 == 0 };
	int sv[2];
	bool hung;

	if (!p.reads && when == AFTER)
		when = DURING;
	t->rounds++;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    tbs_session_new(&c.s, sv[0], sv[0], NULL)) {
		t->failed_setup++;
		return;
	}
	p.fd = sv[1];
	pthread_create(&p.thread, NULL, peer_main, &p);
	if (send_some(c.s)) {
		close_and_abort(&c, when, &hung);
		if (hung)
			bail_out("a close did not return after an abort");
		pthread_join(p.thread, NULL);
		judge(t, &c, &p, when);
	} else {
		t->failed_setup++;
		tbs_session_abort(c.s, -ECANCELED, "stopped by the test");
		pthread_join(p.thread, NULL);
	}
	tbs_session_free(c.s);
	close(sv[0]);
}

/* One close against a peer that reads nothing, aborted while it waits. */
static void test_one(void)
{
	struct closer c = { .r = 1 };
	struct peer p = { .reads = false };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ||
	    tbs_session_new(&c.s, sv[0], sv[0], NULL)) {
		ok(0, "a session over a socket pair");
		return;
	}
	p.fd = sv[1];
	pthread_create(&p.thread, NULL, peer_main, &p);
	ok(send_some(c.s), "the peer is up and took 64 KiB into its window");
	pthread_create(&c.thread, NULL, closer_main, &c);
	/* the close waits for a confirmation that never comes */
	usleep(300000);
	is_int(tbs_session_abort(c.s, -ECANCELED, "stopped by the test"), 0,
	       "abort while the close waits");
	if (!join_within(c.thread))
		bail_out("the close did not return after an abort");
	ok(1, "the close returns (within %d s, the confirm time-out is 60 s)",
	   WAIT_S);
	is_int(c.r, -ECANCELED, "with the abort's error");
	ok(strstr(tbs_session_error(c.s), "stopped by the test") != NULL,
	   "and the abort's words: %s", tbs_session_error(c.s));
	is_int(tbs_session_abort(c.s, -EIO, "again"), 0,
	       "a second abort is harmless");
	ok(join_within(p.thread), "the peer ends");
	ok(strstr(p.err, "peer aborted: stopped by the test") != NULL,
	   "the peer heard the ABORT: %s", p.err);
	tbs_session_free(c.s);
	close(sv[0]);
}

static void test_rounds(void)
{
	struct tally t = { 0 };
	int i;

	srand((unsigned int)time(NULL));
	for (i = 0; i < ROUNDS; i++)
		round_once(&t, i);
	printf("# %d rounds: %d closed in order, aborted %d before, %d during, %d after the close\n",
	       t.rounds, t.closed_ok, t.aborted[BEFORE], t.aborted[DURING],
	       t.aborted[AFTER]);
	is_int(t.failed_setup, 0, "every round's sessions started");
	ok(1, "every close returned");
	is_int(t.bad_close, 0,
	       "every close that did not succeed returned the abort's error");
	is_int(t.dishonest, 0,
	       "every close that succeeded had everything read by the peer");
	is_int(t.peer_unaware, 0,
	       "every peer that read nothing heard of the abort");
	ok(t.aborted[DURING] > 0 && t.aborted[BEFORE] > 0,
	   "aborts came both before and during closes");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(300); /* a hang fails the test rather than the whole run */
	test_one();
	test_rounds();
	return tap_done();
}
