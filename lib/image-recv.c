// SPDX-License-Identifier: MIT
/*
 * The receiving side of a disk image.  Reads the HEADER, prepares the
 * target (a sparse file truncated to the image's size, or a block device
 * that is big enough and not in use), answers START with the offset its
 * journal confirms and the hash of the blocks before it, then writes the
 * extents in order: each one is checked (offset, length, XXH3-64 of its
 * bytes) before a byte of it is written.  Every sync_every bytes it syncs,
 * records the offset in the journal and sends CONFIRM.  At FINAL it
 * compares the hash of the whole image, syncs, writes the sidecar, removes
 * the journal, sends DONE, and only then confirms the session's stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "image-int.h"
#include "internal.h"

#define RUN_DIR "/run/tbstream"
#define DRAIN_MS 30000

struct receiver {
	struct tbs_session *s;
	const struct tbs_image_opts *o;
	struct tbs_error *err;
	struct tbs_image_stats st;
	struct tbs_image_info info;
	const char *path;
	int dfd; /* the target's directory (O_PATH) */
	char base[NAME_MAX + 1]; /* the target's name in it */
	int jdfd; /* the journal's directory: @dfd, or the state directory */
	char jname[NAME_MAX + 32];
	struct img_journal j;
	int fd;
	bool is_dev, finished;
	uint64_t cursor, ckpt, sync_every;
	struct tree_hash *hash;
	uint8_t *rec, *raw;
	ZSTD_DCtx *dctx;
};

static int fail(struct receiver *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct receiver *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->err->code = code;
	va_start(ap, fmt);
	vsnprintf(r->err->msg, sizeof(r->err->msg), fmt, ap);
	va_end(ap);
	return code;
}

static int send_u64s(struct receiver *r, uint16_t type, const uint64_t *v,
		     int n)
{
	uint8_t p[32];
	ssize_t w;

	w = tbs_session_send(r->s, type, p, tbsi_img_put_u64s(p, v, n), -1);
	if (w < 0)
		return tbsi_img_session_err(r->s, (int)w, "lost the sender",
					    r->err);
	return 0;
}

/* The next record of the sender; 0 at the end of its stream. */
static ssize_t next(struct receiver *r, uint16_t *type)
{
	ssize_t n = tbs_session_recv(r->s, type, r->rec, IMG_REC_MAX, -1);

	if (n < 0)
		return tbsi_img_session_err(r->s, (int)n, "lost the sender",
					    r->err);
	return n;
}

static int resize(struct receiver *r, uint64_t keep)
{
	if (r->is_dev)
		return 0;
	if (ftruncate(r->fd, (off_t)keep) ||
	    ftruncate(r->fd, (off_t)r->info.size))
		return fail(r, -errno, "could not size '%s': %s", r->path,
			    strerror(errno));
	return 0;
}

/* The target's directory (held) and its name in it. */
static int split_target(struct receiver *r)
{
	const char *slash = strrchr(r->path, '/'), *base;
	char dir[PATH_MAX];

	base = slash ? slash + 1 : r->path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..") ||
	    strlen(base) + sizeof(TBS_IMAGE_JOURNAL) + 4 > NAME_MAX)
		return fail(r, -EINVAL,
			    "'%s' does not name a file or a device", r->path);
	snprintf(r->base, sizeof(r->base), "%s", base);
	snprintf(dir, sizeof(dir), "%.*s",
		 slash ? (int)(slash - r->path) + (slash == r->path) : 1,
		 slash ? r->path : ".");
	r->dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->dfd < 0)
		return fail(r, -errno, "could not open '%s': %s", dir,
			    strerror(errno));
	return 0;
}

/*
 * What the target is, without following its last component: nothing
 * (a new file), a file, or a block device.  A symbolic link is followed
 * only to a block device (/dev/disk/by-id/...), which the user named.
 */
static int classify(struct receiver *r, struct stat *sb, bool *exists)
{
	*exists = !fstatat(r->dfd, r->base, sb, AT_SYMLINK_NOFOLLOW);
	if (!*exists)
		return errno == ENOENT ? 0
				       : fail(r, -errno, "could not stat '%s': %s",
					      r->path, strerror(errno));
	if (S_ISLNK(sb->st_mode) &&
	    (stat(r->path, sb) || !S_ISBLK(sb->st_mode)))
		return fail(r, -ELOOP,
			    "'%s' is a symbolic link to no block device; not "
			    "followed (give the file itself)",
			    r->path);
	r->is_dev = S_ISBLK(sb->st_mode);
	if (!r->is_dev && !S_ISREG(sb->st_mode))
		return fail(r, -EINVAL,
			    "'%s' is neither a block device nor a file",
			    r->path);
	return 0;
}

/* Where a device's journal goes: a directory only this user may write. */
static int open_state_dir(struct receiver *r)
{
	const char *dir = r->o->state_dir ? r->o->state_dir : RUN_DIR;
	struct stat sb;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return fail(r, -errno, "could not create '%s': %s", dir,
			    strerror(errno));
	r->jdfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->jdfd < 0 || fstat(r->jdfd, &sb))
		return fail(r, -errno, "could not open '%s': %s", dir,
			    strerror(errno));
	if (sb.st_uid != geteuid() || (sb.st_mode & 022))
		return fail(r, -EPERM,
			    "'%s' may be written by other users; the journal "
			    "is not kept there (use --state-dir)",
			    dir);
	return 0;
}

/* A journal counts only for the same image and the same target. */
static bool resumable(struct receiver *r, const struct stat *sb, bool exists)
{
	uint64_t target = r->is_dev ? (uint64_t)sb->st_rdev : sb->st_ino;

	return exists &&
	       !tbsi_img_journal_read(r->jdfd, r->jname, &r->j) &&
	       r->j.key == tbsi_img_key(&r->info) &&
	       r->j.size == r->info.size && r->j.target == target &&
	       (r->is_dev || (sb->st_nlink == 1 && sb->st_uid == geteuid()));
}

/*
 * A new image file; an existing one, even empty (its mode may be what the
 * user chose for the image), is replaced only with --force, and then only
 * its name: its bytes are never written.
 */
static int create_file(struct receiver *r, bool exists)
{
	if (exists && !r->o->force)
		return fail(r, -EEXIST,
			    "'%s' exists and is not an unfinished transfer; "
			    "remove it or use --force",
			    r->path);
	if (exists && unlinkat(r->dfd, r->base, 0))
		return fail(r, -errno, "could not replace '%s': %s", r->path,
			    strerror(errno));
	r->fd = openat(r->dfd, r->base,
		       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0644);
	if (r->fd < 0)
		return fail(r, -errno, "could not create '%s': %s", r->path,
			    strerror(errno));
	return 0;
}

/* The image file of an unfinished transfer: still the one journaled. */
static int reopen_file(struct receiver *r)
{
	struct stat sb;

	r->fd = tbsi_open_own(r->dfd, r->base, O_RDWR, 0, &sb);
	if (r->fd >= 0 && sb.st_ino != r->j.target) {
		close(r->fd);
		r->fd = -EPERM;
	}
	if (r->fd < 0)
		return fail(r, r->fd == -EPERM ? -ESTALE : r->fd,
			    "'%s' changed while it was being opened", r->path);
	return 0;
}

static int open_target(struct receiver *r)
{
	struct stat sb;
	bool exists, resume;
	int ret;

	ret = split_target(r) ?: classify(r, &sb, &exists);
	if (ret)
		return ret;
	snprintf(r->jname, sizeof(r->jname), "%s%s", r->base,
		 TBS_IMAGE_JOURNAL);
	r->jdfd = r->dfd;
	if (r->is_dev && (ret = open_state_dir(r)))
		return ret;
	resume = resumable(r, &sb, exists);
	if (r->is_dev)
		r->fd = tbsi_img_open_device(r->path, sb.st_rdev, r->info.size,
					     r->err);
	else
		ret = resume ? reopen_file(r) : create_file(r, exists);
	if (ret || r->fd < 0)
		return ret ? ret : r->fd;
	if (!resume) {
		r->j = (struct img_journal){ .key = tbsi_img_key(&r->info),
					     .size = r->info.size };
		if (fstat(r->fd, &sb))
			return fail(r, -errno, "could not stat '%s': %s",
				    r->path, strerror(errno));
		r->j.target = r->is_dev ? (uint64_t)sb.st_rdev : sb.st_ino;
		return resize(r, 0);
	}
	/* Bytes past the journal's offset may be from the broken run. */
	return resize(r, r->j.done);
}

static int journal(struct receiver *r, uint64_t done)
{
	int ret;

	r->j.done = done;
	ret = tbsi_img_journal_write(r->jdfd, r->jname, &r->j);
	if (ret)
		return fail(r, ret, "could not write '%s': %s", r->jname,
			    strerror(-ret));
	return 0;
}

/* Answers the header: where to resume, and the hash of what is there. */
static int send_start(struct receiver *r)
{
	XXH128_hash_t h;
	uint64_t v[3];
	int ret;

	ret = tree_hash_fd(r->hash, r->fd, r->j.done, r->rec, IMG_REC_MAX);
	if (ret)
		return fail(r, ret, "could not read '%s': %s", r->path,
			    strerror(-ret));
	h = tree_hash_digest128(r->hash);
	v[0] = r->j.done;
	v[1] = h.high64;
	v[2] = h.low64;
	ret = journal(r, r->j.done);
	return ret ? ret : send_u64s(r, IMG_START, v, 3);
}

static int on_header(struct receiver *r, const uint8_t *p, size_t n)
{
	struct img_header h;

	if (tbsi_img_get_header(p, n, &h))
		return fail(r, -EPROTO,
			    "the sender's header is malformed or of another "
			    "version");
	r->info = h.info;
	r->st.size = h.info.size;
	if (h.flags & IMG_F_ZSTD) {
		r->dctx = ZSTD_createDCtx();
		if (!r->dctx)
			return fail(r, -ENOMEM, "out of memory");
	}
	return 0;
}

static int on_begin(struct receiver *r, const uint8_t *p, size_t n)
{
	uint64_t b;

	if (tbsi_img_get_u64s(p, n, &b, 1) || (b && b != r->j.done))
		return fail(r, -EPROTO, "the sender began at a wrong offset");
	r->cursor = r->ckpt = r->st.start = b;
	if (b)
		return 0;
	tree_hash_reset(r->hash);
	if (r->j.done) {
		r->j.done = 0;
		return resize(r, 0);
	}
	return 0;
}

/* Every sync_every bytes: sync, journal, and tell the sender. */
static int checkpoint(struct receiver *r)
{
	uint64_t v = r->cursor;
	int ret;

	if (r->cursor - r->ckpt < r->sync_every)
		return 0;
	if (fdatasync(r->fd))
		return fail(r, -errno, "could not sync '%s': %s", r->path,
			    strerror(errno));
	ret = journal(r, r->cursor);
	if (ret)
		return ret;
	r->ckpt = r->cursor;
	r->st.confirmed = r->cursor;
	return send_u64s(r, IMG_CONFIRM, &v, 1);
}

static int decode(struct receiver *r, struct img_extent *x,
		  const uint8_t **data)
{
	size_t z;

	*data = x->data;
	if (x->enc == IMG_ENC_RAW)
		return 0;
	if (!r->dctx)
		return -EPROTO;
	z = ZSTD_decompressDCtx(r->dctx, r->raw, x->raw_len, x->data,
				x->data_len);
	if (ZSTD_isError(z) || z != x->raw_len)
		return -EBADMSG;
	*data = r->raw;
	return 0;
}

static int on_extent(struct receiver *r, const uint8_t *p, size_t n)
{
	struct img_extent x;
	const uint8_t *data;
	int ret;

	if (tbsi_img_get_extent(p, n, r->info.size, &x) ||
	    x.offset != r->cursor)
		return fail(r, -EPROTO,
			    "the sender sent a malformed extent at offset %llu",
			    (unsigned long long)r->cursor);
	if (decode(r, &x, &data) ||
	    (x.enc != IMG_ENC_RAW && XXH3_64bits(data, x.raw_len) != x.sum))
		return fail(r, -EBADMSG,
			    "the extent at offset %llu failed its check; "
			    "nothing of it was written",
			    (unsigned long long)x.offset);
	tree_hash_update(r->hash, data, x.raw_len);
	ret = tbsi_write_all(r->fd, data, x.raw_len, (off_t)x.offset);
	if (ret)
		return fail(r, ret, "could not write '%s' at offset %llu: %s",
			    r->path, (unsigned long long)x.offset,
			    strerror(-ret));
	/* Start writing back now, so that a checkpoint finds little to do. */
	sync_file_range(r->fd, (off_t)x.offset, x.raw_len,
			SYNC_FILE_RANGE_WRITE);
	r->cursor += x.raw_len;
	r->st.data_bytes += x.raw_len;
	r->st.wire_bytes += x.data_len;
	r->st.extents++;
	return checkpoint(r);
}

static int on_zero(struct receiver *r, const uint8_t *p, size_t n)
{
	uint64_t v[2];
	int ret;

	if (tbsi_img_get_u64s(p, n, v, 2) || v[0] != r->cursor ||
	    v[1] > r->info.size - r->cursor)
		return fail(r, -EPROTO,
			    "the sender described zeros at a wrong offset");
	ret = tbsi_img_zero_range(r->fd, r->is_dev, v[0], v[1]);
	if (ret)
		return fail(r, ret, "could not write zeros to '%s': %s",
			    r->path, strerror(-ret));
	tree_hash_zeros(r->hash, v[1]);
	r->cursor += v[1];
	r->st.zero_bytes += v[1];
	return checkpoint(r);
}

static void now_utc(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int on_final(struct receiver *r, const uint8_t *p, size_t n)
{
	XXH128_hash_t mine = tree_hash_digest128(r->hash), theirs;
	uint64_t v[2];

	if (tbsi_img_get_u64s(p, n, v, 2) || r->cursor != r->info.size)
		return fail(r, -EPROTO,
			    "the sender ended at offset %llu of %llu",
			    (unsigned long long)r->cursor,
			    (unsigned long long)r->info.size);
	theirs.high64 = v[0];
	theirs.low64 = v[1];
	tbsi_img_hash_hex(&mine, r->st.hash);
	if (!XXH128_isEqual(mine, theirs)) {
		unlinkat(r->jdfd, r->jname, 0);
		return fail(r, -EBADMSG,
			    "the image's hash %s differs from the source's; "
			    "the image must not be used",
			    r->st.hash);
	}
	snprintf(r->info.hash, sizeof(r->info.hash), "%s", r->st.hash);
	now_utc(r->info.date, sizeof(r->info.date));
	r->finished = true;
	return 0;
}

/* Makes the image durable, describes it, and tells the sender. */
static int complete(struct receiver *r)
{
	XXH128_hash_t h;
	uint64_t v[2];
	int ret;

	if (fsync(r->fd))
		return fail(r, -errno, "could not sync '%s': %s", r->path,
			    strerror(errno));
	if (!r->is_dev) {
		ret = tbsi_img_sidecar_write(r->dfd, r->base, &r->info, r->err);
		if (ret)
			return ret;
	}
	unlinkat(r->jdfd, r->jname, 0);
	ret = tbsi_img_sync_dir(r->jdfd);
	if (ret)
		return fail(r, ret, "could not sync the directory of '%s': %s",
			    r->path, strerror(-ret));
	r->st.confirmed = r->info.size;
	tbsi_img_hash_parse(r->info.hash, &h);
	v[0] = h.high64;
	v[1] = h.low64;
	return send_u64s(r, IMG_DONE, v, 2);
}

static int dispatch(struct receiver *r, uint16_t type, size_t n)
{
	if (r->finished)
		return fail(r, -EPROTO, "the sender sent a record after FINAL");
	switch (type) {
	case IMG_EXTENT:
		return on_extent(r, r->rec, n);
	case IMG_ZERO:
		return on_zero(r, r->rec, n);
	case IMG_FINAL:
		return on_final(r, r->rec, n);
	case IMG_ERROR:
		r->rec[n < IMG_REC_MAX ? n : IMG_REC_MAX - 1] = 0;
		return fail(r, -ECONNABORTED, "sender: %.200s",
			    n > 4 ? (char *)r->rec + 4 : "stopped");
	default:
		return fail(r, -EPROTO, "unexpected record %#x from the sender",
			    type);
	}
}

static void progress(struct receiver *r)
{
	r->st.done = r->cursor;
	if (r->o->progress)
		r->o->progress(r->o->arg, &r->st);
}

/* Expects a record of @want first; an ERROR is the sender's refusal. */
static int expect(struct receiver *r, uint16_t want, ssize_t *n)
{
	uint16_t type;

	*n = next(r, &type);
	if (*n <= 0)
		return *n ? (int)*n
			  : fail(r, -EPROTO, "the sender ended early");
	if (type == want)
		return 0;
	if (type == IMG_ERROR)
		return dispatch(r, type, (size_t)*n);
	return fail(r, -EPROTO, "unexpected record %#x from the sender", type);
}

static int run(struct receiver *r)
{
	uint16_t type;
	ssize_t n;
	int ret;

	ret = expect(r, IMG_HEADER, &n) ?: on_header(r, r->rec, (size_t)n);
	ret = ret ?: open_target(r);
	ret = ret ?: send_start(r);
	ret = ret ?: expect(r, IMG_BEGIN, &n);
	ret = ret ?: on_begin(r, r->rec, (size_t)n);
	while (!ret) {
		n = next(r, &type);
		if (n <= 0)
			break;
		ret = dispatch(r, type, (size_t)n);
		progress(r);
	}
	if (!ret && n < 0)
		ret = (int)n;
	if (!ret && !r->finished)
		ret = fail(r, -EPROTO, "the sender ended without FINAL");
	ret = ret ?: complete(r);
	if (!ret && tbs_session_confirm(r->s))
		ret = tbsi_img_session_err(r->s, -EPROTO, "confirming", r->err);
	return ret;
}

/*
 * After a failure: tell the sender, and read its stream to its end, for
 * DRAIN_MS at most (a sender may never stop).
 */
static void drain(struct receiver *r, int code)
{
	int64_t end = tbsi_now_ms() + DRAIN_MS, left;
	uint16_t type;
	ssize_t n = 1;

	if (code != -ECONNABORTED)
		tbsi_img_send_error(r->s, code, r->err->msg);
	while (n > 0 && (left = end - tbsi_now_ms()) > 0)
		n = tbs_session_recv(r->s, &type, r->rec, IMG_REC_MAX,
				     (int)left);
	if (!n)
		tbs_session_confirm(r->s);
}

int tbs_image_recv(struct tbs_session *s, const char *path,
		   const struct tbs_image_opts *opts,
		   struct tbs_image_stats *st, struct tbs_error *err)
{
	struct tbs_image_opts o;
	struct tbs_error e = { 0 };
	struct receiver r = { .s = s,
			      .o = &o,
			      .fd = -1,
			      .dfd = -1,
			      .jdfd = -1,
			      .path = path };
	int ret, f;

	r.err = err ? err : &e;
	ret = TBSI_OPTS_LOAD(&o, opts, arg, arg);
	if (ret)
		return tbsi_err(r.err, ret,
				"struct tbs_image_opts is not valid");
	r.sync_every = r.o->sync_every ? r.o->sync_every : TBS_IMAGE_SYNC_EVERY;
	r.hash = tree_hash_new();
	r.rec = malloc(IMG_REC_MAX);
	r.raw = malloc(IMG_MAX_EXTENT);
	if (!r.hash || !r.rec || !r.raw)
		ret = fail(&r, -ENOMEM, "out of memory");
	else
		ret = run(&r);
	if (ret && r.rec)
		drain(&r, ret);
	f = tbs_session_finish(s);
	if (!ret && f)
		ret = tbsi_img_session_err(s, f, "the sender did not confirm",
					   r.err);
	if (st)
		*st = r.st;
	if (r.fd >= 0)
		close(r.fd);
	if (r.jdfd >= 0 && r.jdfd != r.dfd)
		close(r.jdfd);
	if (r.dfd >= 0)
		close(r.dfd);
	tree_hash_free(r.hash);
	free(r.rec);
	free(r.raw);
	ZSTD_freeDCtx(r.dctx);
	return ret;
}
