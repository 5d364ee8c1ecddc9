// SPDX-License-Identifier: MIT
/*
 * tbstream pipe (verified): the session protocol both ways at once.  A
 * thread sends standard input and then waits for the peer's confirmation;
 * the main thread writes what the peer sends and confirms it once it is
 * written.  Exits 0 only when both directions were confirmed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"
#include "progress.h"

#define CHUNK TBS_SESSION_MAX_RECORD
#define PROGRESS_MS 200

struct sender {
	struct tbs_session *s;
	struct pipe_stop stop; /* fired: stop waiting for standard input */
	struct pipe_stop done; /* fired by the sender when it returns */
	unsigned long long bytes;
	int err; /* negative errno, 0 */
	bool stdin_err;
};

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Takes what else standard input has at once, without waiting, after a
 * read that brought @n bytes: a pipe gives at most its buffer (64 KiB)
 * per read, and a larger record costs less per byte on both hosts.
 */
static size_t read_more(int fd, char *buf, size_t n, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t k;

	while (n < len && poll(&p, 1, 0) == 1 && p.revents & POLLIN) {
		k = read(fd, buf + n, len - n);
		if (k <= 0)
			break; /* the next read says it again */
		n += (size_t)k;
	}
	return n;
}

/*
 * Reads what standard input has, up to @len bytes, as soon as there is
 * something: no wait for more.  (While a record is being written, the
 * session joins small ones, so bulk data makes large records also from
 * small reads.)
 */
static ssize_t read_some(const struct pipe_stop *st, int fd, char *buf,
			 size_t len)
{
	ssize_t n;

	do
		n = pipe_io(st, fd, buf, len, false);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return (ssize_t)read_more(fd, buf, (size_t)n, len);
	return n < 0 ? -errno : n;
}

/* Tells the peer why this side gives up, so that it can say so too. */
static void abort_local(struct tbs_session *s, int err, const char *what,
			unsigned long long bytes)
{
	char msg[200];

	snprintf(msg, sizeof(msg),
		 "%s failed on the other host: %s after %llu bytes", what,
		 strerror(-err), bytes);
	tbs_session_abort(s, err, msg);
}

static void send_loop(struct sender *snd, char *buf)
{
	ssize_t n;

	while (!snd->err) {
		n = read_some(&snd->stop, 0, buf, CHUNK);
		if (n == -ECANCELED) {
			snd->err = -ECANCELED; /* the session failed */
			break;
		}
		if (n < 0) {
			snd->err = n;
			snd->stdin_err = true;
			abort_local(snd->s, n, "reading standard input", 0);
		} else if (n == 0) {
			snd->err = tbs_session_finish(snd->s);
			break;
		} else {
			n = tbs_session_send(snd->s, 0, buf, n, -1);
			if (n < 0)
				snd->err = n;
			else
				__atomic_add_fetch(&snd->bytes, n,
						   __ATOMIC_RELAXED);
		}
	}
}

/* Ends early when the stop pipe fires while it waits for input. */
static void *send_run(void *arg)
{
	struct sender *snd = arg;
	char *buf;

	buf = malloc(CHUNK);
	if (!buf)
		snd->err = -ENOMEM;
	else
		send_loop(snd, buf);
	free(buf);
	pipe_stop_fire(&snd->done);
	return NULL;
}

/*
 * Waits for the sender after our receiving direction ended well.  If the
 * session fails meanwhile (the peer killed, the cable pulled), the sender
 * may be waiting for standard input that never comes (a terminal, a FIFO,
 * tail -f): stop it.
 */
static void join_sender(struct sender *snd, pthread_t t)
{
	struct pollfd p[2] = {
		{ .fd = tbs_session_fd(snd->s), .events = POLLIN },
		{ .fd = snd->done.fds[0], .events = POLLIN },
	};

	while (p[0].fd >= 0 && !p[1].revents) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents &&
		    tbs_session_ready(snd->s) & TBS_SESSION_ERROR) {
			pipe_stop_fire(&snd->stop);
			break;
		}
	}
	pthread_join(t, NULL);
}

/* Writes the peer's data to standard output; 0 once confirmed. */
/* Both directions' bytes on the progress line (drawn only on a terminal). */
static void show(struct progress *pr, const struct sender *snd,
		 unsigned long long got)
{
	progress_update(
		pr, __atomic_load_n(&snd->bytes, __ATOMIC_RELAXED) + got, 0);
}

static int receive(struct tbs_session *s, const struct sender *snd,
		   struct progress *pr, unsigned long long *bytes,
		   bool *stdout_err)
{
	char *buf = malloc(CHUNK);
	ssize_t n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = tbs_session_recv(s, NULL, buf, CHUNK,
				     pr->enabled ? PROGRESS_MS : -1);
		show(pr, snd, *bytes);
		if (n == -EAGAIN && pr->enabled)
			continue;
		if (n <= 0)
			break;
		ret = write_all(1, buf, n);
		if (ret) {
			*stdout_err = true;
			break;
		}
		*bytes += n;
	}
	free(buf);
	if (ret)
		return ret;
	if (n < 0)
		return n;
	if (fsync(1) && errno != EINVAL && errno != EROFS) {
		*stdout_err = true;
		return -errno;
	}
	return tbs_session_confirm(s);
}

static int session_fail(struct tbs_session *s, const char *what, int err)
{
	const char *msg = tbs_session_error(s);

	cli_msg("%s: %s", what, msg && msg[0] ? msg : strerror(-err));
	/* The errno may be the peer's (its disk full): not ours to map. */
	return err == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL;
}

static int recv_fail(struct tbs_session *s, int err, bool out_err,
		     unsigned long long got)
{
	if (out_err)
		cli_msg("standard output: %s after %llu bytes", strerror(-err),
			got);
	else
		session_fail(s, "receiving", err);
	return err == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_FAIL;
}

static int send_result(struct tbs_session *s, const struct sender *snd)
{
	int ret;

	if (snd->err && snd->stdin_err) {
		cli_msg("standard input: %s", strerror(-snd->err));
		return EXIT_FAIL;
	}
	if (snd->err)
		return session_fail(s, "sending", snd->err);
	ret = tbs_session_close(s);
	if (ret)
		return session_fail(s, "closing", ret);
	return EXIT_OK;
}

/* Runs both directions: a thread sends while this one receives. */
static int run(struct tbs_session *s, bool quiet)
{
	struct sender snd = { .s = s };
	unsigned long long got = 0;
	struct progress pr;
	bool out_err = false;
	pthread_t t;
	int ret;

	ret = tbs_session_start(s);
	if (ret)
		return session_fail(s, "no session with the peer", ret);
	if (pipe_stop_init(&snd.stop) || pipe_stop_init(&snd.done) ||
	    pthread_create(&t, NULL, send_run, &snd)) {
		cli_msg("could not start a thread");
		return EXIT_FAIL;
	}
	progress_init(&pr, "pipe (sent + received)", quiet);
	ret = receive(s, &snd, &pr, &got, &out_err);
	if (ret) {
		progress_end(&pr);
		if (out_err)
			abort_local(s, ret, "writing standard output", got);
		/* The sender may wait for input that no longer matters. */
		pipe_stop_fire(&snd.stop);
		pthread_join(t, NULL);
		pipe_stop_fini(&snd.stop);
		pipe_stop_fini(&snd.done);
		if (snd.stdin_err)
			return send_result(s, &snd);
		return recv_fail(s, ret, out_err, got);
	}
	join_sender(&snd, t);
	pipe_stop_fini(&snd.stop);
	pipe_stop_fini(&snd.done);
	show(&pr, &snd, got);
	progress_end(&pr);
	return send_result(s, &snd);
}

static void print_stats(struct tbs_session *s)
{
	struct tbs_session_stats st;

	tbs_session_get_stats(s, &st);
	cli_msg("sent %llu bytes (%llu acknowledged) in %llu records, "
		"received %llu bytes; %llu retransmissions, %llu bad records, "
		"%llu bytes skipped",
		(unsigned long long)st.bytes_sent,
		(unsigned long long)st.bytes_acked,
		(unsigned long long)st.records_sent,
		(unsigned long long)st.bytes_received,
		(unsigned long long)st.retransmits,
		(unsigned long long)st.bad_records,
		(unsigned long long)st.garbage_bytes);
}

int pipe_session(const struct pipe_args *a, struct tbs_endpoint *ep)
{
	struct tbs_session_opts opts =
		TBS_OPTS_INIT(tbs_session_opts, .role = TBS_ROLE_DUPLEX);
	struct tbs_session *s;
	int ret;

	opts.handshake_ms = a->opts.timeout_ms;
	ret = tbs_session_new(&s, ep->rfd, ep->wfd, &opts);
	if (ret) {
		cli_msg("could not start a session: %s", strerror(-ret));
		return EXIT_FAIL;
	}
	ret = run(s, a->quiet);
	if (a->verbose)
		print_stats(s);
	tbs_session_free(s);
	return ret;
}
