// SPDX-License-Identifier: MIT
/*
 * The session's write side: what goes out next, and the one thread at a
 * time that writes it.
 *
 * Small things are written at once by the thread that made them, with no
 * hand-off to another thread: the application's small records (up to
 * DIRECT_MAX bytes per send call) by the application in its send call,
 * control records by the reader thread (answers) or the receiving
 * application (credit).  Large records go to the timer thread, so that
 * the application prepares the next one (copy, checksum) while the last
 * one is written.  The thread that finds the writer free takes it
 * (s->writing), builds the write under the lock, writes without the lock,
 * and goes on while there is more; a thread that finds it taken leaves
 * its records queued for the writer, which picks them up before it lets
 * go.  Control records go first, then DATA batches of up to WR_BATCH
 * records (WR_BATCH_BYTES) per writev.  When the descriptor takes less
 * than offered, the rest stays planned and the timer thread waits for
 * POLLOUT; nobody writes meanwhile.
 */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "session-int.h"

_Static_assert(offsetof(struct txrec, data) ==
		       offsetof(struct txrec, hdr) + TBS_WIRE_HDR_LEN,
	       "a record's header and payload are one piece of memory");

/* Next record that may be sent, or NULL; lock held. */
static struct txrec *next_data(struct tbs_session *s)
{
	struct txrec *r = s->tx_cur;

	while (r && r->off + r->len <= s->tx_acked)
		r = r->next;
	s->tx_cur = r;
	if (!r || !s->established || r->off + r->len > s->tx_limit ||
	    r->seq >= s->tx_rec_limit)
		return NULL;
	return r;
}

/* The first write of a record puts it in the stream hash, in order. */
static void seal(struct tbs_session *s, struct txrec *r)
{
	if (r->sealed)
		return;
	r->sealed = true;
	tbs_session_chain(s->tx_hash, r->pcsum, r->len, r->app, r->flags);
}

static void add_to_batch(struct tbs_session *s, struct txrec *r)
{
	struct tbs_wire_hdr h = {
		.type = TBS_REC_DATA, .app = r->app, .len = r->len,
		.aux = s->epoch, .off = r->off,
	};

	seal(s, r);
	h.pcsum = r->pcsum;
	h.flags = r->flags;
	tbs_wire_hdr_encode(r->hdr, &h, s->key);
	s->wr_rec[s->wr_n++] = r;
	s->wr_total += TBS_WIRE_HDR_LEN + r->len;
	s->tx_cur = r->next;
	if (s->tx_flight <= s->tx_acked)
		s->progress_ms = tbs_session_now_ms();
	s->tx_flight = r->off + r->len;
	if (s->tx_flight > s->tx_sent)
		s->tx_sent = s->tx_flight;
	s->st.records_sent++;
}

/* Gathers up to WR_BATCH records (WR_BATCH_BYTES) for one writev. */
static bool pick_data(struct tbs_session *s)
{
	struct txrec *r;

	s->wr_n = 0;
	s->wr_pos = s->wr_total = 0;
	if (!s->tx_cur && s->stage_len)
		tbs_session_stage_flush(s);
	while (s->wr_n < WR_BATCH && (r = next_data(s))) {
		if (s->wr_n && s->wr_total + r->len > WR_BATCH_BYTES)
			break;
		add_to_batch(s, r);
	}
	if (!s->wr_n)
		return false;
	s->wr = WR_DATA;
	return true;
}

/*
 * Chooses what to write next, DATA only if @data; lock held.  Returns
 * false if nothing.
 */
static bool pick_write(struct tbs_session *s, bool data)
{
	if (s->wr == WR_CTL || (s->wr == WR_DATA && data))
		return true;
	if (s->wr != WR_NONE)
		return false; /* a DATA batch is left to the DATA writers */
	if (s->ctl_pos < s->ctl_len) {
		s->wr = WR_CTL;
		return true;
	}
	if (s->state == ST_FAILED || !data)
		return false;
	return pick_data(s);
}

/* Whether DATA could be written now; lock held. */
static bool data_ready(struct tbs_session *s)
{
	return s->wr == WR_DATA || s->stage_len || next_data(s);
}

static int iov_add(struct iovec *iov, int n, const uint8_t *p, size_t len,
		   size_t *skip)
{
	if (*skip >= len) {
		*skip -= len;
		return n;
	}
	iov[n].iov_base = (void *)(p + *skip);
	iov[n].iov_len = len - *skip;
	*skip = 0;
	return n + 1;
}

/*
 * What is left of the write in progress, from its current position, as
 * an iovec; lock held.  Returns the number of entries.
 */
static int plan(struct tbs_session *s, struct iovec *iov, size_t *total)
{
	size_t skip = s->wr_pos;
	int i, n = 0;

	if (s->wr == WR_CTL) {
		iov[0].iov_base = s->ctl + s->ctl_pos;
		iov[0].iov_len = s->ctl_len - s->ctl_pos;
		*total = iov[0].iov_len;
		return 1;
	}
	for (i = 0; i < s->wr_n; i++)
		n = iov_add(iov, n, s->wr_rec[i]->hdr,
			    TBS_WIRE_HDR_LEN + s->wr_rec[i]->len, &skip);
	*total = s->wr_total - s->wr_pos;
	return n;
}

/*
 * A write into a pipe whose reader is gone raises SIGPIPE in the writing
 * thread, which may be the application's: it is kept from it (blocked,
 * and taken if this write raised it), so that the write fails with EPIPE
 * as in the library's own threads.
 */
static ssize_t write_fifo(struct tbs_session *s, struct iovec *iov, int n)
{
	struct timespec zero = { 0 };
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t r;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	was_pending = !sigpending(&pending) && sigismember(&pending, SIGPIPE);
	r = writev(s->wfd, iov, n);
	err = errno;
	if (r < 0 && err == EPIPE && !was_pending)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return r;
}

/*
 * One write, without the lock.  A socket may be both descriptors and then
 * blocks (for the reader thread): the write asks not to.
 */
static ssize_t write_iov(struct tbs_session *s, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	if (s->wr_sock)
		return sendmsg(s->wfd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (s->wr_fifo)
		return write_fifo(s, iov, n);
	return writev(s->wfd, iov, n);
}

static void batch_done(struct tbs_session *s)
{
	s->wr = WR_NONE;
	s->wr_n = 0;
	s->wr_rec[0] = NULL;
}

static void wrote(struct tbs_session *s, size_t n)
{
	if (s->wr == WR_CTL) {
		s->ctl_pos += n;
		if (s->ctl_pos == s->ctl_len)
			s->wr = WR_NONE;
		return;
	}
	s->wr_pos += n;
	if (s->wr_pos == s->wr_total) {
		batch_done(s);
		tbs_session_free_acked(s);
	}
}

/* The result of one write; lock held.  Returns false to stop writing. */
static bool write_result(struct tbs_session *s, ssize_t n, int err,
			 size_t offered)
{
	if (n > 0) {
		s->last_tx = tbs_session_now_ms();
		wrote(s, (size_t)n);
		if ((size_t)n < offered)
			s->wr_full = true; /* the ring (or buffer) is full */
		return !s->wr_full;
	}
	if (n < 0 && err == EINTR)
		return true;
	if (n == 0 || err == EAGAIN) {
		s->wr_full = true;
		return false;
	}
	batch_done(s);
	s->ctl_pos = s->ctl_len = 0;
	tbs_session_on_eof(s, err == EPIPE || err == ECONNRESET ? 0 : -err);
	return false;
}

/*
 * Writes what there is to write (DATA only if @data), if no other thread
 * is writing and the descriptor is not full; lock held on entry and exit,
 * dropped while writing.  Returns true when this call found the
 * descriptor full: the timer thread must then wait until it takes more.
 */
bool tbs_session_write(struct tbs_session *s, bool data)
{
	struct iovec iov[WR_BATCH];
	bool was_full = s->wr_full;
	size_t offered;
	ssize_t n;
	int cnt, err;

	while (!s->writing && !s->wr_full && pick_write(s, data)) {
		cnt = plan(s, iov, &offered);
		s->writing = true;
		pthread_mutex_unlock(&s->lock);
		n = write_iov(s, iov, cnt);
		err = errno;
		pthread_mutex_lock(&s->lock);
		s->writing = false;
		if (!write_result(s, n, err, offered))
			break;
	}
	return s->wr_full && !was_full;
}

/*
 * The same, from a thread other than the timer thread; lock held.  The
 * timer thread is woken for a full descriptor, and for DATA that waits
 * when this thread does not write DATA.
 */
void tbs_session_kick(struct tbs_session *s, bool data)
{
	if (tbs_session_write(s, data) ||
	    (!data && !s->writing && !s->wr_full && data_ready(s)))
		tbs_session_wake(s);
}
