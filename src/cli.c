// SPDX-License-Identifier: MIT
/*
 * Shared helpers of the tbstream subcommands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "escape.h"

int cli_exit_status(int err)
{
	switch (-err) {
	case 0:
		return EXIT_OK;
	case ENODEV:
	case ENOENT:
		return EXIT_MISSING;
	case ETIMEDOUT:
		return EXIT_TIMEOUT;
	case EBUSY:
	case ENOSPC:
	case ENOMEM:
		return EXIT_BUSY;
	case ENOTUNIQ:
		return EXIT_USAGE;
	default:
		return EXIT_FAIL;
	}
}

/* Every message goes through esc_write(): it may hold a peer's text. */
void cli_msg(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fputs("tbstream: ", stderr);
	esc_write(stderr, buf, ESC_TERM);
	fputc('\n', stderr);
}

int cli_fail(const struct tbs_error *e)
{
	cli_msg("%s", e->msg[0] ? e->msg : strerror(-e->code));
	return cli_exit_status(e->code);
}

int cli_usage_error(const char *cmd, const char *what)
{
	cli_msg("%s: %s (see 'tbstream %s --help')", cmd, what, cmd);
	return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char *const *argv)
{
	const char *opt;
	char what[160];
	int len;

	if (c == '?' || c == ':' || !optarg || optind < 2)
		/* getopt named the option already */
		return cli_usage_error(cmd, "bad option");
	opt = argv[optind - 1] == optarg ? argv[optind - 2] : argv[optind - 1];
	len = strncmp(opt, "--", 2) ? 2 : (int)strcspn(opt, "=");
	snprintf(what, sizeof(what), "bad value '%.64s' for %.*s", optarg, len,
		 opt);
	return cli_usage_error(cmd, what);
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, void (*usage)(FILE *),
	       int (*opt)(void *arg, int c, const char *val), void *arg)
{
	int c;

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return -1;
		}
		if (opt(arg, c, optarg))
			return cli_bad_option(cmd, c, argv);
	}
	return 0;
}

int cli_peer_uid(const struct cli *cli, const char *spec, char *uid, size_t len)
{
	struct tbs_error e = { 0 };
	struct tbs_peer p;

	if (tbs_peer_find(cli->root, spec, &p, &e))
		return cli_fail(&e);
	snprintf(uid, len, "%s", p.unique_id);
	return 0;
}

uint64_t cli_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cli_now_ms(void)
{
	return (int64_t)(cli_now_ns() / 1000000);
}

long cli_parse_num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	return v;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	esc_write(f, s, ESC_JSON);
	fputc('"', f);
}
