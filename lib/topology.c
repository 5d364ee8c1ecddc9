// SPDX-License-Identifier: MIT
/*
 * Topology: the peers this host sees in sysfs.  A peer is an XDomain
 * ("D-R", R != 0) with a service ("D-R.I") whose key is "stream"; the
 * service is found by its key, never assumed to be number 0.
 *
 * Also the walk over the bus that transport.c shares: tbsi_bus_scan()
 * collects one entry per XDomain with tbsi_xdomain_slot().
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

void tbsi_bus_attr(const char *root, const char *dev, const char *attr,
		   char *buf, size_t len)
{
	char path[PATH_MAX];

	buf[0] = '\0';
	if (tbsi_path(path, sizeof(path), root, TBSI_DEVICES "/%s/%s", dev,
		      attr) ||
	    tbsi_read_str(path, buf, len))
		buf[0] = '\0';
}

int tbs_host_uid(const char *root, unsigned int domain, char *buf, size_t len,
		 struct tbs_error *err)
{
	char path[PATH_MAX];
	int ret;

	ret = tbsi_path(path, sizeof(path), root,
			TBSI_DEVICES "/%u-0/unique_id", domain);
	if (!ret)
		ret = tbsi_read_str(path, buf, len);
	if (ret || !buf[0])
		return tbsi_err(
			err, -ENODEV,
			"could not read this host's unique id from '%s': %s",
			path, strerror(ret ? -ret : ENODATA));
	return 0;
}

void *tbsi_xdomain_slot(struct tbsi_xdomains *l, unsigned int domain,
			uint64_t route)
{
	char xd[32], *e;
	int i;

	snprintf(xd, sizeof(xd), "%u-%llx", domain, (unsigned long long)route);
	for (i = 0; i < l->n; i++) {
		e = (char *)l->arr + (size_t)i * l->size;
		if (!strcmp(e + l->off, xd))
			return e;
	}
	e = realloc(l->arr, (size_t)(l->n + 1) * l->size);
	if (!e)
		return NULL;
	l->arr = e;
	e += (size_t)l->n++ * l->size;
	memset(e, 0, l->size);
	snprintf(e + l->off, l->len, "%s", xd);
	return e;
}

int tbsi_bus_scan(const char *root, struct tbsi_xdomains *l,
		  int (*fn)(const char *root, const char *ent,
			    struct tbsi_xdomains *l),
		  struct tbs_error *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	int ret = 0;
	DIR *dir;

	tbsi_path(path, sizeof(path), root, TBSI_DEVICES);
	dir = opendir(path);
	if (!dir)
		return tbsi_no_bus(root, err);
	while (!ret && (de = readdir(dir)))
		ret = fn(root, de->d_name, l);
	closedir(dir);
	if (ret) {
		free(l->arr);
		l->arr = NULL;
		l->n = 0;
		return tbsi_err(err, ret, "out of memory");
	}
	return 0;
}

static void peer_fill(const char *root, struct tbs_peer *p)
{
	char buf[32];

	tbsi_bus_attr(root, p->xdomain, "unique_id", p->unique_id,
		      sizeof(p->unique_id));
	tbsi_bus_attr(root, p->xdomain, "device_name", p->device_name,
		      sizeof(p->device_name));
	tbsi_bus_attr(root, p->xdomain, "vendor_name", p->vendor_name,
		      sizeof(p->vendor_name));
	tbsi_bus_attr(root, p->xdomain, "rx_speed", p->rx_speed,
		      sizeof(p->rx_speed));
	tbsi_bus_attr(root, p->xdomain, "tx_speed", p->tx_speed,
		      sizeof(p->tx_speed));
	tbsi_bus_attr(root, p->xdomain, "rx_lanes", buf, sizeof(buf));
	p->rx_lanes = (int)strtol(buf, NULL, 10);
	tbsi_bus_attr(root, p->xdomain, "tx_lanes", buf, sizeof(buf));
	p->tx_lanes = (int)strtol(buf, NULL, 10);
}

/* Looks at one service entry "D-R.I" and records what it offers. */
static int scan_service(const char *root, const char *ent,
			struct tbsi_xdomains *l)
{
	unsigned int domain, index;
	struct tbs_peer *p;
	uint64_t route;
	char key[64];

	if (tbsi_parse_router(ent, &domain, &route, &index) || !route)
		return 0;
	tbsi_bus_attr(root, ent, "key", key, sizeof(key));
	if (strcmp(key, "stream") && strcmp(key, "network"))
		return 0;
	p = tbsi_xdomain_slot(l, domain, route);
	if (!p)
		return -ENOMEM;
	p->domain = domain;
	p->route = route;
	if (!strcmp(key, "network"))
		p->network = true;
	else if (!p->service[0])
		snprintf(p->service, sizeof(p->service), "%.39s", ent);
	return 0;
}

/* Drops entries that offer only "network"; fills in the others. */
static int peers_finish(const char *root, struct tbs_peer *arr, int n)
{
	int i, m = 0;

	for (i = 0; i < n; i++) {
		if (!arr[i].service[0])
			continue;
		arr[m] = arr[i];
		peer_fill(root, &arr[m]);
		m++;
	}
	return m;
}

static int peer_cmp(const void *a, const void *b)
{
	const struct tbs_peer *x = a, *y = b;

	if (x->domain != y->domain)
		return x->domain < y->domain ? -1 : 1;
	if (x->route != y->route)
		return x->route < y->route ? -1 : 1;
	return 0;
}

int tbs_peers_list(const char *root, struct tbs_peer **peers,
		   struct tbs_error *err)
{
	struct tbsi_xdomains l = TBSI_XDOMAINS_INIT(struct tbs_peer, xdomain);
	struct tbs_peer *arr;
	int n, ret;

	*peers = NULL;
	ret = tbsi_bus_scan(root, &l, scan_service, err);
	if (ret)
		return ret;
	arr = l.arr;
	n = peers_finish(root, arr, l.n);
	if (!n) {
		free(arr);
		return 0;
	}
	qsort(arr, n, sizeof(*arr), peer_cmp);
	*peers = arr;
	return n;
}

void tbs_peers_free(struct tbs_peer *peers)
{
	free(peers);
}

static bool peer_matches(const struct tbs_peer *p, const char *spec)
{
	char *end;
	unsigned long long r;

	if (!strcasecmp(p->unique_id, spec) || !strcmp(p->xdomain, spec) ||
	    !strcmp(p->service, spec) ||
	    (p->device_name[0] && !strcmp(p->device_name, spec)))
		return true;
	r = strtoull(spec, &end, 16);
	return end != spec && !*end && r == p->route;
}

/* Explains why there is no peer: bus, driver, or cable. */
static int no_peer(const char *root, const char *spec, struct tbs_error *err)
{
	char path[PATH_MAX];

	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS);
	if (!tbsi_is_dir(path))
		return tbsi_no_driver(root, err);
	if (spec)
		return tbsi_err(
			err, -ENODEV,
			"no connected peer matches '%s' (see 'tbstream list')",
			spec);
	return tbsi_no_peer(root, err);
}

int tbs_peer_find(const char *root, const char *spec, struct tbs_peer *peer,
		  struct tbs_error *err)
{
	struct tbs_peer *arr;
	int n, i, found = -1;

	n = tbs_peers_list(root, &arr, err);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (spec && !peer_matches(&arr[i], spec))
			continue;
		if (found >= 0) {
			tbs_peers_free(arr);
			return tbsi_err(
				err, -ENOTUNIQ,
				"several peers are connected%s%s%s: choose one "
				"with --peer (see 'tbstream list')",
				spec ? " matching '" : "", spec ? spec : "",
				spec ? "'" : "");
		}
		found = i;
	}
	if (found >= 0)
		*peer = arr[found];
	tbs_peers_free(arr);
	return found >= 0 ? 0 : no_peer(root, spec, err);
}
