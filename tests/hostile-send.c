// SPDX-License-Identifier: MIT
/*
 * A hostile file-tree sender, for tests only: it speaks the session and the
 * file-tree messages like tbstream send, but sends what a correct sender
 * never does, to show that tbstream recv refuses it and writes nothing
 * outside its directory.
 *
 *	hostile-send SYSROOT STREAM SCENARIO OUTSIDE
 *
 * SCENARIO is one of dotdot, absolute, slash, nul, symlink, huge-size,
 * huge-length, huge-data, huge-count, abort; OUTSIDE is a directory outside the
 * receiver's, the target of the symbolic link in "symlink".  Prints the
 * receiver's messages; exits 0 once the receiver answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tbstream.h"
#include "tree-records.h"

static struct trec R;

static void entry(uint32_t idx, uint8_t kind, uint64_t size, int n,
		  const char *const *names, const uint16_t *lens,
		  const char *target)
{
	struct tree_entry e = {
		.index = idx,
		.kind = kind,
		.ncomp = (uint16_t)n,
		.mode = 0644,
		.link = TREE_NONE,
		.size = size,
		.target_len = target ? (uint16_t)strlen(target) : 0,
	};

	R.len += tree_entry_encode(R.buf + R.len, sizeof(R.buf) - R.len, &e,
				   names, lens, target);
}

static void msg(uint8_t type, uint32_t idx, uint64_t a, uint64_t b,
		const void *data, size_t len)
{
	trec_msg(&R, type, idx, a, b, data, len);
}

static void one_file(const char *name, uint64_t size)
{
	const char *names[] = { name };
	uint16_t lens[] = { (uint16_t)strlen(name) };

	entry(0, TK_FILE, size, 1, names, lens, NULL);
}

static void through_link(const char *outside)
{
	const char *a[] = { "link" }, *b[] = { "link", "x" };
	uint16_t al[] = { 4 }, bl[] = { 4, 1 };

	entry(0, TK_SYMLINK, 0, 1, a, al, outside);
	entry(1, TK_DIR, 0, 1, a, al, NULL); /* the link is in its place */
	entry(2, TK_FILE, 5, 2, b, bl, NULL);
	entry(3, TK_DIR, 0, 2, b, bl, NULL);
	msg(TM_LISTED, 0, 4, 0, NULL, 0);
	msg(TM_FILE, 2, 0, 0, NULL, 0);
	msg(TM_DATA, 2, 0, 0, "pwned", 5);
	msg(TM_FILE_END, 2, 5, XXH3_64bits("pwned", 5), NULL, 0);
	msg(TM_DONE, 0, 4, 0, NULL, 0);
}

/* "abort": the sender ends the session with a message made to drive
 * the receiver's terminal (title, erased line, a fake verdict). */
static const char *abort_text;

static int build(const char *scenario, const char *outside)
{
	static const char nul[] = { 'a', 0, 'b' };
	const char *names[3] = { "", "etc", "x" };
	uint16_t lens[3] = { 0, 3, 1 };

	msg(TM_START, 0, !strcmp(scenario, "huge-count") ? 1ull << 40 : 4, 0,
	    NULL, 0);
	if (!strcmp(scenario, "dotdot")) {
		one_file("..", 4);
	} else if (!strcmp(scenario, "absolute")) {
		entry(0, TK_FILE, 4, 3, names, lens, NULL);
	} else if (!strcmp(scenario, "slash")) {
		one_file("a/b", 4);
	} else if (!strcmp(scenario, "nul")) {
		names[0] = nul;
		lens[0] = sizeof(nul);
		entry(0, TK_FILE, 4, 1, names, lens, NULL);
	} else if (!strcmp(scenario, "symlink")) {
		through_link(outside);
	} else if (!strcmp(scenario, "huge-size")) {
		one_file("x", 1ull << 60);
	} else if (!strcmp(scenario, "huge-length")) {
		tbsi_le_put32(R.buf + 4, 0x7fffffff);
	} else if (!strcmp(scenario, "huge-data")) {
		one_file("x", 10);
		msg(TM_LISTED, 0, 1, 0, NULL, 0);
		msg(TM_FILE, 0, 0, 0, NULL, 0);
		msg(TM_DATA, 0, 0, 0, R.buf, 100);
	} else if (!strcmp(scenario, "abort")) {
		abort_text = "\033]0;pwned\007\r\033[2K\033[1Averified OK\n";
	} else if (strcmp(scenario, "huge-count")) {
		fprintf(stderr, "hostile-send: unknown scenario %s\n",
			scenario);
		return -1;
	}
	return 0;
}

/* Prints the receiver's messages until it ends its stream. */
static int listen(struct tbs_session *s)
{
	uint8_t buf[TREE_REC_MAX];
	ssize_t n;
	size_t pos;

	while ((n = tbs_session_recv(s, NULL, buf, sizeof(buf), 20000)) > 0) {
		for (pos = 0; pos + TREE_MSG_HDR <= (size_t)n;) {
			uint32_t len = tbsi_le_get32(buf + pos + 4);

			if (buf[pos] == TM_FAIL && len >= 8)
				printf("receiver: %.*s\n", (int)len - 8,
				       (const char *)buf + pos + TREE_MSG_HDR +
					       8);
			pos += TREE_MSG_HDR + len;
		}
	}
	if (n == 0)
		tbs_session_confirm(s);
	return n == 0 ? 0 : (int)n;
}

static int attack(struct tbs_endpoint *ep)
{
	struct tbs_session_opts o =
		TBS_OPTS_INIT(tbs_session_opts, .role = TBS_ROLE_SENDER);
	struct tbs_session *s;
	int r;

	r = tbs_session_new(&s, ep->rfd, ep->wfd, &o);
	if (r)
		return r;
	r = tbs_session_start(s);
	if (!r && abort_text) {
		tbs_session_abort(s, -EIO, abort_text);
		tbs_session_free(s);
		return 0;
	}
	if (!r && tbs_session_send(s, TBS_TREE_APP, R.buf, R.len, 20000) < 0)
		r = -EIO;
	if (!r)
		r = listen(s);
	if (r)
		fprintf(stderr, "hostile-send: %s\n", tbs_session_error(s));
	tbs_session_free(s);
	return r;
}

int main(int argc, char **argv)
{
	struct tbs_error e = { 0 };
	struct tbs_endpoint ep;
	struct tbs_stream st;
	int r, created;

	if (argc != 5 || build(argv[3], argv[4]))
		return 2;
	created = tbs_stream_up(argv[1], NULL, argv[2], NULL, &st, &e);
	if (created < 0) {
		fprintf(stderr, "hostile-send: %s\n", e.msg);
		return 1;
	}
	r = tbs_endpoint_open(argv[1], &st, 30000, 0, &ep, &e);
	if (r) {
		fprintf(stderr, "hostile-send: %s\n", e.msg);
	} else {
		r = attack(&ep);
		tbs_endpoint_close(&ep);
	}
	if (created)
		tbs_stream_down(argv[1], &st, true, NULL);
	return r ? 1 : 0;
}
