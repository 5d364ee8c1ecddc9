// SPDX-License-Identifier: MIT
/*
 * The network transport's pieces that need no second host: the messages
 * (every field, every bit flipped, every length), the offers and the
 * automatic choice on fake system roots, and the interface checks of
 * tbs_net_up() against interfaces of this network namespace.
 */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>

#include "../../fuzz/net-target.h"
#include "../fuzz-replay.h"
#include "../tap.h"
#include "tree.h"

#define DEV "sys/bus/thunderbolt/devices/"

/* ---- messages ---- */

static struct tbsi_net_msg sample(uint8_t type)
{
	struct tbsi_net_msg m = {
		.type = type,
		.nonce = 0x1122334455667788ULL,
		.peer_nonce = type == TBSI_NET_ANNOUNCE ? 0 : 42,
	};

	snprintf(m.name, sizeof(m.name), "backup");
	snprintf(m.uid, sizeof(m.uid), "3c2a0f6e-0000-4000-8000-0123456789ab");
	if (type == TBSI_NET_ANNOUNCE) {
		m.flags = TBSI_NET_LISTEN;
		m.port = 40123;
	}
	return m;
}

static void roundtrip(void)
{
	uint8_t t, buf[TBSI_NET_MSG_LEN];
	struct tbsi_net_msg m, d;

	for (t = TBSI_NET_ANNOUNCE; t <= TBSI_NET_ACCEPT; t++) {
		m = sample(t);
		tbsi_net_encode(&m, buf);
		ok(!tbsi_net_decode(buf, sizeof(buf), &d) && d.type == t &&
			   d.flags == m.flags && !strcmp(d.name, m.name) &&
			   d.nonce == m.nonce && d.peer_nonce == m.peer_nonce &&
			   d.port == m.port && !strcmp(d.uid, m.uid),
		   "type %u: decoded as encoded", t);
	}
	m = sample(TBSI_NET_CONNECT);
	snprintf(m.name, sizeof(m.name), "12345678");
	tbsi_net_encode(&m, buf);
	ok(!tbsi_net_decode(buf, sizeof(buf), &d) &&
		   !strcmp(d.name, "12345678"),
	   "a name of 8 bytes");
}

static void flips_and_lengths(void)
{
	uint8_t buf[TBSI_NET_MSG_LEN + 1], x[TBSI_NET_MSG_LEN + 1];
	struct tbsi_net_msg m = sample(TBSI_NET_ANNOUNCE), d;
	int bad = 0;
	size_t i, len;

	tbsi_net_encode(&m, buf);
	for (i = 0; i < TBSI_NET_MSG_LEN * 8; i++) {
		memcpy(x, buf, TBSI_NET_MSG_LEN);
		x[i / 8] ^= (uint8_t)(1u << (i % 8));
		bad += tbsi_net_decode(x, TBSI_NET_MSG_LEN, &d) != 0;
	}
	is_int(bad, TBSI_NET_MSG_LEN * 8, "every bit flipped is refused");
	bad = 0;
	buf[TBSI_NET_MSG_LEN] = 0;
	for (len = 0; len <= TBSI_NET_MSG_LEN + 1; len++)
		if (len != TBSI_NET_MSG_LEN)
			bad += tbsi_net_decode(buf, len, &d) == -EBADMSG;
	is_int(bad, TBSI_NET_MSG_LEN + 1, "every other length is refused");
}

/* Encodes @m, lets @edit change the bytes, and checksums them again. */
static int decode_edited(void (*edit)(uint8_t *b), struct tbsi_net_msg *d)
{
	struct tbsi_net_msg m = sample(TBSI_NET_ANNOUNCE);
	uint8_t b[TBSI_NET_MSG_LEN];

	tbsi_net_encode(&m, b);
	edit(b);
	tbsi_le_put64(b + 104, XXH3_64bits(b, 104));
	return tbsi_net_decode(b, sizeof(b), d);
}

static void e_version(uint8_t *b) { b[4] = 2; }
static void e_type0(uint8_t *b) { b[5] = 0; }
static void e_type4(uint8_t *b) { b[5] = 4; }
static void e_len0(uint8_t *b) { b[7] = 0; }
static void e_len9(uint8_t *b) { b[7] = 9; }
static void e_slash(uint8_t *b) { b[9] = '/'; }
static void e_space(uint8_t *b) { b[9] = ' '; }
static void e_dot(uint8_t *b) { b[8] = '.'; }
static void e_ctrl(uint8_t *b) { b[10] = 0x1b; }
static void e_pad(uint8_t *b) { b[15] = 'x'; }
static void e_nonce0(uint8_t *b) { memset(b + 16, 0, 8); }
static void e_res34(uint8_t *b) { b[35] = 1; }
static void e_res100(uint8_t *b) { b[101] = 1; }
static void e_uid_full(uint8_t *b) { memset(b + 36, 'a', 64); }
static void e_uid_empty(uint8_t *b) { memset(b + 36, 0, 64); }
static void e_uid_esc(uint8_t *b) { b[40] = 0x1b; }
static void e_uid_tail(uint8_t *b) { b[98] = 'z'; }
static void e_listen_connect(uint8_t *b) { b[5] = TBSI_NET_CONNECT; }
static void e_listen_port0(uint8_t *b) { memset(b + 32, 0, 2); }

static void hostile_fields(void)
{
	static const struct {
		void (*edit)(uint8_t *b);
		int want;
		const char *what;
	} cases[] = {
		{ e_version, -EPROTONOSUPPORT, "another version" },
		{ e_type0, -EBADMSG, "type 0" },
		{ e_type4, -EBADMSG, "an unknown type" },
		{ e_len0, -EBADMSG, "an empty name" },
		{ e_len9, -EBADMSG, "a name of 9 bytes" },
		{ e_slash, -EBADMSG, "a '/' in the name" },
		{ e_space, -EBADMSG, "a blank in the name" },
		{ e_dot, -EBADMSG, "a name that begins with '.'" },
		{ e_ctrl, -EBADMSG, "a control character in the name" },
		{ e_pad, -EBADMSG, "bytes after the name" },
		{ e_nonce0, -EBADMSG, "nonce 0" },
		{ e_res34, -EBADMSG, "reserved bytes 34..35 set" },
		{ e_res100, -EBADMSG, "reserved bytes 100..103 set" },
		{ e_uid_full, -EBADMSG, "a unique id without its NUL" },
		{ e_uid_empty, -EBADMSG, "an empty unique id" },
		{ e_uid_esc, -EBADMSG, "an escape in the unique id" },
		{ e_uid_tail, -EBADMSG, "bytes after the unique id's NUL" },
		{ e_listen_connect, -EBADMSG, "LISTEN on a CONNECT" },
		{ e_listen_port0, -EBADMSG, "LISTEN on port 0" },
	};
	struct tbsi_net_msg d;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(decode_edited(cases[i].edit, &d), cases[i].want,
		       cases[i].what);
}

/*
 * The fuzz target over valid messages with bytes changed in their fields
 * (checksum made again, so the field checks are reached) and in the rest.
 */
static void fuzz_replay(void)
{
	uint8_t buf[TBSI_NET_MSG_LEN];
	struct tbsi_net_msg m;
	uint64_t st = 7;
	int i, k, valid = 0;

	for (i = 0; i < 50000; i++) {
		m = sample((uint8_t)(1 + rnd(&st) % 3));
		if (m.type != TBSI_NET_ANNOUNCE)
			m.flags = 0;
		tbsi_net_encode(&m, buf);
		for (k = 1 + rnd(&st) % 3; k > 0; k--)
			buf[rnd(&st) % (TBSI_NET_MSG_LEN - 8)] =
				(uint8_t)(rnd(&st) % 4 ? rnd(&st) : 0);
		valid += fuzz_net_one(buf, rnd(&st) % 8 ? TBSI_NET_MSG_LEN - 8
							 : TBSI_NET_MSG_LEN);
	}
	ok(valid > 0 && valid < 50000,
	   "fuzz target: 50000 changed messages, %d still valid, each "
	   "canonical",
	   valid);
}

/* ---- offers and the choice ---- */

static const char *const tree[][2] = {
	{ DEV "domain0/security", "user" },
	{ DEV "0-0/unique_id", "aaaa-host" },
	/* both services, and this host's interface of the network one */
	{ DEV "0-1/unique_id", "bbbb-both" },
	{ DEV "0-1/device_name", "both" },
	{ DEV "0-1.0/key", "network" },
	{ DEV "0-1.0/net/thunderbolt0/operstate", "down" },
	{ DEV "0-1.1/key", "stream" },
	/* only the network service, with an interface */
	{ DEV "0-3/unique_id", "cccc-net" },
	{ DEV "0-3/device_name", "netonly" },
	{ DEV "0-3.0/key", "network" },
	{ DEV "0-3.0/net/thunderbolt1/operstate", "up" },
	/* the network service, no interface here (thunderbolt_net not loaded) */
	{ DEV "0-5/unique_id", "dddd-noif" },
	{ DEV "0-5/device_name", "noif" },
	{ DEV "0-5.0/key", "network" },
	/* nothing */
	{ DEV "0-7/unique_id", "eeee-none" },
	{ DEV "0-7/device_name", "none" },
	/* a hostile interface name is never taken */
	{ DEV "0-9/unique_id", "ffff-evil" },
	{ DEV "0-9/device_name", "evil" },
	{ DEV "0-9.0/key", "network" },
	{ DEV "0-9.0/net/a b/operstate", "up" },
};

static const struct tbs_offer *by_name(const struct tbs_offer *o, int n,
				       const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(o[i].device_name, name))
			return &o[i];
	return NULL;
}

static void offers(const char *root, bool driver)
{
	const struct tbs_offer *b, *c, *d, *e, *f;
	struct tbs_offer *o;
	int n;

	n = tbs_offers_list(root, &o, NULL);
	is_int(n, 5, "every connected host is listed");
	b = by_name(o, n, "both");
	c = by_name(o, n, "netonly");
	d = by_name(o, n, "noif");
	e = by_name(o, n, "none");
	f = by_name(o, n, "evil");
	if (!ok(b && c && d && e && f, "found by name")) {
		tbs_offers_free(o);
		return;
	}
	ok(!strcmp(b->stream_service, "0-1.1") &&
		   !strcmp(b->net_service, "0-1.0") &&
		   !strcmp(b->ifname, "thunderbolt0"),
	   "services and the interface under the network service");
	is_int(b->stream_here, driver, "this host's driver seen");
	is_int(b->transport,
	       driver ? TBS_TRANSPORT_STREAM : TBS_TRANSPORT_NET,
	       driver ? "both drivers: the stream"
		      : "no driver here: the network");
	is_int(c->transport, TBS_TRANSPORT_NET,
	       "no stream service there: the network");
	ok(strstr(c->why, driver ? "netonly has no stream driver"
				 : "neither this host nor netonly"),
	   "and why: %s", c->why);
	is_int(d->transport, TBS_TRANSPORT_AUTO, "no interface here: none");
	ok(strstr(d->why, "modprobe thunderbolt_net"), "and why: %s", d->why);
	is_int(e->transport, TBS_TRANSPORT_AUTO, "nothing offered: none");
	ok(!f->ifname[0], "an interface name with a blank is not taken");
	tbs_offers_free(o);
}

static void choose(const char *root)
{
	struct tbs_error err = { 0 };
	struct tbs_offer o;

	is_int(tbs_transport_choose(root, NULL, 0, &o, &err), -ENOTUNIQ,
	       "several hosts and no --peer");
	is_int(tbs_transport_choose(root, "netonly", TBS_TRANSPORT_AUTO, &o,
				    &err),
	       TBS_TRANSPORT_NET, "by device name: the network");
	is_int(tbs_transport_choose(root, "CCCC-NET", TBS_TRANSPORT_NET, &o,
				    &err),
	       TBS_TRANSPORT_NET, "by unique id, any case");
	is_int(tbs_transport_choose(root, "3", TBS_TRANSPORT_STREAM, &o, &err),
	       -ENODEV, "by route: no stream service there");
	ok(strstr(err.msg, "netonly does not offer the stream service"),
	   "says so: %s", err.msg);
	is_int(tbs_transport_choose(root, "0-5", TBS_TRANSPORT_NET, &o, &err),
	       -ENODEV, "network wanted without an interface here");
	ok(strstr(err.msg, "load thunderbolt_net here"), "says so: %s",
	   err.msg);
	is_int(tbs_transport_choose(root, "none", TBS_TRANSPORT_NET, &o, &err),
	       -ENODEV, "network wanted from a host without it");
	ok(strstr(err.msg, "load thunderbolt_net there"), "says so: %s",
	   err.msg);
	is_int(tbs_transport_choose(root, "none", TBS_TRANSPORT_AUTO, &o,
				    &err),
	       -ENODEV, "auto, and nothing works");
	is_int(tbs_transport_choose(root, "nobody", TBS_TRANSPORT_AUTO, &o,
				    &err),
	       -ENODEV, "no such host");
	ok(strstr(err.msg, "no connected host matches 'nobody'"),
	   "says so: %s", err.msg);
}

static void valid_ifnames(void)
{
	ok(tbsi_valid_ifname("thunderbolt0") && tbsi_valid_ifname("tb-1.x"),
	   "ordinary interface names");
	ok(!tbsi_valid_ifname("") && !tbsi_valid_ifname(".") &&
		   !tbsi_valid_ifname("..") && !tbsi_valid_ifname("a/b") &&
		   !tbsi_valid_ifname("a:1") && !tbsi_valid_ifname("a\tb") &&
		   !tbsi_valid_ifname("0123456789abcdef"),
	   "names no interface can have");
}

/* ---- tbs_net_up() against this namespace's interfaces ---- */

static void net_up(const char *root)
{
	struct tbs_net_opts o =
		TBS_OPTS_INIT(tbs_net_opts, .timeout_ms = 200);
	struct tbs_error err = { 0 };
	struct tbs_net *n = NULL;
	int ret, p[2];

	ret = tbs_net_up(root, "both", &o, &n, &err);
	ok(ret == -ENODEV && !n && strstr(err.msg, "not in this network "
						   "namespace"),
	   "an interface that is not here: %s", err.msg);
	o.size = 4;
	is_int(tbs_net_up(root, "both", &o, &n, &err), -EINVAL,
	       "options without TBS_OPTS_INIT()");
	tbs_net_free(NULL);
	is_int(tbs_net_down(NULL, NULL), 0, "tbs_net_down(NULL)");
	if (!if_nametoindex("lo")) {
		tap_skip("no loopback interface");
		return;
	}
	/*
	 * The loopback interface stands for one of IP over Thunderbolt: it
	 * is up and has a carrier, but never a link-local address.
	 */
	tree_put(root, DEV "0-b/unique_id", "abab-lo");
	tree_put(root, DEV "0-b/device_name", "lohost");
	tree_put(root, DEV "0-b.0/key", "network");
	tree_put(root, DEV "0-b.0/net/lo/operstate", "up");
	o = TBS_OPTS_INIT(tbs_net_opts, .timeout_ms = 300);
	ret = tbs_net_up(root, "lohost", &o, &n, &err);
	ok(ret == -ETIMEDOUT && !n &&
		   strstr(err.msg, "'lo' has no usable IPv6 link-local"),
	   "no link-local address in time: %s", err.msg);
	if (pipe(p))
		return;
	if (write(p[1], "x", 1) != 1)
		return;
	o = TBS_OPTS_INIT(tbs_net_opts, .timeout_ms = 60000, .cancel_fd = p[0]);
	ret = tbs_net_up(root, "lohost", &o, &n, &err);
	ok(ret == -ECANCELED && !n, "cancelled while waiting");
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	char *root = tree_new(), run[PATH_MAX];
	size_t i;

	snprintf(run, sizeof(run), "%s/run", root);
	setenv("TBSTREAM_RUNDIR", run, 1);

	roundtrip();
	flips_and_lengths();
	hostile_fields();
	fuzz_replay();
	valid_ifnames();
	for (i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		tree_put(root, tree[i][0], tree[i][1]);
	offers(root, false);
	tree_mkdir(root, "sys/kernel/config/thunderbolt/stream");
	offers(root, true);
	choose(root);
	net_up(root);
	tree_free(root);
	return tap_done();
}
