// SPDX-License-Identifier: MIT
/*
 * tbs_tree_recv() against a hostile sender over a socketpair: records made
 * by hand (tests/tree-records.h) that plant the receiver's own partial
 * files and journals, link what was already there, change existing
 * directories and replace newer files with older links, plus what a local
 * user may plant in the directory (hard links, symbolic links, FIFOs,
 * journals of another user).  After each, what was there must be exactly
 * as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "tbstream.h"
#include "../tree-records.h"
#include "../tap.h"

#define WAIT_MS 5000
#define BIG (9u << 20) /* large enough to keep a journal */

static char top[256];

/* ---- the receiver, and a hostile sender that replays records ---- */

struct hrx {
	struct tbs_session *s;
	const char *dir;
	unsigned int flags;
	int r;
	struct tbs_error e;
};

static void *hrx_main(void *arg)
{
	struct hrx *h = arg;
	struct tbs_tree_opts o =
		TBS_OPTS_INIT(tbs_tree_opts, .flags = h->flags);

	h->r = tbs_session_start(h->s);
	if (!h->r)
		h->r = tbs_tree_recv(h->s, h->dir, &o, NULL, &h->e);
	tbs_session_close(h->s);
	return NULL;
}

/* What the receiver answered. */
struct answers {
	uint8_t want[16]; /* WANT action by index */
	uint64_t want_hash; /* any WANT's reserved field, or'ed */
	int fails;
	bool finished, gave_up;
};

static int on_answer(void *arg, const struct tree_msg *m)
{
	struct answers *a = arg;

	if (m->type == TM_WANT && m->index < sizeof(a->want))
		a->want[m->index] = (uint8_t)m->u32;
	if (m->type == TM_WANT)
		a->want_hash |= m->b;
	if (m->type == TM_FAIL) {
		a->fails++;
		a->gave_up |= m->index == TREE_NONE;
		printf("#   receiver: %.*s\n", (int)m->len, m->data);
	}
	a->finished |= m->type == TM_FINISH;
	return 0;
}

/* Takes the answers that are there already. */
static void answers_poll(struct tbs_session *s, struct answers *a)
{
	static uint8_t buf[TREE_REC_MAX];
	ssize_t n;

	while ((n = tbs_session_recv(s, NULL, buf, sizeof(buf), 0)) > 0)
		tree_parse_record(buf, (size_t)n, on_answer, a, NULL, 0);
}

/* Reads the receiver's answers; ends this side's stream after FINISH. */
static void answers_read(struct tbs_session *s, struct answers *a)
{
	static uint8_t buf[TREE_REC_MAX];
	bool ended = false;
	ssize_t n;

	while ((n = tbs_session_recv(s, NULL, buf, sizeof(buf), WAIT_MS)) >
	       0) {
		tree_parse_record(buf, (size_t)n, on_answer, a, NULL, 0);
		if (a->finished && !ended)
			ended = !tbs_session_finish(s) || true;
	}
	if (n == 0)
		tbs_session_confirm(s);
	if (!ended && !a->gave_up) /* a receiver that gave up reads no more */
		tbs_session_finish(s);
}

/* Runs the receiver on @dir against records @recs; its result. */
static int hostile(const char *dir, unsigned int flags, struct trec *recs,
		   int nrec, struct answers *a, struct tbs_error *e)
{
	struct tbs_session_opts o =
		TBS_OPTS_INIT(tbs_session_opts, .handshake_ms = WAIT_MS,
			      .idle_ms = WAIT_MS, .confirm_ms = WAIT_MS);
	char path[1024];
	struct hrx h;
	struct tbs_session *s;
	pthread_t t;
	int sv[2], i, spins = 0;

	snprintf(path, sizeof(path), "%s/%s", top, dir);
	memset(a, 0, sizeof(*a));
	h = (struct hrx){ .dir = path, .flags = flags };
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	o.role = TBS_ROLE_SENDER;
	tbs_session_new(&s, sv[0], sv[0], &o);
	o.role = TBS_ROLE_RECEIVER;
	tbs_session_new(&h.s, sv[1], sv[1], &o);
	pthread_create(&t, NULL, hrx_main, &h);
	tbs_session_start(s);
	for (i = 0; i < nrec && !a->gave_up; i++)
		while (tbs_session_send(s, TBS_TREE_APP, recs[i].buf,
					recs[i].len, 100) == -EAGAIN &&
		       !a->gave_up && ++spins < 200)
			answers_poll(s, a);
	answers_read(s, a);
	if (!a->gave_up)
		tbs_session_close(s);
	tbs_session_free(s);
	shutdown(sv[0], SHUT_RDWR); /* the receiver sees the end at once */
	pthread_join(t, NULL);
	tbs_session_free(h.s);
	close(sv[0]);
	close(sv[1]);
	printf("#   result %d: %s\n", h.r, h.e.msg);
	if (e)
		*e = h.e;
	return h.r;
}

/* ---- the directory's state ---- */

static void pathof(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", top, rel);
}

static void put(const char *rel, const void *data, size_t len, int64_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	char p[1024];
	int fd;

	pathof(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		perror(p);
	if (mtime)
		futimens(fd, ts);
	close(fd);
}

static void dir(const char *rel, mode_t mode)
{
	char p[1024];

	pathof(p, sizeof(p), rel);
	mkdir(p, mode);
	chmod(p, mode);
}

static struct stat st(const char *rel)
{
	struct stat sb = { 0 };
	char p[1024];

	pathof(p, sizeof(p), rel);
	lstat(p, &sb);
	return sb;
}

static bool exists(const char *rel)
{
	char p[1024];

	pathof(p, sizeof(p), rel);
	return !access(p, F_OK) || errno != ENOENT;
}

static uint64_t content(const char *rel)
{
	static uint8_t buf[BIG + 1];
	char p[1024];
	ssize_t n;
	int fd;

	pathof(p, sizeof(p), rel);
	fd = open(p, O_RDONLY | O_NOFOLLOW);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return n < 0 ? 0 : XXH3_64bits(buf, (size_t)n);
}

/* The receiver's name for the partial file or journal of @name. */
static const char *tmpname(char *b, const char *dir_, const char *name,
			   const char *ext)
{
	snprintf(b, 256, "%s/.tbs-%016llx.%s", dir_,
		 (unsigned long long)XXH3_64bits(name, strlen(name)), ext);
	return b;
}

static int find_tmp(const char *rel)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "find '%s/%s' -name '.tbs-*' | grep -q .",
		 top, rel);
	return system(cmd) == 0;
}

/* ---- the attacks ---- */

/*
 * In one transfer, the sender names a file the receiver has (same size
 * and time: "same"), and gives it a second name that is the partial file
 * of "big", with a journal beside it: in a second transfer, a RESUME
 * would write into the file it has.
 */
static void test_planted_by_sender(void)
{
	char b1[256], b2[256];
	const char *part = tmpname(b1, "t", "big", "part");
	const char *state = tmpname(b2, "t", "big", "state");
	struct trec_meta victim = { .size = 7, .mtime = 1000 };
	struct trec_meta hl = { .link = 1 };
	struct trec_meta sm = { .size = 5, .mtime = 1000 };
	struct trec r = { 0 };
	struct answers a;
	uint64_t before;

	dir("d1", 0755);
	dir("d1/t", 0755);
	put("d1/t/victim", "SECRET\n", 7, 1000);
	before = content("d1/t/victim");
	trec_msg(&r, TM_START, 0, 4, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "t", NULL);
	trec_entry(&r, 1, TK_FILE, "t/victim", &victim);
	trec_entry(&r, 2, TK_HARDLINK, part, &hl);
	trec_entry(&r, 3, TK_FILE, state, &sm);
	trec_msg(&r, TM_LISTED, 0, 4, 0, NULL, 0);
	trec_msg(&r, TM_FILE, 3, 0, 0, NULL, 0);
	trec_data(&r, 3, 0, "plant", 5);
	trec_msg(&r, TM_FILE_END, 3, 5, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 4, 0, NULL, 0);
	hostile("d1", TBS_TREE_UPDATE, &r, 1, &a, NULL);
	is_int(a.want[3], TW_REFUSE, "a '.tbs-' file is refused");
	ok(!find_tmp("d1"), "no '.tbs-' name was created");
	ok(content("d1/t/victim") == before && st("d1/t/victim").st_nlink == 1,
	   "the file already there is unchanged, with one link");
}

/* The records of a transfer of "t/big" (all 'A') from offset @from,
 * with the hash of the bytes before it. */
static int send_big(const char *d, unsigned int flags, int64_t mtime,
		    uint64_t from, struct answers *a)
{
	static uint8_t data[BIG];
	static struct trec r[64];
	struct trec_meta big = { .size = BIG, .mtime = mtime };
	struct tree_hash *h = tree_hash_new();
	uint64_t off, prefix;
	int n = 0, ret;

	memset(data, 'A', sizeof(data));
	memset(r, 0, sizeof(r));
	tree_hash_update(h, data, from);
	prefix = from ? tree_hash_digest(h) : 0;
	tree_hash_reset(h);
	trec_msg(&r[0], TM_START, 0, 2, 0, NULL, 0);
	trec_entry(&r[0], 0, TK_DIR, "t", NULL);
	trec_entry(&r[0], 1, TK_FILE, "t/big", &big);
	trec_msg(&r[0], TM_LISTED, 0, 2, 0, NULL, 0);
	trec_msg(&r[0], TM_FILE, 1, from, prefix, NULL, 0);
	for (off = from; off < BIG; off += 200000) {
		size_t len = BIG - off < 200000 ? BIG - off : 200000;

		trec_data(&r[++n], 1, off, data + off, len);
	}
	tree_hash_update(h, data, BIG);
	trec_msg(&r[++n], TM_FILE_END, 1, BIG, tree_hash_digest(h), NULL, 0);
	trec_msg(&r[n], TM_DONE, 0, 2, 0, NULL, 0);
	tree_hash_free(h);
	ret = hostile(d, flags, r, n + 1, a, NULL);
	return ret;
}

/* A journal for "t/big" in @d saying 4 MiB of inode @ino are durable. */
static void plant_journal(const char *d, int64_t mtime, uint64_t ino)
{
	char p[256], q[256], text[256];

	snprintf(text, sizeof(text),
		 "tbstream partial 2 size %u mtime %lld.000000000 verified %u "
		 "inode %llu\n",
		 BIG, (long long)mtime, 4u << 20, (unsigned long long)ino);
	snprintf(p, sizeof(p), "%s/t", d);
	put(tmpname(q, p, "big", "state"), text, strlen(text), 0);
}

/*
 * A local user links the partial file's name to a file of the receiver
 * and writes a journal naming its inode: the receiver must not resume
 * into it (nor tell the sender the hash of its first bytes).
 */
static void test_planted_hardlink(void)
{
	static uint8_t v[BIG];
	char lnk[1024], part[1024], t[256];
	struct answers a;
	uint64_t before;

	dir("d2", 0755);
	dir("d2/t", 0755);
	memset(v, 'V', sizeof(v));
	put("d2/t/victim", v, sizeof(v), 1000);
	before = content("d2/t/victim");
	pathof(lnk, sizeof(lnk), "d2/t/victim");
	pathof(part, sizeof(part), tmpname(t, "d2/t", "big", "part"));
	ok(!link(lnk, part), "a hard link is planted as the partial file");
	plant_journal("d2", 2000, st("d2/t/victim").st_ino);
	send_big("d2", 0, 2000, 4u << 20, &a);
	is_int(a.want[1], TW_FULL, "the planted copy is not resumed");
	ok(content("d2/t/victim") == before,
	   "the file it links to is unchanged");
}

/* The same with a symbolic link, and with a FIFO as the journal. */
static void test_planted_other(void)
{
	struct answers a;
	uint64_t before;
	char p[1024], t[256];

	dir("d3", 0755);
	dir("d3/t", 0755);
	put("d3/t/victim", "keep me\n", 8, 1000);
	before = content("d3/t/victim");
	pathof(p, sizeof(p), tmpname(t, "d3/t", "big", "part"));
	ok(!symlink("victim", p), "a symbolic link is planted");
	plant_journal("d3", 2000, st("d3/t/victim").st_ino);
	is_int(send_big("d3", 0, 2000, 0, &a), 0,
	       "the transfer succeeds from the start");
	is_int(a.want[1], TW_FULL, "the link is not resumed");
	ok(content("d3/t/victim") == before, "the file it points to is kept");
	ok(st("d3/t/big").st_size == BIG && !find_tmp("d3"),
	   "the file arrives, nothing is left behind");

	dir("d4", 0755);
	dir("d4/t", 0755);
	pathof(p, sizeof(p), tmpname(t, "d4/t", "big", "state"));
	ok(!mkfifo(p, 0600), "a FIFO is planted as the journal");
	is_int(send_big("d4", 0, 2000, 0, &a), 0,
	       "the receiver does not block on it");
}

/* A journal and a partial copy of another user: not trusted. */
static void test_other_user(void)
{
	static uint8_t v[BIG];
	struct answers a;
	char p[1024], part[256], state[256];

	if (geteuid()) {
		tap_skip("needs root to make another user's files");
		return;
	}
	dir("d5", 0755);
	dir("d5/t", 0755);
	memset(v, 'A', sizeof(v));
	tmpname(part, "d5/t", "big", "part");
	tmpname(state, "d5/t", "big", "state");
	put(part, v, 5u << 20, 0);
	plant_journal("d5", 2000, st(part).st_ino);
	pathof(p, sizeof(p), part);
	if (chown(p, 65534, 65534))
		perror(p);
	pathof(p, sizeof(p), state);
	if (chown(p, 65534, 65534))
		perror(p);
	send_big("d5", 0, 2000, 0, &a);
	is_int(a.want[1], TW_FULL, "another user's partial copy is ignored");
}

/*
 * A partial copy of the receiver's own: the receiver asks for the rest
 * without saying what it has (no hash in WANT); the sender proves its
 * first bytes by their hash, and a copy that differs is removed, not
 * completed.
 */
static void test_resume_proof(void)
{
	static uint8_t v[BIG];
	char part[256];
	struct answers a;

	dir("d6", 0755);
	dir("d6/t", 0755);
	memset(v, 'A', sizeof(v));
	put(tmpname(part, "d6/t", "big", "part"), v, 4u << 20, 0);
	plant_journal("d6", 2000, st(part).st_ino);
	is_int(send_big("d6", 0, 2000, 4u << 20, &a), 0,
	       "a partial copy that matches: the transfer succeeds");
	is_int(a.want[1], TW_RESUME, "it was resumed");
	ok(!a.want_hash, "the receiver's answer holds no hash");
	ok(st("d6/t/big").st_size == BIG && content("d6/t/big") ==
	   XXH3_64bits(v, BIG) && !find_tmp("d6"),
	   "the file is whole, nothing is left behind");

	dir("d7", 0755);
	dir("d7/t", 0755);
	memset(v, 'B', sizeof(v));
	put(tmpname(part, "d7/t", "big", "part"), v, 4u << 20, 0);
	plant_journal("d7", 2000, st(part).st_ino);
	send_big("d7", 0, 2000, 4u << 20, &a);
	is_int(a.want[1], TW_RESUME, "a partial copy that differs is offered");
	ok(!a.want_hash, "without its hash");
	is_int(a.fails, 1, "the file is refused when the sender's hash differs");
	ok(!exists("d7/t/big") && !find_tmp("d7"),
	   "nothing takes its name; the partial copy is removed");
}

/*
 * Small files asked for in full get their temporary files ahead of their
 * data: one whose data never comes (skipped, or simply not sent) leaves
 * nothing behind, and the next is written as usual.
 */
static void test_ahead_unsent(void)
{
	struct trec_meta m = { .size = 5, .mtime = 1000 };
	struct tree_hash *h = tree_hash_new();
	struct trec r = { 0 };
	struct answers a;
	int ret;

	tree_hash_update(h, "hello", 5);
	dir("da", 0755);
	trec_msg(&r, TM_START, 0, 4, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "t", NULL);
	trec_entry(&r, 1, TK_FILE, "t/skipped", &m);
	trec_entry(&r, 2, TK_FILE, "t/sent", &m);
	trec_entry(&r, 3, TK_FILE, "t/never", &m);
	trec_msg(&r, TM_LISTED, 0, 4, 0, NULL, 0);
	trec_msg(&r, TM_SKIP, 1, TS_CHANGED, 0, NULL, 0);
	trec_msg(&r, TM_FILE, 2, 0, 0, NULL, 0);
	trec_data(&r, 2, 0, "hello", 5);
	trec_msg(&r, TM_FILE_END, 2, 5, tree_hash_digest(h), NULL, 0);
	trec_msg(&r, TM_DONE, 0, 4, 0, NULL, 0);
	tree_hash_free(h);
	ret = hostile("da", 0, &r, 1, &a, NULL);
	is_int(ret, -EIO, "the receiver fails");
	is_int(a.fails, 1, "the sender hears of the file it never sent");
	ok(a.want[1] == TW_FULL && a.want[2] == TW_FULL && a.want[3] == TW_FULL,
	   "three small files asked for in full");
	ok(exists("da/t/sent") && content("da/t/sent") ==
	   XXH3_64bits("hello", 5), "the one sent arrived");
	ok(!exists("da/t/skipped") && !exists("da/t/never"),
	   "the others did not");
	ok(!find_tmp("da"), "no temporary file is left behind");
}

/* A sender of the first file-tree protocol: refused, and told why. */
static void test_old_version(void)
{
	struct trec r = { 0 };
	struct answers a;
	struct tbs_error e = { 0 };

	dir("d8", 0755);
	trec_msg(&r, TM_START, 0, 1, 0, NULL, 0);
	tbsi_le_put32(r.buf + TREE_MSG_HDR, 1); /* version 1 */
	trec_entry(&r, 0, TK_DIR, "t", NULL);
	trec_msg(&r, TM_LISTED, 0, 1, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 1, 0, NULL, 0);
	is_int(hostile("d8", 0, &r, 1, &a, &e), -EPROTO,
	       "version 1: the transfer is refused");
	ok(a.gave_up, "the sender is told (FAIL for the whole transfer)");
	ok(strstr(e.msg, "version 1, this receiver version 2") != NULL,
	   "the message names both versions");
	ok(!exists("d8/t"), "nothing was written");
}

/* A marker "made by the receiver" planted by another user: ignored. */
static void marker_of_another_user(void)
{
	struct trec_meta m = { .mode = 0777 };
	struct trec r = { 0 };
	struct answers a;
	char text[64], p[1024];

	if (geteuid()) {
		tap_skip("needs root to make another user's files");
		return;
	}
	dir("d9", 0755);
	dir("d9/x", 0700);
	snprintf(text, sizeof(text), "tbstream directory 1 inode %llu\n",
		 (unsigned long long)st("d9/x").st_ino);
	put("d9/x/.tbs-dir", text, strlen(text), 0);
	pathof(p, sizeof(p), "d9/x/.tbs-dir");
	if (chown(p, 65534, 65534))
		perror(p);
	trec_msg(&r, TM_START, 0, 1, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "x", &m);
	trec_msg(&r, TM_LISTED, 0, 1, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 1, 0, NULL, 0);
	hostile("d9", 0, &r, 1, &a, NULL);
	is_int(st("d9/x").st_mode & 07777, 0700,
	       "another user's marker does not make a directory the "
	       "receiver's");
}

/* Directories that were there keep their owner and mode. */
static void test_existing_dirs(void)
{
	struct trec_meta home = { .mode = 06777, .uid = 0 };
	struct trec_meta ssh = { .mode = 0777 };
	struct trec r = { 0 };
	struct answers a;
	char p[1024];

	dir("d6", 0755);
	dir("d6/home", 0700);
	dir("d6/home/.ssh", 0700);
	pathof(p, sizeof(p), "d6/home");
	if (!geteuid() && chown(p, 1234, 1234))
		perror(p);
	trec_msg(&r, TM_START, 0, 2, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "home", &home);
	trec_entry(&r, 1, TK_DIR, "home/.ssh", &ssh);
	trec_msg(&r, TM_LISTED, 0, 2, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 2, 0, NULL, 0);
	is_int(hostile("d6", TBS_TREE_UPDATE, &r, 1, &a, NULL), 0,
	       "a transfer into existing directories succeeds");
	is_int(st("d6/home").st_mode & 07777, 0700,
	       "an existing directory keeps its mode");
	is_int(st("d6/home/.ssh").st_mode & 07777, 0700,
	       "and so does one beneath it");
	if (!geteuid())
		is_int(st("d6/home").st_uid, 1234, "and its owner");
	hostile("d6", TBS_TREE_OVERWRITE, &r, 1, &a, NULL);
	is_int(st("d6/home/.ssh").st_mode & 07777, 0777,
	       "with --overwrite they are changed");
	marker_of_another_user();
}

/* --update: an older symbolic link does not replace a newer file. */
static void test_update_symlink(void)
{
	struct trec_meta old = { .mtime = 1000, .target = "elsewhere" };
	struct trec_meta newer = { .mtime = 3000, .target = "elsewhere" };
	struct trec r = { 0 };
	struct answers a;
	uint64_t before;

	dir("d7", 0755);
	put("d7/f", "newer file\n", 11, 2000);
	put("d7/g", "older file\n", 11, 2000);
	before = content("d7/f");
	trec_msg(&r, TM_START, 0, 2, 0, NULL, 0);
	trec_entry(&r, 0, TK_SYMLINK, "f", &old);
	trec_entry(&r, 1, TK_SYMLINK, "g", &newer);
	trec_msg(&r, TM_LISTED, 0, 2, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 2, 0, NULL, 0);
	is_int(hostile("d7", TBS_TREE_UPDATE, &r, 1, &a, NULL), 0,
	       "--update: the transfer succeeds");
	ok(S_ISREG(st("d7/f").st_mode) && content("d7/f") == before,
	   "the newer file is kept");
	ok(S_ISLNK(st("d7/g").st_mode), "an older one is replaced");
}

/* A hard link to a file kept because it is newer here is not made: the
 * sender only claimed an old time for it. */
static void test_link_existing(void)
{
	struct trec_meta secret = { .size = 7, .mtime = 1 };
	struct trec_meta hl = { .link = 1 };
	struct trec r = { 0 };
	struct answers a;

	dir("d8", 0755);
	dir("d8/priv", 0700);
	put("d8/priv/secret", "hidden\n", 7, 1000);
	trec_msg(&r, TM_START, 0, 3, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "priv", NULL);
	trec_entry(&r, 1, TK_FILE, "priv/secret", &secret);
	trec_entry(&r, 2, TK_HARDLINK, "public", &hl);
	trec_msg(&r, TM_LISTED, 0, 3, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, 3, 0, NULL, 0);
	is_int(hostile("d8", TBS_TREE_UPDATE, &r, 1, &a, NULL), -EIO,
	       "a link to a file kept as it was is refused");
	ok(!exists("d8/public") && st("d8/priv/secret").st_nlink == 1,
	   "no second name for it");
	is_int(st("d8/priv").st_mode & 07777, 0700,
	       "its directory keeps its mode");
}

/*
 * Durability: every file system the receiver writes to is synced before
 * it confirms.  syncfs() is taken over here to see which ones it syncs.
 */
static dev_t synced[8];
static int nsynced;

int syncfs(int fd)
{
	struct stat sb;
	int i;

	if (!fstat(fd, &sb)) {
		for (i = 0; i < nsynced && synced[i] != sb.st_dev; i++)
			;
		if (i == nsynced && nsynced < 8)
			synced[nsynced++] = sb.st_dev;
	}
	return (int)syscall(SYS_syncfs, fd);
}

static void test_mount_inside(void)
{
	struct trec_meta f = { .size = 4, .mtime = 1000 };
	struct tree_hash *h = tree_hash_new();
	struct trec r = { 0 };
	struct answers a;
	char p[1024];
	bool seen = false;
	int i;

	dir("d10", 0755);
	dir("d10/mnt", 0755);
	pathof(p, sizeof(p), "d10/mnt");
	if (geteuid() || mount("tmpfs", p, "tmpfs", 0, "size=1m")) {
		tap_skip("needs root to mount a file system inside");
		tree_hash_free(h);
		return;
	}
	tree_hash_update(h, "data", 4);
	trec_msg(&r, TM_START, 0, 2, 0, NULL, 0);
	trec_entry(&r, 0, TK_DIR, "mnt", NULL);
	trec_entry(&r, 1, TK_FILE, "mnt/f", &f);
	trec_msg(&r, TM_LISTED, 0, 2, 0, NULL, 0);
	trec_msg(&r, TM_FILE, 1, 0, 0, NULL, 0);
	trec_data(&r, 1, 0, "data", 4);
	trec_msg(&r, TM_FILE_END, 1, 4, tree_hash_digest(h), NULL, 0);
	trec_msg(&r, TM_DONE, 0, 2, 0, NULL, 0);
	nsynced = 0;
	is_int(hostile("d10", 0, &r, 1, &a, NULL), 0,
	       "a file into a file system mounted inside the directory");
	for (i = 0; i < nsynced; i++)
		seen |= synced[i] == st("d10/mnt/f").st_dev;
	ok(seen, "that file system was synced before the file was confirmed");
	umount2(p, MNT_DETACH);
	tree_hash_free(h);
}

/*
 * 8 TiB of zeros announced in a few bytes (a file of that size with no
 * data): hashing them one by one would take hours; the hash tree takes
 * no time.  The alarm of main() fails the test if it hangs.
 */
static void test_huge_zeros(void)
{
	struct trec_meta z = { .size = 1ull << 43, .mtime = 1000 };
	struct tree_hash *h = tree_hash_new();
	struct trec r = { 0 };
	struct answers a;

	dir("d11", 0755);
	tree_hash_zeros(h, z.size);
	trec_msg(&r, TM_START, 0, 1, 0, NULL, 0);
	trec_entry(&r, 0, TK_FILE, "sparse", &z);
	trec_msg(&r, TM_LISTED, 0, 1, 0, NULL, 0);
	trec_msg(&r, TM_FILE, 0, 0, 0, NULL, 0);
	trec_msg(&r, TM_FILE_END, 0, z.size, tree_hash_digest(h), NULL, 0);
	trec_msg(&r, TM_DONE, 0, 1, 0, NULL, 0);
	is_int(hostile("d11", 0, &r, 1, &a, NULL), 0,
	       "a file of 8 TiB of zeros is received at once");
	ok(st("d11/sparse").st_size == (off_t)z.size &&
		   st("d11/sparse").st_blocks == 0,
	   "as a sparse file");
	tree_hash_free(h);
}

/* ---- the sender, against a receiver driven by hand ---- */

struct htx {
	struct tbs_session *s;
	const char *path;
	int r;
	struct tbs_error e;
};

static void *htx_main(void *arg)
{
	struct htx *h = arg;

	h->r = tbs_session_start(h->s);
	if (!h->r)
		h->r = tbs_tree_send(h->s, &h->path, 1, NULL, NULL, &h->e);
	tbs_session_close(h->s);
	return NULL;
}

/* What the sender sent, and the receiver's hand. */
struct seen {
	void (*act)(int step); /* 0: after the list, 1: at the first data */
	struct tbs_session *s;
	int files[8], nfiles, data, ends, skips;
	bool done;
};

static void answer(struct seen *w, uint8_t type, const void *b, size_t n)
{
	uint8_t rec[64];

	tbs_session_send(w->s, TBS_TREE_APP, rec,
			 tree_msg_put(rec, sizeof(rec), type, b, n), WAIT_MS);
}

static int on_sent(void *arg, const struct tree_msg *m)
{
	struct seen *w = arg;
	uint8_t b[24] = { 0 };
	int i;

	if (m->type == TM_ENTRY && m->e.kind == TK_FILE && w->nfiles < 8)
		w->files[w->nfiles++] = (int)m->e.index;
	if (m->type == TM_LISTED) {
		w->act(0);
		for (i = 0; i < w->nfiles; i++) {
			tbsi_le_put32(b, (uint32_t)w->files[i]);
			b[4] = TW_FULL;
			answer(w, TM_WANT, b, 24);
		}
	}
	if (m->type == TM_DATA && !w->data++)
		w->act(1);
	w->ends += m->type == TM_FILE_END;
	w->skips += m->type == TM_SKIP;
	if (m->type == TM_DONE) {
		memset(b, 0, 24);
		answer(w, TM_FINISH, b, 24);
		w->done = true;
	}
	return 0;
}

/* Sends @src to a receiver that wants every file and calls @act. */
static int send_to_hand(const char *src, void (*act)(int), struct seen *w,
			struct tbs_error *e)
{
	struct tbs_session_opts o =
		TBS_OPTS_INIT(tbs_session_opts, .handshake_ms = WAIT_MS,
			      .idle_ms = WAIT_MS, .confirm_ms = WAIT_MS);
	static uint8_t buf[TREE_REC_MAX];
	struct htx h = { .path = src };
	pthread_t t;
	ssize_t n;
	int sv[2];

	*w = (struct seen){ .act = act };
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	o.role = TBS_ROLE_SENDER;
	tbs_session_new(&h.s, sv[0], sv[0], &o);
	o.role = TBS_ROLE_RECEIVER;
	tbs_session_new(&w->s, sv[1], sv[1], &o);
	pthread_create(&t, NULL, htx_main, &h);
	tbs_session_start(w->s);
	while (!w->done &&
	       (n = tbs_session_recv(w->s, NULL, buf, sizeof(buf), WAIT_MS)) >
		       0)
		tree_parse_record(buf, (size_t)n, on_sent, w, NULL, 0);
	while (tbs_session_recv(w->s, NULL, buf, sizeof(buf), WAIT_MS) > 0)
		;
	tbs_session_confirm(w->s);
	tbs_session_close(w->s);
	pthread_join(t, NULL);
	tbs_session_free(w->s);
	tbs_session_free(h.s);
	close(sv[0]);
	close(sv[1]);
	printf("#   sender: %d %s\n", h.r, h.e.msg);
	*e = h.e;
	return h.r;
}

static char victim[1024];

static void to_fifo(int step)
{
	if (step == 0 && (unlink(victim) || mkfifo(victim, 0644)))
		perror(victim);
}

static void shrink(int step)
{
	if (step == 0 && truncate(victim, 3))
		perror(victim);
}

static void rewrite(int step)
{
	int fd = step == 1 ? open(victim, O_WRONLY) : -1;

	if (fd >= 0 && pwrite(fd, "NEW", 3, 30u << 20) != 3)
		perror(victim);
	if (fd >= 0)
		close(fd);
}

/* A source file replaced by a FIFO after the list: not a hang. */
static void test_sender_changes(void)
{
	static uint8_t big[32u << 20];
	struct tbs_error e;
	struct seen w;

	dir("s", 0755);
	put("s/f", "content\n", 8, 1000);
	pathof(victim, sizeof(victim), "s/f");
	is_int(send_to_hand(victim, to_fifo, &w, &e), -EIO,
	       "a file that became a FIFO: the sender fails, no hang");
	ok(w.skips == 1 && !w.ends, "it was skipped, not sent");
	ok(strstr(e.msg, "changed since it was listed") != NULL,
	   "the verdict says why by itself");

	unlink(victim);
	put("s/f", "long enough content\n", 20, 1000);
	is_int(send_to_hand(victim, shrink, &w, &e), -EIO,
	       "a file that shrank after the list: the sender fails");
	ok(w.skips == 1 && !w.ends && strstr(e.msg, "changed"),
	   "it was skipped, and the verdict says why");

	memset(big, 'o', sizeof(big));
	put("s/f", big, sizeof(big), 1000);
	is_int(send_to_hand(victim, rewrite, &w, &e), -EIO,
	       "a file rewritten while sent: the sender fails");
	ok(w.data > 0 && w.skips == 1 && !w.ends,
	   "what was sent of it is not ended as the file");
	ok(strstr(e.msg, "changed while it was being read") != NULL,
	   "and the verdict says so");
}

int main(void)
{
	char cmd[300];

	alarm(120);
	snprintf(top, sizeof(top), "%s/test-tree-hostile.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top))
		return 1;
	test_planted_by_sender();
	test_planted_hardlink();
	test_planted_other();
	test_other_user();
	test_resume_proof();
	test_ahead_unsent();
	test_old_version();
	test_existing_dirs();
	test_update_symlink();
	test_link_existing();
	test_mount_inside();
	test_huge_zeros();
	test_sender_changes();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (system(cmd))
		return 1;
	return tap_done();
}
