// SPDX-License-Identifier: MIT
/*
 * tbstream pipe --raw: plain bytes both ways at once, one thread per
 * direction.  Interoperates with dd or cat on the other host; no integrity
 * and no delivery confirmation beyond what the device gives.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"

#define BUF_SIZE (1 << 20)

struct pump {
	int in, out;
	const char *in_name, *out_name;
	unsigned long long bytes;
	int err; /* errno of a failure, 0 */
	bool in_err; /* the failure was on @in */
	bool done;
	struct raw *raw;
};

struct raw {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pump rx, tx;
};

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
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

static void *pump_run(void *arg)
{
	struct pump *p = arg;
	char *buf = malloc(BUF_SIZE);
	ssize_t n;
	int err;

	if (!buf) {
		pump_finish(p, ENOMEM, false);
		return NULL;
	}
	for (;;) {
		n = read(p->in, buf, BUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pump_finish(p, n < 0 ? errno : 0, true);
			break;
		}
		err = write_all(p->out, buf, n);
		if (err) {
			pump_finish(p, err, false);
			break;
		}
		p->bytes += n;
	}
	free(buf);
	return NULL;
}

static int pump_report(const struct pump *p)
{
	const char *where = p->in_err ? p->in_name : p->out_name;

	if (p->err == ENXIO)
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
	int status = EXIT_OK;

	pthread_mutex_lock(&r->lock);
	if (r->tx.done && r->tx.err)
		status = pump_report(&r->tx);
	else if (!a->send_only && r->rx.err)
		status = pump_report(&r->rx);
	else if (!a->send_only && !a->recv_only && !r->tx.done) {
		cli_msg("the peer closed its end before all of standard input "
			"was sent (%llu bytes sent)",
			r->tx.bytes);
		status = EXIT_FAIL;
	}
	pthread_mutex_unlock(&r->lock);
	return status;
}

static int start(pthread_t *t, struct pump *p)
{
	pthread_attr_t attr;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(t, &attr, pump_run, p);
	pthread_attr_destroy(&attr);
	return ret;
}

int pipe_raw(const struct pipe_args *a, struct tbs_endpoint *ep)
{
	struct raw *r = calloc(1, sizeof(*r));
	pthread_t t;

	if (!r)
		return EXIT_FAIL;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->tx = (struct pump){ .in = 0,
			       .out = ep->wfd,
			       .raw = r,
			       .in_name = "standard input",
			       .out_name = ep->path };
	r->rx = (struct pump){ .in = ep->rfd,
			       .out = 1,
			       .raw = r,
			       .in_name = ep->path,
			       .out_name = "standard output" };
	if ((!a->recv_only && start(&t, &r->tx)) ||
	    (!a->send_only && start(&t, &r->rx))) {
		cli_msg("could not start a thread");
		return EXIT_FAIL;
	}
	raw_wait(r, a->send_only);
	/* Threads may still block on stdin; the process exits soon. */
	return raw_result(r, a);
}
