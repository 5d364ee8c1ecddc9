// SPDX-License-Identifier: MIT
/*
 * The session's reader thread: it alone reads the descriptor.
 *
 * It waits in read(2) itself, not in poll(2): a read that is already
 * waiting when the peer's frame arrives returns it at once, where poll
 * and then read cost two more passes through the driver (on the
 * simulator, two more requests to the file system).  It decodes what it
 * read with the lock held, hands the records to the application (one
 * wake-up, only when a thread waits), answers what needs an answer by
 * writing it itself (session-write.c), and reads again.
 *
 * Reads ask for what is likely to come, from RD_MIN up to the room left
 * in the block: twice as much after a read that filled its request, half
 * after one that brought less than a quarter.  Small reads keep a small
 * message fast where a read costs by its size (the simulator's file
 * system pins the whole buffer), large ones keep bulk transfers cheap.
 *
 * Reads block only where that cannot block a write: when the read and
 * write descriptors are different open files, or one socket (written
 * with MSG_DONTWAIT).  Otherwise (one descriptor that is not a socket,
 * or two that share their file status flags) the descriptor stays
 * non-blocking and the thread polls before reading.  Either way the
 * thread is stopped by cancellation, which is enabled only while it
 * waits in read or poll, with no lock held and nothing half done.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session-int.h"

#define RD_MIN (8u * 1024)

/*
 * Makes room for a whole record after the undecoded bytes: in place when no
 * queued record points into the block, else in a new block.  Lock held.
 */
static void rx_next_block(struct tbs_session *s)
{
	size_t left = s->rxlen - s->rxstart;
	struct rxblk *b;

	if (s->blk->refs == 1) {
		memmove(s->blk->data, s->blk->data + s->rxstart, left);
	} else {
		b = tbs_session_blk_new(s);
		if (!b)
			return; /* reading waits until records are consumed */
		memcpy(b->data, s->blk->data + s->rxstart, left);
		tbs_session_blk_put(s, s->blk);
		s->blk = b;
	}
	s->rxstart = 0;
	s->rxlen = left;
}

/*
 * Whether there is room to read into.  Records are never the reason to
 * stop reading (acknowledgements and keep-alives must get through to a
 * slow application); on_data() bounds the memory.  Lock held.
 */
static bool rx_room(struct tbs_session *s)
{
	if (s->rxstart == s->rxlen && s->blk->refs == 1)
		s->rxstart = s->rxlen = 0;
	else if (RX_BLOCK - s->rxlen < TBS_WIRE_HDR_LEN + TBS_WIRE_MAX_PAYLOAD)
		rx_next_block(s);
	return s->rxlen < RX_BLOCK;
}

/* Waits until there is something to read into; false: stop.  Lock held. */
static bool reader_wait(struct tbs_session *s)
{
	struct timespec ts;

	for (;;) {
		if (s->stop)
			return false;
		if (!s->rx_stopped && rx_room(s))
			return true;
		if (s->rx_stopped) {
			pthread_cond_wait(&s->cv, &s->lock);
			continue;
		}
		/* out of memory for a block: try again shortly */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cv, &s->lock, &ts);
	}
}

/* How much to ask for: the adaptive size, within the room; lock held. */
static size_t read_size(struct tbs_session *s)
{
	size_t room = RX_BLOCK - s->rxlen;

	if (s->rd_size < RD_MIN)
		s->rd_size = RD_MIN;
	return s->rd_size < room ? s->rd_size : room;
}

static void adapt_size(struct tbs_session *s, ssize_t n, size_t asked)
{
	if (n > 0 && (size_t)n == asked && s->rd_size < RX_BLOCK)
		s->rd_size *= 2;
	else if (n >= 0 && (size_t)n < s->rd_size / 4 && s->rd_size > RD_MIN)
		s->rd_size /= 2;
}

/* One read, the only place where the thread may be cancelled. */
static ssize_t read_once(struct tbs_session *s, uint8_t *buf, size_t len)
{
	struct pollfd p = { .fd = s->rfd, .events = POLLIN };
	ssize_t n;
	int old, err;

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	if (!s->rd_block && poll(&p, 1, -1) < 0)
		n = -1;
	else
		n = read(s->rfd, buf, len);
	err = errno;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	errno = err;
	return n;
}

/* What the peer sent, decoded and answered; lock held. */
static void got_bytes(struct tbs_session *s, size_t n, bool drop, int64_t now)
{
	s->last_rx = now;
	s->eio_run = 0;
	if (drop)
		return; /* after a failure: read and dropped */
	s->rxlen += n;
	s->rx_activity = true;
	tbs_session_rx_process(s, now);
	tbs_session_ack_check(s, now);
	tbs_session_kick(s, false);
}

/* The result of one read; lock held. */
static void got(struct tbs_session *s, ssize_t n, int err, bool drop)
{
	if (n > 0) {
		got_bytes(s, (size_t)n, drop, tbs_session_now_ms());
		return;
	}
	if (n < 0 && (err == EAGAIN || err == EINTR))
		return;
	if (n < 0 && err == EIO && ++s->eio_run < EIO_MAX_RUN) {
		s->st.bad_records++; /* a frame with a CRC error was dropped */
		s->rx_activity = true;
		return;
	}
	/* end of file sticks, and so does a broken stream */
	s->rx_stopped = true;
	tbs_session_on_eof(s, n == 0 || err == ECONNRESET ? 0 : -err);
	tbs_session_wake(s);
}

void *tbs_session_read_main(void *arg)
{
	struct tbs_session *s = arg;
	bool drop, wake;
	sigset_t all;
	size_t len;
	ssize_t n;
	int old, err;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&s->lock);
	while (reader_wait(s)) {
		/*
		 * After a failure, what the peer still sends is read into
		 * the free end of the block and dropped.
		 */
		drop = s->state == ST_FAILED;
		wake = s->rx_wake;
		s->rx_wake = false;
		len = read_size(s);
		pthread_mutex_unlock(&s->lock);
		if (wake)
			pthread_cond_broadcast(&s->rx_cv);
		n = read_once(s, s->blk->data + s->rxlen, len);
		err = errno;
		pthread_mutex_lock(&s->lock);
		adapt_size(s, n, len);
		got(s, n, err, drop);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
