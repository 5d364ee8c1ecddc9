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
 * 2. Everything is created under a temporary name in its own directory
 *    (".tbs-" + hash of the name + ".part"), exclusively (O_EXCL), and
 *    renamed into place once written, verified and durable.  No entry may
 *    take a ".tbs-" name, so a sender cannot plant one.
 * 3. A file that is opened again (a partial copy, its journal) must be a
 *    regular file with one link, owned by this process, on the device of
 *    its directory, and, for a partial copy, the inode its journal names:
 *    so neither a sender nor a local user can point the receiver at
 *    another file.  Opens never block (O_NONBLOCK) and never follow.
 * 4. Nothing that was there changes without the flag that allows it:
 *    files and links are replaced only with --overwrite (or --update when
 *    older), directories that existed keep their owner, mode and times,
 *    and a hard link is only made to a file this transfer wrote.
 * 5. Every file system written to is synced before a file is confirmed.
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

#define RESUME_MIN (8u << 20) /* files from this size keep a journal */
#define CKPT_MS 5000
#define CKPT_BYTES (1ull << 30)
#define WRITEBACK (8u << 20) /* start writing back every 8 MiB */

/* The entries from the top down to @idx (its directories, then it). */
int rx_chain(const struct rx *rx, uint32_t idx, uint32_t *out)
{
	uint32_t up[TREE_DEPTH_MAX];
	int n = 0, i;

	for (; idx != TREE_NONE && n < TREE_DEPTH_MAX; idx = rx->ents[idx].parent)
		up[n++] = idx;
	for (i = 0; i < n; i++)
		out[i] = up[n - 1 - i];
	return n;
}

void rx_path(const struct rx *rx, const struct rx_entry *re, char *buf,
	     size_t len)
{
	uint8_t comps[TREE_PATH_MAX + 2 * TREE_DEPTH_MAX];
	uint32_t idx[TREE_DEPTH_MAX];
	struct tree_entry e = { .comps = comps };
	int n = rx_chain(rx, (uint32_t)(re - rx->ents), idx), i;

	for (i = 0; i < n; i++) {
		const struct rx_entry *c = &rx->ents[idx[i]];

		tbsi_le_put16(comps + e.comps_len, c->name_len);
		memcpy(comps + e.comps_len + 2, rx->arena + c->name,
		       c->name_len);
		e.comps_len += 2 + (size_t)c->name_len;
	}
	if (tree_path_text(&e, buf, len) && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

void rx_tmp_name(const char *name, const char *ext, char *buf, size_t len)
{
	snprintf(buf, len, ".tbs-%016" PRIx64 ".%s",
		 (uint64_t)XXH3_64bits(name, strlen(name)), ext);
}

/* Opens directory entry @dir from the root, one name at a time. */
static int walk_to(struct rx *rx, uint32_t dir)
{
	uint32_t idx[TREE_DEPTH_MAX];
	char name[TREE_NAME_MAX + 1];
	int n = rx_chain(rx, dir, idx), i, fd = rx->root, nfd;

	for (i = 0; i < n; i++) {
		const struct rx_entry *c = &rx->ents[idx[i]];

		memcpy(name, rx->arena + c->name, c->name_len);
		name[c->name_len] = 0;
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

/* ---- the file systems written to ---- */

/* Notes the file system of directory @dfd, so that commits sync it. */
static int fs_add(struct rx *rx, int dfd, uint64_t dev)
{
	struct rx_fs *n;
	size_t i;
	int fd;

	for (i = 0; i < rx->nfs; i++)
		if (rx->fs[i].dev == dev)
			return 0;
	n = realloc(rx->fs, (rx->nfs + 1) * sizeof(*n));
	if (!n) {
		errno = ENOMEM;
		return -1;
	}
	rx->fs = n;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rx->fs[rx->nfs++] = (struct rx_fs){ .dev = dev, .fd = fd };
	return 0;
}

/* Makes everything written so far durable, on every file system. */
int rx_sync(struct rx *rx)
{
	size_t i;

	for (i = 0; i < rx->nfs; i++)
		if (syncfs(rx->fs[i].fd))
			return -errno;
	return 0;
}

void rx_fs_free(struct rx *rx)
{
	size_t i;

	for (i = 0; i < rx->nfs; i++)
		close(rx->fs[i].fd);
	free(rx->fs);
	rx->fs = NULL;
	rx->nfs = 0;
}

/*
 * The parent directory of @re (borrowed: valid until the next call) and
 * its last component in @name.  Negative errno: ENOENT a parent is
 * missing, ENOTDIR or ELOOP a parent is not a directory or is a link.
 */
int rx_parent(struct rx *rx, const struct rx_entry *re, char *name)
{
	struct stat sb;
	int fd;

	memcpy(name, rx->arena + re->name, re->name_len);
	name[re->name_len] = 0;
	if (rx->pfd >= 0 && rx->pidx == re->parent)
		return rx->pfd;
	fd = walk_to(rx, re->parent);
	if (fd >= 0 && (fstat(fd, &sb) || fs_add(rx, fd, sb.st_dev))) {
		close(fd);
		fd = -errno;
	}
	if (fd < 0)
		return fd;
	if (rx->pfd >= 0)
		close(rx->pfd);
	rx->pfd = fd;
	rx->pdev = sb.st_dev;
	rx->pidx = re->parent;
	rx->pfresh = re->parent != TREE_NONE &&
		     (rx->ents[re->parent].xflags & RXF_FRESH);
	return fd;
}

static int parent_or_refuse(struct rx *rx, struct rx_entry *re, char *name)
{
	int fd = rx_parent(rx, re, name);

	if (fd == -ENOENT)
		return rx_refuse(rx, re, "its directory was not received");
	if (fd == -ENOTDIR || fd == -ELOOP)
		return rx_refuse(
			rx, re,
			"a directory on its path is a symbolic link or not a "
			"directory; nothing is written through it");
	if (fd < 0)
		return rx_refuse(rx, re, "%s", strerror(-fd));
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

/* A partial copy from an earlier run: its verified prefix, hashed. */
static int partial(struct rx *rx, int pfd, const char *name,
		   struct rx_entry *re, uint64_t *off, uint64_t *hash)
{
	char tname[64];
	struct stat sb;
	uint64_t done = 0, ino = 0;
	int fd, r;

	if (re->size < RESUME_MIN || read_state(rx, pfd, name, re, &done, &ino))
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
	*hash = tree_hash_digest(re->resume);
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
static bool older(const struct stat *sb, const struct rx_entry *re)
{
	return sb->st_mtim.tv_sec < re->mtime_s ||
	       (sb->st_mtim.tv_sec == re->mtime_s &&
		(uint64_t)sb->st_mtim.tv_nsec < re->mtime_ns);
}

static int decide_existing(struct rx *rx, struct rx_entry *re, int pfd,
			   const char *name, const struct stat *sb,
			   uint64_t *hash)
{
	bool over = rx->o.flags & TBS_TREE_OVERWRITE;
	bool upd = rx->o.flags & TBS_TREE_UPDATE;
	bool newer = !older(sb, re);

	if (S_ISDIR(sb->st_mode))
		return rx_refuse(rx, re, "a directory of that name exists");
	if (S_ISREG(sb->st_mode) && (uint64_t)sb->st_size == re->size &&
	    sb->st_mtim.tv_sec == re->mtime_s &&
	    (uint64_t)sb->st_mtim.tv_nsec == re->mtime_ns &&
	    !hash_existing(rx, pfd, name, sb, hash)) {
		re->wflags = over ? TWF_REPLACE : 0;
		return TW_VERIFY;
	}
	if (upd && newer)
		return TW_KEEP;
	if (!over && !upd)
		return rx_refuse(
			rx, re,
			"exists and differs; not replaced (use --overwrite, or "
			"--update for newer files only)");
	re->wflags = TWF_REPLACE;
	return TW_FULL;
}

/* What to ask the sender for, for regular file @re; negative: refused. */
int rx_decide(struct rx *rx, struct rx_entry *re, uint64_t *off, uint64_t *hash)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd = parent_or_refuse(rx, re, name);

	*off = *hash = 0;
	if (pfd < 0)
		return pfd;
	if (re->size > rx->o.max_file_size)
		return rx_refuse(rx, re, "larger than the limit of %llu bytes",
				 (unsigned long long)rx->o.max_file_size);
	if (rx->pfresh)
		return TW_FULL;
	if (!fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		return decide_existing(rx, re, pfd, name, &sb, hash);
	if (errno != ENOENT)
		return rx_refuse(rx, re, "%s", strerror(errno));
	return partial(rx, pfd, name, re, off, hash);
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

int rx_mkdir(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd = parent_or_refuse(rx, re, name), fd;
	bool made;

	if (pfd < 0)
		return pfd;
	made = !mkdirat(pfd, name, 0700);
	if (!made && errno != EEXIST)
		return rx_refuse(rx, re, "%s", strerror(errno));
	fd = openat(pfd, name,
		    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		if (fd >= 0)
			close(fd);
		return rx_refuse(
			rx, re, "exists and is not a directory (not replaced)");
	}
	re->dev = sb.st_dev;
	re->ino = sb.st_ino;
	if (made)
		mark_dir(fd, &sb);
	if (made || marked(fd, &sb))
		re->xflags |= RXF_MADE;
	if (made) /* nothing can be in it but what this transfer puts */
		re->xflags |= RXF_FRESH;
	close(fd);
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
static int place(struct rx *rx, struct rx_entry *re, int pfd, const char *tmp,
		 const char *name, bool replace)
{
	if (!renameat2(pfd, tmp, pfd, name, replace ? 0 : RENAME_NOREPLACE))
		return 0;
	unlinkat(pfd, tmp, 0);
	if (errno == EEXIST)
		return rx_refuse(rx, re,
				 "exists; not replaced (use --overwrite)");
	return rx_refuse(rx, re, "%s", strerror(errno));
}

static bool same_link(int pfd, const char *name, const uint8_t *target,
		      size_t len)
{
	char buf[TREE_TARGET_MAX + 1];
	ssize_t n = readlinkat(pfd, name, buf, sizeof(buf));

	return n == (ssize_t)len && !memcmp(buf, target, len);
}

int rx_symlink(struct rx *rx, struct rx_entry *re, const uint8_t *target,
	       size_t len)
{
	char name[TREE_NAME_MAX + 1], tmp[64], t[TREE_TARGET_MAX + 1];
	int pfd = parent_or_refuse(rx, re, name);
	struct stat sb;
	bool replace;

	if (pfd < 0)
		return pfd;
	memcpy(t, target, len);
	t[len] = 0;
	replace = rx->o.flags & TBS_TREE_OVERWRITE;
	if (!fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW)) {
		if (S_ISLNK(sb.st_mode) && same_link(pfd, name, target, len)) {
			if (replace)
				set_link_meta(rx, pfd, name, re);
			return 0;
		}
		if (S_ISDIR(sb.st_mode))
			return rx_refuse(rx, re,
					 "a directory of that name exists");
		if (!replace && (rx->o.flags & TBS_TREE_UPDATE)) {
			if (!older(&sb, re))
				return 0; /* --update keeps the newer one */
			replace = true;
		}
	}
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	if (symlinkat(t, pfd, tmp))
		return rx_refuse(rx, re, "%s", strerror(errno));
	set_link_meta(rx, pfd, tmp, re);
	return place(rx, re, pfd, tmp, name, replace);
}

int rx_special(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	mode_t type = re->kind == TK_FIFO  ? S_IFIFO
		      : re->kind == TK_CHR ? S_IFCHR
					   : S_IFBLK;
	int pfd;

	if (!(rx->o.flags & TBS_TREE_SPECIALS) || !rx->is_root)
		return rx_refuse(
			rx, re,
			"a device node or FIFO; not created (run the receiver "
			"as root with --specials to create them)");
	pfd = parent_or_refuse(rx, re, name);
	if (pfd < 0)
		return pfd;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	if (mknodat(pfd, tmp, type | (re->mode & 07777), (dev_t)re->rdev))
		return rx_refuse(rx, re, "%s", strerror(errno));
	set_link_meta(rx, pfd, tmp, re);
	/* never through a link planted under the temporary name */
	if (fchmodat(pfd, tmp, re->mode & 07777, AT_SYMLINK_NOFOLLOW)) {
		int e = errno;

		unlinkat(pfd, tmp, 0);
		return rx_refuse(rx, re, "cannot set its mode: %s",
				 strerror(e));
	}
	return place(rx, re, pfd, tmp, name, rx->o.flags & TBS_TREE_OVERWRITE);
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
		return rx_refuse(rx, re,
				 "its partial copy changed since it was "
				 "checked; not continued (send it again)");
	return fd;
}

/* Opens the temporary file for data from @from; -errno (refused). */
int rx_open_tmp(struct rx *rx, struct rx_entry *re, uint64_t from)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = parent_or_refuse(rx, re, name), fd;
	struct stat sb;

	if (pfd < 0)
		return pfd;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	if (from) {
		fd = reopen_partial(rx, re, pfd, tmp, from);
		if (fd < 0)
			return fd == -EPERM ? fd : rx_refuse(rx, re, "%s",
							      strerror(-fd));
	} else {
		if (re->size >= RESUME_MIN)
			drop_state(pfd, name);
		fd = create_excl(pfd, tmp);
		if (fd < 0)
			return rx_refuse(rx, re,
					 "cannot create a file beside it: %s",
					 strerror(errno));
	}
	if (fstat(fd, &sb)) {
		close(fd);
		return rx_refuse(rx, re, "%s", strerror(errno));
	}
	rx->cur.ino = sb.st_ino;
	return fd;
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

	if (re->size < RESUME_MIN || f->fd < 0 || f->pos == f->ckpt_pos)
		return;
	if (!force && now - f->ckpt_ms < CKPT_MS &&
	    f->pos - f->ckpt_pos < CKPT_BYTES)
		return;
	f->ckpt_ms = now;
	pfd = rx_parent(rx, re, name);
	if (pfd < 0 || fdatasync(f->fd))
		return;
	if (!write_state(pfd, name, re, f->pos, f->ino))
		f->ckpt_pos = f->pos;
}

/* Owner (as root, when it differs), mode and times. */
static int set_meta(struct rx *rx, int fd, const struct rx_entry *re)
{
	struct timespec ts[2] = { { re->atime_s, re->atime_ns },
				  { re->mtime_s, re->mtime_ns } };
	struct stat sb;

	if (rx->is_root &&
	    (fstat(fd, &sb) || sb.st_uid != re->uid || sb.st_gid != re->gid) &&
	    fchown(fd, re->uid, re->gid))
		return -errno;
	if (fchmod(fd, re->mode & 07777) || futimens(fd, ts))
		return -errno;
	return 0;
}

/* The file is complete and its hash matched: metadata, then pending. */
int rx_finish_file(struct rx *rx, struct rx_entry *re)
{
	struct rx_file *f = &rx->cur;
	struct stat sb;
	int r = 0;


	if (f->pos < re->size && ftruncate(f->fd, (off_t)re->size))
		r = -errno; /* a hole at its end */
	if (!r)
		r = set_meta(rx, f->fd, re);
	if (!r && fstat(f->fd, &sb))
		r = -errno;
	if (!r) {
		re->dev = sb.st_dev;
		re->ino = sb.st_ino;
	}
	if (!r && re->size >= RESUME_MIN && fsync(f->fd))
		r = -errno;
	else if (!r && f->pos > f->wb_pos) /* the batch's sync finds it done */
		sync_file_range(f->fd, (off_t)f->wb_pos,
				(off_t)(f->pos - f->wb_pos),
				SYNC_FILE_RANGE_WRITE);
	close(f->fd);
	f->fd = -1;
	if (r) {
		rx_drop_tmp(rx, re);
		return rx_refuse(rx, re, "%s", strerror(-r));
	}
	return 0;
}

void rx_drop_tmp(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = rx_parent(rx, re, name);

	if (pfd < 0)
		return;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	unlinkat(pfd, tmp, 0);
	drop_state(pfd, name);
}

/* ---- commits: durable, then in place, then confirmed ---- */

static int confirm(struct rx *rx, uint32_t idx)
{
	uint8_t b[4];

	tbsi_le_put32(b, idx);
	return rx_put(rx, TM_CONFIRM, b, 4);
}

/* With --update alone, what is replaced must still be older. */
static bool still_older(struct rx *rx, const struct rx_entry *re, int pfd,
			const char *name)
{
	struct stat sb;

	if (!(re->wflags & TWF_REPLACE) || (rx->o.flags & TBS_TREE_OVERWRITE))
		return true;
	return fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) || older(&sb, re);
}

static int rename_pending(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1], tmp[64];
	int pfd = parent_or_refuse(rx, re, name);

	if (pfd < 0)
		return pfd;
	rx_tmp_name(name, "part", tmp, sizeof(tmp));
	if (!still_older(rx, re, pfd, name)) {
		unlinkat(pfd, tmp, 0);
		return rx_refuse(rx, re,
				 "it changed here during the transfer and is "
				 "now newer; kept (--update)");
	}
	if (place(rx, re, pfd, tmp, name, re->wflags & TWF_REPLACE))
		return -1;
	re->xflags |= RXF_MADE;
	if (re->size >= RESUME_MIN)
		drop_state(pfd, name);
	return 0;
}

/*
 * Every pending file: synced (one syncfs for the batch), renamed into
 * place, the renames synced, then confirmed to the sender.
 */
int rx_commit(struct rx *rx)
{
	size_t i;
	int r = 0;

	if (!rx->npend)
		return 0;
	r = rx_sync(rx);
	for (i = 0; !r && i < rx->npend; i++)
		rename_pending(rx, &rx->ents[rx->pend[i]]);
	if (!r)
		r = rx_sync(rx);
	for (i = 0; !r && i < rx->npend; i++) {
		struct rx_entry *re = &rx->ents[rx->pend[i]];

		if (re->state != RS_PENDING)
			continue;
		re->state = RS_DONE;
		rx->st.files_done++;
		rx->st.bytes_done += re->size;
		r = confirm(rx, rx->pend[i]);
	}
	rx->npend = 0;
	rx->pend_bytes = 0;
	if (r)
		return tbsi_err(rx->err, r,
				"could not make the files durable: %s",
				strerror(-r));
	return 0;
}

static bool same_inode(int afd, const char *a, int bfd, const char *b)
{
	struct stat sa, sb;

	return !fstatat(afd, a, &sa, AT_SYMLINK_NOFOLLOW) &&
	       !fstatat(bfd, b, &sb, AT_SYMLINK_NOFOLLOW) &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Links @tmp in @pfd to file @t, if @tname still is the file it wrote. */
static int link_made(int tfd, const char *tname, const struct rx_entry *t,
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

/*
 * A further name of file @re->link: of a file this transfer wrote or
 * found identical.  A file kept because it is newer here (--update) is
 * not the sender's: a sender that merely named it with an old time would
 * get a second name for it, anywhere in the directory.
 */
static void hardlink(struct rx *rx, struct rx_entry *re)
{
	struct rx_entry *t = &rx->ents[re->link];
	char tname[TREE_NAME_MAX + 1], name[TREE_NAME_MAX + 1], tmp[64];
	int tfd, pfd, r;

	if (t->kind != TK_FILE || t->state != RS_DONE) {
		rx_refuse(rx, re, "the file it is a link to was not received");
		return;
	}
	tfd = rx_parent(rx, t, tname);
	tfd = tfd < 0 ? tfd : fcntl(tfd, F_DUPFD_CLOEXEC, 0);
	if (tfd < 0) {
		rx_refuse(rx, re, "the file it is a link to is gone");
		return;
	}
	pfd = parent_or_refuse(rx, re, name);
	if (pfd >= 0 && same_inode(tfd, tname, pfd, name)) {
		re->state = RS_DONE;
	} else if (pfd >= 0 && t->want == TW_KEEP) {
		rx_refuse(rx, re,
			  "the file it is a link to was kept, newer here "
			  "(--update); not linked");
	} else if (pfd >= 0) {
		rx_tmp_name(name, "part", tmp, sizeof(tmp));
		r = link_made(tfd, tname, t, pfd, tmp);
		if (r)
			rx_refuse(rx, re, "%s",
				  r == -ESTALE ? "the file it is a link to "
						 "changed here; not linked"
					       : strerror(-r));
		else if (!place(rx, re, pfd, tmp, name,
				rx->o.flags & TBS_TREE_OVERWRITE))
			re->state = RS_DONE;
	}
	close(tfd);
}

/*
 * Owner, mode and times of a directory: only of one this transfer made,
 * or with --overwrite, and only if it still is the directory checked.
 */
static void dir_meta(struct rx *rx, struct rx_entry *re)
{
	char name[TREE_NAME_MAX + 1];
	struct stat sb;
	int pfd, fd, r;

	if (!(re->xflags & RXF_MADE) && !(rx->o.flags & TBS_TREE_OVERWRITE))
		return;
	pfd = rx_parent(rx, re, name);
	if (pfd < 0)
		return;
	fd = openat(pfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	if (!r && (fstat(fd, &sb) || sb.st_ino != re->ino ||
		   sb.st_dev != re->dev))
		r = -ESTALE;
	if (!r && (re->xflags & RXF_MADE))
		unlinkat(fd, DIR_MARK, 0);
	if (!r)
		r = set_meta(rx, fd, re);
	if (r)
		rx_refuse(rx, re, "cannot set its mode or times: %s",
			  r == -ESTALE ? "it was replaced during the transfer"
				       : strerror(-r));
	if (fd >= 0)
		close(fd);
}

/* After DONE: links to the files, then directories' metadata, deepest
 * first, and a last sync. */
int rx_finalize(struct rx *rx)
{
	size_t i;
	int r = rx_commit(rx);

	if (r)
		return r;
	for (i = 0; i < rx->n; i++)
		if (rx->ents[i].kind == TK_HARDLINK &&
		    rx->ents[i].state != RS_FAILED)
			hardlink(rx, &rx->ents[i]);
	for (i = rx->n; i-- > 0;)
		if (rx->ents[i].kind == TK_DIR &&
		    rx->ents[i].state != RS_FAILED)
			dir_meta(rx, &rx->ents[i]);
	r = rx_sync(rx);
	if (r)
		return tbsi_err(rx->err, r, "could not sync: %s",
				strerror(-r));
	return 0;
}
