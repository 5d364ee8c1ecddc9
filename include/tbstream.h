/* SPDX-License-Identifier: MIT */
/*
 * libtbstream: USB4STREAM streams between two hosts, without manual set-up.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure, unless its comment says otherwise.  The library keeps no global
 * state; every call that touches the system takes the system root ("/" on a
 * real machine, a tbsim host directory in tests).
 */
#ifndef TBSTREAM_H
#define TBSTREAM_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * tbs_version() - the library's version
 *
 * Return: a static string such as "0.1.0".
 */
const char *tbs_version(void);

/* --- session --- */
/*
 * The session protocol (docs/PROTOCOL.md) over a pair of file descriptors
 * that behave like /dev/tbstreamX: a handshake that survives lost early
 * frames, checked records, retransmission, and an end-to-end confirmation of
 * each direction.  Each session owns one internal I/O thread; the calls below
 * are thread-safe in this sense: one thread may send (tbs_session_send,
 * tbs_session_finish) while another receives (tbs_session_recv,
 * tbs_session_confirm); each of the two groups must be used by one thread at
 * a time.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TBS_SESSION_MAX_RECORD (256 * 1024) /* largest record payload */
#define TBS_SESSION_MAX_ID 64 /* longest transfer identity */

enum tbs_session_role {
	TBS_ROLE_DUPLEX = 0, /* both directions may carry data */
	TBS_ROLE_SENDER = 1, /* refuses a peer that is also a sender */
	TBS_ROLE_RECEIVER = 2, /* refuses a peer that is also a receiver */
};

/**
 * struct tbs_session_opts - how a session behaves; zero means the default
 * @role: an enum tbs_session_role
 * @id: transfer identity given to the peer (opaque, may be NULL)
 * @id_len: its length, at most TBS_SESSION_MAX_ID
 * @options: option bits offered to the peer; the intersection is agreed
 * @handshake_ms: how long to wait for the peer's answer (30000)
 * @idle_ms: silence after which the peer is declared gone (10000)
 * @rto_ms: retransmission time-out without acknowledgement (1000)
 * @confirm_ms: how long to wait for the peer to confirm an END (60000)
 * @max_retries: retransmissions of one offset before giving up (8)
 * @window: bytes of unacknowledged data kept for retransmission, and bytes
 *	    of received data buffered for tbs_session_recv (4 MiB, at least
 *	    512 KiB)
 */
struct tbs_session_opts {
	int role;
	const void *id;
	size_t id_len;
	uint32_t options;
	int handshake_ms;
	int idle_ms;
	int rto_ms;
	int confirm_ms;
	int max_retries;
	size_t window;
};

/**
 * struct tbs_session_stats - counters of one session
 */
struct tbs_session_stats {
	uint64_t bytes_sent; /* payload bytes given to tbs_session_send */
	uint64_t bytes_acked; /* of those, acknowledged by the peer */
	uint64_t bytes_received; /* payload bytes received in order */
	uint64_t records_sent; /* data records written, retransmits included */
	uint64_t records_received; /* valid records of every type */
	uint64_t retransmits; /* go-back-N restarts */
	uint64_t bad_records; /* records with a wrong payload checksum */
	uint64_t garbage_bytes; /* bytes skipped while resynchronising */
	uint64_t nacks_sent;
};

struct tbs_session;

/**
 * tbs_session_new() - allocate a session over two file descriptors
 * @sp: where to store the session
 * @rfd: descriptor to read from
 * @wfd: descriptor to write to (may equal @rfd)
 * @opts: options, or NULL for the defaults
 *
 * Nothing is sent yet.  The descriptors are switched to O_NONBLOCK; they
 * stay owned by the caller and must outlive the session.
 *
 * Return: 0, -EINVAL for bad options, -ENOMEM.
 */
int tbs_session_new(struct tbs_session **sp, int rfd, int wfd,
		    const struct tbs_session_opts *opts);

/**
 * tbs_session_free() - stop the I/O thread and free the session
 * @s: session, may be NULL
 *
 * Does not wait for the peer: call tbs_session_close() first for an orderly
 * end.  Restores the descriptors' flags; does not close them.
 */
void tbs_session_free(struct tbs_session *s);

/**
 * tbs_session_start() - start the I/O thread and run the handshake
 * @s: session from tbs_session_new()
 *
 * Blocks until the peer answered and the versions, roles and options are
 * agreed, at most the handshake time-out.
 *
 * Return: 0; -ETIMEDOUT when the peer never answered, -EPROTONOSUPPORT for
 * an incompatible protocol version, -EPROTO when the peer speaks something
 * else, -EINVAL for incompatible roles, -ECONNRESET or -ENXIO when the
 * stream went away.  tbs_session_error() explains.
 */
int tbs_session_start(struct tbs_session *s);

/**
 * tbs_session_send() - queue one record for the peer
 * @s: started session
 * @type: application record type, passed through unchanged
 * @buf: payload
 * @len: payload length, 1 to TBS_SESSION_MAX_RECORD
 * @timeout_ms: how long to wait for room in the window; -1 waits as long as
 *		the peer is alive
 *
 * Copies the payload; returns when it is queued, not when it arrived.
 *
 * Return: @len; -EAGAIN when the window stayed full for @timeout_ms,
 * -EINVAL for an empty record, -EMSGSIZE for one larger than either side
 * accepts, -EPIPE after tbs_session_finish(), -EBUSY when another thread
 * is sending, or the session's error.
 */
ssize_t tbs_session_send(struct tbs_session *s, uint16_t type,
			 const void *buf, size_t len, int timeout_ms);

/**
 * tbs_session_recv() - take received data, in order
 * @s: started session
 * @type: where to store the record's application type (may be NULL)
 * @buf: destination
 * @len: its size; the rest of a longer record comes with the next calls
 * @timeout_ms: how long to wait for data; -1 waits as long as the peer is
 *		alive
 *
 * Return: bytes copied (> 0); 0 once the peer ended its stream and the
 * whole-stream hash matched; -EAGAIN on time-out; -EBADMSG on a hash
 * mismatch; or the session's error.
 */
ssize_t tbs_session_recv(struct tbs_session *s, uint16_t *type, void *buf,
			 size_t len, int timeout_ms);

/**
 * tbs_session_finish() - end the outgoing stream and wait for confirmation
 * @s: started session
 *
 * Sends END with the length and XXH3 hash of everything sent, then waits
 * until the peer confirmed it with tbs_session_confirm() (or its
 * tbs_session_close()), at most the confirm time-out.
 *
 * Return: 0 when the peer confirmed every byte; a negative errno otherwise.
 */
int tbs_session_finish(struct tbs_session *s);

/**
 * tbs_session_confirm() - confirm the peer's stream to the peer
 * @s: session on which tbs_session_recv() returned 0
 *
 * Call it once the data is durable; the peer's tbs_session_finish() returns
 * only then.
 *
 * Return: 0; -EINVAL when the end of the peer's stream was not yet received;
 * or the session's error.
 */
int tbs_session_confirm(struct tbs_session *s);

/**
 * tbs_session_close() - end the session in order
 * @s: started session
 *
 * Finishes the outgoing stream if that was not done, confirms the incoming
 * stream once it ended and was read completely, and exchanges BYE, so that
 * neither side closes while the other has data in flight.  Every step is
 * bounded by the session's time-outs.  Call tbs_session_free() afterwards.
 *
 * Return: 0 when both directions were confirmed; -EBUSY when the peer's data
 * was not read to its end; or the session's error.
 */
int tbs_session_close(struct tbs_session *s);

/**
 * tbs_session_error() - what went wrong
 * @s: session
 *
 * Return: a message naming the failure and the offset, such as "peer
 * vanished at offset 123456: nothing received for 10 s", or "" when there
 * was none.  Valid until tbs_session_free().
 */
const char *tbs_session_error(struct tbs_session *s);

/**
 * tbs_session_peer_id() - the transfer identity the peer announced
 * @s: started session
 * @buf: destination
 * @len: its size
 *
 * Return: the identity's length (it is truncated to @len), or -ENOTCONN
 * before the handshake.
 */
int tbs_session_peer_id(struct tbs_session *s, void *buf, size_t len);

/**
 * tbs_session_options() - option bits both sides offered
 * @s: started session
 *
 * Return: the agreed option bits (0 before the handshake).
 */
uint32_t tbs_session_options(struct tbs_session *s);

/**
 * tbs_session_get_stats() - copy the session's counters
 * @s: session
 * @st: destination
 */
void tbs_session_get_stats(struct tbs_session *s,
			   struct tbs_session_stats *st);
/* --- end session --- */

#ifdef __cplusplus
}
#endif

#endif /* TBSTREAM_H */
