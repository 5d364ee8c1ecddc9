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
	bool verbose;
	bool quiet;
	int transport; /* --transport */
	struct tbs_up_opts opts;
};

/* A pipe that tells the threads of a command to stop waiting. */
struct pipe_stop {
	int fds[2];
};

int pipe_stop_init(struct pipe_stop *st);
void pipe_stop_fire(struct pipe_stop *st);
void pipe_stop_fini(struct pipe_stop *st);

/*
 * read() (or write() when @writing) once @fd is ready; -1 with errno
 * ECANCELED once @st was fired.
 */
ssize_t pipe_io(const struct pipe_stop *st, int fd, void *buf, size_t len,
		bool writing);

int pipe_raw(const struct pipe_args *a, struct tbs_endpoint *ep);
int pipe_session(const struct pipe_args *a, struct tbs_endpoint *ep);

#endif
