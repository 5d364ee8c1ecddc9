// SPDX-License-Identifier: MIT
/*
 * The job skeleton shared by every command that uses a stream (job.h):
 * bring up, open, guard signals, run, take down.
 *
 * Signals.  SIGINT, SIGTERM and SIGHUP are blocked in every thread and
 * taken by one guard thread with sigwait(), so clean-up runs in an
 * ordinary thread, never in a signal handler.  What the guard does depends
 * on the phase of the job, which changes under its lock:
 *
 *	phase		on a signal
 *	IDLE, DONE	exit
 *	UP_WAIT		cancel tbs_stream_up() through its cancel_fd; the
 *			main thread, back from it, takes down what it may
 *			have brought up and exits
 *	RUNNING		take the stream down if this job brought it up
 *			(forced: the job's own descriptors are open), exit;
 *			a stoppable job: tell its body through the same
 *			pipe (its stop_fd) and let it end; exit on a
 *			second signal a second or more later (one signal
 *			can come twice at once: to a process and to its
 *			group, as timeout(1) sends it)
 *
 * Over the network transport the same phases hold: UP_WAIT covers the
 * choice of the transport and tbs_net_up(), RUNNING the meeting and the
 * body; taking down is tbs_net_down(), which leaves the interface as the
 * job found it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "job.h"

#define STOP_AGAIN_MS 1000 /* a second signal after this forces the exit */

enum phase { IDLE, UP_WAIT, RUNNING, DONE };

/* One per process: signals are a process's. */
static struct guard {
	pthread_mutex_t lock;
	sigset_t set;
	int cancel[2]; /* written on a signal during UP_WAIT, or to stop */
	enum phase phase;
	int sig; /* the signal taken during UP_WAIT or to stop, 0 if none */
	int64_t sig_ms; /* when it came */
	struct job *job;
	bool started;
} guard = { .lock = PTHREAD_MUTEX_INITIALIZER, .cancel = { -1, -1 } };

void job_init(struct job *j, const struct cli *cli, const char *name)
{
	memset(j, 0, sizeof(*j));
	j->cli = cli;
	j->name = name;
	j->up = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = CLI_TIMEOUT_MS);
	j->ep.rfd = j->ep.wfd = -1;
	j->stop_fd = -1;
}

int job_up_opt(struct tbs_up_opts *up, int c, const char *arg)
{
	long v;

	switch (c) {
	case 'P':
		return tbs_up_opts_profile(up, arg) ? -1 : 1;
	case JOB_OPT_RING_SIZE:
		v = cli_parse_num(arg);
		if (v <= 0 || v > 1 << 20)
			return -1;
		up->ring_size = (int)v;
		return 1;
	case JOB_OPT_THROTTLING:
		v = cli_parse_num(arg);
		if (v < 0 || v > 1 << 30)
			return -1;
		up->throttling = v ? (int)v : TBS_THROTTLING_OFF;
		return 1;
	default:
		return 0;
	}
}

int job_opt(struct job *j, int c, const char *arg)
{
	long t;

	switch (c) {
	case 's':
		j->name = arg;
		return 1;
	case 'p':
		j->peer = arg;
		return 1;
	case 't':
		t = cli_parse_num(arg);
		if (t <= 0 || t > 86400)
			return -1;
		j->up.timeout_ms = (int)t * 1000;
		return 1;
	case 'k':
		j->keep = true;
		return 1;
	case JOB_OPT_TRANSPORT:
		j->transport = job_parse_transport(arg);
		return j->transport < 0 ? -1 : 1;
	default:
		return job_up_opt(&j->up, c, arg);
	}
}

int job_parse_transport(const char *arg)
{
	if (!strcmp(arg, "auto"))
		return TBS_TRANSPORT_AUTO;
	if (!strcmp(arg, "stream"))
		return TBS_TRANSPORT_STREAM;
	if (!strcmp(arg, "net"))
		return TBS_TRANSPORT_NET;
	return -1;
}

int job_check_name(const struct job *j, const char *cmd)
{
	if (!j->name[0] || strlen(j->name) > TBS_NAME_MAX ||
	    strchr(j->name, '/'))
		return cli_usage_error(
			cmd, "a stream NAME has 1 to 8 bytes, no '/'");
	return 0;
}

int job_timeout_ms(const struct job *j)
{
	return j->up.timeout_ms > 0 ? j->up.timeout_ms : CLI_TIMEOUT_MS;
}

/* Whether the stream is this job's to take down. */
static bool owned(const struct job *j)
{
	return j && j->created && !j->keep;
}

static void take_down(struct job *j, bool force)
{
	struct tbs_error e = { 0 };

	if (j && j->net) {
		if (tbs_net_down(j->net, &e))
			cli_fail(&e);
		return;
	}
	if (!owned(j) || !tbs_stream_down(j->cli->root, &j->st, force, &e))
		return;
	if (e.code == -EBUSY) /* another process took it over */
		cli_msg("the stream '%s' this command set up stays up: "
			"another process has it open",
			j->st.name);
	else
		cli_fail(&e);
}

static void interrupted(int sig, const struct job *j)
{
	cli_msg("interrupted by %s%s", strsignal(sig),
		owned(j) && !j->net
			? "; the stream this command set up is down again"
			: "");
}

/* The same stop asked twice at once: not a second request. */
static bool repeated(void)
{
	return guard.sig && guard.phase == RUNNING && guard.job->stoppable &&
	       cli_now_ms() - guard.sig_ms < STOP_AGAIN_MS;
}

static void *guard_run(void *arg)
{
	int sig = SIGTERM;

	(void)arg;
	for (;;) {
		sigwait(&guard.set, &sig);
		pthread_mutex_lock(&guard.lock);
		if (repeated()) {
			pthread_mutex_unlock(&guard.lock);
			continue;
		}
		if (guard.sig || (guard.phase != UP_WAIT &&
				  !(guard.phase == RUNNING &&
				    guard.job->stoppable)))
			break;
		/*
		 * The main thread finishes the bring-up, then exits; or the
		 * stoppable body ends in order.
		 */
		guard.sig = sig;
		guard.sig_ms = cli_now_ms();
		if (write(guard.cancel[1], "x", 1) < 0)
			break;
		pthread_mutex_unlock(&guard.lock);
	}
	if (guard.phase == RUNNING)
		take_down(guard.job, true);
	interrupted(sig, guard.phase == RUNNING ? guard.job : NULL);
	_exit(128 + sig);
	return NULL;
}

/* A descriptor above 2, so that it can never be mistaken for "none" (0). */
static int high_fd(int fd)
{
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);

	close(fd);
	return h;
}

static int guard_start(void)
{
	pthread_t t;

	if (guard.started)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	if (pipe(guard.cancel))
		return -errno;
	guard.cancel[0] = high_fd(guard.cancel[0]);
	guard.cancel[1] = high_fd(guard.cancel[1]);
	if (guard.cancel[0] < 0 || guard.cancel[1] < 0)
		return -EMFILE;
	sigemptyset(&guard.set);
	sigaddset(&guard.set, SIGINT);
	sigaddset(&guard.set, SIGTERM);
	sigaddset(&guard.set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &guard.set, NULL) ||
	    pthread_create(&t, NULL, guard_run, NULL))
		return -EAGAIN;
	pthread_detach(t);
	guard.started = true;
	return 0;
}

static void set_phase(enum phase p, struct job *j)
{
	pthread_mutex_lock(&guard.lock);
	guard.phase = p;
	guard.job = j;
	pthread_mutex_unlock(&guard.lock);
}

/*
 * A stream alone (tbstream up) has no meaning over the network.  A body
 * that opens by itself (tbstream forward) gets the interface brought up
 * and meets its peer through it (j->used, j->peer, j->name).
 */
static int no_net(struct job *j)
{
	snprintf(j->err.msg, sizeof(j->err.msg),
		 "a stream by hand needs the stream driver; IP over "
		 "Thunderbolt needs no set-up");
	return j->err.code = -EINVAL;
}

/* Exits after a signal taken while the job was being brought up. */
static void up_done(struct job *j, int ret)
{
	int sig;

	pthread_mutex_lock(&guard.lock);
	j->created = ret > 0;
	guard.phase = ret < 0 ? DONE : RUNNING;
	guard.job = j;
	sig = guard.sig;
	if (sig) {
		take_down(j, false);
		interrupted(sig, ret < 0 ? NULL : j);
		exit(128 + sig);
	}
	pthread_mutex_unlock(&guard.lock);
}

/*
 * Brings the stream up, cancellable by a signal; after one, takes down
 * what the bring-up brought up and exits.
 */
static int job_up(struct job *j)
{
	int ret;

	set_phase(UP_WAIT, NULL);
	j->up.cancel_fd = guard.cancel[0];
	ret = tbs_stream_up(j->cli->root, j->peer, j->name, &j->up, &j->st,
			    &j->err);
	up_done(j, ret);
	return ret < 0 ? ret : 0;
}

int job_stop_signal(void)
{
	int sig;

	pthread_mutex_lock(&guard.lock);
	sig = guard.phase == RUNNING ? guard.sig : 0;
	pthread_mutex_unlock(&guard.lock);
	return sig;
}

/*
 * What a body reads of j->st, over the network: the name, the peer, its
 * network service, and the connection in place of the device.
 */
static void net_stream(struct job *j)
{
	struct tbs_stream *st = &j->st;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", j->name);
	snprintf(st->service, sizeof(st->service), "%s",
		 j->offer.net_service);
	snprintf(st->peer_uid, sizeof(st->peer_uid), "%s", j->offer.unique_id);
	snprintf(st->device, sizeof(st->device), "%s", j->ep.path);
	st->index = -1;
	st->connected = true;
	st->holders = -1;
}

static int job_open(struct job *j)
{
	int ret;

	if (!j->net)
		return tbs_endpoint_open(j->cli->root, &j->st,
					 job_timeout_ms(j), 0, &j->ep, &j->err);
	ret = tbs_net_open(j->net, j->name, &j->ep, &j->err);
	if (!ret)
		net_stream(j);
	return ret;
}

/* ---- the transport ---- */

#define HOST_POLL_MS 100 /* while no other host is connected */

/* A line about the transport, unless @quiet: to j->say or stderr. */
static void say(const struct job *j, const char *fmt, ...)
{
	char line[TBS_MSG_MAX];
	va_list ap;

	if (j->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (j->say)
		j->say(j->say_arg, line);
	else
		cli_msg("%s", line);
}

static void announce(const struct job *j)
{
	if (j->used == TBS_TRANSPORT_NET)
		say(j, "transport: IP over Thunderbolt on '%s' (%s)",
		    j->offer.ifname, j->offer.why);
	else
		say(j, "transport: USB4STREAM (%s)", j->offer.why);
}

/* Whether another host is connected at all (or no bus to wait for). */
static bool host_connected(const struct job *j)
{
	struct tbs_offer *o;
	int n = tbs_offers_list(j->cli->root, &o, NULL);

	tbs_offers_free(o);
	return n != 0;
}

/* Waits a little for a host to appear; false on a signal. */
static bool wait_host(void)
{
	struct pollfd p = { .fd = guard.cancel[0], .events = POLLIN };

	return poll(&p, 1, HOST_POLL_MS) == 0 || !(p.revents & POLLIN);
}

/*
 * The automatic choice: the one tbs_transport_choose() makes once a host
 * is connected.  When neither transport can work, the stream's bring-up
 * says what is missing, as without a network.
 */
static void job_choose(struct job *j, bool opens)
{
	int64_t deadline = cli_now_ms() + job_timeout_ms(j);
	int r;

	j->used = j->transport ? j->transport : TBS_TRANSPORT_STREAM;
	if (j->transport != TBS_TRANSPORT_AUTO || !opens)
		return;
	for (;;) {
		r = tbs_transport_choose(j->cli->root, j->peer,
					 TBS_TRANSPORT_AUTO, &j->offer, NULL);
		if (r > 0 || host_connected(j))
			break;
		if (cli_now_ms() >= deadline || !wait_host())
			return;
	}
	if (r > 0) {
		j->used = r;
		announce(j);
	}
}

/* The network transport's bring-up: the interface towards the peer. */
static int job_net_up(struct job *j)
{
	struct tbs_net_opts o = TBS_OPTS_INIT(
		tbs_net_opts, .timeout_ms = job_timeout_ms(j),
		.cancel_fd = guard.cancel[0], .flags = TBS_NET_IFUP);
	int ret;

	set_phase(UP_WAIT, NULL);
	if (!j->offer.unique_id[0])
		tbs_transport_choose(j->cli->root, j->peer, TBS_TRANSPORT_NET,
				     &j->offer, NULL);
	ret = tbs_net_up(j->cli->root, j->peer, &o, &j->net, &j->err);
	up_done(j, ret);
	if (ret > 0)
		say(j, "brought '%s' up for this command; it goes down again "
		       "at the end",
		    j->offer.ifname[0] ? j->offer.ifname : "the interface");
	return ret < 0 ? ret : 0;
}

/* Closes the device and takes the stream down, out of the guard's way. */
static void job_end(struct job *j)
{
	pthread_mutex_lock(&guard.lock);
	tbs_endpoint_close(&j->ep);
	take_down(j, false);
	guard.phase = DONE;
	guard.job = NULL;
	pthread_mutex_unlock(&guard.lock);
	tbs_net_free(j->net);
	j->net = NULL;
}

int job_run(struct job *j, job_body_fn body, void *arg)
{
	int ret;

	j->ran = false;
	ret = guard_start();
	if (ret) {
		snprintf(j->err.msg, sizeof(j->err.msg),
			 "could not set up signal handling: %s",
			 strerror(-ret));
		return j->err.code = ret;
	}
	set_phase(UP_WAIT, NULL);
	job_choose(j, !j->no_open || body);
	up_done(j, -1);
	if (j->used == TBS_TRANSPORT_NET && j->no_open && !body)
		ret = no_net(j);
	else if (j->used == TBS_TRANSPORT_NET)
		ret = job_net_up(j);
	else
		ret = job_up(j);
	if (ret) {
		tbs_net_free(j->net);
		j->net = NULL;
		return ret;
	}
	if (!j->no_open)
		ret = job_open(j);
	if (!ret && body) {
		j->ran = true;
		j->stop_fd = guard.cancel[0];
		ret = body(j, arg);
	}
	job_end(j);
	return ret;
}
