// SPDX-License-Identifier: MIT
/*
 * Meeting the peer on the network (PROTOCOL.md, section 11): both hosts
 * announce the stream name on the link-local all-nodes group of the
 * Thunderbolt interface; the host whose unique id sorts lower connects to
 * the other, which listens; the TCP connection opens with CONNECT and
 * ACCEPT, which prove that each side heard the other's current run.
 *
 *	lower unique id (connects)		higher unique id (listens)
 *	ANNOUNCE(name, a, -)	   ->
 *				   <-		ANNOUNCE(name, b, LISTEN port)
 *	TCP connect [source of that announcement]:port
 *	CONNECT(name, a, b)	   ->		b is its own run: accept
 *				   <-		ACCEPT(name, b, a)
 *	the session follows on the connection
 *
 * Safety rules, in the order they are coded:
 *  1. Sockets live only on the interface (SO_BINDTODEVICE, scope id) and
 *     only while tbs_net_open() runs; the listening socket takes one
 *     connection and is closed.
 *  2. A datagram counts only if it came on the interface, from a
 *     link-local address that is not this host's, with hop limit 255
 *     (so it was sent on this link), and decodes as an announcement of
 *     this stream name by the peer's unique id.
 *  3. A host connects only to the source address of such an announcement
 *     (never to an address from a message) on the interface, to the port
 *     it announced.  Nothing the peer sends can make it talk to another
 *     machine.
 *  4. A connection counts only from a link-local address on the
 *     interface, and once its CONNECT names this run's nonce; everything
 *     else is closed and the wait goes on.
 *  5. An announcement of an earlier run is harmless: a connection to it
 *     fails (refused, or its ACCEPT names another run), and that nonce is
 *     never tried again.
 *  6. Every wait is bounded by the deadline and the cancel descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net-int.h"

#define ANNOUNCE_FIRST_MS 100 /* then doubling, up to: */
#define ANNOUNCE_MAX_MS 1000
#define STEP_MS 2000 /* a connect, or a CONNECT/ACCEPT, at most */
#define MAX_DEAD 16
/*
 * The connection's send buffer (the kernel caps it at net.core.wmem_max
 * and doubles it): a batch of the session's records (up to 1 MiB) goes
 * in whole, not in pieces between waits for room.
 */
#define SNDBUF (4 << 20)

struct meet {
	struct tbs_net *n;
	const char *name;
	bool connector; /* the lower unique id */
	uint64_t nonce;
	int udp, lsn;
	uint16_t lport;
	int64_t deadline, next_announce;
	int interval;

	bool have; /* the peer's latest announcement, usable */
	struct tbsi_net_msg peer;
	struct sockaddr_in6 from;
	uint64_t answered; /* the peer run answered at once */
	uint64_t dead[MAX_DEAD]; /* runs that a connection failed with */
	unsigned int ndead;
	char other[TBS_NAME_MAX + 1]; /* a name the peer announced instead */
	unsigned int rejected; /* connections refused (rule 4) */
	struct tbs_error *err;
};

/* ---- sockets ---- */

static void sa_local(const struct tbs_net *n, struct sockaddr_in6 *sa,
		     uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_addr = n->local;
	sa->sin6_port = htons(port);
	sa->sin6_scope_id = n->ifindex;
}

/* A socket on the interface only (rule 1). */
static int sock_new(const struct tbs_net *n, int type)
{
	int s, one = 1;

	s = socket(AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, n->ifname,
			strlen(n->ifname)) &&
	     errno != EPERM)) {
		int e = -errno;

		close(s);
		return e;
	}
	return s;
}

static int set_int(int s, int level, int opt, int v)
{
	return setsockopt(s, level, opt, &v, sizeof(v)) ? -errno : 0;
}

/* The announcements' socket: [::]:port on the interface, multicast. */
static int udp_open(struct meet *m)
{
	const struct tbs_net *n = m->n;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_port = htons(n->o.port) };
	int s, ret;

	s = sock_new(n, SOCK_DGRAM);
	if (s < 0)
		return s;
	ret = set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!ret)
		ret = set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_IF,
			      (int)n->ifindex);
	if (!ret)
		ret = set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0);
	if (!ret)
		ret = set_int(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
	if (!ret)
		ret = set_int(s, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
	if (!ret)
		ret = set_int(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	if (!ret && bind(s, (struct sockaddr *)&sa, sizeof(sa)))
		ret = -errno;
	if (ret) {
		close(s);
		return ret;
	}
	m->udp = s;
	return 0;
}

/* The listening socket: this host's link-local address, any port. */
static int lsn_open(struct meet *m)
{
	struct sockaddr_in6 sa;
	socklen_t len = sizeof(sa);
	int s, ret = 0;

	s = sock_new(m->n, SOCK_STREAM);
	if (s < 0)
		return s;
	sa_local(m->n, &sa, 0);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4) ||
	    getsockname(s, (struct sockaddr *)&sa, &len))
		ret = -errno;
	if (ret) {
		close(s);
		return ret;
	}
	m->lsn = s;
	m->lport = ntohs(sa.sin6_port);
	return 0;
}

/* ---- announcements ---- */

static void msg_fill(const struct meet *m, struct tbsi_net_msg *msg,
		     uint8_t type, uint64_t peer_nonce)
{
	memset(msg, 0, sizeof(*msg));
	msg->type = type;
	snprintf(msg->name, sizeof(msg->name), "%s", m->name);
	msg->nonce = m->nonce;
	msg->peer_nonce = peer_nonce;
	snprintf(msg->uid, sizeof(msg->uid), "%s", m->n->host_uid);
}

static int announce(struct meet *m)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6,
				   .sin6_port = htons(m->n->o.port),
				   .sin6_scope_id = m->n->ifindex };
	uint8_t buf[TBSI_NET_MSG_LEN];
	struct tbsi_net_msg msg;

	msg_fill(m, &msg, TBSI_NET_ANNOUNCE, m->have ? m->peer.nonce : 0);
	if (!m->connector) {
		msg.flags = TBSI_NET_LISTEN;
		msg.port = m->lport;
	}
	tbsi_net_encode(&msg, buf);
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	if (sendto(m->udp, buf, sizeof(buf), 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0 &&
	    errno != EAGAIN && errno != EADDRNOTAVAIL &&
	    errno != ENETUNREACH && errno != ENETDOWN && errno != ENOBUFS)
		return -errno; /* the others pass: the next one may go */
	m->next_announce = tbsi_now_ms() + m->interval;
	if (m->interval < ANNOUNCE_MAX_MS)
		m->interval *= 2;
	if (m->interval > ANNOUNCE_MAX_MS)
		m->interval = ANNOUNCE_MAX_MS;
	return 0;
}

/* Rule 2 and 4: link-local, on the interface, not this host's. */
static bool from_peer_link(const struct meet *m, const struct sockaddr_in6 *a)
{
	return a->sin6_family == AF_INET6 &&
	       IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) &&
	       a->sin6_scope_id == m->n->ifindex &&
	       !IN6_ARE_ADDR_EQUAL(&a->sin6_addr, &m->n->local);
}

static bool dead(const struct meet *m, uint64_t nonce)
{
	unsigned int i;

	for (i = 0; i < m->ndead && i < MAX_DEAD; i++)
		if (m->dead[i] == nonce)
			return true;
	return false;
}

/* Whether the datagram came on the interface with hop limit 255. */
static bool on_link(const struct meet *m, struct msghdr *mh)
{
	struct cmsghdr *c;
	bool hops = false, iface = false;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != IPPROTO_IPV6)
			continue;
		if (c->cmsg_type == IPV6_HOPLIMIT) {
			int h;

			memcpy(&h, CMSG_DATA(c), sizeof(h));
			hops = h == 255;
		} else if (c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			iface = pi.ipi6_ifindex == m->n->ifindex;
		}
	}
	return hops && iface;
}

/* Takes one valid announcement of the peer (rule 2). */
static void heard(struct meet *m, const struct tbsi_net_msg *msg,
		  const struct sockaddr_in6 *from)
{
	if (msg->type != TBSI_NET_ANNOUNCE ||
	    !tbsi_uid_eq(msg->uid, m->n->peer_uid) || msg->nonce == m->nonce)
		return;
	if (strcmp(msg->name, m->name)) {
		snprintf(m->other, sizeof(m->other), "%s", msg->name);
		return;
	}
	if (dead(m, msg->nonce) ||
	    (m->connector && !(msg->flags & TBSI_NET_LISTEN)))
		goto answer;
	m->have = true;
	m->peer = *msg;
	m->from = *from;
answer:
	/* A run not heard before gets an answer at once. */
	if (msg->nonce != m->answered) {
		m->answered = msg->nonce;
		m->next_announce = tbsi_now_ms();
	}
}

/* Reads every datagram waiting. */
static void udp_drain(struct meet *m)
{
	uint8_t buf[TBSI_NET_MSG_LEN + 1];
	union {
		char b[256];
		struct cmsghdr align;
	} ctl;
	struct sockaddr_in6 from;
	struct tbsi_net_msg msg;
	struct iovec iov;
	struct msghdr mh;
	ssize_t len;

	for (;;) {
		iov = (struct iovec){ .iov_base = buf, .iov_len = sizeof(buf) };
		mh = (struct msghdr){ .msg_name = &from,
				      .msg_namelen = sizeof(from),
				      .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = ctl.b,
				      .msg_controllen = sizeof(ctl.b) };
		len = recvmsg(m->udp, &mh, MSG_DONTWAIT);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return;
		if (mh.msg_namelen != sizeof(from) || (mh.msg_flags & MSG_TRUNC) ||
		    !from_peer_link(m, &from) || !on_link(m, &mh) ||
		    tbsi_net_decode(buf, (size_t)len, &msg))
			continue;
		heard(m, &msg, &from);
	}
}

/* ---- the connection ---- */

static int io_all(struct meet *m, int s, uint8_t *buf, size_t len,
		  bool writing, int64_t until)
{
	ssize_t r;
	int ret;

	while (len) {
		r = writing ? send(s, buf, len, MSG_NOSIGNAL) : recv(s, buf, len, 0);
		if (r > 0) {
			buf += r;
			len -= (size_t)r;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		ret = tbsi_wait_fd(s, writing ? POLLOUT : POLLIN,
				   m->n->o.cancel_fd, until);
		if (ret)
			return ret;
	}
	return 0;
}

static int64_t step_until(const struct meet *m)
{
	int64_t t = tbsi_now_ms() + STEP_MS;

	return t < m->deadline ? t : m->deadline;
}

/* Reads the peer's CONNECT or ACCEPT and checks it against this run. */
static int read_msg(struct meet *m, int s, uint8_t type, uint64_t want_nonce,
		    struct tbsi_net_msg *msg)
{
	uint8_t buf[TBSI_NET_MSG_LEN];
	int ret;

	ret = io_all(m, s, buf, sizeof(buf), false, step_until(m));
	if (ret)
		return ret;
	if (tbsi_net_decode(buf, sizeof(buf), msg) || msg->type != type ||
	    strcmp(msg->name, m->name) ||
	    !tbsi_uid_eq(msg->uid, m->n->peer_uid) ||
	    msg->peer_nonce != m->nonce ||
	    (want_nonce && msg->nonce != want_nonce))
		return -EPROTO;
	return 0;
}

static int send_msg(struct meet *m, int s, uint8_t type, uint64_t peer_nonce)
{
	uint8_t buf[TBSI_NET_MSG_LEN];
	struct tbsi_net_msg msg;

	msg_fill(m, &msg, type, peer_nonce);
	tbsi_net_encode(&msg, buf);
	return io_all(m, s, buf, sizeof(buf), true, step_until(m));
}

/* Connects to the announcement heard (rule 3); the socket or -errno. */
static int try_connect(struct meet *m)
{
	struct sockaddr_in6 to = m->from, me;
	struct tbsi_net_msg msg;
	socklen_t len = sizeof(int);
	int s, ret, e = 0;

	to.sin6_port = htons(m->peer.port);
	to.sin6_scope_id = m->n->ifindex;
	s = sock_new(m->n, SOCK_STREAM);
	if (s < 0)
		return s;
	sa_local(m->n, &me, 0);
	if (bind(s, (struct sockaddr *)&me, sizeof(me)) ||
	    (connect(s, (struct sockaddr *)&to, sizeof(to)) &&
	     errno != EINPROGRESS)) {
		ret = -errno;
		goto err;
	}
	ret = tbsi_wait_fd(s, POLLOUT, m->n->o.cancel_fd, step_until(m));
	if (!ret && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len))
		e = errno;
	if (!ret && e)
		ret = -e;
	if (!ret)
		ret = send_msg(m, s, TBSI_NET_CONNECT, m->peer.nonce);
	if (!ret)
		ret = read_msg(m, s, TBSI_NET_ACCEPT, m->peer.nonce, &msg);
	if (!ret)
		return s;
err:
	close(s);
	return ret;
}

/* Accepts one connection and checks it (rule 4); the socket or -errno. */
static int try_accept(struct meet *m)
{
	struct sockaddr_in6 from;
	socklen_t len = sizeof(from);
	struct tbsi_net_msg msg;
	int s, ret;

	s = accept4(m->lsn, (struct sockaddr *)&from, &len,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0)
		return errno == EAGAIN || errno == EINTR ||
				       errno == ECONNABORTED ?
			       -EAGAIN :
			       -errno;
	ret = len == sizeof(from) && from_peer_link(m, &from) ? 0 : -EPERM;
	if (!ret)
		ret = read_msg(m, s, TBSI_NET_CONNECT, 0, &msg);
	if (!ret)
		ret = send_msg(m, s, TBSI_NET_ACCEPT, msg.nonce);
	if (!ret)
		return s;
	close(s);
	return ret;
}

/* ---- the wait ---- */

static int timed_out(const struct meet *m)
{
	const struct tbs_net *n = m->n;

	if (m->other[0])
		return tbsi_err(m->err, -ETIMEDOUT,
				"%s announces stream '%s' on '%s', not '%s': "
				"give both hosts the same name",
				n->peer_name, m->other, n->ifname, m->name);
	return tbsi_err(m->err, -ETIMEDOUT,
			"no peer met for stream '%s' on '%s' within %d s%s: "
			"run the same command on %s (with --transport net or "
			"auto), and let UDP port %u and TCP through on '%s' "
			"if a firewall is on",
			m->name, n->ifname, n->o.timeout_ms / 1000,
			m->rejected ? " (connections were refused)" : "",
			n->peer_name, n->o.port, n->ifname);
}

/* One round: a connection made (>= 0), -EAGAIN to go on, or -errno. */
static int meet_step(struct meet *m)
{
	struct pollfd p[3] = { { .fd = m->udp, .events = POLLIN },
			       { .fd = m->lsn, .events = POLLIN },
			       { .fd = m->n->o.cancel_fd > 0 ? m->n->o.cancel_fd
							      : -1,
				 .events = POLLIN } };
	int64_t now = tbsi_now_ms(), until;
	int s, ret;

	if (now >= m->next_announce && (ret = announce(m)))
		return ret;
	if (m->connector && m->have) {
		s = try_connect(m);
		if (s >= 0 || s == -ECANCELED)
			return s;
		if (m->ndead < MAX_DEAD)
			m->dead[m->ndead++] = m->peer.nonce;
		m->have = false;
	}
	until = m->next_announce < m->deadline ? m->next_announce : m->deadline;
	now = tbsi_now_ms();
	if (poll(p, 3, until > now ? (int)(until - now) : 0) < 0 &&
	    errno != EINTR)
		return -errno;
	if (p[2].revents)
		return -ECANCELED;
	if (p[0].revents)
		udp_drain(m);
	if (p[1].revents) {
		s = try_accept(m);
		if (s >= 0 || s == -ECANCELED)
			return s;
		m->rejected += s != -EAGAIN;
	}
	return -EAGAIN;
}

/* ---- the name lock ---- */

/*
 * One process per host, peer and name: an abstract socket bound under
 * that key (abstract names belong to the network namespace), held until
 * tbs_net_down(), so that the same process may meet its peer again.
 */
static int name_lock(struct tbs_net *n, const char *name,
		     struct tbs_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	bool held;
	int s, len;

	pthread_mutex_lock(&n->lock);
	held = n->name_fd >= 0 && !strcmp(n->locked_name, name);
	pthread_mutex_unlock(&n->lock);
	if (held)
		return 0; /* held since an earlier tbs_net_open() */
	len = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
		       "tbstream/net/%s/%s/%s", n->host_uid, n->peer_uid, name);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return tbsi_err(err, -errno, "could not create a socket: %s",
				strerror(errno));
	if (bind(s, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			     (size_t)len))) {
		int e = errno;

		close(s);
		if (e == EADDRINUSE)
			return tbsi_err(err, -EBUSY,
					"stream '%s' towards %s is in use over "
					"'%s' by another process of this host",
					name, n->peer_name, n->ifname);
		return tbsi_err(err, -e, "could not lock stream '%s': %s",
				name, strerror(e));
	}
	pthread_mutex_lock(&n->lock);
	if (n->name_fd >= 0)
		close(n->name_fd);
	n->name_fd = s;
	snprintf(n->locked_name, sizeof(n->locked_name), "%s", name);
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/*
 * The connection as the endpoint: one socket as both descriptors, so that
 * the session's reader may block in read(2) while its writes do not
 * (a duplicate would share the blocking mode), above 2 so that it is
 * never taken for a standard stream.
 */
static int endpoint_fill(struct meet *m, int s, struct tbs_endpoint *ep,
			 struct tbs_error *err)
{
	struct sockaddr_in6 peer;
	socklen_t len = sizeof(peer);
	char a[INET6_ADDRSTRLEN] = "?";
	int fl;

	set_int(s, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int(s, SOL_SOCKET, SO_SNDBUF, SNDBUF);
	fl = fcntl(s, F_GETFL);
	if (fl < 0 || fcntl(s, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto err;
	if (s < 3) {
		fl = fcntl(s, F_DUPFD_CLOEXEC, 3);
		if (fl < 0)
			goto err;
		close(s);
		s = fl;
	}
	ep->rfd = ep->wfd = s;
	if (!getpeername(s, (struct sockaddr *)&peer, &len))
		inet_ntop(AF_INET6, &peer.sin6_addr, a, sizeof(a));
	snprintf(ep->path, sizeof(ep->path), "tcp [%s%%%s]:%u", a,
		 m->n->ifname, ntohs(peer.sin6_port));
	return 0;
err:
	close(s);
	return tbsi_err(err, -errno, "could not set up the connection: %s",
			strerror(errno));
}

static void meet_close(struct meet *m)
{
	if (m->udp >= 0)
		close(m->udp);
	if (m->lsn >= 0)
		close(m->lsn);
	m->udp = m->lsn = -1;
}

int tbs_net_open(struct tbs_net *n, const char *name, struct tbs_endpoint *ep,
		 struct tbs_error *err)
{
	struct meet m = { .n = n, .name = name, .udp = -1, .lsn = -1,
			  .interval = ANNOUNCE_FIRST_MS, .err = err };
	int ret;

	ep->rfd = ep->wfd = -1;
	snprintf(ep->path, sizeof(ep->path), "%s", n->ifname);
	if (!tbsi_valid_name(name))
		return tbsi_err(err, -EINVAL,
				"invalid stream name '%s': 1 to %d bytes, no "
				"'/'",
				name, TBS_NAME_MAX);
	ret = name_lock(n, name, err);
	if (ret)
		return ret;
	m.connector = strcasecmp(n->host_uid, n->peer_uid) < 0;
	m.nonce = tbsi_random64();
	m.deadline = tbsi_now_ms() + n->o.timeout_ms;
	ret = udp_open(&m);
	if (!ret && !m.connector)
		ret = lsn_open(&m);
	if (ret) {
		meet_close(&m);
		return tbsi_err(err, ret,
				"could not open a socket on '%s' (UDP port "
				"%u): %s",
				n->ifname, n->o.port, strerror(-ret));
	}
	do {
		ret = meet_step(&m);
	} while (ret == -EAGAIN && tbsi_now_ms() < m.deadline);
	meet_close(&m);
	if (ret >= 0)
		return endpoint_fill(&m, ret, ep, err);
	if (ret == -EAGAIN || ret == -ETIMEDOUT)
		return timed_out(&m);
	if (ret == -ECANCELED)
		return tbsi_err(err, ret, "cancelled");
	return tbsi_err(err, ret, "meeting the peer on '%s': %s", n->ifname,
			strerror(-ret));
}
