/* SPDX-License-Identifier: MIT */
/*
 * The link of a media element to its peer: bring the stream up, open its
 * device (or, over IP over Thunderbolt, meet the peer on the interface),
 * start a session, and do it again after the session ended (the
 * peer restarted, the cable was unplugged), until the element stops.
 * Uses only the public API of libtbstream; knows nothing of GStreamer.
 *
 * Threads: tbs_link_connect(), tbs_link_close() and tbs_link_finish() are
 * called by the one thread that owns the link's sessions;
 * tbs_link_interrupt() and tbs_link_abort() by any other, at any time.
 */
#ifndef TBS_MEDIA_LINK_H
#define TBS_MEDIA_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tbstream.h"

/**
 * struct tbs_link_cfg - what a link connects to
 * @root:       system root ("/" on a real machine)
 * @stream:     stream name
 * @peer:       the peer (tbs_peer_find() spec), NULL for the only one
 * @fd:         >= 0: run sessions on this descriptor instead (no bring-up)
 * @timeout_ms: how long to wait for the peer before failing; 0 for ever
 * @window:     the session's window, 0 for the default
 * @role:       TBS_ROLE_SENDER or TBS_ROLE_RECEIVER
 * @transport:  an enum tbs_transport: the stream, IP over Thunderbolt, or
 *              the stream when both hosts have its driver (auto, 0)
 */
struct tbs_link_cfg {
	const char *root;
	const char *stream;
	const char *peer;
	int fd;
	int timeout_ms;
	size_t window;
	int role;
	int transport;
};

/* Called with what the link is waiting for, each time that changes. */
typedef void (*tbs_link_notify_fn)(void *arg, const char *msg);

struct tbs_link {
	struct tbs_link_cfg cfg; /* the strings are copies */
	tbs_link_notify_fn notify;
	void *arg;

	pthread_mutex_t lock; /* protects the fields below it */
	bool interrupted; /* connect and waits return -ECANCELED */
	bool aborted; /* also end an established session */
	struct tbs_session *s; /* the session starting or running */
	bool established; /* s completed its handshake */
	bool inside; /* the owner is inside one of s's messages */
	bool closing; /* the owner runs tbs_session_close() on s */
	int wake; /* eventfd: readable while interrupted */

	/* Owned by the connecting thread. */
	struct tbs_stream st;
	struct tbs_endpoint ep;
	bool up; /* st is brought up */
	int used; /* the transport chosen, 0 until then */
	struct tbs_net *net; /* over the network: the interface in use */
	bool created; /* this link brought it up: take it down at the end */
	bool fd_spent; /* fd mode: a session failed on the descriptor */
	char waiting[TBS_MSG_MAX]; /* the last message given to notify */
	int64_t wait_since; /* when this connect began, ms */
	struct tbs_error err; /* why connect failed */
};

int tbs_link_init(struct tbs_link *l, const struct tbs_link_cfg *cfg,
		  tbs_link_notify_fn notify, void *arg);
/* Ends the session, closes the device, takes down a stream it brought up. */
void tbs_link_destroy(struct tbs_link *l);

/*
 * Waits for the peer and starts a session with it: 0 and *@sp; -ECANCELED
 * after tbs_link_interrupt(); another negative errno (l->err says why) when
 * the time-out passed or the failure is one that waiting cannot cure.
 */
int tbs_link_connect(struct tbs_link *l, struct tbs_session **sp);

/* Frees the session that ended and closes the device; the stream stays up. */
void tbs_link_close(struct tbs_link *l);

/*
 * Ends the session in order (tbs_session_close(): everything sent was
 * confirmed), then as tbs_link_close().  An interruption, before or
 * while the close waits for the peer, aborts the session: the element
 * stops at once instead of within the confirm time-out.  Return: 0,
 * -ECANCELED when interrupted, or the session's error.
 */
int tbs_link_finish(struct tbs_link *l);

/*
 * Wakes the owner: tbs_link_connect() returns -ECANCELED, a session that
 * is starting or closing is aborted, and tbs_link_wake_fd() becomes
 * readable.  An established session goes on, unless the owner is inside
 * one of its messages (tbs_link_inside()).  tbs_link_resume() undoes it.
 */
void tbs_link_interrupt(struct tbs_link *l);
/* As tbs_link_interrupt(), and aborts an established session too. */
void tbs_link_abort(struct tbs_link *l);
void tbs_link_resume(struct tbs_link *l);
/*
 * The owner says it began (@inside) or left one of the session's messages.
 * Inside a message the owner waits for the rest of it as long as the peer
 * is alive, and a message half read cannot be resumed: so an interruption
 * that comes then, or came before, aborts the session.
 */
void tbs_link_inside(struct tbs_link *l, bool inside);
/* Ends the running session because the peer broke the media format. */
void tbs_link_refuse(struct tbs_link *l, const char *msg);
bool tbs_link_interrupted(struct tbs_link *l);
/* Readable while interrupted: poll it beside the session's descriptor. */
int tbs_link_wake_fd(struct tbs_link *l);

#endif
