// SPDX-License-Identifier: MIT
/*
 * Session tests over a relay that injects the device's faults.  Verdicts
 * depend only on what arrived and what each end reported, never on timing.
 */
#include "session-pair.h"
#include "../tap.h"

#define MiB (1024 * 1024)

static void test_one_way(void)
{
	struct relay r;
	struct end a = { .send_len = 8 * MiB, .seed = 1 };
	struct end b = { .seed = 2 };
	static const char id[] = "backup-2026";
	char got[64] = "";
	int n;

	a.o.id = id;
	a.o.id_len = sizeof(id) - 1;
	a.o.options = 0x3;
	b.o.options = 0x6;
	relay_init(&r);
	end_setup(&a, r.a, r.aw, &b);
	end_setup(&b, r.b, r.bw, &a);
	relay_start(&r);
	pthread_create(&a.thread, NULL, end_main, &a);
	b.no_close = true;
	pthread_create(&b.thread, NULL, end_main, &b);
	pthread_join(b.thread, NULL);
	n = tbs_session_peer_id(b.s, got, sizeof(got));
	is_int(n, (int)sizeof(id) - 1, "receiver learns the transfer identity");
	ok(!memcmp(got, id, sizeof(id) - 1), "identity is byte-exact");
	is_int(tbs_session_options(b.s), 0x2, "options are the intersection");
	b.close_r = tbs_session_close(b.s);
	pthread_join(a.thread, NULL);
	tbs_session_free(a.s);
	tbs_session_free(b.s);
	relay_stop(&r);
	end_show("a", &a);
	end_show("b", &b);
	ok(end_clean(&a) && end_clean(&b), "8 MiB one way arrive byte-exact");
	ok(!a.finish_before_peer_confirm,
	   "sender's finish returns only after the receiver's confirm");
}

static void test_duplex(void)
{
	struct relay r;
	struct end a = { .send_len = 6 * MiB + 17, .seed = 3 };
	struct end b = { .send_len = 5 * MiB + 3, .seed = 4 };

	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "both directions at once arrive byte-exact");
}

static void test_pipes(void)
{
	struct relay r;
	struct end a = { .send_len = 3 * MiB, .seed = 21 };
	struct end b = { .send_len = 2 * MiB, .seed = 22 };

	relay_init_pipes(&r);
	r.ab.flip_at[0] = 500000;
	r.ba.drop_frame_at[0] = 300000;
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "separate read and write descriptors (pipes), with faults");
}

/* A receiver that reads slowly: the sender waits for credit, no loss. */
static void test_slow_reader(void)
{
	struct relay r;
	struct end a = { .send_len = 3 * MiB, .seed = 23 };
	struct end b = { .seed = 24, .slow = true };

	a.o.window = 512 * 1024;
	b.o.window = 512 * 1024;
	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "a slow reader with a small window gets everything");
}

static void test_empty(void)
{
	struct relay r;
	struct end a = { .seed = 5 };
	struct end b = { .seed = 6 };

	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b), "empty streams end cleanly");
}

static void test_late_peer(void)
{
	struct relay r;
	struct end a = { .send_len = 1 * MiB, .seed = 7 };
	struct end b = { .send_len = 1 * MiB, .seed = 8 };

	relay_init(&r);
	r.ab.closed_until_open = true;
	/* two HELLOs of a are lost before b opens */
	pair_run(&r, &a, &b, 200);
	ok(r.ab.dropped > 0, "early frames were lost");
	ok(end_clean(&a) && end_clean(&b),
	   "handshake survives frames lost before the peer opened");
}

static void test_faults(const char *what, void (*set)(struct relay *))
{
	struct relay r;
	struct end a = { .send_len = 4 * MiB, .seed = 9 };
	struct end b = { .send_len = 3 * MiB, .seed = 10 };

	relay_init(&r);
	set(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b), "%s: recovered, byte-exact", what);
	ok(a.st.retransmits + b.st.retransmits > 0, "%s: by retransmission",
	   what);
}

static void set_flip(struct relay *r)
{
	r->ab.flip_at[0] = 100000;
	r->ab.flip_at[1] = 2000000;
	r->ba.flip_at[0] = 777777;
	r->ab.flip_at[2] = 60; /* a HELLO */
}

static void set_drop(struct relay *r)
{
	r->ab.drop_frame_at[0] = 300000;
	r->ab.drop_frame_at[1] = 300000 + 4096 * 3;
	r->ba.drop_frame_at[0] = 1500000;
}

static void set_short(struct relay *r)
{
	r->ab.short_writes = r->ba.short_writes = true;
	r->ab.flip_at[0] = 1234567;
	r->ba.drop_frame_at[0] = 654321;
}

static void test_eof(void)
{
	struct relay r;
	struct end a = { .send_len = 4 * MiB, .seed = 11 };
	struct end b = { .send_len = 4 * MiB, .seed = 12 };

	relay_init(&r);
	r.ab.eof_at = 1000000;
	r.ba.eof_at = 1000000;
	pair_run(&r, &a, &b, 0);
	ok(end_honest(&a) && end_honest(&b), "early EOF: no false success");
	ok(end_rx_failed(&a) && end_rx_failed(&b),
	   "early EOF: both receivers fail");
	ok(strstr(b.err, "offset") || strstr(b.err, "closed"),
	   "early EOF: message says what happened");
}

static void test_unrepairable(void)
{
	struct relay r;
	struct end a = { .send_len = 4 * MiB, .seed = 13 };
	struct end b = { .seed = 14 };

	a.o.max_retries = 3;
	relay_init(&r);
	r.ab.corrupt_from = 1000000;
	pair_run(&r, &a, &b, 0);
	ok(end_honest(&a) && end_honest(&b), "lasting corruption: no false success");
	ok(a.send_r < 0 || a.finish_r < 0, "lasting corruption: sender fails");
	ok(strstr(a.err, "could not be repaired after 3 retries") != NULL,
	   "sender's message names the offset and the retries");
	ok(end_rx_failed(&b), "lasting corruption: receiver fails too");
}

/* The receiving application stops taking data: the sender says so. */
static void test_never_confirmed(void)
{
	struct relay r;
	struct end a = { .send_len = 8 * MiB, .seed = 25 };
	struct end b = { .seed = 26, .stop_after = 1 * MiB, .no_close = true };

	a.o.confirm_ms = 1500;
	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(b.received >= 1 * MiB && b.received < 8 * MiB,
	   "unconfirmed: the receiver took part of it and stopped");
	is_int(a.finish_r, -ETIMEDOUT,
	       "unconfirmed: the sender does not report success");
	ok(strstr(a.err, "did not confirm") != NULL,
	   "unconfirmed: and says why");
}

/* The receiver's disk is full: it aborts, the sender says why. */
static void test_peer_aborts(void)
{
	struct relay r;
	struct end a = { .send_len = 8 * MiB, .seed = 27 };
	struct end b = { .seed = 28 };
	uint8_t buf[65536];
	ssize_t n = 0;

	relay_init(&r);
	end_setup(&a, r.a, r.aw, &b);
	end_setup(&b, r.b, r.bw, &a);
	relay_start(&r);
	pthread_create(&a.thread, NULL, end_main, &a);
	b.start_r = tbs_session_start(b.s);
	while (!b.start_r && b.received < MiB &&
	       (n = tbs_session_recv(b.s, NULL, buf, sizeof(buf), 10000)) > 0)
		b.received += (uint64_t)n;
	is_int(tbs_session_abort(b.s, -ENOSPC, "disk full writing backup.img"),
	       0, "abort: the receiver aborts");
	is_int(tbs_session_recv(b.s, NULL, buf, sizeof(buf), 0), -ENOSPC,
	       "abort: its own calls fail with its error");
	pthread_join(a.thread, NULL);
	tbs_session_free(a.s);
	tbs_session_free(b.s);
	relay_stop(&r);
	end_show("a", &a);
	ok(a.send_r == -ENOSPC || a.finish_r == -ENOSPC,
	   "abort: the sender fails with the receiver's errno");
	ok(!strcmp(a.err, "peer aborted: disk full writing backup.img"),
	   "abort: and gives the receiver's message");
}

static void test_vanished(void)
{
	struct relay r;
	struct end a = { .send_len = 2 * MiB, .seed = 15 };
	struct end b = { .seed = 16 };

	a.o.idle_ms = 1000;
	b.o.idle_ms = 1000;
	relay_init(&r);
	r.ab.freeze_at = 1000000;
	r.ba.freeze_at = 20000;
	pair_run(&r, &a, &b, 0);
	ok(end_honest(&a) && end_honest(&b), "vanished peer: no false success");
	ok(strstr(a.err, "peer vanished at offset") != NULL,
	   "vanished peer: sender says so with the offset");
}

/*
 * Making the data durable takes longer than the confirm time-out (a long
 * final sync): the receiver read everything and says so, so the sender
 * waits instead of failing both sides.
 */
static void test_long_sync(void)
{
	struct relay r;
	struct end a = { .send_len = 1 * MiB, .seed = 29 };
	struct end b = { .seed = 30, .confirm_delay_ms = 2500 };

	a.o.confirm_ms = 1000;
	b.o.confirm_ms = 1000;
	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "a sync longer than the confirm time-out is waited for");
}

/*
 * The first eight frames each way are damaged, headers and payloads: the
 * HELLOs of both sides are all lost or bad.  Damaged bytes show that the
 * peer is there, so HELLOs go on past the timed ones until one gets
 * through.
 */
static void test_handshake_damage(void)
{
	struct relay r;
	struct end a = { .send_len = 1 * MiB, .seed = 31 };
	struct end b = { .send_len = 1 * MiB, .seed = 32 };

	a.o.handshake_ms = b.o.handshake_ms = 20000;
	relay_init(&r);
	r.ab.corrupt_frames = 8;
	r.ba.corrupt_frames = 8;
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "handshake: recovers from 8 damaged frames each way");
}

/*
 * Tiny messages and an application that takes a pause longer than the
 * idle time-out: the receiver keeps reading acknowledgements and
 * keep-alives (memory is bounded by the record credit, not by stopping to
 * read), so neither side takes the other for gone.
 */
static void test_small_records_slow(void)
{
	struct relay r;
	struct end a = { .send_len = 3 * MiB, .seed = 33, .msg_size = 16 };
	struct end b = { .send_len = 64 * 1024, .seed = 34, .msg_size = 24 };

	a.o.idle_ms = b.o.idle_ms = 1000;
	b.confirm_delay_ms = 10;
	relay_init(&r);
	b.slow = false;
	b.start_pause_ms = 2500;
	pair_run(&r, &a, &b, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "16-byte messages, a pause of 2.5 s: no false 'vanished'");
}

static void *start_one(void *arg)
{
	return (void *)(intptr_t)tbs_session_start(arg);
}

static uint8_t msg_buf[3 << 20];

/* Bytes and messages, one larger than the window, on one stream. */
static void *send_mixed(void *arg)
{
	struct tbs_session *a = arg;

	tbs_session_send_msg(a, 7, msg_buf, 100, -1);
	tbs_session_send(a, 8, msg_buf, 10, -1);
	tbs_session_send_msg(a, 9, msg_buf, 2 << 20, -1); /* twice the window */
	tbs_session_send_msg(a, 10, msg_buf, 5000, -1);
	return NULL;
}

/*
 * The message calls: boundaries kept, all-or-nothing under a time-out of
 * 0, a too small buffer, bytes and messages on one stream, readiness.
 */
static void test_messages(void)
{
	struct tbs_session_opts o =
		TBS_OPTS_INIT(tbs_session_opts, .window = 1 << 20);
	struct tbs_session *a, *b;
	static uint8_t in[3 << 20];
	uint8_t *buf = msg_buf;
	struct pollfd p;
	uint16_t type = 0;
	pthread_t t;
	void *ra;
	int sv[2], rb, i, eagain = 0;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    tbs_session_new(&a, sv[0], sv[0], &o) ||
	    tbs_session_new(&b, sv[1], sv[1], &o))
		abort();
	for (i = 0; i < (int)sizeof(msg_buf); i++)
		buf[i] = (uint8_t)(i * 13);
	p.fd = tbs_session_fd(b);
	p.events = POLLIN;
	pthread_create(&t, NULL, start_one, a);
	rb = tbs_session_start(b);
	pthread_join(t, &ra);
	is_int(rb | (int)(intptr_t)ra, 0, "messages: sessions start");
	is_int(tbs_session_recv_msg(b, NULL, in, sizeof(in), 0), -EAGAIN,
	       "messages: nothing there, a time-out of 0: -EAGAIN");
	pthread_create(&t, NULL, send_mixed, a);
	for (i = 0; i < 50 && poll(&p, 1, 5000) == 1; i++)
		if (tbs_session_ready(b) & TBS_SESSION_RECV)
			break;
	ok(i < 50 && p.revents, "messages: the readiness descriptor wakes "
	   "until tbs_session_ready() says RECV");
	n = tbs_session_recv_msg(b, &type, in, sizeof(in), 5000);
	ok(n == 100 && type == 7 && !memcmp(in, buf, 100),
	   "messages: the first arrives whole with its type");
	n = tbs_session_recv_msg(b, &type, in, 4, 5000);
	is_int(n, -EMSGSIZE, "messages: bytes then a 2 MiB message do not "
	       "fit 4 bytes: -EMSGSIZE");
	n = tbs_session_recv_msg(b, &type, in, sizeof(in), 5000);
	ok(n == 5000 && type == 10 && !memcmp(in, buf, 5000),
	   "messages: the stream goes on with the next message");
	pthread_join(t, NULL);
	/* fill the window, then a time-out of 0 queues nothing */
	for (i = 0; i < 100 && tbs_session_send_msg(a, 1, buf, 400000, 0) > 0;
	     i++)
		;
	n = tbs_session_send_msg(a, 1, buf, 400000, 0);
	eagain = n == -EAGAIN;
	ok(eagain, "messages: a full window with a time-out of 0: -EAGAIN");
	rb = 0;
	while ((n = tbs_session_recv_msg(b, NULL, in, sizeof(in), 500)) > 0)
		rb += n == 400000 ? 1 : 1000;
	ok(rb == i, "messages: the %d queued messages arrive whole", i);
	tbs_session_free(a);
	tbs_session_free(b);
	close(sv[0]);
	close(sv[1]);
}


/* ---- several receivers, and receivers that give up waiting ---- */

#define TURN_MSGS 600

/* Message @i: its number, then bytes that depend on it; sizes vary. */
static size_t turn_len(int i)
{
	static const size_t sizes[] = { 8, 64, 4096, 70000, 300000, 9, 600 };

	return sizes[i % 7];
}

static uint8_t turn_byte(int i, size_t k)
{
	return (uint8_t)(i * 31 + k * 7 + (k >> 9));
}

struct turns {
	struct tbs_session *a, *b;
	int gap_us; /* the sender's pause between messages */
	int timeout_ms; /* the receivers' time-out (-1: none) */
	_Atomic int seen[TURN_MSGS]; /* times each message arrived whole */
	_Atomic int bad, timeouts;
	_Atomic bool ordered;
};

static void *turn_send(void *arg)
{
	struct turns *t = arg;
	uint8_t *buf = malloc(300000);
	size_t k, n;
	int i;

	for (i = 0; i < TURN_MSGS; i++) {
		n = turn_len(i);
		memcpy(buf, &i, sizeof(i));
		for (k = sizeof(i); k < n; k++)
			buf[k] = turn_byte(i, k);
		if (tbs_session_send_msg(t->a, (uint16_t)i, buf, n, 20000) < 0)
			break;
		if (t->gap_us)
			usleep((useconds_t)(t->gap_us * (i % 3)));
	}
	free(buf);
	tbs_session_finish(t->a);
	return NULL;
}

/* A receiver: takes messages until the end, checks each one whole. */
static void *turn_recv(void *arg)
{
	struct turns *t = arg;
	uint8_t *buf = malloc(300000);
	int i, last = -1;
	uint16_t type;
	ssize_t n;
	size_t k;

	for (;;) {
		n = tbs_session_recv_msg(t->b, &type, buf, 300000,
					 t->timeout_ms);
		if (n == -EAGAIN) {
			t->timeouts++;
			continue;
		}
		if (n <= 0)
			break;
		memcpy(&i, buf, sizeof(i));
		if (i < 0 || i >= TURN_MSGS || (size_t)n != turn_len(i) ||
		    type != (uint16_t)i) {
			t->bad++;
			continue;
		}
		for (k = sizeof(i); k < (size_t)n; k++)
			if (buf[k] != turn_byte(i, k))
				break;
		if (k < (size_t)n)
			t->bad++;
		t->seen[i]++;
		if (i <= last)
			t->ordered = false; /* one receiver sees them in order */
		last = i;
	}
	free(buf);
	return (void *)(intptr_t)n;
}

/* @nrecv receivers on b take what a sends; each message exactly once. */
static void run_turns(const char *what, int nrecv, int gap_us, int timeout_ms)
{
	struct turns *t = calloc(1, sizeof(*t));
	pthread_t tx, rx[4];
	int sv[2], i, once = 0, ends = 0;
	void *r;

	t->gap_us = gap_us;
	t->timeout_ms = timeout_ms;
	t->ordered = true;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    tbs_session_new(&t->a, sv[0], sv[0], NULL) ||
	    tbs_session_new(&t->b, sv[1], sv[1], NULL))
		abort();
	pthread_create(&tx, NULL, start_one, t->a);
	if (tbs_session_start(t->b))
		abort();
	pthread_join(tx, &r);
	pthread_create(&tx, NULL, turn_send, t);
	for (i = 0; i < nrecv; i++)
		pthread_create(&rx[i], NULL, turn_recv, t);
	for (i = 0; i < nrecv; i++) {
		pthread_join(rx[i], &r);
		ends += r == NULL; /* 0: the end of the peer's stream */
	}
	if (ends)
		tbs_session_confirm(t->b);
	pthread_join(tx, NULL);
	for (i = 0; i < TURN_MSGS; i++)
		once += t->seen[i] == 1;
	ok(once == TURN_MSGS && !t->bad && t->ordered && ends == nrecv,
	   "%s: %d of %d messages arrived exactly once, whole, in order per receiver; %d damaged; all %d receivers saw the end",
	   what, once, TURN_MSGS, (int)t->bad, nrecv);
	if (timeout_ms >= 0)
		printf("# %s: receivers gave up waiting %d times\n", what,
		     (int)t->timeouts);
	tbs_session_free(t->a);
	tbs_session_free(t->b);
	close(sv[0]);
	close(sv[1]);
	free(t);
}

static void test_turns(void)
{
	run_turns("two receivers", 2, 0, -1);
	run_turns("three receivers, a paced sender", 3, 300, -1);
	run_turns("one receiver with a time-out of 1 ms", 1, 2000, 1);
	run_turns("two receivers with a time-out of 1 ms", 2, 1500, 1);
}

int main(int argc, char **argv)
{
	pair_watchdog(100);
	if (argc > 1 && !strcmp(argv[1], "eof")) {
		test_eof();
		return tap_done();
	}
	test_messages();
	test_turns();
	test_one_way();
	test_duplex();
	test_pipes();
	test_slow_reader();
	test_empty();
	test_late_peer();
	test_faults("flipped bits", set_flip);
	test_faults("dropped frames", set_drop);
	test_faults("short writes", set_short);
	test_eof();
	test_unrepairable();
	test_never_confirmed();
	test_long_sync();
	test_handshake_damage();
	test_small_records_slow();
	test_peer_aborts();
	test_vanished();
	return tap_done();
}
