/* SPDX-License-Identifier: MIT */
/*
 * Test helper: two session ends joined by a relay that behaves like the
 * USB4STREAM device.  Each end gets one socket; one relay thread per
 * direction copies bytes in frames of at most 4096 bytes and injects the
 * faults of the device contract: frames lost before the peer opened, a lost
 * frame, flipped bits, short writes, an early end of file.
 */
#ifndef TBS_SESSION_RELAY_H
#define TBS_SESSION_RELAY_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RELAY_FRAME 4096
#define RELAY_MAX_FAULTS 8

struct relay_dir {
	/* faults, set before relay_start() */
	bool closed_until_open; /* drop frames while !peer_open */
	uint64_t drop_frame_at[RELAY_MAX_FAULTS]; /* lose the frame with it */
	uint64_t flip_at[RELAY_MAX_FAULTS]; /* flip one bit of that byte */
	uint64_t corrupt_from; /* flip a bit in every frame after this */
	int corrupt_frames; /* damage the first N frames, header or payload */
	uint64_t eof_at; /* cut the direction after this many bytes */
	bool short_writes; /* write in pieces of 1..997 bytes */
	_Atomic uint64_t freeze_at; /* stop forwarding after it: peer gone */
	_Atomic bool freeze;

	/* state */
	int in, out;
	bool pipe; /* out is a pipe: close it to signal the end */
	_Atomic bool peer_open;
	_Atomic uint64_t bytes, dropped;
	pthread_t thread;
	unsigned int seed;
};

struct relay {
	int a, b; /* the two session ends (read side) */
	int aw, bw; /* their write sides: the same sockets, or pipes */
	int ra, rb; /* the relay's sockets */
	bool pipes;
	struct relay_dir ab, ba;
};

static inline bool relay_hit(const uint64_t *at, uint64_t from, size_t n)
{
	int i;

	for (i = 0; i < RELAY_MAX_FAULTS; i++)
		if (at[i] && at[i] >= from && at[i] < from + n)
			return true;
	return false;
}

static inline void relay_flip(struct relay_dir *d, uint8_t *buf, size_t n)
{
	int i;

	for (i = 0; i < RELAY_MAX_FAULTS; i++)
		if (d->flip_at[i] && d->flip_at[i] >= d->bytes &&
		    d->flip_at[i] < d->bytes + n)
			buf[d->flip_at[i] - d->bytes] ^= 0x10;
	if (d->corrupt_from && d->bytes + n > d->corrupt_from)
		buf[rand_r(&d->seed) % n] ^= 0x01;
	if (d->corrupt_frames > 0) {
		/* alternately in the header and past it */
		buf[(d->corrupt_frames % 2 ? 20 : 60) % n] ^= 0x04;
		d->corrupt_frames--;
	}
}

static inline int relay_write(struct relay_dir *d, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n;
		ssize_t w;

		if (d->short_writes)
			k = 1 + rand_r(&d->seed) % 997;
		if (k > n)
			k = n;
		w = write(d->out, p, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static inline void *relay_main(void *arg)
{
	struct relay_dir *d = arg;
	uint8_t buf[RELAY_FRAME];
	ssize_t n;

	while ((n = read(d->in, buf, sizeof(buf))) > 0) {
		if (d->freeze_at && d->bytes >= d->freeze_at)
			d->freeze = true;
		while (d->freeze)
			usleep(10000);
		if (d->eof_at && d->bytes + (uint64_t)n > d->eof_at)
			break;
		if ((d->closed_until_open && !d->peer_open) ||
		    relay_hit(d->drop_frame_at, d->bytes, (size_t)n)) {
			d->dropped += (uint64_t)n;
		} else {
			relay_flip(d, buf, (size_t)n);
			if (relay_write(d, buf, (size_t)n))
				break;
		}
		d->bytes += (uint64_t)n;
	}
	if (d->pipe)
		close(d->out);
	else
		shutdown(d->out, SHUT_WR);
	return NULL;
}

static inline void relay_init(struct relay *r)
{
	int sa[2], sb[2];

	memset(r, 0, sizeof(*r));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sa) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sb))
		abort();
	r->a = r->aw = sa[0];
	r->ra = sa[1];
	r->b = r->bw = sb[0];
	r->rb = sb[1];
	r->ab.in = r->ra;
	r->ab.out = r->rb;
	r->ba.in = r->rb;
	r->ba.out = r->ra;
	r->ab.peer_open = r->ba.peer_open = true;
	r->ab.seed = 1;
	r->ba.seed = 2;
}

/* The same with four pipes: each end reads and writes different fds. */
static inline void relay_init_pipes(struct relay *r)
{
	int p[4][2], i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 4; i++)
		if (pipe(p[i]))
			abort();
	r->pipes = true;
	r->aw = p[0][1];
	r->ab.in = p[0][0];
	r->ab.out = p[1][1];
	r->b = p[1][0];
	r->bw = p[2][1];
	r->ba.in = p[2][0];
	r->ba.out = p[3][1];
	r->a = p[3][0];
	r->ab.pipe = r->ba.pipe = true;
	r->ab.peer_open = r->ba.peer_open = true;
	r->ab.seed = 1;
	r->ba.seed = 2;
}

static inline void relay_start(struct relay *r)
{
	pthread_create(&r->ab.thread, NULL, relay_main, &r->ab);
	pthread_create(&r->ba.thread, NULL, relay_main, &r->ba);
}

/* Closes the session ends first so that the relay threads see the end. */
static inline void relay_stop(struct relay *r)
{
	r->ab.freeze_at = r->ba.freeze_at = 0;
	r->ab.freeze = r->ba.freeze = false;
	if (r->pipes) {
		close(r->aw);
		close(r->bw);
		close(r->a);
		close(r->b);
		pthread_join(r->ab.thread, NULL);
		pthread_join(r->ba.thread, NULL);
		close(r->ab.in);
		close(r->ba.in);
		return;
	}
	shutdown(r->a, SHUT_RDWR);
	shutdown(r->b, SHUT_RDWR);
	pthread_join(r->ab.thread, NULL);
	pthread_join(r->ba.thread, NULL);
	close(r->a);
	close(r->b);
	close(r->ra);
	close(r->rb);
}

#endif /* TBS_SESSION_RELAY_H */
