// SPDX-License-Identifier: MIT
/*
 * Up: the zero-configuration set-up of a stream on both hosts.
 *
 * Both hosts run the same steps, in either order.  Without talking to each
 * other they agree on roles: the host whose unique id sorts lower is the
 * allocator, the other the follower.
 *
 *   allocator                          follower
 *   mkdir <service>/<name>             mkdir <service>/<name>
 *   ring_size, throttling              ring_size, throttling
 *   in_hopid  = 9, 10, ... (8 last)    HopIDs 0/0?  (advertisement not
 *   out_hopid = 9, 10, ... (8 last)      there yet) rmdir, pause, mkdir
 *          ---- advertisement ---->    HopIDs taken, mirrored
 *   wait for /dev/tbstreamX            wait for /dev/tbstreamX
 *
 * The allocator's mkdir already takes the peer's HopIDs when the peer
 * advertises the name: a stream a killed run left on the follower keeps
 * matching when the allocator makes its side again.  A stream that exists
 * with its HopIDs is used as it is (a follower's stream made again would
 * be a new device, and lose the HELLO budget that keeps retries from
 * wedging the link: session-budget.c).
 *
 * Self-healing (heal.c): while the follower's stream does not get its
 * HopIDs, and when the allocator finds no free HopID, streams towards the
 * same peer that nobody uses and the peer no longer has are removed:
 * their HopIDs may be the ones needed.  Throughout, the stream's ConfigFS
 * directory is locked (heal.c): another process's healing leaves it
 * alone, and a second bring-up of the same stream at the same moment
 * fails with -EBUSY at once; this one never removes a stream it did not
 * make.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "internal.h"

#define FIRST_HOPID 9
#define SHARED_HOPID 8 /* IP over Thunderbolt's; taken only as last resort */
#define LAST_HOPID 4095
#define FOLLOW_SETTLE_MS 200
#define FOLLOW_PAUSE_MS 300
#define HEAL_EVERY_MS 2000
#define HEAL_SETTLE_MS 2000 /* longer than an advertisement takes */
#define POLL_MS 50

struct up_ctx {
	const char *root;
	const char *name;
	const struct tbs_up_opts *opts;
	struct tbs_peer peer;
	int64_t deadline;
	bool existed;
	bool created; /* the stream there now is this call's own */
	int lockfd; /* exclusive lock on the stream's directory, or -1 */
	int64_t healed; /* when the follower last healed, 0: never */
	struct tbs_error *err;
};

int tbs_up_opts_profile(struct tbs_up_opts *opts, const char *profile)
{
	if (!strcmp(profile, "latency")) {
		opts->ring_size = 128;
		opts->throttling = TBS_THROTTLING_OFF;
	} else if (!strcmp(profile, "throughput")) {
		opts->ring_size = 4096;
		opts->throttling = 16384;
	} else {
		return -EINVAL;
	}
	return 0;
}

static bool expired(const struct up_ctx *c)
{
	return tbsi_now_ms() >= c->deadline;
}

/* Waits @ms, or less when the caller cancels: then -ECANCELED. */
static int pause_ms(struct up_ctx *c, int ms)
{
	struct pollfd pfd = { .fd = c->opts->cancel_fd, .events = POLLIN };

	if (!c->opts->cancel_fd) {
		tbsi_sleep_ms(ms);
		return 0;
	}
	if (poll(&pfd, 1, ms) == 0)
		return 0;
	return tbsi_err(c->err, -ECANCELED,
			"setting up stream '%s' was cancelled", c->name);
}

static int timeout_s(const struct up_ctx *c)
{
	return (c->opts->timeout_ms + 999) / 1000;
}

/* Waits until the peer (or the only one) is connected. */
static int find_peer(struct up_ctx *c, const char *peer_uid)
{
	char path[4096];
	int ret;

	/* A missing bus or driver will not come by waiting. */
	tbsi_path(path, sizeof(path), c->root, TBSI_CONFIGFS);
	if (!tbsi_is_dir(path))
		return tbsi_no_driver(c->root, c->err);
	tbsi_path(path, sizeof(path), c->root, TBSI_DEVICES);
	if (!tbsi_is_dir(path))
		return tbsi_no_bus(c->root, c->err);
	for (;;) {
		ret = tbs_peer_find(c->root, peer_uid, &c->peer, c->err);
		if (ret != -ENODEV || expired(c))
			return ret;
		ret = pause_ms(c, POLL_MS * 4);
		if (ret)
			return ret;
	}
}

static int apply_tuning(struct up_ctx *c)
{
	const char *s = c->peer.service;
	int ring = c->opts->ring_size, thr = c->opts->throttling, ret = 0;

	if (thr == TBS_THROTTLING_OFF)
		thr = 0;
	else if (!thr)
		thr = -1; /* the driver's default */
	if (ring > 0)
		ret = tbs_stream_set(c->root, s, c->name, TBS_ATTR_RING_SIZE,
				     ring, c->err);
	if (!ret && thr >= 0)
		ret = tbs_stream_set(c->root, s, c->name, TBS_ATTR_THROTTLING,
				     thr, c->err);
	return ret;
}

static void unlock_stream(struct up_ctx *c)
{
	tbsi_unlock(c->lockfd);
	c->lockfd = -1;
}

/* Another process creates or removes the stream at the same moment. */
static int contended(struct up_ctx *c)
{
	return tbsi_err(c->err, -EBUSY,
			"stream '%s' is being set up by another process at "
			"the same moment (another tbstream on it?)",
			c->name);
}

/*
 * Locks an existing stream: 0, -ENOENT when there is none, -EBUSY when
 * another process is bringing it up.
 */
static int lock_stream(struct up_ctx *c)
{
	int fd = tbsi_stream_lock(c->root, c->peer.service, c->name);

	if (fd == -EBUSY)
		return contended(c);
	if (fd == -ENOENT)
		return fd;
	if (fd < 0)
		return tbsi_err(c->err, fd,
				"could not lock stream '%s' in '%s': %s",
				c->name, TBSI_CONFIGFS_PARENT, strerror(-fd));
	unlock_stream(c);
	c->lockfd = fd;
	return 0;
}

static int create(struct up_ctx *c)
{
	int fd = -1, ret;

	ret = tbsi_stream_create_locked(c->root, c->peer.service, c->name, &fd,
					c->err);
	if (ret == -EEXIST || ret == -EBUSY) /* not there a moment ago */
		return contended(c);
	if (ret)
		return ret;
	unlock_stream(c);
	c->lockfd = fd;
	c->created = true;
	return apply_tuning(c);
}

/*
 * Removes this call's stream; -ENOENT when another process did (by hand:
 * a bring-up or healing leaves a locked stream alone).
 */
static int remove_own(struct up_ctx *c)
{
	int fd = c->lockfd;

	c->lockfd = -1;
	c->created = false;
	return tbsi_stream_remove_locked(c->root, c->peer.service, c->name, fd,
					 c->err);
}

/*
 * Removes the streams towards the peer that nobody uses and it lacks
 * (carefully on the allocator, see heal.c).
 */
static int heal(struct up_ctx *c, bool allocator)
{
	c->healed = tbsi_now_ms();
	return tbsi_heal(c->root, c->peer.service, c->name,
			 allocator ? HEAL_SETTLE_MS : 0);
}

/* Writes the first free HopID of 9.. to @attr: -EBUSY when none is. */
static int alloc_range(struct up_ctx *c, enum tbs_attr attr, int *last)
{
	int h, ret = -EBUSY;

	for (h = FIRST_HOPID; h <= LAST_HOPID; h++) {
		ret = tbs_stream_set(c->root, c->peer.service, c->name, attr, h,
				     c->err);
		if (ret != -EBUSY)
			break;
	}
	*last = h - 1;
	/* -EINVAL: past the highest HopID of the hardware */
	return ret == -EINVAL ? -EBUSY : ret;
}

static int no_hopid(struct up_ctx *c, const char *what, int last)
{
	char net[32], state[32], why[160] = "";

	if (tbsi_net_iface(c->root, net, sizeof(net), state, sizeof(state)) &&
	    !strcmp(state, "up"))
		snprintf(why, sizeof(why),
			 "; HopID 8 is IP over Thunderbolt's (%s): 'ip link "
			 "set %s down' frees it",
			 net, net);
	return tbsi_err(c->err, -ENOSPC,
			"no free HopID for the %s path of stream '%s' (tried "
			"%d..%d and %d): take down streams you no longer need "
			"('tbstream list', 'tbstream down')%s",
			what, c->name, FIRST_HOPID, last, SHARED_HOPID, why);
}

/*
 * Writes the first free HopID of 9.. to @attr; when none is, after healing
 * the streams nobody uses any more, and then 8.
 */
static int alloc_hopid(struct up_ctx *c, enum tbs_attr attr)
{
	const char *what = attr == TBS_ATTR_IN_HOPID ? "receive" : "transmit";
	int ret, last;

	ret = alloc_range(c, attr, &last);
	if (ret == -EBUSY && !c->healed && heal(c, true) > 0)
		ret = alloc_range(c, attr, &last);
	if (ret == -EBUSY)
		ret = tbs_stream_set(c->root, c->peer.service, c->name, attr,
				     SHARED_HOPID, c->err);
	if (ret == -EINVAL || ret == -EBUSY)
		return no_hopid(c, what, last);
	return ret;
}

static int allocate(struct up_ctx *c, struct tbs_stream *st)
{
	int ret = 0;

	if (!c->existed)
		ret = create(c);
	if (!ret)
		ret = tbs_stream_get(c->root, c->peer.service, c->name, st,
				     c->err);
	if (!ret && st->in_hopid <= 0)
		ret = alloc_hopid(c, TBS_ATTR_IN_HOPID);
	if (!ret && st->out_hopid <= 0)
		ret = alloc_hopid(c, TBS_ATTR_OUT_HOPID);
	return ret;
}

/*
 * Polls briefly for HopIDs taken from the advertisement: 1 when they are
 * there, 0 when not, or -ECANCELED.
 */
static int follow_settled(struct up_ctx *c, struct tbs_stream *st)
{
	int64_t until = tbsi_now_ms() + FOLLOW_SETTLE_MS;
	int ret;

	do {
		if (tbs_stream_get(c->root, c->peer.service, c->name, st, NULL))
			return 0;
		if (st->in_hopid > 0 && st->out_hopid > 0)
			return 1;
		ret = pause_ms(c, POLL_MS);
		if (ret)
			return ret;
	} while (tbsi_now_ms() < until);
	return 0;
}

/*
 * Names the streams towards the same peer that hold HopIDs: a stream the
 * peer no longer has keeps its HopIDs here, and the peer's choice for a new
 * stream cannot be taken while they are held.
 */
static void held_hopids(struct up_ctx *c, char *buf, size_t len)
{
	struct tbs_stream *arr;
	size_t used = 0;
	int n, i;

	buf[0] = '\0';
	n = tbs_streams_list(c->root, &arr, NULL);
	for (i = 0; i < n && used < len; i++) {
		if (strcmp(arr[i].service, c->peer.service) ||
		    !strcmp(arr[i].name, c->name) || arr[i].in_hopid <= 0)
			continue;
		used += snprintf(buf + used, len - used, "%s'%s' (%d/%d)",
				 used ? ", " : "", arr[i].name, arr[i].in_hopid,
				 arr[i].out_hopid);
	}
	tbs_streams_free(arr);
}

static int follow_timeout(struct up_ctx *c)
{
	char held[256];

	remove_own(c);
	if (c->existed)
		tbs_stream_create(c->root, c->peer.service, c->name, NULL);
	held_hopids(c, held, sizeof(held));
	if (held[0])
		return tbsi_err(
			c->err, -ETIMEDOUT,
			"stream '%s' did not get its HopIDs from the peer "
			"(%s) within %d s: run the matching command (or "
			"'tbstream "
			"up %s') on the other host; "
			"if it runs already, streams here hold HopIDs it may "
			"have chosen: %s; take down those the peer no longer "
			"has",
			c->name, c->peer.unique_id, timeout_s(c), c->name,
			held);
	return tbsi_err(
		c->err, -ETIMEDOUT,
		"the peer (%s%s%s) did not set up stream '%s' within %d s: "
		"run the matching command (or 'tbstream up %s') on the other "
		"host",
		c->peer.device_name[0] ? c->peer.device_name : "",
		c->peer.device_name[0] ? ", " : "", c->peer.unique_id, c->name,
		timeout_s(c), c->name);
}

/* Whether the follower should heal now: at once, then now and then. */
static bool heal_due(const struct up_ctx *c)
{
	return !c->healed || tbsi_now_ms() - c->healed >= HEAL_EVERY_MS;
}

/* Whether another process has the stream's device open: not removed. */
static bool held_by_another(struct up_ctx *c, struct tbs_stream *st)
{
	pid_t pid;

	return !tbs_stream_get(c->root, c->peer.service, c->name, st, NULL) &&
	       tbs_stream_holders(c->root, st, &pid, 1, getpid()) > 0;
}

static int follow(struct up_ctx *c, struct tbs_stream *st, bool present)
{
	bool healed;
	int ret;

	for (;;) {
		if (!present) {
			ret = create(c);
			if (ret)
				return ret;
			present = true;
		}
		ret = follow_settled(c, st);
		if (ret)
			return ret < 0 ? ret : 0;
		if (expired(c))
			return follow_timeout(c);
		if (held_by_another(c, st))
			return tbsi_err(c->err, -EBUSY,
					"stream '%s' is in use by another "
					"process (another tbstream on it?)",
					c->name);
		healed = heal_due(c) && heal(c, false) > 0;
		ret = remove_own(c);
		if (ret)
			return ret == -ENOENT ? contended(c) : ret;
		present = false;
		/* After healing, made again at once to read the advertisement */
		ret = healed ? 0 : pause_ms(c, FOLLOW_PAUSE_MS);
		if (ret)
			return ret;
	}
}

static int wait_node(struct up_ctx *c, struct tbs_stream *st)
{
	int ret;

	for (;;) {
		ret = tbs_stream_get(c->root, c->peer.service, c->name, st,
				     c->err);
		if (ret == -ENOENT) /* removed since: another process on it */
			return tbsi_err(c->err, -EBUSY,
					"stream '%s' was removed by another "
					"process while it was being set up "
					"(another tbstream on it?)",
					c->name);
		if (ret)
			return ret;
		if (st->device[0] && tbsi_exists(st->device))
			return 0;
		if (expired(c))
			break;
		ret = pause_ms(c, POLL_MS);
		if (ret)
			return ret;
	}
	if (!st->device[0])
		return tbsi_err(c->err, -EIO,
				"stream '%s' has no device index: the driver "
				"did not create a device",
				c->name);
	return tbsi_err(c->err, -ETIMEDOUT,
			"the device node '%s' of stream '%s' did not appear "
			"within %d s: "
			"is udev running?",
			st->device, c->name, timeout_s(c));
}

static int pick_role(struct up_ctx *c, bool *allocator)
{
	char self[64];
	int ret, cmp;

	ret = tbs_host_uid(c->root, c->peer.domain, self, sizeof(self), c->err);
	if (ret)
		return ret;
	cmp = strcasecmp(self, c->peer.unique_id);
	if (!cmp)
		return tbsi_err(
			c->err, -EINVAL,
			"this host and its peer have the same unique id '%s': "
			"cannot choose which one allocates",
			self);
	*allocator = cmp < 0;
	return 0;
}

/*
 * Undoes what this call created, after a failure that left the stream
 * behind (HopIDs that ran out, a cancellation, a device node that never
 * came); never a stream that another process made meanwhile.
 */
static void undo(struct up_ctx *c)
{
	if (!c->created || c->existed)
		return;
	tbsi_stream_remove_locked(c->root, c->peer.service, c->name, c->lockfd,
				  NULL);
	c->lockfd = -1;
	c->created = false;
}

/* Brings the stream up on a peer found and a role chosen. */
static int bring_up(struct up_ctx *c, struct tbs_stream *st, bool allocator)
{
	int ret;

	ret = lock_stream(c);
	if (ret && ret != -ENOENT)
		return ret;
	c->existed = !ret && !tbs_stream_get(c->root, c->peer.service, c->name,
					     st, NULL);
	if (c->existed && st->in_hopid > 0 && st->out_hopid > 0)
		return wait_node(c, st);
	ret = allocator ? allocate(c, st) : follow(c, st, c->existed);
	if (!ret)
		ret = wait_node(c, st);
	if (ret)
		undo(c);
	return ret;
}

int tbs_stream_up(const char *root, const char *peer_uid, const char *name,
		  const struct tbs_up_opts *opts, struct tbs_stream *st,
		  struct tbs_error *err)
{
	struct up_ctx c = {
		.root = root, .name = name, .err = err, .lockfd = -1
	};
	struct tbs_up_opts o;
	bool allocator = false;
	int ret;

	ret = TBSI_OPTS_LOAD(&o, opts, cancel_fd, cancel_fd);
	if (ret)
		return tbsi_err(err, ret, "struct tbs_up_opts: %s",
				ret == -E2BIG
					? "options newer than this library"
					: "size not set (TBS_OPTS_INIT)");
	if (o.timeout_ms <= 0)
		o.timeout_ms = 30000;
	c.opts = &o;
	c.deadline = tbsi_now_ms() + o.timeout_ms;
	if (!tbsi_valid_name(name))
		return tbsi_err(
			err, -EINVAL,
			"invalid stream name '%s': 1 to %d bytes, no '/'", name,
			TBS_NAME_MAX);
	ret = find_peer(&c, peer_uid);
	if (!ret)
		ret = pick_role(&c, &allocator);
	if (!ret)
		ret = bring_up(&c, st, allocator);
	unlock_stream(&c);
	return ret ? ret : !c.existed;
}
