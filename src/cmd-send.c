// SPDX-License-Identifier: MIT
/*
 * tbstream send: files and directory trees to the peer, where tbstream
 * recv writes them.  Also what send and recv share: bringing the stream up
 * and down, the session, progress, messages and the JSON summary.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "send.h"

void xfer_init(struct xfer *x, const struct cli *cli, const char *cmd)
{
	memset(x, 0, sizeof(*x));
	x->cmd = cmd;
	job_init(&x->job, cli, "files");
	x->tree = TBS_OPTS_INIT(tbs_tree_opts);
	pthread_mutex_init(&x->lock, NULL);
}

int xfer_opt(struct xfer *x, int c, const char *arg)
{
	switch (c) {
	case 'q':
		x->quiet = x->job.quiet = true;
		return 1;
	case 'j':
		x->json = true;
		return 1;
	case 'S':
		x->tree.flags |= TBS_TREE_SPECIALS;
		return 1;
	case 'n':
		x->tree.flags |= TBS_TREE_DRY_RUN;
		return 1;
	case 'v':
		x->verbose = true;
		return 1;
	case 'N':
		x->tree.flags |= TBS_TREE_NUMERIC_IDS;
		return 1;
	case 'X':
		x->tree.flags |= TBS_TREE_NO_XATTRS;
		return 1;
	case 'A':
		x->tree.flags |= TBS_TREE_NO_ACLS;
		return 1;
	default:
		return job_opt(&x->job, c, arg);
	}
}

/* ---- progress and messages (called from the engine's threads) ---- */

static void on_notify(void *arg, const char *msg)
{
	struct xfer *x = arg;

	pthread_mutex_lock(&x->lock);
	if (!x->quiet) {
		if (x->prog.drawn)
			fputs("\r\033[K", stderr);
		cli_msg("%s", msg);
	}
	pthread_mutex_unlock(&x->lock);
}

/* Each change: counted; shown with --verbose, and always in a dry run. */
static void on_change(void *arg, unsigned int what, const char *path)
{
	static const char *const done[] = { "", "created", "replaced",
					    "removed" };
	static const char *const would[] = { "", "would create",
					     "would replace", "would remove" };
	struct xfer *x = arg;
	unsigned int k = what & 0xff;
	bool dry = what & TBS_TREE_WOULD;

	if (k < TBS_TREE_CREATED || k > TBS_TREE_REMOVED)
		return;
	pthread_mutex_lock(&x->lock);
	x->created += k == TBS_TREE_CREATED;
	x->replaced += k == TBS_TREE_REPLACED;
	x->removed += k == TBS_TREE_REMOVED;
	x->dry |= dry;
	if (!x->quiet && (x->verbose || dry)) {
		if (x->prog.drawn)
			fputs("\r\033[K", stderr);
		cli_msg("%s '%s'", dry ? would[k] : done[k], path);
	}
	pthread_mutex_unlock(&x->lock);
}

static void on_progress(void *arg, const struct tbs_tree_stats *st)
{
	struct xfer *x = arg;

	pthread_mutex_lock(&x->lock);
	x->st = *st;
	progress_set_total(&x->prog, st->bytes_total, st->files);
	progress_update(&x->prog, st->bytes_data + st->bytes_resumed,
			st->files_done + st->files_present);
	pthread_mutex_unlock(&x->lock);
}

/* ---- the summary ---- */

static void json_num(const char *key, unsigned long long v, bool comma)
{
	printf("%s\"%s\":%llu", comma ? "," : "", key, v);
}

static void summary_json(const struct xfer *x, int status)
{
	const struct tbs_tree_stats *st = &x->st;
	double s = (double)progress_elapsed_ms(&x->prog) / 1000.0;

	printf("{\"command\":");
	json_str(stdout, x->cmd);
	printf(",\"stream\":");
	json_str(stdout, x->job.name);
	printf(",\"ok\":%s", status ? "false" : "true");
	json_num("exit_status", (unsigned long long)status, true);
	json_num("entries", st->entries, true);
	json_num("files", st->files, true);
	json_num("dirs", st->dirs, true);
	json_num("symlinks", st->symlinks, true);
	json_num("hardlinks", st->hardlinks, true);
	json_num("specials", st->specials, true);
	json_num("bytes_total", st->bytes_total, true);
	json_num("bytes_data", st->bytes_data, true);
	json_num("bytes_done", st->bytes_done, true);
	json_num("files_done", st->files_done, true);
	json_num("files_present", st->files_present, true);
	json_num("files_resumed", st->files_resumed, true);
	json_num("bytes_resumed", st->bytes_resumed, true);
	json_num("failed", st->failed, true);
	json_num("warnings", st->warnings, true);
	printf(",\"dry_run\":%s", x->dry ? "true" : "false");
	json_num("created", x->created, true);
	json_num("replaced", x->replaced, true);
	json_num("removed", x->removed, true);
	printf(",\"seconds\":%.3f,\"error\":", s);
	json_str(stdout, x->error);
	printf("}\n");
}

static void summary_text(const struct xfer *x)
{
	const struct tbs_tree_stats *st = &x->st;
	char b[32], r[32];

	if (x->quiet || !x->prog.enabled)
		return;
	format_bytes(b, sizeof(b), (double)st->bytes_data);
	format_bytes(r, sizeof(r), progress_rate(&x->prog));
	cli_msg("%s: %llu files (%llu already there, %llu resumed), %s over "
		"the cable at %s/s; %llu %s, %llu %s, %llu %s%s",
		x->cmd, (unsigned long long)st->files,
		(unsigned long long)st->files_present,
		(unsigned long long)st->files_resumed, b, r,
		(unsigned long long)x->created,
		x->dry ? "would be created" : "created",
		(unsigned long long)x->replaced,
		x->dry ? "would be replaced" : "replaced",
		(unsigned long long)x->removed,
		x->dry ? "would be removed" : "removed",
		x->dry ? " (a dry run: nothing was changed)" : "");
}

/* ---- the stream and the session ---- */

struct xfer_call {
	struct xfer *x;
	int role;
	int (*engine)(struct xfer *x, struct tbs_session *s,
		      struct tbs_error *e);
};

/* The job's body: @engine on a session over the stream. */
static int session_run(struct job *j, void *arg)
{
	const struct xfer_call *c = arg;
	struct tbs_session_opts so =
		TBS_OPTS_INIT(tbs_session_opts, .role = c->role,
			      .handshake_ms = job_timeout_ms(j));
	struct xfer *x = c->x;
	struct tbs_error e = { 0 };
	struct tbs_session *s;
	int r;

	r = tbs_session_new(&s, j->ep.rfd, j->ep.wfd, &so);
	if (r) {
		snprintf(x->error, sizeof(x->error),
			 "could not start a session: %s", strerror(-r));
		return r;
	}
	r = tbs_session_start(s);
	if (r)
		snprintf(x->error, sizeof(x->error),
			 "no session with the peer: %s", tbs_session_error(s));
	if (!r) {
		r = c->engine(x, s, &e);
		if (r)
			snprintf(x->error, sizeof(x->error), "%s",
				 e.msg[0] ? e.msg : strerror(-r));
	}
	/* -EIO: some entries failed, but the transfer ended in order */
	if ((!r || r == -EIO) && tbs_session_close(s) && !r) {
		r = -ECONNRESET;
		snprintf(x->error, sizeof(x->error), "closing: %s",
			 tbs_session_error(s));
	}
	tbs_session_free(s);
	return r;
}

static int status_of(int r)
{
	if (r == -ETIMEDOUT)
		return EXIT_TIMEOUT;
	if (r == -EIO || r == -EPROTO || r == -ENOENT || r == -ECONNRESET)
		return EXIT_FAIL;
	return cli_exit_status(r);
}

static int finish(struct xfer *x, int r)
{
	int status = status_of(r);

	progress_end(&x->prog);
	if (r)
		cli_msg("%s: %s", x->cmd, x->error);
	else
		summary_text(x);
	if (x->json)
		summary_json(x, status);
	return status;
}

int xfer_run(struct xfer *x, int role,
	     int (*engine)(struct xfer *x, struct tbs_session *s,
			   struct tbs_error *e))
{
	struct xfer_call c = { .x = x, .role = role, .engine = engine };
	int r;

	x->tree.notify = on_notify;
	x->tree.change = on_change;
	x->tree.arg = x;
	x->dry = x->tree.flags & TBS_TREE_DRY_RUN;
	progress_init(&x->prog,
		      role == TBS_ROLE_SENDER ? "sending" : "receiving",
		      x->quiet);
	/* the totals cost a first walk: only for a progress line */
	if (x->prog.enabled)
		x->tree.progress = on_progress;
	r = job_run(&x->job, session_run, &c);
	if (r && !x->job.ran)
		snprintf(x->error, sizeof(x->error), "%s", x->job.err.msg);
	return finish(x, r);
}

/* ---- tbstream send ---- */

static void send_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream send [OPTIONS] PATH...\n"
		"\n"
		"Sends files and directories (with everything beneath them) "
		"to the\n"
		"peer, where 'tbstream recv' writes each PATH into its "
		"directory by\n"
		"its last component.  Start both in either order.  Exits 0 "
		"only when\n"
		"the receiver confirmed every file durable and verified; run "
		"it again\n"
		"after an interruption to continue.\n"
		"\n" XFER_COMMON_HELP "      --specials            also send "
		"device nodes and FIFOs\n"
		"  -c, --checksum            a file is unchanged when its hash "
		"matches,\n"
		"                            not when its size and time do\n"
		"      --mirror              ask the receiver to remove what is "
		"no longer\n"
		"                            here (recv allows it with its delete "
		"option)\n");
}

static int send_engine(struct xfer *x, struct tbs_session *s,
		       struct tbs_error *e)
{
	return tbs_tree_send(s, (const char *const *)x->paths,
			     (size_t)x->npaths, &x->tree, &x->st, e);
}

static int send_parse(struct xfer *x, int argc, char **argv)
{
	static const struct option opts[] = {
		XFER_LONGOPTS,
		{ "checksum", no_argument, NULL, 'c' },
		{ "mirror", no_argument, NULL, 'M' },
		{ 0 },
	};
	int c, r;

	while ((c = getopt_long(argc, argv, XFER_SHORTOPTS "c", opts, NULL)) !=
	       -1) {
		if (c == 'h') {
			send_usage(stdout);
			return -1;
		}
		if (c == 'c' || c == 'M') {
			x->tree.flags |=
				c == 'c' ? TBS_TREE_CHECKSUM : TBS_TREE_DELETE;
			continue;
		}
		r = xfer_opt(x, c, optarg);
		if (r <= 0)
			return cli_bad_option("send", c, argv);
	}
	if (optind >= argc)
		return cli_usage_error("send", "nothing to send: give a PATH");
	x->paths = argv + optind;
	x->npaths = argc - optind;
	return 0;
}

static int check_paths(const struct xfer *x)
{
	struct stat sb;
	int i;

	for (i = 0; i < x->npaths; i++) {
		if (lstat(x->paths[i], &sb)) {
			cli_msg("send: cannot send '%s': %s", x->paths[i],
				strerror(errno));
			return EXIT_FAIL;
		}
	}
	return 0;
}

int cmd_send(const struct cli *cli, int argc, char **argv)
{
	struct xfer x;
	int r;

	xfer_init(&x, cli, "send");
	r = send_parse(&x, argc, argv);
	if (r)
		return r < 0 ? EXIT_OK : r;
	r = job_check_name(&x.job, "send");
	if (!r)
		r = check_paths(&x);
	if (r)
		return r;
	return xfer_run(&x, TBS_ROLE_SENDER, send_engine);
}
