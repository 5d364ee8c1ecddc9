/* SPDX-License-Identifier: MIT */
/*
 * tbstream forward: the state of the multiplexer and its connections,
 * shared by forward-mux.c (the session side) and forward-conn.c (the
 * socket side).  One thread touches all of it: no locks.
 *
 * A connection's life, on the side that listens (L) and the side that
 * connects (C):
 *
 *	L: accept a client, OPEN ->		C: OPEN: connect or run CMD
 *	   (DATA may follow within credit)	   -> ACCEPT, or -> REFUSE
 *	both: DATA within the peer's credit, CREDIT as bytes are written
 *	   out, SHUT after a local end of file, shutdown(SHUT_WR) after the
 *	   peer's SHUT once its bytes are written
 *	C: both ways shut and written: close, -> CLOSE, forget the id
 *	L: forgets the id on CLOSE, REFUSE or C's RESET (and once its client
 *	   socket is done): the slot at C is free again only then
 *	either: a socket error: reset the socket, -> RESET (C forgets at
 *	   once; C answers L's RESET with CLOSE)
 */
#ifndef TBS_FORWARD_MUX_H
#define TBS_FORWARD_MUX_H

#include "forward.h"
#include "progress.h"

/* Control messages a connection still has to send, in this order. */
enum {
	CTL_OPEN = 1 << 0,
	CTL_ACCEPT = 1 << 1,
	CTL_CREDIT = 1 << 2,
	CTL_SHUT = 1 << 3, /* after any pending data */
	CTL_REFUSE = 1 << 4, /* ends the connection (C) */
	CTL_RESET = 1 << 5, /* ends it (C) or waits for CLOSE (L) */
	CTL_CLOSE = 1 << 6, /* ends it (C) */
};

/* Bytes from the peer not yet written to the socket. */
struct ring {
	uint8_t *buf; /* allocated on first use, window bytes */
	uint32_t cap, head, len;
};

struct conn {
	uint32_t id;
	int fd; /* -1 once closed here */
	pid_t pid; /* the command run for it, 0 if none */
	int ai; /* C: the address being tried */
	int64_t deadline; /* C: end of the connect time-out */
	bool connecting; /* C: connect in progress */
	bool accepted; /* L: ACCEPT came; C: connected */
	bool peer_slot; /* L: the slot at C is held (until CLOSE) */
	bool local_done; /* the socket is closed, nothing more to do here */
	bool dead; /* freed at the end of the loop's pass */

	/* toward the peer */
	uint32_t tx_credit; /* bytes the peer still takes */
	bool rd_eof; /* the socket ended: SHUT once pending data is out */
	bool shut_sent;
	uint8_t *pend; /* a DATA message the session had no room for */
	uint32_t pend_len;

	/* from the peer */
	struct ring rx;
	uint32_t rx_avail; /* bytes the peer may still send */
	uint32_t consumed; /* written out since the last CREDIT */
	bool shut_rcvd, wr_shut;

	unsigned int ctl; /* CTL_* */
	int32_t err; /* positive errno of REFUSE or RESET */
	char why[FWD_TEXT_MAX + 1]; /* REFUSE text */

	uint32_t ev; /* epoll events registered, 0: not registered */
	char origin[FWD_TEXT_MAX + 1]; /* from the peer on the connecting side */
	uint64_t bytes_out, bytes_in;
	int64_t start_ms;
};

struct fwd_mux {
	const struct fwd_conf *conf;
	int ep; /* epoll */
	int listen_fd;
	bool listening; /* listen_fd is in the epoll set */
	int64_t accept_again; /* accepting paused until then (ms); 0: not */

	struct tbs_session *s;
	int sfd; /* the session's readiness descriptor */
	bool hello_rcvd;
	struct fwd_hello peer;
	bool tx_blocked; /* the session's window is full */
	bool failed; /* the session ended: tear down */
	char why[300];

	struct conn **conns; /* unordered, nconns of them */
	uint32_t nconns, cap;
	uint32_t live; /* connections not dead */
	uint32_t rr; /* where the next round of sending starts */
	bool want_send; /* some connection has something to send */
	uint32_t peer_slots; /* L: connections the peer holds for us */
	uint32_t next_id; /* L: the next id to give; C: the last seen */

	uint8_t *txbuf, *rxbuf; /* one message each */
	struct fwd_stats st;
};

/* forward-conn.c */
struct conn *conn_new(struct fwd_mux *m, uint32_t id, int fd);
void conn_free(struct fwd_mux *m, struct conn *c);
struct conn *conn_find(struct fwd_mux *m, uint32_t id);
void conn_update(struct fwd_mux *m, struct conn *c);
void conn_want_send(struct fwd_mux *m, struct conn *c);
void conn_close_local(struct fwd_mux *m, struct conn *c, bool reset);
void conn_fail_local(struct fwd_mux *m, struct conn *c, int err);
int conn_take_data(struct fwd_mux *m, struct conn *c, const uint8_t *d,
		   size_t n);
void conn_on_event(struct fwd_mux *m, struct conn *c, uint32_t ev);
void conn_log_end(struct fwd_mux *m, struct conn *c, const char *how);
void conn_check_done(struct fwd_mux *m, struct conn *c);
void conn_peer_shut(struct fwd_mux *m, struct conn *c);
void conn_peer_flush(struct fwd_mux *m, struct conn *c);

/* forward-mux.c */
void mux_send_pending(struct fwd_mux *m);
void mux_connected(struct fwd_mux *m, struct conn *c);

#endif
