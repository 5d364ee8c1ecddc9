/* SPDX-License-Identifier: MIT */
/*
 * Test helper for sessions whose receiving threads read themselves
 * (TBS_SESSION_CALLER_READS): the options, an echo, round trips of
 * messages, a receiver left blocked, and a look inside the session
 * (session-int.h: the test links the internal library) to tell whether a
 * receiver is in read(2).
 */
#ifndef TBS_SESSION_CALLER_H
#define TBS_SESSION_CALLER_H

#include <signal.h>

#include "session-int.h"
#include "session-pair.h"

#define SIG_READ (SIGRTMIN + 1)

static inline void caller_opts(struct tbs_session_opts *o)
{
	o->flags = TBS_SESSION_CALLER_READS;
	o->read_signal = SIG_READ;
}

static inline uint64_t receiver_reads(struct tbs_session *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->rd_receiver_reads;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Until a receiving thread of @s is in read(2) (at most 10 s). */
static inline bool receiver_in_read(struct tbs_session *s)
{
	bool in = false;
	int i;

	for (i = 0; i < 1000 && !in; i++) {
		pthread_mutex_lock(&s->lock);
		in = s->rd_owner == RD_CALLER && s->rd_in_read;
		pthread_mutex_unlock(&s->lock);
		if (!in)
			usleep(10000);
	}
	return in;
}

/* The B end answers every message with the same bytes, until an error. */
struct echo {
	struct tbs_session *s;
	ssize_t r;
	int confirm_r; /* of the peer's end, once seen */
	pthread_t thread;
	bool running;
};


static inline void *echo_main(void *arg)
{
	struct echo *e = arg;
	static uint8_t buf[1 << 17];
	uint16_t t;

	while ((e->r = tbs_session_recv_msg(e->s, &t, buf, sizeof(buf), -1)) >
	       0)
		if (tbs_session_send_msg(e->s, t, buf, (size_t)e->r, -1) < 0)
			break;
	e->confirm_r = e->r ? 1 : tbs_session_confirm(e->s);
	return NULL;
}

/* @n round trips of messages of several sizes; true if all came back. */
static inline bool round_trips(struct tbs_session *s, int n)
{
	static uint8_t out[1 << 17], in[1 << 17];
	static const size_t sizes[] = { 1, 64, 4096, 4097, 70000, 131072 };
	size_t len, k;
	uint16_t t;
	ssize_t r;
	int i;

	for (i = 0; i < n; i++) {
		len = sizes[i % 6];
		for (k = 0; k < len; k++)
			out[k] = gen_byte((uint32_t)i, k);
		if (tbs_session_send_msg(s, (uint16_t)i, out, len, 10000) < 0)
			return false;
		r = tbs_session_recv_msg(s, &t, in, sizeof(in), 10000);
		if (r != (ssize_t)len || t != (uint16_t)i ||
		    memcmp(in, out, len))
			return false;
	}
	return true;
}

struct blocked {
	struct tbs_session *s;
	ssize_t r;
	pthread_t thread;
};

static inline void *recv_blocked(void *arg)
{
	struct blocked *b = arg;
	uint8_t buf[256];

	b->r = tbs_session_recv_msg(b->s, NULL, buf, sizeof(buf), -1);
	return NULL;
}

#endif /* TBS_SESSION_CALLER_H */
