// SPDX-License-Identifier: MIT
/*
 * msg-echo: request and reply messages over a tbstream session.
 *
 * The server runs an event loop: it polls the session's readiness
 * descriptor (it could be one source among many in poll, epoll or a GLib
 * main loop), takes whole messages without waiting and sends each back.
 * The client sends messages from 1 byte to 40 MiB (larger than the
 * session's window, as an uncompressed 4K video frame is) and checks every
 * reply, byte for byte.
 *
 *   msg-echo                 both ends in one run, over a socket pair
 *   msg-echo server DEVICE   the server on a stream device (/dev/tbstreamX)
 *   msg-echo client DEVICE   the client on the other host
 *
 * Build: cc msg-echo.c $(pkg-config --cflags --libs tbstream)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tbstream.h>

#define BIG (40u << 20)

static const size_t sizes[] = { 1, 64, 4096, 65536, 1u << 20, BIG };

static int fail(struct tbs_session *s, const char *what, long r)
{
	fprintf(stderr, "msg-echo: %s: %s\n", what,
		s && tbs_session_error(s)[0] ? tbs_session_error(s) :
					       strerror((int)-r));
	return 1;
}

/* Echoes every message until the client ends its stream. */
static int serve(struct tbs_session *s, uint8_t *buf)
{
	struct pollfd p = { .fd = tbs_session_fd(s), .events = POLLIN };
	uint16_t type;
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return fail(s, "poll", -errno);
		if (!(tbs_session_ready(s) & TBS_SESSION_RECV))
			continue;
		while ((n = tbs_session_recv_msg(s, &type, buf, BIG, 0)) > 0)
			if (tbs_session_send_msg(s, type, buf, (size_t)n, -1) < 0)
				return fail(s, "sending a reply", n);
		if (n == 0)
			return tbs_session_close(s) ? fail(s, "closing", 0) : 0;
		if (n != -EAGAIN)
			return fail(s, "receiving", n);
	}
}

static int ask(struct tbs_session *s, uint8_t *out, uint8_t *in, size_t len,
	       uint16_t type)
{
	uint16_t got_type = 0;
	ssize_t n;
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + len + type);
	n = tbs_session_send_msg(s, type, out, len, -1);
	if (n < 0)
		return fail(s, "sending", n);
	n = tbs_session_recv_msg(s, &got_type, in, BIG, -1);
	if (n < 0)
		return fail(s, "receiving the reply", n);
	if ((size_t)n != len || got_type != type || memcmp(in, out, len)) {
		fprintf(stderr, "msg-echo: the reply to %zu bytes differs\n",
			len);
		return 1;
	}
	printf("%zu bytes: echoed whole\n", len);
	return 0;
}

static int client(struct tbs_session *s, uint8_t *buf)
{
	uint8_t *in = malloc(BIG);
	size_t i;
	int r = 0;

	if (!in)
		return fail(NULL, "memory", -ENOMEM);
	for (i = 0; !r && i < sizeof(sizes) / sizeof(sizes[0]); i++)
		r = ask(s, buf, in, sizes[i], (uint16_t)(i + 1));
	free(in);
	if (!r && tbs_session_close(s))
		r = fail(s, "closing", 0);
	return r;
}

static int run(int rfd, int wfd, bool is_server)
{
	struct tbs_session *s;
	uint8_t *buf = malloc(BIG);
	int r;

	r = buf ? tbs_session_new(&s, rfd, wfd, NULL) : -ENOMEM;
	if (r)
		return fail(NULL, "creating the session", r);
	r = tbs_session_start(s);
	if (r)
		r = fail(s, "handshake", r);
	else
		r = is_server ? serve(s, buf) : client(s, buf);
	tbs_session_free(s);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	int sv[2], st, fd, wfd, r;
	pid_t pid;

	if (argc == 3) {
		/*
		 * Two descriptors of the device, as tbs_endpoint_open() gives
		 * them: the session's reader then waits in read(2) on one
		 * while writes go through the other.
		 */
		fd = open(argv[2], O_RDWR | O_CLOEXEC);
		wfd = open(argv[2], O_RDWR | O_CLOEXEC);
		if (fd < 0 || wfd < 0) {
			perror(argv[2]);
			return 1;
		}
		return run(fd, wfd, !strcmp(argv[1], "server"));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(run(sv[1], sv[1], true));
	}
	close(sv[1]);
	r = run(sv[0], sv[0], false);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		r = 1;
	return r;
}
