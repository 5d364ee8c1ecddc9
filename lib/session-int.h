/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the state of one session, shared between
 * the application-facing calls (session.c), the reader thread
 * (session-read.c), the timer thread (session-io.c) and whichever thread
 * writes (session-write.c).
 *
 * Locking: everything below "protected by lock" is read and written with
 * s->lock held.  Beyond it:
 *  - the read buffer (blk, rxstart, rxlen, rd_size, eio_run) belongs to the reader
 *    thread; it reads into the block without the lock, and decodes with
 *    the lock held;
 *  - the write in progress (wr, wr_*, and the control bytes from ctl_pos
 *    to ctl_len) belongs to the thread that set s->writing, under the
 *    lock; that thread alone changes them and writes them without the
 *    lock, then clears s->writing under the lock.  Any thread may queue
 *    records (control records, DATA) with the lock held, beyond what is
 *    being written, and call tbs_session_kick(): if nobody writes, it
 *    writes them itself;
 *  - application threads never wait for the other threads to write:
 *    they write themselves or leave it to the one writing; they wake the
 *    timer thread (eventfd) only for timers and for a full descriptor;
 *  - receivers take turns (s->receiving: the one taking a record or a
 *    message).  One that finds nothing sleeps on rx_gen (a futex);
 *    whoever changes what receivers wait for bumps it
 *    (tbs_session_rx_changed()): the reader thread after it let go of
 *    the lock, so that the receiver it wakes takes the lock uncontended;
 *  - with TBS_SESSION_CALLER_READS, one thread at a time holds the reads
 *    (rd_owner, under the lock): the reader thread, or a receiver that
 *    found nothing to take (tbs_session_caller_read(), session-read.c).
 *    The holder owns the read buffer as the reader thread does without
 *    the flag.  A receiver that waits for the reads to be free counts
 *    itself in rd_want; the reader thread hands the reads over after its
 *    read returned when rd_want is not 0 (rd_yielded), and takes them
 *    back when nobody read for RD_GRACE_MS, when the session leaves
 *    ST_OPEN, or when another thread needs the peer's records
 *    (tbs_session_need_reader()).  A receiver blocked in read(2) is
 *    interrupted with the application's signal (tbs_session_rd_kick()),
 *    again at every tick of the timer thread while it must leave, which
 *    does not exit before the receiver gave the reads back.
 */
#ifndef TBS_SESSION_INT_H
#define TBS_SESSION_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <xxhash.h>

#include "tbstream.h"
#include "wire.h"

#define HELLO_MAX_TIMED 6 /* HELLOs toward a peer not known to be open */
#define HELLO_FIRST_MS 250 /* then 500, 1000, 2000, 4000 */
#define HELLO_ECHO_MS 250 /* HELLOs answering damaged bytes: at most 4/s */
#define TICK_MS 10
#define SMALL_REC 4096 /* records up to this are copied out of the block */
#define COALESCE_CAP (16u * 1024) /* send(): small records grow to this */
#define DIRECT_MAX (8u * 1024) /* a send call up to this writes itself */
#define POOL_MIN (64u * 1024) /* records from this size reuse buffers */
#define POOL_CLASSES 3 /* of 64, 128 and 256 KiB */
#define REC_COST 64 /* memory of a record beyond its payload: the window
			* holds at most window / REC_COST records */
#define DRAIN_MS 2000 /* longest drain of the peer's data after a failure */
#define CTL_CAP 16384
#define WR_BATCH 8 /* DATA records per write, up to WR_BATCH_BYTES */
#define WR_BATCH_BYTES (1u << 20)
#define EIO_MAX_RUN 64 /* reads failing with EIO in a row: not a bad frame */
#define MIN_WINDOW (2 * TBS_WIRE_MAX_PAYLOAD)
#define RX_BLOCK (4 * (TBS_WIRE_HDR_LEN + TBS_WIRE_MAX_PAYLOAD))
#define RD_GRACE_MS 50 /* reads free for so long: the reader thread reads */

enum read_owner { RD_NONE, RD_THREAD, RD_CALLER };

enum session_state {
	ST_NEW,
	ST_HANDSHAKE,
	ST_OPEN,
	ST_DONE,
	ST_FAILED,
};

/*
 * A record to send.  It enters the stream hash when it is written the
 * first time (sealed), so that the hash follows the stream's order.  Its
 * header is encoded in front of its payload before each write (the epoch
 * changes on a retransmission), so that a record is one piece of memory.
 */
struct txrec {
	struct txrec *next;
	uint64_t off;
	uint64_t seq; /* record number in the stream, from 0 */
	uint64_t pcsum;
	uint32_t len;
	uint32_t cap; /* room for payload (session-pool.c) */
	uint16_t app;
	uint8_t flags; /* TBS_WF_EOM */
	bool sealed;
	uint8_t hdr[TBS_WIRE_HDR_LEN];
	uint8_t data[]; /* right after hdr: uint8_t needs no padding */
};

/*
 * Received bytes are read into blocks; a queued record points into its
 * block instead of being copied out of it.  A block goes back to a free
 * list (session-pool.c) when the reader moved on to another one and every
 * record in it was consumed.
 */
struct rxblk {
	struct rxblk *next; /* on the free list (session-pool.c) */
	unsigned int refs; /* the reader's, plus one per queued record */
	uint8_t data[];
};

struct rxrec {
	struct rxrec *next;
	struct rxblk *blk; /* NULL: the payload was copied into copy[] */
	const uint8_t *data;
	uint64_t pcsum;
	uint32_t len;
	uint32_t pos;
	uint16_t app;
	uint8_t flags; /* TBS_WF_EOM */
	uint8_t copy[];
};

enum write_kind { WR_NONE, WR_CTL, WR_DATA };

struct tbs_session {
	int rfd, wfd, evfd;
	int rfl, wfl; /* original file status flags */
	struct tbs_session_opts o;
	uint8_t id[TBS_WIRE_MAX_ID];
	uint64_t nonce;
	pthread_t thread; /* the timer thread */
	pthread_t reader; /* the reader thread */
	bool rd_block; /* reads block: the reader is stopped by cancellation */
	bool wr_sock; /* the write descriptor is a socket: no SIGPIPE */
	bool wr_fifo; /* it is a pipe: SIGPIPE is kept from the writer */
	bool caller_reads; /* TBS_SESSION_CALLER_READS, and reads block */

	pthread_mutex_t lock;
	pthread_cond_t cv; /* handshake, window, end: any change */
	pthread_cond_t rd_cv; /* the reader thread waits for the reads */
	/* protected by lock */
	enum session_state state;
	bool thread_started, reader_started;
	bool stop;
	bool stopping; /* a thread joins the threads (stop_thread()) */
	int err;
	char msg[256]; /* written once, then published through error */
	const char *error; /* "" until the session failed, then msg */
	struct tbs_session_stats st;
	bool sending; /* guards against concurrent misuse */
	bool receiving; /* a receiver's turn: it takes a record or message */

	struct tbs_wire_hello peer; /* until established: the latest HELLO */
	bool peer_known, established;
	uint64_t key; /* of the session with peer.nonce; 0 until known */
	uint32_t agreed;
	int hellos; /* timed HELLOs sent */
	int hello_budget; /* timed HELLOs this session may send */
	bool rx_activity; /* bytes arrived since the last HELLO */
	uint64_t foreign; /* record starts of another session or damaged */
	int64_t start_ms, hello_next, echo_next;
	int nfd; /* readiness descriptor (eventfd), -1 until asked for */
	bool writing; /* a thread is writing the write in progress */
	bool wr_full; /* the descriptor took less than offered: the timer
		       * thread waits for POLLOUT, nobody writes until then */
	bool rx_stopped; /* end of file or a broken stream: no more reads */
	bool rx_wake; /* records arrived: the reader wakes receivers */
	/*
	 * Bumped, atomically, whenever what a receiver waits for may have
	 * changed: the futex receivers sleep on (session.c, rx_sleep()).
	 */
	unsigned int rx_gen;
	unsigned int rx_sleepers; /* receivers asleep on it (atomic) */

	struct txrec *tx_head, *tx_tail, *tx_cur;
	/*
	 * Bytes of tbs_session_send() calls made while a write was in
	 * progress: they become one record when the writer is free.
	 */
	uint8_t *stage;
	uint32_t stage_len;
	uint32_t stage_calls; /* each reserved REC_COST */
	uint16_t stage_app;
	bool nfd_signalled;
	uint64_t tx_off; /* next offset to assign */
	uint64_t tx_acked; /* peer has everything below */
	uint64_t tx_sent; /* end of what was written at least once */
	uint64_t tx_flight; /* end of what is in flight since the last rewind */
	uint64_t tx_limit; /* peer's credit */
	uint64_t tx_buffered; /* payload bytes held, REC_COST per record */
	uint64_t tx_seq; /* next record number to assign */
	uint64_t tx_rec_limit; /* peer's record credit */
	uint32_t epoch;
	uint64_t retry_off;
	int retries;
	int64_t progress_ms;
	XXH3_state_t *tx_hash; /* over the records sealed so far */
	bool tx_end_req, tx_end_sealed, tx_end_acked;
	uint64_t tx_end_hash;
	bool peer_confirming; /* the peer read our stream to its end */
	int64_t end_next;

	struct rxrec *rx_head, *rx_tail;
	uint64_t rx_off; /* next expected offset */
	uint64_t rx_freed; /* bytes taken out of the queue */
	uint64_t rx_delivered; /* bytes copied to the application */
	uint64_t rx_ack_sent, rx_limit_sent;
	uint64_t rx_nrec; /* records queued */
	uint64_t rx_seq; /* records accepted in order */
	uint64_t rx_recs_freed; /* records taken by the application */
	uint64_t rx_rec_limit_sent;
	size_t rx_copied; /* bytes of copied records (payload and header) */
	bool rx_in_msg; /* recv_msg copied part of a message */
	XXH3_state_t *rx_hash;
	bool rx_end, rx_eof, rx_confirmed, closing;
	uint64_t rx_end_total, rx_end_hash;
	uint64_t nack_off;
	uint32_t nack_epoch;
	int64_t nack_ms, ack_due;
	int64_t last_rx, last_tx;
	bool endack_due, bye_sent, bye_rcvd, peer_gone;
	int64_t drain_until; /* after a failure: read until then or EOF */
	enum read_owner rd_owner; /* who reads (caller_reads) */
	bool rd_in_read; /* it is in read(2) or about to be */
	bool rd_yielded; /* the reader thread handed the reads over */
	unsigned int rd_want; /* receivers waiting to read themselves */
	pthread_t rd_caller; /* the receiver that reads, if RD_CALLER */
	int64_t rd_deadline; /* its time-out (ms, < 0: none) */
	int64_t rd_free_ms; /* when the reads were last given up */
	uint64_t rd_receiver_reads; /* reads made by receivers (tests) */
	/* end of protected by lock */

	struct rxblk *blk; /* being read into; protected by lock: refs */
	size_t rxstart, rxlen; /* undecoded bytes of blk */
	size_t rd_size; /* how much the next read asks for */
	unsigned int eio_run;
	unsigned int rx_blocks; /* blocks alive; protected by lock */
	struct rxblk *blk_free; /* blocks to use again; protected by lock */
	unsigned int blk_free_n;
	pthread_mutex_t pool_lock; /* protects the two below */
	struct txrec *pool[POOL_CLASSES];
	uint64_t pool_bytes;

	uint8_t ctl[CTL_CAP]; /* protected by lock, see above */
	size_t ctl_len, ctl_pos;
	enum write_kind wr;
	size_t wr_pos, wr_total; /* of the batch being written */
	int wr_n; /* DATA records in it */
	struct txrec *wr_rec[WR_BATCH];
};

#pragma GCC visibility push(hidden) /* not exported by the library */

int64_t tbs_session_now_ms(void);
void tbs_session_fail(struct tbs_session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tbs_session_wake(struct tbs_session *s);
void *tbs_session_io_main(void *arg);
void *tbs_session_read_main(void *arg);
void tbs_session_timers(struct tbs_session *s, int64_t now);
void tbs_session_rx_process(struct tbs_session *s, int64_t now);
void tbs_session_on_eof(struct tbs_session *s, int err);
void tbs_session_ack_check(struct tbs_session *s, int64_t now);
void tbs_session_free_acked(struct tbs_session *s);
bool tbs_session_write(struct tbs_session *s, bool data);
void tbs_session_kick(struct tbs_session *s, bool data);
bool tbs_session_rx_verified(struct tbs_session *s);
void tbs_session_chain(XXH3_state_t *st, uint64_t pcsum, uint32_t len,
		       uint16_t app, uint8_t flags);
void tbs_session_notify(struct tbs_session *s);
void tbs_session_rx_changed(struct tbs_session *s);
bool tbs_session_stage_flush(struct tbs_session *s);
uint64_t tbs_session_credit(struct tbs_session *s);
uint64_t tbs_session_rec_credit(struct tbs_session *s);
void tbs_session_rxrec_free(struct tbs_session *s, struct rxrec *r);
void tbs_session_budget_load(struct tbs_session *s);
void tbs_session_budget_save(struct tbs_session *s, bool answered);
struct txrec *tbs_session_txrec_alloc(struct tbs_session *s, size_t len);
void tbs_session_txrec_put(struct tbs_session *s, struct txrec *t);
void tbs_session_pool_free(struct tbs_session *s);
struct rxblk *tbs_session_blk_new(struct tbs_session *s);
void tbs_session_blk_put(struct tbs_session *s, struct rxblk *b);
void tbs_session_blk_pool_free(struct tbs_session *s);
int tbs_session_caller_read(struct tbs_session *s, int64_t deadline,
			    bool *want);
void tbs_session_need_reader(struct tbs_session *s);
void tbs_session_rd_kick(struct tbs_session *s);
void tbs_session_rd_timers(struct tbs_session *s, int64_t now);
int tbs_session_rd_signal_init(int sig);

#pragma GCC visibility pop

#endif /* TBS_SESSION_INT_H */
