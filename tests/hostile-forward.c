// SPDX-License-Identifier: MIT
/*
 * A hostile forward peer, for tests only: it speaks the session and the
 * forward messages like tbstream forward, but sends what a correct peer
 * never does, to show that tbstream forward refuses it, says why, and
 * never lets it choose a destination, take unbounded memory, or mix up
 * connections.
 *
 *	hostile-forward SYSROOT STREAM SCENARIO [ARG]
 *
 * Scenarios against a connecting side (this program listens):
 *	data		OPEN 1 naming another destination, "hello", SHUT; a
 *			correct exchange: exits 0 once CLOSE came
 *	dup-open	OPEN 1 twice
 *	over-limit	OPEN 1..ARG+1 (ARG: the peer's limit)
 *	credit		DATA beyond the window the peer announced
 *	unopened	DATA for a connection never opened
 *	before-hello	OPEN before HELLO
 *	huge		a message of 300 KiB
 *	inflate		CREDIT beyond this side's own window
 *	escape		as data, with terminal escapes in the origin text
 * Against a listening side (this program connects):
 *	refuse-escape	answers every OPEN with REFUSE and terminal escapes
 *	early-data	answers OPEN with DATA before ACCEPT
 *	close-twice	ACCEPT, a window of DATA (more than a client that
 *			does not read takes), SHUT; after the peer's SHUT,
 *			CLOSE twice
 *	reset-after-close  the same, then RESET after the CLOSE
 *
 * Prints every message received and the session's end; exits 0 when the
 * peer aborted the session (or, for "data", closed the connection).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tbstream.h"
#include "../lib/byteorder.h"
#include "../src/forward.h"

static struct tbs_session *s;
static uint8_t buf[FWD_MSG_MAX + 65536];

static int put(uint16_t type, const uint8_t *b, size_t n)
{
	ssize_t r = tbs_session_send_msg(s, type, b, n, 5000);

	if (r < 0)
		printf("send %s: %s\n", fwd_type_name(type),
		       tbs_session_error(s));
	return r < 0 ? -1 : 0;
}

static int ctl(uint16_t type, uint32_t id, uint32_t a, const char *text)
{
	uint8_t b[FWD_HDR + 4 + FWD_TEXT_MAX];

	return put(type, b, fwd_encode(b, type, id, a, text));
}

static int data(uint32_t id, size_t n)
{
	tbsi_le_put32(buf, id);
	memset(buf + FWD_HDR, 'x', n);
	return put(FWD_DATA, buf, FWD_HDR + n);
}

static int hello(uint8_t role)
{
	struct fwd_hello h = { .version = FWD_VERSION, .role = role,
			       .max_conns = 4, .window = FWD_MIN_WINDOW,
			       .max_data = FWD_MAX_DATA };
	uint8_t b[FWD_HELLO_LEN];

	return put(FWD_HELLO, b, fwd_encode_hello(b, &h));
}

/* Prints the next message; its type, 0 at the end, -1 on failure. */
static int next(struct fwd_msg *m)
{
	uint16_t type;
	const char *why;
	ssize_t n = tbs_session_recv_msg(s, &type, buf, sizeof(buf), 20000);

	if (n <= 0) {
		printf("end: %s\n", n ? tbs_session_error(s) : "peer ended");
		return n ? -1 : 0;
	}
	if (fwd_decode(type, buf, (size_t)n, m, &why)) {
		printf("undecodable %s: %s\n", fwd_type_name(type), why);
		return -1;
	}
	printf("got %s %u\n", fwd_type_name(type), m->id);
	return type;
}

static int until_abort(void)
{
	struct fwd_msg m;
	int t;

	while ((t = next(&m)) > 0)
		;
	return strstr(tbs_session_error(s), "peer aborted") ? 0 : 1;
}

static int against_connect(const char *sc, const char *arg)
{
	uint32_t i, lim = arg ? (uint32_t)atoi(arg) : 0;
	struct fwd_msg m;
	int t;

	if (!strcmp(sc, "before-hello"))
		return ctl(FWD_OPEN, 1, 0, "x") ? 1 : until_abort();
	if (hello(FWD_ROLE_LISTEN) || next(&m) != FWD_HELLO)
		return 1;
	if (!strcmp(sc, "data") || !strcmp(sc, "escape")) {
		if (ctl(FWD_OPEN, 1, 0,
			!strcmp(sc, "data") ?
				"unix:/etc/evil 10.0.0.1:22" :
				"\x1b]0;owned\x07\x1b[31mEVIL\r\n") ||
		    data(1, 5) || ctl(FWD_SHUT, 1, 0, NULL))
			return 1;
		while ((t = next(&m)) > 0 && t != FWD_CLOSE)
			;
		return t == FWD_CLOSE ? 0 : 1;
	}
	if (!strcmp(sc, "dup-open"))
		(void)(ctl(FWD_OPEN, 1, 0, "") || ctl(FWD_OPEN, 1, 0, ""));
	else if (!strcmp(sc, "over-limit"))
		for (i = 1; i <= lim + 1 && !ctl(FWD_OPEN, i, 0, ""); i++)
			;
	else if (!strcmp(sc, "credit"))
		for (i = 0; i < 12 && !(i ? data(1, FWD_MAX_DATA) :
					     ctl(FWD_OPEN, 1, 0, ""));
		     i++)
			;
	else if (!strcmp(sc, "unopened"))
		data(7, 10);
	else if (!strcmp(sc, "huge"))
		put(FWD_DATA, buf, 300 * 1024);
	else if (!strcmp(sc, "inflate"))
		(void)(ctl(FWD_OPEN, 1, 0, "") ||
		       ctl(FWD_CREDIT, 1, 4096, NULL));
	else
		return 2;
	return until_abort();
}

/*
 * Ends connection @id in order while the peer's client still has bytes
 * to take (the peer's default window of 1 MiB, sent whole), then sends
 * @then for it.
 */
static int after_close(uint32_t id, uint16_t then)
{
	struct fwd_msg m;
	int i, t;

	if (ctl(FWD_ACCEPT, id, 0, NULL))
		return 1;
	for (i = 0; i < 4; i++)
		if (data(id, FWD_MAX_DATA))
			return 1;
	if (ctl(FWD_SHUT, id, 0, NULL))
		return 1;
	while ((t = next(&m)) > 0 && !(t == FWD_SHUT && m.id == id))
		;
	if (t != FWD_SHUT || ctl(FWD_CLOSE, id, 0, NULL) ||
	    ctl(then, id, ECONNRESET, NULL))
		return 1;
	return until_abort();
}

static int against_listen(const char *sc)
{
	struct fwd_msg m;
	int t;

	if (hello(FWD_ROLE_CONNECT) || next(&m) != FWD_HELLO)
		return 1;
	while ((t = next(&m)) > 0 && t != FWD_OPEN)
		;
	if (t != FWD_OPEN)
		return 1;
	if (!strcmp(sc, "refuse-escape")) {
		ctl(FWD_REFUSE, m.id, ECONNREFUSED,
		    "\x1b[2J\x1b[31mno\x07 such\nhost");
		while ((t = next(&m)) > 0)
			;
		return 0;
	}
	if (!strcmp(sc, "early-data"))
		data(m.id, 10);
	else if (!strcmp(sc, "close-twice") ||
		 !strcmp(sc, "reset-after-close"))
		return after_close(m.id, !strcmp(sc, "close-twice") ?
						 FWD_CLOSE :
						 FWD_RESET);
	else
		return 2;
	return until_abort();
}

int main(int argc, char **argv)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(
		tbs_session_opts, .role = TBS_ROLE_DUPLEX, .id = FWD_ID,
		.id_len = strlen(FWD_ID), .handshake_ms = 20000);
	struct tbs_error e = { 0 };
	struct tbs_endpoint ep;
	struct tbs_stream st;
	int r, tries;

	if (argc < 4)
		return 2;
	if (tbs_stream_up(argv[1], NULL, argv[2], NULL, &st, &e) < 0)
		goto err_up;
	/*
	 * The forward closes its end after each refused session and opens it
	 * again: a HELLO sent in between meets the closed end, and this peer
	 * tries again, a few times.
	 */
	for (tries = 0;; tries++) {
		if (tbs_endpoint_open(argv[1], &st, 20000, 0, &ep, &e))
			goto err_up;
		if (tbs_session_new(&s, ep.rfd, ep.wfd, &o))
			goto err_session;
		r = tbs_session_start(s);
		if (!r)
			break;
		if (r != -ECONNRESET || tries == 4)
			goto err_session;
		tbs_session_free(s);
		s = NULL;
		tbs_endpoint_close(&ep);
	}
	if (!strcmp(argv[3], "refuse-escape") ||
	    !strcmp(argv[3], "early-data") ||
	    !strcmp(argv[3], "close-twice") ||
	    !strcmp(argv[3], "reset-after-close"))
		r = against_listen(argv[3]);
	else
		r = against_connect(argv[3], argc > 4 ? argv[4] : NULL);
	fflush(stdout);
	tbs_session_abort(s, -ESHUTDOWN, "hostile-forward done");
	tbs_session_free(s);
	tbs_endpoint_close(&ep);
	return r;

err_session:
	fprintf(stderr, "hostile-forward: %s\n",
		s ? tbs_session_error(s) : "out of memory");
	return 1;
err_up:
	fprintf(stderr, "hostile-forward: %s\n", e.msg);
	return 1;
}
