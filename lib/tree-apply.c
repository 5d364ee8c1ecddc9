// SPDX-License-Identifier: MIT
/*
 * The file-tree receiver's side of the file system.  Its rules, in the
 * order the code applies them:
 *
 * 1. Nothing from the wire is used as a path: every entry's parent is
 *    reached from the receiving directory one component at a time with
 *    openat(O_PATH | O_DIRECTORY | O_NOFOLLOW), so a symbolic link (one
 *    that came over the cable or one that was there) is never followed
 *    and ".." never occurs (the decoder refused it).
 * 2. Everything is created unnamed in its own directory (a new file that
 *    replaces nothing: O_TMPFILE, tree-unnamed.c) or under a temporary
 *    name there (".tbs-" + hash of the name + ".part"), exclusively
 *    (O_EXCL), and linked or renamed into place once written, verified
 *    and durable; the link fails, rather than replace, when the name was
 *    taken meanwhile.  No entry may take a ".tbs-" name, so a sender
 *    cannot plant one.
 * 3. A file that is opened again (a partial copy, its journal) must be a
 *    regular file with one link, owned by this process, on the device of
 *    its directory, and, for a partial copy, the inode its journal names:
 *    so neither a sender nor a local user can point the receiver at
 *    another file.  Opens never block (O_NONBLOCK) and never follow.
 * 4. Nothing that was there changes without the flag that allows it:
 *    files and links are replaced only with --overwrite (or --update when
 *    older), directories that existed keep their owner, mode, times and
 *    attributes, and a hard link is only made to a file this transfer
 *    wrote or whose content the sender proved by its hash.
 * 5. Every file system written to is synced before a file is confirmed.
 * 6. A dry run changes nothing: it reads what is there and reports.
 *
 * A large file being written keeps a small journal beside it (".state":
 * how many bytes of which partial file are durable) so that an
 * interrupted transfer continues where it stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include "own.h"
#include "tree-recv.h"

#define CKPT_MS 5000
#define CKPT_BYTES (1ull << 30)
#define WRITEBACK (8u << 20) /* start writing back every 8 MiB */

/* The directories from the top down to @dir; their count. */
int rx_chain(const struct rx *rx, uint32_t dir, uint32_t *out)
{
	uint32_t up[TREE_DEPTH_MAX];
	int n = 0, i;

	for (; dir != TREE_NONE && n < TREE_DEPTH_MAX;
	     dir = rx->dirs[dir].n.parent)
		up[n++] = dir;
	for (i = 0; i < n; i++)
		out[i] = up[n - 1 - i];
	return n;
}

/* The components of directory @dir and then @name, as on the wire. */
static size_t comps_of(const struct rx *rx, uint32_t dir, const uint8_t *name,
		       size_t name_len, uint8_t *comps)
{
	uint32_t idx[TREE_DEPTH_MAX];
	int n = rx_chain(rx, dir, idx), i;
	size_t len = 0;

	for (i = 0; i < n; i++) {
		const struct rx_dir *c = &rx->dirs[idx[i]];

		tbsi_le_put16(comps + len, c->n.name_len);
		memcpy(comps + len + 2, rx->darena + c->n.name, c->n.name_len);
		len += 2 + (size_t)c->n.name_len;
	}
	tbsi_le_put16(comps + len, (uint16_t)name_len);
	memcpy(comps + len + 2, name, name_len);
	return len + 2 + name_len;
}

/* The path of @n for messages: odd bytes as \xNN, cut with "...". */
void rx_path(const struct rx *rx, const struct rx_node *n, char *buf,
	     size_t len)
{
	uint8_t comps[TREE_PATH_MAX + 2 * TREE_DEPTH_MAX + 2];
	struct tree_entry e = { .comps = comps };

	e.comps_len = comps_of(rx, n->parent, rx_name(rx, n), n->name_len,
			       comps);
	if (tree_path_text(&e, buf, len) && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* The path of @name in directory @dir, raw bytes ('/' between). */
void rx_path_raw(const struct rx *rx, uint32_t dir, const uint8_t *name,
		 size_t name_len, char *buf, size_t len)
{
	uint8_t comps[TREE_PATH_MAX + 2 * TREE_DEPTH_MAX + 2];
	struct tree_entry e = { .comps = comps };
	struct tree_comp c;
	size_t pos = 0, o = 0;

	e.comps_len = comps_of(rx, dir, name, name_len, comps);
	while (tree_comp_next(&e, &pos, &c) && o + c.len + 2 < len) {
		if (o)
			buf[o++] = '/';
		memcpy(buf + o, c.name, c.len);
		o += c.len;
	}
	buf[o] = 0;
}

void rx_change(struct rx *rx, unsigned int what, const struct rx_node *n)
{
	char path[TREE_PATH_MAX + 1];

	if (!rx->o.change)
		return;
	rx_path_raw(rx, n->parent, rx_name(rx, n), n->name_len, path,
		    sizeof(path));
	rx->o.change(rx->o.arg, what | (rx->dry ? TBS_TREE_WOULD : 0), path);
}

void rx_tmp_name(const char *name, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, ".tbs-%016" PRIx64 ".%s",
		 (uint64_t)XXH3_64bits(name, strlen(name)), ext);
}

/* Opens directory @dir from the root, one name at a time. */
int rx_walk_to(struct rx *rx, uint32_t dir)
{
	uint32_t idx[TREE_DEPTH_MAX];
	char name[TREE_NAME_MAX + 1];
	int n = rx_chain(rx, dir, idx), i, fd = rx->root, nfd;

	for (i = 0; i < n; i++) {
		const struct rx_dir *c = &rx->dirs[idx[i]];

		memcpy(name, rx->darena + c->n.name, c->n.name_len);
		name[c->n.name_len] = 0;
		nfd = openat(fd, name,
			     O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != rx->root)
			close(fd);
		if (nfd < 0)
			return -errno;
		fd = nfd;
	}
	return fd == rx->root ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;
}

/* Whether @n's directory exists only in a dry run's imagination. */
static bool dry_parent(const struct rx *rx, const struct rx_node *n)
{
	if (n->parent == TREE_NONE)
		return rx->root_dry;
	return rx->dirs[n->parent].n.xflags & RXF_DRY;
}

/*
 * The parent directory of @n (borrowed: valid until the next call) and
 * its last component in @name.  Negative errno: ENOENT a parent is
 * missing, ENOTDIR or ELOOP a parent is not a directory or is a link.
 */
int rx_parent(struct rx *rx, const struct rx_node *n, char *name)
{
	struct stat sb;
	int fd;

	memcpy(name, rx_name(rx, n), n->name_len);
	name[n->name_len] = 0;
	if (rx->pfd >= 0 && rx->pidx == n->parent)
		return rx->pfd;
	fd = rx_walk_to(rx, n->parent);
	if (fd >= 0 && (fstat(fd, &sb) || rx_fs_add(rx, fd, sb.st_dev))) {
		close(fd);
		fd = -errno;
	}
	if (fd < 0)
		return fd;
	if (rx->pfd >= 0)
		close(rx->pfd);
	rx->pfd = fd;
	rx->pdev = sb.st_dev;
	rx->pidx = n->parent;
	rx->pfresh = n->parent != TREE_NONE &&
		     (rx->dirs[n->parent].n.xflags & RXF_FRESH);
	rx->pdacl_known = 0;
	return fd;
}

/**
 * rx_dir_open() - a readable descriptor of listed directory @d, if it
 * still is the directory made or checked
 * @rx: receiver
 * @d:  the directory
 *
 * Opened without following a link, compared by device and inode.
 *
 * Return: the descriptor, -ESTALE when it was replaced, or -errno.
 */
int rx_dir_open(struct rx *rx, const struct rx_dir *d)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd = rx_parent(rx, &d->n, name), fd;

	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || sb.st_ino != d->ino || sb.st_dev != d->dev) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int parent_or_refuse(struct rx *rx, struct rx_node *n, char *name)
{
	int fd = rx_parent(rx, n, name);

	if (fd == -ENOENT)
		return rx_refuse(rx, n, "its directory was not received");
	if (fd == -ENOTDIR || fd == -ELOOP)
		return rx_refuse(
			rx, n,
			"a directory on its path is a symbolic link or not a "
			"directory; nothing is written through it");
	if (fd < 0)
		return rx_refuse(rx, n, "%s", strerror(-fd));
	return fd;
}

/* ---- files opened again: partial copies and their journals ---- */

/* A file the receiver made, in the current parent @pfd: see own.h. */
static int open_own(struct rx *rx, int pfd, const char *name, int flags,
		    struct stat *sb)
{
	return tbsi_open_own(pfd, name, flags, rx->pdev, sb);
}

static int create_excl(int pfd, const char *name)
{
	int fd = tbsi_create_excl(pfd, name, O_WRONLY, 0600);

	if (fd < 0)
		errno = -fd;
	return fd < 0 ? -1 : fd;
}

/* The journal: "tbstream partial 2 size S mtime T.N verified V inode I". */
static int read_state(struct rx *rx, int pfd, const char *name,
		      struct rx_entry *re, uint64_t *verified, uint64_t *ino)
{
	char sname[64], buf[200];
	unsigned long long size, done, in;
	long long mt;
	unsigned int ns;
	int r;

	rx_tmp_name(name, "state", sname, sizeof(sname));
	r = tbsi_read_own(pfd, sname, rx->pdev, buf, sizeof(buf));
	if (r)
		return r;
	if (sscanf(buf,
		   "tbstream partial 2 size %llu mtime %lld.%u verified %llu "
		   "inode %llu",
		   &size, &mt, &ns, &done, &in) != 5)
		return -EINVAL;
	if (size != re->size || mt != re->mtime_s || ns != re->mtime_ns ||
	    !done || done > size)
		return -ESTALE;
	*verified = done;
	*ino = in;
	return 0;
}

static int write_state(int pfd, const char *name, const struct rx_entry *re,
		       uint64_t verified, uint64_t ino)
{
	char sname[64], buf[200];
	int fd, n, r = 0;

	rx_tmp_name(name, "state", sname, sizeof(sname));
	n = snprintf(buf, sizeof(buf),
		     "tbstream partial 2 size %llu mtime %lld.%09u verified "
		     "%llu inode %llu\n",
		     (unsigned long long)re->size, (long long)re->mtime_s,
		     re->mtime_ns, (unsigned long long)verified,
		     (unsigned long long)ino);
	fd = create_excl(pfd, sname);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || fdatasync(fd))
		r = -errno;
	close(fd);
	return r;
}

static void drop_state(int pfd, const char *name)
{
	char sname[64];

	rx_tmp_name(name, "state", sname, sizeof(sname));
	unlinkat(pfd, sname, 0);
}

/*
 * A partial copy from an earlier run: its verified prefix, hashed into
 * @re->resume.  The hash is not sent: the sender sends its own with the
 * data (FILE), and the receiver compares.
 */
static int partial(struct rx *rx, int pfd, const char *name,
		   struct rx_entry *re, uint64_t *off)
{
	char tname[64];
	struct stat sb;
	uint64_t done = 0, ino = 0;
	int fd, r;

	if (rx->dry || re->size < RX_RESUME_MIN ||
	    read_state(rx, pfd, name, re, &done, &ino))
		return TW_FULL;
	rx_tmp_name(name, "part", tname, sizeof(tname));
	fd = open_own(rx, pfd, tname, O_RDONLY, &sb);
	if (fd < 0)
		return TW_FULL;
	re->resume = tree_hash_new();
	r = !re->resume || sb.st_ino != ino || (uint64_t)sb.st_size < done;
	if (!r)
		r = tree_hash_fd(re->resume, fd, done, rx->hbuf, TREE_REC_MAX);
	close(fd);
	if (r) {
		tree_hash_free(re->resume);
		re->resume = NULL;
		return TW_FULL;
	}
	re->ino = ino;
	*off = done;
	return TW_RESUME;
}

/* ---- deciding what to ask for ---- */

/* Hashes the file @sb describes, if @name still is that file. */
static int hash_existing(struct rx *rx, int pfd, const char *name,
			 const struct stat *sb, uint64_t *hash)
{
	struct tree_hash *h = tree_hash_new();
	uint64_t size = (uint64_t)sb->st_size;
	struct stat now;
	int fd, r;

	fd = openat(pfd, name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &now) || now.st_ino != sb->st_ino ||
			now.st_dev != sb->st_dev || !S_ISREG(now.st_mode))) {
		close(fd);
		fd = -1;
		errno = ESTALE;
	}
	if (!h || fd < 0) {
		r = fd < 0 ? -errno : -ENOMEM;
	} else {
		r = tree_hash_fd(h, fd, size, rx->hbuf, TREE_REC_MAX);
		*hash = tree_hash_digest(h);
	}
	if (fd >= 0)
		close(fd);
	tree_hash_free(h);
	return r;
}

/* Whether what is there (@sb) is older than the entry (for --update). */
static bool older(const struct stat *sb, int64_t s, uint32_t ns)
{
	return sb->st_mtim.tv_sec < s ||
	       (sb->st_mtim.tv_sec == s && (uint64_t)sb->st_mtim.tv_nsec < ns);
}

/*
 * Whether the file there is the sender's: by its size and time (the
 * quick check), or, when the sender sent its hash, by that hash too (with
 * --checksum by the hash alone).  The receiver never sends a hash of a
 * file it has: the sender proves what it claims, and learns no more than
 * whether its claim is right.
 */
static bool same_file(struct rx *rx, struct rx_entry *re, int pfd,
		      const char *name, const struct stat *sb)
{
	bool quick = (uint64_t)sb->st_size == re->size &&
		     sb->st_mtim.tv_sec == re->mtime_s &&
		     (uint64_t)sb->st_mtim.tv_nsec == re->mtime_ns;
	uint64_t h = 0;

	if (!S_ISREG(sb->st_mode) || (uint64_t)sb->st_size != re->size)
		return false;
	if (!(re->eflags & REF_HASHED))
		return quick;
	if (!quick && !(rx->sflags & TSF_CHECKSUM))
		return false;
	if (hash_existing(rx, pfd, name, sb, &h) || h != re->hash)
		return false;
	re->n.xflags |= RXF_PROVEN;
	return true;
}

static int decide_existing(struct rx *rx, struct rx_entry *re, int pfd,
			   const char *name, const struct stat *sb)
{
	bool over = rx->o.flags & TBS_TREE_OVERWRITE;
	bool upd = rx->o.flags & TBS_TREE_UPDATE;

	if (S_ISDIR(sb->st_mode))
		return rx_refuse(rx, &re->n, "a directory of that name exists");
	if (same_file(rx, re, pfd, name, sb))
		return TW_SAME;
	if (upd && !older(sb, re->mtime_s, re->mtime_ns))
		return TW_KEEP;
	if (!over && !upd)
		return rx_refuse(
			rx, &re->n,
			"exists and differs; not replaced (use --overwrite, or "
			"--update for newer files only)");
	re->wflags = TWF_REPLACE;
	return TW_FULL;
}

/* What to ask the sender for, for regular file @re; negative: refused. */
int rx_decide(struct rx *rx, struct rx_entry *re, uint64_t *off)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd, w;

	*off = 0;
	if (dry_parent(rx, &re->n))
		return TW_FULL;
	pfd = parent_or_refuse(rx, &re->n, name);
	if (pfd < 0)
		return pfd;
	if (re->size > rx->o.max_file_size)
		return rx_refuse(rx, &re->n,
				 "larger than the limit of %llu bytes",
				 (unsigned long long)rx->o.max_file_size);
	if (rx->pfresh)
		w = TW_FULL;
	else if (!fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		w = decide_existing(rx, re, pfd, name, &sb);
	else if (errno != ENOENT)
		return rx_refuse(rx, &re->n, "%s", strerror(errno));
	else
		w = partial(rx, pfd, name, re, off);
	return w;
}

/* ---- directories, links, special files ---- */

/*
 * A directory this receiver made carries a marker until it gets its
 * owner, mode and times, so that a run that continues an interrupted one
 * finishes it too.  The marker counts only as a regular file with one
 * link, of this user, naming the directory's inode: a sender cannot
 * plant it (the name is reserved), nor can a local user.
 */
#define DIR_MARK TREE_TMP_PREFIX "dir"

static void mark_dir(int dfd, const struct stat *d)
{
	char text[64];
	int fd = create_excl(dfd, DIR_MARK), n;

	if (fd < 0)
		return;
	n = snprintf(text, sizeof(text), "tbstream directory 1 inode %llu\n",
		     (unsigned long long)d->st_ino);
	if (write(fd, text, (size_t)n) != n)
		unlinkat(dfd, DIR_MARK, 0);
	close(fd);
}

static bool marked(int dfd, const struct stat *d)
{
	unsigned long long ino;
	char text[64];

	return !tbsi_read_own(dfd, DIR_MARK, d->st_dev, text, sizeof(text)) &&
	       sscanf(text, "tbstream directory 1 inode %llu", &ino) == 1 &&
	       ino == d->st_ino;
}

/* A dry run: would directory @d be made? */
static int mkdir_dry(struct rx *rx, struct rx_dir *d)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd;

	if (!dry_parent(rx, &d->n)) {
		pfd = parent_or_refuse(rx, &d->n, name);
		if (pfd < 0)
			return pfd;
		if (!fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW)) {
			if (S_ISDIR(sb.st_mode)) { /* --delete compares it */
				d->dev = sb.st_dev;
				d->ino = sb.st_ino;
				return 0;
			}
			return rx_refuse(rx, &d->n,
					 "exists and is not a directory (not "
					 "replaced)");
		}
	}
	d->n.xflags |= RXF_DRY;
	rx_change(rx, TBS_TREE_CREATED, &d->n);
	return 0;
}

/* A directory this run made inherits no ACL its sender's does not have. */
static void made_dir(struct rx *rx, struct rx_dir *d, int pfd, const char *name,
		     const struct stat *sb)
{
	int fd;

	d->n.xflags |= RXF_MADE | RXF_FRESH | RXF_ATTRS;
	rx_change(rx, TBS_TREE_CREATED, &d->n);
	if (!rx->pdacl_known || rx->pdacl) {
		fd = openat(pfd, name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			struct stat now;

			if (!fstat(fd, &now) && now.st_ino == sb->st_ino)
				rx_attr_inherited(rx, fd, &d->n);
			close(fd);
		}
	}
}

int rx_mkdir(struct rx *rx, struct rx_dir *d)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd, fd;
	bool made;

	if (rx->dry)
		return mkdir_dry(rx, d);
	pfd = parent_or_refuse(rx, &d->n, name);
	if (pfd < 0)
		return pfd;
	made = !mkdirat(pfd, name, 0700);
	if (!made && errno != EEXIST)
		return rx_refuse(rx, &d->n, "%s", strerror(errno));
	fd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		return rx_refuse(rx, &d->n,
				 "exists and is not a directory (not replaced)");
	}
	d->dev = sb.st_dev;
	d->ino = sb.st_ino;
	if (made)
		mark_dir(fd, &sb);
	else if (marked(fd, &sb)) /* made by a run this one continues */
		d->n.xflags |= RXF_MADE | RXF_ATTRS;
	else if (rx->o.flags & (TBS_TREE_OVERWRITE | TBS_TREE_DELETE))
		d->n.xflags |= RXF_ATTRS;
	close(fd);
	if (made)
		made_dir(rx, d, pfd, name, &sb);
	return 0;
}

static void set_link_meta(struct rx *rx, int pfd, const char *name,
			  const struct rx_entry *re)
{
	struct timespec ts[2] = { { re->atime_s, re->atime_ns },
				  { re->mtime_s, re->mtime_ns } };

	if (rx->is_root &&
	    fchownat(pfd, name, re->uid, re->gid, AT_SYMLINK_NOFOLLOW))
		return;
	utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

/* Puts the object made under @tmp in place of @name, or refuses. */
/**
 * rx_rename() - rename @tmp to @name in directory @pfd
 * @pfd:     the directory
 * @tmp:     the temporary name
 * @name:    the name
 * @replace: whether what has the name may be replaced
 *
 * Without @replace, renameat2(RENAME_NOREPLACE); where the file system
 * has no such rename (FAT and exFAT through FUSE), a plain rename once
 * the name is seen to be free.
 *
 * Return: 0, -EEXIST or another -errno.
 */
int rx_rename(int pfd, const char *tmp, const char *name, bool replace)
{
	struct stat sb;

	if (!renameat2(pfd, tmp, pfd, name, replace ? 0 : RENAME_NOREPLACE))
		return 0;
	if (replace || errno != EINVAL)
		return -errno;
	if (!fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	return renameat(pfd, tmp, pfd, name) ? -errno : 0;
}

static int place(struct rx *rx, struct rx_node *n, int pfd, const char *tmp,
		 const char *name, bool replace)
{
	int r = rx_rename(pfd, tmp, name, replace);

	if (!r)
		return 0;
	unlinkat(pfd, tmp, 0);
	if (r == -EEXIST)
		return rx_refuse(rx, n, "exists; not replaced (use --overwrite)");
	return rx_refuse(rx, n, "%s", strerror(-r));
}

static bool same_link(int pfd, const char *name, const uint8_t *target,
		      size_t len)
{
	char buf[TREE_TARGET_MAX + 1];
	ssize_t n = readlinkat(pfd, name, buf, sizeof(buf));

	return n == (ssize_t)len && !memcmp(buf, target, len);
}

/*
 * Whether a link or special file @re may take the place of what is
 * there: 1 yes (replacing it), 0 yes (nothing there), 2 it is there
 * already as it should be, or refused.
 */
static int may_replace(struct rx *rx, struct rx_entry *re, int pfd,
		       const char *name, const uint8_t *target, size_t len)
{
	bool replace = rx->o.flags & TBS_TREE_OVERWRITE;
	struct stat sb;

	if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		return 0;
	if (target && S_ISLNK(sb.st_mode) && same_link(pfd, name, target, len)) {
		if (replace && !rx->dry)
			set_link_meta(rx, pfd, name, re);
		return 2;
	}
	if (S_ISDIR(sb.st_mode))
		return rx_refuse(rx, &re->n, "a directory of that name exists");
	if (!replace && (rx->o.flags & TBS_TREE_UPDATE)) {
		if (!older(&sb, re->mtime_s, re->mtime_ns))
			return 2; /* --update keeps the newer one */
		replace = true;
	}
	if (!replace)
		return rx_refuse(rx, &re->n,
				 "exists; not replaced (use --overwrite)");
	return 1;
}

/* Where link or special file @re goes: 0, 1 (replacing), 2 done. */
static int link_place(struct rx *rx, struct rx_entry *re, int *pfd,
		      char *name, const uint8_t *target, size_t len)
{
	int r;

	if (dry_parent(rx, &re->n)) {
		rx_change(rx, TBS_TREE_CREATED, &re->n);
		return 2;
	}
	*pfd = parent_or_refuse(rx, &re->n, name);
	if (*pfd < 0)
		return *pfd;
	r = may_replace(rx, re, *pfd, name, target, len);
	if (r < 0 || r == 2 || !rx->dry)
		return r;
	rx_change(rx, r ? TBS_TREE_REPLACED : TBS_TREE_CREATED, &re->n);
	return 2;
}

int rx_symlink(struct rx *rx, struct rx_entry *re, const uint8_t *target,
	       size_t len)
{
	char name[TREE_NAME_MAX + 1], tmp[64], t[TREE_TARGET_MAX + 1];
	int pfd = -1, r = link_place(rx, re, &pfd, name, target, len);

	if (r < 0 || r == 2)
		return r < 0 ? r : 0;
	memcpy(t, target, len);
	t[len] = 0;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	if (symlinkat(t, pfd, tmp))
		return rx_refuse(rx, &re->n, "%s", strerror(errno));
	set_link_meta(rx, pfd, tmp, re);
	if (place(rx, &re->n, pfd, tmp, name, r == 1))
		return -EPERM;
	rx_change(rx, r ? TBS_TREE_REPLACED : TBS_TREE_CREATED, &re->n);
	return 0;
}

int rx_special(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	mode_t type = re->n.kind == TK_FIFO  ? S_IFIFO
		      : re->n.kind == TK_CHR ? S_IFCHR
					     : S_IFBLK;
	struct stat sb;
	int pfd = -1, r;

	if (!(rx->o.flags & TBS_TREE_SPECIALS) || !rx->is_root)
		return rx_refuse(
			rx, &re->n,
			"a device node or FIFO; not created (run the receiver "
			"as root with --specials to create them)");
	r = link_place(rx, re, &pfd, name, NULL, 0);
	if (r < 0 || r == 2)
		return r < 0 ? r : 0;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	if (mknodat(pfd, tmp, type | (re->mode & 07777), (dev_t)re->rdev))
		return rx_refuse(rx, &re->n, "%s", strerror(errno));
	set_link_meta(rx, pfd, tmp, re);
	/* never through a link planted under the temporary name */
	if (fchmodat(pfd, tmp, re->mode & 07777, AT_SYMLINK_NOFOLLOW) ||
	    fstatat(pfd, tmp, &sb, AT_SYMLINK_NOFOLLOW)) {
		int e = errno;

		unlinkat(pfd, tmp, 0);
		return rx_refuse(rx, &re->n, "cannot set its mode: %s",
				 strerror(e));
	}
	if (place(rx, &re->n, pfd, tmp, name, r == 1))
		return -EPERM;
	re->dev = sb.st_dev;
	re->ino = sb.st_ino;
	re->n.xflags |= RXF_MADE | RXF_ATTRS;
	rx_change(rx, r ? TBS_TREE_REPLACED : TBS_TREE_CREATED, &re->n);
	return 0;
}

/* ---- regular files ---- */

/* The partial copy a RESUME continues: still the one that was hashed. */
static int reopen_partial(struct rx *rx, struct rx_entry *re, int pfd,
			  const char *tmp, uint64_t from)
{
	struct stat sb;
	int fd = open_own(rx, pfd, tmp, O_WRONLY, &sb);

	if (fd >= 0 && (sb.st_ino != re->ino || (uint64_t)sb.st_size < from ||
			ftruncate(fd, (off_t)from))) {
		close(fd);
		fd = -EPERM;
	}
	if (fd == -EPERM)
		return rx_refuse(rx, &re->n,
				 "its partial copy changed since it was "
				 "checked; not continued (send it again)");
	return fd;
}

/*
 * A new file for @re in @pfd: the one made ahead, else unnamed where it
 * can be, else under its temporary name.  Sets @unnamed, and @mode to
 * the permissions it was created with.  Return: the descriptor, -errno.
 */
static int new_file(struct rx *rx, struct rx_entry *re, int pfd,
		    const char *name, bool *unnamed, mode_t *mode)
{
	char tmp[64];
	int fd = -1;

	*unnamed = false;
	*mode = 0600;
	if (re->size >= RX_RESUME_MIN)
		drop_state(pfd, name);
	else
		fd = rx_ahead_take(rx, re->n.index, unnamed, mode);
	if (fd < 0 && rx_unnamed_for(rx, re)) {
		*mode = rx_create_mode(rx, re);
		fd = rx_unnamed_open(rx, pfd, *mode);
		*unnamed = fd >= 0;
	}
	if (fd >= 0)
		return fd;
	*mode = 0600;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	return tbsi_create_excl(pfd, tmp, O_WRONLY, 0600);
}

/* Opens the file for data from @from; -errno (refused). */
int rx_open_tmp(struct rx *rx, struct rx_entry *re, uint64_t from)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = parent_or_refuse(rx, &re->n, name), fd;
	bool unnamed = false;
	mode_t mode = 0600;
	struct stat sb;

	if (pfd < 0)
		return pfd;
	if (from) {
		rx_tmp_name(name, "part", tmp, sizeof(tmp));
		fd = reopen_partial(rx, re, pfd, tmp, from);
		if (fd < 0)
			return fd == -EPERM ? fd
					    : rx_refuse(rx, &re->n, "%s",
							strerror(-fd));
	} else {
		fd = new_file(rx, re, pfd, name, &unnamed, &mode);
		if (fd < 0)
			return rx_refuse(rx, &re->n,
					 "cannot create a file beside it: %s",
					 strerror(-fd));
	}
	rx->cur.unnamed = unnamed;
	if (re->size >= RX_RESUME_MIN && fstat(fd, &sb)) {
		rx_close_cur(rx, fd);
		return rx_refuse(rx, &re->n, "%s", strerror(errno));
	}
	rx->cur.ino = re->size >= RX_RESUME_MIN ? sb.st_ino : 0;
	if (!from)
		rx_attr_inherited(rx, fd, &re->n);
	/* what it inherited from a default ACL went: its mode did not */
	rx->cur.chmod = from || !rx_mode_final(rx, re, mode) ||
			!rx->pdacl_known || rx->pdacl;
	return fd;
}

/* Closes descriptor @fd of the file being written. */
void rx_close_cur(struct rx *rx, int fd)
{
	if (rx->cur.unnamed)
		rx_unnamed_close(rx, fd);
	else
		close(fd);
}

/*
 * Starts the write-back of what was written since the last call, so that
 * the disk works while data still arrives and the final fsync is short.
 */
void rx_writeback(struct rx *rx)
{
	struct rx_file *f = &rx->cur;

	if (f->fd < 0 || f->pos - f->wb_pos < WRITEBACK)
		return;
	sync_file_range(f->fd, (off_t)f->wb_pos, (off_t)(f->pos - f->wb_pos),
			SYNC_FILE_RANGE_WRITE);
	f->wb_pos = f->pos;
}

/* Makes the bytes written so far durable and notes how many they are. */
void rx_checkpoint(struct rx *rx, struct rx_entry *re, bool force)
{
	char name[TREE_NAME_MAX + 1];
	struct rx_file *f = &rx->cur;
	int64_t now = tbsi_now_ms();
	int pfd;

	if (re->size < RX_RESUME_MIN || f->fd < 0 || f->pos == f->ckpt_pos)
		return;
	if (!force && now - f->ckpt_ms < CKPT_MS &&
	    f->pos - f->ckpt_pos < CKPT_BYTES)
		return;
	f->ckpt_ms = now;
	pfd = rx_parent(rx, &re->n, name);
	if (pfd < 0 || fdatasync(f->fd))
		return;
	if (!write_state(pfd, name, re, f->pos, f->ino))
		f->ckpt_pos = f->pos;
}

/* What set_meta() sets. */
struct rx_meta {
	uint32_t mode, uid, gid;
	struct timespec ts[2];
};

/*
 * Owner (as root, when it differs from @sb's), then what an owner change
 * would clear (a file capability, from file @n's XATTR), then the mode
 * (unless @chmod is false: it has it) and times.
 */
static int set_meta(struct rx *rx, int fd, const struct rx_meta *m,
		    const struct rx_node *n, const struct stat *sb, bool chmod)
{
	int r;

	if (rx->is_root && (sb->st_uid != m->uid || sb->st_gid != m->gid) &&
	    fchown(fd, m->uid, m->gid)) {
		/* a file system without owners (FAT), or ids it cannot map */
		if (errno != EPERM && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -errno;
		rx_not_kept(rx, XK_OWNER, n, errno == EINVAL ? EINVAL : ENOTSUP);
	}
	r = n->kind == TK_FILE ? rx_attr_cap(rx, fd, n) : 0;
	if (r)
		return r;
	if ((chmod && fchmod(fd, m->mode & 07777)) || futimens(fd, m->ts))
		return -errno;
	return 0;
}

/*
 * Whether the file's status is needed at its end: as root (its owner is
 * compared), for a file with further names (its inode identifies it to
 * its links), for a large file (its journal goes).
 */
static bool needs_stat(const struct rx *rx, const struct rx_entry *re)
{
	return rx->is_root || (re->eflags & TEF_LINKED) ||
	       re->size >= RX_RESUME_MIN;
}

/*
 * The file is complete and its hash matched: metadata, then pending.  An
 * unnamed file stays open (rx_pend() takes it), any other is closed.
 */
int rx_finish_file(struct rx *rx, struct rx_entry *re)
{
	struct rx_meta m = { .mode = re->mode,
			     .uid = re->uid,
			     .gid = re->gid,
			     .ts = { { re->atime_s, re->atime_ns },
				     { re->mtime_s, re->mtime_ns } } };
	struct rx_file *f = &rx->cur;
	bool st = needs_stat(rx, re);
	struct stat sb = { 0 };
	int r = 0;

	if (f->pos < re->size && ftruncate(f->fd, (off_t)re->size))
		r = -errno; /* a hole at its end */
	if (!r && st && fstat(f->fd, &sb))
		r = -errno;
	if (!r)
		r = set_meta(rx, f->fd, &m, &re->n, &sb, f->chmod || f->acl);
	if (!r && st) {
		re->dev = sb.st_dev;
		re->ino = sb.st_ino;
	}
	if (!r && re->size >= RX_RESUME_MIN && fsync(f->fd))
		r = -errno;
	else if (!r && f->wb_pos && f->pos > f->wb_pos) /* the rest of it */
		sync_file_range(f->fd, (off_t)f->wb_pos,
				(off_t)(f->pos - f->wb_pos),
				SYNC_FILE_RANGE_WRITE);
	if (r || !f->unnamed) {
		rx_close_cur(rx, f->fd);
		f->fd = -1;
	}
	if (r) {
		if (!f->unnamed)
			rx_drop_tmp(rx, re);
		return rx_refuse(rx, &re->n, "%s", strerror(-r));
	}
	return 0;
}

void rx_drop_tmp(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = rx_parent(rx, &re->n, name);

	if (pfd < 0)
		return;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	drop_state(pfd, name);
}

/* ---- commits: durable, then in place, then confirmed ---- */

/**
 * rx_place_file() - put a written file in place (the committer)
 * @rx: receiver (only what stays the same during the transfer is read)
 * @b:  its batch, whose directories are held
 * @f:  the file
 *
 * Only system calls on the batch's own descriptors: the committer calls
 * it while the receiving thread goes on.  An unnamed file is linked to
 * its name, which never replaces anything, and closed; any other is
 * renamed, and goes when it cannot take its name.
 *
 * Return: 0; -EEXIST (there, and not to be replaced), -ESTALE (--update:
 * what is there became newer), or another -errno.
 */
int rx_place_file(struct rx *rx, const struct rx_batch *b, struct rx_cfile *f)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = b->dfd[f->dir], r;
	struct stat sb;

	memcpy(name, b->names + f->name, f->name_len);
	name[f->name_len] = 0;
	if (f->fd >= 0) {
		r = rx_unnamed_link(rx, f->fd, pfd, name);
		rx_unnamed_close(rx, f->fd);
		f->fd = -1;
		return r;
	}
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	if ((f->flags & CF_UPDATE) &&
	    !fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) &&
	    !older(&sb, f->mtime_s, f->mtime_ns)) {
		unlinkat(pfd, tmp, 0);
		return -ESTALE;
	}
	r = rx_rename(pfd, tmp, name, f->flags & CF_REPLACE);
	if (r) {
		unlinkat(pfd, tmp, 0);
		return r;
	}
	if (f->flags & CF_STATE)
		drop_state(pfd, name);
	return 0;
}

/* What the committer did with file @f: it is in place, or refused. */
void rx_placed(struct rx *rx, const struct rx_cfile *f)
{
	struct rx_entry *re = rx_ent(rx, f->index);

	if (!re || re->n.state != RS_PENDING)
		return;
	if (f->err == -EEXIST) {
		rx_refuse(rx, &re->n, "exists; not replaced (use --overwrite)");
	} else if (f->err == -ESTALE) {
		rx_refuse(rx, &re->n,
			  "it changed here during the transfer and is now "
			  "newer; kept (--update)");
	} else if (f->err) {
		rx_refuse(rx, &re->n, "%s", strerror(-f->err));
	} else {
		re->n.xflags |= RXF_MADE;
		rx_change(rx, f->flags & CF_REPLACE ? TBS_TREE_REPLACED
						    : TBS_TREE_CREATED,
			  &re->n);
	}
}

/* ---- hard links ---- */

static bool same_inode(int afd, const char *a, int bfd, const char *b)
{
	struct stat sa, sb;

	return !fstatat(afd, a, &sa, AT_SYMLINK_NOFOLLOW) &&
	       !fstatat(bfd, b, &sb, AT_SYMLINK_NOFOLLOW) &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Links @tmp in @pfd to file @t, if @tname still is the file it wrote. */
static int link_made(int tfd, const char *tname, const struct rx_link *t,
		     int pfd, const char *tmp)
{
	struct stat sb;

	unlinkat(pfd, tmp, 0);
	if (linkat(tfd, tname, pfd, tmp, 0))
		return -errno;
	if (fstatat(pfd, tmp, &sb, AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(sb.st_mode) || sb.st_ino != t->ino ||
	    sb.st_dev != t->dev) {
		unlinkat(pfd, tmp, 0);
		return -ESTALE;
	}
	return 0;
}

/* Why file @t may not get a further name, or NULL. */
static const char *unlinkable(const struct rx_link *t)
{
	if (t->n.kind != TK_FILE || t->n.state != RS_DONE)
		return "the file it is a link to was not received";
	if (t->want == TW_KEEP)
		return "the file it is a link to was kept, newer here "
		       "(--update); not linked";
	if (!(t->n.xflags & (RXF_MADE | RXF_PROVEN)))
		return "the sender did not prove the content of the file it "
		       "is a link to; not linked";
	return NULL;
}

/* Makes the further name @re of file @t; 0 or refused. */
static int link_to(struct rx *rx, struct rx_entry *re, const struct rx_link *t)
{
	char tname[TREE_NAME_MAX + 1], name[TREE_NAME_MAX + 1], tmp[64];
	const char *why = unlinkable(t);
	int tfd, pfd, r;

	if (why)
		return rx_refuse(rx, &re->n, "%s", why);
	if (rx->dry || dry_parent(rx, &re->n)) {
		rx_change(rx, TBS_TREE_CREATED, &re->n);
		return 0;
	}
	tfd = rx_parent(rx, &t->n, tname);
	tfd = tfd < 0 ? tfd : fcntl(tfd, F_DUPFD_CLOEXEC, 0);
	if (tfd < 0)
		return rx_refuse(rx, &re->n,
				 "the file it is a link to is gone");
	pfd = parent_or_refuse(rx, &re->n, name);
	r = pfd < 0 ? pfd : 0;
	if (!r && !same_inode(tfd, tname, pfd, name)) {
		rx_tmp_name(name, "part", tmp, sizeof(tmp));
		r = link_made(tfd, tname, t, pfd, tmp);
		if (r)
			r = rx_refuse(rx, &re->n, "%s",
				      r == -ESTALE ? "the file it is a link to "
						     "changed here; not linked"
						   : strerror(-r));
		else if (!place(rx, &re->n, pfd, tmp, name,
				rx->o.flags & TBS_TREE_OVERWRITE))
			rx_change(rx, TBS_TREE_CREATED, &re->n);
		else
			r = -EPERM;
	}
	close(tfd);
	return r;
}

/* The file hard link @re names, as far as it is settled; NULL: not yet. */
static bool link_target(struct rx *rx, const struct rx_entry *re,
			struct rx_link *t)
{
	struct rx_entry *e = rx_ent(rx, re->link);
	struct rx_link *l;

	if (e) {
		if (e->n.state != RS_DONE && e->n.state != RS_FAILED)
			return false;
		*t = (struct rx_link){ .n = e->n,
				       .want = e->want,
				       .dev = e->dev,
				       .ino = e->ino };
		return true;
	}
	l = rx_link_find(rx, re->link);
	if (!l)
		*t = (struct rx_link){ .n = { .state = RS_FAILED } };
	else
		*t = *l;
	return true;
}

/*
 * The hard links waiting for their file: each whose file is settled is
 * made (a further name of a file this transfer wrote or that the sender
 * proved the same) or refused.
 */
void rx_links(struct rx *rx)
{
	struct rx_link t;
	size_t i, k = 0;

	for (i = 0; i < rx->nlwait; i++) {
		struct rx_entry *re = rx_ent(rx, rx->lwait[i]);

		if (!re || re->n.state != RS_LINK)
			continue;
		if (!link_target(rx, re, &t)) {
			rx->lwait[k++] = rx->lwait[i];
			continue;
		}
		re->n.state = RS_DONE;
		link_to(rx, re, &t);
	}
	rx->nlwait = k;
}

/* ---- the end ---- */

/*
 * Owner, mode and times of a directory: only of one this transfer made,
 * or with --overwrite or --delete (a mirror), and only if it still is the
 * directory checked.
 */
static void dir_meta(struct rx *rx, struct rx_dir *d)
{
	struct rx_meta m = { .mode = d->mode,
			     .uid = d->uid,
			     .gid = d->gid,
			     .ts = { { d->atime_s, d->atime_ns },
				     { d->mtime_s, d->mtime_ns } } };
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd, fd, r;

	if (!(d->n.xflags & RXF_MADE) &&
	    !(rx->o.flags & (TBS_TREE_OVERWRITE | TBS_TREE_DELETE)))
		return;
	pfd = rx_parent(rx, &d->n, name);
	if (pfd < 0)
		return;
	fd = openat(pfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	if (!r && (fstat(fd, &sb) || sb.st_ino != d->ino || sb.st_dev != d->dev))
		r = -ESTALE;
	if (!r && (d->n.xflags & RXF_MADE))
		unlinkat(fd, DIR_MARK, 0);
	if (!r)
		r = set_meta(rx, fd, &m, &d->n, &sb, true);
	if (r)
		rx_refuse(rx, &d->n, "cannot set its mode or times: %s",
			  r == -ESTALE ? "it was replaced during the transfer"
				       : strerror(-r));
	if (fd >= 0)
		close(fd);
}

/* After DONE: the last commit, then hard links. */
int rx_finalize(struct rx *rx)
{
	size_t i;
	int r = rx_commit_all(rx);

	rx_ahead_stop(rx); /* what it made and was not sent goes */
	if (r)
		return r;
	rx_links(rx);
	for (i = 0; i < rx->nlwait; i++) {
		struct rx_entry *re = rx_ent(rx, rx->lwait[i]);

		if (re && re->n.state == RS_LINK)
			rx_refuse(rx, &re->n,
				  "the file it is a link to was not received");
	}
	rx->nlwait = 0;
	return 0;
}

/* At the very end (after --delete removed what it removes): directories'
 * metadata, deepest first, and a last sync. */
int rx_finish_dirs(struct rx *rx)
{
	size_t i;
	int r;

	for (i = rx->ndirs; i-- > 0 && !rx->dry;)
		if (rx->dirs[i].n.state != RS_FAILED)
			dir_meta(rx, &rx->dirs[i]);
	r = rx->dry ? 0 : rx_sync(rx);
	if (r)
		return tbsi_err(rx->err, r, "could not sync: %s",
				strerror(-r));
	return 0;
}
