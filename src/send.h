/* SPDX-License-Identifier: MIT */
/*
 * tbstream send / recv: what the two commands share (cmd-send.c has the
 * shared part: options, stream set-up, session, progress, summary).
 */
#ifndef TBS_SEND_H
#define TBS_SEND_H

#include <getopt.h>
#include <pthread.h>

#include "cli.h"
#include "job.h"
#include "progress.h"

struct xfer {
	const char *cmd; /* "send" or "recv" */
	struct job job; /* the stream, the peer, --timeout, --keep */
	bool json, quiet;
	struct tbs_tree_opts tree;
	/* send: the paths; recv: the directory */
	char **paths;
	int npaths;

	bool verbose;

	struct progress prog;
	pthread_mutex_t lock;
	struct tbs_tree_stats st;
	uint64_t created, replaced, removed; /* (or would be, in a dry run) */
	bool dry; /* a change was reported as one that would be */
	char error[TBS_MSG_MAX + 64];
};

#define XFER_SHORTOPTS JOB_SHORTOPTS "qjhnv"
/* The options both commands take (getopt_long entries). */
#define XFER_LONGOPTS                                                          \
	JOB_LONGOPTS, { "quiet", no_argument, NULL, 'q' },                     \
		{ "json", no_argument, NULL, 'j' },                            \
		{ "specials", no_argument, NULL, 'S' },                        \
		{ "dry-run", no_argument, NULL, 'n' },                         \
		{ "verbose", no_argument, NULL, 'v' },                         \
		{ "numeric-ids", no_argument, NULL, 'N' },                     \
		{ "no-xattrs", no_argument, NULL, 'X' },                       \
		{ "no-acls", no_argument, NULL, 'A' },                         \
	{                                                                      \
		"help", no_argument, NULL, 'h'                                 \
	}

#define XFER_COMMON_HELP                                                       \
	"  -s, --stream NAME         the stream (default 'files'); the same "  \
	"on\n"                                                                 \
	"                            both hosts\n"                             \
	JOB_PEER_HELP                                                          \
	JOB_UP_HELP                                                            \
	JOB_TRANSPORT_HELP                                                     \
	"  -k, --keep                leave the stream up afterwards\n"         \
	"  -q, --quiet               no progress line and no per-file "        \
	"messages\n"                                                           \
	"  -j, --json                a summary for scripts on standard "       \
	"output\n"                                                             \
	"  -n, --dry-run             change nothing; show what would change "  \
	"on\n"                                                                 \
	"                            the receiver (either side may ask)\n"    \
	"  -v, --verbose             show every entry created, replaced or "   \
	"removed\n"                                                            \
	"      --numeric-ids         owners by number, not by user and group " \
	"name\n"                                                               \
	"      --no-xattrs           no extended attributes\n"                \
	"      --no-acls             no POSIX ACLs\n"                         \
	"  -h, --help                show this help\n"

void xfer_init(struct xfer *x, const struct cli *cli, const char *cmd);
/* Handles option @c of both commands: 1 handled, 0 not one of them,
 * -1 a bad value. */
int xfer_opt(struct xfer *x, int c, const char *arg);
/* Runs @engine on a session over the stream, as a job (job.h). */
int xfer_run(struct xfer *x, int role,
	     int (*engine)(struct xfer *x, struct tbs_session *s,
			   struct tbs_error *e));

#endif
