// SPDX-License-Identifier: MIT
/*
 * tbstream pipe: on SIGINT, SIGTERM or SIGHUP, take down the stream this
 * command brought up before exiting, as a normal end would.  The signals
 * are blocked in every thread and taken by one thread with sigwait(), so
 * the clean-up runs in an ordinary thread, not in a signal handler.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pipe.h"

static void *guard_run(void *arg)
{
	struct pipe_guard *g = arg;
	int sig = SIGTERM;

	sigwait(&g->set, &sig);
	pthread_mutex_lock(&g->lock);
	if (g->armed)
		tbs_stream_down(g->root, &g->st, true, NULL);
	cli_msg("interrupted by %s%s", strsignal(sig),
		g->armed ? "; the stream this command set up is down again"
			 : "");
	_exit(128 + sig);
	return NULL;
}

int pipe_guard_start(struct pipe_guard *g, const char *root)
{
	pthread_t t;

	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	g->root = root;
	sigemptyset(&g->set);
	sigaddset(&g->set, SIGINT);
	sigaddset(&g->set, SIGTERM);
	sigaddset(&g->set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &g->set, NULL) ||
	    pthread_create(&t, NULL, guard_run, g))
		return -1;
	pthread_detach(t);
	return 0;
}

void pipe_guard_arm(struct pipe_guard *g, const struct tbs_stream *st)
{
	pthread_mutex_lock(&g->lock);
	g->st = *st;
	g->armed = true;
	pthread_mutex_unlock(&g->lock);
}

void pipe_guard_disarm(struct pipe_guard *g)
{
	pthread_mutex_lock(&g->lock);
	g->armed = false;
	pthread_mutex_unlock(&g->lock);
}
