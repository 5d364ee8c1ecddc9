// SPDX-License-Identifier: MIT
/*
 * tbstream image: whole-disk backup and restore.  "send SOURCE" on one
 * host and "recv TARGET" on the other, in either order; "verify FILE"
 * hashes an image again against its sidecar.  Brings the stream up when
 * needed and down again afterwards if it brought it up.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

struct image_args {
	bool send, verify;
	const char *path;
	const char *name;
	const char *peer;
	bool json, quiet, keep;
	struct tbs_image_opts io;
	struct tbs_up_opts up;
};

static void image_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream image send SOURCE [OPTIONS]\n"
		"       tbstream image recv TARGET [OPTIONS]\n"
		"       tbstream image verify FILE [OPTIONS]\n"
		"\n"
		"Copies a disk (block device, partition or image file) to the "
		"peer,\n"
		"which writes a sparse raw image file or restores onto a "
		"block device.\n"
		"Run send and recv on the two hosts, in either order; the "
		"same two\n"
		"commands again resume an interrupted transfer.  Only data "
		"crosses\n"
		"the cable; every extent and the whole image are checked, and "
		"send\n"
		"exits 0 only when the receiver confirmed the image durable.\n"
		"\n"
		"  -s, --stream NAME         stream name (default 'image')\n"
		"  -p, --peer ID|NAME|ROUTE  the peer, when several are "
		"connected\n"
		"  -t, --timeout S           how long to wait for the peer "
		"(default 30)\n"
		"  -z, --compress[=LEVEL]    (send) zstd, level 1 by default\n"
		"  -f, --force               (send) read a device mounted "
		"read-write;\n"
		"                            (recv) overwrite an existing "
		"file\n"
		"      --sync-every MIB      (recv) checkpoint interval "
		"(default 64)\n"
		"      --state-dir DIR       (recv) journal of a device "
		"target\n"
		"                            (default /run/tbstream)\n"
		"  -k, --keep                leave the stream up afterwards\n"
		"  -j, --json                print a summary as JSON\n"
		"  -q, --quiet               no progress line\n"
		"  -h, --help                show this help\n");
}

static int parse_opt(int c, struct image_args *a)
{
	long v;

	switch (c) {
	case 's':
		a->name = optarg;
		return 0;
	case 'p':
		a->peer = optarg;
		return 0;
	case 't':
		v = cli_parse_num(optarg);
		if (v <= 0 || v > 86400)
			return -1;
		a->up.timeout_ms = (int)v * 1000;
		return 0;
	case 'z':
		v = optarg ? cli_parse_num(optarg) : 1;
		if (v < 1 || v > 19)
			return -1;
		a->io.compress = (int)v;
		return 0;
	case 'f':
		a->io.force = true;
		return 0;
	case 'S':
		v = cli_parse_num(optarg);
		if (v <= 0 || v > 1024 * 1024)
			return -1;
		a->io.sync_every = (uint64_t)v << 20;
		return 0;
	case 'D':
		a->io.state_dir = optarg;
		return 0;
	case 'k':
		a->keep = true;
		return 0;
	case 'j':
		a->json = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	}
	return -1;
}

/* Return: 0 to run, -1 after --help, or an exit status. */
static int image_parse(int argc, char **argv, struct image_args *a)
{
	static const struct option opts[] = {
		{ "stream", required_argument, NULL, 's' },
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "compress", optional_argument, NULL, 'z' },
		{ "force", no_argument, NULL, 'f' },
		{ "sync-every", required_argument, NULL, 'S' },
		{ "state-dir", required_argument, NULL, 'D' },
		{ "keep", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *verb = argc > 1 ? argv[1] : "";
	int c;

	if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
		image_usage(stdout);
		return -1;
	}
	a->send = !strcmp(verb, "send");
	a->verify = !strcmp(verb, "verify");
	if (!a->send && !a->verify && strcmp(verb, "recv"))
		return cli_usage_error("image", "send, recv or verify?");
	optind = 2;
	while ((c = getopt_long(argc, argv, "s:p:t:z::fkjqh", opts, NULL)) !=
	       -1) {
		if (c == 'h') {
			image_usage(stdout);
			return -1;
		}
		if (parse_opt(c, a))
			return cli_usage_error("image", "bad option or value");
	}
	if (optind + 1 != argc)
		return cli_usage_error("image", "one SOURCE, TARGET or FILE");
	a->path = argv[optind];
	if (!a->name[0] || strlen(a->name) > TBS_NAME_MAX ||
	    strchr(a->name, '/'))
		return cli_usage_error(
			"image", "a stream NAME has 1 to 8 bytes, no '/'");
	return 0;
}

static void on_progress(void *arg, const struct tbs_image_stats *st)
{
	struct progress *p = arg;

	progress_set_total(p, st->size - st->start, 0);
	progress_skip(p, st->zero_bytes);
	progress_update(p, st->done - st->start, 0);
}

static void json_summary(const struct image_args *a,
			 const struct tbs_image_stats *st,
			 const struct progress *p, const struct tbs_error *e)
{
	double s = (double)progress_elapsed_ms(p) / 1000.0;

	printf("{\"command\": \"image %s\", \"path\": ", a->verify ? "verify"
							 : a->send ? "send"
								   : "recv");
	json_str(stdout, a->path);
	printf(", \"ok\": %s, \"size\": %llu, \"start\": %llu, "
	       "\"done\": %llu, \"data_bytes\": %llu, \"zero_bytes\": %llu, "
	       "\"wire_bytes\": %llu, \"extents\": %llu, \"confirmed\": %llu, "
	       "\"seconds\": %.3f, \"hash\": ",
	       e->code ? "false" : "true", (unsigned long long)st->size,
	       (unsigned long long)st->start, (unsigned long long)st->done,
	       (unsigned long long)st->data_bytes,
	       (unsigned long long)st->zero_bytes,
	       (unsigned long long)st->wire_bytes,
	       (unsigned long long)st->extents,
	       (unsigned long long)st->confirmed, s);
	json_str(stdout, st->hash);
	printf(", \"error\": ");
	json_str(stdout, e->code ? e->msg : "");
	printf("}\n");
}

static void human_summary(const struct image_args *a,
			  const struct tbs_image_stats *st)
{
	char d[32], z[32];

	if (a->quiet)
		return;
	format_bytes(d, sizeof(d), (double)st->data_bytes);
	format_bytes(z, sizeof(z), (double)st->zero_bytes);
	cli_msg("%s '%s': %s of data, %s of zeros%s, xxh3-128 %s",
		a->verify ? "verified"
		: a->send ? "sent"
			  : "received",
		a->path, d, z, st->start ? " (resumed)" : "", st->hash);
}

static int run_session(const struct image_args *a, struct tbs_endpoint *ep,
		       struct tbs_image_stats *st, struct tbs_error *e)
{
	struct tbs_session_opts so = {
		.role = a->send ? TBS_ROLE_SENDER : TBS_ROLE_RECEIVER,
		.id = "image",
		.id_len = 5,
		.handshake_ms = a->up.timeout_ms,
		.confirm_ms = 600000,
		/* Rides over the pauses of a disk (writeback, checkpoints). */
		.window = 32 << 20,
	};
	struct tbs_session *s;
	int ret;

	ret = tbs_session_new(&s, ep->rfd, ep->wfd, &so);
	if (ret) {
		e->code = ret;
		snprintf(e->msg, sizeof(e->msg), "could not start a session");
		return ret;
	}
	ret = tbs_session_start(s);
	if (ret) {
		e->code = ret;
		snprintf(e->msg, sizeof(e->msg), "no session with the peer: %s",
			 tbs_session_error(s));
		tbs_session_free(s);
		return ret;
	}
	if (a->send)
		ret = tbs_image_send(s, a->path, &a->io, st, e);
	else
		ret = tbs_image_recv(s, a->path, &a->io, st, e);
	/*
	 * The engine ended both directions, also after a failure while the
	 * session still worked: BYE, so that neither side closes with data
	 * in flight.  Its result changes nothing that was confirmed.
	 */
	tbs_session_close(s);
	tbs_session_free(s);
	return ret;
}

static int transfer(const struct cli *cli, const struct image_args *a,
		    struct tbs_image_stats *st, struct tbs_error *e)
{
	struct tbs_image_info info;
	struct tbs_endpoint ep;
	struct tbs_stream st_;
	struct tbs_error de = { 0 };
	int ret, created;

	if (a->send && tbs_image_probe(a->path, a->io.force, &info, e))
		return e->code;
	created = tbs_stream_up(cli->root, a->peer, a->name, &a->up, &st_, e);
	if (created < 0)
		return created;
	ret = tbs_endpoint_open(cli->root, &st_, a->up.timeout_ms, 0, &ep, e);
	if (!ret) {
		ret = run_session(a, &ep, st, e);
		tbs_endpoint_close(&ep);
	}
	if (created && !a->keep && tbs_stream_down(cli->root, &st_, false, &de))
		cli_fail(&de);
	return ret;
}

static int verify(const struct image_args *a, struct tbs_image_stats *st,
		  struct tbs_error *e)
{
	struct tbs_image_info info;
	int ret;

	ret = tbs_image_sidecar_read(a->path, &info, e);
	if (!ret)
		ret = tbs_image_verify(a->path, &info, &a->io, st, e);
	return ret;
}

int cmd_image(const struct cli *cli, int argc, char **argv)
{
	struct image_args a = { .name = "image" };
	struct tbs_image_stats st = { 0 };
	struct tbs_error e = { 0 };
	struct progress p;
	int ret;

	tbs_up_opts_init(&a.up);
	ret = image_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	signal(SIGPIPE, SIG_IGN);
	progress_init(&p,
		      a.verify ? "verifying"
		      : a.send ? "sending"
			       : "receiving",
		      a.quiet);
	a.io.progress = on_progress;
	a.io.arg = &p;
	ret = a.verify ? verify(&a, &st, &e) : transfer(cli, &a, &st, &e);
	progress_end(&p);
	if (ret && !e.code)
		e.code = ret;
	if (a.json)
		json_summary(&a, &st, &p, &e);
	if (ret)
		return cli_fail(&e);
	human_summary(&a, &st);
	return EXIT_OK;
}
