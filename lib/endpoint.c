// SPDX-License-Identifier: MIT
/*
 * Endpoint: open a configured stream's device with a time-out (never a
 * blocking open, which waits forever for a peer that does not come), for
 * this process alone (a second reader would steal frames).  An endpoint
 * may also be a TCP connection of the network transport (net-meet.c),
 * which closes as the device does: the peer sees the end after the data,
 * and the close waits briefly for the peer's own end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define POLL_MS 50

static int open_error(const struct tbs_stream *st, int e, int timeout_ms,
		      struct tbs_error *err)
{
	switch (e) {
	case ENOENT:
		return tbsi_err(err, -ETIMEDOUT,
				"the device node '%s' of stream '%s' did not "
				"appear within %d ms",
				st->device, st->name, timeout_ms);
	case ENXIO:
		return tbsi_err(err, -ETIMEDOUT,
				"stream '%s' (%s) is not attached to a "
				"connected peer after %d ms: "
				"check the cable and that the other host has "
				"the stream up",
				st->name, st->device, timeout_ms);
	case EINVAL:
		return tbsi_err(err, -EINVAL,
				"stream '%s' (%s) has no HopIDs: run 'tbstream "
				"up %s' on both hosts",
				st->name, st->device, st->name);
	case EACCES:
	case EPERM:
		return tbsi_err(
			err, -e,
			"could not open '%s': %s: add this user to group "
			"'tbstream' (adduser USER tbstream, then log in "
			"again), or run as root",
			st->device, strerror(e));
	case ENOMEM:
		return tbsi_err(
			err, -ENOMEM,
			"no free DMA ring to open '%s': close other streams "
			"('tbstream list' shows which are open) or IP over "
			"Thunderbolt",
			st->device);
	default:
		return tbsi_err(err, -e, "could not open '%s': %s", st->device,
				strerror(e));
	}
}

/* Opens without blocking, retrying while the node or the peer is missing. */
static int open_probe(const struct tbs_stream *st, int timeout_ms,
		      struct tbs_error *err)
{
	int64_t deadline = tbsi_now_ms() + timeout_ms;
	int fd, e;

	for (;;) {
		fd = open(st->device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		e = errno;
		if ((e != ENOENT && e != ENXIO) || tbsi_now_ms() >= deadline)
			return open_error(st, e, timeout_ms, err);
		tbsi_sleep_ms(POLL_MS);
	}
}

#define CLAIM_TRIES 10 /* times CLAIM_PAUSE_MS: a loser closes by then */
#define CLAIM_PAUSE_MS 20

static int busy(const struct tbs_stream *st, pid_t pid, struct tbs_error *err)
{
	char path[64], comm[32] = "?";

	if (pid <= 0)
		return tbsi_err(err, -EBUSY,
				"stream '%s' (%s) is locked by another process",
				st->name, st->device);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	tbsi_read_str(path, comm, sizeof(comm));
	return tbsi_err(err, -EBUSY,
			"stream '%s' (%s) is in use by process %d (%s): "
			"a second reader would steal its data",
			st->name, st->device, (int)pid, comm);
}

/*
 * Takes the lock and checks that nobody else has the device open:
 * -EWOULDBLOCK when another process holds the lock (the caller closes
 * the device at once, then says who has it).
 */
static int claim(const char *root, const struct tbs_stream *st, int fd,
		 struct tbs_error *err)
{
	pid_t pid = 0;
	int i;

	if (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno == EWOULDBLOCK)
			return -EWOULDBLOCK;
		return tbsi_err(err, -errno, "could not lock '%s': %s",
				st->device, strerror(errno));
	}
	/*
	 * The lock is ours.  Another tbstream that opened the device at the
	 * same moment fails to lock it and closes it at once: only a holder
	 * that stays is a reader that would steal data.
	 */
	for (i = 0; tbs_stream_holders(root, st, &pid, 1, getpid()) > 0; i++) {
		if (i == CLAIM_TRIES)
			return busy(st, pid, err);
		tbsi_sleep_ms(CLAIM_PAUSE_MS);
	}
	return 0;
}

static int set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int tbs_endpoint_open(const char *root, const struct tbs_stream *st,
		      int timeout_ms, int flags, struct tbs_endpoint *ep,
		      struct tbs_error *err)
{
	pid_t pid = 0;
	int ret;

	ep->rfd = ep->wfd = -1;
	snprintf(ep->path, sizeof(ep->path), "%s", st->device);
	if (!st->device[0])
		return tbsi_err(err, -ENODEV, "stream '%s' has no device",
				st->name);
	ep->rfd = open_probe(st, timeout_ms, err);
	if (ep->rfd < 0)
		return ep->rfd;
	ret = claim(root, st, ep->rfd, err);
	if (ret == -EWOULDBLOCK) {
		/* closed before the slow look for the holder: its claim waits */
		tbs_endpoint_close(ep);
		tbs_stream_holders(root, st, &pid, 1, getpid());
		return busy(st, pid, err);
	}
	if (ret)
		goto err_close;
	ep->wfd = open(st->device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ep->wfd < 0) {
		ret = open_error(st, errno, timeout_ms, err);
		goto err_close;
	}
	if (flags & TBS_EP_NONBLOCK)
		return 0;
	ret = set_blocking(ep->rfd);
	if (!ret)
		ret = set_blocking(ep->wfd);
	if (!ret)
		return 0;
	tbsi_err(err, ret, "could not make '%s' blocking: %s", st->device,
		 strerror(-ret));
err_close:
	tbs_endpoint_close(ep);
	return ret;
}

#define LINGER_MS 500 /* as the device's flush at the last close */

/*
 * A connection: the end of this side's data goes out after the data; what
 * the peer still sends is read and dropped until its own end, for at most
 * LINGER_MS, so that closing never resets data the peer has not read yet.
 */
static void sock_linger(int fd)
{
	int64_t until = tbsi_now_ms() + LINGER_MS;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	if (shutdown(fd, SHUT_WR))
		return;
	while (tbsi_now_ms() < until) {
		if (poll(&p, 1, (int)(until - tbsi_now_ms())) <= 0)
			return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

void tbs_endpoint_close(struct tbs_endpoint *ep)
{
	struct stat sb;

	if (ep->wfd >= 0 && !fstat(ep->wfd, &sb) && S_ISSOCK(sb.st_mode))
		sock_linger(ep->wfd);
	if (ep->wfd >= 0)
		close(ep->wfd);
	if (ep->rfd >= 0 && ep->rfd != ep->wfd)
		close(ep->rfd);
	ep->rfd = ep->wfd = -1;
}
