// SPDX-License-Identifier: MIT
/*
 * The file-tree sender's walk: every path given and everything beneath it,
 * in a stable order (names sorted bytewise), each as an entry with its
 * relative path, kind, metadata, and for a further name of a file already
 * listed (a hard link) the index of that first name.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-send.h"

static int grow(struct tx *tx)
{
	size_t cap = tx->cap ? tx->cap * 2 : 256;
	struct tx_entry *n;

	n = realloc(tx->ents, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	tx->ents = n;
	tx->cap = cap;
	return 0;
}

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

/* Hard links: (dev, ino) of files with several names -> first index. */
static uint32_t ino_find(struct tx *tx, dev_t dev, ino_t ino, uint32_t idx)
{
	size_t i;

	if (tx->nino * 2 >= tx->ino_cap && ino_grow(tx))
		return TREE_NONE;
	i = ino_slot(tx->inos, dev, ino, tx->ino_cap);
	if (tx->inos[i].used)
		return tx->inos[i].index;
	tx->inos[i] = (struct tx_ino){
		.dev = dev, .ino = ino, .index = idx, .used = 1
	};
	tx->nino++;
	return TREE_NONE;
}

static int kind_of(struct tx *tx, const struct stat *sb, const char *path,
		   size_t rel)
{
	const char *name = strrchr(path + rel, '/');

	name = name ? name + 1 : path + rel;
	if (tree_name_reserved((const uint8_t *)name, strlen(name))) {
		tx_notify(tx,
			  "not sent: '%s' has a name that tbstream recv keeps "
			  "for its temporary files",
			  path);
		tx->st.warnings++;
		return 0;
	}
	if (S_ISREG(sb->st_mode))
		return TK_FILE;
	if (S_ISDIR(sb->st_mode))
		return TK_DIR;
	if (S_ISLNK(sb->st_mode))
		return TK_SYMLINK;
	if (!(tx->o.flags & TBS_TREE_SPECIALS) || S_ISSOCK(sb->st_mode)) {
		tx_notify(tx, "not sent: '%s' is a %s%s", path,
			  S_ISSOCK(sb->st_mode) ? "socket" : "special file",
			  S_ISSOCK(sb->st_mode) ? ""
						: " (--specials sends it)");
		tx->st.warnings++;
		return 0;
	}
	if (S_ISFIFO(sb->st_mode))
		return TK_FIFO;
	return S_ISCHR(sb->st_mode) ? TK_CHR : TK_BLK;
}

static int read_target(struct tx_entry *te, const char *path, off_t size)
{
	char buf[TREE_TARGET_MAX + 1];
	ssize_t n = readlink(path, buf, sizeof(buf));

	(void)size;
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
}

/* Adds the entry for @path (relative part from @rel); 1 if a directory. */
static int add(struct tx *tx, const char *path, size_t rel,
	       const struct stat *sb)
{
	struct tx_entry *te;
	int kind = kind_of(tx, sb, path, rel), r;
	uint32_t first;

	if (!kind)
		return 0;
	if (tx->n == tx->cap && grow(tx))
		return -ENOMEM;
	te = &tx->ents[tx->n];
	memset(te, 0, sizeof(*te));
	te->path = strdup(path);
	if (!te->path)
		return -ENOMEM;
	te->rel = rel;
	te->dev = sb->st_dev;
	te->ino = sb->st_ino;
	te->e.index = (uint32_t)tx->n;
	te->e.kind = (uint8_t)kind;
	fill_meta(te, sb);
	if (kind == TK_FILE && sb->st_nlink > 1) {
		first = ino_find(tx, sb->st_dev, sb->st_ino, te->e.index);
		if (first != TREE_NONE) {
			te->e.kind = TK_HARDLINK;
			te->e.link = first;
			te->e.size = 0;
		}
	}
	if (kind == TK_SYMLINK) {
		r = read_target(te, path, sb->st_size);
		if (r) {
			tx_fail_note(tx, "not sent: cannot read link '%s': %s",
				  path, strerror(-r));
			free(te->path);
			tx->st.failed++;
			return 0;
		}
	}
	tx->n++;
	return kind == TK_DIR;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory @path, sorted; NULL-terminated. */
static char **list_dir(struct tx *tx, const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **v = NULL, **nv;
	size_t n = 0, cap = 0;

	if (!d) {
		tx_fail_note(tx, "not sent: cannot read directory '%s': %s", path,
			  strerror(errno));
		tx->st.failed++;
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
		if (v[n])
			n++;
	}
	closedir(d);
	if (!v)
		v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v[n] = NULL;
	qsort(v, n, sizeof(*v), cmp_names);
	return v;
}

static int walk(struct tx *tx, char *path, size_t len, size_t rel, int depth);

static int walk_child(struct tx *tx, char *path, size_t len, size_t rel,
		      const char *name, int depth)
{
	size_t nl = strlen(name);
	struct stat sb;
	int r;

	if (len + 1 + nl >= PATH_MAX || len + 1 + nl - rel >= TREE_PATH_MAX) {
		tx_fail_note(tx, "not sent: path too long: '%s/%s'", path, name);
		tx->st.failed++;
		return 0;
	}
	path[len] = '/';
	memcpy(path + len + 1, name, nl + 1);
	if (lstat(path, &sb)) {
		tx_fail_note(tx, "not sent: '%s': %s", path, strerror(errno));
		tx->st.failed++;
		r = 0;
	} else {
		r = add(tx, path, rel, &sb);
		if (r == 1)
			r = walk(tx, path, len + 1 + nl, rel, depth + 1);
	}
	path[len] = 0;
	return r;
}

static int walk(struct tx *tx, char *path, size_t len, size_t rel, int depth)
{
	char **names;
	size_t i;
	int r = 0;

	if (depth >= TREE_DEPTH_MAX) {
		tx_fail_note(tx, "not sent: '%s' is nested too deep", path);
		tx->st.failed++;
		return 0;
	}
	names = list_dir(tx, path);
	if (!names)
		return 0;
	for (i = 0; names[i]; i++) {
		if (!r)
			r = walk_child(tx, path, len, rel, names[i], depth);
		free(names[i]);
	}
	free(names);
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
		memcpy(path, real, len + 1);
		free(real);
		slash = strrchr(path, '/');
	}
	if (!strcmp(path, "/"))
		return -EISDIR;
	*rel = slash ? (size_t)(slash - path) + 1 : 0;
	return 0;
}

static int cmp_roots(const void *a, const void *b)
{
	const struct tx_entry *x = *(const struct tx_entry *const *)a;
	const struct tx_entry *y = *(const struct tx_entry *const *)b;

	return strcmp(x->path + x->rel, y->path + y->rel);
}

/* Two paths that end in the same name would arrive at the same place. */
static int unique_roots(struct tx *tx)
{
	struct tx_entry **v = malloc((tx->n + 1) * sizeof(*v));
	size_t i, k = 0;
	int r = 0;

	if (!v)
		return tbsi_err(tx->err, -ENOMEM, "out of memory");
	for (i = 0; i < tx->n; i++)
		if (!strchr(tx->ents[i].path + tx->ents[i].rel, '/'))
			v[k++] = &tx->ents[i];
	qsort(v, k, sizeof(*v), cmp_roots);
	for (i = 1; !r && i < k; i++)
		if (!cmp_roots(&v[i - 1], &v[i]))
			r = tbsi_err(tx->err, -EINVAL,
				     "'%s' and '%s' would both arrive as '%s'",
				     v[i - 1]->path, v[i]->path,
				     v[i]->path + v[i]->rel);
	free(v);
	return r;
}

int tx_walk(struct tx *tx, const char *const *paths, size_t n)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t i, rel = 0;
	int r;

	for (i = 0; i < n; i++) {
		r = root_of(paths[i], path, &rel);
		if (!r && lstat(path, &sb))
			r = -errno;
		if (r) {
			return tbsi_err(tx->err, r, "cannot send '%s': %s",
					paths[i],
					r == -EISDIR ? "send what is inside it"
						     : strerror(-r));
		}
		r = add(tx, path, rel, &sb);
		if (r == 1)
			r = walk(tx, path, strlen(path), rel, 1);
		if (r < 0)
			return tbsi_err(tx->err, r, "listing files: %s",
					strerror(-r));
	}
	return unique_roots(tx);
}
