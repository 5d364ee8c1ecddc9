// SPDX-License-Identifier: MIT
/*
 * The link of a media element to its peer (link.h).
 *
 * Every wait is bounded by a short slice and by the wake descriptor, so
 * that an element that stops is never held by a peer that does not come:
 * the bring-up and the open are retried in slices of SLICE_MS (each call
 * does the whole job; a retry only continues it), and a session that is
 * starting, or whose message the owner is reading, is aborted from the
 * interrupting thread (a peer that sent half a message and then only its
 * keep-alives would hold the owner for ever).  Failures that waiting
 * cures (no peer yet, the stream in use by a process that is ending, the
 * peer's end not open) are retried until the time-out; the others (a bad
 * name, several peers, a peer of another protocol) end the link at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <glib.h>

#include "link.h"
#include "media-wire.h"

#define SLICE_MS 500 /* longest blocking call while connecting */
#define PAUSE_MS 200 /* between attempts that failed at once */
#define HANDSHAKE_MS 30000 /* one session's handshake, without a time-out */
#define NOTICE_MS 2000 /* say what the link waits for only after this */

/* The monotonic clock in milliseconds: GLib's, as the elements use. */
static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int tbs_link_init(struct tbs_link *l, const struct tbs_link_cfg *cfg,
		  tbs_link_notify_fn notify, void *arg)
{
	memset(l, 0, sizeof(*l));
	l->cfg = *cfg;
	l->cfg.root = strdup(cfg->root ? cfg->root : "/");
	l->cfg.stream = strdup(cfg->stream ? cfg->stream : "cam");
	l->cfg.peer = dup_or_null(cfg->peer);
	l->notify = notify;
	l->arg = arg;
	l->ep.rfd = l->ep.wfd = -1;
	l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!l->cfg.root || !l->cfg.stream || (cfg->peer && !l->cfg.peer) ||
	    l->wake < 0) {
		tbs_link_destroy(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->lock, NULL);
	return 0;
}

static void take_down(struct tbs_link *l)
{
	struct tbs_error e = { 0 };

	if (!l->created)
		return;
	if (tbs_stream_down(l->cfg.root, &l->st, false, &e) && l->notify)
		l->notify(l->arg, e.msg);
	l->created = false;
	l->up = false;
}

void tbs_link_destroy(struct tbs_link *l)
{
	if (l->cfg.stream) {
		tbs_link_close(l);
		take_down(l);
		tbs_net_free(l->net);
		pthread_mutex_destroy(&l->lock);
	}
	if (l->wake > 0)
		close(l->wake);
	free((char *)l->cfg.root);
	free((char *)l->cfg.stream);
	free((char *)l->cfg.peer);
	memset(l, 0, sizeof(*l));
}

/* Unpublishes the session (out of the interrupting thread's reach). */
static struct tbs_session *unpublish(struct tbs_link *l)
{
	struct tbs_session *s;

	pthread_mutex_lock(&l->lock);
	s = l->s;
	l->s = NULL;
	l->established = false;
	l->inside = false;
	l->closing = false;
	pthread_mutex_unlock(&l->lock);
	return s;
}

void tbs_link_close(struct tbs_link *l)
{
	tbs_session_free(unpublish(l));
	tbs_endpoint_close(&l->ep);
}

/*
 * The close may wait for the peer up to the session's confirm time-out;
 * an interruption cuts it short (tbs_session_abort() from the
 * interrupting thread, which the close survives).
 */
int tbs_link_finish(struct tbs_link *l)
{
	bool close;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	if (l->s && l->interrupted)
		r = -ECANCELED;
	close = l->closing = l->s && !r;
	pthread_mutex_unlock(&l->lock);
	if (close)
		r = tbs_session_close(l->s);
	tbs_link_close(l);
	return r;
}

static void wake_set(struct tbs_link *l)
{
	uint64_t one = 1;

	if (write(l->wake, &one, sizeof(one)) < 0)
		return; /* already readable */
}

static void interrupt(struct tbs_link *l, bool all)
{
	pthread_mutex_lock(&l->lock);
	l->interrupted = true;
	l->aborted |= all;
	if (l->s && (all || !l->established || l->inside || l->closing))
		tbs_session_abort(l->s, -ECANCELED, "the element stopped");
	pthread_mutex_unlock(&l->lock);
	wake_set(l);
}

void tbs_link_inside(struct tbs_link *l, bool inside)
{
	pthread_mutex_lock(&l->lock);
	l->inside = inside && l->s;
	if (l->inside && l->interrupted)
		tbs_session_abort(l->s, -ECANCELED, "the element stopped");
	pthread_mutex_unlock(&l->lock);
}

void tbs_link_interrupt(struct tbs_link *l)
{
	interrupt(l, false);
}

void tbs_link_abort(struct tbs_link *l)
{
	interrupt(l, true);
}

void tbs_link_refuse(struct tbs_link *l, const char *msg)
{
	pthread_mutex_lock(&l->lock);
	if (l->s)
		tbs_session_abort(l->s, -EPROTO, msg);
	pthread_mutex_unlock(&l->lock);
}

void tbs_link_resume(struct tbs_link *l)
{
	uint64_t v;

	pthread_mutex_lock(&l->lock);
	l->interrupted = false;
	l->aborted = false;
	if (read(l->wake, &v, sizeof(v)) < 0)
		v = 0; /* was not readable */
	pthread_mutex_unlock(&l->lock);
}

bool tbs_link_interrupted(struct tbs_link *l)
{
	bool r;

	pthread_mutex_lock(&l->lock);
	r = l->interrupted;
	pthread_mutex_unlock(&l->lock);
	return r;
}

int tbs_link_wake_fd(struct tbs_link *l)
{
	return l->wake;
}

/*
 * Tells the owner what the link waits for, once per new reason, once it
 * has waited a moment (a peer that is there answers before that).
 */
static void waiting(struct tbs_link *l, const char *msg)
{
	if (now_ms() - l->wait_since < NOTICE_MS || !strcmp(l->waiting, msg))
		return;
	snprintf(l->waiting, sizeof(l->waiting), "%s", msg);
	if (l->notify)
		l->notify(l->arg, msg);
}

/* Waits up to @ms for an interruption: -ECANCELED when it came. */
static int pause_ms(struct tbs_link *l, int ms)
{
	struct pollfd p = { .fd = l->wake, .events = POLLIN };

	if (poll(&p, 1, ms) > 0 || tbs_link_interrupted(l))
		return -ECANCELED;
	return 0;
}

/* Milliseconds left before @deadline (0: none), at most @cap. */
static int slice(int64_t deadline, int cap)
{
	int64_t left;

	if (!deadline)
		return cap;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left < cap ? (int)left : cap;
}

/* Whether waiting may cure a failure of the bring-up or the open. */
static bool transient(int r)
{
	return r == -ETIMEDOUT || r == -ENODEV || r == -EBUSY ||
	       r == -ENOMEM || r == -ENOENT || r == -ENXIO || r == -EAGAIN ||
	       r == -ENOSPC;
}

/* The bring-up's options: a slice, ended early by an interruption. */
static void up_opts(struct tbs_link *l, struct tbs_up_opts *o, int ms)
{
	*o = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = ms, .cancel_fd = l->wake);
}

/*
 * The transport, once: as asked, or the automatic choice once a host is
 * connected (until then the stream's bring-up says what is missing).
 */
static void choose(struct tbs_link *l)
{
	struct tbs_offer o;
	char msg[TBS_MSG_MAX];
	int r;

	if (l->used)
		return;
	if (l->cfg.transport != TBS_TRANSPORT_AUTO) {
		l->used = l->cfg.transport;
		return;
	}
	r = tbs_transport_choose(l->cfg.root, l->cfg.peer, TBS_TRANSPORT_AUTO,
				 &o, NULL);
	if (r <= 0)
		return;
	l->used = r;
	if (r == TBS_TRANSPORT_NET)
		snprintf(msg, sizeof(msg),
			 "transport: IP over Thunderbolt on '%s' (%s)",
			 o.ifname, o.why);
	else
		snprintf(msg, sizeof(msg), "transport: USB4STREAM (%s)", o.why);
	if (l->notify)
		l->notify(l->arg, msg);
}

/*
 * One slice over the network: the interface (brought up if it is down,
 * and down again by tbs_link_destroy()), then the peer met on it.  The
 * interface keeps the time-out of its first slice for every meeting.
 */
static int open_net(struct tbs_link *l)
{
	struct tbs_net_opts o = TBS_OPTS_INIT(tbs_net_opts,
					      .timeout_ms = SLICE_MS,
					      .cancel_fd = l->wake,
					      .flags = TBS_NET_IFUP);
	int r;

	if (!l->net) {
		r = tbs_net_up(l->cfg.root, l->cfg.peer, &o, &l->net, &l->err);
		if (r < 0)
			return r;
	}
	return tbs_net_open(l->net, l->cfg.stream, &l->ep, &l->err);
}

/* One slice of bring-up and open: 0 when the device is open. */
static int open_slice(struct tbs_link *l, int ms)
{
	struct tbs_up_opts o;
	int r;

	choose(l);
	if (l->used == TBS_TRANSPORT_NET)
		return open_net(l);
	if (!l->up) {
		up_opts(l, &o, ms);
		r = tbs_stream_up(l->cfg.root, l->cfg.peer, l->cfg.stream, &o,
				  &l->st, &l->err);
		if (r < 0)
			return r;
		l->created |= r == 1;
		l->up = true;
	}
	r = tbs_endpoint_open(l->cfg.root, &l->st, ms, 0, &l->ep, &l->err);
	if (r == -ENOENT || r == -EINVAL)
		l->up = false; /* removed, or its HopIDs are gone: again */
	return r == -EINVAL ? -EAGAIN : r;
}

static void session_opts(struct tbs_link *l, struct tbs_session_opts *o,
			 int handshake_ms)
{
	*o = TBS_OPTS_INIT(tbs_session_opts, .role = l->cfg.role,
			   .id = TBS_MEDIA_ID, .id_len = strlen(TBS_MEDIA_ID),
			   .window = l->cfg.window,
			   .handshake_ms = handshake_ms);
}

/* Refuses a peer that runs another engine on the same stream name. */
static int check_peer(struct tbs_link *l, struct tbs_session *s)
{
	char id[TBS_SESSION_MAX_ID + 1] = { 0 };
	int n = tbs_session_peer_id(s, id, TBS_SESSION_MAX_ID);
	size_t i;

	if (n == (int)strlen(TBS_MEDIA_ID) && !memcmp(id, TBS_MEDIA_ID, n))
		return 0;
	for (i = 0; i < (size_t)(n > 0 ? n : 0); i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			id[i] = '?';
	tbs_session_abort(s, -EPROTO, "the peer is not a tbstream media element");
	snprintf(l->err.msg, sizeof(l->err.msg),
		 "the peer on stream '%s' is not a tbstream media element (it runs '%s'): is another command using that stream name?",
		 l->cfg.stream, id);
	return l->err.code = -EPROTO;
}

/* Starts a session on @rfd/@wfd, abortable by the interrupting thread. */
static int start_session(struct tbs_link *l, int rfd, int wfd, int hs_ms,
			 struct tbs_session **sp)
{
	struct tbs_session_opts o;
	struct tbs_session *s;
	int r;

	session_opts(l, &o, hs_ms);
	r = tbs_session_new(&s, rfd, wfd, &o);
	if (r)
		return r;
	pthread_mutex_lock(&l->lock);
	l->s = s;
	if (l->interrupted)
		tbs_session_abort(s, -ECANCELED, "the element stopped");
	pthread_mutex_unlock(&l->lock);
	r = tbs_session_start(s);
	if (r) {
		snprintf(l->err.msg, sizeof(l->err.msg), "%s",
			 tbs_session_error(s));
		l->err.code = r;
	} else {
		r = check_peer(l, s);
	}
	if (r) {
		tbs_session_free(unpublish(l));
		return r;
	}
	pthread_mutex_lock(&l->lock);
	l->established = true;
	pthread_mutex_unlock(&l->lock);
	*sp = s;
	return 0;
}

/* Failures of a handshake that no retry cures. */
static bool fatal_session(int r)
{
	return r == -EPROTONOSUPPORT || r == -EINVAL || r == -EPROTO;
}

static int connect_fd(struct tbs_link *l, struct tbs_session **sp)
{
	int r;

	if (l->fd_spent) {
		snprintf(l->err.msg, sizeof(l->err.msg),
			 "the session on descriptor %d ended and the peer did not start another",
			 l->cfg.fd);
		return l->err.code = -ECONNRESET;
	}
	r = start_session(l, l->cfg.fd, l->cfg.fd,
			  l->cfg.timeout_ms ? l->cfg.timeout_ms : HANDSHAKE_MS,
			  sp);
	if (r && tbs_link_interrupted(l))
		return -ECANCELED;
	l->fd_spent = r != 0;
	return r;
}

/* Once the device is open: a session, or why not. */
static int connect_session(struct tbs_link *l, int64_t deadline,
			   struct tbs_session **sp)
{
	int ms = deadline ? slice(deadline, INT32_MAX) : HANDSHAKE_MS;
	int r;

	waiting(l, "waiting for the peer's element to answer");
	r = start_session(l, l->ep.rfd, l->ep.wfd, ms > 0 ? ms : 1, sp);
	if (r)
		tbs_endpoint_close(&l->ep);
	return r;
}

/* A slice ran out: says what the whole wait is for, not the slice. */
static const char *slice_msg(struct tbs_link *l)
{
	snprintf(l->err.msg, sizeof(l->err.msg),
		 "no peer has set up stream '%s': is a %s running on the other host, on that stream?",
		 l->cfg.stream,
		 l->cfg.role == TBS_ROLE_SENDER ? "tbstreamsrc (tbstream cam recv)" :
						  "tbstreamsink (tbstream cam send)");
	return l->err.msg;
}

int tbs_link_connect(struct tbs_link *l, struct tbs_session **sp)
{
	int64_t deadline = l->cfg.timeout_ms ? now_ms() + l->cfg.timeout_ms :
					       0;
	int64_t t0;
	int r;

	l->wait_since = now_ms();
	if (l->cfg.fd >= 0)
		return connect_fd(l, sp);
	for (;;) {
		if (tbs_link_interrupted(l))
			return -ECANCELED;
		t0 = now_ms();
		r = open_slice(l, slice(deadline, SLICE_MS));
		if (r && !transient(r) && !tbs_link_interrupted(l))
			return r;
		if (!r) {
			r = connect_session(l, deadline, sp);
			if (!r) {
				l->waiting[0] = '\0';
				return 0;
			}
			if (fatal_session(r) && !tbs_link_interrupted(l))
				return r;
		}
		if (tbs_link_interrupted(l))
			return -ECANCELED;
		if (r == -ETIMEDOUT)
			slice_msg(l);
		if (deadline && now_ms() >= deadline)
			return r;
		waiting(l, l->err.msg);
		if (now_ms() - t0 < PAUSE_MS &&
		    pause_ms(l, slice(deadline, PAUSE_MS)))
			return -ECANCELED;
	}
}
