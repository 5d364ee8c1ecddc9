// SPDX-License-Identifier: MIT
/*
 * The session's reader thread: it alone reads the descriptor, unless
 * receivers read themselves (TBS_SESSION_CALLER_READS, at the end).
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

/*
 * Whether the reader thread may read: always, unless receivers read
 * themselves (TBS_SESSION_CALLER_READS) and one holds the reads, or the
 * thread handed them over while the session is open.  Lock held.
 */
static bool thread_may_read(struct tbs_session *s)
{
	if (!s->caller_reads)
		return true;
	if (s->rd_owner != RD_NONE)
		return false;
	return !s->rd_yielded || s->state != ST_OPEN;
}

/*
 * Waits while a receiver holds the reads, waking the receivers first if
 * records arrived (the reader thread handed the reads over).  Lock held.
 */
static void reader_park(struct tbs_session *s)
{
	if (s->rx_wake) {
		s->rx_wake = false;
		pthread_mutex_unlock(&s->lock);
		tbs_session_rx_changed(s);
		pthread_mutex_lock(&s->lock);
		return;
	}
	pthread_cond_wait(&s->rd_cv, &s->lock);
}

/* Waits until there is something to read into; false: stop.  Lock held. */
static bool reader_wait(struct tbs_session *s)
{
	struct timespec ts;

	for (;;) {
		if (s->stop)
			return false;
		if (!thread_may_read(s)) {
			reader_park(s);
			continue;
		}
		if (!s->rx_stopped && rx_room(s))
			return true;
		if (s->rx_stopped) {
			pthread_cond_wait(&s->rd_cv, &s->lock);
			continue;
		}
		/* out of memory for a block: try again shortly */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->rd_cv, &s->lock, &ts);
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
		s->rd_owner = RD_THREAD;
		pthread_mutex_unlock(&s->lock);
		if (wake)
			tbs_session_rx_changed(s);
		n = read_once(s, s->blk->data + s->rxlen, len);
		err = errno;
		pthread_mutex_lock(&s->lock);
		adapt_size(s, n, len);
		got(s, n, err, drop);
		s->rd_owner = RD_NONE;
		if (s->caller_reads && s->rd_want && s->state == ST_OPEN) {
			/* a receiver reads from now on (session-int.h) */
			s->rd_yielded = true;
			s->rd_free_ms = tbs_session_now_ms();
			s->rx_wake = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- receivers that read themselves (TBS_SESSION_CALLER_READS) ---- */

static void rd_signal_handler(int sig)
{
	(void)sig; /* only there to make read(2) fail with EINTR */
}

/*
 * Makes @sig interrupt a blocked read: an empty handler without
 * SA_RESTART, unless the application has a handler of its own that does
 * not restart system calls.
 */
int tbs_session_rd_signal_init(int sig)
{
	struct sigaction old, sa;

	if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
		return -EINVAL;
	if (sigaction(sig, NULL, &old))
		return -EINVAL;
	if (old.sa_handler == rd_signal_handler)
		return 0;
	if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
		return old.sa_flags & SA_RESTART ? -EINVAL : 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = rd_signal_handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) ? -EINVAL : 0;
}

/*
 * Interrupts a receiver blocked in read(2), unless it is the calling
 * thread; lock held.  A signal sent just before the receiver entered
 * read(2) is lost: the timer thread sends it again at every tick while
 * the receiver must leave (tbs_session_rd_timers()).
 */
void tbs_session_rd_kick(struct tbs_session *s)
{
	if (s->rd_owner == RD_CALLER && s->rd_in_read &&
	    !pthread_equal(s->rd_caller, pthread_self()))
		pthread_kill(s->rd_caller, s->o.read_signal);
}

/*
 * A thread is about to wait for the peer's records outside a receive
 * call: the reader thread reads again if it had handed the reads over.
 * Lock held.
 */
void tbs_session_need_reader(struct tbs_session *s)
{
	if (!s->rd_yielded)
		return;
	s->rd_yielded = false;
	pthread_cond_broadcast(&s->rd_cv);
}

/*
 * The timer thread's part, at every turn; lock held: a receiver in read(2)
 * past its time-out, or in a session that is over, is interrupted; reads
 * nobody took for RD_GRACE_MS, or while DATA waits to be sent (perhaps for
 * the peer's credit), go back to the reader thread.
 */
void tbs_session_rd_timers(struct tbs_session *s, int64_t now)
{
	if (!s->caller_reads)
		return;
	if (s->rd_owner == RD_CALLER && s->rd_in_read &&
	    (s->state != ST_OPEN || s->stop ||
	     (s->rd_deadline >= 0 && now >= s->rd_deadline)))
		pthread_kill(s->rd_caller, s->o.read_signal);
	if (s->rd_yielded && s->rd_owner == RD_NONE &&
	    (now - s->rd_free_ms >= RD_GRACE_MS || s->tx_cur))
		tbs_session_need_reader(s); /* DATA may wait for credit */
}

/* Whether the calling thread has the signal blocked. */
static bool signal_blocked(int sig)
{
	sigset_t cur;

	return pthread_sigmask(SIG_BLOCK, NULL, &cur) ||
	       sigismember(&cur, sig) == 1;
}

/* One read by the receiver, handled as the reader thread would; lock held. */
static void caller_read_once(struct tbs_session *s, int64_t deadline)
{
	size_t len = read_size(s);
	ssize_t n;
	int err;

	s->rd_owner = RD_CALLER;
	s->rd_caller = pthread_self();
	s->rd_deadline = deadline;
	s->rd_in_read = true;
	pthread_mutex_unlock(&s->lock);
	n = read(s->rfd, s->blk->data + s->rxlen, len);
	err = errno;
	pthread_mutex_lock(&s->lock);
	s->rd_in_read = false;
	s->rd_receiver_reads++;
	adapt_size(s, n, len);
	got(s, n, err, false);
	s->rd_owner = RD_NONE;
	s->rd_free_ms = tbs_session_now_ms();
	if (s->rx_wake) { /* other receivers may take part of it */
		s->rx_wake = false;
		tbs_session_rx_changed(s);
	}
	if (!s->rd_yielded || s->state != ST_OPEN) /* the reader's turn */
		pthread_cond_broadcast(&s->rd_cv);
}

/*
 * A receiver with nothing to take, before it sleeps; lock held.  With
 * TBS_SESSION_CALLER_READS it reads itself if the reads are free (and
 * returns 1: look again), or counts itself in rd_want while the reader
 * thread reads (*@want: the caller undoes it after its sleep).  Returns
 * 0 to sleep, -EAGAIN when the time-out passed.
 */
int tbs_session_caller_read(struct tbs_session *s, int64_t deadline,
			    bool *want)
{
	bool ok;

	*want = false;
	if (deadline >= 0 && tbs_session_now_ms() >= deadline) {
		tbs_session_need_reader(s); /* the caller may poll next */
		return -EAGAIN;
	}
	if (!s->caller_reads)
		return 0;
	ok = s->state == ST_OPEN && !s->stop && !s->rx_stopped &&
	     !signal_blocked(s->o.read_signal);
	if (ok && s->rd_owner == RD_THREAD) {
		s->rd_want++;
		*want = true;
		return 0;
	}
	if (ok && s->rd_owner == RD_NONE && rx_room(s)) {
		caller_read_once(s, deadline);
		return 1;
	}
	if (s->rd_owner == RD_NONE)
		tbs_session_need_reader(s);
	return 0;
}
