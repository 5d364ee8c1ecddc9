// SPDX-License-Identifier: MIT
/*
 * Sessions whose receiving threads read the descriptor themselves
 * (TBS_SESSION_CALLER_READS), over the relay of session-relay.h: request
 * and reply, bulk both ways, and every way a receiver blocked in read(2)
 * must get out of it: its time-out, an abort from another thread, the
 * peer killed, the peer vanished, the peer's end.  Keep-alives are read
 * by the receiver while it waits, and by the reader thread while nobody
 * receives.  Links the internal library to see who read (session-int.h);
 * verdicts depend only on what each end reported, never on timing.
 */
#include "session-caller.h"
#include "../tap.h"

#define MiB (1024 * 1024)
/* Two started sessions over a socket relay, both reading in receivers. */
struct duo {
	struct relay r;
	struct end a, b;
	struct echo e;
};

static void *start_b(void *arg)
{
	struct end *e = arg;

	e->start_r = tbs_session_start(e->s);
	return NULL;
}

static bool duo_start(struct duo *d, int idle_ms)
{
	memset(d, 0, sizeof(*d));
	relay_init(&d->r);
	caller_opts(&d->a.o);
	caller_opts(&d->b.o);
	d->a.o.idle_ms = d->b.o.idle_ms = idle_ms;
	end_setup(&d->a, d->r.a, d->r.aw, &d->b);
	end_setup(&d->b, d->r.b, d->r.bw, &d->a);
	if (d->a.new_r || d->b.new_r)
		return false;
	relay_start(&d->r);
	pthread_create(&d->b.thread, NULL, start_b, &d->b);
	d->a.start_r = tbs_session_start(d->a.s);
	pthread_join(d->b.thread, NULL);
	return !d->a.start_r && !d->b.start_r;
}

/* Both sessions over, the echo joined, everything freed. */
static void duo_stop(struct duo *d)
{
	if (d->e.running) {
		tbs_session_abort(d->b.s, -ECANCELED, "test over");
		pthread_join(d->e.thread, NULL);
	}
	tbs_session_free(d->a.s);
	tbs_session_free(d->b.s);
	relay_stop(&d->r);
}

static void echo_start(struct duo *d, void *(*fn)(void *))
{
	d->e.s = d->b.s;
	d->e.running = true;
	pthread_create(&d->e.thread, NULL, fn, &d->e);
}
static void *close_b(void *arg)
{
	struct end *e = arg;

	e->close_r = tbs_session_close(e->s);
	return NULL;
}

static void test_request_reply(void)
{
	struct duo d;

	if (!ok(duo_start(&d, 3000), "request/reply: sessions started"))
		return duo_stop(&d);
	echo_start(&d, echo_main);
	ok(round_trips(d.a.s, 600),
	   "request/reply: 600 messages of 1 B to 128 KiB came back exact");
	ok(receiver_reads(d.a.s) > 0 && receiver_reads(d.b.s) > 0,
	   "request/reply: the receiving threads read themselves");
	is_int(tbs_session_finish(d.a.s), 0, "request/reply: finish confirmed");
	pthread_join(d.e.thread, NULL);
	d.e.running = false;
	is_int((int)d.e.r, 0, "request/reply: the echo sees the end");
	is_int(d.e.confirm_r, 0, "request/reply: echo confirms");
	pthread_create(&d.b.thread, NULL, close_b, &d.b);
	is_int(tbs_session_close(d.a.s), 0, "request/reply: requester closes");
	pthread_join(d.b.thread, NULL);
	is_int(d.b.close_r, 0, "request/reply: echo closes");
	duo_stop(&d);
}

static void test_bulk(void)
{
	struct relay r;
	struct end a = { .send_len = 6 * MiB + 17, .seed = 3 };
	struct end b = { .send_len = 5 * MiB + 3, .seed = 4 };

	caller_opts(&a.o);
	caller_opts(&b.o);
	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "bulk both ways, receivers reading: byte-exact, both confirmed");
}

/*
 * A time-out interrupts the receiver's read; the session goes on.  While
 * the receiver waits longer than the idle time-out, the peer's keep-alives
 * keep it alive, and so do the reader thread's reads on the other side,
 * where nobody receives meanwhile.
 */
static void test_timeout_keepalive(void)
{
	uint8_t buf[64] = { 7 };
	uint64_t before;
	struct duo d;

	if (!ok(duo_start(&d, 1000), "time-out: sessions started"))
		return duo_stop(&d);
	echo_start(&d, echo_main);
	ok(round_trips(d.a.s, 20), "time-out: round trips before");
	before = receiver_reads(d.a.s);
	is_int((int)tbs_session_recv_msg(d.a.s, NULL, buf, sizeof(buf), 300),
	       -EAGAIN, "time-out: a receive with nothing to take times out");
	ok(receiver_reads(d.a.s) > before,
	   "time-out: the receiver was reading when it expired");
	is_int((int)tbs_session_recv_msg(d.a.s, NULL, buf, sizeof(buf), 3000),
	       -EAGAIN, "keep-alive: a wait of three idle time-outs expires");
	ok(!*tbs_session_error(d.a.s) && !*tbs_session_error(d.b.s),
	   "keep-alive: neither side declared the other gone");
	usleep(2500000); /* nobody receives on a: its reader thread reads */
	ok(!*tbs_session_error(d.a.s) && !*tbs_session_error(d.b.s),
	   "keep-alive: nor while the requester received nothing");
	ok(round_trips(d.a.s, 20), "time-out: round trips after");
	duo_stop(&d);
}

/* A receiver with no time-out, blocked in read(2), then @what. */
static bool blocked_receiver(struct duo *d, struct blocked *b, int idle_ms)
{
	b->s = NULL;
	if (!duo_start(d, idle_ms))
		return false;
	echo_start(d, echo_main);
	if (!round_trips(d->a.s, 10))
		return false;
	b->s = d->a.s;
	pthread_create(&b->thread, NULL, recv_blocked, b);
	return receiver_in_read(d->a.s);
}

static void test_abort_from_other_thread(void)
{
	struct blocked b;
	struct duo d;

	ok(blocked_receiver(&d, &b, 3000),
	   "abort: a receiver is blocked in read(2)");
	is_int(tbs_session_abort(d.a.s, -ECANCELED, "stopped by the user"), 0,
	       "abort: another thread aborts");
	if (b.s)
		pthread_join(b.thread, NULL);
	is_int((int)b.r, -ECANCELED, "abort: the receiver returns the error");
	duo_stop(&d);
}

static void test_peer_killed(void)
{
	struct blocked b;
	struct duo d;

	ok(blocked_receiver(&d, &b, 3000),
	   "peer killed: a receiver is blocked in read(2)");
	shutdown(d.r.b, SHUT_RDWR); /* the peer's descriptor is gone */
	if (b.s)
		pthread_join(b.thread, NULL);
	is_int((int)b.r, -ECONNRESET, "peer killed: the receiver fails");
	ok(strstr(tbs_session_error(d.a.s), "peer closed") != NULL,
	   "peer killed: and says the peer closed");
	duo_stop(&d);
}

static void test_peer_vanished(void)
{
	struct blocked b;
	struct duo d;

	ok(blocked_receiver(&d, &b, 1000),
	   "peer vanished: a receiver is blocked in read(2)");
	d.r.ab.freeze = d.r.ba.freeze = true;
	if (b.s)
		pthread_join(b.thread, NULL);
	is_int((int)b.r, -ETIMEDOUT, "peer vanished: the receiver times out");
	ok(strstr(tbs_session_error(d.a.s), "peer vanished") != NULL,
	   "peer vanished: and says so");
	duo_stop(&d);
}

static void *finish_b(void *arg)
{
	struct end *e = arg;

	e->finish_r = tbs_session_finish(e->s);
	return NULL;
}

static void test_peer_ends(void)
{
	struct blocked b;
	struct duo d;

	ok(blocked_receiver(&d, &b, 3000),
	   "peer ends: a receiver is blocked in read(2)");
	pthread_create(&d.b.thread, NULL, finish_b, &d.b);
	if (b.s)
		pthread_join(b.thread, NULL);
	is_int((int)b.r, 0, "peer ends: the receiver sees the end");
	is_int(tbs_session_confirm(d.a.s), 0, "peer ends: and confirms it");
	pthread_join(d.b.thread, NULL);
	is_int(d.b.finish_r, 0, "peer ends: the peer's end is confirmed");
	duo_stop(&d);
}

/* A receiver that blocks the signal waits for the reader thread instead. */
static void *blocked_signal_echo(void *arg)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIG_READ);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return echo_main(arg);
}

static void test_signal_blocked(void)
{
	struct duo d;

	if (!ok(duo_start(&d, 3000), "signal blocked: sessions started"))
		return duo_stop(&d);
	echo_start(&d, blocked_signal_echo);
	ok(round_trips(d.a.s, 60),
	   "signal blocked in the echo: messages still come back");
	is_int((int)receiver_reads(d.b.s), 0,
	   "signal blocked: that receiver never read itself");
	duo_stop(&d);
}

static void restart_handler(int sig)
{
	(void)sig;
}

static void test_bad_options(void)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(tbs_session_opts);
	struct sigaction sa = { .sa_handler = restart_handler,
				.sa_flags = SA_RESTART };
	struct tbs_session *s;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	o.flags = TBS_SESSION_CALLER_READS;
	o.read_signal = SIGKILL;
	is_int(tbs_session_new(&s, sv[0], sv[0], &o), -EINVAL,
	       "options: SIGKILL cannot interrupt a read");
	o.read_signal = 0;
	is_int(tbs_session_new(&s, sv[0], sv[0], &o), -EINVAL,
	       "options: the flag needs a signal");
	sigaction(SIGRTMIN + 2, &sa, NULL);
	o.read_signal = SIGRTMIN + 2;
	is_int(tbs_session_new(&s, sv[0], sv[0], &o), -EINVAL,
	       "options: a handler that restarts reads is refused");
	o.flags = 0x80;
	o.read_signal = SIG_READ;
	is_int(tbs_session_new(&s, sv[0], sv[0], &o), -EINVAL,
	       "options: unknown flags are refused");
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	pair_watchdog(200);
	test_bad_options();
	test_request_reply();
	test_bulk();
	test_timeout_keepalive();
	test_abort_from_other_thread();
	test_peer_killed();
	test_peer_vanished();
	test_peer_ends();
	test_signal_blocked();
	return tap_done();
}
