/* SPDX-License-Identifier: MIT */
/*
 * tbstream pipe: the arguments and the data movers.
 */
#ifndef TBS_PIPE_H
#define TBS_PIPE_H

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include "cli.h"

struct pipe_args {
	const char *name;
	const char *peer;
	bool raw;
	bool send_only;
	bool recv_only;
	bool keep;
	bool verbose;
	bool quiet;
	struct tbs_up_opts opts;
};

/* Takes down a stream the command brought up when a signal ends it. */
struct pipe_guard {
	pthread_mutex_t lock;
	sigset_t set;
	const char *root;
	struct tbs_stream st;
	bool armed;
};

int pipe_guard_start(struct pipe_guard *g, const char *root);
void pipe_guard_arm(struct pipe_guard *g, const struct tbs_stream *st);
void pipe_guard_disarm(struct pipe_guard *g);

/*
 * read() (or write() when @writing) at which the calling thread, which
 * otherwise runs with cancellation disabled, may be cancelled.
 */
ssize_t pipe_cancellable_io(int fd, void *buf, size_t len, bool writing);

int pipe_raw(const struct pipe_args *a, struct tbs_endpoint *ep);
int pipe_session(const struct pipe_args *a, struct tbs_endpoint *ep);

#endif
