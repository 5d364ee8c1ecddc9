// SPDX-License-Identifier: MIT
/*
 * tbstream list: the peers and the streams configured towards them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "escape.h"

/* A finding of tbs_diagnose() worth showing: a failure or a warning. */
struct problem {
	const char *check;
	enum tbs_check status;
	char msg[TBS_MSG_MAX];
};

#define MAX_PROBLEMS 16

struct view {
	struct tbs_peer *peers;
	int npeers;
	struct tbs_stream *streams;
	int nstreams;
	struct tbs_offer *offers; /* every connected host */
	int noffers;
	char host_uid[64];
	const char *driver_msg; /* why there are no streams, or NULL */
	struct tbs_error serr;
	struct problem problems[MAX_PROBLEMS];
	int nproblems;
};

static void list_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream list [--json]\n"
		"\n"
		"Shows each peer (another host offering the stream service) "
		"with\n"
		"its unique id, name, route and link, and the streams "
		"configured\n"
		"towards it: device, HopIDs, ring size, throttling, and which\n"
		"process has it open; then each connected host with the "
		"transport\n"
		"the commands use towards it (USB4STREAM or IP over "
		"Thunderbolt).\n"
		"\n"
		"  -j, --json  machine-readable output\n"
		"  -h, --help  show this help\n");
}

static bool stream_of(const struct tbs_stream *s, const struct tbs_peer *p)
{
	return s->connected && !strcmp(s->service, p->service);
}

static void human_stream(const struct tbs_stream *s)
{
	char comm[4 * sizeof(s->holder_comm)];

	printf("    Stream %s: %s  in %d out %d  ring %d  throttling %d ns",
	       s->name, s->device[0] ? s->device : "(no device)", s->in_hopid,
	       s->out_hopid, s->ring_size, s->throttling);
	esc_text(comm, sizeof(comm), s->holder_comm, ESC_TERM);
	if (s->holders > 0)
		printf("  open by %d (%s)%s", (int)s->holder, comm,
		       s->holders > 1 ? " and others" : "");
	if (s->in_hopid <= 0 || s->out_hopid <= 0)
		printf("  [no HopIDs]");
	printf("\n");
}

static void human_peer(const struct view *v, const struct tbs_peer *p)
{
	/* The names are the peer's own (its XDomain properties). */
	char vendor[4 * sizeof(p->vendor_name)], dev[4 * sizeof(p->device_name)];
	int i;

	esc_text(vendor, sizeof(vendor), p->vendor_name, ESC_TERM);
	esc_text(dev, sizeof(dev), p->device_name, ESC_TERM);
	printf("Domain %u Route %llx: %s%s%s\n", p->domain, p->route, vendor,
	       vendor[0] ? " " : "", dev[0] ? dev : "(unnamed host)");
	printf("    Unique id: %s\n    Service: %s%s\n", p->unique_id,
	       p->service, p->network ? " (also IP over Thunderbolt)" : "");
	if (p->rx_speed[0] || p->tx_speed[0])
		printf("    Link: rx %s x%d, tx %s x%d\n", p->rx_speed,
		       p->rx_lanes, p->tx_speed, p->tx_lanes);
	for (i = 0; i < v->nstreams; i++)
		if (stream_of(&v->streams[i], p))
			human_stream(&v->streams[i]);
}

static const char *transport_name(int t)
{
	return t == TBS_TRANSPORT_STREAM ? "stream"
	       : t == TBS_TRANSPORT_NET  ? "net"
					 : "none";
}

static void human_offer(const struct tbs_offer *o)
{
	char dev[4 * sizeof(o->device_name)], why[4 * sizeof(o->why)];

	/* the peer's name, also in why: text from the peer */
	esc_text(dev, sizeof(dev), o->device_name, ESC_TERM);
	esc_text(why, sizeof(why), o->why, ESC_TERM);
	printf("  %s (%s, %s): ", dev[0] ? dev : "unnamed host", o->xdomain,
	       o->unique_id[0] ? o->unique_id : "no unique id");
	if (o->transport == TBS_TRANSPORT_STREAM)
		printf("USB4STREAM");
	else if (o->transport == TBS_TRANSPORT_NET)
		printf("IP over Thunderbolt on %s", o->ifname);
	else
		printf("none");
	printf(" (%s); it offers %s\n", why,
	       o->stream_service[0] && o->net_service[0] ?
		       "USB4STREAM and IP over Thunderbolt" :
	       o->stream_service[0] ? "USB4STREAM" :
	       o->net_service[0]    ? "IP over Thunderbolt" :
				      "nothing");
}

static void human(const struct view *v)
{
	bool header = false;
	int i;

	if (v->host_uid[0])
		printf("This host: %s\n", v->host_uid);
	if (!v->npeers)
		printf("No peer offers the stream service.\n");
	for (i = 0; i < v->npeers; i++)
		human_peer(v, &v->peers[i]);
	for (i = 0; i < v->nstreams; i++) {
		if (v->streams[i].connected)
			continue;
		if (!header)
			printf("Not connected:\n");
		header = true;
		printf("  Service %s:\n", v->streams[i].service);
		human_stream(&v->streams[i]);
	}
	if (v->noffers)
		printf("Transports:\n");
	for (i = 0; i < v->noffers; i++)
		human_offer(&v->offers[i]);
	if (v->driver_msg)
		printf("No streams: %s\n", v->driver_msg);
	for (i = 0; i < v->nproblems; i++) {
		if (v->driver_msg && !strcmp(v->problems[i].msg, v->driver_msg))
			continue;
		/* a problem may name the peer as it announces itself */
		printf("%s: ", v->problems[i].status == TBS_CHECK_FAIL
				       ? "Problem"
				       : "Warning");
		esc_write(stdout, v->problems[i].msg, ESC_TERM);
		putchar('\n');
	}
	if (v->nproblems)
		printf("('tbstream doctor' checks everything.)\n");
}

static void json_kv(const char *k, const char *v, bool comma)
{
	printf("\"%s\":", k);
	json_str(stdout, v);
	if (comma)
		putchar(',');
}

static void json_stream(const struct tbs_stream *s)
{
	printf("{");
	json_kv("name", s->name, true);
	json_kv("service", s->service, true);
	json_kv("peer_unique_id", s->peer_uid, true);
	printf("\"connected\":%s,\"index\":%d,",
	       s->connected ? "true" : "false", s->index);
	json_kv("device", s->device, true);
	printf("\"in_hopid\":%d,\"out_hopid\":%d,\"ring_size\":%d,"
	       "\"throttling\":%d,\"open\":%s,\"holder_pid\":%d,",
	       s->in_hopid, s->out_hopid, s->ring_size, s->throttling,
	       s->holders > 0 ? "true" : "false", (int)s->holder);
	json_kv("holder_command", s->holder_comm, false);
	printf("}");
}

static void json_peer(const struct view *v, const struct tbs_peer *p)
{
	bool first = true;
	int i;

	printf("{");
	json_kv("unique_id", p->unique_id, true);
	json_kv("device_name", p->device_name, true);
	json_kv("vendor_name", p->vendor_name, true);
	json_kv("xdomain", p->xdomain, true);
	json_kv("service", p->service, true);
	printf("\"domain\":%u,\"route\":\"%llx\",", p->domain, p->route);
	json_kv("rx_speed", p->rx_speed, true);
	json_kv("tx_speed", p->tx_speed, true);
	printf("\"rx_lanes\":%d,\"tx_lanes\":%d,\"network\":%s,\"streams\":[",
	       p->rx_lanes, p->tx_lanes, p->network ? "true" : "false");
	for (i = 0; i < v->nstreams; i++) {
		if (!stream_of(&v->streams[i], p))
			continue;
		printf("%s", first ? "" : ",");
		json_stream(&v->streams[i]);
		first = false;
	}
	printf("]}");
}

static void json_offer(const struct tbs_offer *o)
{
	printf("{");
	json_kv("unique_id", o->unique_id, true);
	json_kv("device_name", o->device_name, true);
	json_kv("xdomain", o->xdomain, true);
	json_kv("stream_service", o->stream_service, true);
	json_kv("net_service", o->net_service, true);
	json_kv("interface", o->ifname, true);
	printf("\"stream_here\":%s,", o->stream_here ? "true" : "false");
	json_kv("transport", transport_name(o->transport), true);
	json_kv("why", o->why, true);
	printf("\"offers\":[%s%s%s]}", o->stream_service[0] ? "\"stream\"" : "",
	       o->stream_service[0] && o->net_service[0] ? "," : "",
	       o->net_service[0] ? "\"net\"" : "");
}

static void json(const struct view *v)
{
	bool first = true;
	int i;

	printf("{");
	json_kv("host_unique_id", v->host_uid, true);
	printf("\"peers\":[");
	for (i = 0; i < v->npeers; i++) {
		printf("%s", i ? "," : "");
		json_peer(v, &v->peers[i]);
	}
	printf("],\"not_connected\":[");
	for (i = 0; i < v->nstreams; i++) {
		if (v->streams[i].connected)
			continue;
		printf("%s", first ? "" : ",");
		json_stream(&v->streams[i]);
		first = false;
	}
	printf("],\"hosts\":[");
	for (i = 0; i < v->noffers; i++) {
		printf("%s", i ? "," : "");
		json_offer(&v->offers[i]);
	}
	printf("],\"problems\":[");
	for (i = 0; i < v->nproblems; i++) {
		printf("%s{", i ? "," : "");
		json_kv("check", v->problems[i].check, true);
		json_kv("status",
			v->problems[i].status == TBS_CHECK_FAIL ? "fail"
								: "warn",
			true);
		json_kv("message", v->problems[i].msg, false);
		printf("}");
	}
	printf("]}\n");
}

static void on_finding(void *arg, const char *check, enum tbs_check st,
		       int code, const char *msg)
{
	struct view *v = arg;
	struct problem *p;

	if (st < TBS_CHECK_WARN || v->nproblems >= MAX_PROBLEMS)
		return;
	p = &v->problems[v->nproblems++];
	p->check = check;
	p->status = st;
	snprintf(p->msg, sizeof(p->msg), "%s", msg);
}

static int load(const struct cli *cli, struct view *v, struct tbs_error *e)
{
	unsigned int domain = 0;

	v->npeers = tbs_peers_list(cli->root, &v->peers, e);
	if (v->npeers < 0)
		return v->npeers;
	if (v->npeers)
		domain = v->peers[0].domain;
	if (tbs_host_uid(cli->root, domain, v->host_uid, sizeof(v->host_uid),
			 NULL))
		v->host_uid[0] = '\0';
	v->nstreams = tbs_streams_list(cli->root, &v->streams, &v->serr);
	if (v->nstreams < 0) {
		v->nstreams = 0;
		v->driver_msg = v->serr.msg;
	}
	v->noffers = tbs_offers_list(cli->root, &v->offers, NULL);
	if (v->noffers < 0)
		v->noffers = 0;
	tbs_diagnose(cli->root, NULL, on_finding, v);
	return 0;
}

int cmd_list(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct view v = { 0 };
	struct tbs_error e = { 0 };
	bool as_json = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j') {
			as_json = true;
		} else if (c == 'h') {
			list_usage(stdout);
			return EXIT_OK;
		} else {
			return cli_bad_option("list", c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("list", "unexpected argument");
	ret = load(cli, &v, &e);
	if (ret)
		return cli_fail(&e);
	if (as_json)
		json(&v);
	else
		human(&v);
	tbs_peers_free(v.peers);
	tbs_streams_free(v.streams);
	tbs_offers_free(v.offers);
	return EXIT_OK;
}
