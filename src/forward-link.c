// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the link to the peer, kept up for as long as the
 * command runs.  A thread brings the stream up (waiting for a peer as long
 * as it takes), opens it, and runs the session's handshake; the
 * multiplexer takes the session and gives it back when it ended (cable
 * unplugged, peer restarted or stopped, protocol broken), and the thread
 * starts again at once.
 *
 * Over the network transport the thread meets the peer on the interface
 * (tbs_net_open()) a try at a time instead, again after every session;
 * the job brought the interface up and takes it down at the end.
 *
 * The handshake waits without a time-out of its own: a side that has spent
 * its HELLOs toward a closed peer (PROTOCOL.md, 3.1) keeps listening, and
 * the peer, opening second, always gets through.  After a failure that
 * came quickly the thread waits a little before the next try (100 ms,
 * doubling up to 1 s), so a peer that fails at once costs no busy loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "forward.h"

#define TRY_MS 2000 /* one try at bringing the stream up or opening it */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define HANDSHAKE_MS (24 * 3600 * 1000)
#define CONFIRM_MS 5000

struct fwd_link {
	struct fwd_link_conf c;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int evfd;
	/* protected by lock */
	bool stop;
	struct tbs_session *starting; /* in its handshake */
	struct tbs_session *ready; /* started, not taken yet */
	struct tbs_session *cur; /* taken by the multiplexer */
	char last[TBS_MSG_MAX]; /* the last problem logged */
	/* the thread's own */
	struct tbs_endpoint ep;
	struct tbs_stream st;
	struct tbs_net *net; /* over the network: the interface in use */
	bool created; /* a try made the stream again */
	int backoff_ms;
};

/* Logs a problem once, not at every try. */
static void note(struct fwd_link *l, const char *event, const char *msg)
{
	pthread_mutex_lock(&l->lock);
	if (strcmp(l->last, msg)) {
		snprintf(l->last, sizeof(l->last), "%s", msg);
		fwd_log(l->c.log, event, "%s", msg);
	}
	pthread_mutex_unlock(&l->lock);
}

static bool stopping(struct fwd_link *l)
{
	bool s;

	pthread_mutex_lock(&l->lock);
	s = l->stop;
	pthread_mutex_unlock(&l->lock);
	return s;
}

/* Waits @ms or until stopped. */
static void pause_ms(struct fwd_link *l, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->lock);
	if (!l->stop)
		pthread_cond_timedwait(&l->cv, &l->lock, &ts);
	pthread_mutex_unlock(&l->lock);
}

/* One try over the network: the interface, then the peer on it. */
static int open_net(struct fwd_link *l, struct tbs_error *e)
{
	struct tbs_net_opts o = TBS_OPTS_INIT(tbs_net_opts,
					      .timeout_ms = TRY_MS);
	int r;

	if (!l->net) {
		r = tbs_net_up(l->c.root, l->c.peer, &o, &l->net, e);
		if (r < 0)
			return r;
	}
	return tbs_net_open(l->net, l->c.name, &l->ep, e);
}

/* One try over the stream: bring it up, open its device. */
static int open_dev(struct fwd_link *l, struct tbs_error *e)
{
	struct tbs_up_opts up = l->c.up;
	int r;

	up.timeout_ms = TRY_MS;
	r = tbs_stream_up(l->c.root, l->c.peer, l->c.name, &up, &l->st, e);
	if (r > 0)
		l->created = true;
	if (r >= 0)
		r = tbs_endpoint_open(l->c.root, &l->st, TRY_MS, 0, &l->ep, e);
	return r;
}

/*
 * Opens the stream, a try at a time (each at least TRY_MS apart); 0, or
 * -ECANCELED when stopped.
 */
static int open_stream(struct fwd_link *l)
{
	struct tbs_error e = { 0 };
	int64_t t0;
	int r;

	for (;;) {
		if (stopping(l))
			return -ECANCELED;
		t0 = cli_now_ms();
		r = l->c.transport == TBS_TRANSPORT_NET ? open_net(l, &e) :
							  open_dev(l, &e);
		if (!r)
			return 0;
		note(l, "wait", e.msg);
		if (cli_now_ms() - t0 < TRY_MS)
			pause_ms(l, (int)(TRY_MS - (cli_now_ms() - t0)));
	}
}

static struct tbs_session *start_session(struct fwd_link *l)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(
		tbs_session_opts, .role = TBS_ROLE_DUPLEX, .id = FWD_ID,
		.id_len = strlen(FWD_ID), .handshake_ms = HANDSHAKE_MS,
		.confirm_ms = CONFIRM_MS);
	struct tbs_session *s;
	char id[TBS_SESSION_MAX_ID + 1] = "", msg[TBS_MSG_MAX];
	int r, n;

	if (tbs_session_new(&s, l->ep.rfd, l->ep.wfd, &o))
		return NULL;
	pthread_mutex_lock(&l->lock);
	l->starting = l->stop ? NULL : s;
	pthread_mutex_unlock(&l->lock);
	r = l->starting ? tbs_session_start(s) : -ECANCELED;
	pthread_mutex_lock(&l->lock);
	l->starting = NULL;
	pthread_mutex_unlock(&l->lock);
	n = r ? 0 : tbs_session_peer_id(s, id, sizeof(id) - 1);
	if (!r && (n != (int)strlen(FWD_ID) || memcmp(id, FWD_ID, (size_t)n))) {
		fwd_text((const uint8_t *)id, n > 0 ? (size_t)n : 0, msg, 65);
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
			 ": the other host runs another program on stream "
			 "'%s', not tbstream forward",
			 l->c.name);
		note(l, "error", msg);
		tbs_session_abort(s, -EPROTO,
				  "this host runs tbstream forward here");
		r = -EPROTO;
	} else if (r && r != -ECANCELED) {
		note(l, "wait", tbs_session_error(s));
	}
	if (!r)
		return s;
	tbs_session_free(s);
	return NULL;
}

static void *link_main(void *arg)
{
	struct fwd_link *l = arg;
	struct tbs_session *s;
	uint64_t one = 1;
	bool in_use;
	time_t t0;

	l->backoff_ms = BACKOFF_MIN_MS;
	while (!open_stream(l)) {
		t0 = time(NULL);
		s = start_session(l);
		pthread_mutex_lock(&l->lock);
		if (s && !l->stop) {
			l->ready = s;
			l->last[0] = '\0';
			if (write(l->evfd, &one, sizeof(one)) < 0)
				l->stop = true;
			while (!l->stop && (l->ready || l->cur))
				pthread_cond_wait(&l->cv, &l->lock);
		} else if (s) {
			tbs_session_free(s);
		}
		/* Stopped while the session is in use: fwd_link_stop() ends it. */
		in_use = l->ready || l->cur;
		pthread_mutex_unlock(&l->lock);
		if (in_use)
			break;
		tbs_endpoint_close(&l->ep);
		if (s || time(NULL) - t0 >= 2)
			l->backoff_ms = BACKOFF_MIN_MS;
		else if (!stopping(l))
			pause_ms(l, l->backoff_ms);
		if (l->backoff_ms < BACKOFF_MAX_MS)
			l->backoff_ms *= 2;
	}
	return NULL;
}

int fwd_link_start(struct fwd_link **lp, const struct fwd_link_conf *c)
{
	struct fwd_link *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->c = *c;
	l->ep.rfd = l->ep.wfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->evfd < 0) {
		r = -errno;
		goto err_free;
	}
	r = -pthread_create(&l->thread, NULL, link_main, l);
	if (!r) {
		*lp = l;
		return 0;
	}
	close(l->evfd);
err_free:
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cv);
	free(l);
	return r;
}

int fwd_link_fd(struct fwd_link *l)
{
	return l->evfd;
}

struct tbs_session *fwd_link_take(struct fwd_link *l)
{
	struct tbs_session *s;
	uint64_t v;

	pthread_mutex_lock(&l->lock);
	if (read(l->evfd, &v, sizeof(v)) < 0)
		v = 0;
	s = l->ready;
	l->ready = NULL;
	l->cur = s;
	pthread_mutex_unlock(&l->lock);
	return s;
}

void fwd_link_done(struct fwd_link *l, struct tbs_session *s, const char *why)
{
	tbs_session_free(s);
	pthread_mutex_lock(&l->lock);
	if (l->cur == s)
		l->cur = NULL;
	snprintf(l->last, sizeof(l->last), "%s", why);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
}

int fwd_link_stop(struct fwd_link *l)
{
	int created;

	pthread_mutex_lock(&l->lock);
	l->stop = true;
	if (l->starting)
		tbs_session_abort(l->starting, -ESHUTDOWN,
				  "tbstream forward stopped on the other host");
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	tbs_session_free(l->cur);
	tbs_session_free(l->ready);
	tbs_endpoint_close(&l->ep);
	tbs_net_free(l->net);
	close(l->evfd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cv);
	created = l->created;
	free(l);
	return created;
}
