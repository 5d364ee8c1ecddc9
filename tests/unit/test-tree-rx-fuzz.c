// SPDX-License-Identifier: MIT
/*
 * Runs the fuzz target of the file-tree receiver's file-system state
 * machine (fuzz/tree-rx-target.h) without libFuzzer: over every file of
 * its corpus, then over deterministic random transfers made of the names
 * that are there (a file, a directory, links out of the directory, a
 * hard link to a file outside, the receiver's own '.tbs-' names), with
 * every kind of entry, claims of "same", data, wrong hashes, and bits
 * flipped.  Also checks that the receiver's memory grows with the names
 * it receives, not with whole paths.
 * "test-tree-rx-fuzz --write-corpus DIR" writes the seeds.
 */
#include <stdio.h>

#include "../../fuzz/tree-rx-target.h"
#include "../fuzz-replay.h"
#include "../tap.h"
#include "../tree-records.h"

#define ITERATIONS 1500
#define INPUT_CAP 16384

/* Names that are there, new ones, the receiver's own, bad ones. */
static const char *const pool[] = {
	"keep", "dir",	"inner", "link", "abs",	      "hl",
	"new",	"f",	"g",	 "o",	 ".tbs-dir", ".tbs-6e2b22ed3e3c4b8f.part",
	"..",	"od",
};

#define POOL (sizeof(pool) / sizeof(pool[0]))

/* The directories listed so far, to put entries in. */
static char dirs[8][TREE_PATH_MAX];
static int ndirs;

/* A path: a name at the top or in a directory listed before. */
static const char *pick_path(uint64_t *st)
{
	static char p[TREE_PATH_MAX];
	const char *name = pool[rnd(st) % POOL];

	if (!ndirs || rnd(st) % 3 == 0)
		return name;
	snprintf(p, sizeof(p), "%.200s/%s", dirs[rnd(st) % ndirs], name);
	return p;
}

static uint32_t pick_kind(uint64_t *st)
{
	static const uint8_t kinds[] = { TK_FILE, TK_FILE,	TK_FILE,
					 TK_DIR,  TK_DIR,	TK_SYMLINK,
					 TK_HARDLINK, TK_FIFO };

	return kinds[rnd(st) % sizeof(kinds)];
}

/* One entry of a made-up transfer, and its data when it is a file. */
static void one_entry(struct trec *r, uint32_t i, uint64_t *st, int *files,
		      int *nfiles)
{
	static const char *const targets[] = { "../outside/o", "/etc",
					       "keep", "x" };
	struct trec_meta m = {
		.mode = rnd(st) % 4 ? 0644 : rnd(st) & 07777,
		.uid = rnd(st) % 3 ? 0 : 1000 + rnd(st) % 3,
		.size = rnd(st) % 4 ? rnd(st) % 9 : 5,
		.mtime = rnd(st) % 2 ? 1000 : rnd(st) % 5000,
	};
	uint32_t kind = pick_kind(st);
	const char *path;

	if (kind == TK_SYMLINK)
		m.target = targets[rnd(st) % 4];
	if (kind == TK_HARDLINK)
		m.link = i ? rnd(st) % i : 0;
	if (kind != TK_FILE)
		m.size = 0;
	path = pick_path(st);
	trec_entry(r, i, (uint8_t)kind, path, &m);
	if (kind == TK_DIR && ndirs < 8 && strlen(path) < 200)
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", path);
	if (kind == TK_FILE && *nfiles < 16)
		files[(*nfiles)++] = (int)(i | (uint32_t)m.size << 16);
}

/* FILE, DATA, FILE_END (a right or a wrong hash) or SKIP for a file. */
static void one_file(struct trec *r, int f, uint64_t *st)
{
	static const char *const data[] = { "keep\n", "outside\n", "xxxxxxxx",
					    "inner\n" };
	uint32_t idx = (uint32_t)f & 0xffff, size = (uint32_t)f >> 16;
	const char *d = data[rnd(st) % 4];
	struct tree_hash *h = tree_hash_new();
	size_t n = strlen(d) < size ? strlen(d) : size;

	if (rnd(st) % 4 == 0) {
		trec_msg(r, TM_SKIP, idx, rnd(st) % 2 ? TS_CHANGED : TS_UNREADABLE, 0,
			 NULL, 0);
	} else {
		trec_msg(r, TM_FILE, idx, 0, 0, NULL, 0);
		if (n)
			trec_data(r, idx, 0, d, n);
		tree_hash_update(h, d, n);
		tree_hash_zeros(h, size - n);
		trec_msg(r, TM_FILE_END, idx, size,
			 rnd(st) % 5 ? tree_hash_digest(h) : rnd(st), NULL, 0);
	}
	tree_hash_free(h);
}

/* Appends record @r to the input as a u16 length and its bytes. */
static size_t put_record(uint8_t *buf, size_t n, const struct trec *r)
{
	if (n + 2 + r->len > INPUT_CAP)
		return n;
	tbsi_le_put16(buf + n, (uint16_t)r->len);
	memcpy(buf + n + 2, r->buf, r->len);
	return n + 2 + r->len;
}

static size_t make_input(uint8_t *buf, uint64_t *st)
{
	static struct trec r;
	int files[16], nfiles = 0, i, k = 1 + (int)(rnd(st) % 8);
	size_t n = 1;

	buf[0] = (uint8_t)(rnd(st) % 8);
	ndirs = 0;
	r.len = 0;
	trec_msg(&r, TM_START, 0, (uint64_t)k + (rnd(st) % 8 == 0), 0, NULL,
		 0);
	for (i = 0; i < k; i++)
		one_entry(&r, (uint32_t)i, st, files, &nfiles);
	trec_msg(&r, TM_LISTED, 0, (uint64_t)k, 0, NULL, 0);
	n = put_record(buf, n, &r);
	for (i = 0; i < nfiles; i++) {
		r.len = 0;
		one_file(&r, files[i], st);
		n = put_record(buf, n, &r);
	}
	r.len = 0;
	trec_msg(&r, TM_DONE, 0, (uint64_t)k, 0, NULL, 0);
	n = put_record(buf, n, &r);
	for (i = (int)(rnd(st) % 3); i-- > 0;) /* a flipped bit now and then */
		buf[1 + rnd(st) % (n - 1)] ^= (uint8_t)(1u << (rnd(st) % 8));
	return n;
}

static int replay_corpus(const char *dir)
{
	static uint8_t buf[INPUT_CAP * 4];

	return fuzz_replay_corpus(dir, buf, sizeof(buf), fuzz_rx_one);
}

static int write_corpus(const char *dir)
{
	static uint8_t buf[INPUT_CAP];

	return fuzz_write_corpus(dir, buf, make_input);
}

/*
 * Directories of long names, one inside the other, then many files in the
 * deepest: each file's path on the wire is 4 KiB, what is kept of it its
 * name.  And no more entries than the limit.
 */
static void test_memory(void)
{
	char name[251], path[TREE_PATH_MAX], file[TREE_PATH_MAX];
	struct tbs_tree_opts o =
		TBS_OPTS_INIT(tbs_tree_opts, .max_entries = 1015);
	struct tbs_error err = { 0 };
	static struct trec r;
	struct rx rx;
	uint32_t i, idx = 0;
	size_t len = 0;
	int ret = 0;

	memset(name, 'n', 250);
	name[250] = 0;
	snprintf(path, sizeof(path), "%s/mem", fuzz_rx_top);
	r.len = 0;
	trec_msg(&r, TM_START, 0, 15 + 1000, 0, NULL, 0);
	for (i = 0; i < 15; i++) {
		len += (size_t)snprintf(file + len, sizeof(file) - len, "%s%s",
					i ? "/" : "", name);
		trec_entry(&r, idx++, TK_DIR, file, NULL);
	}
	ret |= rx_open(&rx, path, &o, fuzz_rx_discard, NULL, &err);
	ret |= rx_record(&rx, TBS_TREE_APP, r.buf, r.len);
	for (i = 0; i < 1000 && !ret; i++) {
		struct trec_meta m = { .size = 0 };

		r.len = 0;
		snprintf(file + len, sizeof(file) - len, "/f%u", i);
		trec_entry(&r, idx++, TK_FILE, file, &m);
		ret = rx_record(&rx, TBS_TREE_APP, r.buf, r.len);
	}
	is_int(ret, 0, "1000 files with 3.8 KiB paths are taken");
	ok(rx.darena_len + rx.warena_len < 15 * 251 + 1000 * 8,
	   "the receiver keeps %zu bytes of names for 3.8 MiB of paths",
	   rx.darena_len + rx.warena_len);
	r.len = 0;
	trec_entry(&r, idx, TK_DIR, "one-too-many", NULL);
	is_int(rx_record(&rx, TBS_TREE_APP, r.buf, r.len), -EPROTO,
	   "an entry beyond the limit of entries is refused");
	rx_close(&rx);
}

/*
 * 30 000 files listed, sent and ended as a sender does, in 100
 * directories: what the receiver keeps of them does not grow with their
 * number (the window holds a batch waiting for its commit, no more).
 */
static void test_window(void)
{
	struct tbs_error err = { 0 };
	static struct trec r;
	char path[TREE_PATH_MAX], file[64];
	struct tree_hash *h = tree_hash_new();
	uint32_t i, idx = 0;
	size_t most = 0;
	struct rx rx;
	int ret;

	snprintf(path, sizeof(path), "%s/window", fuzz_rx_top);
	ret = rx_open(&rx, path, NULL, fuzz_rx_discard, NULL, &err);
	r.len = 0;
	trec_msg(&r, TM_START, 0, 0, 0, NULL, 0);
	for (i = 0; i < 30000 && !ret; i++) {
		struct trec_meta m = { .size = 0 };

		if (i % 300 == 0) {
			snprintf(file, sizeof(file), "d%u", i / 300);
			trec_entry(&r, idx++, TK_DIR, file, NULL);
		}
		snprintf(file, sizeof(file), "d%u/f%u", i / 300, i);
		trec_entry(&r, idx, TK_FILE, file, &m);
		trec_msg(&r, TM_FILE, idx, 0, 0, NULL, 0);
		trec_msg(&r, TM_FILE_END, idx++, 0, tree_hash_digest(h), NULL,
			 0);
		if (r.len > TREE_REC_MAX - 1024) {
			ret = rx_record(&rx, TBS_TREE_APP, r.buf, r.len);
			r.len = 0;
		}
		if (rx.n - rx.base > most)
			most = rx.n - rx.base;
	}
	trec_msg(&r, TM_LISTED, 0, idx, 0, NULL, 0);
	trec_msg(&r, TM_DONE, 0, idx, 0, NULL, 0);
	if (!ret)
		ret = rx_record(&rx, TBS_TREE_APP, r.buf, r.len);
	if (!ret)
		ret = rx_end(&rx);
	is_int(ret, 0, "30000 files in 100 directories are received");
	is_int(rx.st.files_done, 30000, "and confirmed");
	ok(most <= 8192 + 1024 && rx.win_cap <= 16384,
	   "the receiver kept at most %zu entries at once (window %zu)", most,
	   rx.win_cap);
	ok(rx.warena_cap <= (1u << 20),
	   "and %zu bytes of their names", rx.warena_cap);
	rx_close(&rx);
	tree_hash_free(h);
}

int main(int argc, char **argv)
{
	static uint8_t buf[INPUT_CAP];
	uint64_t st = 1;
	int i, n;

	if (argc == 3 && !strcmp(argv[1], "--write-corpus"))
		return write_corpus(argv[2]);
	/* In memory when there is room: every commit syncs its file system. */
	if (!access("/dev/shm", W_OK))
		setenv("TMPDIR", "/dev/shm", 1);
	if (fuzz_rx_init())
		return 1;
	n = replay_corpus(FUZZ_CORPUS);
	ok(n > 0, "replayed %d corpus inputs from %s", n, FUZZ_CORPUS);
	for (i = 0; i < ITERATIONS; i++)
		fuzz_rx_one(buf, make_input(buf, &st));
	ok(1, "%d random transfers changed nothing they may not change",
	   ITERATIONS);
	ok(fuzz_rx_completed > ITERATIONS / 10,
	   "%lu of them reached their end", fuzz_rx_completed);
	test_memory();
	test_window();
	fuzz_rx_fini();
	return tap_done();
}
