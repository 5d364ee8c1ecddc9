/* SPDX-License-Identifier: MIT */
/*
 * Test helper: runs two session ends over a relay (session-relay.h), each
 * sending a generated stream and receiving the other's at the same time,
 * and records what each end saw.
 */
#ifndef TBS_SESSION_PAIR_H
#define TBS_SESSION_PAIR_H

#include <signal.h>
#include <stdio.h>

#include "tbstream.h"
#include "session-relay.h"

struct end {
	struct tbs_session *s;
	int fd;
	struct tbs_session_opts o;
	uint64_t send_len; /* bytes to send; 0: none */
	uint32_t seed;
	bool no_close; /* stop after the transfer, do not close */
	bool slow; /* pause after each record received */
	bool no_confirm; /* never confirm the peer's stream */
	uint64_t stop_after; /* stop reading after this many bytes (0: no) */
	int confirm_delay_ms; /* "make the data durable" takes this long */
	int start_pause_ms; /* the application reads nothing for so long */
	size_t msg_size; /* send messages of this size (0: bytes) */

	int new_r, start_r, send_r, finish_r, recv_r, confirm_r, close_r;
	uint64_t received;
	bool rx_ok; /* every received byte and type was as generated */
	bool finish_before_peer_confirm;
	_Atomic bool confirmed;
	char err[256];
	struct tbs_session_stats st;
	struct end *peer;
	pthread_t thread;
};

static inline uint8_t gen_byte(uint32_t seed, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull + seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (i & 7)));
}

static inline size_t rec_size(uint32_t seed, uint64_t off)
{
	static const size_t sizes[] = { 1, 100, 4095, 4096, 70000,
					TBS_SESSION_MAX_RECORD, 65536, 200000 };

	return sizes[(off / 7 + seed) % 8];
}

static inline void *end_send(void *arg)
{
	struct end *e = arg;
	uint8_t *buf = malloc(TBS_SESSION_MAX_RECORD);
	uint64_t off = 0;
	size_t n, i;
	ssize_t r = 0;

	while (off < e->send_len) {
		n = rec_size(e->seed, off);
		if (n > e->send_len - off)
			n = (size_t)(e->send_len - off);
		if (e->msg_size)
			n = e->msg_size < e->send_len - off ?
				    e->msg_size : (size_t)(e->send_len - off);
		for (i = 0; i < n; i++)
			buf[i] = gen_byte(e->seed, off + i);
		if (e->msg_size)
			r = tbs_session_send_msg(e->s, (uint16_t)(buf[0] ^ 0x5a),
						 buf, n, 20000);
		else
			r = tbs_session_send(e->s, (uint16_t)(buf[0] ^ 0x5a),
					     buf, n, 20000);
		if (r < 0)
			break;
		off += n;
	}
	free(buf);
	e->send_r = r < 0 ? (int)r : 0;
	if (r < 0)
		return NULL;
	e->finish_r = tbs_session_finish(e->s);
	if (!e->finish_r && e->send_len && !e->peer->confirmed)
		e->finish_before_peer_confirm = true;
	return NULL;
}

static inline void end_recv(struct end *e)
{
	uint8_t *buf = malloc(TBS_SESSION_MAX_RECORD);
	uint16_t type;
	ssize_t n, i;

	e->rx_ok = true;
	if (e->start_pause_ms)
		usleep((useconds_t)e->start_pause_ms * 1000);
	while ((n = tbs_session_recv(e->s, &type, buf, TBS_SESSION_MAX_RECORD,
				     20000)) > 0) {
		if (type != (uint16_t)(buf[0] ^ 0x5a))
			e->rx_ok = false;
		for (i = 0; i < n; i++)
			if (buf[i] != gen_byte(e->peer->seed, e->received + i))
				e->rx_ok = false;
		__atomic_add_fetch(&e->received, (uint64_t)n, __ATOMIC_RELAXED);
		if (e->slow)
			usleep(2000);
		if (e->stop_after && e->received >= e->stop_after)
			break;
	}
	free(buf);
	e->recv_r = (int)n;
	if (n == 0 && !e->no_confirm) {
		/* "make the data durable" */
		usleep(e->confirm_delay_ms ? e->confirm_delay_ms * 1000 : 50000);
		e->confirmed = true;
		e->confirm_r = tbs_session_confirm(e->s);
	}
}

static inline void *end_main(void *arg)
{
	struct end *e = arg;
	pthread_t tx;

	e->start_r = tbs_session_start(e->s);
	if (!e->start_r) {
		pthread_create(&tx, NULL, end_send, e);
		end_recv(e);
		pthread_join(tx, NULL);
		if (!e->no_close)
			e->close_r = tbs_session_close(e->s);
	}
	tbs_session_get_stats(e->s, &e->st);
	snprintf(e->err, sizeof(e->err), "%s", tbs_session_error(e->s));
	return NULL;
}

static inline void end_setup(struct end *e, int fd, int wfd,
			     struct end *peer)
{
	e->fd = fd;
	e->peer = peer;
	/* 1: the step was not reached */
	e->start_r = e->send_r = e->finish_r = 1;
	e->recv_r = e->confirm_r = e->close_r = 1;
	e->o.size = sizeof(e->o);
	if (!e->o.handshake_ms)
		e->o.handshake_ms = 5000;
	if (!e->o.idle_ms)
		e->o.idle_ms = 3000;
	if (!e->o.rto_ms)
		e->o.rto_ms = 200;
	if (!e->o.confirm_ms)
		e->o.confirm_ms = 10000;
	e->new_r = tbs_session_new(&e->s, fd, wfd, &e->o);
}

/* Everything an end reported success for must be exactly right. */
static inline bool end_honest(const struct end *e)
{
	if (e->recv_r == 0 && (!e->rx_ok || e->received != e->peer->send_len))
		return false;
	if (e->finish_r == 0 && e->send_r == 0 && e->start_r == 0 &&
	    e->send_len && !e->peer->confirmed)
		return false;
	return true;
}

/* Whether the end's receiving side reported a failure (at start or later). */
static inline bool end_rx_failed(const struct end *e)
{
	return e->start_r < 0 || e->recv_r < 0;
}

static inline bool end_clean(const struct end *e)
{
	return !e->new_r && !e->start_r && !e->send_r && !e->finish_r &&
	       !e->recv_r && !e->confirm_r && !e->close_r && e->rx_ok &&
	       e->received == e->peer->send_len &&
	       !e->finish_before_peer_confirm;
}

static inline void end_show(const char *name, const struct end *e)
{
	printf("#   %s: start %d send %d finish %d recv %d confirm %d close %d, %llu bytes in, %llu retransmits, %llu bad records, \"%s\"\n",
	       name, e->start_r, e->send_r, e->finish_r, e->recv_r,
	       e->confirm_r, e->close_r, (unsigned long long)e->received,
	       (unsigned long long)e->st.retransmits,
	       (unsigned long long)e->st.bad_records, e->err);
}

/* Starts a; once b_delay_bytes went a->b (dropped or not), starts b. */
static inline void pair_run(struct relay *r, struct end *a, struct end *b,
		     uint64_t b_after_bytes)
{
	int i;

	end_setup(a, r->a, r->aw, b);
	end_setup(b, r->b, r->bw, a);
	if (b_after_bytes)
		r->ab.peer_open = false;
	relay_start(r);
	pthread_create(&a->thread, NULL, end_main, a);
	for (i = 0; b_after_bytes && i < 1000 && r->ab.bytes < b_after_bytes;
	     i++)
		usleep(10000);
	r->ab.peer_open = true;
	pthread_create(&b->thread, NULL, end_main, b);
	pthread_join(a->thread, NULL);
	pthread_join(b->thread, NULL);
	tbs_session_free(a->s);
	tbs_session_free(b->s);
	relay_stop(r);
	end_show("a", a);
	end_show("b", b);
}

static inline void pair_watchdog(int seconds)
{
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned int)seconds);
}

#endif /* TBS_SESSION_PAIR_H */
