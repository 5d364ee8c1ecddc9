// SPDX-License-Identifier: MIT
/*
 * tbstream forward: one connection's socket side.
 *
 * Bytes from the peer are written to the socket at once when it takes
 * them; what it does not take waits in the connection's ring, which never
 * holds more than the window this side announced (the peer sends only
 * within the credit it was given, and credit comes back only for bytes
 * written out).  Bytes toward the peer are read from the socket only when
 * the peer has credit for them and the session has room, so nothing
 * waits here but one message the session refused for lack of room.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/byteorder.h"
#include "forward-mux.h"

struct conn *conn_new(struct fwd_mux *m, uint32_t id, int fd)
{
	struct conn *c, **grown;
	uint32_t cap;

	if (m->nconns == m->cap) {
		cap = m->cap ? m->cap * 2 : 16;
		grown = realloc(m->conns, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		m->conns = grown;
		m->cap = cap;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = id;
	c->fd = fd;
	c->tx_credit = m->peer.window;
	c->rx_avail = m->conf->window;
	c->start_ms = cli_now_ms();
	m->conns[m->nconns++] = c;
	m->live++;
	m->st.conns++;
	return c;
}

struct conn *conn_find(struct fwd_mux *m, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < m->nconns; i++)
		if (m->conns[i]->id == id && !m->conns[i]->dead)
			return m->conns[i];
	return NULL;
}

static void set_events(struct fwd_mux *m, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev == c->ev)
		return;
	if (!ev)
		epoll_ctl(m->ep, EPOLL_CTL_DEL, c->fd, NULL);
	else if (epoll_ctl(m->ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
			   c->fd, &e))
		ev = 0;
	c->ev = ev;
}

/* Whether the socket may be read now: credit, room, order. */
static bool can_read(const struct fwd_mux *m, const struct conn *c)
{
	if (c->rd_eof || c->pend || !c->tx_credit || c->err)
		return false;
	if (c->ctl & (CTL_OPEN | CTL_ACCEPT))
		return false;
	if (m->conf->role == FWD_ROLE_CONNECT && !c->accepted)
		return false;
	return !m->tx_blocked && !m->failed && m->s;
}

/* Registers the events the connection waits for now. */
void conn_update(struct fwd_mux *m, struct conn *c)
{
	uint32_t ev = 0;

	if (c->fd < 0 || c->dead)
		return;
	if (c->connecting) {
		ev = EPOLLOUT;
	} else {
		if (can_read(m, c))
			ev |= EPOLLIN;
		if (c->rx.len)
			ev |= EPOLLOUT;
	}
	set_events(m, c, ev);
}

void conn_close_local(struct fwd_mux *m, struct conn *c, bool reset)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (c->fd >= 0) {
		set_events(m, c, 0);
		if (reset)
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg,
				   sizeof(lg));
		close(c->fd);
		c->fd = -1;
	}
	if (reset && c->pid > 0)
		kill(c->pid, SIGTERM);
	c->connecting = false;
	c->local_done = true;
	free(c->rx.buf);
	c->rx.buf = NULL;
	c->rx.len = 0;
	free(c->pend);
	c->pend = NULL;
}

/* Marks the connection for freeing at the end of the loop's pass. */
void conn_free(struct fwd_mux *m, struct conn *c)
{
	if (c->dead)
		return;
	conn_close_local(m, c, true);
	c->dead = true;
	m->live--;
}

/* A local socket error: reset it and tell the peer. */
void conn_fail_local(struct fwd_mux *m, struct conn *c, int err)
{
	char how[FWD_TEXT_MAX + 32];

	conn_close_local(m, c, true);
	c->err = err ? err : EIO;
	c->ctl = (c->ctl & (CTL_OPEN | CTL_ACCEPT)) | CTL_RESET;
	snprintf(c->why, sizeof(c->why), "%s", strerror(c->err));
	snprintf(how, sizeof(how), "reset here: %s", c->why);
	conn_log_end(m, c, how);
	conn_want_send(m, c);
}

void conn_want_send(struct fwd_mux *m, struct conn *c)
{
	(void)c;
	m->want_send = true;
}

static void format_bytes_short(char *buf, size_t len, uint64_t n)
{
	format_bytes(buf, len, (double)n);
}

void conn_log_end(struct fwd_mux *m, struct conn *c, const char *how)
{
	char out[32], in[32];

	format_bytes_short(out, sizeof(out), c->bytes_out);
	format_bytes_short(in, sizeof(in), c->bytes_in);
	fwd_log(&m->conf->log, "close",
		"connection %u%s%s: %s; %s to the peer, %s from it, %.2f s",
		c->id, c->origin[0] ? " from " : "", c->origin, how, out, in,
		(double)(cli_now_ms() - c->start_ms) / 1000.0);
}

/* Both directions ended and written out: close; the peer may forget. */
void conn_check_done(struct fwd_mux *m, struct conn *c)
{
	if (c->dead)
		return;
	if (!c->local_done && c->shut_sent && c->shut_rcvd && c->wr_shut &&
	    !c->rx.len) {
		conn_close_local(m, c, false);
		conn_log_end(m, c, "closed");
		if (m->conf->role == FWD_ROLE_CONNECT) {
			c->ctl |= CTL_CLOSE;
			conn_want_send(m, c);
		}
	}
	if (m->conf->role == FWD_ROLE_LISTEN && c->local_done &&
	    !c->peer_slot && !c->ctl)
		conn_free(m, c);
}

/* Bytes written out: credit for the peer once a quarter window is free. */
static void written(struct fwd_mux *m, struct conn *c, size_t n)
{
	c->consumed += (uint32_t)n;
	if (c->consumed >= m->conf->window / 4 && !(c->ctl & CTL_CREDIT)) {
		c->ctl |= CTL_CREDIT;
		conn_want_send(m, c);
	}
}

static void shut_if_drained(struct conn *c)
{
	if (c->shut_rcvd && !c->rx.len && !c->wr_shut && c->fd >= 0 &&
	    !c->connecting) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

static int ring_put(struct fwd_mux *m, struct ring *r, const uint8_t *d,
		    size_t n)
{
	uint32_t tail, first;

	if (!n)
		return 0; /* all written: an idle connection holds no buffer */
	if (!r->buf) {
		r->buf = malloc(m->conf->window);
		if (!r->buf)
			return -ENOMEM;
		r->cap = m->conf->window;
		r->head = 0;
	}
	if (n > r->cap - r->len)
		return -ENOBUFS; /* the credit check makes this impossible */
	tail = (r->head + r->len) % r->cap;
	first = r->cap - tail < n ? r->cap - tail : (uint32_t)n;
	memcpy(r->buf + tail, d, first);
	memcpy(r->buf, d + first, n - first);
	r->len += (uint32_t)n;
	return 0;
}

/* Writes what the ring holds; 0, or a negative errno of the socket. */
static int ring_flush(struct fwd_mux *m, struct conn *c)
{
	struct ring *r = &c->rx;
	struct iovec v[2];
	uint32_t first;
	ssize_t n;

	while (r->len) {
		first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
		v[0] = (struct iovec){ r->buf + r->head, first };
		v[1] = (struct iovec){ r->buf, r->len - first };
		n = writev(c->fd, v, v[1].iov_len ? 2 : 1);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		r->head = (r->head + (uint32_t)n) % r->cap;
		r->len -= (uint32_t)n;
		written(m, c, (size_t)n);
	}
	free(r->buf); /* an idle connection holds no buffer */
	r->buf = NULL;
	r->head = 0;
	return 0;
}

int conn_take_data(struct fwd_mux *m, struct conn *c, const uint8_t *d,
		   size_t n)
{
	ssize_t w = 0;
	int r;

	c->rx_avail -= (uint32_t)n;
	c->bytes_in += n;
	if (c->local_done)
		return 0; /* reset here: the bytes have nowhere to go */
	if (!c->rx.len && c->fd >= 0 && !c->connecting) {
		w = write(c->fd, d, n);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			conn_fail_local(m, c, errno);
			return 0;
		}
		if (w < 0)
			w = 0;
		written(m, c, (size_t)w);
	}
	r = ring_put(m, &c->rx, d + w, n - (size_t)w);
	if (r)
		return r;
	conn_update(m, c);
	return 0;
}

/* The socket has bytes (or its end): one message toward the peer. */
static void on_readable(struct fwd_mux *m, struct conn *c)
{
	uint32_t max = c->tx_credit;
	ssize_t n, r;

	if (!can_read(m, c))
		return conn_update(m, c);
	if (max > m->peer.max_data)
		max = m->peer.max_data;
	n = read(c->fd, m->txbuf + FWD_HDR, max);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_fail_local(m, c, errno);
		return;
	}
	if (n == 0) {
		c->rd_eof = true;
		c->ctl |= CTL_SHUT;
		conn_want_send(m, c);
		return conn_update(m, c);
	}
	tbsi_le_put32(m->txbuf, c->id);
	c->tx_credit -= (uint32_t)n;
	c->bytes_out += (uint64_t)n;
	r = tbs_session_send_msg(m->s, FWD_DATA, m->txbuf,
				 (size_t)n + FWD_HDR, 0);
	if (r == -EAGAIN) {
		c->pend = malloc((size_t)n + FWD_HDR);
		if (!c->pend)
			return conn_fail_local(m, c, ENOMEM);
		memcpy(c->pend, m->txbuf, (size_t)n + FWD_HDR);
		c->pend_len = (uint32_t)n + FWD_HDR;
		m->tx_blocked = true;
		conn_want_send(m, c);
	} else if (r < 0) {
		m->failed = true;
	}
	conn_update(m, c);
}

static void on_writable(struct fwd_mux *m, struct conn *c)
{
	int r = ring_flush(m, c);

	if (r)
		return conn_fail_local(m, c, -r);
	shut_if_drained(c);
	conn_update(m, c);
	conn_check_done(m, c);
}

void conn_on_event(struct fwd_mux *m, struct conn *c, uint32_t ev)
{
	if (c->dead || c->fd < 0)
		return;
	if (c->connecting) {
		mux_connected(m, c);
		return;
	}
	if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP) && c->rx.len)
		on_writable(m, c);
	if (!c->dead && c->fd >= 0 && ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(m, c);
}

/* Connected at last: what the peer sent meanwhile goes out. */
void conn_peer_flush(struct fwd_mux *m, struct conn *c)
{
	if (c->rx.len)
		return on_writable(m, c);
	shut_if_drained(c);
	conn_check_done(m, c);
}

/* The peer's SHUT: shut our sending side once its bytes are out. */
void conn_peer_shut(struct fwd_mux *m, struct conn *c)
{
	c->shut_rcvd = true;
	if (c->local_done) {
		c->wr_shut = true;
		return;
	}
	shut_if_drained(c);
	conn_check_done(m, c);
}
