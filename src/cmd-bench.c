// SPDX-License-Identifier: MIT
/*
 * tbstream bench: the user's own measurement of the cable, in the manner
 * of iperf3.  Run on both hosts, in either order; the raw device and the
 * session are measured in the same run and shown side by side (bench.h
 * draws the phases).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "bench.h"

#define DEF_ROUNDS 1000
#define DEF_BYTES (256ull << 20)
#define MIN_ROUNDS 20 /* round trips of the largest sizes */
#define BYTES_PER_SIZE 16384 /* a throughput run moves at most size x this */

static const uint32_t default_sizes[] = { 64, 4096, 65536, 1048576 };

struct bench_args {
	struct job job;
	struct bench b;
	uint32_t sizes[BENCH_MAX_SIZES];
	uint32_t nsizes;
	uint32_t rounds;
	uint64_t bytes;
	bool planned; /* --sizes, --rounds or --bytes was given */
	bool json;
};

static void bench_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream bench [NAME] [OPTIONS]\n"
		"\n"
		"Measures the cable: round trips (p50, p90, p99) and "
		"throughput one way\n"
		"and both ways, of the raw device and of a session, side by "
		"side, on\n"
		"stream NAME (default 'bench').  Run it on both hosts, in "
		"either order;\n"
		"the host whose unique id sorts lower leads and decides the "
		"plan, and\n"
		"both print the same figures.  MB/s are 10^6 bytes per "
		"second.\n"
		"\n"
		"  -S, --sizes LIST          message sizes (default "
		"64,4k,64k,1m; at most\n"
		"                            8, each up to 16m)\n"
		"  -n, --rounds N            round trips per size up to 4 KiB "
		"(default\n"
		"                            1000; fewer for larger sizes, at "
		"least 20)\n"
		"  -b, --bytes SIZE          bytes each way per throughput run "
		"(default\n"
		"                            256m; at most 16384 messages)\n"
		"  -p, --peer ID|NAME|ROUTE  the peer, when several are "
		"connected\n"
		"  -t, --timeout S           how long to wait for the peer "
		"(default 30)\n" JOB_UP_HELP JOB_TRANSPORT_HELP
		"  -k, --keep                leave the stream up afterwards\n"
		"  -j, --json                the figures for scripts\n"
		"  -h, --help                show this help\n");
}

/* A size with an optional k, m or g suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int sh = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end && strchr("kK", *end))
		sh = 10;
	else if (*end && strchr("mM", *end))
		sh = 20;
	else if (*end && strchr("gG", *end))
		sh = 30;
	if (sh)
		end++;
	if (errno || *end || !v || v > max >> sh)
		return -1;
	*out = (uint64_t)v << sh;
	return 0;
}

static int parse_sizes(struct bench_args *a, char *list)
{
	char *tok, *save = NULL;
	uint64_t v;

	a->nsizes = 0;
	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (a->nsizes == BENCH_MAX_SIZES ||
		    parse_size(tok, BENCH_MAX_SIZE, &v))
			return -1;
		a->sizes[a->nsizes++] = (uint32_t)v;
	}
	return a->nsizes ? 0 : -1;
}

static int bench_opt(struct bench_args *a, int c, char *arg)
{
	uint64_t v;

	switch (c) {
	case 'S':
		a->planned = true;
		return parse_sizes(a, arg) ? -1 : 1;
	case 'n':
		a->planned = true;
		if (parse_size(arg, BENCH_MAX_ROUNDS, &v))
			return -1;
		a->rounds = (uint32_t)v;
		return 1;
	case 'b':
		a->planned = true;
		if (parse_size(arg, BENCH_MAX_BYTES, &v))
			return -1;
		a->bytes = v;
		return 1;
	case 'j':
		a->json = true;
		return 1;
	default:
		return job_opt(&a->job, c, arg);
	}
}

static int bench_parse(int argc, char **argv, struct bench_args *a)
{
	static const struct option opts[] = {
		JOB_LONGOPTS,
		{ "sizes", required_argument, NULL, 'S' },
		{ "rounds", required_argument, NULL, 'n' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, JOB_SHORTOPTS "S:n:b:jh", opts,
				NULL)) != -1) {
		if (c == 'h') {
			bench_usage(stdout);
			return -1;
		}
		if (bench_opt(a, c, optarg) <= 0)
			return cli_bad_option("bench", c, argv);
	}
	if (optind + 1 < argc)
		return cli_usage_error("bench", "at most one stream NAME");
	if (optind < argc)
		a->job.name = argv[optind];
	return job_check_name(&a->job, "bench");
}

/* The plan of the options (the leader's is the one that applies). */
static int make_plan(struct bench_args *a, struct bench_plan *p)
{
	uint64_t cap, n;
	uint32_t i, s;

	p->nsizes = a->nsizes;
	for (i = 0; i < a->nsizes; i++) {
		s = p->size[i] = a->sizes[i];
		p->rounds[i] = a->rounds;
		/* fewer round trips of large sizes, but not below MIN_ROUNDS */
		if (s > 4096) {
			n = (uint64_t)a->rounds * 4096 / s;
			p->rounds[i] = n > MIN_ROUNDS ? (uint32_t)n :
				       a->rounds < MIN_ROUNDS ? a->rounds :
							        MIN_ROUNDS;
		}
		cap = (uint64_t)s * BYTES_PER_SIZE;
		p->bytes[i] = a->bytes < cap ? a->bytes : cap;
		if (p->bytes[i] < s)
			p->bytes[i] = s;
	}
	if (getrandom(p->token, BENCH_TOKEN, 0) != BENCH_TOKEN)
		return -errno;
	return 0;
}

/* The host whose unique id sorts lower leads. */
static int elect(struct bench_args *a)
{
	const struct tbs_stream *st = &a->job.st;
	char own[64];
	unsigned long dom = strtoul(st->service, NULL, 10);
	int r;

	r = tbs_host_uid(a->job.cli->root, (unsigned int)dom, own, sizeof(own),
			 &a->job.err);
	if (r) {
		snprintf(a->b.err, sizeof(a->b.err), "%s", a->job.err.msg);
		return r;
	}
	a->b.leader = strcasecmp(own, st->peer_uid) < 0;
	return make_plan(a, &a->b.plan);
}

/* The follower says so when the leader's plan is not the one it asked for. */
static void compare_plans(struct bench_args *a)
{
	struct bench_plan own;
	uint32_t n = a->b.plan.nsizes;

	if (a->b.leader || !a->planned || make_plan(a, &own))
		return;
	if (own.nsizes != n || memcmp(own.size, a->b.plan.size, n * 4) ||
	    memcmp(own.rounds, a->b.plan.rounds, n * 4) ||
	    memcmp(own.bytes, a->b.plan.bytes, n * 8))
		cli_msg("bench: the peer leads, and its --sizes, --rounds and --bytes apply");
}

int bench_buffers(struct bench *b)
{
	size_t len = 1u << 20;
	uint32_t i;
	int k;

	for (i = 0; i < b->plan.nsizes; i++)
		if (b->plan.size[i] > len)
			len = b->plan.size[i];
	b->buf_len = len;
	/* page-aligned: direct I/O on the device moves whole pages */
	b->buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b->rbuf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->buf == MAP_FAILED || b->rbuf == MAP_FAILED)
		return -ENOMEM;
	for (k = 0; b->leader && k < BENCH_KINDS; k++)
		for (i = 0; i < b->plan.nsizes; i++) {
			b->ns[k][i] = calloc(b->plan.rounds[i], sizeof(uint64_t));
			if (!b->ns[k][i])
				return -ENOMEM;
		}
	return 0;
}

static void buffers_free(struct bench *b)
{
	uint32_t i;
	int k;

	if (b->buf && b->buf != MAP_FAILED)
		munmap(b->buf, b->buf_len);
	if (b->rbuf && b->rbuf != MAP_FAILED)
		munmap(b->rbuf, b->buf_len);
	for (k = 0; k < BENCH_KINDS; k++)
		for (i = 0; i < BENCH_MAX_SIZES; i++)
			free(b->ns[k][i]);
}

/*
 * The phases (bench.h): blocks of session and raw round trips in turn,
 * then the results.
 */
static int bench_phases(struct bench_args *a)
{
	struct bench *b = &a->b;
	int r = 0;

	for (b->block = 0; !r && b->block < BENCH_BLOCKS; b->block++) {
		r = bench_session_phase(b, false);
		if (!r && !b->block)
			compare_plans(a);
		if (!r)
			r = bench_raw_phase(b);
	}
	if (r)
		return r;
	if (b->leader)
		bench_percentiles(b);
	return bench_session_phase(b, true);
}

static int bench_body(struct job *j, void *arg)
{
	struct bench_args *a = arg;
	struct bench *b = &a->b;
	int r;

	b->rfd = j->ep.rfd;
	b->wfd = j->ep.wfd;
	b->timeout_ms = job_timeout_ms(j);
	r = elect(a);
	if (!r)
		r = bench_phases(a);
	buffers_free(b);
	return r;
}

/* ---- output ---- */

static const char *size_name(uint32_t s, char *buf, size_t len)
{
	if (s >= 1u << 20 && !(s & ((1u << 20) - 1)))
		snprintf(buf, len, "%u MiB", s >> 20);
	else if (s >= 1024 && !(s & 1023))
		snprintf(buf, len, "%u KiB", s >> 10);
	else
		snprintf(buf, len, "%u B", s);
	return buf;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static double mbs(uint64_t bps)
{
	return (double)bps / 1e6;
}

static void print_table(const struct bench_args *a)
{
	bool net = a->job.used == TBS_TRANSPORT_NET;
	const struct bench *b = &a->b;
	const struct bench_res *r, *s;
	char n[32];
	uint32_t i;

	if (net)
		printf("stream '%s' over IP over Thunderbolt (%s); %s\n",
		       a->job.st.name, a->job.st.device,
		       b->leader ? "this host leads" : "the peer leads");
	else
		printf("stream '%s': ring %d entries, throttling %d ns; %s\n",
		       a->job.st.name, a->job.st.ring_size,
		       a->job.st.throttling,
		       b->leader ? "this host leads" : "the peer leads");
	printf("\n%-10s %29s   %29s   %9s\n", "round trip",
	       net ? "raw TCP (us)" : "raw device (us)", "session (us)",
	       "session/");
	printf("%-10s %9s %9s %9s   %9s %9s %9s   %9s\n", "", "p50", "p90",
	       "p99", "p50", "p90", "p99", "raw p50");
	for (i = 0; i < b->plan.nsizes; i++) {
		r = &b->res[BENCH_RAW][i];
		s = &b->res[BENCH_SESSION][i];
		printf("%10s %9.1f %9.1f %9.1f   %9.1f %9.1f %9.1f   %9.2f\n",
		       size_name(b->plan.size[i], n, sizeof(n)), us(r->p50_ns),
		       us(r->p90_ns), us(r->p99_ns), us(s->p50_ns),
		       us(s->p90_ns), us(s->p99_ns),
		       (double)s->ratio_ppm / 1e6);
	}
	printf("\n%-10s %19s   %19s\n", "MB/s", net ? "raw TCP" : "raw device",
	       "session");
	printf("%-10s %9s %9s   %9s %9s\n", "", "one way", "both", "one way",
	       "both");
	for (i = 0; i < b->plan.nsizes; i++) {
		r = &b->res[BENCH_RAW][i];
		s = &b->res[BENCH_SESSION][i];
		printf("%10s %9.1f %9.1f   %9.1f %9.1f\n",
		       size_name(b->plan.size[i], n, sizeof(n)),
		       mbs(r->one_bps), mbs(r->both_bps), mbs(s->one_bps),
		       mbs(s->both_bps));
	}
}

static void print_json(const struct bench_args *a)
{
	static const char *const kinds[] = { "raw", "session" };
	const struct bench *b = &a->b;
	const struct bench_res *r;
	uint32_t i;
	int k;

	printf("{\"stream\":");
	json_str(stdout, a->job.st.name);
	printf(",\"device\":");
	json_str(stdout, a->job.st.device);
	printf(",\"peer_unique_id\":");
	json_str(stdout, a->job.st.peer_uid);
	printf(",\"role\":\"%s\",\"ring_size\":%d,\"throttling\":%d,"
	       "\"transport\":\"%s\",\"results\":[",
	       b->leader ? "leader" : "follower", a->job.st.ring_size,
	       a->job.st.throttling,
	       a->job.used == TBS_TRANSPORT_NET ? "net" : "stream");
	for (i = 0; i < b->plan.nsizes; i++)
		for (k = 0; k < BENCH_KINDS; k++) {
			r = &b->res[k][i];
			printf("%s{\"size\":%u,\"kind\":\"%s\","
			       "\"round_trips\":%u,\"rtt_p50_us\":%.2f,"
			       "\"rtt_p90_us\":%.2f,\"rtt_p99_us\":%.2f,"
			       "\"bytes\":%llu,\"mb_per_s\":%.2f,"
			       "\"mb_per_s_both\":%.2f",
			       i || k ? "," : "", b->plan.size[i], kinds[k],
			       b->plan.rounds[i], us(r->p50_ns), us(r->p90_ns),
			       us(r->p99_ns),
			       (unsigned long long)b->plan.bytes[i],
			       mbs(r->one_bps), mbs(r->both_bps));
			if (k == BENCH_SESSION)
				printf(",\"rtt_p50_vs_raw\":%.3f",
				       (double)r->ratio_ppm / 1e6);
			printf("}");
		}
	printf("]}\n");
}

int cmd_bench(const struct cli *cli, int argc, char **argv)
{
	struct bench_args a = { .rounds = DEF_ROUNDS, .bytes = DEF_BYTES };
	int ret;

	job_init(&a.job, cli, "bench");
	memcpy(a.sizes, default_sizes, sizeof(default_sizes));
	a.nsizes = sizeof(default_sizes) / sizeof(default_sizes[0]);
	ret = bench_parse(argc, argv, &a);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	ret = job_run(&a.job, bench_body, &a);
	if (!a.job.ran)
		return cli_fail(&a.job.err);
	if (ret) {
		cli_msg("bench: %s",
			a.b.err[0] ? a.b.err : strerror(-ret));
		return cli_exit_status(ret);
	}
	if (a.json)
		print_json(&a);
	else
		print_table(&a);
	return EXIT_OK;
}
