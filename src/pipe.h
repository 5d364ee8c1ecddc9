/* SPDX-License-Identifier: MIT */
/*
 * tbstream pipe: the arguments and the data movers.
 */
#ifndef TBS_PIPE_H
#define TBS_PIPE_H

#include <sys/types.h>

#include "cli.h"

struct pipe_args {
	const char *name;
	const char *peer;
	bool raw;
	bool send_only;
	bool recv_only;
	bool keep;
	struct tbs_up_opts opts;
};

/*
 * read() (or write() when @writing) at which the calling thread, which
 * otherwise runs with cancellation disabled, may be cancelled.
 */
ssize_t pipe_cancellable_io(int fd, void *buf, size_t len, bool writing);

int pipe_raw(const struct pipe_args *a, struct tbs_endpoint *ep);
int pipe_session(const struct pipe_args *a, struct tbs_endpoint *ep);

#endif
