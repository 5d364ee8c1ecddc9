// SPDX-License-Identifier: MIT
/*
 * The session protocol, application side: creating a session, the calls
 * that send and receive records, ending each direction and closing.
 * The protocol itself runs in the reader and timer threads (session-read.c,
 * session-io.c) and whichever thread writes (session-write.c); the wire
 * format is in wire.c; docs/PROTOCOL.md is the specification.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "session-int.h"

int64_t tbs_session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records the first failure; lock held. */
void tbs_session_fail(struct tbs_session *s, int err, const char *fmt, ...)
{
	va_list ap;

	if (s->state == ST_FAILED)
		return;
	s->state = ST_FAILED;
	s->err = err;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	s->error = s->msg;
	tbs_session_notify(s);
	pthread_cond_broadcast(&s->cv);
	pthread_cond_broadcast(&s->rd_cv); /* the reader thread drains */
	tbs_session_rd_kick(s);
	tbs_session_rx_changed(s);
}

/*
 * Tells receivers that what they wait for may have changed: wakes those
 * asleep (see rx_sleep()).  With or without the lock.
 */
void tbs_session_rx_changed(struct tbs_session *s)
{
	__atomic_add_fetch(&s->rx_gen, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->rx_sleepers, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &s->rx_gen, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
}

/* Makes the readiness descriptor readable, once until it is read; lock held. */
void tbs_session_notify(struct tbs_session *s)
{
	uint64_t one = 1;

	if (s->nfd < 0 || s->nfd_signalled)
		return;
	s->nfd_signalled = true;
	if (write(s->nfd, &one, sizeof(one)) < 0)
		return; /* saturated: it is readable anyway */
}

/*
 * The credits to give the peer: bytes (what the application took plus the
 * window) and records (what it took plus window / REC_COST), so that
 * memory stays bounded with small records too.  Lock held.
 */
uint64_t tbs_session_credit(struct tbs_session *s)
{
	return s->rx_freed + s->o.window;
}

uint64_t tbs_session_rec_credit(struct tbs_session *s)
{
	return s->rx_recs_freed + s->o.window / REC_COST;
}

void tbs_session_rxrec_free(struct tbs_session *s, struct rxrec *r)
{
	s->rx_nrec--;
	if (r->blk)
		tbs_session_blk_put(s, r->blk);
	else
		s->rx_copied -= sizeof(*r) + r->len;
	free(r);
}

void tbs_session_wake(struct tbs_session *s)
{
	uint64_t one = 1;

	if (write(s->evfd, &one, sizeof(one)) < 0)
		return; /* the counter is saturated: a wake-up is pending */
}

/* Everything of the peer's stream was read and matched its END; lock held. */
bool tbs_session_rx_verified(struct tbs_session *s)
{
	return s->rx_end && !s->rx_head &&
	       s->rx_delivered == s->rx_end_total &&
	       XXH3_64bits_digest(s->rx_hash) == s->rx_end_hash;
}

/*
 * The whole-stream hash: XXH3-64 over, for each record in order, its
 * payload checksum, length, type and end-of-message flag (16 bytes).  The payload checksums
 * cover every byte, so each byte is hashed once, not twice.
 */
void tbs_session_chain(XXH3_state_t *st, uint64_t pcsum, uint32_t len,
		       uint16_t app, uint8_t flags)
{
	uint8_t d[16] = { 0 };

	tbsi_le_put64(d, pcsum);
	tbsi_le_put32(d + 8, len);
	tbsi_le_put16(d + 12, app);
	d[14] = flags & TBS_WF_EOM;
	XXH3_64bits_update(st, d, sizeof(d));
}

/* Waits on @cv until deadline (ms, < 0: none); lock held. */
static int wait_on(struct tbs_session *s, pthread_cond_t *cv, int64_t deadline)
{
	struct timespec ts;

	if (deadline < 0)
		return -pthread_cond_wait(cv, &s->lock);
	if (tbs_session_now_ms() >= deadline)
		return -ETIMEDOUT;
	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	return -pthread_cond_timedwait(cv, &s->lock, &ts);
}

static int wait_until(struct tbs_session *s, int64_t deadline)
{
	return wait_on(s, &s->cv, deadline);
}

static int64_t deadline_in(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : tbs_session_now_ms() + timeout_ms;
}

static int set_defaults(struct tbs_session_opts *o)
{
	if (o->role < TBS_ROLE_DUPLEX || o->role > TBS_ROLE_RECEIVER ||
	    o->id_len > TBS_SESSION_MAX_ID || (o->id_len && !o->id))
		return -EINVAL;
	if (o->handshake_ms < 0 || o->idle_ms < 0 || o->rto_ms < 0 ||
	    o->confirm_ms < 0 || o->max_retries < 0)
		return -EINVAL;
	if (!o->handshake_ms)
		o->handshake_ms = 30000;
	if (!o->idle_ms)
		o->idle_ms = 10000;
	if (!o->rto_ms)
		o->rto_ms = 1000;
	if (!o->confirm_ms)
		o->confirm_ms = 60000;
	if (!o->max_retries)
		o->max_retries = 8;
	if (!o->window)
		o->window = 4u << 20;
	if (o->window < MIN_WINDOW || o->flags & ~TBS_SESSION_CALLER_READS)
		return -EINVAL;
	if (o->flags & TBS_SESSION_CALLER_READS)
		return tbs_session_rd_signal_init(o->read_signal);
	return 0;
}

static uint64_t make_nonce(struct tbs_session *s)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint64_t)tbs_session_now_ms() ^
		    ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
	return v ? v : 1;
}

static int set_flags(int fd, int *saved, bool nonblock)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	*saved = fl;
	fl = nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

/*
 * The write descriptor never blocks.  The read descriptor blocks (the
 * reader thread waits in read(2), see session-read.c) unless that would
 * make writes block too: one descriptor that is not a socket, or two that
 * share their status flags (a dup).
 */
static int set_modes(struct tbs_session *s)
{
	struct stat st;
	int r, fl;

	if (!fstat(s->wfd, &st)) {
		s->wr_sock = S_ISSOCK(st.st_mode);
		s->wr_fifo = S_ISFIFO(st.st_mode);
	}
	if (s->rfd == s->wfd) {
		s->rd_block = s->wr_sock;
		r = set_flags(s->rfd, &s->rfl, !s->rd_block);
		s->wfl = s->rfl;
		return r;
	}
	r = set_flags(s->wfd, &s->wfl, true);
	if (!r)
		r = set_flags(s->rfd, &s->rfl, false);
	if (r)
		return r;
	fl = fcntl(s->wfd, F_GETFL);
	s->rd_block = fl >= 0 && fl & O_NONBLOCK;
	if (!s->rd_block)
		return set_flags(s->rfd, &fl, true); /* shared: poll first */
	return 0;
}

static int init_sync(struct tbs_session *s)
{
	pthread_condattr_t ca;
	int r;

	r = pthread_condattr_init(&ca);
	if (r)
		return -r;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&s->cv, &ca);
	if (!r) {
		r = pthread_cond_init(&s->rd_cv, &ca);
		if (r)
			pthread_cond_destroy(&s->cv);
	}
	pthread_condattr_destroy(&ca);
	if (r)
		return -r;
	r = pthread_mutex_init(&s->lock, NULL);
	if (!r) {
		r = pthread_mutex_init(&s->pool_lock, NULL);
		if (r)
			pthread_mutex_destroy(&s->lock);
	}
	if (r) {
		pthread_cond_destroy(&s->cv);
		pthread_cond_destroy(&s->rd_cv);
		return -r;
	}
	return 0;
}

static void destroy_sync(struct tbs_session *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->rd_cv);
}

static int alloc_buffers(struct tbs_session *s)
{
	s->blk = tbs_session_blk_new(s);
	s->stage = malloc(COALESCE_CAP);
	s->tx_hash = XXH3_createState();
	s->rx_hash = XXH3_createState();
	if (!s->blk || !s->stage || !s->tx_hash || !s->rx_hash)
		return -ENOMEM;
	XXH3_64bits_reset(s->tx_hash);
	XXH3_64bits_reset(s->rx_hash);
	return 0;
}

static void free_buffers(struct tbs_session *s)
{
	free(s->blk);
	tbs_session_blk_pool_free(s);
	free(s->stage);
	XXH3_freeState(s->tx_hash);
	XXH3_freeState(s->rx_hash);
}

static int init_fds(struct tbs_session *s, int rfd, int wfd)
{
	int r;

	s->rfd = rfd;
	s->wfd = wfd;
	s->nfd = -1;
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->evfd < 0)
		return -errno;
	r = set_modes(s);
	if (r)
		close(s->evfd);
	return r;
}

int tbs_session_new(struct tbs_session **sp, int rfd, int wfd,
		    const struct tbs_session_opts *opts)
{
	struct tbs_session *s;
	int r;

	*sp = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = TBSI_OPTS_LOAD(&s->o, opts, window, read_signal);
	if (!r)
		r = set_defaults(&s->o);
	if (r)
		goto err_free;
	if (s->o.id_len)
		memcpy(s->id, s->o.id, s->o.id_len);
	s->o.id = NULL;
	s->error = "";
	s->nonce = make_nonce(s);
	/* the credits the HELLO gives */
	s->rx_limit_sent = s->o.window;
	s->rx_rec_limit_sent = s->o.window / REC_COST;
	r = alloc_buffers(s);
	if (r)
		goto err_buffers;
	r = init_sync(s);
	if (r)
		goto err_buffers;
	r = init_fds(s, rfd, wfd);
	if (r)
		goto err_sync;
	s->caller_reads = s->o.flags & TBS_SESSION_CALLER_READS && s->rd_block;
	*sp = s;
	return 0;

err_sync:
	destroy_sync(s);
err_buffers:
	free_buffers(s);
err_free:
	free(s);
	return r;
}

/*
 * Stops both threads: the timer thread first (after a failure it lets the
 * reader drain the peer's data for a while), then the reader, which may
 * be waiting in read(2) for data that never comes: it is cancelled.
 * Any thread may call it, several at once (tbs_session_abort() while
 * tbs_session_close() ends): the first joins the threads, the others wait
 * until it is done, so that each thread is joined once and every caller
 * returns with both threads gone.
 */
static void stop_thread(struct tbs_session *s)
{
	bool timer, reader;

	pthread_mutex_lock(&s->lock);
	while (s->stopping)
		pthread_cond_wait(&s->cv, &s->lock);
	timer = s->thread_started;
	reader = s->reader_started;
	if (timer || reader) {
		s->stop = true;
		s->stopping = true;
		pthread_cond_broadcast(&s->cv);
		pthread_cond_broadcast(&s->rd_cv);
		tbs_session_rd_kick(s);
	}
	pthread_mutex_unlock(&s->lock);
	if (!timer && !reader)
		return;
	if (timer) {
		tbs_session_wake(s);
		pthread_join(s->thread, NULL);
	}
	if (reader) {
		pthread_cancel(s->reader);
		pthread_join(s->reader, NULL);
	}
	pthread_mutex_lock(&s->lock);
	s->thread_started = false;
	s->reader_started = false;
	s->stopping = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

void tbs_session_free(struct tbs_session *s)
{
	struct txrec *t;
	struct rxrec *r;

	if (!s)
		return;
	stop_thread(s);
	while ((t = s->tx_head)) {
		s->tx_head = t->next;
		free(t);
	}
	tbs_session_pool_free(s);
	while ((r = s->rx_head)) {
		s->rx_head = r->next;
		tbs_session_rxrec_free(s, r);
	}
	fcntl(s->rfd, F_SETFL, s->rfl);
	fcntl(s->wfd, F_SETFL, s->wfl);
	close(s->evfd);
	if (s->nfd >= 0)
		close(s->nfd);
	destroy_sync(s);
	free_buffers(s);
	free(s);
}

/* Lock held; the threads wait for it. */
static int start_threads(struct tbs_session *s)
{
	int r;

	r = -pthread_create(&s->reader, NULL, tbs_session_read_main, s);
	if (r)
		return r;
	s->reader_started = true;
	r = -pthread_create(&s->thread, NULL, tbs_session_io_main, s);
	if (!r)
		s->thread_started = true;
	return r;
}

int tbs_session_start(struct tbs_session *s)
{
	int64_t deadline;
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->state != ST_NEW) {
		pthread_mutex_unlock(&s->lock);
		return -EALREADY;
	}
	s->state = ST_HANDSHAKE;
	tbs_session_budget_load(s);
	s->start_ms = s->last_rx = s->last_tx = tbs_session_now_ms();
	s->hello_next = s->start_ms;
	deadline = s->start_ms + s->o.handshake_ms + 1000;
	r = start_threads(s);
	if (r) {
		tbs_session_fail(s, r, "could not start the session threads: %s",
				 strerror(-r));
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	/* the first HELLO leaves before anything the peer sent is read */
	tbs_session_timers(s, s->start_ms);
	tbs_session_kick(s, false);
	while (s->state == ST_HANDSHAKE &&
	       wait_until(s, deadline) != -ETIMEDOUT)
		;
	if (s->state == ST_HANDSHAKE)
		tbs_session_fail(s, -ETIMEDOUT, "handshake did not complete");
	r = s->state == ST_FAILED ? s->err : 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Why a call cannot go on, or 0; lock held. */
static int session_gone(struct tbs_session *s)
{
	if (s->state == ST_FAILED)
		return s->err;
	if (s->state == ST_NEW || s->state == ST_HANDSHAKE)
		return -ENOTCONN;
	return 0;
}

/* Whether @len more bytes fit in the window now; lock held. */
static bool window_has(struct tbs_session *s, size_t len)
{
	return !s->tx_buffered || s->tx_buffered + len <= s->o.window;
}

/*
 * Waits until @len bytes fit in the window and reserves them; lock held.
 * Leaves s->sending set on success: the caller queues, then clears it.
 */
static int reserve_window(struct tbs_session *s, size_t len,
			  int64_t deadline)
{
	int r;

	for (;;) {
		r = session_gone(s);
		if (r)
			return r;
		if (s->tx_end_req || s->state == ST_DONE)
			return -EPIPE;
		if (s->sending)
			return -EBUSY;
		if (len > s->peer.max_payload && len <= TBS_WIRE_MAX_PAYLOAD)
			return -EMSGSIZE;
		if (window_has(s, len))
			break;
		tbs_session_need_reader(s); /* the peer's ACKs free it */
		if (wait_until(s, deadline) == -ETIMEDOUT)
			return -EAGAIN;
	}
	s->tx_buffered += len;
	s->sending = true;
	return 0;
}

static void append_tx(struct tbs_session *s, struct txrec *t)
{
	t->next = NULL;
	t->off = s->tx_off;
	t->seq = s->tx_seq++;
	s->tx_off += t->len;
	if (s->tx_tail)
		s->tx_tail->next = t;
	else
		s->tx_head = t;
	s->tx_tail = t;
	if (!s->tx_cur)
		s->tx_cur = t;
	s->st.bytes_sent += t->len;
}

static struct txrec *txrec_new(struct tbs_session *s, uint16_t type,
			       const void *buf, size_t len, uint8_t flags)
{
	struct txrec *t = tbs_session_txrec_alloc(s, len);

	if (!t)
		return NULL;
	t->app = type;
	t->flags = flags;
	t->sealed = false;
	memcpy(t->data, buf, len);
	t->pcsum = tbs_wire_csum(t->data, len);
	return t;
}

/*
 * Turns the staged bytes into a record at the end of the queue; lock held.
 * Returns false when out of memory (the bytes stay staged).
 */
bool tbs_session_stage_flush(struct tbs_session *s)
{
	struct txrec *t;

	if (!s->stage_len)
		return true;
	t = txrec_new(s, s->stage_app, s->stage, s->stage_len, 0);
	if (!t)
		return false;
	s->tx_buffered -= (uint64_t)(s->stage_calls - 1) * REC_COST;
	s->stage_len = 0;
	s->stage_calls = 0;
	append_tx(s, t);
	return true;
}

/*
 * While a write is in progress (or records wait for credit), small sends
 * are staged and go out as one record once the writer is free
 * (coalescing never holds data back otherwise); lock held.  Returns false
 * when the bytes must become a record of their own.
 */
static bool stage(struct tbs_session *s, uint16_t type, const void *buf,
		  size_t len)
{
	bool busy = s->tx_cur || s->wr != WR_NONE || s->stage_len;

	if (!busy || len > COALESCE_CAP / 2)
		return false;
	if (s->stage_len && (s->stage_app != type ||
			     s->stage_len + len > COALESCE_CAP) &&
	    !tbs_session_stage_flush(s))
		return false;
	memcpy(s->stage + s->stage_len, buf, len);
	s->stage_len += (uint32_t)len;
	s->stage_calls++;
	s->stage_app = type;
	return true;
}

/*
 * Queues records made outside the lock, @len bytes in all, and ends the
 * send call.  Up to DIRECT_MAX bytes are written at once by this thread
 * if no other one is writing; more go to the timer thread, so that this
 * one prepares the next while they are written (session-write.c).
 */
static void queue_records(struct tbs_session *s, struct txrec **t, size_t n,
			  size_t len)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	s->sending = false;
	tbs_session_stage_flush(s); /* what was staged goes first */
	for (i = 0; i < n; i++)
		append_tx(s, t[i]);
	tbs_session_kick(s, len <= DIRECT_MAX);
	pthread_mutex_unlock(&s->lock);
}

static void unreserve(struct tbs_session *s, size_t len)
{
	pthread_mutex_lock(&s->lock);
	s->sending = false;
	s->tx_buffered -= len;
	pthread_mutex_unlock(&s->lock);
}

ssize_t tbs_session_send(struct tbs_session *s, uint16_t type,
			 const void *buf, size_t len, int timeout_ms)
{
	struct txrec *t;
	int r;

	if (len > TBS_WIRE_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = reserve_window(s, len + REC_COST, deadline_in(timeout_ms));
	if (!r && stage(s, type, buf, len)) {
		s->sending = false;
		pthread_mutex_unlock(&s->lock);
		return (ssize_t)len;
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		return r;
	t = txrec_new(s, type, buf, len, 0);
	if (!t) {
		unreserve(s, len + REC_COST);
		return -ENOMEM;
	}
	queue_records(s, &t, 1, len);
	return (ssize_t)len;
}

/* Largest record the peer accepts; lock held. */
static size_t record_max(struct tbs_session *s)
{
	size_t m = s->peer.max_payload;

	return m && m < TBS_WIRE_MAX_PAYLOAD ? m : TBS_WIRE_MAX_PAYLOAD;
}

/*
 * A message that fits in the window: queued whole or not at all, so that
 * a time-out never leaves half a message.
 */
static ssize_t send_whole(struct tbs_session *s, uint16_t type,
			  const uint8_t *buf, size_t len, int64_t deadline)
{
	struct txrec *one, **t = &one;
	size_t n, i, per, k;
	int r;

	pthread_mutex_lock(&s->lock);
	per = record_max(s);
	n = (len + per - 1) / per;
	r = reserve_window(s, len + n * REC_COST, deadline);
	pthread_mutex_unlock(&s->lock);
	if (r)
		return r;
	if (n > 1)
		t = malloc(n * sizeof(*t));
	for (i = 0; t && i < n; i++) {
		k = i + 1 < n ? per : len - i * per;
		t[i] = txrec_new(s, type, buf + i * per, k,
				 i + 1 == n ? TBS_WF_EOM : 0);
		if (!t[i])
			break;
	}
	if (!t || i < n) {
		while (t && i--)
			tbs_session_txrec_put(s, t[i]);
		if (t != &one)
			free(t);
		unreserve(s, len + n * REC_COST);
		return -ENOMEM;
	}
	queue_records(s, t, n, len);
	if (t != &one)
		free(t);
	return (ssize_t)len;
}

/*
 * A message larger than the window goes out record by record as the
 * window frees; the time-out applies until its first record is queued.
 */
static ssize_t send_stream(struct tbs_session *s, uint16_t type,
			   const uint8_t *buf, size_t len, int64_t deadline)
{
	size_t done = 0, k;
	struct txrec *t;
	int r;

	while (done < len) {
		pthread_mutex_lock(&s->lock);
		k = record_max(s);
		if (k > len - done)
			k = len - done;
		r = reserve_window(s, k + REC_COST, done ? -1 : deadline);
		pthread_mutex_unlock(&s->lock);
		if (r)
			return r;
		t = txrec_new(s, type, buf + done, k,
			      done + k == len ? TBS_WF_EOM : 0);
		if (!t) {
			unreserve(s, k + REC_COST);
			return -ENOMEM;
		}
		queue_records(s, &t, 1, k);
		done += k;
	}
	return (ssize_t)len;
}

ssize_t tbs_session_send_msg(struct tbs_session *s, uint16_t type,
			     const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = deadline_in(timeout_ms);

	if (!len)
		return -EINVAL;
	if (len > TBS_SESSION_MAX_MSG)
		return -EMSGSIZE;
	if (len + len / (TBS_WIRE_MAX_PAYLOAD / 2) * REC_COST + REC_COST <=
	    s->o.window)
		return send_whole(s, type, buf, len, deadline);
	return send_stream(s, type, buf, len, deadline);
}

/* The peer's stream ended and everything was read: check it; lock held. */
static int rx_at_end(struct tbs_session *s)
{
	if (s->rx_eof)
		return 0;
	if (!tbs_session_rx_verified(s)) {
		tbs_session_fail(s, -EBADMSG,
				 "whole-stream hash mismatch: %llu bytes received, peer sent %llu; the data must not be used",
				 (unsigned long long)s->rx_delivered,
				 (unsigned long long)s->rx_end_total);
		tbs_session_wake(s);
		return -EBADMSG;
	}
	s->rx_eof = true;
	s->ack_due = tbs_session_now_ms(); /* the next ACK says so */
	tbs_session_wake(s);
	return 0;
}

/*
 * Sleeps until rx_gen moves on from @gen (read with the lock held, after
 * the receiver found nothing to take), or until @deadline (ms, < 0:
 * none); lock held on entry and exit, dropped while asleep.  A futex on
 * the counter, not a condition variable: a receiver woken from a
 * condition variable takes the lock back marked as contended, and its
 * next unlock costs a system call, on every message.
 */
static int rx_sleep(struct tbs_session *s, unsigned int gen, int64_t deadline)
{
	struct timespec ts, *tp = NULL;
	int64_t left;
	int r = 0;

	if (deadline >= 0) {
		left = deadline - tbs_session_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		tp = &ts;
	}
	__atomic_add_fetch(&s->rx_sleepers, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&s->lock);
	if (syscall(SYS_futex, &s->rx_gen, FUTEX_WAIT_PRIVATE, gen, tp, NULL,
		    0) < 0 && errno == ETIMEDOUT)
		r = -ETIMEDOUT;
	pthread_mutex_lock(&s->lock);
	__atomic_sub_fetch(&s->rx_sleepers, 1, __ATOMIC_SEQ_CST);
	return r;
}

/*
 * Waits for a record to take, or the end; lock held.  1: a record.
 * Receivers take turns: while one copies a message (s->receiving), the
 * others wait, unless @own (the caller is that one, inside its message).
 */
static int wait_rx(struct tbs_session *s, bool own, int64_t deadline)
{
	bool want = false;
	int r;

	for (;;) {
		r = session_gone(s);
		if (r)
			return r;
		if (s->rx_head && (own || !s->receiving))
			return 1;
		if (!s->receiving || own) {
			if (s->rx_end && !s->rx_head)
				return rx_at_end(s);
			if (s->state == ST_DONE)
				return 0;
			/* TBS_SESSION_CALLER_READS: read, if nobody does */
			r = tbs_session_caller_read(s, deadline, &want);
			if (r > 0)
				continue;
			if (r < 0)
				return r;
		}
		r = rx_sleep(s, __atomic_load_n(&s->rx_gen, __ATOMIC_SEQ_CST),
			     deadline);
		if (want)
			s->rd_want--;
		if (r == -ETIMEDOUT)
			return -EAGAIN;
	}
}

/* The caller's turn to take is over: the next receiver's begins. */
static void end_turn(struct tbs_session *s)
{
	s->receiving = false;
	tbs_session_rx_changed(s); /* a system call only if one sleeps */
}

/* Lock held.  Returns true when the peer should hear of a larger credit. */
static bool consumed(struct tbs_session *s, struct rxrec *r, size_t n)
{
	r->pos += (uint32_t)n;
	s->rx_delivered += n;
	if (r->pos < r->len)
		return false;
	tbs_session_chain(s->rx_hash, r->pcsum, r->len, r->app, r->flags);
	s->rx_head = r->next;
	if (!s->rx_head)
		s->rx_tail = NULL;
	s->rx_freed += r->len;
	s->rx_recs_freed++;
	tbs_session_rxrec_free(s, r);
	return tbs_session_credit(s) - s->rx_limit_sent >= s->o.window / 4 ||
	       tbs_session_rec_credit(s) - s->rx_rec_limit_sent >=
		       s->o.window / REC_COST / 4;
}

/*
 * Copies up to @len bytes of the head record into @buf (NULL: drops them);
 * lock held on entry and exit, dropped while copying (the caller's turn,
 * s->receiving, keeps other receivers off).  Sets *@eom at the end of a
 * message.
 */
static size_t take(struct tbs_session *s, uint16_t *type, uint8_t *buf,
		   size_t len, bool *eom)
{
	struct rxrec *r = s->rx_head;
	size_t n = r->len - r->pos;

	if (n > len)
		n = len;
	pthread_mutex_unlock(&s->lock); /* s->receiving keeps the record */
	if (buf)
		memcpy(buf, r->data + r->pos, n);
	if (type)
		*type = r->app;
	pthread_mutex_lock(&s->lock);
	*eom = r->pos + n == r->len && r->flags & TBS_WF_EOM;
	if (consumed(s, r, n)) {
		/* a quarter of a credit freed: the peer hears of it now */
		tbs_session_ack_check(s, tbs_session_now_ms());
		tbs_session_kick(s, false);
	}
	return n;
}

ssize_t tbs_session_recv(struct tbs_session *s, uint16_t *type, void *buf,
			 size_t len, int timeout_ms)
{
	bool eom;
	size_t n;
	int ret;

	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	ret = wait_rx(s, false, deadline_in(timeout_ms));
	if (ret <= 0) {
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	s->receiving = true;
	n = take(s, type, buf, len, &eom);
	s->rx_in_msg = !eom;
	end_turn(s);
	pthread_mutex_unlock(&s->lock);
	return (ssize_t)n;
}

/*
 * Copies the rest of the current message; lock held.  Returns its length,
 * or -EMSGSIZE when it was longer than @cap (the rest was dropped).
 */
static ssize_t take_msg(struct tbs_session *s, uint16_t *type, uint8_t *buf,
			size_t cap)
{
	size_t got = 0, total = 0, n;
	bool eom = false;
	int r;

	s->rx_in_msg = true;
	while (!eom) {
		r = wait_rx(s, true, -1);
		if (r <= 0)
			return r ? r : -EPROTO; /* the stream ended inside */
		n = take(s, total ? NULL : type, got < cap ? buf + got : NULL,
			 got < cap ? cap - got : SIZE_MAX, &eom);
		total += n;
		if (got < cap)
			got += n;
	}
	s->rx_in_msg = false;
	return total > cap ? -EMSGSIZE : (ssize_t)total;
}

ssize_t tbs_session_recv_msg(struct tbs_session *s, uint16_t *type, void *buf,
			     size_t cap, int timeout_ms)
{
	ssize_t ret;

	pthread_mutex_lock(&s->lock);
	ret = wait_rx(s, false, deadline_in(timeout_ms));
	if (ret > 0) {
		s->receiving = true;
		ret = take_msg(s, type, buf, cap);
		end_turn(s);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int tbs_session_fd(struct tbs_session *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->nfd < 0) {
		s->nfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->nfd_signalled = false;
		tbs_session_notify(s); /* the caller looks first */
	}
	r = s->nfd < 0 ? -errno : s->nfd;
	tbs_session_need_reader(s); /* the caller waits for readiness */
	pthread_mutex_unlock(&s->lock);
	return r;
}

unsigned int tbs_session_ready(struct tbs_session *s)
{
	unsigned int ev = 0;
	uint64_t v;

	pthread_mutex_lock(&s->lock);
	if (s->nfd >= 0 && s->nfd_signalled) {
		if (read(s->nfd, &v, sizeof(v)) < 0)
			v = 0;
		s->nfd_signalled = false;
	}
	if (s->state == ST_FAILED)
		ev |= TBS_SESSION_ERROR | TBS_SESSION_RECV | TBS_SESSION_SEND;
	if (s->state == ST_OPEN || s->state == ST_DONE) {
		if (s->rx_head || s->rx_end || s->state == ST_DONE)
			ev |= TBS_SESSION_RECV;
		if (!s->tx_end_req && s->tx_buffered < s->o.window)
			ev |= TBS_SESSION_SEND;
	}
	tbs_session_need_reader(s); /* the caller waits for readiness */
	pthread_mutex_unlock(&s->lock);
	return ev;
}

/*
 * Waits for ENDACK; lock held.  The confirm time-out counts from the last
 * sign of progress (data acknowledged, or consumed by the peer's
 * application), so a slow consumer of a long stream is not cut off.
 */
static int wait_end_acked(struct tbs_session *s)
{
	int64_t deadline = deadline_in(s->o.confirm_ms);
	uint64_t acked = s->tx_acked, limit = s->tx_limit;

	while (!s->tx_end_acked) {
		if (s->state == ST_FAILED)
			return s->err;
		tbs_session_need_reader(s);
		if (s->tx_acked != acked || s->tx_limit != limit) {
			acked = s->tx_acked;
			limit = s->tx_limit;
			deadline = deadline_in(s->o.confirm_ms);
		}
		if (wait_until(s, deadline) != -ETIMEDOUT)
			continue;
		if (s->peer_confirming) {
			/*
			 * The peer read everything and makes it durable (a
			 * long sync): it is alive, the idle time-out tells
			 * otherwise.
			 */
			deadline = deadline_in(s->o.confirm_ms);
		} else {
			tbs_session_fail(s, -ETIMEDOUT,
					 "peer did not confirm the end of the stream: no progress for %d s (%llu bytes sent, %llu acknowledged)",
					 s->o.confirm_ms / 1000,
					 (unsigned long long)s->tx_off,
					 (unsigned long long)s->tx_acked);
			tbs_session_wake(s);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

int tbs_session_finish(struct tbs_session *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = session_gone(s);
	if (!r && !s->tx_end_req) {
		if (s->sending) {
			r = -EBUSY;
		} else {
			s->tx_end_req = true; /* the timer thread seals the hash */
			s->end_next = 0;
		}
	}
	if (!r) {
		tbs_session_wake(s);
		r = wait_end_acked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int tbs_session_confirm(struct tbs_session *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = session_gone(s);
	if (!r && !s->rx_eof)
		r = -EINVAL;
	if (!r && !s->rx_confirmed) {
		s->rx_confirmed = true;
		s->endack_due = true;
	}
	tbs_session_notify(s);
	pthread_mutex_unlock(&s->lock);
	tbs_session_wake(s);
	return r;
}

/*
 * Waits until the peer's stream is confirmed and BYE exchanged; lock held.
 * As for END, the time-out counts from the last data that arrived.
 */
static int wait_peer_done(struct tbs_session *s)
{
	int64_t deadline = deadline_in(s->o.confirm_ms);
	int64_t bye_deadline = -1, until;
	uint64_t got = s->rx_off;

	while (s->state == ST_OPEN) {
		if (s->rx_off != got) {
			got = s->rx_off;
			deadline = deadline_in(s->o.confirm_ms);
		}
		if (s->rx_end && s->rx_head) {
			tbs_session_fail(s, -EBUSY,
					 "closing with %llu bytes from the peer not read",
					 (unsigned long long)(s->rx_end_total -
							      s->rx_delivered));
			break;
		}
		if (s->rx_end && !s->rx_head && !tbs_session_rx_verified(s)) {
			rx_at_end(s);
			break;
		}
		if (s->bye_sent && bye_deadline < 0)
			bye_deadline = deadline_in(2 * s->o.rto_ms);
		tbs_session_need_reader(s);
		until = bye_deadline >= 0 ? bye_deadline : deadline;
		if (wait_until(s, until) != -ETIMEDOUT)
			continue;
		if (bye_deadline >= 0)
			return 0; /* everything confirmed; the BYE got lost */
		tbs_session_fail(s, -ETIMEDOUT,
				 "peer did not end its stream: nothing for %d s after closing (%llu bytes received)",
				 s->o.confirm_ms / 1000,
				 (unsigned long long)s->rx_off);
	}
	return s->state == ST_FAILED ? s->err : 0;
}

int tbs_session_close(struct tbs_session *s)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = session_gone(s);
	s->closing = true;
	pthread_mutex_unlock(&s->lock);
	if (r)
		goto out;
	tbs_session_wake(s);
	r = tbs_session_finish(s);
	if (r)
		goto out;
	pthread_mutex_lock(&s->lock);
	r = wait_peer_done(s);
	pthread_mutex_unlock(&s->lock);
out:
	if (r)
		tbs_session_wake(s);
	stop_thread(s);
	return r;
}

int tbs_session_abort(struct tbs_session *s, int err, const char *msg)
{
	if (err >= 0 || err < -4095)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	tbs_session_fail(s, err, "%s", msg);
	pthread_mutex_unlock(&s->lock);
	stop_thread(s); /* the thread sends the ABORT before it stops */
	return 0;
}

const char *tbs_session_error(struct tbs_session *s)
{
	const char *e;

	pthread_mutex_lock(&s->lock);
	e = s->error;
	pthread_mutex_unlock(&s->lock);
	return e;
}

int tbs_session_peer_id(struct tbs_session *s, void *buf, size_t len)
{
	int r = -ENOTCONN;

	pthread_mutex_lock(&s->lock);
	if (s->peer_known) {
		r = s->peer.id_len;
		if (len > (size_t)r)
			len = (size_t)r;
		if (len)
			memcpy(buf, s->peer.id, len);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

uint32_t tbs_session_options(struct tbs_session *s)
{
	uint32_t v;

	pthread_mutex_lock(&s->lock);
	v = s->established ? s->agreed : 0;
	pthread_mutex_unlock(&s->lock);
	return v;
}

void tbs_session_get_stats(struct tbs_session *s, struct tbs_session_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	pthread_mutex_unlock(&s->lock);
}
