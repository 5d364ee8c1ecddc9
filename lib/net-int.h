/* SPDX-License-Identifier: MIT */
/*
 * libtbstream internal: the network transport (net.c: the interface,
 * net-meet.c: meeting the peer, net-wire.c: the messages).  Not part of
 * the public API.
 */
#ifndef TBS_NET_INT_H
#define TBS_NET_INT_H

#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* PROTOCOL.md, section 11: every message has this size. */
#define TBSI_NET_MSG_LEN 112
#define TBSI_NET_VERSION 1
#define TBSI_NET_UID_MAX 64

enum tbsi_net_type {
	TBSI_NET_ANNOUNCE = 1, /* UDP, to ff02::1 of the interface */
	TBSI_NET_CONNECT = 2, /* TCP, the connecting host's first bytes */
	TBSI_NET_ACCEPT = 3, /* TCP, the listening host's answer */
};

/* tbsi_net_msg.flags */
#define TBSI_NET_LISTEN 0x1 /* ANNOUNCE: @port is a listening TCP port */

struct tbsi_net_msg {
	uint8_t type;
	uint8_t flags;
	char name[TBS_NAME_MAX + 1];
	uint64_t nonce; /* the sender's run; never 0 */
	uint64_t peer_nonce; /* the receiver's run as last heard, 0 */
	uint16_t port;
	char uid[TBSI_NET_UID_MAX]; /* the sender's unique id */
};

void tbsi_net_encode(const struct tbsi_net_msg *m,
		     uint8_t out[TBSI_NET_MSG_LEN]);
/*
 * Decodes and checks one message of @len bytes.  Return: 0; -EBADMSG for
 * anything malformed (size, magic, checksum, fields); -EPROTONOSUPPORT
 * for another version.
 */
int tbsi_net_decode(const void *buf, size_t len, struct tbsi_net_msg *m);

/*
 * The interface in use, from tbs_net_up() to tbs_net_free().  @lock
 * guards @brought_up, @users_fd, @name_fd and @done against tbs_net_down() from
 * another thread; the rest is written once by tbs_net_up().
 */
struct tbs_net {
	struct tbs_net_opts o;
	char ifname[IFNAMSIZ];
	unsigned int ifindex;
	char peer_uid[TBSI_NET_UID_MAX];
	char peer_name[64];
	char host_uid[TBSI_NET_UID_MAX];
	struct in6_addr local; /* this host's link-local address */
	int rundir_fd; /* where the users lock and marker live, -1 */
	char lockname[160]; /* their name in it */

	pthread_mutex_t lock;
	bool brought_up; /* the marker says tbstream brought it up */
	int users_fd; /* a shared flock while this process uses it, -1 */
	int name_fd; /* the name lock of tbs_net_open(), -1 */
	char locked_name[TBS_NAME_MAX + 1]; /* its name */
	bool done; /* tbs_net_down() ran */
};

/* Whether the unique ids @a and @b are equal (case does not matter). */
bool tbsi_uid_eq(const char *a, const char *b);
/* A random non-zero 64-bit number. */
uint64_t tbsi_random64(void);
/*
 * Waits until @fd is ready for @events, @cancel_fd (if > 0) is readable or
 * @deadline (tbsi_now_ms()) passes.  Return: 0 ready, -ECANCELED,
 * -ETIMEDOUT, or another negative errno.
 */
int tbsi_wait_fd(int fd, short events, int cancel_fd, int64_t deadline);

#endif
