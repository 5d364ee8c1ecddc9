// SPDX-License-Identifier: MIT
/*
 * pipe-rtt: round trips through a command's standard input and output.
 *
 *   pipe-rtt SIZE COUNT OUT -- COMMAND [ARG...]
 *
 * Starts COMMAND with a pipe on its standard input and one on its standard
 * output (as a shell pipeline would), then COUNT times writes SIZE bytes
 * and reads SIZE bytes back (the far end echoes them), and appends the
 * round-trip times in microseconds to the file OUT, one per line.  Ten
 * round trips before them are not counted.  Kills COMMAND at the end: an
 * echo never ends its stream, so the command would not end either.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtt.h"

static pid_t spawn(char **argv, int *in, int *out)
{
	int pi[2], po[2];
	pid_t pid;

	if (pipe(pi) || pipe(po))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pi[0], 0);
		dup2(po[1], 1);
		close(pi[0]);
		close(pi[1]);
		close(po[0]);
		close(po[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pi[0]);
	close(po[1]);
	*in = pi[1];
	*out = po[0];
	return pid;
}

int main(int argc, char **argv)
{
	size_t size;
	int count, in, out, i;
	char *buf;
	FILE *f;
	double t0;
	pid_t pid;

	if (argc < 6 || strcmp(argv[4], "--")) {
		fprintf(stderr, "usage: pipe-rtt SIZE COUNT OUT -- COMMAND [ARG...]\n");
		return 2;
	}
	size = (size_t)atol(argv[1]);
	count = atoi(argv[2]);
	buf = calloc(1, size ? size : 1);
	f = fopen(argv[3], "a");
	if (!size || count < 1 || !buf || !f) {
		fprintf(stderr, "pipe-rtt: bad arguments\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pid = spawn(argv + 5, &in, &out);
	if (pid < 0)
		return 1;
	for (i = -WARMUP; i < count; i++) {
		t0 = now_us();
		if (full(in, buf, size, true) || full(out, buf, size, false)) {
			fprintf(stderr, "pipe-rtt: the command ended early\n");
			kill(pid, SIGTERM);
			return 1;
		}
		if (i >= 0)
			fprintf(f, "%.1f\n", now_us() - t0);
	}
	fclose(f);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return 0;
}
