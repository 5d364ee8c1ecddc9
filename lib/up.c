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
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define FIRST_HOPID 9
#define SHARED_HOPID 8 /* IP over Thunderbolt's; taken only as last resort */
#define LAST_HOPID 4095
#define FOLLOW_SETTLE_MS 200
#define FOLLOW_PAUSE_MS 300
#define POLL_MS 50

struct up_ctx {
	const char *root;
	const char *name;
	const struct tbs_up_opts *opts;
	struct tbs_peer peer;
	int64_t deadline;
	bool existed;
	struct tbs_error *err;
};

void tbs_up_opts_init(struct tbs_up_opts *opts)
{
	opts->timeout_ms = 30000;
	opts->ring_size = 0;
	opts->throttling = -1;
}

int tbs_up_opts_profile(struct tbs_up_opts *opts, const char *profile)
{
	if (!strcmp(profile, "latency")) {
		opts->ring_size = 128;
		opts->throttling = 0;
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
		return tbsi_err(
			c->err, -ENODEV,
			"the stream driver is not loaded ('%s' is missing): "
			"load it with 'modprobe thunderbolt_stream' on both "
			"hosts",
			path);
	tbsi_path(path, sizeof(path), c->root, TBSI_DEVICES);
	if (!tbsi_is_dir(path))
		return tbsi_err(c->err, -ENODEV,
				"no Thunderbolt/USB4 bus ('%s' is missing)",
				path);
	for (;;) {
		ret = tbs_peer_find(c->root, peer_uid, &c->peer, c->err);
		if (ret != -ENODEV || expired(c))
			return ret;
		tbsi_sleep_ms(POLL_MS * 4);
	}
}

static int apply_tuning(struct up_ctx *c)
{
	const char *s = c->peer.service;
	int ret = 0;

	if (c->opts->ring_size > 0)
		ret = tbs_stream_set(c->root, s, c->name, TBS_ATTR_RING_SIZE,
				     c->opts->ring_size, c->err);
	if (!ret && c->opts->throttling >= 0)
		ret = tbs_stream_set(c->root, s, c->name, TBS_ATTR_THROTTLING,
				     c->opts->throttling, c->err);
	return ret;
}

/* Another process creates or removes the stream at the same moment. */
static int contended(struct up_ctx *c)
{
	return tbsi_err(c->err, -EBUSY,
			"stream '%s' is being set up by another process at "
			"the same moment (another tbstream on it?)",
			c->name);
}

static int create(struct up_ctx *c)
{
	int ret;

	ret = tbs_stream_create(c->root, c->peer.service, c->name, c->err);
	if (ret == -EEXIST) /* it did not exist a moment ago */
		return contended(c);
	if (!ret)
		ret = apply_tuning(c);
	return ret;
}

/* Writes the first free HopID of 9.., then 8, to @attr. */
static int alloc_hopid(struct up_ctx *c, enum tbs_attr attr)
{
	const char *what = attr == TBS_ATTR_IN_HOPID ? "receive" : "transmit";
	int h, ret;

	for (h = FIRST_HOPID; h <= LAST_HOPID; h++) {
		ret = tbs_stream_set(c->root, c->peer.service, c->name, attr, h,
				     c->err);
		if (ret != -EBUSY)
			break;
	}
	if (ret == -EINVAL || ret == -EBUSY)
		ret = tbs_stream_set(c->root, c->peer.service, c->name, attr,
				     SHARED_HOPID, c->err);
	if (ret == -EINVAL || ret == -EBUSY)
		return tbsi_err(c->err, -ENOSPC,
				"no free HopID for the %s path of stream '%s' "
				"(tried %d..%d and %d): take down streams you "
				"no longer need "
				"('tbstream list', 'tbstream down')",
				what, c->name, FIRST_HOPID, h - 1,
				SHARED_HOPID);
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
	if (ret && !c->existed)
		tbs_stream_remove(c->root, c->peer.service, c->name, NULL);
	return ret;
}

/* Polls briefly for HopIDs taken from the advertisement. */
static bool follow_settled(struct up_ctx *c, struct tbs_stream *st)
{
	int64_t until = tbsi_now_ms() + FOLLOW_SETTLE_MS;

	do {
		if (tbs_stream_get(c->root, c->peer.service, c->name, st, NULL))
			return false;
		if (st->in_hopid > 0 && st->out_hopid > 0)
			return true;
		tbsi_sleep_ms(POLL_MS);
	} while (tbsi_now_ms() < until);
	return false;
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

	tbs_stream_remove(c->root, c->peer.service, c->name, NULL);
	if (c->existed)
		tbs_stream_create(c->root, c->peer.service, c->name, NULL);
	held_hopids(c, held, sizeof(held));
	if (held[0])
		return tbsi_err(
			c->err, -ETIMEDOUT,
			"stream '%s' did not get its HopIDs from the peer "
			"(%s) within %d s: run 'tbstream up %s' on the other "
			"host; "
			"if it runs already, streams here hold HopIDs it may "
			"have chosen: %s; take down those the peer no longer "
			"has",
			c->name, c->peer.unique_id, timeout_s(c), c->name,
			held);
	return tbsi_err(
		c->err, -ETIMEDOUT,
		"the peer (%s%s%s) did not set up stream '%s' within %d s: "
		"run 'tbstream up %s' on the other host",
		c->peer.device_name[0] ? c->peer.device_name : "",
		c->peer.device_name[0] ? ", " : "", c->peer.unique_id, c->name,
		timeout_s(c), c->name);
}

static int follow(struct up_ctx *c, struct tbs_stream *st)
{
	bool present = c->existed;
	int ret;

	for (;;) {
		if (!present) {
			ret = create(c);
			if (ret)
				return ret;
			present = true;
		}
		if (follow_settled(c, st))
			return 0;
		if (expired(c))
			return follow_timeout(c);
		ret = tbs_stream_remove(c->root, c->peer.service, c->name,
					c->err);
		if (ret)
			return ret == -ENOENT ? contended(c) : ret;
		present = false;
		tbsi_sleep_ms(FOLLOW_PAUSE_MS);
	}
}

static int wait_node(struct up_ctx *c, struct tbs_stream *st)
{
	int ret;

	for (;;) {
		ret = tbs_stream_get(c->root, c->peer.service, c->name, st,
				     c->err);
		if (ret)
			return ret;
		if (st->device[0] && tbsi_exists(st->device))
			return 0;
		if (expired(c))
			break;
		tbsi_sleep_ms(POLL_MS);
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

int tbs_stream_up(const char *root, const char *peer_uid, const char *name,
		  const struct tbs_up_opts *opts, struct tbs_stream *st,
		  struct tbs_error *err)
{
	struct tbs_up_opts o;
	struct up_ctx c = { .root = root, .name = name, .err = err };
	bool allocator = false;
	int ret;

	if (opts)
		o = *opts;
	else
		tbs_up_opts_init(&o);
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
	if (ret)
		return ret;
	c.existed = !tbs_stream_get(root, c.peer.service, name, st, NULL);
	if (c.existed && st->in_hopid > 0 && st->out_hopid > 0)
		return wait_node(&c, st);
	ret = allocator ? allocate(&c, st) : follow(&c, st);
	if (!ret)
		ret = wait_node(&c, st);
	return ret ? ret : !c.existed;
}
