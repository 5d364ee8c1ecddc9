// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the multiplexer.  One thread, one epoll set: the
 * session's readiness descriptor, the listening socket, every connection's
 * socket, the signals, and the link thread's "a session is ready".
 *
 * The peer is not trusted.  Its messages are decoded and checked in full
 * (forward-wire.c), then against the state they claim to act on:
 *  - it never names a destination: OPEN carries an id and a text that is
 *    only logged (escaped); this side connects to its own address;
 *  - ids: the listening side hands them out in increasing order, so an
 *    OPEN of an id seen before, a message for an id never opened, or a
 *    message of the wrong direction ends the session;
 *  - memory: no more connections than this side announced, no DATA
 *    beyond the credit given, nothing after SHUT, no credit beyond the
 *    peer's own window: the memory of a connection is bounded by the
 *    window, of all by window x connections, whatever the peer sends;
 *  - bytes of one connection go to its socket only: every message
 *    carries its id and is handled whole, in order.
 * A peer that breaks a rule gets an ABORT naming it; every connection is
 * reset and the link starts a new session.
 *
 * The session is always drained (received data always has a place to go,
 * within credit), so one stalled connection never holds up another, and
 * control messages are state, not a queue: each connection has at most
 * one of each pending, sent when the session has room.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "forward-mux.h"

/*
 * A listener that cannot accept (no descriptor or memory left) stays
 * readable: it leaves the epoll set for this long, or until a connection
 * ends, instead of waking the loop again at once.
 */
#define ACCEPT_PAUSE_MS 100

/* Markers of the descriptors that are not connections. */
static char mark_stop, mark_chld, mark_link, mark_sess, mark_listen;

static bool is_listener(const struct fwd_mux *m)
{
	return m->conf->role == FWD_ROLE_LISTEN;
}

/* The peer broke the protocol: say so, to it and in the log. */
__attribute__((format(printf, 2, 3))) static void
violation(struct fwd_mux *m, const char *fmt, ...)
{
	char what[200], msg[260];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	m->st.violations++;
	snprintf(m->why, sizeof(m->why),
		 "the peer broke the forward protocol: %s", what);
	snprintf(msg, sizeof(msg), "forward: this host refused: %s", what);
	if (m->s)
		tbs_session_abort(m->s, -EPROTO, msg);
	m->failed = true;
}

static int send_ctl(struct fwd_mux *m, uint16_t type, const uint8_t *b,
		    size_t n)
{
	ssize_t r = tbs_session_send_msg(m->s, type, b, n, 0);

	if (r == -EAGAIN) {
		m->tx_blocked = true;
		return -EAGAIN;
	}
	if (r < 0) {
		m->failed = true;
		return (int)r;
	}
	return 0;
}

/* One control message of @c, by its bit; 0 when sent. */
static int send_one(struct fwd_mux *m, struct conn *c, unsigned int bit)
{
	uint8_t b[FWD_HDR + 4 + FWD_TEXT_MAX];
	static const uint16_t types[] = { FWD_OPEN,  FWD_ACCEPT, FWD_CREDIT,
					  FWD_SHUT,  FWD_REFUSE, FWD_RESET,
					  FWD_CLOSE };
	uint16_t type = types[__builtin_ctz(bit)];
	uint32_t a = bit == CTL_CREDIT ? c->consumed : (uint32_t)c->err;
	const char *text = bit == CTL_OPEN ? c->origin : c->why;
	int r;

	r = send_ctl(m, type, b, fwd_encode(b, type, c->id, a, text));
	if (r)
		return r;
	c->ctl &= ~bit;
	if (bit == CTL_CREDIT) {
		c->rx_avail += c->consumed;
		c->consumed = 0;
	} else if (bit == CTL_SHUT) {
		c->shut_sent = true;
	}
	return 0;
}

/* Sends what @c has pending, in order; 0 when all of it went. */
static int flush_conn(struct fwd_mux *m, struct conn *c)
{
	static const unsigned int order[] = { CTL_OPEN, CTL_ACCEPT,
					      CTL_CREDIT };
	size_t i;
	int r;

	/* Ending: what would follow the end is moot, what precedes stays. */
	if (c->ctl & (CTL_REFUSE | CTL_RESET | CTL_CLOSE))
		c->ctl &= ~(CTL_CREDIT | CTL_SHUT);
	for (i = 0; i < 3; i++)
		if (c->ctl & order[i] && (r = send_one(m, c, order[i])))
			return r;
	if (c->pend) {
		r = send_ctl(m, FWD_DATA, c->pend, c->pend_len);
		if (r)
			return r;
		free(c->pend);
		c->pend = NULL;
	}
	if (c->ctl & CTL_SHUT && (r = send_one(m, c, CTL_SHUT)))
		return r;
	for (i = 0; i < 3; i++) {
		unsigned int bit = CTL_REFUSE << i;

		if (!(c->ctl & bit))
			continue;
		r = send_one(m, c, bit);
		if (r)
			return r;
		if (!is_listener(m)) /* the connecting side forgets now */
			conn_free(m, c);
	}
	conn_check_done(m, c);
	return 0;
}

/* Sends every connection's pending messages, round robin. */
void mux_send_pending(struct fwd_mux *m)
{
	uint32_t i, n = m->nconns;
	struct conn *c;

	if (!m->want_send || !m->s || m->failed || m->tx_blocked)
		return;
	m->want_send = false;
	for (i = 0; i < n && !m->tx_blocked && !m->failed; i++) {
		c = m->conns[(m->rr + i) % n];
		if (c->dead || (!c->ctl && !c->pend))
			continue;
		if (flush_conn(m, c))
			break;
		conn_update(m, c);
	}
	m->rr = n ? (m->rr + i) % n : 0;
	if (m->tx_blocked)
		m->want_send = true;
}

static void refuse(struct fwd_mux *m, struct conn *c, int err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct fwd_mux *m, struct conn *c, int err,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	conn_close_local(m, c, true);
	c->err = err;
	c->ctl = CTL_REFUSE;
	m->st.refused++;
	fwd_log(&m->conf->log, "refuse", "connection %u from %s: refused: %s",
		c->id, c->origin, c->why);
	conn_want_send(m, c);
}

/* Tries the addresses of the destination in turn. */
static void connect_next(struct fwd_mux *m, struct conn *c, int last_err)
{
	const struct fwd_addr *a = &m->conf->addr;
	bool done;
	int fd;

	for (; c->ai < a->n; c->ai++) {
		fd = fwd_connect_start(a, c->ai, &done);
		if (fd < 0) {
			last_err = -fd;
			continue;
		}
		c->fd = fd;
		c->connecting = !done;
		c->deadline = cli_now_ms() + m->conf->connect_timeout_ms;
		if (done)
			mux_connected(m, c);
		else
			conn_update(m, c);
		return;
	}
	refuse(m, c, last_err, "could not connect to %s: %s", a->text,
	       strerror(last_err));
}

void mux_connected(struct fwd_mux *m, struct conn *c)
{
	socklen_t len = sizeof(int);
	int e = 0;

	if (c->connecting &&
	    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e) {
		epoll_ctl(m->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->ev = 0;
		c->connecting = false;
		c->ai++;
		return connect_next(m, c, e);
	}
	c->connecting = false;
	c->accepted = true;
	c->ctl |= CTL_ACCEPT;
	conn_want_send(m, c);
	conn_update(m, c);
	conn_peer_flush(m, c);
}

static void start_exec(struct fwd_mux *m, struct conn *c)
{
	int fd = fwd_spawn(m->conf->argv, m->conf->cmd, &c->pid);

	if (fd < 0)
		return refuse(m, c, -fd, "could not run %s: %s",
			      m->conf->argv ? m->conf->argv[0] : m->conf->cmd,
			      strerror(-fd));
	c->fd = fd;
	c->accepted = true;
	c->ctl |= CTL_ACCEPT;
	conn_want_send(m, c);
	conn_update(m, c);
}

static void on_open(struct fwd_mux *m, const struct fwd_msg *msg)
{
	struct conn *c;

	if (msg->id <= m->next_id)
		return violation(m, "OPEN of connection %u, an id used before",
				 msg->id);
	m->next_id = msg->id;
	if (m->live >= m->conf->max_conns)
		return violation(m, "OPEN beyond the limit of %u connections",
				 m->conf->max_conns);
	c = conn_new(m, msg->id, -1);
	if (!c)
		return violation(m, "no memory for connection %u", msg->id);
	fwd_text(msg->data, msg->len, c->origin, sizeof(c->origin));
	if (m->conf->exec)
		start_exec(m, c);
	else
		connect_next(m, c, ECONNREFUSED);
}

/* What the listening side may receive on @c, by its state. */
static const char *listener_rule(const struct conn *c,
				 const struct fwd_msg *msg)
{
	if (!c->peer_slot) /* its CLOSE, REFUSE or RESET came */
		return "after the peer ended it";
	switch (msg->type) {
	case FWD_ACCEPT:
		return c->accepted ? "after ACCEPT" : NULL;
	case FWD_REFUSE:
		return c->accepted ? "after ACCEPT" : NULL;
	case FWD_CLOSE:
		return (c->shut_sent && c->shut_rcvd) || c->err ?
			       NULL :
			       "while it is open";
	default:
		return c->accepted ? NULL : "before ACCEPT";
	}
}

/* Checks a message against the state of @c; 0 when it may be handled. */
static int check_state(struct fwd_mux *m, struct conn *c,
		       const struct fwd_msg *msg)
{
	const char *name = fwd_type_name(msg->type);
	const char *rule = is_listener(m) ? listener_rule(c, msg) : NULL;

	if (rule)
		violation(m, "%s on connection %u %s", name, c->id, rule);
	else if (msg->type == FWD_DATA && c->shut_rcvd)
		violation(m, "DATA after SHUT on connection %u", c->id);
	else if (msg->type == FWD_DATA && msg->len > c->rx_avail)
		violation(m, "%zu bytes on connection %u beyond its credit of %u",
			  msg->len, c->id, c->rx_avail);
	else if (msg->type == FWD_SHUT && c->shut_rcvd)
		violation(m, "second SHUT on connection %u", c->id);
	else if (msg->type == FWD_CREDIT &&
		 msg->credit > m->peer.window - c->tx_credit)
		violation(m, "CREDIT on connection %u beyond its window", c->id);
	else
		return 0;
	return -EPROTO;
}

/* The peer's RESET, REFUSE or CLOSE of @c. */
static void on_end(struct fwd_mux *m, struct conn *c, const struct fwd_msg *msg)
{
	char why[FWD_TEXT_MAX + 32];

	if (msg->type != FWD_CLOSE && !c->local_done) {
		conn_close_local(m, c, true);
		if (msg->type == FWD_REFUSE) {
			strcpy(why, "refused by the peer: ");
			fwd_text(msg->data, msg->len, why + strlen(why),
				 sizeof(why) - strlen(why));
			m->st.refused++;
		} else {
			snprintf(why, sizeof(why), "reset by the peer: %s",
				 strerror(msg->err));
			m->st.resets++;
		}
		conn_log_end(m, c, why);
	}
	if (!is_listener(m)) { /* L reset: answer with CLOSE, forget */
		if (!(c->ctl & (CTL_REFUSE | CTL_RESET)))
			c->ctl = (c->ctl & CTL_ACCEPT) | CTL_CLOSE;
		conn_want_send(m, c);
		return;
	}
	/* The peer forgot the id: nothing more is sent for it. */
	if (c->peer_slot)
		m->peer_slots--;
	c->peer_slot = false;
	c->ctl = 0;
	free(c->pend);
	c->pend = NULL;
	conn_check_done(m, c);
}

static void handle(struct fwd_mux *m, struct conn *c, const struct fwd_msg *msg)
{
	if (check_state(m, c, msg))
		return;
	switch (msg->type) {
	case FWD_DATA:
		if (conn_take_data(m, c, msg->data, msg->len))
			violation(m, "no room for connection %u", c->id);
		break;
	case FWD_CREDIT:
		c->tx_credit += msg->credit;
		conn_update(m, c);
		break;
	case FWD_SHUT:
		conn_peer_shut(m, c);
		break;
	case FWD_ACCEPT:
		c->accepted = true;
		conn_update(m, c);
		break;
	default:
		on_end(m, c, msg);
	}
}

/* Which messages each side may receive. */
static bool allowed(const struct fwd_mux *m, uint16_t type)
{
	if (type == FWD_DATA || type == FWD_CREDIT || type == FWD_SHUT ||
	    type == FWD_RESET)
		return true;
	if (is_listener(m))
		return type == FWD_ACCEPT || type == FWD_REFUSE ||
		       type == FWD_CLOSE;
	return type == FWD_OPEN;
}

static void on_hello(struct fwd_mux *m, const struct fwd_msg *msg)
{
	if (msg->hello.role == m->conf->role)
		return violation(m, "both hosts %s; run --listen on one and "
				    "--connect or --exec on the other",
				 is_listener(m) ? "listen" : "connect");
	m->peer = msg->hello;
	m->hello_rcvd = true;
	fwd_log(&m->conf->log, "up", "link up: %s",
		is_listener(m) ? "connections are carried to the peer" :
				 "the peer's connections are served");
	if (m->conf->on_up)
		m->conf->on_up(m->conf->arg);
}

static void dispatch(struct fwd_mux *m, uint16_t type, const uint8_t *b,
		     size_t len)
{
	struct fwd_msg msg;
	const char *why;
	struct conn *c;

	if (fwd_decode(type, b, len, &msg, &why))
		return violation(m, "%s (type 0x%04x, %zu bytes)", why, type,
				 len);
	if ((type == FWD_HELLO) == m->hello_rcvd)
		return violation(m, m->hello_rcvd ? "a second HELLO" :
						    "%s before HELLO",
				 fwd_type_name(type));
	if (type == FWD_HELLO)
		return on_hello(m, &msg);
	if (!allowed(m, type))
		return violation(m, "%s sent to the %s side", fwd_type_name(type),
				 is_listener(m) ? "listening" : "connecting");
	if (type == FWD_OPEN)
		return on_open(m, &msg);
	c = conn_find(m, msg.id);
	if (c)
		return handle(m, c, &msg);
	/* The connecting side forgets ids that the peer may still name. */
	if (!is_listener(m) && msg.id <= m->next_id)
		return;
	violation(m, "%s for connection %u, which %s", fwd_type_name(type),
		  msg.id, is_listener(m) ? "is not open" : "was never opened");
}

/* Takes every message the session has, without waiting. */
static void drain(struct fwd_mux *m)
{
	uint16_t type;
	ssize_t n;

	while (!m->failed) {
		n = tbs_session_recv_msg(m->s, &type, m->rxbuf, FWD_MSG_MAX, 0);
		if (n == -EAGAIN)
			return;
		if (n == -EMSGSIZE)
			return violation(m, "a message larger than %d bytes",
					 FWD_MSG_MAX);
		if (n <= 0) {
			snprintf(m->why, sizeof(m->why), "%s",
				 n ? tbs_session_error(m->s) :
				     "the peer ended the session");
			m->failed = true;
			return;
		}
		dispatch(m, type, m->rxbuf, (size_t)n);
	}
}

static void on_session(struct fwd_mux *m)
{
	unsigned int ev = tbs_session_ready(m->s);
	uint32_t i;

	if (ev & TBS_SESSION_ERROR) {
		snprintf(m->why, sizeof(m->why), "%s", tbs_session_error(m->s));
		m->failed = true;
		return;
	}
	if (ev & TBS_SESSION_RECV)
		drain(m);
	if (ev & TBS_SESSION_SEND && m->tx_blocked) {
		m->tx_blocked = false;
		m->want_send = true;
		mux_send_pending(m);
		for (i = 0; i < m->nconns; i++)
			conn_update(m, m->conns[i]);
	}
}

static void listen_update(struct fwd_mux *m)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &mark_listen };
	bool want;

	if (m->listen_fd < 0)
		return;
	if (m->accept_again && cli_now_ms() >= m->accept_again)
		m->accept_again = 0;
	/* No link: accept and reset at once, so that clients do not hang. */
	want = !m->s || (m->hello_rcvd && m->live < m->conf->max_conns &&
			 m->peer_slots < m->peer.max_conns);
	want &= !m->accept_again;
	if (want == m->listening)
		return;
	epoll_ctl(m->ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, m->listen_fd,
		  &e);
	m->listening = want;
}

static void reject(struct fwd_mux *m, int fd, const char *from)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	m->st.refused++;
	fwd_log(&m->conf->log, "refuse",
		"connection from %s refused: no link to the peer", from);
}

static void on_accept(struct fwd_mux *m)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char from[128];
	struct conn *c;
	int fd, one = 1;

	fd = accept4(m->listen_fd, (void *)&sa, &len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE ||
		       errno == ENOBUFS || errno == ENOMEM)) {
		m->accept_again = cli_now_ms() + ACCEPT_PAUSE_MS;
		fwd_log(&m->conf->log, "accept",
			"could not accept a connection: %s; again in %d ms, or once a connection ends",
			strerror(errno), ACCEPT_PAUSE_MS);
	}
	if (fd < 0)
		return;
	fwd_addr_format((void *)&sa, len, from, sizeof(from));
	if (!m->s || !m->hello_rcvd)
		return reject(m, fd, from);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = conn_new(m, ++m->next_id, fd);
	if (!c)
		return reject(m, fd, from);
	snprintf(c->origin, sizeof(c->origin), "%s", from);
	c->peer_slot = true;
	m->peer_slots++;
	c->ctl = CTL_OPEN;
	conn_want_send(m, c);
	conn_update(m, c);
}

/* Ends every connection (reset) and gives the session back. */
static void detach(struct fwd_mux *m, struct fwd_link *l, bool stopping)
{
	uint32_t i;

	for (i = 0; i < m->nconns; i++) {
		struct conn *c = m->conns[i];

		if (c->dead)
			continue;
		if (!c->local_done)
			conn_log_end(m, c, "reset: the link to the peer ended");
		conn_free(m, c);
	}
	if (m->s) {
		epoll_ctl(m->ep, EPOLL_CTL_DEL, m->sfd, NULL);
		if (!stopping)
			fwd_link_done(l, m->s, m->why);
	}
	m->s = NULL;
	m->hello_rcvd = false;
	m->tx_blocked = m->failed = m->want_send = false;
	m->peer_slots = m->next_id = 0;
}

static void attach(struct fwd_mux *m, struct tbs_session *s)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &mark_sess };
	struct fwd_hello h = { .version = FWD_VERSION,
			       .role = (uint8_t)m->conf->role,
			       .max_conns = m->conf->max_conns,
			       .window = m->conf->window,
			       .max_data = FWD_MAX_DATA };
	uint8_t b[FWD_HELLO_LEN];

	m->s = s;
	m->why[0] = '\0';
	m->st.sessions++;
	m->sfd = tbs_session_fd(s);
	if (m->sfd < 0 || epoll_ctl(m->ep, EPOLL_CTL_ADD, m->sfd, &e) ||
	    tbs_session_send_msg(s, FWD_HELLO, b, fwd_encode_hello(b, &h),
				 -1) < 0) {
		snprintf(m->why, sizeof(m->why), "could not start: %s",
			 tbs_session_error(s)[0] ? tbs_session_error(s) :
						  strerror(errno));
		m->failed = true;
	}
}

/* Frees the connections marked during the pass. */
static void reap(struct fwd_mux *m)
{
	uint32_t i = 0;

	while (i < m->nconns) {
		struct conn *c = m->conns[i];

		if (!c->dead) {
			i++;
			continue;
		}
		m->conns[i] = m->conns[--m->nconns];
		free(c);
		m->accept_again = 0; /* its descriptor is free */
	}
}

static int next_timeout(struct fwd_mux *m)
{
	int64_t now = cli_now_ms(), first = -1;
	uint32_t i;

	for (i = 0; i < m->nconns; i++) {
		struct conn *c = m->conns[i];

		if (c->dead || !c->connecting)
			continue;
		if (c->deadline <= now) {
			refuse(m, c, ETIMEDOUT,
			       "could not connect to %s: no answer within %d s",
			       m->conf->addr.text,
			       m->conf->connect_timeout_ms / 1000);
			continue;
		}
		if (first < 0 || c->deadline < first)
			first = c->deadline;
	}
	if (m->accept_again && (first < 0 || m->accept_again < first))
		first = m->accept_again;
	return first < 0 ? -1 : first <= now ? 0 : (int)(first - now);
}

static void reap_children(struct fwd_mux *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (m->conf->log.verbose &&
		    !(WIFEXITED(status) && !WEXITSTATUS(status)))
			fwd_log(&m->conf->log, "child",
				"command of a connection (pid %d) ended with "
				"status %d",
				(int)pid,
				WIFEXITED(status) ? WEXITSTATUS(status) :
						    128 + WTERMSIG(status));
}

/* SIGCHLD: the commands of connections that ended. */
static void on_sigchld(struct fwd_mux *m, int cfd)
{
	struct signalfd_siginfo si;

	while (read(cfd, &si, sizeof(si)) == sizeof(si))
		;
	reap_children(m);
}

/* One event; 1 when it asks to stop. */
static int one_event(struct fwd_mux *m, struct fwd_link *l, int chld_fd,
		     struct epoll_event *e)
{
	void *p = e->data.ptr;
	struct tbs_session *s;

	if (p == &mark_stop)
		return 1;
	if (p == &mark_chld)
		on_sigchld(m, chld_fd);
	else if (p == &mark_link) {
		s = fwd_link_take(l);
		if (s && !m->s)
			attach(m, s);
	} else if (p == &mark_sess) {
		if (m->s)
			on_session(m);
	} else if (p == &mark_listen) {
		on_accept(m);
	} else {
		conn_on_event(m, p, e->events);
	}
	return 0;
}

int fwd_mux_run(struct fwd_mux *m, struct fwd_link *l, int stop_fd,
		int chld_fd)
{
	struct epoll_event e[64];
	int n, i, stop = 0;

	e[0] = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &mark_stop };
	e[1] = (struct epoll_event){ .events = EPOLLIN,
				     .data.ptr = &mark_link };
	e[2] = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &mark_chld };
	if (epoll_ctl(m->ep, EPOLL_CTL_ADD, stop_fd, &e[0]) ||
	    epoll_ctl(m->ep, EPOLL_CTL_ADD, fwd_link_fd(l), &e[1]) ||
	    epoll_ctl(m->ep, EPOLL_CTL_ADD, chld_fd, &e[2]))
		return -errno;
	while (!stop) {
		listen_update(m);
		n = epoll_wait(m->ep, e, 64, next_timeout(m));
		for (i = 0; i < n && !stop; i++)
			stop = one_event(m, l, chld_fd, &e[i]);
		mux_send_pending(m);
		if (m->failed) {
			fwd_log(&m->conf->log, "down",
				"link down: %s; connecting again", m->why);
			detach(m, l, false);
		}
		reap(m);
	}
	if (m->s)
		tbs_session_abort(m->s, -ESHUTDOWN,
				  "tbstream forward stopped on the other host");
	detach(m, l, true);
	reap(m);
	return 0;
}

struct fwd_mux *fwd_mux_new(const struct fwd_conf *conf, int listen_fd)
{
	struct fwd_mux *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->conf = conf;
	m->listen_fd = listen_fd;
	m->ep = epoll_create1(EPOLL_CLOEXEC);
	m->txbuf = malloc(FWD_MSG_MAX);
	m->rxbuf = malloc(FWD_MSG_MAX);
	if (m->ep < 0 || !m->txbuf || !m->rxbuf) {
		fwd_mux_free(m);
		return NULL;
	}
	return m;
}

void fwd_mux_free(struct fwd_mux *m)
{
	uint32_t i;

	if (!m)
		return;
	for (i = 0; i < m->nconns; i++)
		free(m->conns[i]);
	free(m->conns);
	if (m->ep >= 0)
		close(m->ep);
	free(m->txbuf);
	free(m->rxbuf);
	free(m);
}

const struct fwd_stats *fwd_mux_stats(const struct fwd_mux *m)
{
	return &m->st;
}
