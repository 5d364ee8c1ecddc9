// SPDX-License-Identifier: MIT
/*
 * A hostile host on the Thunderbolt link, for tests only: run inside one
 * host's network namespace, it speaks the messages of the network
 * transport (docs/PROTOCOL.md, section 11) with the defects a test asks
 * for, to show what the other host's tbstream ignores.
 *
 *	net-hostile announce KIND NAME UID SECONDS
 *
 * Listens on a TCP port and announces it as the listening host of stream
 * NAME with unique id UID, every 100 ms for SECONDS; prints the number of
 * connections that came.  KIND: "hops1" (hop limit 1), "global" (from the
 * interface's global address, which the test added), "uid" (another
 * unique id than UID), "fine" (a proper announcement: the control).
 *
 *	net-hostile connect KIND NAME UID SECONDS
 *
 * Waits (at most SECONDS) for the other host's announcement of NAME,
 * connects to the port it announces and opens with a bad CONNECT: "nonce"
 * (naming another run of the other host), "garbage" (random bytes),
 * "silent" (nothing); prints "closed" when the other host hung up without
 * an ACCEPT, "accepted" when it accepted, "none" when nobody announced.
 *
 * The interface is thunderbolt0.  Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-int.h"

#define IFNAME "thunderbolt0"

static unsigned int ifindex;

/* This host's address on the interface: link-local or not. */
static int local_addr(bool ll, struct in6_addr *out)
{
	struct ifaddrs *ifa, *i;
	int found = -1;

	if (getifaddrs(&ifa))
		return -1;
	for (i = ifa; i && found; i = i->ifa_next) {
		const struct sockaddr_in6 *sa = (void *)i->ifa_addr;

		if (sa && sa->sin6_family == AF_INET6 &&
		    !strcmp(i->ifa_name, IFNAME) &&
		    IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr) == ll) {
			*out = sa->sin6_addr;
			found = 0;
		}
	}
	freeifaddrs(ifa);
	return found;
}

static int sock(int type, const struct in6_addr *a, uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_port = htons(port),
				   .sin6_scope_id = ifindex };
	int s = socket(AF_INET6, type | SOCK_CLOEXEC, 0), one = 1;

	if (a)
		sa.sin6_addr = *a;
	if (s < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, IFNAME,
		       strlen(IFNAME)) ||
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("socket");
		exit(2);
	}
	return s;
}

static int announce(const char *kind, const char *name, const char *uid,
		    int secs)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6,
				   .sin6_port = htons(TBS_NET_PORT),
				   .sin6_scope_id = ifindex };
	struct tbsi_net_msg m = { .type = TBSI_NET_ANNOUNCE,
				  .flags = TBSI_NET_LISTEN,
				  .nonce = tbsi_random64() };
	struct sockaddr_in6 me;
	socklen_t len = sizeof(me);
	uint8_t buf[TBSI_NET_MSG_LEN];
	int64_t end = tbsi_now_ms() + secs * 1000LL;
	int lsn, udp, hops, conns = 0, c;
	struct in6_addr a;
	struct pollfd p;

	if (local_addr(strcmp(kind, "global") != 0, &a))
		return fprintf(stderr, "no address to use\n"), 2;
	lsn = sock(SOCK_STREAM, &a, 0);
	udp = sock(SOCK_DGRAM, &a, 0);
	hops = strcmp(kind, "hops1") ? 255 : 1;
	if (listen(lsn, 8) || getsockname(lsn, (struct sockaddr *)&me, &len) ||
	    setsockopt(udp, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops,
		       sizeof(hops)))
		return perror("listen"), 2;
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.uid, sizeof(m.uid), "%s",
		 strcmp(kind, "uid") ? uid : "00000000-dead-beef-0000-0000000000");
	m.port = ntohs(me.sin6_port);
	tbsi_net_encode(&m, buf);
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	p = (struct pollfd){ .fd = lsn, .events = POLLIN };
	while (tbsi_now_ms() < end) {
		if (sendto(udp, buf, sizeof(buf), 0, (struct sockaddr *)&to,
			   sizeof(to)) < 0)
			perror("sendto");
		if (poll(&p, 1, 100) > 0 && (c = accept(lsn, NULL, NULL)) >= 0) {
			conns++;
			close(c);
		}
	}
	printf("%d\n", conns);
	return 0;
}

/* The other host's announcement of @name: its source and port. */
static int heard(const char *name, int secs, struct sockaddr_in6 *from,
		 struct tbsi_net_msg *m)
{
	uint8_t buf[TBSI_NET_MSG_LEN + 1];
	int64_t end = tbsi_now_ms() + secs * 1000LL;
	int udp = sock(SOCK_DGRAM, NULL, TBS_NET_PORT);
	struct pollfd p = { .fd = udp, .events = POLLIN };
	socklen_t len;
	ssize_t n;

	while (tbsi_now_ms() < end) {
		if (poll(&p, 1, 100) <= 0)
			continue;
		len = sizeof(*from);
		n = recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)from,
			     &len);
		if (n > 0 && !tbsi_net_decode(buf, (size_t)n, m) &&
		    !strcmp(m->name, name) && (m->flags & TBSI_NET_LISTEN)) {
			close(udp);
			return 0;
		}
	}
	close(udp);
	return -1;
}

static int connect_bad(const char *kind, const char *name, const char *uid,
		       int secs)
{
	struct tbsi_net_msg m, bad;
	struct sockaddr_in6 to;
	uint8_t buf[TBSI_NET_MSG_LEN];
	struct pollfd p;
	ssize_t n;
	int s;

	if (heard(name, secs, &to, &m)) {
		printf("none\n");
		return 0;
	}
	to.sin6_port = htons(m.port);
	s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)))
		return perror("connect"), 2;
	bad = (struct tbsi_net_msg){ .type = TBSI_NET_CONNECT,
				     .nonce = tbsi_random64(),
				     .peer_nonce = m.nonce + 1 };
	snprintf(bad.name, sizeof(bad.name), "%s", name);
	snprintf(bad.uid, sizeof(bad.uid), "%s", uid);
	tbsi_net_encode(&bad, buf);
	if (!strcmp(kind, "garbage"))
		for (n = 0; n < (ssize_t)sizeof(buf); n++)
			buf[n] = (uint8_t)tbsi_random64();
	if (strcmp(kind, "silent") &&
	    send(s, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
		return perror("send"), 2;
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	if (poll(&p, 1, 5000) <= 0) {
		printf("no answer\n");
	} else {
		n = recv(s, buf, sizeof(buf), 0);
		printf("%s\n", n > 0 ? "accepted" : "closed");
	}
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: net-hostile announce|connect KIND NAME "
				"UID SECONDS\n");
		return 2;
	}
	ifindex = if_nametoindex(IFNAME);
	if (!ifindex)
		return fprintf(stderr, "no %s here\n", IFNAME), 2;
	if (!strcmp(argv[1], "announce"))
		return announce(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (!strcmp(argv[1], "connect"))
		return connect_bad(argv[2], argv[3], argv[4], atoi(argv[5]));
	return 2;
}
