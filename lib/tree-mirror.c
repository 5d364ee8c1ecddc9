// SPDX-License-Identifier: MIT
/*
 * The file-tree receiver's view of the sender's walk, and --delete.
 *
 * A sender lists depth first: every entry's directory is on the path of
 * directories it entered and has not left.  The receiver keeps that path
 * and refuses an entry outside it, so it knows when a directory's list
 * is complete: when the walk leaves it.  With --delete it then compares
 * what is in that directory with the names the sender listed there and
 * keeps the difference as candidates (memory: the names of the
 * directories on the current path, and the candidates).
 *
 * Candidates are removed only at the end, and only if the whole transfer
 * succeeded: nothing refused or failed on either side, and the sender
 * listed everything it meant to.  Removal never leaves the receiving
 * directory: every directory is opened relative to one already held,
 * without following a link, checked by inode; nothing on another mount
 * is removed; a symbolic link is removed as a link.  A dry run reports
 * what would go and removes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-recv.h"

/* ---- the sender's walk ---- */

static int record_name(struct rx_mirror *m, const uint8_t *name, size_t len)
{
	if (rx_grow((void **)&m->buf, &m->cap, m->len + 1 + len, 1) ||
	    rx_grow((void **)&m->offs, &m->offs_cap, m->noffs + 1,
		    sizeof(*m->offs)))
		return -ENOMEM;
	m->offs[m->noffs++] = (uint32_t)m->len;
	m->buf[m->len] = (uint8_t)len;
	memcpy(m->buf + m->len + 1, name, len);
	m->len += 1 + len;
	return 0;
}

/**
 * rx_tree_enter() - the next entry of the sender's walk
 * @rx:     receiver
 * @parent: the entry's directory (TREE_NONE: the receiving directory)
 * @name:   its last name
 * @len:    its length
 *
 * Leaves the directories the walk has left; with --delete, notes @name
 * as listed in @parent.
 *
 * Return: 0; -EPROTO when @parent is not on the walk's path.
 */
int rx_tree_enter(struct rx *rx, uint32_t parent, const uint8_t *name,
		  size_t len)
{
	size_t d = 0;
	int r;

	if (parent != TREE_NONE) {
		for (d = rx->depth; d && rx->path[d - 1].dir != parent; d--)
			;
		if (!d)
			return rx_violation(rx, "an entry out of tree order");
	}
	r = rx_tree_close(rx, d);
	if (!r && rx->mirror.on && parent != TREE_NONE)
		r = record_name(&rx->mirror, name, len);
	return r;
}

int rx_tree_push(struct rx *rx, uint32_t dir)
{
	if (rx_grow((void **)&rx->path, &rx->path_cap, rx->depth + 1,
		    sizeof(*rx->path)))
		return -ENOMEM;
	rx->path[rx->depth++] =
		(struct rx_frame){ .dir = dir, .names = rx->mirror.noffs };
	return 0;
}

/* ---- candidates ---- */

static const uint8_t *name_at(const struct rx_mirror *m, uint32_t off,
			      size_t *len)
{
	*len = m->buf[off];
	return m->buf + off + 1;
}

static int cmp_len(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

static const struct rx_mirror *sort_m;

static int cmp_offs(const void *a, const void *b)
{
	size_t al, bl;
	const uint8_t *x = name_at(sort_m, *(const uint32_t *)a, &al);
	const uint8_t *y = name_at(sort_m, *(const uint32_t *)b, &bl);

	return cmp_len(x, al, y, bl);
}

/* The frame's names in order (a sender sorts them: usually nothing to
 * do); they are the last @n offsets. */
static void sort_names(struct rx_mirror *m, uint32_t *v, size_t n)
{
	size_t i, al, bl;

	for (i = 1; i < n; i++) {
		const uint8_t *a = name_at(m, v[i - 1], &al);
		const uint8_t *b = name_at(m, v[i], &bl);

		if (cmp_len(a, al, b, bl) > 0)
			break;
	}
	if (i < n) {
		sort_m = m;
		qsort(v, n, sizeof(*v), cmp_offs);
	}
}

static bool listed(const struct rx_mirror *m, const uint32_t *v, size_t n,
		   const char *name)
{
	size_t lo = 0, hi = n, nl = strlen(name), len;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const uint8_t *s = name_at(m, v[mid], &len);
		int c = cmp_len(s, len, (const uint8_t *)name, nl);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int add_gone(struct rx_mirror *m, uint32_t dir, const char *name)
{
	size_t nl = strlen(name);

	if (rx_grow((void **)&m->gone, &m->gone_cap, m->gone_len + 5 + nl, 1))
		return -ENOMEM;
	tbsi_le_put32(m->gone + m->gone_len, dir);
	m->gone[m->gone_len + 4] = (uint8_t)nl;
	memcpy(m->gone + m->gone_len + 5, name, nl);
	m->gone_len += 5 + nl;
	m->ngone++;
	return 0;
}

/* Directory @f->dir's list is complete: what else is there goes. */
static int gone_in(struct rx *rx, const struct rx_frame *f)
{
	struct rx_mirror *m = &rx->mirror;
	const struct rx_dir *d = &rx->dirs[f->dir];
	size_t n = m->noffs - f->names;
	uint32_t *v = n ? m->offs + f->names : NULL; /* none listed yet */
	struct dirent *de;
	DIR *dir;
	int fd, r = 0;

	if (d->n.xflags & (RXF_FRESH | RXF_DRY) || d->n.state == RS_FAILED)
		return 0;
	fd = rx_dir_open(rx, d);
	if (fd < 0)
		return 0; /* refused already, or gone: nothing to compare */
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return 0;
	}
	sort_names(m, v, n);
	while (!r && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    tree_name_reserved((const uint8_t *)de->d_name,
				       strlen(de->d_name)) ||
		    listed(m, v, n, de->d_name))
			continue;
		r = add_gone(m, f->dir, de->d_name);
	}
	closedir(dir);
	return r;
}

/**
 * rx_tree_close() - leave the walk's directories down to @depth
 * @rx:    receiver
 * @depth: how many stay open
 *
 * Return: 0 or -ENOMEM.
 */
int rx_tree_close(struct rx *rx, size_t depth)
{
	struct rx_mirror *m = &rx->mirror;
	int r = 0;

	while (!r && rx->depth > depth) {
		const struct rx_frame *f = &rx->path[--rx->depth];

		if (!m->on)
			continue;
		r = gone_in(rx, f);
		if (f->names < m->noffs)
			m->len = m->offs[f->names];
		m->noffs = f->names;
	}
	return r;
}

/* ---- removal ---- */

#define SX_MASK (STATX_TYPE | STATX_INO | STATX_MNT_ID)

static int stat_at(int dfd, const char *name, struct statx *sx)
{
	if (statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, SX_MASK,
		  sx))
		return -errno;
	return 0;
}

static int stat_fd(int fd, struct statx *sx)
{
	return statx(fd, "", AT_EMPTY_PATH, SX_MASK, sx) ? -errno : 0;
}

/* Whether @sx is on another file system or mount than @p. */
static bool other_mount(const struct statx *p, const struct statx *sx)
{
	if (sx->stx_dev_major != p->stx_dev_major ||
	    sx->stx_dev_minor != p->stx_dev_minor)
		return true;
	return (p->stx_mask & sx->stx_mask & STATX_MNT_ID) &&
	       p->stx_mnt_id != sx->stx_mnt_id;
}

static int rm_at(int dfd, const struct statx *parent, const char *name,
		 int depth);

/* Empties directory @fd (whose status is @sx), child by child. */
static int rm_inside(int fd, const struct statx *sx, int depth)
{
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int r = 0;

	if (!d) {
		close(fd);
		return -errno;
	}
	while (!r && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = rm_at(dirfd(d), sx, de->d_name, depth + 1);
	closedir(d);
	return r;
}

/* Removes @name in @dfd and all beneath it, following nothing. */
static int rm_at(int dfd, const struct statx *parent, const char *name,
		 int depth)
{
	struct statx sx, now;
	int fd, r = stat_at(dfd, name, &sx);

	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	if (other_mount(parent, &sx))
		return -EXDEV;
	if (!S_ISDIR(sx.stx_mode))
		return unlinkat(dfd, name, 0) && errno != ENOENT ? -errno : 0;
	if (depth >= TREE_DEPTH_MAX)
		return -ELOOP;
	fd = openat(dfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (stat_fd(fd, &now) || now.stx_ino != sx.stx_ino ||
	    other_mount(&sx, &now)) {
		close(fd);
		return -ESTALE;
	}
	r = rm_inside(fd, &sx, depth);
	if (!r && unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT)
		r = -errno;
	return r;
}

static const char *rm_error(int r)
{
	if (r == -EXDEV)
		return "it is (or holds) a mount point; nothing on another "
		       "file system is removed";
	if (r == -ELOOP)
		return "it is nested too deep";
	if (r == -ESTALE)
		return "it was replaced while it was being removed";
	return strerror(-r);
}

static int put_removed(struct rx *rx, uint32_t flags, const char *path)
{
	uint8_t b[4 + TREE_PATH_MAX + 1];
	size_t n = strlen(path);

	tbsi_le_put32(b, flags);
	memcpy(b + 4, path, n);
	return rx_put(rx, TM_REMOVED, b, 4 + n);
}

/* Candidate @name of directory @dir: removed, or (dry run) reported. */
static int remove_one(struct rx *rx, uint32_t dir, const char *name)
{
	char path[TREE_PATH_MAX + 1], text[400];
	struct statx psx, sx;
	struct rx_node *dn = &rx->dirs[dir].n;
	int pfd = rx_walk_to(rx, dir), r;

	rx_path_raw(rx, dir, (const uint8_t *)name, strlen(name), path,
		    sizeof(path));
	r = pfd < 0 ? pfd : stat_fd(pfd, &psx);
	if (!r)
		r = stat_at(pfd, name, &sx);
	if (!r && other_mount(&psx, &sx))
		r = -EXDEV;
	if (!r && !rx->dry)
		r = rm_at(pfd, &psx, name, 0);
	if (pfd >= 0)
		close(pfd);
	if (r == -ENOENT)
		return 0;
	if (r) {
		snprintf(text, sizeof(text), "not removed: %s", rm_error(r));
		return rx_refuse(rx, dn, "'%.200s' %s", name, text);
	}
	rx->mirror.removed++;
	if (rx->o.change)
		rx->o.change(rx->o.arg,
			     TBS_TREE_REMOVED |
				     (rx->dry ? TBS_TREE_WOULD : 0),
			     path);
	return put_removed(rx,
			   (S_ISDIR(sx.stx_mode) ? TRF_DIR : 0) |
				   (rx->dry ? TRF_DRY : 0),
			   path);
}

/**
 * rx_mirror_apply() - with --delete, after a complete transfer, remove
 * what the sender no longer has
 * @rx: receiver
 *
 * Nothing is removed when anything was refused or failed, on either side.
 *
 * Return: 0 or a negative errno of the session (a removal that fails is
 * refused and counted, and the others go on).
 */
int rx_mirror_apply(struct rx *rx)
{
	struct rx_mirror *m = &rx->mirror;
	char name[TREE_NAME_MAX + 1];
	size_t pos = 0, nl;
	uint32_t dir;
	int r = 0;

	if (!m->on || !m->ngone)
		return 0;
	if (rx->st.failed || rx->sender_errors) {
		rx_warn(rx,
			"nothing was removed: %llu %s not transferred "
			"(removal waits for a transfer that is complete)",
			(unsigned long long)(rx->st.failed +
					     rx->sender_errors),
			rx->st.failed + rx->sender_errors == 1 ? "entry was"
							       : "entries "
								 "were");
		return 0;
	}
	while (!r && pos < m->gone_len) {
		dir = tbsi_le_get32(m->gone + pos);
		nl = m->gone[pos + 4];
		memcpy(name, m->gone + pos + 5, nl);
		name[nl] = 0;
		pos += 5 + nl;
		r = remove_one(rx, dir, name);
		if (r == -EPERM)
			r = 0;
	}
	return r; /* synced with the directories' times, next */
}

void rx_mirror_free(struct rx_mirror *m)
{
	free(m->buf);
	free(m->offs);
	free(m->gone);
	memset(m, 0, sizeof(*m));
}
