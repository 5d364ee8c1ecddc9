// SPDX-License-Identifier: MIT
/*
 * tbstream image: whole-disk backup and restore.  "send SOURCE" on one
 * host and "recv TARGET" on the other, in either order; "verify FILE"
 * hashes an image again against its sidecar.  Brings the stream up when
 * needed and down again afterwards if it brought it up.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "job.h"
#include "progress.h"

struct image_args {
	bool send, verify;
	const char *path;
	struct job job; /* the stream, the peer, --timeout, --keep */
	bool json, quiet;
	struct tbs_image_opts io;
};

/* What the job's body needs and gives back. */
struct image_run {
	const struct image_args *a;
	struct tbs_image_stats *st;
	struct tbs_error *e;
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
		JOB_PEER_HELP
		JOB_UP_HELP
		JOB_TRANSPORT_HELP
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

static int parse_opt(void *args, int c, const char *val)
{
	struct image_args *a = args;
	long v;
	int r;

	r = job_opt(&a->job, c, val);
	if (r)
		return r < 0 ? -1 : 0;
	switch (c) {
	case 'z':
		v = val ? cli_parse_num(val) : 1;
		if (v < 1 || v > 19)
			return -1;
		a->io.compress = (int)v;
		return 0;
	case 'f':
		a->io.force = true;
		return 0;
	case 'S':
		v = cli_parse_num(val);
		if (v <= 0 || v > 1024 * 1024)
			return -1;
		a->io.sync_every = (uint64_t)v << 20;
		return 0;
	case 'D':
		a->io.state_dir = val;
		return 0;
	case 'j':
		a->json = true;
		return 0;
	case 'q':
		a->quiet = a->job.quiet = true;
		return 0;
	}
	return -1;
}

/* Return: 0 to run, -1 after --help, or an exit status. */
static int image_parse(int argc, char **argv, struct image_args *a)
{
	static const struct option opts[] = {
		JOB_LONGOPTS,
		{ "compress", optional_argument, NULL, 'z' },
		{ "force", no_argument, NULL, 'f' },
		{ "sync-every", required_argument, NULL, 'S' },
		{ "state-dir", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *verb = argc > 1 ? argv[1] : "";
	int ret;

	if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
		image_usage(stdout);
		return -1;
	}
	a->send = !strcmp(verb, "send");
	a->verify = !strcmp(verb, "verify");
	if (!a->send && !a->verify && strcmp(verb, "recv"))
		return cli_usage_error("image", "send, recv or verify?");
	optind = 2;
	ret = cli_getopt("image", argc, argv, JOB_SHORTOPTS "z::fjqh", opts,
			 image_usage, parse_opt, a);
	if (ret)
		return ret;
	if (optind + 1 != argc)
		return cli_usage_error("image", "one SOURCE, TARGET or FILE");
	a->path = argv[optind];
	return job_check_name(&a->job, "image");
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

/* The job's body: the image engine on a session over the stream. */
static int run_session(struct job *j, void *arg)
{
	const struct image_run *r = arg;
	const struct image_args *a = r->a;
	struct tbs_session_opts so = TBS_OPTS_INIT(
		tbs_session_opts,
		.role = a->send ? TBS_ROLE_SENDER : TBS_ROLE_RECEIVER,
		.id = "image", .id_len = 5, .handshake_ms = job_timeout_ms(j),
		.confirm_ms = 600000,
		/* Rides over the pauses of a disk (writeback, checkpoints). */
		.window = 32 << 20);
	struct tbs_image_stats *st = r->st;
	struct tbs_error *e = r->e;
	struct tbs_session *s;
	int ret;

	ret = tbs_session_new(&s, j->ep.rfd, j->ep.wfd, &so);
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

static int transfer(struct image_args *a, struct tbs_image_stats *st,
		    struct tbs_error *e)
{
	struct image_run r = { .a = a, .st = st, .e = e };
	struct tbs_image_info info;
	int ret;

	if (a->send && tbs_image_probe(a->path, a->io.force, &info, e))
		return e->code;
	ret = job_run(&a->job, run_session, &r);
	if (ret && !a->job.ran)
		*e = a->job.err;
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
	struct image_args a = { .io = TBS_OPTS_INIT(tbs_image_opts) };
	struct tbs_image_stats st = { 0 };
	struct tbs_error e = { 0 };
	struct progress p;
	int ret;

	job_init(&a.job, cli, "image");
	ret = image_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	progress_init(&p,
		      a.verify ? "verifying"
		      : a.send ? "sending"
			       : "receiving",
		      a.quiet);
	a.io.progress = on_progress;
	a.io.arg = &p;
	ret = a.verify ? verify(&a, &st, &e) : transfer(&a, &st, &e);
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
