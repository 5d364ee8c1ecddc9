// SPDX-License-Identifier: MIT
/*
 * The library's internal helpers: names of routers and services, stream
 * names, paths under the system root.  Built with lib/util.c.
 */
#include <errno.h>
#include <string.h>

#include "../../lib/internal.h"
#include "../tap.h"

static const struct {
	const char *s;
	bool service;
	int ret;
	unsigned int domain;
	unsigned long long route;
	unsigned int index;
} routers[] = {
	{ "0-1", false, 0, 0, 0x1, 0 },
	{ "0-503", false, 0, 0, 0x503, 0 },
	{ "1-3", false, 0, 1, 0x3, 0 },
	{ "0-0", false, 0, 0, 0, 0 },
	{ "0-1.0", false, -EINVAL, 0, 0, 0 },
	{ "0-1.0", true, 0, 0, 0x1, 0 },
	{ "0-503.1", true, 0, 0, 0x503, 1 },
	{ "2-a0b.12", true, 0, 2, 0xa0b, 12 },
	{ "0-1", true, -EINVAL, 0, 0, 0 },
	{ "0-1.", true, -EINVAL, 0, 0, 0 },
	{ "0-1.x", true, -EINVAL, 0, 0, 0 },
	{ "domain0", false, -EINVAL, 0, 0, 0 },
	{ "0-", false, -EINVAL, 0, 0, 0 },
	{ "-1", false, -EINVAL, 0, 0, 0 },
	{ "0-g", false, -EINVAL, 0, 0, 0 },
	{ "0-1.0.0", true, -EINVAL, 0, 0, 0 },
};

static void test_routers(void)
{
	unsigned int d, i;
	uint64_t r;
	size_t k;
	int ret;

	for (k = 0; k < sizeof(routers) / sizeof(routers[0]); k++) {
		d = i = 99;
		r = 99;
		ret = tbsi_parse_router(routers[k].s, &d, &r,
					routers[k].service ? &i : NULL);
		if (routers[k].ret) {
			is_int(ret, routers[k].ret, routers[k].s);
			continue;
		}
		ok(!ret && d == routers[k].domain && r == routers[k].route &&
			   (!routers[k].service || i == routers[k].index),
		   "%s as %s", routers[k].s,
		   routers[k].service ? "service" : "router");
	}
}

static const struct {
	const char *name;
	bool valid;
} names[] = {
	{ "pipe", true }, { "12345678", true }, { "123456789", false },
	{ "", false },	  { "a/b", false },	{ ".", false },
	{ "..", false },  { ".x", false },	{ "x.y", true },
};

static void test_names(void)
{
	size_t k;

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		is_int(tbsi_valid_name(names[k].name), names[k].valid,
		       names[k].name);
}

static const struct {
	const char *root, *rel, *want;
} paths[] = {
	{ "/", "sys/x", "/sys/x" },
	{ "", "sys/x", "/sys/x" },
	{ NULL, "sys/x", "/sys/x" },
	{ "/tmp/m/host1", "dev/tbstream0", "/tmp/m/host1/dev/tbstream0" },
	{ "/tmp/m/host1//", "dev/a", "/tmp/m/host1/dev/a" },
	{ "rel", "dev/a", "rel/dev/a" },
};

static void test_paths(void)
{
	char buf[64], tiny[8];
	size_t k;

	for (k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
		tbsi_path(buf, sizeof(buf), paths[k].root, "%s", paths[k].rel);
		ok(!strcmp(buf, paths[k].want), "path %s", paths[k].want);
	}
	is_int(tbsi_path(tiny, sizeof(tiny), "/", "sys/long/path"),
	       -ENAMETOOLONG, "a path too long for the buffer is refused");
}

int main(void)
{
	test_routers();
	test_names();
	test_paths();
	return tap_done();
}
