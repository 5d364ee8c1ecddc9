// SPDX-License-Identifier: MIT
/*
 * The library's internal helpers: names of routers and services, stream
 * names, paths under the system root, and the loading of option structs
 * by the convention of tbstream.h (also through public calls).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

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

/* An options struct as a program built against an older header has it. */
struct opts_v1 {
	size_t size;
	int a;
	int b;
};

/* ... and as this library has it, one member later. */
struct opts_v2 {
	size_t size;
	int a;
	int b;
	long c;
};

/* ... and as a newer program has it. */
struct opts_v3 {
	size_t size;
	int a;
	int b;
	long c;
	long d;
};

static int load(struct opts_v2 *o, const void *src)
{
	return TBSI_OPTS_LOAD(o, src, b, c);
}

static void test_opts(void)
{
	struct opts_v1 v1 = { .size = sizeof(v1), .a = 1, .b = 2 };
	struct opts_v3 v3 = { .size = sizeof(v3), .a = 1, .c = 3 };
	struct opts_v2 o;

	memset(&o, 0x5a, sizeof(o));
	ok(!load(&o, NULL) && o.size == sizeof(o) && !o.a && !o.c,
	   "no options: every member zero, the size set");
	ok(!load(&o, &v1) && o.a == 1 && o.b == 2 && !o.c,
	   "an older program's options: the newer member is zero");
	ok(!load(&o, &v3) && o.a == 1 && o.c == 3 && o.size == sizeof(o),
	   "a newer program's options with its new member zero are taken");
	v3.d = 7;
	is_int(load(&o, &v3), -E2BIG,
	       "a newer program asking for a member unknown here: -E2BIG");
	v1.size = 0;
	is_int(load(&o, &v1), -EINVAL, "a size of zero: -EINVAL");
	v1.size = sizeof(size_t) + sizeof(int);
	is_int(load(&o, &v1), -EINVAL,
	       "a size below the first layout: -EINVAL");
}

static void test_opts_public(void)
{
	struct tbs_session_opts so = { .role = TBS_ROLE_SENDER };
	struct tbs_up_opts uo = { .timeout_ms = 1 };
	struct tbs_error e = { 0 };
	struct tbs_session *s = NULL;
	struct tbs_stream st;
	int fd[2];

	if (pipe(fd)) {
		tap_skip("no pipe");
		return;
	}
	is_int(tbs_session_new(&s, fd[0], fd[1], &so), -EINVAL,
	       "tbs_session_new: options without their size are refused");
	so = TBS_OPTS_INIT(tbs_session_opts, .role = TBS_ROLE_SENDER);
	ok(!tbs_session_new(&s, fd[0], fd[1], &so),
	   "tbs_session_new: TBS_OPTS_INIT options are taken");
	tbs_session_free(s);
	close(fd[0]);
	close(fd[1]);
	is_int(tbs_stream_up("/nonexistent", NULL, "x", &uo, &st, &e), -EINVAL,
	       "tbs_stream_up: options without their size");
	ok(strstr(e.msg, "TBS_OPTS_INIT") != NULL,
	   "... and the message says how to fill them");
}

int main(void)
{
	test_routers();
	test_names();
	test_paths();
	test_opts();
	test_opts_public();
	return tap_done();
}
