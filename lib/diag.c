// SPDX-License-Identifier: MIT
/*
 * Diagnosis: the chain from the kernel to a usable stream, checked link by
 * link under the system root, each finding explained with what to do.
 *
 *	check		looks at
 *	kernel		proc/sys/kernel/osrelease (uname on "/"): 7.2 or later
 *	bus		sys/bus/thunderbolt/devices: a domain and its host
 *	driver		sys/module/thunderbolt_stream, else whether
 *			lib/modules/RELEASE/modules.{dep,builtin} has it
 *	configfs	sys/kernel/config/thunderbolt/stream, else whether
 *			proc/mounts has configfs (not mounted) or not
 *			(CONFIG_USB4_CONFIGFS off)
 *	peer		XDomains offering the stream service (or only IP)
 *	transport	per connected host, what the commands use (transport.c)
 *	network		sys/class/net/thunderbolt*: IP over Thunderbolt
 *			holds HopID 8 while up; a stream holding 8 stops it
 *	rings		streams open here, each holding DMA rings
 *	streams		streams without HopIDs, or towards absent peers
 *
 * Only the stream driver's own files come from its contract; the others
 * are the kernel's ordinary interfaces.
 *
 * While the commands can use IP over Thunderbolt towards a peer, a broken
 * stream driver chain does not stop them: its failures are then warnings.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "internal.h"

#define NEED_MAJOR 7
#define NEED_MINOR 2

struct diag {
	const char *root;
	const char *peer;
	tbs_diag_fn report;
	void *arg;
	int first; /* the code of the first failure, 0 */
	char release[128];
	bool driver; /* thunderbolt_stream loaded */
	bool configfs; /* its ConfigFS directory is there */
	bool net_ok; /* the commands use IP over Thunderbolt towards a peer */
	char bus[PATH_MAX]; /* the bus's devices, under the root */
	char cfg[PATH_MAX]; /* the driver's ConfigFS directory, likewise */
};

__attribute__((format(printf, 5, 6))) static void
say(struct diag *d, const char *check, enum tbs_check st, int code,
    const char *fmt, ...)
{
	char msg[TBS_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st == TBS_CHECK_FAIL && d->net_ok && strcmp(check, "transport")) {
		st = TBS_CHECK_WARN;
		code = 0;
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "%s",
			 " (meanwhile the commands use IP over Thunderbolt)");
	}
	if (st == TBS_CHECK_FAIL && !d->first)
		d->first = code;
	if (d->report)
		d->report(d->arg, check, st, code, msg);
}

static bool exists(const struct diag *d, const char *rel)
{
	char path[PATH_MAX];

	return !tbsi_path(path, sizeof(path), d->root, "%s", rel) &&
	       tbsi_exists(path);
}

static bool is_real_root(const char *root)
{
	return !root || !root[0] || !strcmp(root, "/");
}

static void read_release(struct diag *d)
{
	char path[PATH_MAX];
	struct utsname u;

	d->release[0] = '\0';
	if (is_real_root(d->root)) {
		if (!uname(&u))
			snprintf(d->release, sizeof(d->release), "%s",
				 u.release);
		return;
	}
	tbsi_path(path, sizeof(path), d->root, "proc/sys/kernel/osrelease");
	if (tbsi_read_str(path, d->release, sizeof(d->release)))
		d->release[0] = '\0';
}

static void check_kernel(struct diag *d)
{
	unsigned int major = 0, minor = 0;

	read_release(d);
	if (sscanf(d->release, "%u.%u", &major, &minor) != 2) {
		say(d, "kernel", TBS_CHECK_INFO, 0,
		    "kernel release unknown ('%s')", d->release);
		return;
	}
	if (major > NEED_MAJOR || (major == NEED_MAJOR && minor >= NEED_MINOR))
		say(d, "kernel", TBS_CHECK_OK, 0,
		    "Linux %s (the stream driver came with 7.2)", d->release);
	else
		say(d, "kernel", TBS_CHECK_FAIL, -ENODEV,
		    "Linux %s is older than 7.2, which brought the stream "
		    "driver (thunderbolt_stream): boot Linux 7.2 or later, or "
		    "use IP over Thunderbolt",
		    d->release);
}

static void check_bus(struct diag *d)
{
	char uid[64];

	if (!exists(d, TBSI_DEVICES)) {
		say(d, "bus", TBS_CHECK_FAIL, -ENODEV,
		    "no Thunderbolt/USB4 bus ('%s' is missing): load the "
		    "controller's driver with 'modprobe thunderbolt', or this "
		    "machine has no USB4 or Thunderbolt 3+ port",
		    d->bus);
		return;
	}
	if (tbs_host_uid(d->root, 0, uid, sizeof(uid), NULL))
		say(d, "bus", TBS_CHECK_WARN, 0,
		    "Thunderbolt/USB4 bus without a host router in domain 0");
	else
		say(d, "bus", TBS_CHECK_OK, 0,
		    "Thunderbolt/USB4 domain 0, this host %s", uid);
}

/* Whether modules.dep or modules.builtin of the release names @mod. */
static bool module_known(const struct diag *d, const char *mod)
{
	static const char *const lists[] = { "modules.dep", "modules.builtin" };
	char path[PATH_MAX], line[1024], want[64];
	bool found = false;
	size_t i;
	FILE *f;

	snprintf(want, sizeof(want), "/%s.ko", mod);
	for (i = 0; i < 2 && !found; i++) {
		if (tbsi_path(path, sizeof(path), d->root, "lib/modules/%s/%s",
			      d->release, lists[i]))
			continue;
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f))
			found = strstr(line, want) != NULL;
		fclose(f);
	}
	return found;
}

static void check_driver(struct diag *d)
{
	char mods[PATH_MAX];

	d->configfs = exists(d, TBSI_CONFIGFS);
	d->driver = d->configfs || exists(d, "sys/module/thunderbolt_stream");
	snprintf(mods, sizeof(mods), "lib/modules/%s", d->release);
	if (d->driver)
		say(d, "driver", TBS_CHECK_OK, 0,
		    "thunderbolt_stream is loaded");
	else if (!d->release[0] || !exists(d, mods) ||
		 module_known(d, "thunderbolt_stream"))
		say(d, "driver", TBS_CHECK_FAIL, -ENODEV,
		    "the stream driver is not loaded ('%s' is missing): load "
		    "it with 'modprobe thunderbolt_stream' on both hosts",
		    d->cfg);
	else
		say(d, "driver", TBS_CHECK_FAIL, -ENODEV,
		    "this kernel (%s) has no thunderbolt_stream module: "
		    "install a kernel 7.2 or later that has it",
		    d->release);
}

/* Whether proc/mounts under the root has configfs on sys/kernel/config. */
static int configfs_mounted(const struct diag *d)
{
	char path[PATH_MAX], line[1024], dev[256], dir[256], type[64];
	int found = -1;
	FILE *f;

	tbsi_path(path, sizeof(path), d->root, "proc/mounts");
	f = fopen(path, "re");
	if (!f)
		return -1; /* unknown */
	found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%255s %255s %63s", dev, dir, type) == 3 &&
			!strcmp(type, "configfs") &&
			!strcmp(dir, "/sys/kernel/config");
	fclose(f);
	return found;
}

static void check_configfs(struct diag *d)
{
	int mounted;

	if (d->configfs) {
		say(d, "configfs", TBS_CHECK_OK, 0, "'%s' is there", d->cfg);
		return;
	}
	mounted = configfs_mounted(d);
	if (mounted == 0)
		say(d, "configfs", TBS_CHECK_FAIL, -ENODEV,
		    "ConfigFS is not mounted: mount it with 'mount -t "
		    "configfs none /sys/kernel/config'");
	else if (d->driver)
		say(d, "configfs", TBS_CHECK_FAIL, -ENODEV,
		    "thunderbolt_stream is loaded but '%s' is missing: the "
		    "kernel was built without CONFIG_USB4_CONFIGFS; use a "
		    "kernel built with it",
		    d->cfg);
	else
		say(d, "configfs", TBS_CHECK_INFO, 0,
		    "'%s' appears once thunderbolt_stream is loaded", d->cfg);
}

/* Whether XDomain @xd (under the bus) has a service with key "stream". */
static bool offers_stream(const struct diag *d, const char *xd)
{
	char path[PATH_MAX + 300], key[32];
	unsigned int i;

	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/%s.%u/key", d->bus, xd, i);
		if (!tbsi_read_str(path, key, sizeof(key)) &&
		    !strcmp(key, "stream"))
			return true;
	}
	return false;
}

/* Connected hosts (XDomains) that do not offer the stream service. */
static int hosts_without(const struct diag *d, char *buf, size_t len)
{
	char path[PATH_MAX + 300], name[64];
	struct dirent *de;
	unsigned int dom;
	uint64_t route;
	size_t used = 0;
	int n = 0;
	DIR *dir;

	buf[0] = '\0';
	dir = opendir(d->bus);
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		if (tbsi_parse_router(de->d_name, &dom, &route, NULL) ||
		    !route || offers_stream(d, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/device_name", d->bus,
			 de->d_name);
		if (tbsi_read_str(path, name, sizeof(name)))
			name[0] = '\0';
		n++;
		if (used < len)
			used += snprintf(buf + used, len - used, "%s%s%s%s%s",
					 used ? ", " : "", name,
					 name[0] ? " (" : "", de->d_name,
					 name[0] ? ")" : "");
	}
	closedir(dir);
	return n;
}

static void check_peer(struct diag *d)
{
	struct tbs_peer *p;
	char other[256];
	int n, i;

	n = tbs_peers_list(d->root, &p, NULL);
	for (i = 0; i < n; i++)
		say(d, "peer", TBS_CHECK_OK, 0,
		    "%s%s%s (%s) at %s, stream service %s%s%s",
		    p[i].vendor_name, p[i].vendor_name[0] ? " " : "",
		    p[i].device_name[0] ? p[i].device_name : "unnamed host",
		    p[i].unique_id, p[i].xdomain, p[i].service,
		    p[i].rx_speed[0] ? ", " : "", p[i].rx_speed);
	tbs_peers_free(p);
	if (hosts_without(d, other, sizeof(other)))
		say(d, "peer", n > 0 ? TBS_CHECK_INFO : TBS_CHECK_FAIL,
		    n > 0 ? 0 : -ENODEV,
		    "%s %s connected but does not offer the stream service: "
		    "load thunderbolt_stream there ('modprobe "
		    "thunderbolt_stream')",
		    other, strchr(other, ',') ? "are" : "is");
	else if (n <= 0)
		say(d, "peer", TBS_CHECK_FAIL, -ENODEV,
		    "no peer: no other host is connected; check the cable "
		    "(a USB4 or Thunderbolt 3+ cable, both hosts powered)");
}

/* What a connected host offers, in words. */
static const char *offered(const struct tbs_offer *o)
{
	if (o->stream_service[0] && o->net_service[0])
		return "USB4STREAM and IP over Thunderbolt";
	if (o->stream_service[0])
		return "USB4STREAM";
	return o->net_service[0] ? "IP over Thunderbolt" : "nothing";
}

static void check_transport(struct diag *d, const struct tbs_offer *o, int n)
{
	const char *name;
	int i;

	for (i = 0; i < n; i++) {
		name = o[i].device_name[0] ? o[i].device_name : "unnamed host";
		if (o[i].transport == TBS_TRANSPORT_STREAM)
			say(d, "transport", TBS_CHECK_OK, 0,
			    "%s (%s): the commands use USB4STREAM (%s); it "
			    "offers %s",
			    name, o[i].xdomain, o[i].why, offered(&o[i]));
		else if (o[i].transport == TBS_TRANSPORT_NET)
			say(d, "transport", TBS_CHECK_OK, 0,
			    "%s (%s): the commands use IP over Thunderbolt on "
			    "'%s' (%s); it offers %s",
			    name, o[i].xdomain, o[i].ifname, o[i].why,
			    offered(&o[i]));
		else
			say(d, "transport", TBS_CHECK_WARN, 0,
			    "%s (%s): no transport: %s; it offers %s", name,
			    o[i].xdomain, o[i].why, offered(&o[i]));
	}
}

bool tbsi_net_iface(const char *root, char *name, size_t len, char *state,
		    size_t slen)
{
	char path[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *dir;

	tbsi_path(path, sizeof(path), root, "sys/class/net");
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (de = readdir(dir)))
		found = !strncmp(de->d_name, "thunderbolt", 11);
	if (found) {
		snprintf(name, len, "%.*s", (int)len - 1, de->d_name);
		tbsi_path(path, sizeof(path), root,
			  "sys/class/net/%s/operstate", name);
		if (tbsi_read_str(path, state, slen))
			snprintf(state, slen, "unknown");
	}
	closedir(dir);
	return found;
}

/* A configured stream holding HopID 8, or NULL. */
static const struct tbs_stream *holds_8(const struct tbs_stream *s, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i].in_hopid == 8 || s[i].out_hopid == 8)
			return &s[i];
	return NULL;
}

static void check_network(struct diag *d, const struct tbs_stream *s, int n)
{
	const struct tbs_stream *h8 = holds_8(s, n);
	char name[64], state[32];

	if (!tbsi_net_iface(d->root, name, sizeof(name), state,
			    sizeof(state))) {
		if (h8)
			say(d, "network", TBS_CHECK_INFO, 0,
			    "stream '%s' holds HopID 8: IP over Thunderbolt "
			    "could not come up while it does",
			    h8->name);
		else
			say(d, "network", TBS_CHECK_OK, 0,
			    "IP over Thunderbolt is not in use");
		return;
	}
	if (!strcmp(state, "up"))
		say(d, "network", TBS_CHECK_INFO, 0,
		    "IP over Thunderbolt (%s) is up and holds HopID 8: streams "
		    "use 9 and up; when they run out, 'ip link set %s down' "
		    "frees 8",
		    name, name);
	else if (h8)
		say(d, "network", TBS_CHECK_WARN, 0,
		    "stream '%s' holds HopID 8, which IP over Thunderbolt "
		    "(%s, %s) needs to come up: take it down ('tbstream down "
		    "%s') if you need IP over Thunderbolt",
		    h8->name, name, state, h8->name);
	else
		say(d, "network", TBS_CHECK_OK, 0,
		    "IP over Thunderbolt (%s) is %s; HopID 8 is free for it",
		    name, state);
}

static void check_rings(struct diag *d, const struct tbs_stream *s, int n)
{
	int i, open = 0;

	for (i = 0; i < n; i++)
		open += s[i].holders > 0;
	say(d, "rings", TBS_CHECK_INFO, 0,
	    "%d stream%s open here, each holding a DMA ring pair of the "
	    "controller; when none is left, opening fails with 'no free DMA "
	    "ring': close a stream ('tbstream list' shows which are open) or "
	    "IP over Thunderbolt",
	    open, open == 1 ? "" : "s");
}

static void check_streams(struct diag *d, const struct tbs_stream *s, int n)
{
	int i, bad = 0;

	for (i = 0; i < n; i++) {
		if (d->peer && strcasecmp(s[i].peer_uid, d->peer))
			continue;
		if (s[i].in_hopid <= 0 || s[i].out_hopid <= 0) {
			bad++;
			say(d, "streams", TBS_CHECK_WARN, 0,
			    "stream '%s' (%s) has no HopIDs: run 'tbstream up "
			    "%s' on both hosts, or 'tbstream down %s'",
			    s[i].name, s[i].service, s[i].name, s[i].name);
		} else if (!s[i].connected) {
			bad++;
			say(d, "streams", TBS_CHECK_INFO, 0,
			    "stream '%s' (%s) waits for its peer, not "
			    "connected now",
			    s[i].name, s[i].service);
		}
	}
	if (!bad)
		say(d, "streams", TBS_CHECK_OK, 0, "%d stream%s configured", n,
		    n == 1 ? "" : "s");
}

/* Catches the first failure, of one check (@only) or of any. */
struct catch
{
	const char *only;
	struct tbs_error e;
};

static void catch_fail(void *arg, const char *check, enum tbs_check st,
		       int code, const char *msg)
{
	struct catch *c = arg;

	if (st == TBS_CHECK_FAIL && !c->e.code &&
	    (!c->only || !strcmp(check, c->only))) {
		c->e.code = code;
		snprintf(c->e.msg, sizeof(c->e.msg), "%s", msg);
	}
}

static void diag_init(struct diag *d, const char *root, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->root = root;
	d->report = catch_fail;
	d->arg = arg;
	tbsi_path(d->bus, sizeof(d->bus), root, TBSI_DEVICES);
	tbsi_path(d->cfg, sizeof(d->cfg), root, TBSI_CONFIGFS);
}

int tbs_diagnose(const char *root, const char *peer, tbs_diag_fn report,
		 void *arg)
{
	struct tbs_stream *s = NULL;
	struct tbs_offer *o;
	struct diag d;
	int n, no, i;

	diag_init(&d, root, arg);
	d.peer = peer;
	d.report = report;
	no = tbs_offers_list(root, &o, NULL);
	for (i = 0; i < no; i++)
		d.net_ok |= o[i].transport == TBS_TRANSPORT_NET &&
			    (!peer || !strcasecmp(o[i].unique_id, peer));
	check_kernel(&d);
	check_bus(&d);
	check_driver(&d);
	check_configfs(&d);
	check_peer(&d);
	check_transport(&d, o, no);
	tbs_offers_free(o);
	n = d.configfs ? tbs_streams_list(root, &s, NULL) : 0;
	if (n < 0)
		n = 0;
	check_network(&d, s, n);
	check_rings(&d, s, n);
	if (d.configfs)
		check_streams(&d, s, n);
	tbs_streams_free(s);
	return d.first;
}

int tbsi_no_driver(const char *root, struct tbs_error *err)
{
	struct catch c = { 0 };
	struct diag d;

	diag_init(&d, root, &c);
	check_kernel(&d);
	check_bus(&d);
	check_driver(&d);
	check_configfs(&d);
	if (!c.e.code)
		return tbsi_err(err, -ENODEV, "'%s' is missing", d.cfg);
	return tbsi_err(err, c.e.code, "%s", c.e.msg);
}

int tbsi_no_bus(const char *root, struct tbs_error *err)
{
	struct catch c = { .only = "bus" };
	struct diag d;

	diag_init(&d, root, &c);
	check_bus(&d);
	if (!c.e.code)
		return tbsi_err(err, -ENODEV, "no Thunderbolt/USB4 bus");
	return tbsi_err(err, c.e.code, "%s", c.e.msg);
}

int tbsi_no_peer(const char *root, struct tbs_error *err)
{
	struct catch c = { .only = "peer" };
	struct diag d;

	diag_init(&d, root, &c);
	check_peer(&d);
	if (!c.e.code)
		return tbsi_err(err, -ENODEV,
				"no peer offers the stream "
				"service");
	return tbsi_err(err, c.e.code, "%s", c.e.msg);
}
