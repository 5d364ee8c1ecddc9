// SPDX-License-Identifier: MIT
/*
 * tbstream doctor: the whole chain from the kernel to the streams, one
 * line per check, each finding with what to do (tbs_diagnose()).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "escape.h"

static const char *const status_names[] = {
	[TBS_CHECK_OK] = "ok",
	[TBS_CHECK_INFO] = "info",
	[TBS_CHECK_WARN] = "warn",
	[TBS_CHECK_FAIL] = "FAIL",
};

struct doctor {
	bool json;
	int n; /* findings printed */
};

static void doctor_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream doctor [--json] [--peer ID|NAME|ROUTE]\n"
		"\n"
		"Checks the chain from the kernel to the streams and prints "
		"one line\n"
		"per check: the kernel (7.2 or later), the Thunderbolt/USB4 "
		"bus, the\n"
		"thunderbolt_stream driver, ConfigFS, the peer, IP over "
		"Thunderbolt\n"
		"and HopID 8, DMA rings, the streams.  Changes nothing.\n"
		"\n"
		"  -p, --peer ID|NAME|ROUTE  only this peer's streams\n"
		"  -j, --json                machine-readable output\n"
		"  -h, --help                show this help\n"
		"\n"
		"Exit status: 0 when no check failed, 3 when something is "
		"missing\n"
		"(kernel, bus, driver, ConfigFS, peer), 1 otherwise.\n");
}

static const char *status_name(enum tbs_check st)
{
	return (unsigned int)st <= TBS_CHECK_FAIL ? status_names[st] : "?";
}

static void on_finding(void *arg, const char *check, enum tbs_check st,
		       int code, const char *msg)
{
	struct doctor *d = arg;

	if (!d->json) {
		/* a finding may name the peer as it announces itself */
		printf("%-4s  %-9s  ", status_name(st), check);
		esc_write(stdout, msg, ESC_TERM);
		putchar('\n');
		return;
	}
	printf("%s{\"check\":", d->n ? "," : "");
	json_str(stdout, check);
	printf(",\"status\":\"%s\",\"code\":%d,\"message\":",
	       st == TBS_CHECK_FAIL ? "fail" : status_name(st), code);
	json_str(stdout, msg);
	printf("}");
	d->n++;
}

int cmd_doctor(const struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct doctor d = { 0 };
	const char *peer = NULL;
	char uid[64];
	int c, ret, status;

	while ((c = getopt_long(argc, argv, "p:jh", opts, NULL)) != -1) {
		if (c == 'j') {
			d.json = true;
		} else if (c == 'p') {
			peer = optarg;
		} else if (c == 'h') {
			doctor_usage(stdout);
			return EXIT_OK;
		} else {
			return cli_bad_option("doctor", c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("doctor", "unexpected argument");
	uid[0] = '\0';
	ret = peer ? cli_peer_uid(cli, peer, uid, sizeof(uid)) : 0;
	if (ret)
		return ret;
	if (d.json)
		printf("{\"checks\":[");
	ret = tbs_diagnose(cli->root, uid[0] ? uid : NULL, on_finding, &d);
	status = cli_exit_status(ret);
	if (status != EXIT_OK && status != EXIT_MISSING)
		status = EXIT_FAIL;
	if (d.json)
		printf("],\"ok\":%s,\"exit_status\":%d}\n",
		       ret ? "false" : "true", status);
	return status;
}
