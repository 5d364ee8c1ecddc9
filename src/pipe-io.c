// SPDX-License-Identifier: MIT
/*
 * tbstream pipe: blocking I/O that another thread can stop.  Each read or
 * write first waits in poll() for its descriptor or for a stop pipe; the
 * thread that ends the command writes to the stop pipe and joins.  (No
 * thread cancellation: it unwinds through code that does not expect it.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "pipe.h"

int pipe_stop_init(struct pipe_stop *st)
{
	return pipe2(st->fds, O_CLOEXEC | O_NONBLOCK) ? -errno : 0;
}

void pipe_stop_fire(struct pipe_stop *st)
{
	char c = 0;

	if (write(st->fds[1], &c, 1) < 0 && errno != EAGAIN)
		return;
}

void pipe_stop_fini(struct pipe_stop *st)
{
	close(st->fds[0]);
	close(st->fds[1]);
}

ssize_t pipe_io(const struct pipe_stop *st, int fd, void *buf, size_t len,
		bool writing)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = writing ? POLLOUT : POLLIN },
		{ .fd = st->fds[0], .events = POLLIN },
	};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents) {
			errno = ECANCELED;
			return -1;
		}
		if (p[0].revents)
			break;
	}
	return writing ? write(fd, buf, len) : read(fd, buf, len);
}
