// SPDX-License-Identifier: MIT
/*
 * tbsim: hosts, cables, sysfs topology and ConfigFS configuration.
 *
 * Per host:
 *
 *	sys/bus/thunderbolt/devices/domain0, 0-0        always
 *	sys/bus/thunderbolt/devices/0-R, 0-R.I          while the cable is in
 *	sys/bus/thunderbolt/devices/0-R.0/net/IF and    likewise, with --network:
 *	sys/class/net/IF -> that                        IP over Thunderbolt
 *	sys/kernel/config/thunderbolt/stream/SVC/NAME/  made by the user
 *	dev/tbstreamX                                   one per stream
 *
 * Plugging a cable makes each side's XDomain appear after the property
 * exchange delay (--adv-delay), with the streams the peer advertised at
 * that moment.  A change of a stream's HopIDs reaches the peer after the
 * same delay.  Only an attaching stream reads the advertisements.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fabric.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Every wait in tbsim is on CLOCK_MONOTONIC, immune to clock changes. */
void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

struct host *fabric_host(struct fabric *fab, const char *name)
{
	for (unsigned int i = 0; i < fab->nhosts; i++)
		if (!strcmp(fab->hosts[i].name, name))
			return &fab->hosts[i];
	return NULL;
}

/* The index of the stream service among the services an XDomain offers. */
static unsigned int stream_svc_index(const struct fabric *fab)
{
	return fab->opt.network ? 1 : 0;
}

/* Call @fn on every stream of every host (which must not remove it). */
void for_each_stream(struct fabric *fab,
		     void (*fn)(struct fabric *, struct stream *, void *),
		     void *arg)
{
	for (unsigned int i = 0; i < fab->nhosts; i++) {
		struct list_head *p, *q;

		list_for_each(p, &fab->hosts[i].services) {
			struct service *svc =
				list_entry(p, struct service, link);

			list_for_each(q, &svc->streams)
				fn(fab, list_entry(q, struct stream, link),
				   arg);
		}
	}
}

/* ---- events ---------------------------------------------------------- */

void schedule(struct fabric *fab, struct event *ev)
{
	struct list_head *p;

	list_for_each(p, &fab->events) {
		struct event *e = list_entry(p, struct event, link);

		if (e->when_ns > ev->when_ns)
			break;
	}
	/* insert before p */
	ev->link.next = p;
	ev->link.prev = p->prev;
	p->prev->next = &ev->link;
	p->prev = &ev->link;
	if (fab->events.next == &ev->link)
		pthread_cond_signal(&fab->timer_cond);
}

static struct event *event_new(enum event_kind kind, uint64_t delay_ms)
{
	struct event *ev = calloc(1, sizeof(*ev));

	if (ev) {
		ev->kind = kind;
		ev->when_ns = now_ns() + delay_ms * 1000000ULL;
	}
	return ev;
}

/* ---- advertisements and HopIDs --------------------------------------- */

static bool hopid_valid(const struct fabric *fab, long v)
{
	return v >= TB_HOPID_MIN && v <= fab->opt.max_hopid;
}

/* The service directory on @e's host that names @e's XDomain, if any. */
static struct service *end_service(struct fabric *fab, struct cable_end *e)
{
	struct list_head *p;

	list_for_each(p, &e->host->services) {
		struct service *svc = list_entry(p, struct service, link);

		if (svc->domain == 0 && svc->route == e->route &&
		    svc->index == stream_svc_index(fab))
			return svc;
	}
	return NULL;
}

/* The cable end of @h whose XDomain @svc names, present or not. */
static struct cable_end *service_end(struct fabric *fab, struct service *svc)
{
	for (unsigned int i = 0; i < fab->ncables; i++)
		for (int k = 0; k < 2; k++) {
			struct cable_end *e = &fab->cables[i].end[k];

			if (e->host == svc->host && svc->domain == 0 &&
			    svc->route == e->route &&
			    svc->index == stream_svc_index(fab))
				return e;
		}
	return NULL;
}

/* What @svc's host advertises toward its peer: streams with both HopIDs. */
static size_t advert_snapshot(struct service *svc, struct advert **out)
{
	struct list_head *p;
	size_t n = 0;

	*out = NULL;
	if (!svc)
		return 0;
	list_for_each(p, &svc->streams)
		n++;
	*out = calloc(n ? n : 1, sizeof(**out));
	if (!*out)
		return 0;
	n = 0;
	list_for_each(p, &svc->streams) {
		struct stream *s = list_entry(p, struct stream, link);

		if (!s->in_hopid || !s->out_hopid)
			continue;
		memcpy((*out)[n].name, s->name, sizeof(s->name));
		(*out)[n].in_hopid = s->in_hopid;
		(*out)[n].out_hopid = s->out_hopid;
		n++;
	}
	return n;
}

/* A change of @svc's streams reaches the peer after the exchange delay. */
static void advertise(struct fabric *fab, struct service *svc)
{
	struct cable_end *e = service_end(fab, svc);
	struct event *ev;

	if (!e || !e->cable->plugged)
		return;
	ev = event_new(EV_ADVERT, fab->opt.adv_delay_ms);
	if (!ev)
		return;
	ev->end = e->peer;
	ev->plug_gen = e->cable->plug_gen;
	ev->nadv = advert_snapshot(svc, &ev->adv);
	schedule(fab, ev);
}

static void set_advert(struct cable_end *e, struct advert *adv, size_t n)
{
	free(e->adv);
	e->adv = adv;
	e->nadv = n;
}

static int hopid_take(uint64_t *used, int v)
{
	if (*used & (1ULL << v))
		return -EBUSY;
	*used |= 1ULL << v;
	return 0;
}

static void hopid_put(uint64_t *used, int v)
{
	if (v)
		*used &= ~(1ULL << v);
}

static int hopid_alloc(const struct fabric *fab, uint64_t *used)
{
	for (int v = TB_HOPID_MIN; v <= fab->opt.max_hopid; v++)
		if (!hopid_take(used, v))
			return v;
	return -ENOSPC;
}

/* Attaching: a stream without HopIDs takes the peer's advertised ones. */
static void stream_attach(struct fabric *fab, struct stream *s)
{
	struct cable_end *e = s->svc->end;

	s->attached = true;
	if (s->in_hopid || s->out_hopid)
		goto out;
	for (size_t i = 0; i < e->nadv; i++) {
		struct advert *a = &e->adv[i];

		if (strcmp(a->name, s->name))
			continue;
		if (hopid_take(&s->svc->in_used, a->out_hopid))
			break;
		if (hopid_take(&s->svc->out_used, a->in_hopid)) {
			hopid_put(&s->svc->in_used, a->out_hopid);
			break;
		}
		s->in_hopid = a->out_hopid;
		s->out_hopid = a->in_hopid;
		advertise(fab, s->svc);
		break;
	}
out:
	stream_wake(fab, s);
}

static void service_attach(struct fabric *fab, struct service *svc,
			   struct cable_end *e)
{
	struct list_head *p;

	svc->end = e;
	list_for_each(p, &svc->streams)
		stream_attach(fab, list_entry(p, struct stream, link));
}

static void service_detach(struct fabric *fab, struct service *svc)
{
	struct list_head *p;

	svc->end = NULL;
	list_for_each(p, &svc->streams) {
		struct stream *s = list_entry(p, struct stream, link);

		s->attached = false;
		if (s->ep)
			endpoint_kill(fab, s->ep, EP_UNPLUGGED);
		stream_wake(fab, s);
	}
}

/* ---- sysfs topology --------------------------------------------------- */

/*
 * The network interface thunderbolt-net makes for the peer's network
 * service: as for every network device, a directory named after it under
 * its parent device (the service), with a "device" link back to it, and a
 * link in sys/class/net.  Named thunderboltN, the lowest N free on the
 * host, as the kernel names it.
 */
static void netif_add(struct fabric *fab, struct cable_end *e,
		      struct node *svc, const char *svc_name)
{
	struct node_table *t = &fab->nodes;
	struct host *h = e->host;
	char name[32], target[192];
	struct node *d;
	int i;

	for (i = 0; i < 64 && (h->netif_used & (1ULL << i)); i++)
		;
	if (i == 64 || !h->classnet)
		return;
	snprintf(name, sizeof(name), "thunderbolt%d", i);
	d = node_dir(t, node_dir(t, svc, "net"), name);
	if (!d)
		return;
	node_text(t, d, "operstate", "%s\n", h->netif_up ? "up" : "down");
	node_text(t, d, "address", "02:%02x:%02x:%02x:%02x:%02x\n",
		  (unsigned char)h->uuid[0], (unsigned char)h->uuid[1],
		  (unsigned char)h->uuid[2], (unsigned char)e->route,
		  (unsigned int)i);
	node_text(t, d, "mtu", "1500\n");
	node_text(t, d, "type", "1\n");
	snprintf(target, sizeof(target), "../../../%s", svc_name);
	node_link(t, d, "device", target);
	snprintf(target, sizeof(target),
		 "../../bus/thunderbolt/devices/%s/net/%s", svc_name, name);
	e->net_link = node_link(t, h->classnet, name, target);
	e->netif = i;
	h->netif_used |= 1ULL << i;
}

static void netif_remove(struct fabric *fab, struct cable_end *e)
{
	node_unlink(&fab->nodes, e->net_link);
	e->net_link = NULL;
	if (e->netif >= 0)
		e->host->netif_used &= ~(1ULL << e->netif);
	e->netif = -1;
}

static void xd_add_services(struct fabric *fab, struct cable_end *e)
{
	struct node_table *t = &fab->nodes;
	static const struct {
		const char *key;
		unsigned int revs;
	} svcs[] = { { "network", 1 }, { "stream", 0 } };
	unsigned int first = fab->opt.network ? 0 : 1;

	for (unsigned int k = first; k < 2; k++) {
		char name[64];
		struct node *d;

		/* The peer offers the service only with its driver loaded. */
		if (k == 1 && e->peer->host->driver != DRV_LOADED)
			continue;

		snprintf(name, sizeof(name), "0-%" PRIx64 ".%u", e->route,
			 k - first);
		d = node_dir(t, e->host->devices, name);
		e->svc_node[k] = d;
		if (!d)
			continue;
		node_text(t, d, "key", "%s\n", svcs[k].key);
		node_text(t, d, "prtcid", "0x1\n");
		node_text(t, d, "prtcvers", "0x1\n");
		node_text(t, d, "prtcrevs", "0x%x\n", svcs[k].revs);
		node_text(t, d, "prtcstns", "0x00000000\n");
		node_text(t, d, "modalias", "tbtsvc:k%sp%08xv%08xr%08x\n",
			  svcs[k].key, 1, 1, svcs[k].revs);
		if (k == 0)
			netif_add(fab, e, d, name);
	}
}

static void xd_appear(struct fabric *fab, struct cable_end *e)
{
	struct node_table *t = &fab->nodes;
	struct host *peer = e->peer->host;
	struct advert *adv;
	struct service *svc;
	char name[32];
	struct node *d;
	size_t n;

	snprintf(name, sizeof(name), "0-%" PRIx64, e->route);
	d = node_dir(t, e->host->devices, name);
	e->xd_node = d;
	if (d) {
		node_text(t, d, "unique_id", "%s\n", peer->uuid);
		node_text(t, d, "device_name", "%s\n", peer->name);
		node_text(t, d, "vendor_name", "Linux\n");
		node_text(t, d, "device", "0x1\n");
		node_text(t, d, "vendor", "0x1d6b\n");
		node_text(t, d, "rx_speed", "%s\n", fab->opt.link_speed);
		node_text(t, d, "tx_speed", "%s\n", fab->opt.link_speed);
		node_text(t, d, "rx_lanes", "2\n");
		node_text(t, d, "tx_lanes", "2\n");
	}
	xd_add_services(fab, e);
	e->present = true;
	e->credits = TB_CREDITS;
	n = advert_snapshot(end_service(fab, e->peer), &adv);
	set_advert(e, adv, n);
	svc = end_service(fab, e);
	if (svc)
		service_attach(fab, svc, e);
}

static void xd_disappear(struct fabric *fab, struct cable_end *e)
{
	struct service *svc = end_service(fab, e);

	if (svc && svc->end == e)
		service_detach(fab, svc);
	netif_remove(fab, e);
	node_unlink(&fab->nodes, e->svc_node[0]);
	node_unlink(&fab->nodes, e->svc_node[1]);
	node_unlink(&fab->nodes, e->xd_node);
	e->svc_node[0] = e->svc_node[1] = e->xd_node = NULL;
	e->present = false;
	set_advert(e, NULL, 0);
}

int cable_plug(struct fabric *fab, struct cable *c)
{
	if (c->plugged)
		return 0;
	c->plugged = true;
	c->plug_gen++;
	for (int k = 0; k < 2; k++) {
		struct event *ev = event_new(EV_XD_APPEAR, fab->opt.adv_delay_ms);

		if (!ev)
			return -ENOMEM;
		ev->end = &c->end[k];
		ev->plug_gen = c->plug_gen;
		schedule(fab, ev);
	}
	return 0;
}

int cable_unplug(struct fabric *fab, struct cable *c)
{
	if (!c->plugged)
		return 0;
	c->plugged = false;
	c->wedged = false;
	c->plug_gen++;
	for (int k = 0; k < 2; k++)
		xd_disappear(fab, &c->end[k]);
	return 0;
}

/* ---- ConfigFS --------------------------------------------------------- */

static int parse_service_name(const char *name, unsigned int *domain,
			      uint64_t *route, unsigned int *index)
{
	char *end;
	unsigned long long v;

	if (*name < '0' || *name > '9')
		return -EINVAL;
	v = strtoull(name, &end, 10);
	if (*end != '-' || v > 255)
		return -EINVAL;
	*domain = (unsigned int)v;
	name = end + 1;
	if (!((*name >= '0' && *name <= '9') || (*name >= 'a' && *name <= 'f')))
		return -EINVAL;
	*route = strtoull(name, &end, 16);
	if (*end != '.' || end - name > 16)
		return -EINVAL;
	name = end + 1;
	if (*name < '0' || *name > '9')
		return -EINVAL;
	v = strtoull(name, &end, 10);
	if (*end || v > 255)
		return -EINVAL;
	*index = (unsigned int)v;
	return 0;
}

int service_mkdir(struct fabric *fab, struct host *h, const char *name)
{
	struct service *svc;
	struct cable_end *e;

	if (node_child(h->streamdir, name))
		return -EEXIST;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	if (strlen(name) >= sizeof(svc->name) ||
	    parse_service_name(name, &svc->domain, &svc->route, &svc->index)) {
		free(svc);
		return -EINVAL;
	}
	snprintf(svc->name, sizeof(svc->name), "%s", name);
	svc->dir = node_dir(&fab->nodes, h->streamdir, name);
	if (!svc->dir) {
		free(svc);
		return -ENOMEM;
	}
	svc->dir->role = D_SERVICE;
	svc->dir->svc = svc;
	svc->host = h;
	if (h->netif_up) { /* thunderbolt-net took its HopID */
		svc->in_used |= 1ULL << TB_HOPID_MIN;
		svc->out_used |= 1ULL << TB_HOPID_MIN;
	}
	list_init(&svc->streams);
	list_add_tail(&svc->link, &h->services);
	e = service_end(fab, svc);
	if (e && e->present)
		service_attach(fab, svc, e);
	return 0;
}

int service_rmdir(struct fabric *fab, struct service *svc)
{
	if (!list_empty(&svc->streams))
		return -ENOTEMPTY;
	list_del(&svc->link);
	node_unlink(&fab->nodes, svc->dir);
	free(svc);
	return 0;
}

static const char *const stream_attrs[] = {
	"index", "in_hopid", "out_hopid", "ring_size", "throttling", "busy_poll",
};

static int dev_number(struct host *h)
{
	for (int i = 0; i < 64; i++)
		if (!(h->dev_used & (1ULL << i))) {
			h->dev_used |= 1ULL << i;
			return i;
		}
	return -ENOSPC;
}

static void stream_add_devnode(struct fabric *fab, struct stream *s)
{
	char name[32];

	if (s->removed || s->devnode)
		return;
	snprintf(name, sizeof(name), "tbstream%u", s->index);
	s->devnode = node_new(&fab->nodes, s->svc->host->devdir, name,
			      S_IFREG | 0600, N_DEV);
	if (s->devnode)
		s->devnode->stream = s;
}

static int stream_nodes(struct fabric *fab, struct stream *s)
{
	size_t nattr = fab->opt.new_kernel ? 6 : 5;

	s->dir = node_dir(&fab->nodes, s->svc->dir, s->name);
	if (!s->dir)
		return -ENOMEM;
	s->dir->role = D_STREAM;
	s->dir->stream = s;
	for (size_t i = 0; i < nattr; i++) {
		mode_t mode = S_IFREG | (i ? 0644 : 0444);
		struct node *a = node_new(&fab->nodes, s->dir, stream_attrs[i],
					  mode, N_ATTR);

		if (!a)
			return -ENOMEM;
		a->attr = stream_attrs[i];
		a->stream = s;
	}
	return 0;
}

static void schedule_devnode(struct fabric *fab, struct stream *s)
{
	struct event *ev;

	if (!fab->opt.node_delay_ms) {
		stream_add_devnode(fab, s);
		return;
	}
	ev = event_new(EV_NODE, fab->opt.node_delay_ms);
	if (!ev)
		return;
	ev->stream = s;
	s->refs++;
	schedule(fab, ev);
}

int stream_mkdir(struct fabric *fab, struct service *svc, const char *name)
{
	struct stream *s;
	int idx;

	if (strlen(name) > TB_NAME_MAX)
		return -ENAMETOOLONG;
	if (node_child(svc->dir, name))
		return -EEXIST;
	idx = dev_number(svc->host);
	if (idx < 0)
		return idx;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s->name, name, strlen(name));
	s->svc = svc;
	s->id = ++fab->next_stream_id;
	s->index = (unsigned int)idx;
	s->ring_size = TB_RING_DEFAULT;
	s->throttling = TB_THROTTLING_DEFAULT;
	s->refs = 1;
	cond_init(&s->open_cond);
	list_add_tail(&s->link, &svc->streams);
	if (stream_nodes(fab, s)) {
		stream_rmdir(fab, s);
		return -ENOMEM;
	}
	schedule_devnode(fab, s);
	if (svc->end)
		stream_attach(fab, s);
	return 0;
}

void stream_put(struct stream *s)
{
	if (--s->refs)
		return;
	pthread_cond_destroy(&s->open_cond);
	free(s->stale.slot);
	free(s);
}

int stream_rmdir(struct fabric *fab, struct stream *s)
{
	struct service *svc = s->svc;

	if (s->ep)
		endpoint_kill(fab, s->ep, EP_REMOVED);
	if (s->stale.slot)
		ring_drain(fab, &s->stale);
	hopid_put(&svc->in_used, s->in_hopid);
	hopid_put(&svc->out_used, s->out_hopid);
	s->in_hopid = s->out_hopid = 0;
	svc->host->dev_used &= ~(1ULL << s->index);
	node_unlink(&fab->nodes, s->dir);
	node_unlink(&fab->nodes, s->devnode);
	s->dir = s->devnode = NULL;
	list_del(&s->link);
	s->removed = true;
	s->attached = false;
	stream_wake(fab, s);
	advertise(fab, svc);
	stream_put(s);
	return 0;
}

/* Attribute values: one decimal integer, optionally followed by space. */
static int parse_long(const char *buf, size_t len, long *v)
{
	char tmp[32], *end;

	if (!len || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, buf, len);
	tmp[len] = 0;
	errno = 0;
	*v = strtol(tmp, &end, 0);
	if (end == tmp || errno)
		return -EINVAL;
	while (*end == '\n' || *end == ' ' || *end == '\t')
		end++;
	return *end ? -EINVAL : 0;
}

static int store_hopid(struct fabric *fab, struct stream *s, int *hopid,
		       uint64_t *used, long v)
{
	int got;

	if (v == -1) {
		if (*hopid)
			return 0;
		got = hopid_alloc(fab, used);
		if (got < 0)
			return got;
		*hopid = got;
	} else if (v == 0) {
		hopid_put(used, *hopid);
		*hopid = 0;
	} else if (hopid_valid(fab, v)) {
		if (v == *hopid)
			return 0;
		if (hopid_take(used, (int)v))
			return -EBUSY;
		hopid_put(used, *hopid);
		*hopid = (int)v;
	} else {
		return -EINVAL;
	}
	advertise(fab, s->svc);
	stream_wake(fab, s);
	return 0;
}

int stream_attr_store(struct fabric *fab, struct stream *s, const char *attr,
		      const char *buf, size_t len)
{
	long v;

	if (s->removed)
		return -ENODEV;
	if (!strcmp(attr, "index"))
		return -EACCES;
	if (parse_long(buf, len, &v))
		return -EINVAL;
	if (s->nopen || s->ep)
		return -EBUSY;
	if (!strcmp(attr, "in_hopid"))
		return store_hopid(fab, s, &s->in_hopid, &s->svc->in_used, v);
	if (!strcmp(attr, "out_hopid"))
		return store_hopid(fab, s, &s->out_hopid, &s->svc->out_used, v);
	if (!strcmp(attr, "ring_size")) {
		if (v < TB_RING_MIN || v > TB_RING_MAX)
			return -EINVAL;
		s->ring_size = (int)v;
	} else if (!strcmp(attr, "throttling")) {
		if (v < 0 || v > TB_THROTTLING_MAX)
			return -EINVAL;
		s->throttling = (int)v;
	} else if (!strcmp(attr, "busy_poll")) {
		if (v < 0 || v > 1)
			return -EINVAL;
		s->busy_poll = (int)v;
	} else {
		return -EINVAL;
	}
	return 0;
}

int stream_attr_show(struct stream *s, const char *attr, char *buf,
		     size_t size)
{
	long v;

	if (!strcmp(attr, "index"))
		v = s->index;
	else if (!strcmp(attr, "in_hopid"))
		v = s->in_hopid;
	else if (!strcmp(attr, "out_hopid"))
		v = s->out_hopid;
	else if (!strcmp(attr, "ring_size"))
		v = s->ring_size;
	else if (!strcmp(attr, "throttling"))
		v = s->throttling;
	else
		v = s->busy_poll;
	return snprintf(buf, size, "%ld\n", v);
}

/* ---- the timer --------------------------------------------------------- */

static void run_event(struct fabric *fab, struct event *ev)
{
	switch (ev->kind) {
	case EV_PUMP:
		ev->stream->pump_at = 0;
		if (!ev->stream->removed)
			pump(fab, ev->stream);
		stream_put(ev->stream);
		break;
	case EV_NODE:
		stream_add_devnode(fab, ev->stream);
		stream_put(ev->stream);
		break;
	case EV_XD_APPEAR:
		if (ev->end->cable->plug_gen == ev->plug_gen &&
		    !ev->end->present)
			xd_appear(fab, ev->end);
		break;
	case EV_ADVERT:
		if (ev->end->cable->plug_gen == ev->plug_gen &&
		    ev->end->present) {
			set_advert(ev->end, ev->adv, ev->nadv);
			ev->adv = NULL;
		}
		break;
	}
	free(ev->adv);
	free(ev);
}

static void *timer_main(void *arg)
{
	struct fabric *fab = arg;

	pthread_mutex_lock(&fab->lock);
	while (!fab->shutdown) {
		struct event *ev;
		uint64_t now = now_ns();

		if (list_empty(&fab->events)) {
			pthread_cond_wait(&fab->timer_cond, &fab->lock);
			continue;
		}
		ev = list_entry(fab->events.next, struct event, link);
		if (ev->when_ns > now) {
			struct timespec ts = {
				.tv_sec = (time_t)(ev->when_ns / 1000000000),
				.tv_nsec = (long)(ev->when_ns % 1000000000),
			};

			pthread_cond_timedwait(&fab->timer_cond, &fab->lock,
					       &ts);
			continue;
		}
		list_del(&ev->link);
		run_event(fab, ev);
	}
	pthread_mutex_unlock(&fab->lock);
	return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

static void make_uuid(const char *name, char *out, size_t size)
{
	uint64_t h = 1469598103934665603ULL, g;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	/* splitmix64 finish, so that host1 and host2 differ everywhere */
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= h >> 31;
	g = (h ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
	g ^= g >> 29;
	snprintf(out, size, "%08x-%04x-4%03x-8%03x-%012" PRIx64,
		 (unsigned int)(h >> 32), (unsigned int)(h >> 16) & 0xffff,
		 (unsigned int)h & 0xfff, (unsigned int)(g >> 52) & 0xfff,
		 (uint64_t)(g & 0xffffffffffffULL));
}

/* Whether @release is older than 7.2, which brought the stream driver. */
static bool before_driver(const char *release)
{
	unsigned int major = 0, minor = 0;

	return sscanf(release, "%u.%u", &major, &minor) == 2 &&
	       (major < 7 || (major == 7 && minor < 2));
}

/* Applies the --kernel, --driver, --configfs and --netif settings. */
static void host_settings(struct fabric *fab, struct host *h)
{
	const struct sim_options *o = &fab->opt;
	bool driver_set = false;

	snprintf(h->release, sizeof(h->release), "7.2.0-tbsim");
	for (unsigned int i = 0; i < o->nsettings; i++) {
		const struct host_setting *s = &o->settings[i];
		const char *v = s->value;

		if (s->host[0] && strcmp(s->host, h->name))
			continue;
		if (s->what == HS_KERNEL)
			snprintf(h->release, sizeof(h->release), "%s", v);
		else if (s->what == HS_DRIVER)
			h->driver = !strcmp(v, "unloaded") ? DRV_UNLOADED
				    : !strcmp(v, "absent") ? DRV_ABSENT
							   : DRV_LOADED;
		else if (s->what == HS_CONFIGFS)
			h->configfs = !strcmp(v, "unmounted") ? CFS_UNMOUNTED
				      : !strcmp(v, "no-usb4") ? CFS_NO_USB4
							      : CFS_MOUNTED;
		else if (s->what == HS_NETIF)
			h->netif_up = !strcmp(v, "up");
		driver_set |= s->what == HS_DRIVER;
	}
	if (!driver_set && before_driver(h->release))
		h->driver = DRV_ABSENT;
	h->netif_up &= o->network;
}

/*
 * What the kernel's ordinary interfaces say about it: proc (release,
 * mounts), lib/modules, sys/module, sys/class/net.
 */
static int host_kernel_files(struct fabric *fab, struct host *h,
			     struct node *sys)
{
	struct node_table *t = &fab->nodes;
	bool net = fab->opt.network;
	struct node *n, *mods;

	n = node_dir(t, node_dir(t, node_dir(t, h->root, "proc"), "sys"),
		     "kernel");
	node_text(t, n, "osrelease", "%s\n", h->release);
	node_text(t, node_child(h->root, "proc"), "mounts",
		  "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n%s",
		  h->configfs == CFS_UNMOUNTED
			  ? ""
			  : "configfs /sys/kernel/config configfs "
			    "rw,nosuid,nodev,noexec,relatime 0 0\n");
	n = node_dir(t, node_dir(t, node_dir(t, h->root, "lib"), "modules"),
		     h->release);
	node_text(t, n, "modules.dep", "%s%s%s",
		  "kernel/drivers/thunderbolt/thunderbolt.ko:\n",
		  h->driver == DRV_ABSENT
			  ? ""
			  : "kernel/drivers/thunderbolt/thunderbolt_stream.ko: "
			    "kernel/drivers/thunderbolt/thunderbolt.ko\n",
		  net ? "kernel/drivers/net/thunderbolt/thunderbolt_net.ko: "
			"kernel/drivers/thunderbolt/thunderbolt.ko\n"
		      : "");
	mods = node_dir(t, sys, "module");
	node_dir(t, mods, "thunderbolt");
	if (h->driver == DRV_LOADED)
		node_dir(t, mods, "thunderbolt_stream");
	if (!net)
		return mods ? 0 : -ENOMEM;
	node_dir(t, mods, "thunderbolt_net");
	h->classnet = node_dir(t, node_dir(t, sys, "class"), "net");
	return h->classnet ? 0 : -ENOMEM;
}

static int host_init(struct fabric *fab, struct host *h, unsigned int id)
{
	struct node_table *t = &fab->nodes;
	struct node *sys, *n, *own;

	h->id = id;
	snprintf(h->name, sizeof(h->name), "host%u", id + 1);
	make_uuid(h->name, h->uuid, sizeof(h->uuid));
	list_init(&h->services);
	host_settings(fab, h);
	h->root = node_dir(t, fab->root, h->name);
	sys = node_dir(t, h->root, "sys");
	n = node_dir(t, node_dir(t, sys, "bus"), "thunderbolt");
	h->devices = node_dir(t, n, "devices");
	n = node_dir(t, h->devices, "domain0");
	node_text(t, n, "security", "user\n");
	own = node_dir(t, h->devices, "0-0");
	node_text(t, own, "unique_id", "%s\n", h->uuid);
	node_text(t, own, "device_name", "%s\n", h->name);
	node_text(t, own, "vendor_name", "Linux\n");
	node_text(t, own, "device", "0x1\n");
	node_text(t, own, "vendor", "0x1d6b\n");
	n = node_dir(t, node_dir(t, sys, "kernel"), "config");
	h->devdir = node_dir(t, h->root, "dev");
	if (!n || !h->devdir || host_kernel_files(fab, h, sys))
		return -ENOMEM;
	if (h->configfs != CFS_MOUNTED || h->driver != DRV_LOADED)
		return 0; /* no sys/kernel/config/thunderbolt/stream */
	n = node_dir(t, n, "thunderbolt");
	h->streamdir = node_dir(t, n, "stream");
	if (!h->streamdir)
		return -ENOMEM;
	h->streamdir->role = D_STREAM_ROOT;
	h->streamdir->host = h;
	return 0;
}

/* The route at which @h sees the peer of its @k-th cable. */
static uint64_t route_for(const struct host *h, unsigned int k)
{
	if (h->id == 0 && k == 0)
		return 0x503; /* the kernel's own example */
	return 2 * k + 1;
}

static int cables_init(struct fabric *fab)
{
	const struct sim_options *o = &fab->opt;

	fab->ncables = o->ncable_spec;
	fab->cables = calloc(fab->ncables ? fab->ncables : 1,
			     sizeof(*fab->cables));
	if (!fab->cables)
		return -ENOMEM;
	for (unsigned int i = 0; i < fab->ncables; i++) {
		struct cable *c = &fab->cables[i];

		c->id = i;
		for (int k = 0; k < 2; k++) {
			struct host *h = fabric_host(fab, o->cable_spec[i][k]);

			if (!h)
				return -ENOENT;
			c->end[k].cable = c;
			c->end[k].host = h;
			c->end[k].peer = &c->end[!k];
			c->end[k].route = route_for(h, h->cable_count++);
			c->end[k].netif = -1;
		}
		if (c->end[0].host == c->end[1].host)
			return -EINVAL;
	}
	return 0;
}

int fabric_init(struct fabric *fab, const struct sim_options *opt)
{
	int err;

	memset(fab, 0, sizeof(*fab));
	fab->opt = *opt;
	pthread_mutex_init(&fab->lock, NULL);
	cond_init(&fab->timer_cond);
	list_init(&fab->events);
	err = nodes_init(&fab->nodes);
	if (err)
		return err;
	fab->root = node_dir(&fab->nodes, NULL, "");
	fab->control = node_new(&fab->nodes, fab->root, "control",
				S_IFREG | 0644, N_CONTROL);
	fab->nhosts = opt->hosts;
	fab->hosts = calloc(fab->nhosts, sizeof(*fab->hosts));
	if (!fab->root || !fab->control || !fab->hosts)
		return -ENOMEM;
	for (unsigned int i = 0; i < fab->nhosts; i++) {
		err = host_init(fab, &fab->hosts[i], i);
		if (err)
			return err;
	}
	err = cables_init(fab);
	if (err)
		return err;
	for (unsigned int i = 0; i < fab->ncables; i++) {
		/* plugged from the start: the XDomains are there at once */
		struct cable *c = &fab->cables[i];

		c->plugged = true;
		c->plug_gen = 1;
		xd_appear(fab, &c->end[0]);
		xd_appear(fab, &c->end[1]);
	}
	return 0;
}

int fabric_start(struct fabric *fab)
{
	return -pthread_create(&fab->timer, NULL, timer_main, fab);
}

void fabric_stop(struct fabric *fab)
{
	pthread_mutex_lock(&fab->lock);
	fab->shutdown = true;
	wake_all(fab);
	pthread_cond_broadcast(&fab->timer_cond);
	pthread_mutex_unlock(&fab->lock);
	pthread_join(fab->timer, NULL);
}

void fabric_fini(struct fabric *fab)
{
	for (unsigned int i = 0; i < fab->ncables; i++)
		for (int k = 0; k < 2; k++)
			free(fab->cables[i].end[k].adv);
	for (unsigned int i = 0; i < fab->nhosts; i++) {
		struct list_head *p, *n, *q, *m;

		list_for_each_safe(p, n, &fab->hosts[i].services) {
			struct service *svc =
				list_entry(p, struct service, link);

			list_for_each_safe(q, m, &svc->streams)
				stream_rmdir(fab, list_entry(q, struct stream,
							     link));
			service_rmdir(fab, svc);
		}
	}
	while (!list_empty(&fab->events)) {
		struct event *ev =
			list_entry(fab->events.next, struct event, link);

		list_del(&ev->link);
		if (ev->stream)
			stream_put(ev->stream);
		free(ev->adv);
		free(ev);
	}
	free(fab->cables);
	free(fab->hosts);
	frames_fini(fab);
	nodes_fini(&fab->nodes);
}
