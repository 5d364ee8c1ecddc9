// SPDX-License-Identifier: MIT
/*
 * tbstream reconcile: bring the streams of /etc/tbstream/streams.conf up
 * towards every configured peer that is connected now.
 *
 * Run at boot, when a peer's stream service appears (plug, the peer's
 * reboot) and after resume.  For each configured stream and connected
 * peer it does the least that makes the stream usable, through the
 * library's own bring-up (tbs_stream_up), and nothing else:
 *
 *	held by a process      left alone, whatever its state
 *	missing, no HopIDs     brought up (both hosts, either order)
 *	or no device node
 *	tuning differs from    ring size and throttling written again
 *	its profile
 *	usable                 left alone
 *
 * A stream that is not in the file is never touched, nor is a peer that is
 * not connected.  Runs of reconcile on one host take turns (an flock on
 * the ConfigFS directory), so a boot and a plug at once do not race.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "escape.h"
#include "streams-conf.h"

#define CONFIGFS_DIR "sys/kernel/config/thunderbolt/stream"
#define LOCK_POLL_MS 50

enum rc_state {
	RC_ABSENT, /* the peer is not connected */
	RC_UP, /* usable, left as it was */
	RC_CREATED, /* brought up by this run */
	RC_RETUNED, /* usable; ring size or throttling written again */
	RC_HELD, /* a process has the device: left alone */
	RC_FAILED,
	RC_WOULD_CREATE, /* --dry-run */
	RC_WOULD_RETUNE,
};

static const char *const state_names[] = {
	[RC_ABSENT] = "absent",	    [RC_UP] = "up",
	[RC_CREATED] = "created",   [RC_RETUNED] = "retuned",
	[RC_HELD] = "held",	    [RC_FAILED] = "failed",
	[RC_WOULD_CREATE] = "would-create",
	[RC_WOULD_RETUNE] = "would-retune",
};

struct rc_args {
	const char *config;
	const char *peer;
	bool dry_run;
	bool json;
	int timeout_ms;
};

struct rc_result {
	const struct conf_stream *conf;
	const struct tbs_peer *peer; /* NULL when absent */
	enum rc_state state;
	struct tbs_stream st; /* valid unless absent or failed */
	struct tbs_error err; /* when failed */
};

struct rc_ctx {
	const struct cli *cli;
	const struct rc_args *a;
	struct tbs_peer *peers;
	int npeers;
	struct rc_result *res;
	size_t nres;
	size_t cap;
};

static void rc_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream reconcile [OPTIONS]\n"
		"\n"
		"Brings every stream of the streams file up towards its peer, "
		"when\n"
		"that peer is connected; leaves streams a process has open "
		"alone.\n"
		"Run at boot, on plug and after resume (udev, systemd); safe "
		"to run\n"
		"at any time.  See tbstream.conf(5).\n"
		"\n"
		"  -c, --config FILE         the streams file (default "
		"$TBSTREAM_CONFIG\n"
		"                            or " STREAMS_CONF_DEFAULT ")\n"
		"  -p, --peer ID|NAME|ROUTE  only this connected peer (also "
		"its\n"
		"                            service, \"0-1.0\")\n"
		"  -n, --dry-run             say what would be done, change "
		"nothing\n"
		"  -t, --timeout S           how long to wait for a peer to "
		"set up\n"
		"                            its side of a stream (default "
		"30)\n"
		"  -j, --json                machine-readable output\n"
		"  -h, --help                show this help\n"
		"\n"
		"Exit status: 0 when every stream towards a connected peer is "
		"usable\n"
		"or held; otherwise that of the first failure (tbstream(1)).\n");
}

static int rc_parse(int argc, char **argv, struct rc_args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "peer", required_argument, NULL, 'p' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "c:p:nt:jh", opts, NULL)) != -1) {
		if (c == 'h') {
			rc_usage(stdout);
			return -1;
		} else if (c == 'c' && optarg[0]) {
			a->config = optarg;
		} else if (c == 'p') {
			a->peer = optarg;
		} else if (c == 'n') {
			a->dry_run = true;
		} else if (c == 'j') {
			a->json = true;
		} else if (c == 't' && (v = cli_parse_num(optarg)) > 0 &&
			   v <= 86400) {
			a->timeout_ms = (int)v * 1000;
		} else {
			return cli_bad_option("reconcile", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error("reconcile", "takes no arguments");
	return 0;
}

/* --peer: a unique id, name or route as tbs_peer_find() knows, or the
 * service ("0-1.0") the udev rule names. */
static bool peer_selected(const struct rc_args *a, const struct tbs_peer *p)
{
	char route[32];

	if (!a->peer)
		return true;
	snprintf(route, sizeof(route), "%llx", p->route);
	return !strcasecmp(a->peer, p->unique_id) ||
	       !strcmp(a->peer, p->device_name) ||
	       !strcmp(a->peer, p->xdomain) || !strcmp(a->peer, p->service) ||
	       !strcmp(a->peer, route);
}

static struct rc_result *rc_add(struct rc_ctx *c, const struct conf_stream *cs,
				const struct tbs_peer *p)
{
	struct rc_result *r;

	if (c->nres == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;

		r = realloc(c->res, cap * sizeof(*r));
		if (!r)
			return NULL;
		c->res = r;
		c->cap = cap;
	}
	r = &c->res[c->nres++];
	memset(r, 0, sizeof(*r));
	r->conf = cs;
	r->peer = p;
	r->state = RC_ABSENT;
	return r;
}

static void up_opts(const struct rc_ctx *c, const struct conf_stream *cs,
		    struct tbs_up_opts *o)
{
	*o = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = c->a->timeout_ms);
	if (strcmp(cs->profile, "default"))
		tbs_up_opts_profile(o, cs->profile);
}

/* The throttling @o asks for in ns, or -1 for the driver's default. */
static int want_throttling(const struct tbs_up_opts *o)
{
	if (o->throttling == TBS_THROTTLING_OFF)
		return 0;
	return o->throttling ? o->throttling : -1;
}

/* The profile asks for a ring size or throttling the stream does not have. */
static bool needs_tuning(const struct rc_ctx *c, const struct rc_result *r)
{
	struct tbs_up_opts o;

	up_opts(c, r->conf, &o);
	return (o.ring_size > 0 && r->st.ring_size != o.ring_size) ||
	       (want_throttling(&o) >= 0 &&
		r->st.throttling != want_throttling(&o));
}

static int retune(const struct rc_ctx *c, struct rc_result *r)
{
	const char *root = c->cli->root;
	struct tbs_up_opts o;
	int ret = 0;

	up_opts(c, r->conf, &o);
	if (o.ring_size > 0)
		ret = tbs_stream_set(root, r->st.service, r->st.name,
				     TBS_ATTR_RING_SIZE, o.ring_size, &r->err);
	if (!ret && want_throttling(&o) >= 0)
		ret = tbs_stream_set(root, r->st.service, r->st.name,
				     TBS_ATTR_THROTTLING, want_throttling(&o),
				     &r->err);
	/* Opened since it was looked at: now it is held. */
	if (ret == -EBUSY)
		return RC_HELD;
	if (ret)
		return RC_FAILED;
	tbs_stream_get(root, r->st.service, r->st.name, &r->st, NULL);
	return RC_RETUNED;
}

static bool usable(const struct tbs_stream *st)
{
	return st->in_hopid > 0 && st->out_hopid > 0 && st->device[0] &&
	       !access(st->device, F_OK);
}

static enum rc_state bring_up(const struct rc_ctx *c, struct rc_result *r)
{
	struct tbs_up_opts o;
	int ret;

	up_opts(c, r->conf, &o);
	ret = tbs_stream_up(c->cli->root, r->peer->unique_id, r->conf->name,
			    &o, &r->st, &r->err);
	if (ret < 0)
		return RC_FAILED;
	return RC_CREATED;
}

static enum rc_state rc_one(const struct rc_ctx *c, struct rc_result *r)
{
	const char *root = c->cli->root;
	bool dry = c->a->dry_run;

	/* found with its holders (tbs_stream_get() does not look) */
	if (tbs_stream_find(root, r->peer->unique_id, r->conf->name, &r->st,
			    NULL)) {
		snprintf(r->st.name, sizeof(r->st.name), "%s", r->conf->name);
		snprintf(r->st.service, sizeof(r->st.service), "%s",
			 r->peer->service);
		return dry ? RC_WOULD_CREATE : bring_up(c, r);
	}
	if (r->st.holders > 0)
		return RC_HELD;
	if (!usable(&r->st))
		return dry ? RC_WOULD_CREATE : bring_up(c, r);
	if (needs_tuning(c, r))
		return dry ? RC_WOULD_RETUNE : retune(c, r);
	return RC_UP;
}

static int rc_entry(struct rc_ctx *c, const struct conf_stream *cs)
{
	struct rc_result *r;
	bool any = false;
	int i;

	for (i = 0; i < c->npeers; i++) {
		if (!streams_conf_match(cs, &c->peers[i]) ||
		    !peer_selected(c->a, &c->peers[i]))
			continue;
		any = true;
		r = rc_add(c, cs, &c->peers[i]);
		if (!r)
			return -ENOMEM;
		r->state = rc_one(c, r);
	}
	/* With --peer, lines towards other peers are not reported. */
	if (!any && !c->a->peer && !rc_add(c, cs, NULL))
		return -ENOMEM;
	return 0;
}

/*
 * Takes turns with other runs on this host: an flock on the stream
 * driver's ConfigFS directory.  Returns the descriptor, -1 when there is
 * no such directory (tbs_stream_up() explains that), or a negative errno.
 */
static int rc_lock(const struct rc_ctx *c, int nconf, struct tbs_error *e)
{
	const struct timespec pause = { 0, LOCK_POLL_MS * 1000000L };
	/* The other run may wait for each of its streams in turn. */
	int64_t wait_ms = (int64_t)c->a->timeout_ms * (nconf + 1);
	int64_t deadline = cli_now_ms() + wait_ms;
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", c->cli->root, CONFIGFS_DIR);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK || cli_now_ms() >= deadline) {
			e->code = errno == EWOULDBLOCK ? -EBUSY : -errno;
			snprintf(e->msg, sizeof(e->msg),
				 "could not lock '%.300s': %s: another 'tbstream "
				 "reconcile' has been running for %lld s",
				 path, strerror(-e->code),
				 (long long)wait_ms / 1000);
			close(fd);
			return e->code;
		}
		nanosleep(&pause, NULL);
	}
	return fd;
}

static void human_one(const struct rc_result *r)
{
	printf("%-8s  %-12s  ", r->conf->name, state_names[r->state]);
	if (!r->peer) {
		printf("'");
		esc_write(stdout, r->conf->peer, ESC_TERM);
		printf("' not connected\n");
		return;
	}
	esc_write(stdout,
		  r->peer->device_name[0] ? r->peer->device_name
					  : r->peer->unique_id,
		  ESC_TERM);
	if (r->state == RC_FAILED) {
		printf(": see the message above");
	} else if (r->state == RC_HELD) {
		printf(": %s open by %d (", r->st.device, (int)r->st.holder);
		esc_write(stdout, r->st.holder_comm, ESC_TERM);
		printf(")");
	} else if (r->st.device[0]) {
		printf(": %s", r->st.device);
	}
	printf("  [%s]\n", r->conf->profile);
}

static void json_one(const struct rc_result *r)
{
	printf("{\"name\":");
	json_str(stdout, r->conf->name);
	printf(",\"peer\":");
	json_str(stdout, r->conf->peer);
	printf(",\"profile\":");
	json_str(stdout, r->conf->profile);
	printf(",\"line\":%d,\"state\":\"%s\"", r->conf->line,
	       state_names[r->state]);
	if (r->peer) {
		printf(",\"peer_unique_id\":");
		json_str(stdout, r->peer->unique_id);
		printf(",\"peer_name\":");
		json_str(stdout, r->peer->device_name);
		printf(",\"service\":");
		json_str(stdout, r->peer->service);
	}
	if (r->peer && r->state != RC_FAILED) {
		printf(",\"device\":");
		json_str(stdout, r->st.device);
		printf(",\"in_hopid\":%d,\"out_hopid\":%d,\"ring_size\":%d,"
		       "\"throttling\":%d,\"holder\":%d",
		       r->st.in_hopid, r->st.out_hopid, r->st.ring_size,
		       r->st.throttling, (int)r->st.holder);
	}
	if (r->state == RC_FAILED) {
		printf(",\"error\":");
		json_str(stdout, r->err.msg);
	}
	printf("}");
}

static void rc_print(const struct rc_ctx *c, bool missing, int failed)
{
	size_t i;

	if (!c->a->json) {
		if (missing)
			printf("no streams configured ('%s' does not exist)\n",
			       c->a->config);
		for (i = 0; i < c->nres; i++)
			human_one(&c->res[i]);
		return;
	}
	printf("{\"config\":");
	json_str(stdout, c->a->config);
	printf(",\"config_exists\":%s,\"dry_run\":%s,\"peers\":%d,"
	       "\"failed\":%d,\"streams\":[",
	       missing ? "false" : "true", c->a->dry_run ? "true" : "false",
	       c->npeers, failed);
	for (i = 0; i < c->nres; i++) {
		if (i)
			printf(",");
		json_one(&c->res[i]);
	}
	printf("]}\n");
}

/* Reconciles every line; returns the exit status. */
static int rc_run(struct rc_ctx *c, const struct conf_stream *cs, int n,
		  bool missing)
{
	int status = EXIT_OK, failed = 0, ret = 0, i;
	size_t k;

	for (i = 0; i < n && !ret; i++)
		ret = rc_entry(c, &cs[i]);
	if (ret) {
		cli_msg("reconcile: %s", strerror(-ret));
		return EXIT_FAIL;
	}
	for (k = 0; k < c->nres; k++) {
		if (c->res[k].state != RC_FAILED)
			continue;
		failed++;
		if (status == EXIT_OK)
			status = cli_exit_status(c->res[k].err.code);
		cli_msg("%s: %s", c->res[k].conf->name, c->res[k].err.msg);
	}
	rc_print(c, missing, failed);
	return status;
}

int cmd_reconcile(const struct cli *cli, int argc, char **argv)
{
	struct rc_args a = { .timeout_ms = 30000 };
	struct rc_ctx c = { .cli = cli, .a = &a };
	struct tbs_error e = { 0 };
	struct conf_stream *cs;
	int n, ret, lock = -1;
	bool missing;

	a.config = getenv("TBSTREAM_CONFIG");
	if (!a.config || !a.config[0])
		a.config = STREAMS_CONF_DEFAULT;
	ret = rc_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	n = streams_conf_read(a.config, &cs, &missing, &e);
	if (n < 0) {
		cli_fail(&e);
		return n == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	c.npeers = n ? tbs_peers_list(cli->root, &c.peers, NULL) : 0;
	if (c.npeers < 0) /* no bus: no peer connected */
		c.npeers = 0;
	if (n && c.npeers && !a.dry_run) {
		lock = rc_lock(&c, n, &e);
		if (lock < -1) {
			free(cs);
			tbs_peers_free(c.peers);
			return cli_fail(&e);
		}
	}
	ret = rc_run(&c, cs, n, missing);
	if (lock >= 0)
		close(lock);
	free(c.res);
	tbs_peers_free(c.peers);
	free(cs);
	return ret;
}
