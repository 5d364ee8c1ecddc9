// SPDX-License-Identifier: MIT
/*
 * The network transport's interface: the thunderbolt-net interface
 * towards a peer, made usable for one job and left as it was found.
 *
 * Rules, in the order they are coded:
 *  1. The interface is the one under the peer's "network" service in
 *     sysfs (transport.c), looked up by name in this process's network
 *     namespace; no other interface is ever used.
 *  2. Nothing is configured: no address (the kernel gives every interface
 *     that is up and has a carrier an IPv6 link-local address), no route,
 *     no firewall rule.  The only change ever made is bringing a down
 *     interface up, with TBS_NET_IFUP, and only while a job uses it.
 *  3. Several jobs may use one interface at once, so the last one takes it
 *     down: each holds a shared flock on a "users" file in the run
 *     directory while it uses the interface; a job that brings the
 *     interface up first writes a marker beside it; at the end a job that
 *     gets the lock exclusively and finds the marker takes the interface
 *     down and removes the marker.  A job that was killed left the
 *     marker, so the next one to finish takes the interface down.
 *  4. Every wait is bounded by the time-out and stops when the cancel
 *     descriptor becomes readable, undoing what the call did.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net-int.h"

#define NET_TIMEOUT_MS 30000
#define ADDR_POLL_MS 50 /* while the link-local address is not usable */
#define LOCK_POLL_MS 20

bool tbsi_uid_eq(const char *a, const char *b)
{
	return !strcasecmp(a, b);
}

uint64_t tbsi_random64(void)
{
	uint64_t v = 0;

	while (!v)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint64_t)tbsi_now_ms() * 0x9e3779b97f4a7c15ULL ^
			    (uint64_t)getpid();
	return v;
}

int tbsi_wait_fd(int fd, short events, int cancel_fd, int64_t deadline)
{
	struct pollfd p[2] = { { .fd = fd, .events = events },
			       { .fd = cancel_fd > 0 ? cancel_fd : -1,
				 .events = POLLIN } };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - tbsi_now_ms();
		if (left < 0)
			left = 0;
		r = poll(p, 2, (int)(left > INT32_MAX ? INT32_MAX : left));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (p[1].revents)
			return -ECANCELED;
		if (p[0].revents)
			return 0;
		if (tbsi_now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

/* ---- the users lock and the marker (rule 3) ---- */

/* $TBSTREAM_RUNDIR, else /run/tbstream; -1 when there is none to use. */
static int rundir_open(void)
{
	const char *d = secure_getenv("TBSTREAM_RUNDIR");

	if (!d || !d[0])
		d = "/run/tbstream";
	if (mkdir(d, 0755) && errno != EEXIST)
		return -1;
	return open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* "net-UID-IFNAME", with anything but letters, digits and '-' as '_'. */
static void lock_name(struct tbs_net *n)
{
	char *p;

	snprintf(n->lockname, sizeof(n->lockname), "net-%s-%s", n->host_uid,
		 n->ifname);
	for (p = n->lockname; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			*p = '_';
}

static int users_open(const struct tbs_net *n)
{
	char name[200];
	int fd;

	snprintf(name, sizeof(name), "%s.users", n->lockname);
	fd = openat(n->rundir_fd, name,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && (errno == EACCES || errno == EROFS))
		fd = openat(n->rundir_fd, name,
			    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* A shared lock for the job's time; bounded and cancellable. */
static int users_lock(struct tbs_net *n, int64_t deadline)
{
	int fd, ret;

	n->rundir_fd = rundir_open();
	if (n->rundir_fd < 0)
		return 0; /* no sharing known: rule 3 by this process alone */
	fd = users_open(n);
	if (fd < 0)
		return 0;
	while (flock(fd, LOCK_SH | LOCK_NB)) {
		ret = tbsi_wait_fd(-1, 0, n->o.cancel_fd,
				   tbsi_now_ms() + LOCK_POLL_MS);
		if (ret == -ECANCELED || tbsi_now_ms() >= deadline) {
			close(fd);
			return ret == -ECANCELED ? ret : -ETIMEDOUT;
		}
	}
	n->users_fd = fd;
	return 0;
}

static bool marker(const struct tbs_net *n, int how)
{
	char name[200];
	int fd;

	if (n->rundir_fd < 0)
		return how > 0;
	snprintf(name, sizeof(name), "%s.up", n->lockname);
	if (how < 0)
		return !unlinkat(n->rundir_fd, name, 0);
	if (!how)
		return !faccessat(n->rundir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW);
	fd = openat(n->rundir_fd, name,
		    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* ---- the interface's flags ---- */

/* ioctl(2) @req on the interface, through a socket of its own. */
static int if_ioctl(const struct tbs_net *n, unsigned long req,
		    struct ifreq *ifr)
{
	int s, ret = 0;

	s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", n->ifname);
	if (ioctl(s, req, ifr))
		ret = -errno;
	close(s);
	return ret;
}

static int if_flags(const struct tbs_net *n, short *flags)
{
	struct ifreq ifr = { 0 };
	int ret;

	ret = if_ioctl(n, SIOCGIFFLAGS, &ifr);
	*flags = ifr.ifr_flags;
	return ret;
}

static int if_set_up(const struct tbs_net *n, bool up)
{
	struct ifreq ifr = { 0 };
	int ret;

	ret = if_ioctl(n, SIOCGIFFLAGS, &ifr);
	if (ret || !!(ifr.ifr_flags & IFF_UP) == up)
		return ret;
	ifr.ifr_flags = up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP;
	return if_ioctl(n, SIOCSIFFLAGS, &ifr);
}

/* Brings the interface up if allowed (rule 2).  Return: 1, 0 or -errno. */
static int iface_up(struct tbs_net *n, struct tbs_error *err)
{
	short flags;
	int ret;

	ret = if_flags(n, &flags);
	if (ret)
		return tbsi_err(err, ret, "could not read the flags of '%s': %s",
				n->ifname, strerror(-ret));
	if (flags & IFF_UP)
		return 0;
	if (!(n->o.flags & TBS_NET_IFUP))
		return tbsi_err(err, -ENETDOWN,
				"'%s' (IP over Thunderbolt towards %s) is down: "
				"bring it up with 'ip link set %s up' on both "
				"hosts",
				n->ifname, n->peer_name, n->ifname);
	marker(n, 1);
	ret = if_set_up(n, true);
	if (ret) {
		marker(n, -1);
		if (ret == -EPERM || ret == -EACCES)
			return tbsi_err(err, -EPERM,
					"'%s' (IP over Thunderbolt towards %s) "
					"is down and this user may not bring it "
					"up: run as root, or 'sudo ip link set "
					"%s up' on both hosts",
					n->ifname, n->peer_name, n->ifname);
		return tbsi_err(err, ret, "could not bring '%s' up: %s",
				n->ifname, strerror(-ret));
	}
	pthread_mutex_lock(&n->lock);
	n->brought_up = true;
	pthread_mutex_unlock(&n->lock);
	return 1;
}

/* ---- the link-local address ---- */

/* Whether @a can be bound on the interface: not tentative any more. */
static bool addr_usable(const struct tbs_net *n, const struct in6_addr *a)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_addr = *a,
				   .sin6_scope_id = n->ifindex };
	int s, ret;

	s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	ret = bind(s, (struct sockaddr *)&sa, sizeof(sa));
	close(s);
	return ret == 0;
}

static bool find_link_local(struct tbs_net *n)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		const struct sockaddr_in6 *sa = (void *)i->ifa_addr;

		if (!sa || sa->sin6_family != AF_INET6 ||
		    strcmp(i->ifa_name, n->ifname) ||
		    !IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr) ||
		    !addr_usable(n, &sa->sin6_addr))
			continue;
		n->local = sa->sin6_addr;
		found = true;
	}
	freeifaddrs(ifa);
	return found;
}

/* A setting of net.ipv6.conf.IFNAME, -1 when unknown. */
static long ipv6_conf(const struct tbs_net *n, const char *what)
{
	char path[PATH_MAX];
	long v;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s",
		 n->ifname, what);
	return tbsi_read_int(path, &v) ? -1 : v;
}

static int addr_timeout(const struct tbs_net *n, struct tbs_error *err)
{
	short flags = 0;

	if_flags(n, &flags);
	if (!(flags & IFF_RUNNING))
		return tbsi_err(err, -ETIMEDOUT,
				"'%s' has no carrier after %d s: the other "
				"host's end is down; run the same command on "
				"%s (it brings its end up), or 'ip link set %s "
				"up' there",
				n->ifname, (n->o.timeout_ms + 999) / 1000,
				n->peer_name, n->ifname);
	if (ipv6_conf(n, "addr_gen_mode") == 1)
		return tbsi_err(err, -EADDRNOTAVAIL,
				"'%s' makes no IPv6 link-local address "
				"(net.ipv6.conf.%s.addr_gen_mode is 1): set it "
				"to 0, or let the network manager give the "
				"interface one",
				n->ifname, n->ifname);
	return tbsi_err(err, -ETIMEDOUT,
			"'%s' has no usable IPv6 link-local address after %d "
			"s",
			n->ifname, (n->o.timeout_ms + 999) / 1000);
}

/* Waits for a link-local address that can be bound. */
static int wait_address(struct tbs_net *n, int64_t deadline,
			struct tbs_error *err)
{
	int ret;

	if (ipv6_conf(n, "disable_ipv6") == 1)
		return tbsi_err(err, -EADDRNOTAVAIL,
				"IPv6 is disabled on '%s' "
				"(net.ipv6.conf.%s.disable_ipv6 is 1): tbstream "
				"needs its link-local address; 'sysctl -w "
				"net.ipv6.conf.%s.disable_ipv6=0'",
				n->ifname, n->ifname, n->ifname);
	while (!find_link_local(n)) {
		if (tbsi_now_ms() >= deadline)
			return addr_timeout(n, err);
		ret = tbsi_wait_fd(-1, 0, n->o.cancel_fd,
				   tbsi_now_ms() + ADDR_POLL_MS);
		if (ret == -ECANCELED)
			return tbsi_err(err, ret, "cancelled");
	}
	return 0;
}

/* ---- up, down, free ---- */

static int net_find(struct tbs_net *n, const char *root, const char *peer,
		    struct tbs_error *err)
{
	struct tbs_offer o;
	unsigned int domain;
	uint64_t route;
	int ret;

	ret = tbs_transport_choose(root, peer, TBS_TRANSPORT_NET, &o, err);
	if (ret < 0)
		return ret;
	if (!tbsi_valid_ifname(o.ifname) || !o.unique_id[0])
		return tbsi_err(err, -ENODEV,
				"the interface of IP over Thunderbolt towards "
				"%s has no usable name or peer id",
				o.xdomain);
	snprintf(n->ifname, sizeof(n->ifname), "%.15s", o.ifname);
	snprintf(n->peer_uid, sizeof(n->peer_uid), "%s", o.unique_id);
	snprintf(n->peer_name, sizeof(n->peer_name), "%s",
		 o.device_name[0] ? o.device_name : o.xdomain);
	if (tbsi_parse_router(o.xdomain, &domain, &route, NULL))
		domain = 0;
	ret = tbs_host_uid(root, domain, n->host_uid, sizeof(n->host_uid),
			   err);
	if (ret)
		return ret;
	if (tbsi_uid_eq(n->host_uid, n->peer_uid))
		return tbsi_err(err, -EINVAL,
				"the peer announces this host's own unique id "
				"(%s)",
				n->host_uid);
	n->ifindex = if_nametoindex(n->ifname);
	if (!n->ifindex)
		return tbsi_err(err, -ENODEV,
				"the interface '%s' of IP over Thunderbolt "
				"towards %s is not in this network namespace",
				n->ifname, n->peer_name);
	lock_name(n);
	return 0;
}

static struct tbs_net *net_new(void)
{
	struct tbs_net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	n->rundir_fd = n->users_fd = n->name_fd = -1;
	return n;
}

static int net_opts(struct tbs_net *n, const struct tbs_net_opts *opts,
		    struct tbs_error *err)
{
	int ret = TBSI_OPTS_LOAD(&n->o, opts, port, port);

	if (ret)
		return tbsi_err(err, ret, "options of a newer library or "
					  "without TBS_OPTS_INIT()");
	if (n->o.timeout_ms <= 0)
		n->o.timeout_ms = NET_TIMEOUT_MS;
	if (!n->o.port)
		n->o.port = TBS_NET_PORT;
	if (n->o.port > 65535 || n->o.cancel_fd < 0)
		return tbsi_err(err, -EINVAL, "bad port or cancel descriptor");
	return 0;
}

int tbs_net_up(const char *root, const char *peer,
	       const struct tbs_net_opts *opts, struct tbs_net **np,
	       struct tbs_error *err)
{
	struct tbs_net *n = net_new();
	int64_t deadline;
	int ret, up;

	*np = NULL;
	if (!n)
		return tbsi_err(err, -ENOMEM, "out of memory");
	ret = net_opts(n, opts, err);
	if (!ret)
		ret = net_find(n, root, peer, err);
	deadline = tbsi_now_ms() + n->o.timeout_ms;
	if (!ret) {
		ret = users_lock(n, deadline);
		if (ret)
			tbsi_err(err, ret, "waited for the lock of '%s': %s",
				 n->ifname, strerror(-ret));
	}
	up = ret ? ret : iface_up(n, err);
	if (up < 0) {
		tbs_net_free(n);
		return up;
	}
	ret = wait_address(n, deadline, err);
	if (ret) {
		tbs_net_free(n);
		return ret;
	}
	*np = n;
	return up;
}

/*
 * Takes the interface down if the marker says so and nobody else uses it;
 * lock held.  Without a users lock, only what this process brought up.
 */
static int last_user_down(struct tbs_net *n)
{
	int fd, ret = 0;

	if (n->users_fd < 0)
		return n->brought_up ? if_set_up(n, false) : 0;
	close(n->users_fd);
	n->users_fd = -1;
	fd = users_open(n);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
		if (fd >= 0)
			close(fd);
		return 0; /* another job uses it; the last one takes it down */
	}
	if (marker(n, 0)) {
		ret = if_set_up(n, false);
		if (!ret)
			marker(n, -1);
	}
	close(fd);
	return ret;
}

int tbs_net_down(struct tbs_net *n, struct tbs_error *err)
{
	int ret;

	if (!n)
		return 0;
	pthread_mutex_lock(&n->lock);
	if (n->name_fd >= 0)
		close(n->name_fd);
	n->name_fd = -1;
	ret = n->done ? 0 : last_user_down(n);
	n->done = true;
	n->brought_up = false;
	pthread_mutex_unlock(&n->lock);
	if (ret)
		return tbsi_err(err, ret, "could not take '%s' down again: %s",
				n->ifname, strerror(-ret));
	return 0;
}

void tbs_net_free(struct tbs_net *n)
{
	if (!n)
		return;
	tbs_net_down(n, NULL);
	if (n->rundir_fd >= 0)
		close(n->rundir_fd);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
