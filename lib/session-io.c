// SPDX-License-Identifier: MIT
/*
 * The session protocol engine: what each record means (the handlers, run
 * by the reader thread, session-read.c), the timers (handshake,
 * acknowledgements, retransmission, keep-alives), and the timer thread
 * that runs them and waits for the descriptor when it is full.  Records
 * are written by session-write.c.  See docs/PROTOCOL.md for the rules it
 * follows and session-int.h for locking.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "session-int.h"

static void queue_ctl(struct tbs_session *s, uint8_t type, uint32_t aux,
		      uint64_t off, const void *payload, uint32_t len)
{
	struct tbs_wire_hdr h = {
		.type = type, .aux = aux, .off = off, .len = len,
	};
	size_t n;

	if (s->ctl_pos == s->ctl_len)
		s->ctl_pos = s->ctl_len = 0;
	n = tbs_wire_encode(s->ctl + s->ctl_len, CTL_CAP - s->ctl_len, &h,
			    payload, s->key);
	/* a full queue drops the record: every control record is repeated */
	s->ctl_len += n;
}

static void queue_u64(struct tbs_session *s, uint8_t type, uint32_t aux,
		      uint64_t off, uint64_t v)
{
	uint8_t p[8];

	tbsi_le_put64(p, v);
	queue_ctl(s, type, aux, off, p, sizeof(p));
}

static void queue_hello(struct tbs_session *s, uint64_t peer_nonce)
{
	struct tbs_wire_hello h = {
		.major = TBS_PROTO_MAJOR,
		.minor = TBS_PROTO_MINOR,
		.options = s->o.options,
		.nonce = s->nonce,
		.peer_nonce = peer_nonce,
		.rx_window = s->o.window,
		.max_payload = TBS_WIRE_MAX_PAYLOAD,
		.role = (uint8_t)s->o.role,
		.hflags = s->established ? TBS_HF_ESTABLISHED : 0,
		.id_len = (uint8_t)s->o.id_len,
	};
	uint8_t p[TBS_WIRE_HELLO_LEN + TBS_WIRE_MAX_ID];
	size_t n;

	memcpy(h.id, s->id, s->o.id_len);
	n = tbs_wire_hello_encode(p, sizeof(p), &h);
	queue_ctl(s, TBS_REC_HELLO, 0, 0, p, (uint32_t)n);
}

/* ACK aux bit: the application read the peer's stream to its end. */
#define ACK_CONFIRMING 0x1

static void queue_ack(struct tbs_session *s)
{
	uint64_t limit = tbs_session_credit(s);
	uint64_t recs = tbs_session_rec_credit(s);
	uint8_t p[16];

	tbsi_le_put64(p, limit);
	tbsi_le_put64(p + 8, recs);
	queue_ctl(s, TBS_REC_ACK, s->rx_eof && !s->rx_confirmed ?
		  ACK_CONFIRMING : 0, s->rx_off, p, sizeof(p));
	s->rx_ack_sent = s->rx_off;
	s->rx_limit_sent = limit;
	s->rx_rec_limit_sent = recs;
	s->ack_due = 0;
}

static void queue_nack(struct tbs_session *s, uint32_t epoch, int64_t now)
{
	if (s->nack_off == s->rx_off && s->nack_epoch == epoch &&
	    now - s->nack_ms < s->o.rto_ms)
		return;
	queue_ctl(s, TBS_REC_NACK, epoch, s->rx_off, NULL, 0);
	s->nack_off = s->rx_off;
	s->nack_epoch = epoch;
	s->nack_ms = now;
	s->st.nacks_sent++;
}

static void queue_abort(struct tbs_session *s)
{
	size_t n = strnlen(s->msg, TBS_WIRE_MAX_MSG);

	queue_ctl(s, TBS_REC_ABORT, (uint32_t)-s->err, 0, s->msg, (uint32_t)n);
}

static bool both_done(struct tbs_session *s)
{
	return s->tx_end_acked && s->rx_confirmed;
}

static void set_done_if_over(struct tbs_session *s)
{
	if (both_done(s) && s->bye_sent && s->bye_rcvd &&
	    s->state == ST_OPEN) {
		s->state = ST_DONE;
		pthread_cond_broadcast(&s->cv);
		pthread_cond_broadcast(&s->rd_cv);
		tbs_session_rd_kick(s);
		tbs_session_rx_changed(s);
	}
}

/* ---- handshake ---- */

static int check_peer(struct tbs_session *s, const struct tbs_wire_hello *h)
{
	static const char *const names[] = { "duplex", "senders", "receivers" };

	if (h->role && h->role == s->o.role) {
		tbs_session_fail(s, -EINVAL,
				 "both sides are %s; one must send, the other receive",
				 names[h->role < 3 ? h->role : 0]);
		return -EINVAL;
	}
	if (h->max_payload < 4096 || h->rx_window < 4096) {
		tbs_session_fail(s, -EPROTO,
				 "peer announced an unusable record size %u or window %llu",
				 h->max_payload,
				 (unsigned long long)h->rx_window);
		return -EPROTO;
	}
	return 0;
}

/*
 * Until the handshake completed, the latest HELLO names the peer: a HELLO
 * of an earlier run, delivered late, is replaced by the live peer's.
 */
static void learn_peer(struct tbs_session *s, const struct tbs_wire_hello *h)
{
	s->peer = *h;
	s->peer_known = true;
	s->key = tbs_wire_key(s->nonce, h->nonce);
	s->agreed = s->o.options & h->options;
	s->tx_limit = h->rx_window;
	s->tx_rec_limit = h->rx_window / REC_COST;
}

static void set_established(struct tbs_session *s)
{
	s->established = true;
	s->state = ST_OPEN;
	tbs_session_budget_save(s, true);
	tbs_session_notify(s);
	pthread_cond_broadcast(&s->cv);
}

static void on_hello(struct tbs_session *s, const uint8_t *p, uint32_t n)
{
	struct tbs_wire_hello h;
	int r = tbs_wire_hello_decode(p, n, &h);

	if (r == -EPROTONOSUPPORT) {
		queue_hello(s, 0); /* so that the peer says the same */
		tbs_session_fail(s, r,
				 "peer speaks session protocol %u.%u; this side speaks %u.%u and does not talk to %u.x (update the older side)",
				 h.major, h.minor, TBS_PROTO_MAJOR,
				 TBS_PROTO_MINOR, h.major);
		return;
	}
	if (r < 0 || h.nonce == s->nonce) {
		if (r < 0)
			tbs_session_fail(s, -EPROTO, "peer sent a malformed HELLO");
		return;
	}
	if (s->established && h.nonce != s->peer.nonce) {
		if (h.peer_nonce == 0)
			tbs_session_fail(s, -ECONNRESET,
					 "peer restarted its session (new HELLO after the handshake); start again");
		return; /* a HELLO of an earlier run */
	}
	if (!s->established) {
		if (check_peer(s, &h))
			return;
		learn_peer(s, &h);
		if (h.peer_nonce == s->nonce)
			set_established(s);
	}
	if (!(h.hflags & TBS_HF_ESTABLISHED))
		queue_hello(s, h.nonce);
}

/* ---- data direction: receiving ---- */

/*
 * Memory held for the application: the blocks, and the records copied out
 * of them.  Bounded by twice the window and two blocks, whatever the peer
 * sends; lock held.
 */
static bool rx_over_memory(struct tbs_session *s, uint32_t len)
{
	uint64_t held = (uint64_t)s->rx_blocks * RX_BLOCK + s->rx_copied;

	if (len <= SMALL_REC)
		held += sizeof(struct rxrec) + len;
	return held > 2 * (uint64_t)s->o.window + 2 * RX_BLOCK;
}

static struct rxrec *rxrec_new(struct tbs_session *s,
			       const struct tbs_wire_hdr *h, const uint8_t *p)
{
	bool small = h->len <= SMALL_REC;
	struct rxrec *r = malloc(sizeof(*r) + (small ? h->len : 0));

	if (!r)
		return NULL;
	if (small) {
		memcpy(r->copy, p, h->len);
		r->blk = NULL;
		r->data = r->copy;
		s->rx_copied += sizeof(*r) + h->len;
	} else {
		r->blk = s->blk;
		s->blk->refs++;
		r->data = p;
	}
	r->next = NULL;
	r->pcsum = h->pcsum;
	r->len = h->len;
	r->pos = 0;
	r->app = h->app;
	r->flags = h->flags & TBS_WF_EOM;
	return r;
}

static void on_data(struct tbs_session *s, const struct tbs_wire_hdr *h,
		    const uint8_t *p, int64_t now)
{
	struct rxrec *r;

	if (!h->len)
		return; /* not allowed: it would read as the end of the stream */
	if (h->off > s->rx_off) {
		queue_nack(s, h->aux, now);
		return;
	}
	if (h->off < s->rx_off || s->rx_end) {
		if (!s->ack_due)
			s->ack_due = now;
		return;
	}
	if (h->off + h->len > s->rx_limit_sent ||
	    s->rx_seq >= s->rx_rec_limit_sent || rx_over_memory(s, h->len))
		return; /* beyond the credit we gave: let it be resent */
	r = rxrec_new(s, h, p);
	if (!r) {
		tbs_session_fail(s, -ENOMEM, "out of memory receiving at offset %llu",
				 (unsigned long long)h->off);
		return;
	}
	if (s->rx_tail)
		s->rx_tail->next = r;
	else
		s->rx_head = r;
	s->rx_tail = r;
	s->rx_nrec++;
	s->rx_seq++;
	s->rx_off += h->len;
	s->st.bytes_received += h->len;
	if (!s->ack_due)
		s->ack_due = now + TICK_MS;
	tbs_session_notify(s);
	s->rx_wake = true; /* the reader thread wakes the receiver */
}

static void on_end(struct tbs_session *s, const struct tbs_wire_hdr *h,
		   const uint8_t *p, int64_t now)
{
	if (h->len < 8)
		return;
	if (h->off > s->rx_off) {
		queue_nack(s, h->aux, now);
		return;
	}
	if (h->off < s->rx_off) {
		tbs_session_fail(s, -EPROTO,
				 "peer ended its stream at offset %llu, but %llu bytes arrived",
				 (unsigned long long)h->off,
				 (unsigned long long)s->rx_off);
		return;
	}
	if (!s->rx_end) {
		s->rx_end = true;
		s->rx_end_total = h->off;
		s->rx_end_hash = tbsi_le_get64(p);
		queue_ack(s);
		tbs_session_notify(s);
		tbs_session_rx_changed(s);
	}
	if (s->rx_confirmed)
		s->endack_due = true;
}

/* ---- data direction: sending ---- */

/* Frees what the peer acknowledged; a sender waiting for room hears of it. */
void tbs_session_free_acked(struct tbs_session *s)
{
	struct txrec *r;
	bool freed = false;

	while ((r = s->tx_head) && r->off + r->len <= s->tx_acked &&
	       r != s->wr_rec[0]) { /* the batch being written stays */
		s->tx_head = r->next;
		if (!s->tx_head)
			s->tx_tail = NULL;
		if (s->tx_cur == r)
			s->tx_cur = r->next;
		s->tx_buffered -= r->len + REC_COST;
		tbs_session_txrec_put(s, r);
		freed = true;
	}
	if (!freed)
		return;
	tbs_session_notify(s);
	pthread_cond_broadcast(&s->cv);
}

static void advance_acked(struct tbs_session *s, uint64_t off, int64_t now)
{
	if (off <= s->tx_acked || off > s->tx_sent)
		return;
	s->tx_acked = off;
	s->st.bytes_acked = off;
	s->progress_ms = now;
	if (s->retry_off < off)
		s->retries = 0;
	pthread_cond_broadcast(&s->cv); /* progress, for wait_end_acked() */
	tbs_session_free_acked(s);
}

static void rewind_to(struct tbs_session *s, uint64_t off, int64_t now)
{
	struct txrec *r;

	for (r = s->tx_head; r && r->off != off; r = r->next)
		;
	if (!r && off != s->tx_off)
		return;
	if (off == s->retry_off) {
		if (++s->retries > s->o.max_retries) {
			tbs_session_fail(s, -EIO,
					 "corruption at offset %llu could not be repaired after %d retries",
					 (unsigned long long)off,
					 s->retries - 1);
			return;
		}
	} else {
		s->retry_off = off;
		s->retries = 1;
	}
	s->tx_cur = r;
	s->tx_flight = off;
	s->epoch++;
	s->progress_ms = now;
	s->end_next = 0;
	s->st.retransmits++;
}

static void on_ack(struct tbs_session *s, const struct tbs_wire_hdr *h,
		   const uint8_t *p, int64_t now)
{
	uint64_t limit;

	if (h->len < 16)
		return;
	limit = tbsi_le_get64(p);
	if (tbsi_le_get64(p + 8) > s->tx_rec_limit) {
		s->tx_rec_limit = tbsi_le_get64(p + 8);
		pthread_cond_broadcast(&s->cv);
	}
	if (!s->peer_confirming && h->aux & ACK_CONFIRMING &&
	    s->tx_end_sealed && h->off == s->tx_off) {
		s->peer_confirming = true;
		pthread_cond_broadcast(&s->cv);
	}
	advance_acked(s, h->off, now);
	if (limit > s->tx_limit) {
		s->tx_limit = limit;
		pthread_cond_broadcast(&s->cv);
	}
}

static void on_nack(struct tbs_session *s, const struct tbs_wire_hdr *h,
		    int64_t now)
{
	if (h->aux != s->epoch || h->off < s->tx_acked || h->off >= s->tx_sent)
		return;
	advance_acked(s, h->off, now);
	rewind_to(s, h->off, now);
}

static void on_endack(struct tbs_session *s, const struct tbs_wire_hdr *h,
		      const uint8_t *p)
{
	if (h->len < 8 || !s->tx_end_req || s->tx_end_acked)
		return;
	if (h->off != s->tx_off || tbsi_le_get64(p) != s->tx_end_hash) {
		tbs_session_fail(s, -EBADMSG,
				 "peer confirmed %llu bytes with hash %016llx, but %llu bytes with hash %016llx were sent",
				 (unsigned long long)h->off,
				 (unsigned long long)tbsi_le_get64(p),
				 (unsigned long long)s->tx_off,
				 (unsigned long long)s->tx_end_hash);
		return;
	}
	s->tx_end_acked = true;
	pthread_cond_broadcast(&s->cv);
}

static void on_bye(struct tbs_session *s, const struct tbs_wire_hdr *h,
		   const uint8_t *p)
{
	on_endack(s, h, p);
	s->bye_rcvd = true;
	if (h->aux == 0 && s->bye_sent)
		queue_u64(s, TBS_REC_BYE, 1, s->rx_end_total, s->rx_end_hash);
	set_done_if_over(s);
	pthread_cond_broadcast(&s->cv);
}

static void on_abort(struct tbs_session *s, const struct tbs_wire_hdr *h,
		     const uint8_t *p)
{
	int err = (int)h->aux;

	if (err <= 0 || err > 4095)
		err = ECONNABORTED;
	s->peer_gone = true;
	tbs_session_fail(s, -err, "peer aborted: %.*s", (int)h->len,
			 (const char *)p);
}

/* ---- dispatch ---- */

static void on_established_record(struct tbs_session *s,
				  const struct tbs_wire_hdr *h,
				  const uint8_t *p, int64_t now)
{
	switch (h->type) {
	case TBS_REC_DATA:
		on_data(s, h, p, now);
		break;
	case TBS_REC_ACK:
		on_ack(s, h, p, now);
		break;
	case TBS_REC_NACK:
		on_nack(s, h, now);
		break;
	case TBS_REC_END:
		on_end(s, h, p, now);
		break;
	case TBS_REC_ENDACK:
		on_endack(s, h, p);
		break;
	case TBS_REC_BYE:
		on_bye(s, h, p);
		break;
	default:
		if (!(h->flags & TBS_WF_OPTIONAL))
			tbs_session_fail(s, -EPROTO,
					 "peer sent record type %u, unknown to protocol %u.%u",
					 h->type, TBS_PROTO_MAJOR,
					 TBS_PROTO_MINOR);
	}
}

static void on_record(struct tbs_session *s, const struct tbs_wire_hdr *h,
		      const uint8_t *p, int64_t now)
{
	s->st.records_received++;
	s->last_rx = now;
	if (h->type == TBS_REC_HELLO) {
		on_hello(s, p, h->len);
		return;
	}
	/* the header is keyed: the record is of this session */
	if (h->type == TBS_REC_ABORT) {
		on_abort(s, h, p);
		return;
	}
	if (!s->established)
		set_established(s); /* the peer saw our nonce answered */
	on_established_record(s, h, p, now);
}

static void on_bad(struct tbs_session *s, const struct tbs_wire_hdr *h,
		   int64_t now)
{
	s->st.bad_records++;
	if (s->established &&
	    (h->type == TBS_REC_DATA || h->type == TBS_REC_END))
		queue_nack(s, h->aux, now);
}

/*
 * Bytes that are not a record: damage, a frame lost inside a record,
 * records of an earlier session, or a peer that does not speak the
 * protocol at all (nothing in them even starts like a record).
 */
static void on_garbage(struct tbs_session *s, size_t n, size_t foreign)
{
	s->st.garbage_bytes += n;
	s->foreign += foreign;
	if (!s->peer_known && s->st.garbage_bytes >= 16384 &&
	    !s->st.records_received && !s->foreign)
		tbs_session_fail(s, -EPROTO,
				 "the peer is not speaking the tbstream session protocol: %llu bytes arrived without a valid record (is the other side sending raw data?)",
				 (unsigned long long)s->st.garbage_bytes);
}

/* Decodes what the read buffer holds; lock held. */
void tbs_session_rx_process(struct tbs_session *s, int64_t now)
{
	struct tbs_wire_scan sc;
	int r;

	while (s->state != ST_FAILED) {
		r = tbs_wire_scan(s->blk->data + s->rxstart,
				  s->rxlen - s->rxstart,
				  TBS_WIRE_MAX_PAYLOAD, s->key, &sc);
		if (sc.skipped || sc.foreign)
			on_garbage(s, sc.skipped, sc.foreign);
		s->rxstart += sc.used;
		if (r == TBS_WIRE_MORE)
			break;
		if (r == TBS_WIRE_RECORD)
			on_record(s, &sc.hdr, sc.payload, now);
		else
			on_bad(s, &sc.hdr, now);
	}
}

/* ---- end of file and errors ---- */

/*
 * err is 0 for an end of file (the peer closed its end; an ABORT may still
 * reach it through ours), else the errno of a failed read or write.
 */
void tbs_session_on_eof(struct tbs_session *s, int err)
{
	s->peer_gone = true; /* closed or gone: an ABORT would not arrive */
	if (both_done(s)) {
		s->bye_rcvd = true;
		if (s->state == ST_OPEN) {
			s->state = ST_DONE;
			tbs_session_notify(s);
			pthread_cond_broadcast(&s->cv);
			pthread_cond_broadcast(&s->rd_cv);
			tbs_session_rd_kick(s);
			tbs_session_rx_changed(s);
		}
		return;
	}
	if (err == -ENXIO) {
		tbs_session_fail(s, err,
				 "the stream went away (cable unplugged or stream removed) at offset %llu sent, %llu received",
				 (unsigned long long)s->tx_acked,
				 (unsigned long long)s->rx_off);
	} else if (err) {
		tbs_session_fail(s, err,
				 "reading or writing the stream failed: %s (at offset %llu sent, %llu received)",
				 strerror(-err),
				 (unsigned long long)s->tx_acked,
				 (unsigned long long)s->rx_off);
	} else if (!s->established) {
		tbs_session_fail(s, -ECONNRESET,
				 "peer closed the stream before the handshake completed");
	} else if (s->tx_end_req && !s->tx_end_acked) {
		tbs_session_fail(s, -ECONNRESET,
				 "peer closed before confirming (%llu bytes sent, %llu acknowledged)",
				 (unsigned long long)s->tx_off,
				 (unsigned long long)s->tx_acked);
	} else if (!s->rx_end) {
		tbs_session_fail(s, -ECONNRESET,
				 "peer closed the stream at offset %llu before ending it (%llu of %llu bytes sent were acknowledged)",
				 (unsigned long long)s->rx_off,
				 (unsigned long long)s->tx_acked,
				 (unsigned long long)s->tx_off);
	} else {
		tbs_session_fail(s, -ECONNRESET,
				 "peer closed the stream while this side was sending (%llu of %llu bytes acknowledged)",
				 (unsigned long long)s->tx_acked,
				 (unsigned long long)s->tx_off);
	}
}

/* ---- timers ---- */

static void handshake_timeout(struct tbs_session *s)
{
	if (s->peer_known)
		tbs_session_fail(s, -ETIMEDOUT,
				 "the peer answered but the handshake did not complete within %d s (%llu bad records, %llu bytes damaged: is the link corrupting data?)",
				 s->o.handshake_ms / 1000,
				 (unsigned long long)s->st.bad_records,
				 (unsigned long long)s->st.garbage_bytes);
	else if (s->st.garbage_bytes || s->st.bad_records)
		tbs_session_fail(s, -ETIMEDOUT,
				 "no valid answer from the peer within %d s, only damaged data (%llu bytes, %llu bad records): the link corrupts data, or an earlier run's data arrived",
				 s->o.handshake_ms / 1000,
				 (unsigned long long)s->st.garbage_bytes,
				 (unsigned long long)s->st.bad_records);
	else if (s->hello_budget < HELLO_MAX_TIMED && s->hellos == s->hello_budget)
		tbs_session_fail(s, -ETIMEDOUT,
				 "no answer from the peer within %d s; %d HELLOs toward this stream had already gone unanswered, so this side only listened (more could wedge the link); is tbstream running on the other host?",
				 s->o.handshake_ms / 1000,
				 HELLO_MAX_TIMED - s->hello_budget);
	else
		tbs_session_fail(s, -ETIMEDOUT,
				 "no answer from the peer within %d s; is tbstream running on the other host?",
				 s->o.handshake_ms / 1000);
}

/*
 * HELLOs: at most the budget while nothing is known of the peer (frames
 * into a closed end may wedge the link), and one more whenever bytes
 * arrived since the last one (the peer is open, but its HELLO or our
 * answer was damaged), at most every HELLO_ECHO_MS.
 */
static void handshake_timers(struct tbs_session *s, int64_t now)
{
	if (now - s->start_ms >= s->o.handshake_ms) {
		handshake_timeout(s);
		return;
	}
	if (s->hellos < s->hello_budget && now >= s->hello_next) {
		queue_hello(s, s->peer_known ? s->peer.nonce : 0);
		s->hello_next = now + ((int64_t)HELLO_FIRST_MS << s->hellos);
		s->hellos++;
		s->rx_activity = false;
		tbs_session_budget_save(s, false);
	} else if (s->rx_activity && now >= s->echo_next) {
		queue_hello(s, s->peer_known ? s->peer.nonce : 0);
		s->rx_activity = false;
		s->echo_next = now + HELLO_ECHO_MS;
	}
}

static void tx_timers(struct tbs_session *s, int64_t now)
{
	if (s->tx_flight > s->tx_acked && s->wr != WR_DATA &&
	    now - s->progress_ms >= s->o.rto_ms)
		rewind_to(s, s->tx_acked, now);
	if (!s->tx_end_req || s->tx_end_acked || s->tx_cur || s->stage_len ||
	    s->wr != WR_NONE)
		return;
	if (!s->tx_end_sealed) {
		/* every record was written once, so sealed */
		s->tx_end_hash = XXH3_64bits_digest(s->tx_hash);
		s->tx_end_sealed = true;
	}
	if (now >= s->end_next) {
		queue_u64(s, TBS_REC_END, s->epoch, s->tx_off, s->tx_end_hash);
		s->end_next = now + s->o.rto_ms;
	}
}

/*
 * ACKs that are due at once: a quarter of the window arrived, or the
 * application freed a quarter of either credit.  Called by whichever
 * thread made it due (the reader, the receiving application); lock held.
 */
void tbs_session_ack_check(struct tbs_session *s, int64_t now)
{
	uint64_t limit = tbs_session_credit(s);
	uint64_t recs = tbs_session_rec_credit(s);

	if (!s->established || s->state != ST_OPEN)
		return;
	if (s->ctl_pos < s->ctl_len)
		return; /* not while the last ones wait: the next is fresher */
	if ((s->ack_due && now >= s->ack_due) ||
	    s->rx_off - s->rx_ack_sent >= s->o.window / 4 ||
	    limit - s->rx_limit_sent >= s->o.window / 4 ||
	    recs - s->rx_rec_limit_sent >= s->o.window / REC_COST / 4)
		queue_ack(s);
}

static void rx_timers(struct tbs_session *s, int64_t now)
{
	if (s->closing && !s->rx_confirmed && tbs_session_rx_verified(s)) {
		s->rx_confirmed = true;
		s->endack_due = true;
	}
	if (s->endack_due) {
		queue_u64(s, TBS_REC_ENDACK, 0, s->rx_end_total,
			  s->rx_end_hash);
		s->endack_due = false;
	}
	if (s->ctl_pos == s->ctl_len && now - s->last_tx >= s->o.idle_ms / 4)
		queue_ack(s); /* keep-alive */
	tbs_session_ack_check(s, now);
}

static void bye_timers(struct tbs_session *s)
{
	if (both_done(s) && !s->bye_sent) {
		queue_u64(s, TBS_REC_BYE, s->bye_rcvd ? 1 : 0, s->rx_end_total,
			  s->rx_end_hash);
		s->bye_sent = true;
		set_done_if_over(s);
	}
}

/*
 * Runs what is due; lock held.  Called by the timer thread, and by
 * tbs_session_start() for the first HELLO.
 */
void tbs_session_timers(struct tbs_session *s, int64_t now)
{
	if (s->state == ST_HANDSHAKE) {
		handshake_timers(s, now);
		return;
	}
	if (s->state != ST_OPEN)
		return;
	if (now - s->last_rx >= s->o.idle_ms) {
		tbs_session_fail(s, -ETIMEDOUT,
				 "peer vanished at offset %llu: nothing received for %d s (%llu of %llu bytes sent were acknowledged, %llu received)",
				 (unsigned long long)(s->tx_off > s->tx_acked ?
						      s->tx_acked : s->rx_off),
				 s->o.idle_ms / 1000,
				 (unsigned long long)s->tx_acked,
				 (unsigned long long)s->tx_off,
				 (unsigned long long)s->rx_off);
		return;
	}
	tx_timers(s, now);
	rx_timers(s, now);
	bye_timers(s);
}

/* ---- the timer thread ---- */

/* Waits for a wake-up, a tick, or room in a full descriptor. */
static void tick_wait(struct tbs_session *s, bool want_write)
{
	struct pollfd p[2] = {
		{ .fd = s->evfd, .events = POLLIN },
		{ .fd = s->wfd, .events = POLLOUT },
	};
	uint64_t v;

	if (poll(p, want_write ? 2 : 1, TICK_MS) < 0)
		return;
	if (p[0].revents & POLLIN && read(s->evfd, &v, sizeof(v)) < 0)
		v = 0;
	if (want_write && p[1].revents) {
		pthread_mutex_lock(&s->lock);
		s->wr_full = false; /* the next write says what it takes */
		pthread_mutex_unlock(&s->lock);
	}
}

/*
 * A failed side sends its ABORT, then reads and drops what the peer still
 * sends until the peer closes or goes quiet (closing with the peer's data
 * in flight can wedge the link), at most DRAIN_MS.
 */
static bool failed_exit(struct tbs_session *s, int64_t *fail_ms, int64_t now)
{
	if (!*fail_ms)
		*fail_ms = now;
	if (s->peer_gone || now - *fail_ms > DRAIN_MS)
		return true;
	if (s->wr != WR_NONE || s->ctl_pos < s->ctl_len)
		return now - *fail_ms > 200; /* the ABORT could not leave */
	return now - s->last_rx > 200 && now - *fail_ms > 50;
}

static bool should_exit(struct tbs_session *s, int64_t *fail_ms, int64_t now)
{
	if (s->rd_owner == RD_CALLER &&
	    (s->state != ST_OPEN || s->stop)) {
		tbs_session_rd_kick(s); /* again: the last one may be lost */
		return false;
	}
	if (s->state == ST_FAILED)
		return failed_exit(s, fail_ms, now);
	if (s->stop)
		return true;
	if (s->state == ST_DONE)
		return s->peer_gone || (s->wr == WR_NONE && !s->writing &&
					s->ctl_pos == s->ctl_len);
	return false;
}

/*
 * The timer thread: runs the timers, writes what they queue, and waits
 * for the descriptor when a write found it full.  It exits when the
 * session is over (after a failure: once the ABORT left and the peer's
 * data was drained).
 */
void *tbs_session_io_main(void *arg)
{
	struct tbs_session *s = arg;
	int64_t fail_ms = 0, now;
	bool want_w;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* EPIPE instead of SIGPIPE */
	for (;;) {
		pthread_mutex_lock(&s->lock);
		now = tbs_session_now_ms();
		if (s->state == ST_FAILED && !s->peer_gone && !fail_ms &&
		    s->peer_known)
			queue_abort(s);
		if (should_exit(s, &fail_ms, now)) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		tbs_session_timers(s, now);
		tbs_session_rd_timers(s, now);
		tbs_session_write(s, true);
		want_w = s->wr_full && !s->writing;
		pthread_mutex_unlock(&s->lock);
		tick_wait(s, want_w);
	}
	return NULL;
}
