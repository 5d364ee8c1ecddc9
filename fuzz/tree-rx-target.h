/* SPDX-License-Identifier: MIT */
/*
 * The file-tree receiver's file-system state machine under fuzzing, shared
 * by the libFuzzer harness (fuzz-tree-rx.c) and by the replay test that
 * runs in the normal test suite (tests/unit/test-tree-rx-fuzz.c).
 *
 * Each input is a transfer as a sender would make it: a flag byte (bit 0
 * --overwrite, bit 1 --update, bit 2 commit after every record, bit 3
 * --delete, bit 4 --dry-run), then
 * records, each a u16 length and that many bytes.  They are fed to the
 * receiver (rx_record()) over a directory laid out afresh for every input:
 *
 *   run/outside/o            a file outside the receiving directory
 *   run/outside/od/          a directory outside it
 *   run/in/keep              a file of the receiver (mode 0640, old time)
 *   run/in/dir/inner         a directory (0700) with a file
 *   run/in/link -> ../outside, run/in/abs -> <absolute>/outside
 *   run/in/hl                a hard link to run/outside/o
 *
 * After the input, whatever it was, the target checks, and traps when one
 * fails: nothing outside run/in changed (names, kinds, sizes, contents,
 * modes, owners, times); without a flag, or in a dry run, nothing that
 * was in run/in changed (the same inode with the same content, mode,
 * owner and time);
 * with a flag, no file that was there was written in place (its inode,
 * held open, still has its content).
 */
#ifndef TBS_FUZZ_TREE_RX_TARGET_H
#define TBS_FUZZ_TREE_RX_TARGET_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../lib/tree-recv.h"

#define FUZZ_CHECK(c)                                                          \
	do {                                                                   \
		if (!(c))                                                      \
			__builtin_trap();                                      \
	} while (0)

#define FUZZ_RX_MAX 64 /* entries of a snapshot */

/* What a directory tree looked like. */
struct fuzz_node {
	char path[128];
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t size;
	ino_t ino;
	struct timespec mtime;
	uint64_t content; /* a file's bytes or a link's target, hashed */
};

struct fuzz_snap {
	struct fuzz_node n[FUZZ_RX_MAX];
	int count;
};

static char fuzz_rx_top[256]; /* the run directory's parent */
static unsigned long fuzz_rx_completed; /* inputs that reached DONE */

static inline uint64_t fuzz_content(int dfd, const char *name,
				    const struct stat *sb)
{
	char buf[4096];
	ssize_t n = 0;
	int fd;

	if (S_ISLNK(sb->st_mode))
		n = readlinkat(dfd, name, buf, sizeof(buf));
	if (!S_ISREG(sb->st_mode))
		return n > 0 ? XXH3_64bits(buf, (size_t)n) : 0;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return n < 0 ? 1 : XXH3_64bits(buf, (size_t)n);
}

static inline void fuzz_node_set(struct fuzz_node *n, int dfd,
				 const char *name, const struct stat *sb)
{
	n->mode = sb->st_mode;
	n->uid = sb->st_uid;
	n->gid = sb->st_gid;
	n->size = S_ISDIR(sb->st_mode) ? 0 : sb->st_size;
	n->ino = sb->st_ino;
	n->mtime = sb->st_mtim;
	n->content = fuzz_content(dfd, name, sb);
}

/* Records everything under @dfd (relative names in @prefix). */
static inline void fuzz_snap_dir(struct fuzz_snap *s, int dfd,
				 const char *prefix)
{
	DIR *d = fdopendir(dup(dfd));
	struct dirent *de;
	struct stat sb;
	int sub;

	FUZZ_CHECK(d);
	while ((de = readdir(d)) && s->count < FUZZ_RX_MAX) {
		struct fuzz_node *n = &s->n[s->count];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW))
			continue;
		snprintf(n->path, sizeof(n->path), "%s/%.100s", prefix,
			 de->d_name);
		fuzz_node_set(n, dfd, de->d_name, &sb);
		s->count++;
		if (!S_ISDIR(sb.st_mode))
			continue;
		sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
						      O_NOFOLLOW);
		if (sub >= 0) {
			fuzz_snap_dir(s, sub, n->path);
			close(sub);
		}
	}
	closedir(d);
}

static inline void fuzz_snap(struct fuzz_snap *s, const char *rel)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", fuzz_rx_top, rel);
	s->count = 0;
	fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	FUZZ_CHECK(fd >= 0);
	fuzz_snap_dir(s, fd, "");
	close(fd);
}

static inline const struct fuzz_node *fuzz_find(const struct fuzz_snap *s,
						const char *path)
{
	int i;

	for (i = 0; i < s->count; i++)
		if (!strcmp(s->n[i].path, path))
			return &s->n[i];
	return NULL;
}

/* What is at @path (as a snapshot names it) under run/in now, or NULL. */
static inline const struct fuzz_node *fuzz_now(const char *path,
					       struct fuzz_node *n)
{
	char p[512];
	struct stat sb;
	int fd;

	snprintf(p, sizeof(p), "%s/run/in%s", fuzz_rx_top, path);
	if (lstat(p, &sb))
		return NULL;
	*strrchr(p, '/') = 0;
	fd = open(p, O_RDONLY | O_DIRECTORY);
	FUZZ_CHECK(fd >= 0);
	fuzz_node_set(n, fd, strrchr(path, '/') + 1, &sb);
	close(fd);
	return n;
}

/* Whether @b is @a unchanged (a directory's time changes with entries). */
static inline bool fuzz_same(const struct fuzz_node *a,
			     const struct fuzz_node *b)
{
	return b && a->mode == b->mode && a->uid == b->uid &&
	       a->gid == b->gid && a->size == b->size && a->ino == b->ino &&
	       a->content == b->content &&
	       (S_ISDIR(a->mode) ||
		(a->mtime.tv_sec == b->mtime.tv_sec &&
		 a->mtime.tv_nsec == b->mtime.tv_nsec));
}

/* ---- the directory each input starts from ---- */

static inline void fuzz_file(const char *rel, const char *text, mode_t mode)
{
	struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", fuzz_rx_top, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, mode);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	futimens(fd, ts);
	close(fd);
}

static inline void fuzz_layout(void)
{
	char p[512], q[512];

	snprintf(p, sizeof(p), "%s/run", fuzz_rx_top);
	FUZZ_CHECK(!mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/run/outside", fuzz_rx_top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/run/outside/od", fuzz_rx_top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/run/in", fuzz_rx_top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/run/in/dir", fuzz_rx_top);
	mkdir(p, 0700);
	fuzz_file("run/outside/o", "outside\n", 0644);
	fuzz_file("run/in/keep", "keep\n", 0640);
	fuzz_file("run/in/dir/inner", "inner\n", 0600);
	snprintf(p, sizeof(p), "%s/run/outside/o", fuzz_rx_top);
	snprintf(q, sizeof(q), "%s/run/in/hl", fuzz_rx_top);
	FUZZ_CHECK(!link(p, q));
	snprintf(q, sizeof(q), "%s/run/in/link", fuzz_rx_top);
	FUZZ_CHECK(!symlink("../outside", q));
	snprintf(p, sizeof(p), "%s/run/outside", fuzz_rx_top);
	snprintf(q, sizeof(q), "%s/run/in/abs", fuzz_rx_top);
	FUZZ_CHECK(!symlink(p, q));
}

/* Removes @name in @dfd and everything beneath it, following nothing. */
static inline void fuzz_rm(int dfd, const char *name)
{
	struct dirent *de;
	int fd;
	DIR *d;

	if (!unlinkat(dfd, name, 0) || errno != EISDIR)
		return;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	d = fd < 0 ? NULL : fdopendir(fd);
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			fuzz_rm(fd, de->d_name);
	if (d)
		closedir(d);
	unlinkat(dfd, name, AT_REMOVEDIR);
}

/* ---- one input ---- */

static inline int fuzz_rx_discard(void *arg, const uint8_t *buf, size_t len)
{
	(void)arg;
	(void)buf;
	(void)len;
	return 0;
}

/* Feeds the records of @data to @rx; stops where the receiver stops. */
static inline void fuzz_rx_feed(struct rx *rx, const uint8_t *data,
				size_t size, bool idle)
{
	size_t pos = 1, n;

	while (pos + 2 <= size) {
		n = tbsi_le_get16(data + pos);
		pos += 2;
		n = n < size - pos ? n : size - pos;
		if (rx_record(rx, TBS_TREE_APP, data + pos, n) ||
		    (idle && rx_idle(rx)))
			return;
		pos += n;
		if (rx->done) {
			fuzz_rx_completed++;
			rx_end(rx);
			return;
		}
	}
}

/* Held open: the receiver must never write into these inodes. */
struct fuzz_held {
	int fd[FUZZ_RX_MAX];
	struct fuzz_node was[FUZZ_RX_MAX];
	int count;
};

static inline void fuzz_hold(struct fuzz_held *h, const struct fuzz_snap *s)
{
	char p[512];
	int i;

	h->count = 0;
	for (i = 0; i < s->count; i++) {
		if (!S_ISREG(s->n[i].mode))
			continue;
		snprintf(p, sizeof(p), "%s/run/in%s", fuzz_rx_top,
			 s->n[i].path);
		h->fd[h->count] = open(p, O_RDONLY | O_NOFOLLOW);
		h->was[h->count++] = s->n[i];
	}
}

static inline void fuzz_check_held(struct fuzz_held *h)
{
	struct stat sb;
	char buf[4096];
	ssize_t n;
	int i;

	for (i = 0; i < h->count; i++) {
		FUZZ_CHECK(h->fd[i] >= 0 && !fstat(h->fd[i], &sb));
		n = pread(h->fd[i], buf, sizeof(buf), 0);
		FUZZ_CHECK(sb.st_size == h->was[i].size && n >= 0 &&
			   XXH3_64bits(buf, (size_t)n) == h->was[i].content);
		close(h->fd[i]);
	}
}

static inline int fuzz_rx_one(const uint8_t *data, size_t size)
{
	struct tbs_tree_opts o = TBS_OPTS_INIT(tbs_tree_opts);
	struct fuzz_snap out0, out1, in0;
	struct fuzz_node now;
	struct fuzz_held held;
	struct tbs_error err = { 0 };
	char dir[512];
	struct rx rx;
	bool kept;
	int i, top;

	if (!size)
		return 0;
	o.flags = data[0] & (TBS_TREE_OVERWRITE | TBS_TREE_UPDATE);
	o.flags |= (data[0] & 8 ? TBS_TREE_DELETE : 0) |
		   (data[0] & 16 ? TBS_TREE_DRY_RUN : 0);
	kept = !o.flags || (o.flags & TBS_TREE_DRY_RUN);
	fuzz_layout();
	fuzz_snap(&out0, "run/outside");
	fuzz_snap(&in0, "run/in");
	fuzz_hold(&held, &in0);
	snprintf(dir, sizeof(dir), "%s/run/in", fuzz_rx_top);
	if (!rx_open(&rx, dir, &o, fuzz_rx_discard, NULL, &err))
		fuzz_rx_feed(&rx, data, size, data[0] & 4);
	rx_close(&rx);

	fuzz_snap(&out1, "run/outside");
	FUZZ_CHECK(out1.count == out0.count);
	for (i = 0; i < out0.count; i++)
		FUZZ_CHECK(fuzz_same(&out0.n[i], fuzz_find(&out1, out0.n[i].path)));
	for (i = 0; kept && i < in0.count; i++)
		FUZZ_CHECK(fuzz_same(&in0.n[i], fuzz_now(in0.n[i].path, &now)));
	fuzz_check_held(&held);
	top = open(fuzz_rx_top, O_RDONLY | O_DIRECTORY);
	fuzz_rm(top, "run");
	close(top);
	return 0;
}

/* A directory for the runs; call once. */
static inline int fuzz_rx_init(void)
{
	snprintf(fuzz_rx_top, sizeof(fuzz_rx_top), "%s/fuzz-tree-rx.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(fuzz_rx_top) ? 0 : -errno;
}

static inline void fuzz_rx_fini(void)
{
	int fd = open(fuzz_rx_top, O_RDONLY | O_DIRECTORY);

	fuzz_rm(fd, ".");
	close(fd);
	rmdir(fuzz_rx_top);
}

#endif /* TBS_FUZZ_TREE_RX_TARGET_H */
