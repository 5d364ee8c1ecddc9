// SPDX-License-Identifier: MIT
/*
 * Handshake tests against a scripted peer that writes records itself: the
 * limit on unanswered HELLOs (per session and per device), version
 * negotiation, a peer that speaks raw data, incompatible roles, record
 * types from later versions, records of an earlier session.
 */
#include <dirent.h>
#include <fcntl.h>

#include "../../lib/wire.h"
#include "session-pair.h"
#include "../tap.h"

struct one {
	struct tbs_session *s;
	int fd, peer; /* the session's socket, the scripted peer's */
	int r;
	pthread_t thread;
};

static void *one_start(void *arg)
{
	struct one *o = arg;

	o->r = tbs_session_start(o->s);
	return NULL;
}

static void one_init(struct one *o, int handshake_ms)
{
	struct tbs_session_opts opts =
		TBS_OPTS_INIT(tbs_session_opts, .handshake_ms = handshake_ms,
			      .idle_ms = 3000, .rto_ms = 200);
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	o->fd = sv[0];
	o->peer = sv[1];
	if (tbs_session_new(&o->s, o->fd, o->fd, &opts))
		abort();
	pthread_create(&o->thread, NULL, one_start, o);
}

static void one_done(struct one *o)
{
	tbs_session_free(o->s);
	close(o->fd);
	close(o->peer);
}

/* Reads records from the scripted peer's socket for up to ms. */
static int read_records(int fd, int ms, struct tbs_wire_hdr *hdrs, int max,
			struct tbs_wire_hello *hello, size_t *biggest)
{
	static uint8_t buf[1 << 16];
	size_t len = 0;
	int n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct tbs_wire_scan sc;
	ssize_t k;

	while (n < max && poll(&p, 1, ms) == 1) {
		k = read(fd, buf + len, sizeof(buf) - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		while (tbs_wire_scan(buf, len, TBS_WIRE_MAX_PAYLOAD, 0, &sc) ==
		       TBS_WIRE_RECORD) {
			if (sc.hdr.type == TBS_REC_HELLO && hello)
				tbs_wire_hello_decode(sc.payload, sc.hdr.len,
						      hello);
			if (biggest && sc.used > *biggest)
				*biggest = sc.used;
			if (n < max)
				hdrs[n++] = sc.hdr;
			memmove(buf, buf + sc.used, len - sc.used);
			len -= sc.used;
		}
	}
	return n;
}

#define PEER_NONCE 0x5eedull

/* The key of the scripted peer's session with the session under test. */
static uint64_t key_with(uint64_t nonce)
{
	return tbs_wire_key(nonce, PEER_NONCE);
}

static void send_keyed(int fd, uint8_t type, uint8_t flags, const void *p,
		       uint32_t len, uint64_t key)
{
	static uint8_t buf[TBS_WIRE_HDR_LEN + 4096];
	struct tbs_wire_hdr h = { .type = type, .flags = flags, .len = len };
	size_t n = tbs_wire_encode(buf, sizeof(buf), &h, p, key);

	if (write(fd, buf, n) != (ssize_t)n)
		abort();
}

static void send_hello_from(int fd, uint16_t major, uint16_t minor,
			    uint64_t nonce, uint64_t peer_nonce, size_t extra)
{
	struct tbs_wire_hello h = {
		.major = major, .minor = minor, .nonce = nonce,
		.peer_nonce = peer_nonce, .rx_window = 1 << 20,
		.max_payload = TBS_WIRE_MAX_PAYLOAD,
		.hflags = TBS_HF_ESTABLISHED,
	};
	uint8_t p[256];
	size_t n = tbs_wire_hello_encode(p, sizeof(p), &h);

	memset(p + n, 0x77, extra);
	send_keyed(fd, TBS_REC_HELLO, 0, p, (uint32_t)(n + extra), 0);
}

static void send_hello(int fd, uint16_t major, uint16_t minor,
		       uint64_t peer_nonce, size_t extra)
{
	send_hello_from(fd, major, minor, PEER_NONCE, peer_nonce, extra);
}

static void test_hello_limit(void)
{
	struct one o;
	struct tbs_wire_hdr h[32];
	size_t biggest = 0;
	int n, i, hellos = 0;

	one_init(&o, 9000);
	n = read_records(o.peer, 10000, h, 32, NULL, &biggest);
	pthread_join(o.thread, NULL);
	for (i = 0; i < n; i++)
		hellos += h[i].type == TBS_REC_HELLO;
	printf("# %d records, %d HELLOs, largest %zu bytes: %s\n", n, hellos,
	       biggest, tbs_session_error(o.s));
	is_int(o.r, -ETIMEDOUT, "a peer that never answers: -ETIMEDOUT");
	ok(hellos >= 1 && hellos <= 6 && n == hellos,
	   "at most 6 HELLOs, nothing else, go towards a silent peer");
	ok(biggest < 512, "each of them is small");
	ok(strstr(tbs_session_error(o.s), "no answer from the peer") != NULL,
	   "the message says the peer never answered");
	one_done(&o);
}

/* A peer of protocol 1.x (or a later major) is refused, with a clear word. */
static void test_major(uint16_t major)
{
	struct one o;
	struct tbs_wire_hdr h[16];
	struct tbs_wire_hello mine = { 0 };
	char want[32];
	int n, i, hellos = 0, others = 0;

	one_init(&o, 5000);
	read_records(o.peer, 2000, h, 1, &mine, NULL);
	send_hello(o.peer, major, 0, 0, 0);
	pthread_join(o.thread, NULL);
	ok(o.r == -EPROTONOSUPPORT, "major version %u: -EPROTONOSUPPORT",
	   major);
	printf("# %s\n", tbs_session_error(o.s));
	snprintf(want, sizeof(want), "protocol %u.0", major);
	ok(strstr(tbs_session_error(o.s), want) != NULL &&
	   strstr(tbs_session_error(o.s), "update the older side") != NULL,
	   "the message names the peer's version and what to do");
	n = read_records(o.peer, 300, h, 16, &mine, NULL);
	for (i = 0; i < n; i++) {
		hellos += h[i].type == TBS_REC_HELLO;
		others += h[i].type != TBS_REC_HELLO;
	}
	ok(hellos >= 1 && mine.major == TBS_PROTO_MAJOR && !others,
	   "the peer gets a HELLO of %u.x to refuse in turn, nothing else",
	   TBS_PROTO_MAJOR);
	one_done(&o);
}

static void test_raw_peer(void)
{
	struct one o;
	char text[4096];
	int i;

	memset(text, 'x', sizeof(text));
	one_init(&o, 5000);
	for (i = 0; i < 8; i++)
		if (write(o.peer, text, sizeof(text)) != sizeof(text))
			break;
	pthread_join(o.thread, NULL);
	is_int(o.r, -EPROTO, "a peer sending raw data: -EPROTO");
	printf("# %s\n", tbs_session_error(o.s));
	ok(strstr(tbs_session_error(o.s), "not speaking") != NULL,
	   "the message says the peer speaks something else");
	one_done(&o);
}

static void test_closed_early(void)
{
	struct one o;

	one_init(&o, 5000);
	shutdown(o.peer, SHUT_WR);
	pthread_join(o.thread, NULL);
	is_int(o.r, -ECONNRESET, "peer closing before the handshake");
	ok(strstr(tbs_session_error(o.s), "before the handshake") != NULL,
	   "the message says so");
	one_done(&o);
}

/* A later minor version, then record types this version does not know. */
static void test_later_minor(void)
{
	struct one o;
	struct tbs_wire_hello mine = { 0 };
	struct tbs_wire_hdr h[8];
	uint8_t buf[16];
	ssize_t r;

	one_init(&o, 5000);
	read_records(o.peer, 2000, h, 1, &mine, NULL);
	send_hello(o.peer, 2, 9, mine.nonce, 24);
	pthread_join(o.thread, NULL);
	is_int(o.r, 0, "a peer of version 2.9 with a longer HELLO is accepted");
	send_keyed(o.peer, 0x40, TBS_WF_OPTIONAL, "new", 3,
		   key_with(mine.nonce));
	send_keyed(o.peer, 0x41, 0, "new", 3, key_with(mine.nonce));
	r = tbs_session_recv(o.s, NULL, buf, sizeof(buf), 5000);
	is_int(r, -EPROTO, "an unknown record type fails the session");
	printf("# %s\n", tbs_session_error(o.s));
	ok(strstr(tbs_session_error(o.s), "type 65") != NULL,
	   "only the one without the optional flag, and it is named");
	one_done(&o);
}

static void *hostile_sender(void *arg)
{
	struct one *o = arg;
	static uint8_t buf[100000];
	int i;

	for (i = 0; i < 20; i++)
		if (tbs_session_send(o->s, 1, buf, sizeof(buf), 2000) < 0)
			break;
	tbs_session_finish(o->s);
	return NULL;
}

static uint64_t hostile_offset(uint64_t *st)
{
	static const uint64_t some[] = { 0, 1, 4096, 100000, 1 << 20,
					 UINT64_MAX, UINT64_MAX - 7 };

	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	if (*st >> 63)
		return some[(*st >> 40) % 7];
	return (*st >> 20) % 2000000;
}

/*
 * A peer that completes the handshake and then sends well-formed records
 * with arbitrary types, offsets, epochs and lengths while data flows the
 * other way.  The session may fail, but must neither crash nor hang.
 */
static void test_hostile_peer(void)
{
	static const uint8_t types[] = { 2, 2, 2, 3, 3, 4, 4, 6, 7, 0x40 };
	static uint8_t drain[1 << 16];
	struct tbs_wire_hello mine = { 0 };
	struct tbs_wire_hdr h[1];
	struct one o;
	pthread_t tx;
	uint64_t st = 99;
	uint8_t p[64];
	int i, fl, failed = 0;
	uint8_t type;

	one_init(&o, 5000);
	read_records(o.peer, 2000, h, 1, &mine, NULL);
	send_hello(o.peer, 2, 0, mine.nonce, 0);
	pthread_join(o.thread, NULL);
	is_int(o.r, 0, "hostile peer: handshake completes");
	pthread_create(&tx, NULL, hostile_sender, &o);
	fl = fcntl(o.peer, F_GETFL);
	fcntl(o.peer, F_SETFL, fl | O_NONBLOCK);
	for (i = 0; i < 3000; i++) {
		struct tbs_wire_hdr r = { 0 };
		uint8_t rec[TBS_WIRE_HDR_LEN + sizeof(p)];
		size_t n;

		while (read(o.peer, drain, sizeof(drain)) > 0)
			;
		type = types[hostile_offset(&st) % sizeof(types)];
		if (i > 2900) /* END and ABORT end the session: last */
			type = (uint8_t)(TBS_REC_END + i % 4);
		r.type = type;
		r.flags = type == 0x40 ? TBS_WF_OPTIONAL : 0;
		r.off = hostile_offset(&st);
		r.aux = (uint32_t)(hostile_offset(&st) % 4);
		r.len = (uint32_t)(hostile_offset(&st) % sizeof(p));
		memset(p, (int)i, sizeof(p));
		n = tbs_wire_encode(rec, sizeof(rec), &r, p,
				    key_with(mine.nonce));
		if (write(o.peer, rec, n) < 0 && errno != EAGAIN)
			break;
	}
	pthread_join(tx, NULL);
	failed = tbs_session_recv(o.s, NULL, drain, sizeof(drain), 0) < 0;
	printf("# hostile peer: %s\n", tbs_session_error(o.s));
	ok(!failed || tbs_session_error(o.s)[0],
	   "hostile peer: survived, any failure is explained");
	one_done(&o);
}

/*
 * A descriptor whose reads keep failing with EIO (the master of a pseudo
 * terminal whose other side is closed): not a frame with a bad CRC, but a
 * broken stream; the session must fail, not spin.
 */
static void test_failing_read(void)
{
	struct tbs_session_opts opts =
		TBS_OPTS_INIT(tbs_session_opts, .handshake_ms = 5000);
	struct tbs_session *s;
	int m, sl, sv[2];

	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || socketpair(AF_UNIX,
							 SOCK_STREAM, 0, sv)) {
		tap_skip("no pseudo terminal");
		return;
	}
	sl = open(ptsname(m), O_RDWR | O_NOCTTY);
	close(sl);
	if (tbs_session_new(&s, m, sv[0], &opts))
		abort();
	is_int(tbs_session_start(s), -EIO, "reads failing with EIO end it");
	printf("# %s\n", tbs_session_error(s));
	ok(strstr(tbs_session_error(s), "Input/output error") != NULL,
	   "and the message names the error");
	tbs_session_free(s);
	close(m);
	close(sv[0]);
	close(sv[1]);
}

static void test_roles(void)
{
	struct relay r;
	struct end a = { .seed = 1 }, b = { .seed = 2 };

	a.o.role = TBS_ROLE_SENDER;
	b.o.role = TBS_ROLE_SENDER;
	relay_init(&r);
	pair_run(&r, &a, &b, 0);
	ok(a.start_r == -EINVAL && b.start_r == -EINVAL,
	   "two senders refuse each other");
	ok(strstr(a.err, "both sides are senders") != NULL,
	   "the message says why");
}

/*
 * Records of an earlier session arrive first (the contract: a reopened end
 * may read the old process's last frames): a HELLO with another nonce,
 * records bound to the old session's key, and records with the fixed seed
 * of protocol 1.  None may count; the live peer's HELLO then wins.
 */
static void test_stale_records(void)
{
	uint64_t old = tbs_wire_key(0x1234, 0x01d);
	struct tbs_wire_hello mine = { 0 };
	struct tbs_wire_hdr h[1];
	uint8_t buf[64], eight[8] = { 0 };
	uint16_t type = 0;
	struct one o;

	one_init(&o, 5000);
	read_records(o.peer, 2000, h, 1, &mine, NULL);
	send_hello_from(o.peer, 2, 0, 0x01d, 0x1234, 0);
	send_keyed(o.peer, TBS_REC_DATA, TBS_WF_EOM, "stale", 5, old);
	send_keyed(o.peer, TBS_REC_ENDACK, 0, eight, 8, old);
	send_keyed(o.peer, TBS_REC_ABORT, 0, "old abort", 9, old);
	send_keyed(o.peer, TBS_REC_ABORT, 0, "unkeyed abort", 13, 0);
	send_keyed(o.peer, TBS_REC_DATA, 0, "unkeyed", 7, 0);
	send_hello(o.peer, 2, 0, mine.nonce, 0);
	pthread_join(o.thread, NULL);
	is_int(o.r, 0, "stale records: the handshake with the live peer completes");
	printf("# %s\n", tbs_session_error(o.s));
	send_keyed(o.peer, TBS_REC_DATA, TBS_WF_EOM, "live", 4,
		   key_with(mine.nonce));
	is_int(tbs_session_recv_msg(o.s, &type, buf, sizeof(buf), 5000), 4,
	       "stale records: only the live message is delivered");
	ok(!memcmp(buf, "live", 4), "stale records: its bytes are the live ones");
	one_done(&o);
}

static int budget_file(const char *dir)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	char path[512], val[16] = { 0 };
	int fd, n = -1;

	while (dp && (d = readdir(dp)))
		if (!strncmp(d->d_name, "hello-", 6)) {
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			fd = open(path, O_RDONLY);
			n = fd >= 0 && read(fd, val, sizeof(val) - 1) > 0 ?
				    atoi(val) : -2;
			if (fd >= 0)
				close(fd);
		}
	if (dp)
		closedir(dp);
	return n;
}

/* Runs one session toward a silent peer, writing to @wfd. */
static int silent_run(int wfd, int ms, char *msg, size_t len)
{
	struct tbs_session_opts opts =
		TBS_OPTS_INIT(tbs_session_opts, .handshake_ms = ms);
	struct tbs_session *s;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    tbs_session_new(&s, sv[0], wfd, &opts))
		abort();
	r = tbs_session_start(s);
	snprintf(msg, len, "%s", tbs_session_error(s));
	tbs_session_free(s);
	close(sv[0]);
	close(sv[1]);
	return r;
}

/*
 * The HELLOs that went unanswered toward one device are counted across
 * sessions (and processes): a retried command gets no new allowance, so
 * retries cannot wedge the link; an answer clears the count.
 */
static void test_budget_across(void)
{
	char dir[] = "/tmp/tbs-budget.XXXXXX", msg[256];
	int wfd, a, b, c;

	if (!mkdtemp(dir))
		abort();
	setenv("TBSTREAM_RUNDIR", dir, 1);
	wfd = open("/dev/null", O_WRONLY); /* a device: the count is kept */
	silent_run(wfd, 1100, msg, sizeof(msg));
	a = budget_file(dir);
	silent_run(wfd, 1100, msg, sizeof(msg));
	b = budget_file(dir);
	silent_run(wfd, 1100, msg, sizeof(msg));
	c = budget_file(dir);
	printf("# unanswered after each run: %d %d %d; %s\n", a, b, c, msg);
	ok(a == 3 && b == 6 && c == 6,
	   "budget: 3 HELLOs, then the 3 left, then none, toward one device");
	ok(strstr(msg, "only listened") != NULL,
	   "budget: the time-out says this side only listened, and why");
	close(wfd);
	unsetenv("TBSTREAM_RUNDIR");
	rmdir(dir);
}

int main(void)
{
	pair_watchdog(80);
	test_major(1);
	test_major(3);
	test_stale_records();
	test_budget_across();
	test_raw_peer();
	test_closed_early();
	test_later_minor();
	test_roles();
	test_failing_read();
	test_hostile_peer();
	test_hello_limit();
	return tap_done();
}
