// SPDX-License-Identifier: MIT
/*
 * The file-tree sender's walk: every path given and everything beneath it,
 * depth first, the names of each directory sorted bytewise, one entry at
 * a time: its relative path, kind and metadata, and for a further name of
 * a file already listed (a hard link) the index of that first name.  Only
 * the directories on the current path are held (their sorted names), and
 * the files that have further names (to recognise those names), so that
 * the walk's memory does not grow with the number of entries.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-send.h"

static size_t ino_slot(const struct tx_ino *t, dev_t dev, ino_t ino, size_t cap)
{
	size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) & (cap - 1);

	while (t[i].used && (t[i].dev != dev || t[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return i;
}

static int ino_grow(struct tx *tx)
{
	size_t cap = tx->ino_cap ? tx->ino_cap * 2 : 1024, j;
	struct tx_ino *nt = calloc(cap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	for (j = 0; j < tx->ino_cap; j++)
		if (tx->inos[j].used)
			nt[ino_slot(nt, tx->inos[j].dev, tx->inos[j].ino,
				    cap)] = tx->inos[j];
	free(tx->inos);
	tx->inos = nt;
	tx->ino_cap = cap;
	return 0;
}

/* Hard links: the index of the first name of (dev, ino), or TREE_NONE. */
static uint32_t ino_find(const struct tx *tx, dev_t dev, ino_t ino)
{
	size_t i;

	if (!tx->ino_cap)
		return TREE_NONE;
	i = ino_slot(tx->inos, dev, ino, tx->ino_cap);
	return tx->inos[i].used ? tx->inos[i].index : TREE_NONE;
}

static int ino_add(struct tx *tx, dev_t dev, ino_t ino, uint32_t idx)
{
	size_t i;

	if (tx->nino * 2 >= tx->ino_cap && ino_grow(tx))
		return -ENOMEM;
	i = ino_slot(tx->inos, dev, ino, tx->ino_cap);
	tx->inos[i] = (struct tx_ino){
		.dev = dev, .ino = ino, .index = idx, .used = 1
	};
	tx->nino++;
	return 0;
}

/* A note of the walk (none in the first pass, which only counts). */
#define walk_note(w, ...)                                                      \
	do {                                                                   \
		if (!(w)->count_only)                                          \
			tx_notify(__VA_ARGS__);                                \
	} while (0)
#define walk_error(w, ...)                                                     \
	do {                                                                   \
		if (!(w)->count_only)                                          \
			tx_error(__VA_ARGS__);                                 \
	} while (0)

static int kind_of(struct tx *tx, struct tx_walk *w, const struct stat *sb)
{
	const char *path = w->path, *name = strrchr(path + w->rel, '/');

	name = name ? name + 1 : path + w->rel;
	if (tree_name_reserved((const uint8_t *)name, strlen(name))) {
		walk_note(w, tx,
			  "not sent: '%s' has a name that tbstream recv keeps "
			  "for its temporary files",
			  path);
		tx->st.warnings += !w->count_only;
		return 0;
	}
	if (S_ISREG(sb->st_mode))
		return TK_FILE;
	if (S_ISDIR(sb->st_mode))
		return TK_DIR;
	if (S_ISLNK(sb->st_mode))
		return TK_SYMLINK;
	if (!(tx->o.flags & TBS_TREE_SPECIALS) || S_ISSOCK(sb->st_mode)) {
		walk_note(w, tx, "not sent: '%s' is a %s%s", path,
			  S_ISSOCK(sb->st_mode) ? "socket" : "special file",
			  S_ISSOCK(sb->st_mode) ? "" : " (--specials sends it)");
		tx->st.warnings += !w->count_only;
		return 0;
	}
	if (S_ISFIFO(sb->st_mode))
		return TK_FIFO;
	return S_ISCHR(sb->st_mode) ? TK_CHR : TK_BLK;
}

static int read_target(struct tx_entry *te, const struct tx_walk *w)
{
	char buf[TREE_TARGET_MAX + 1];
	ssize_t n = readlinkat(w->at_fd, w->at_name, buf, sizeof(buf));

	if (n < 0)
		return -errno;
	if (n == 0 || n > TREE_TARGET_MAX)
		return -ENAMETOOLONG;
	te->target = malloc((size_t)n);
	if (!te->target)
		return -ENOMEM;
	memcpy(te->target, buf, (size_t)n);
	te->e.target_len = (uint16_t)n;
	return 0;
}

static void fill_meta(struct tx_entry *te, const struct stat *sb)
{
	te->e.mode = sb->st_mode & 07777;
	te->e.uid = sb->st_uid;
	te->e.gid = sb->st_gid;
	te->e.size = te->e.kind == TK_FILE ? (uint64_t)sb->st_size : 0;
	te->e.mtime_s = sb->st_mtim.tv_sec;
	te->e.mtime_ns = (uint32_t)sb->st_mtim.tv_nsec;
	te->e.atime_s = sb->st_atim.tv_sec;
	te->e.atime_ns = (uint32_t)sb->st_atim.tv_nsec;
	te->e.rdev = sb->st_rdev;
	te->e.link = TREE_NONE;
	te->dev = sb->st_dev;
	te->ino = sb->st_ino;
}

/* Hashes file @te, being listed, for its HASH message; -errno when it
 * cannot. */
static int hash_listed(struct tx *tx, const struct tx_walk *w,
		       struct tx_entry *te)
{
	struct stat sb;
	int fd = openat(w->at_fd, w->at_name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = fstat(fd, &sb) ? -errno : 0;
	if (!r && (!S_ISREG(sb.st_mode) || sb.st_ino != te->ino ||
		   (uint64_t)sb.st_size != te->e.size))
		r = -ESTALE;
	if (!r)
		r = tree_hash_fd(tx->hash, fd, te->e.size, tx->buf,
				 TREE_REC_MAX);
	if (!r)
		te->hash = tree_hash_digest(tx->hash);
	close(fd);
	return r;
}

/*
 * A regular file: a further name of a file listed before (a hard link),
 * or a file, with its hash when the receiver compares by hash or when it
 * has further names (the receiver links them only to a file it wrote or
 * whose content the sender proved).  1, 0 (left out) or -errno.
 */
static int file_entry(struct tx *tx, struct tx_walk *w, struct tx_entry *te,
		      const struct stat *sb)
{
	bool linked = sb->st_nlink > 1;
	uint32_t first = linked ? ino_find(tx, sb->st_dev, sb->st_ino)
				: TREE_NONE;
	int r;

	if (first != TREE_NONE) {
		te->e.kind = TK_HARDLINK;
		te->e.link = first;
		te->e.size = 0;
		return 1;
	}
	if (!linked && !(tx->sflags & TSF_CHECKSUM))
		return 1;
	r = hash_listed(tx, w, te);
	if (r) {
		tx_error(tx, "not sent: '%s': %s", w->path,
			 r == -ESTALE ? "changed while it was being listed"
				      : strerror(-r));
		return 0;
	}
	if (!linked)
		return 1;
	te->e.flags |= TEF_LINKED;
	r = ino_add(tx, sb->st_dev, sb->st_ino, (uint32_t)tx->n);
	return r ? r : 1;
}

/* The entry for w->path: 1 (in @te), 0 (left out) or -errno. */
static int make_entry(struct tx *tx, struct tx_walk *w, const struct stat *sb,
		      struct tx_entry *te)
{
	int kind = kind_of(tx, w, sb), r;

	memset(te, 0, sizeof(*te));
	if (!kind)
		return 0;
	te->e.kind = (uint8_t)kind;
	fill_meta(te, sb);
	if (w->count_only)
		return 1;
	te->path = strdup(w->path);
	if (!te->path)
		return -ENOMEM;
	te->rel = w->rel;
	te->e.index = (uint32_t)tx->n;
	if (kind == TK_FILE)
		r = file_entry(tx, w, te, sb);
	else if (kind == TK_SYMLINK)
		r = read_target(te, w) ?: 1;
	else
		r = 1;
	if (r < 0 && kind == TK_SYMLINK && r != -ENOMEM) {
		tx_error(tx, "not sent: cannot read link '%s': %s", w->path,
			 strerror(-r));
		r = 0;
	}
	if (r <= 0)
		tx_entry_free(te);
	return r;
}

void tx_entry_free(struct tx_entry *te)
{
	free(te->path);
	free(te->target);
	te->path = te->target = NULL;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The names in directory @path, open as @fd if not -1, sorted;
 * NULL-terminated. */
static char **list_dir(int fd, const char *path, int *err)
{
	int dfd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	DIR *d = dfd >= 0 ? fdopendir(dfd) : opendir(path);
	struct dirent *de;
	char **v = NULL, **nv;
	size_t n = 0, cap = 0;

	*err = 0;
	if (!d) {
		*err = -errno;
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n + 2 > cap) {
			cap = cap ? cap * 2 : 32;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n] = strdup(de->d_name);
		if (!v[n])
			break;
		n++;
	}
	closedir(d);
	if (de || (!v && !(v = calloc(1, sizeof(*v))))) {
		if (v)
			v[n] = NULL;
		free_names(v);
		*err = -ENOMEM;
		return NULL;
	}
	v[n] = NULL;
	qsort(v, n, sizeof(*v), cmp_names);
	return v;
}

/*
 * Directory w->path, just listed as @w->at_name in @w->at_fd, held while
 * its entries are listed (each is then looked up by its name alone, not
 * by its whole path), unless the path holds TX_DIR_FDS already: -1.
 */
static int hold_dir(const struct tx_walk *w)
{
	if (w->depth >= TX_DIR_FDS)
		return -1;
	return openat(w->at_fd, w->at_name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void pop_dir(struct tx_walk *w)
{
	struct tx_frame *f = &w->stack[--w->depth];

	free_names(f->names);
	if (f->fd >= 0)
		close(f->fd);
}

/* Enters directory w->path (of length @len): its names come next. */
static int push_dir(struct tx *tx, struct tx_walk *w, size_t len)
{
	struct tx_frame *f;
	char **names;
	int r, fd;

	if (w->depth >= TREE_DEPTH_MAX) {
		walk_error(w, tx, "not sent: what is in '%s' is nested too deep",
			   w->path);
		return 0;
	}
	fd = hold_dir(w);
	names = list_dir(fd, w->path, &r);
	if (!names && fd >= 0)
		close(fd);
	if (r == -ENOMEM)
		return r;
	if (!names) {
		walk_error(w, tx, "not sent: cannot read directory '%s': %s",
			   w->path, strerror(-r));
		return 0;
	}
	if (w->depth == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;

		f = realloc(w->stack, cap * sizeof(*f));
		if (!f) {
			free_names(names);
			if (fd >= 0)
				close(fd);
			return -ENOMEM;
		}
		w->stack = f;
		w->cap = cap;
	}
	w->stack[w->depth++] =
		(struct tx_frame){ .names = names, .len = len, .fd = fd };
	return 0;
}

/* The next name of the innermost directory: 1 (an entry), 0, -errno. */
static int next_child(struct tx *tx, struct tx_walk *w, struct tx_entry *te)
{
	struct tx_frame *f = &w->stack[w->depth - 1];
	char *name = f->names[f->next];
	size_t len = f->len, nl;
	struct stat sb;
	int r;

	if (!name) {
		pop_dir(w);
		w->path[len] = 0;
		return 0;
	}
	f->next++;
	nl = strlen(name);
	if (len + 1 + nl >= PATH_MAX || len + 1 + nl - w->rel >= TREE_PATH_MAX) {
		walk_error(w, tx, "not sent: path too long: '%s/%s'", w->path,
			   name);
		return 0;
	}
	w->path[len] = '/';
	memcpy(w->path + len + 1, name, nl + 1);
	w->at_fd = f->fd >= 0 ? f->fd : AT_FDCWD;
	w->at_name = f->fd >= 0 ? w->path + len + 1 : w->path;
	if (fstatat(w->at_fd, w->at_name, &sb, AT_SYMLINK_NOFOLLOW)) {
		walk_error(w, tx, "not sent: '%s': %s", w->path,
			   strerror(errno));
		return 0;
	}
	r = make_entry(tx, w, &sb, te);
	if (r == 1 && te->e.kind == TK_DIR) {
		int p = push_dir(tx, w, len + 1 + nl);

		if (p < 0) {
			tx_entry_free(te);
			return p;
		}
	}
	return r;
}

/* Splits @arg into the directory part and the last component. */
static int root_of(const char *arg, char *path, size_t *rel)
{
	size_t len = strlen(arg);
	char *slash, *real;

	if (!len || len >= PATH_MAX)
		return -EINVAL;
	memcpy(path, arg, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = 0;
	slash = strrchr(path, '/');
	if (!strcmp(slash ? slash + 1 : path, ".") ||
	    !strcmp(slash ? slash + 1 : path, "..")) {
		real = realpath(arg, NULL);
		if (!real)
			return -errno;
		len = strlen(real);
		if (len >= PATH_MAX) {
			free(real);
			return -ENAMETOOLONG;
		}
		memcpy(path, real, len + 1);
		free(real);
		slash = strrchr(path, '/');
	}
	if (!strcmp(path, "/"))
		return -EISDIR;
	*rel = slash ? (size_t)(slash - path) + 1 : 0;
	return 0;
}

/* The next path given: 1 (an entry), 0 (left out) or -errno. */
static int next_root(struct tx *tx, struct tx_walk *w, struct tx_entry *te)
{
	const char *arg = w->paths[w->root++];
	struct stat sb;
	int r = root_of(arg, w->path, &w->rel);

	w->at_fd = AT_FDCWD;
	w->at_name = w->path;
	if (!r && lstat(w->path, &sb))
		r = -errno;
	if (r) {
		walk_error(w, tx, "not sent: '%s': %s", arg,
			   r == -EISDIR ? "send what is inside it"
					: strerror(-r));
		return 0;
	}
	r = make_entry(tx, w, &sb, te);
	if (r == 1 && te->e.kind == TK_DIR) {
		int p = push_dir(tx, w, strlen(w->path));

		if (p < 0) {
			tx_entry_free(te);
			return p;
		}
	}
	return r;
}

/**
 * tx_walk_next() - the next entry of the walk
 * @tx: the sender (its next index, options, notes)
 * @w:  the walk
 * @te: receives the entry (free it with tx_entry_free())
 *
 * Return: 1 with an entry, 0 at the end, or a negative errno (out of
 * memory).  What cannot be read is noted and left out.
 */
int tx_walk_next(struct tx *tx, struct tx_walk *w, struct tx_entry *te)
{
	int r;

	for (;;) {
		if (w->depth)
			r = next_child(tx, w, te);
		else if (w->root < w->npaths)
			r = next_root(tx, w, te);
		else
			return 0;
		if (r)
			return r;
	}
}

void tx_walk_free(struct tx_walk *w)
{
	while (w->depth)
		pop_dir(w);
	free(w->stack);
	w->stack = NULL;
	w->cap = 0;
}

/* Two paths that end in the same name would arrive at the same place. */
static int unique_roots(struct tx *tx, const char *const *paths, size_t n)
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t i, j, ra, rb;

	for (i = 0; i < n; i++) {
		if (root_of(paths[i], a, &ra))
			continue;
		for (j = i + 1; j < n; j++) {
			if (root_of(paths[j], b, &rb) ||
			    strcmp(a + ra, b + rb))
				continue;
			return tbsi_err(tx->err, -EINVAL,
					"'%s' and '%s' would both arrive as "
					"'%s'",
					paths[i], paths[j], a + ra);
		}
	}
	return 0;
}

/**
 * tx_walk_start() - begin a walk over @paths
 * @tx:    the sender
 * @w:     the walk, zeroed (tx_walk_free() it in every case)
 * @paths: what to send
 * @n:     their count
 *
 * Return: 0; -ENOENT (or another errno) when a path cannot be read,
 * -EINVAL when two of them would arrive under the same name.
 */
int tx_walk_start(struct tx *tx, struct tx_walk *w, const char *const *paths,
		  size_t n)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t i, rel;
	int r;

	for (i = 0; i < n; i++) {
		r = root_of(paths[i], path, &rel);
		if (!r && lstat(path, &sb))
			r = -errno;
		if (r)
			return tbsi_err(tx->err, r, "cannot send '%s': %s",
					paths[i],
					r == -EISDIR ? "send what is inside it"
						     : strerror(-r));
	}
	w->paths = paths;
	w->npaths = n;
	return unique_roots(tx, paths, n);
}
