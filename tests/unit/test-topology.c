// SPDX-License-Identifier: MIT
/*
 * Topology and configuration against a fake system root built by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tbstream.h"
#include "../tap.h"
#include "tree.h"

#define DEV "sys/bus/thunderbolt/devices/"
#define CFG "sys/kernel/config/thunderbolt/stream/"

static const char *const tree[][2] = {
	{ DEV "domain0/uevent", "" },
	{ DEV "0-0/unique_id", "aaaa-host" },
	{ DEV "1-0/unique_id", "aaaa-host" },
	/* a device router with no service */
	{ DEV "0-1/unique_id", "dddd-dock" },
	{ DEV "0-1/device_name", "Dock" },
	/* a host offering network as .0 and stream as .1 */
	{ DEV "0-503/unique_id", "cccc-peer" },
	{ DEV "0-503/device_name", "hostc" },
	{ DEV "0-503/vendor_name", "Acme" },
	{ DEV "0-503/rx_speed", "40.0 Gb/s" },
	{ DEV "0-503/tx_speed", "20.0 Gb/s" },
	{ DEV "0-503/rx_lanes", "2" },
	{ DEV "0-503/tx_lanes", "1" },
	{ DEV "0-503.0/key", "network" },
	{ DEV "0-503.1/key", "stream" },
	{ DEV "0-503.1/prtcid", "1" },
	/* a second host in domain 1, stream only, no link attributes */
	{ DEV "1-3/unique_id", "bbbb-peer" },
	{ DEV "1-3/device_name", "hostb" },
	{ DEV "1-3.0/key", "stream" },
	/* a host that offers only network */
	{ DEV "0-7/unique_id", "eeee-net" },
	{ DEV "0-7.0/key", "network" },
	/* streams: one towards hostc, one towards a peer not connected */
	{ CFG "0-503.1/s1/index", "2" },
	{ CFG "0-503.1/s1/in_hopid", "9" },
	{ CFG "0-503.1/s1/out_hopid", "10" },
	{ CFG "0-503.1/s1/ring_size", "256" },
	{ CFG "0-503.1/s1/throttling", "8192" },
	{ CFG "1-3.0/s1/index", "0" },
	{ CFG "1-3.0/s1/in_hopid", "0" },
	{ CFG "1-3.0/s1/out_hopid", "0" },
	{ CFG "0-9.0/old/index", "1" },
};

static void build(const char *root)
{
	size_t i;

	for (i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		tree_put(root, tree[i][0], tree[i][1]);
}

static void test_peers(const char *root)
{
	struct tbs_peer *p;
	int n;

	n = tbs_peers_list(root, &p, NULL);
	is_int(n, 2, "two hosts offer the stream service");
	if (n != 2)
		return;
	ok(!strcmp(p[0].xdomain, "0-503"), "sorted by domain, then route");
	ok(!strcmp(p[0].service, "0-503.1"), "service found by key, not .0");
	ok(p[0].network, "network service noticed");
	ok(!strcmp(p[0].unique_id, "cccc-peer"), "unique id read");
	ok(!strcmp(p[0].device_name, "hostc"), "device name read");
	ok(!strcmp(p[0].vendor_name, "Acme"), "vendor name read");
	ok(!strcmp(p[0].rx_speed, "40.0 Gb/s"), "rx speed read");
	is_int(p[0].rx_lanes, 2, "rx lanes read");
	is_int(p[0].tx_lanes, 1, "tx lanes read");
	is_int(p[0].route, 0x503, "route is hexadecimal");
	ok(!strcmp(p[1].service, "1-3.0") && p[1].domain == 1,
	   "second peer in domain 1");
	ok(!p[1].network && !p[1].rx_speed[0] && !p[1].rx_lanes,
	   "missing link attributes are empty");
	tbs_peers_free(p);
}

static const struct {
	const char *spec;
	int ret;
	const char *service;
} find_cases[] = {
	{ NULL, -ENOTUNIQ, NULL },     { "cccc-peer", 0, "0-503.1" },
	{ "CCCC-PEER", 0, "0-503.1" }, { "hostb", 0, "1-3.0" },
	{ "0-503", 0, "0-503.1" },     { "503", 0, "0-503.1" },
	{ "1-3.0", 0, "1-3.0" },       { "Dock", -ENODEV, NULL },
	{ "eeee-net", -ENODEV, NULL }, { "nope", -ENODEV, NULL },
};

static void test_find(const char *root)
{
	struct tbs_error e = { 0 };
	struct tbs_peer p;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
		const char *spec = find_cases[i].spec;

		ret = tbs_peer_find(root, spec, &p, &e);
		is_int(ret, find_cases[i].ret, spec ? spec : "(no spec)");
		if (!ret)
			ok(!strcmp(p.service, find_cases[i].service),
			   "'%s' is %s", spec, find_cases[i].service);
		else
			ok(e.msg[0] && e.code == ret, "'%s' explained: %s",
			   spec ? spec : "", e.msg);
	}
}

static void test_host(const char *root)
{
	char uid[64];

	is_int(tbs_host_uid(root, 0, uid, sizeof(uid), NULL), 0,
	       "host unique id of domain 0");
	ok(!strcmp(uid, "aaaa-host"), "host unique id read");
	is_int(tbs_host_uid(root, 5, uid, sizeof(uid), NULL), -ENODEV,
	       "no host router in domain 5");
}

/*
 * Reading one stream does not look for holders (a walk over every
 * process's descriptors); listing does, for all streams in one walk.
 */
static void test_holders(const char *root)
{
	struct tbs_stream *s, st;
	int fd, n;

	tree_put(root, "dev/tbstream2", "");
	is_int(tbs_stream_get(root, "0-503.1", "s1", &st, NULL), 0,
	       "s1 read alone");
	fd = open(st.device, O_RDONLY | O_CLOEXEC);
	ok(fd >= 0, "s1's device opened by this process");
	is_int(tbs_stream_get(root, "0-503.1", "s1", &st, NULL), 0,
	       "s1 read alone again");
	is_int(st.holders, -1, "reading one stream does not look for holders");
	n = tbs_streams_list(root, &s, NULL);
	ok(n == 3 && s[0].holders == 1 && s[0].holder == getpid(),
	   "listing finds this process holding s1");
	ok(n == 3 && s[1].holders == 0 && s[2].holders == 0,
	   "and nobody holding the others");
	tbs_streams_free(s);
	is_int(tbs_stream_holders(root, &st, NULL, 0, 0), 1,
	       "tbs_stream_holders() counts it");
	is_int(tbs_stream_holders(root, &st, NULL, 0, getpid()), 0,
	       "and leaves out an excluded process");
	if (fd >= 0)
		close(fd);
}

static void test_streams(const char *root)
{
	struct tbs_stream *s, st;
	struct tbs_error e = { 0 };
	int n;

	n = tbs_streams_list(root, &s, NULL);
	is_int(n, 3, "three streams configured");
	if (n == 3) {
		ok(!strcmp(s[0].service, "0-503.1") && s[0].connected,
		   "s1 towards a connected peer");
		ok(!strcmp(s[0].peer_uid, "cccc-peer"), "s1's peer is cccc");
		is_int(s[0].index, 2, "index read");
		is_int(s[0].in_hopid, 9, "in_hopid read");
		is_int(s[0].out_hopid, 10, "out_hopid read");
		ok(strstr(s[0].device, "/dev/tbstream2") ==
			   s[0].device + strlen(s[0].device) - 14,
		   "device from index: %s", s[0].device);
		ok(!strcmp(s[1].service, "0-9.0") && !s[1].connected,
		   "old towards a peer not connected");
		is_int(s[0].holders, 0, "no holder");
	}
	tbs_streams_free(s);
	test_holders(root);
	is_int(tbs_stream_find(root, NULL, "s1", &st, &e), -ENOTUNIQ,
	       "s1 exists towards two peers");
	is_int(tbs_stream_find(root, "bbbb-peer", "s1", &st, &e), 0,
	       "s1 found by peer unique id");
	ok(!strcmp(st.service, "1-3.0"), "the one towards hostb");
	is_int(tbs_stream_find(root, NULL, "zz", &st, &e), -ENOENT,
	       "no stream zz");
	ok(strstr(e.msg, "zz") != NULL, "message names it: %s", e.msg);
}

static void test_config(const char *root)
{
	struct tbs_error e = { 0 };
	struct tbs_stream st;
	char path[PATH_MAX];

	is_int(tbs_stream_create(root, "1-3.0", "new", &e), 0, "create");
	is_int(tbs_stream_create(root, "1-3.0", "new", &e), -EEXIST,
	       "create again: exists");
	is_int(tbs_stream_create(root, "1-3.0", "ninechars", &e), -EINVAL,
	       "name longer than 8 bytes refused");
	tree_put(root, CFG "1-3.0/new/ring_size", "256");
	is_int(tbs_stream_set(root, "1-3.0", "new", TBS_ATTR_RING_SIZE, 1024,
			      &e),
	       0, "set ring size");
	tbs_stream_get(root, "1-3.0", "new", &st, NULL);
	is_int(st.ring_size, 1024, "ring size written");
	is_int(tbs_stream_set(root, "1-3.0", "new", TBS_ATTR_IN_HOPID, 9, &e),
	       -ENOENT, "set a missing attribute fails");
	ok(strstr(e.msg, "could not write '9' to '") &&
		   strstr(e.msg, "in_hopid'"),
	   "message names value and path: %s", e.msg);
	tree_mkdir(root, CFG "0-9.0/empty");
	is_int(tbs_stream_remove(root, "0-9.0", "empty", &e), 0,
	       "remove a stream");
	snprintf(path, sizeof(path), "%s/" CFG "0-9.0", root);
	ok(access(path, F_OK) == 0, "non-empty service directory kept");
	tree_mkdir(root, CFG "2-5.0/only");
	is_int(tbs_stream_remove(root, "2-5.0", "only", &e), 0,
	       "remove the only stream");
	snprintf(path, sizeof(path), "%s/" CFG "2-5.0", root);
	ok(access(path, F_OK) != 0, "empty service directory removed");
}

static void test_missing(void)
{
	struct tbs_error e = { 0 };
	struct tbs_peer *p;
	struct tbs_stream *s;
	char *root = tree_new();

	is_int(tbs_peers_list(root, &p, &e), -ENODEV, "no bus: ENODEV");
	ok(strstr(e.msg, "no Thunderbolt/USB4 bus") != NULL, "%s", e.msg);
	tree_mkdir(root, DEV);
	is_int(tbs_peers_list(root, &p, &e), 0, "bus without peers: 0");
	is_int(tbs_peer_find(root, NULL, (struct tbs_peer[1]){}, &e), -ENODEV,
	       "no peer: ENODEV");
	ok(strstr(e.msg, "not loaded") != NULL, "says the driver is missing");
	is_int(tbs_streams_list(root, &s, &e), -ENODEV,
	       "no ConfigFS directory: ENODEV");
	tree_mkdir(root, CFG);
	tbs_peer_find(root, NULL, (struct tbs_peer[1]){}, &e);
	ok(strstr(e.msg, "no peer") != NULL, "says no peer: %s", e.msg);
	tree_free(root);
}

int main(void)
{
	char *root = tree_new();

	build(root);
	test_peers(root);
	test_find(root);
	test_host(root);
	test_streams(root);
	test_config(root);
	tree_free(root);
	test_missing();
	return tap_done();
}
