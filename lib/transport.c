// SPDX-License-Identifier: MIT
/*
 * Transports: what each connected host offers, and the choice of a job.
 *
 * A connected host is an XDomain "D-R" (R != 0).  Its services say what it
 * offers: key "stream" when its stream driver is loaded, key "network"
 * when its thunderbolt_net is.  This host's network interface of a
 * "network" service is the directory the kernel gives every network
 * device under its parent device, sys/bus/thunderbolt/devices/D-R.I/net/
 * NAME: the interface is chosen because it hangs off the Thunderbolt bus,
 * never by its name, so no LAN interface can be taken for it.
 *
 * The automatic choice reads the same on both hosts: the stream when this
 * host has the stream driver and the peer offers the stream service (which
 * it does exactly when it has the driver), else IP over Thunderbolt.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

bool tbsi_valid_ifname(const char *name)
{
	size_t i, len = strlen(name);

	if (!len || len >= IFNAMSIZ || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == ':' ||
		    (unsigned char)name[i] <= ' ' ||
		    (unsigned char)name[i] >= 0x7f)
			return false;
	return true;
}

/* The first network interface under service @svc, "" when none. */
static void service_ifname(const char *root, const char *svc, char *buf,
			   size_t len)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;

	buf[0] = '\0';
	if (tbsi_path(path, sizeof(path), root, TBSI_DEVICES "/%s/net", svc))
		return;
	dir = opendir(path);
	if (!dir)
		return;
	while (!buf[0] && (de = readdir(dir)))
		if (de->d_name[0] != '.' && tbsi_valid_ifname(de->d_name) &&
		    strlen(de->d_name) < len)
			snprintf(buf, len, "%s", de->d_name);
	closedir(dir);
}

/* Records XDomain or service entry @ent of the bus. */
static int scan_entry(const char *root, const char *ent,
		      struct tbsi_xdomains *l)
{
	unsigned int domain, index;
	struct tbs_offer *o;
	uint64_t route;
	char key[64];
	bool svc;

	svc = !tbsi_parse_router(ent, &domain, &route, &index);
	if (!svc && tbsi_parse_router(ent, &domain, &route, NULL))
		return 0;
	if (!route)
		return 0;
	o = tbsi_xdomain_slot(l, domain, route);
	if (!o)
		return -ENOMEM;
	if (!svc)
		return 0;
	tbsi_bus_attr(root, ent, "key", key, sizeof(key));
	if (!strcmp(key, "stream") && !o->stream_service[0])
		snprintf(o->stream_service, sizeof(o->stream_service), "%.39s",
			 ent);
	if (!strcmp(key, "network") && !o->net_service[0]) {
		snprintf(o->net_service, sizeof(o->net_service), "%.39s", ent);
		service_ifname(root, ent, o->ifname, sizeof(o->ifname));
	}
	return 0;
}

static const char *host_name(const struct tbs_offer *o)
{
	return o->device_name[0] ? o->device_name : o->xdomain;
}

/* Why neither transport works towards @o. */
static void why_none(struct tbs_offer *o)
{
	const char *h = host_name(o);

	if (o->net_service[0] && !o->ifname[0])
		snprintf(o->why, sizeof(o->why),
			 "%s offers IP over Thunderbolt, but this host has no "
			 "interface for it: load thunderbolt_net here "
			 "('modprobe thunderbolt_net')%s",
			 h,
			 o->stream_here ? "" : " or the stream driver on both");
	else if (o->stream_service[0])
		snprintf(o->why, sizeof(o->why),
			 "this host has neither the stream driver nor IP over "
			 "Thunderbolt: load thunderbolt_stream (Linux 7.2+) or "
			 "thunderbolt_net here");
	else
		snprintf(o->why, sizeof(o->why),
			 "%s offers neither the stream service nor IP over "
			 "Thunderbolt: load thunderbolt_stream (Linux 7.2+) or "
			 "thunderbolt_net there%s",
			 h, o->stream_here ? "" : ", and on this host");
}

/* The automatic choice and its reason. */
static void offer_choose(struct tbs_offer *o)
{
	const char *h = host_name(o);

	if (o->stream_here && o->stream_service[0]) {
		o->transport = TBS_TRANSPORT_STREAM;
		snprintf(o->why, sizeof(o->why),
			 "both hosts have the stream driver");
	} else if (o->net_service[0] && o->ifname[0]) {
		o->transport = TBS_TRANSPORT_NET;
		if (o->stream_here)
			snprintf(o->why, sizeof(o->why),
				 "%s has no stream driver", h);
		else if (o->stream_service[0])
			snprintf(o->why, sizeof(o->why),
				 "this host has no stream driver");
		else
			snprintf(o->why, sizeof(o->why),
				 "neither this host nor %s has the stream "
				 "driver",
				 h);
	} else {
		o->transport = TBS_TRANSPORT_AUTO;
		why_none(o);
	}
}

static void offers_fill(const char *root, struct tbs_offer *arr, int n)
{
	char cfg[PATH_MAX];
	bool here;
	int i;

	tbsi_path(cfg, sizeof(cfg), root, TBSI_CONFIGFS);
	here = tbsi_is_dir(cfg);
	for (i = 0; i < n; i++) {
		tbsi_bus_attr(root, arr[i].xdomain, "unique_id",
			      arr[i].unique_id, sizeof(arr[i].unique_id));
		tbsi_bus_attr(root, arr[i].xdomain, "device_name",
			      arr[i].device_name, sizeof(arr[i].device_name));
		arr[i].stream_here = here;
		offer_choose(&arr[i]);
	}
}

static int offer_cmp(const void *a, const void *b)
{
	const struct tbs_offer *x = a, *y = b;
	unsigned int dx, dy;
	uint64_t rx, ry;

	tbsi_parse_router(x->xdomain, &dx, &rx, NULL);
	tbsi_parse_router(y->xdomain, &dy, &ry, NULL);
	if (dx != dy)
		return dx < dy ? -1 : 1;
	return rx < ry ? -1 : rx > ry;
}

int tbs_offers_list(const char *root, struct tbs_offer **offers,
		    struct tbs_error *err)
{
	struct tbsi_xdomains l = TBSI_XDOMAINS_INIT(struct tbs_offer, xdomain);
	int ret;

	*offers = NULL;
	ret = tbsi_bus_scan(root, &l, scan_entry, err);
	if (ret || !l.n)
		return ret;
	offers_fill(root, l.arr, l.n);
	qsort(l.arr, l.n, sizeof(struct tbs_offer), offer_cmp);
	*offers = l.arr;
	return l.n;
}

void tbs_offers_free(struct tbs_offer *offers)
{
	free(offers);
}

static bool offer_matches(const struct tbs_offer *o, const char *spec)
{
	unsigned long long r;
	unsigned int d;
	uint64_t route;
	char *end;

	if (!strcasecmp(o->unique_id, spec) || !strcmp(o->xdomain, spec) ||
	    !strcmp(o->stream_service, spec) || !strcmp(o->net_service, spec) ||
	    (o->device_name[0] && !strcmp(o->device_name, spec)))
		return true;
	r = strtoull(spec, &end, 16);
	return end != spec && !*end &&
	       !tbsi_parse_router(o->xdomain, &d, &route, NULL) && r == route;
}

/* The one connected host @spec means; -ENODEV or -ENOTUNIQ otherwise. */
static int offer_find(const char *root, const char *spec,
		      struct tbs_offer *offer, struct tbs_error *err)
{
	struct tbs_offer *arr;
	int n, i, found = -1;

	n = tbs_offers_list(root, &arr, err);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (spec && !offer_matches(&arr[i], spec))
			continue;
		if (found >= 0) {
			tbs_offers_free(arr);
			return tbsi_err(err, -ENOTUNIQ,
					"several hosts are connected: choose "
					"one with --peer (see 'tbstream list')");
		}
		found = i;
	}
	if (found >= 0)
		*offer = arr[found];
	tbs_offers_free(arr);
	if (found >= 0)
		return 0;
	if (spec)
		return tbsi_err(err, -ENODEV,
				"no connected host matches '%s' (see 'tbstream "
				"list')",
				spec);
	return tbsi_err(err, -ENODEV,
			"no other host is connected: check the cable (a USB4 "
			"or Thunderbolt 3+ cable, both hosts powered)");
}

static int want_stream(const char *root, struct tbs_offer *o,
		       struct tbs_error *err)
{
	if (!o->stream_here)
		return tbsi_no_driver(root, err);
	if (!o->stream_service[0])
		return tbsi_err(err, -ENODEV,
				"%s does not offer the stream service: load "
				"thunderbolt_stream there ('modprobe "
				"thunderbolt_stream'), or use --transport net",
				host_name(o));
	return TBS_TRANSPORT_STREAM;
}

static int want_net(struct tbs_offer *o, struct tbs_error *err)
{
	if (!o->net_service[0])
		return tbsi_err(err, -ENODEV,
				"%s does not offer IP over Thunderbolt: load "
				"thunderbolt_net there ('modprobe "
				"thunderbolt_net')",
				host_name(o));
	if (!o->ifname[0])
		return tbsi_err(err, -ENODEV,
				"this host has no network interface of IP over "
				"Thunderbolt towards %s: load thunderbolt_net "
				"here ('modprobe thunderbolt_net')",
				host_name(o));
	return TBS_TRANSPORT_NET;
}

int tbs_transport_choose(const char *root, const char *peer, int want,
			 struct tbs_offer *offer, struct tbs_error *err)
{
	int ret;

	ret = offer_find(root, peer, offer, err);
	if (ret)
		return ret;
	switch (want) {
	case TBS_TRANSPORT_STREAM:
		return want_stream(root, offer, err);
	case TBS_TRANSPORT_NET:
		return want_net(offer, err);
	case TBS_TRANSPORT_AUTO:
		if (offer->transport == TBS_TRANSPORT_AUTO)
			return tbsi_err(err, -ENODEV, "%s", offer->why);
		return offer->transport;
	default:
		return tbsi_err(err, -EINVAL, "unknown transport %d", want);
	}
}
