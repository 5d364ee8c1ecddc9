/* SPDX-License-Identifier: MIT */
/*
 * What the subcommands of tbstream share: the global options, exit
 * statuses, messages and JSON output.  Uses only the public API.
 */
#ifndef TBS_CLI_H
#define TBS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "tbstream.h"

/* Exit statuses, documented in tbstream(1). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1, /* the operation failed */
	EXIT_USAGE = 2, /* bad command line, or a choice is needed */
	EXIT_MISSING = 3, /* no peer, no driver, no such stream */
	EXIT_TIMEOUT = 4, /* the peer did not answer in time */
	EXIT_BUSY = 5, /* in use, or no free HopID / DMA ring */
};

/* How long a command waits for the peer unless told (--timeout). */
#define CLI_TIMEOUT_MS 30000

struct cli {
	const char *root;
};

struct cli_cmd {
	const char *name;
	int (*run)(const struct cli *cli, int argc, char **argv);
	const char *summary;
};

int cmd_list(const struct cli *cli, int argc, char **argv);
int cmd_doctor(const struct cli *cli, int argc, char **argv);
int cmd_up(const struct cli *cli, int argc, char **argv);
int cmd_down(const struct cli *cli, int argc, char **argv);
int cmd_pipe(const struct cli *cli, int argc, char **argv);
int cmd_bench(const struct cli *cli, int argc, char **argv);
int cmd_send(const struct cli *cli, int argc, char **argv);
int cmd_recv(const struct cli *cli, int argc, char **argv);
int cmd_image(const struct cli *cli, int argc, char **argv);
int cmd_cam(const struct cli *cli, int argc, char **argv);
int cmd_forward(const struct cli *cli, int argc, char **argv);
int cmd_disk(const struct cli *cli, int argc, char **argv);
int cmd_reconcile(const struct cli *cli, int argc, char **argv);

/* Prints "tbstream: <msg>" on stderr and gives the exit status for @e. */
int cli_fail(const struct tbs_error *e);
__attribute__((format(printf, 1, 2))) void cli_msg(const char *fmt, ...);
int cli_exit_status(int err);
int cli_usage_error(const char *cmd, const char *what);
/*
 * The usage error for option @c of getopt_long() over @argv, just
 * returned: names the option and the value it refused.
 */
int cli_bad_option(const char *cmd, int c, char *const *argv);
/**
 * cli_getopt() - reads the options of a subcommand with getopt_long()
 * @cmd:       the subcommand, for messages
 * @argc:      as for getopt_long()
 * @argv:      as for getopt_long()
 * @shortopts: as for getopt_long()
 * @longopts:  as for getopt_long()
 * @usage:     prints the subcommand's help
 * @opt:       takes option @c with its argument @val (NULL if none) into
 *             @arg: 0, or nonzero when it refuses it; -h never reaches it
 * @arg:       passed to @opt
 *
 * Return: 0 when it took every option; -1 after printing the help with
 * @usage for -h; or the usage error of the option it refused.
 */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts, void (*usage)(FILE *),
	       int (*opt)(void *arg, int c, const char *val), void *arg);
/*
 * Resolves --peer @spec to the peer's unique id (it must be connected).
 * Return: 0, or the exit status after printing why.
 */
int cli_peer_uid(const struct cli *cli, const char *spec, char *uid,
		 size_t len);
/* The monotonic clock, in nanoseconds and in milliseconds. */
uint64_t cli_now_ns(void);
int64_t cli_now_ms(void);
/* Parses a non-negative integer; returns -1 when @s is not one. */
long cli_parse_num(const char *s);

void json_str(FILE *f, const char *s);

#endif
