// SPDX-License-Identifier: MIT
/*
 * tbstream pipe --raw: plain bytes both ways at once, one thread per
 * direction.  Interoperates with dd or cat on the other host; no integrity
 * and no delivery confirmation beyond what the device gives.
 *
 * A thread can be cancelled only while it blocks in read() or write(), so
 * that the command can end while the other direction still waits (on
 * standard input, or on a peer that never closes).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pipe.h"

#define BUF_SIZE (1 << 20)

struct raw;

struct pump {
	int in, out;
	const char *in_name, *out_name;
	unsigned long long bytes;
	int err; /* errno of a failure, 0 */
	bool in_err; /* the failure was on @in */
	bool started, done;
	pthread_t thread;
	struct raw *raw;
};

struct raw {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pump rx, tx;
};

ssize_t pipe_cancellable_io(int fd, void *buf, size_t len, bool writing)
{
	ssize_t n;
	int old, e;

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	n = writing ? write(fd, buf, len) : read(fd, buf, len);
	e = errno;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	errno = e;
	return n;
}

static int write_all(int fd, char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = pipe_cancellable_io(fd, buf, len, true);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		buf += n;
		len -= n;
	}
	return 0;
}

static void pump_finish(struct pump *p, int err, bool in_err)
{
	pthread_mutex_lock(&p->raw->lock);
	p->err = err;
	p->in_err = in_err;
	p->done = true;
	pthread_cond_broadcast(&p->raw->cond);
	pthread_mutex_unlock(&p->raw->lock);
}

static void pump_loop(struct pump *p, char *buf)
{
	ssize_t n;
	int err;

	for (;;) {
		n = pipe_cancellable_io(p->in, buf, BUF_SIZE, false);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pump_finish(p, n < 0 ? errno : 0, true);
			return;
		}
		err = write_all(p->out, buf, n);
		if (err) {
			pump_finish(p, err, false);
			return;
		}
		p->bytes += n;
	}
}

static void buf_unmap(void *buf)
{
	munmap(buf, BUF_SIZE);
}

/*
 * The buffer is a page-aligned private mapping: direct I/O on the device
 * then moves whole pages.  (A heap buffer once showed a damaged byte near
 * the end of full 1 MiB reads from the simulator, a fault of the simulator
 * since fixed; a plain C reader showed it as well.)
 */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	char *buf;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		pump_finish(p, ENOMEM, false);
		return NULL;
	}
	pthread_cleanup_push(buf_unmap, buf);
	pump_loop(p, buf);
	pthread_cleanup_pop(1);
	return NULL;
}

static int pump_report(const struct pump *p)
{
	const char *where = p->in_err ? p->in_name : p->out_name;

	if (p->err == EPIPE && !p->in_err && p->out != 1)
		cli_msg("%s: the peer closed its end after %llu bytes", where,
			p->bytes);
	else if (p->err == ENXIO)
		cli_msg("%s: the cable was unplugged or the stream removed "
			"(%s) after %llu bytes",
			where, strerror(p->err), p->bytes);
	else
		cli_msg("%s: %s after %llu bytes", where, strerror(p->err),
			p->bytes);
	return EXIT_FAIL;
}

static void raw_wait(struct raw *r, bool send_only)
{
	pthread_mutex_lock(&r->lock);
	while (send_only ? !r->tx.done
			 : !r->rx.done && !(r->tx.done && r->tx.err))
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static int raw_result(struct raw *r, const struct pipe_args *a)
{
	if (r->tx.done && r->tx.err)
		return pump_report(&r->tx);
	if (!a->send_only && r->rx.err)
		return pump_report(&r->rx);
	if (!a->send_only && !a->recv_only && !r->tx.done) {
		cli_msg("the peer closed its end before all of standard input "
			"was sent (%llu bytes sent)",
			r->tx.bytes);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int pump_start(struct pump *p)
{
	p->started = !pthread_create(&p->thread, NULL, pump_run, p);
	return p->started ? 0 : -1;
}

/* Ends a thread that may still block in read() or write(). */
static void pump_stop(struct pump *p)
{
	if (!p->started)
		return;
	pthread_cancel(p->thread);
	pthread_join(p->thread, NULL);
}

int pipe_raw(const struct pipe_args *a, struct tbs_endpoint *ep)
{
	struct raw r = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
		.tx = { .in = 0,
			.out = ep->wfd,
			.in_name = "standard input",
			.out_name = ep->path },
		.rx = { .in = ep->rfd,
			.out = 1,
			.in_name = ep->path,
			.out_name = "standard output" },
	};
	int status = EXIT_FAIL;

	r.tx.raw = r.rx.raw = &r;
	if ((!a->recv_only && pump_start(&r.tx)) ||
	    (!a->send_only && pump_start(&r.rx))) {
		cli_msg("could not start a thread");
		goto out;
	}
	raw_wait(&r, a->send_only);
	pthread_mutex_lock(&r.lock);
	status = raw_result(&r, a);
	pthread_mutex_unlock(&r.lock);
out:
	pump_stop(&r.tx);
	pump_stop(&r.rx);
	return status;
}
