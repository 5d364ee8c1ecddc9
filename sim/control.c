// SPDX-License-Identifier: MIT
/*
 * tbsim: the control file, MOUNTPOINT/control.
 *
 * Writing takes one command per line; a write with any bad line fails
 * with EINVAL and changes nothing:
 *
 *	unplug [HOST HOST [N]]	pull the cable (the N-th between them, from 1)
 *	plug [HOST HOST [N]]	put it back
 *	corrupt HOST N		flip a bit in the next N data frames HOST gets
 *	drop HOST N		lose the next N data frames toward HOST
 *	stall HOST MS		hold every frame toward HOST for MS ms
 *	rate BYTES_PER_SECOND	link rate of every cable (0: unlimited)
 *	latency MICROSECONDS	one-way latency of every cable
 *	stop			unmount and exit
 *
 * Reading shows the fabric: one line per host, cable and stream, as
 * "key=value" fields that are only ever appended to.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"

#define MAX_WORDS 5

enum cmd_op {
	C_UNPLUG, C_PLUG, C_CORRUPT, C_DROP, C_STALL, C_RATE, C_LATENCY, C_STOP,
};

struct cmd {
	enum cmd_op op;
	struct cable *cable;
	struct host *host;
	uint64_t n;
};

static const struct {
	const char *word;
	enum cmd_op op;
	int min_args, max_args;
} commands[] = {
	{ "unplug", C_UNPLUG, 0, 3 }, { "plug", C_PLUG, 0, 3 },
	{ "corrupt", C_CORRUPT, 2, 2 }, { "drop", C_DROP, 2, 2 },
	{ "stall", C_STALL, 2, 2 },	{ "rate", C_RATE, 1, 1 },
	{ "latency", C_LATENCY, 1, 1 }, { "stop", C_STOP, 0, 0 },
};

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end || errno ? -EINVAL : 0;
}

/* The @nth (from 1) cable between hosts @a and @b. */
static struct cable *find_cable(struct fabric *fab, const char *a,
				const char *b, uint64_t nth)
{
	struct host *ha = fabric_host(fab, a), *hb = fabric_host(fab, b);

	for (unsigned int i = 0; ha && hb && i < fab->ncables; i++) {
		struct cable *c = &fab->cables[i];

		if (((c->end[0].host == ha && c->end[1].host == hb) ||
		     (c->end[0].host == hb && c->end[1].host == ha)) &&
		    --nth == 0)
			return c;
	}
	return NULL;
}

static int parse_cable(struct fabric *fab, char **w, int nargs,
		       struct cmd *c)
{
	uint64_t nth = 1;

	if (nargs == 0) {
		c->cable = fab->ncables == 1 ? &fab->cables[0] : NULL;
		return c->cable ? 0 : -EINVAL;
	}
	if (nargs == 1 || (nargs == 3 && (parse_u64(w[3], &nth) || !nth)))
		return -EINVAL;
	c->cable = find_cable(fab, w[1], w[2], nth);
	return c->cable ? 0 : -EINVAL;
}

static int parse_line(struct fabric *fab, char *line, struct cmd *c)
{
	char *w[MAX_WORDS + 1], *save = NULL;
	int nw = 0;
	size_t i;

	for (char *t = strtok_r(line, " \t\r", &save); t;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (nw == MAX_WORDS)
			return -EINVAL;
		w[nw++] = t;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(w[0], commands[i].word))
			break;
	if (i == sizeof(commands) / sizeof(commands[0]) ||
	    nw - 1 < commands[i].min_args || nw - 1 > commands[i].max_args)
		return -EINVAL;
	c->op = commands[i].op;
	switch (c->op) {
	case C_UNPLUG:
	case C_PLUG:
		return parse_cable(fab, w, nw - 1, c);
	case C_CORRUPT:
	case C_DROP:
	case C_STALL:
		c->host = fabric_host(fab, w[1]);
		return c->host ? parse_u64(w[2], &c->n) : -EINVAL;
	case C_RATE:
	case C_LATENCY:
		return parse_u64(w[1], &c->n);
	case C_STOP:
		return 0;
	}
	return -EINVAL;
}

static void kick(struct fabric *fab, struct stream *s, void *arg)
{
	pump(fab, s);
}

static void apply(struct fabric *fab, const struct cmd *c)
{
	switch (c->op) {
	case C_UNPLUG:
		cable_unplug(fab, c->cable);
		break;
	case C_PLUG:
		cable_plug(fab, c->cable);
		break;
	case C_CORRUPT:
		c->host->corrupt_pending += (unsigned int)c->n;
		break;
	case C_DROP:
		c->host->drop_pending += (unsigned int)c->n;
		break;
	case C_STALL:
		c->host->stall_until_ns = now_ns() + c->n * 1000000ULL;
		break;
	case C_RATE:
		fab->opt.rate = c->n;
		break;
	case C_LATENCY:
		fab->opt.latency_us = c->n;
		break;
	case C_STOP:
		if (fab->request_stop)
			fab->request_stop(fab);
		break;
	}
}

/**
 * control_write() - run the commands in @buf, all or none
 *
 * Return: 0, or -EINVAL when a line is not a valid command.
 */
int control_write(struct fabric *fab, const char *buf, size_t len)
{
	char *text = strndup(buf, len), *save = NULL;
	struct cmd *cmds;
	size_t n = 0;
	int err = 0;

	if (!text)
		return -ENOMEM;
	cmds = calloc(len / 2 + 1, sizeof(*cmds));
	if (!cmds) {
		free(text);
		return -ENOMEM;
	}
	for (char *l = strtok_r(text, "\n", &save); l && !err;
	     l = strtok_r(NULL, "\n", &save)) {
		l += strspn(l, " \t\r");
		if (*l && *l != '#')
			err = parse_line(fab, l, &cmds[n++]);
	}
	for (size_t i = 0; i < n && !err; i++)
		apply(fab, &cmds[i]);
	if (!err) /* what held frames may have changed */
		for_each_stream(fab, kick, NULL);
	free(cmds);
	free(text);
	return err;
}

static void status_stream(struct fabric *fab, struct stream *s, void *arg)
{
	FILE *f = arg;
	const struct counters *c = &s->cnt;

	fprintf(f,
		"stream host=%s service=%s name=%s index=%u in_hopid=%d "
		"out_hopid=%d ring_size=%d throttling=%d attached=%d open=%u "
		"tx_frames=%" PRIu64 " tx_bytes=%" PRIu64 " rx_frames=%" PRIu64
		" rx_bytes=%" PRIu64 " dropped=%" PRIu64 " corrupted=%" PRIu64
		" unopened=%" PRIu64 " tx_queued=%u rx_queued=%u peer_closed=%d"
		" eof=%d\n",
		s->svc->host->name, s->svc->name, s->name, s->index,
		s->in_hopid, s->out_hopid, s->ring_size, s->throttling,
		s->attached, s->nopen, c->tx_frames, c->tx_bytes, c->rx_frames,
		c->rx_bytes, c->dropped, c->corrupted, c->unopened,
		s->ep ? s->ep->tx.count : 0, s->ep ? s->ep->rx.count : 0,
		s->ep ? s->ep->peer_closed : 0, s->ep ? s->ep->eof : 0);
}

static void status_cable(FILE *f, struct cable *c)
{
	fprintf(f,
		"cable id=%u a=%s b=%s plugged=%d wedged=%d route_a=0-%" PRIx64
		" route_b=0-%" PRIx64 " a_to_b_frames=%" PRIu64
		" a_to_b_bytes=%" PRIu64 " b_to_a_frames=%" PRIu64
		" b_to_a_bytes=%" PRIu64 "\n",
		c->id, c->end[0].host->name, c->end[1].host->name, c->plugged,
		c->wedged, c->end[0].route, c->end[1].route, c->end[0].frames,
		c->end[0].bytes, c->end[1].frames, c->end[1].bytes);
}

/**
 * fabric_status() - the text a read of the control file returns
 *
 * Return: 0 with a malloc'ed @buf of @len bytes, or -ENOMEM.
 */
int fabric_status(struct fabric *fab, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	if (!f)
		return -ENOMEM;
	fprintf(f, "fabric hosts=%u cables=%u rate=%" PRIu64
		   " latency_us=%" PRIu64 " adv_delay_ms=%u node_delay_ms=%u"
		   " frames_cached=%u\n",
		fab->nhosts, fab->ncables, fab->opt.rate, fab->opt.latency_us,
		fab->opt.adv_delay_ms, fab->opt.node_delay_ms,
		fab->nfree_frames);
	for (unsigned int i = 0; i < fab->nhosts; i++) {
		struct host *h = &fab->hosts[i];

		fprintf(f,
			"host name=%s unique_id=%s rings_used=%u rings=%u "
			"corrupt_pending=%u drop_pending=%u\n",
			h->name, h->uuid, h->rings_used, fab->opt.rings,
			h->corrupt_pending, h->drop_pending);
	}
	for (unsigned int i = 0; i < fab->ncables; i++)
		status_cable(f, &fab->cables[i]);
	for_each_stream(fab, status_stream, f);
	return fclose(f) ? -ENOMEM : 0;
}
