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

struct receiver {
	struct tbs_session *s;
	const struct tbs_image_opts *o;
	struct tbs_error *err;
	struct tbs_image_stats st;
	struct tbs_image_info info;
	const char *path;
	char jpath[PATH_MAX];
	struct img_journal j;
	int fd;
	bool is_dev, finished;
	uint64_t cursor, ckpt, sync_every;
	XXH3_state_t *hash;
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

/* Whether an existing file may be overwritten from the start. */
static int check_fresh(struct receiver *r, bool resumable)
{
	struct stat sb;

	if (resumable || r->o->force || stat(r->path, &sb) ||
	    !S_ISREG(sb.st_mode) || !sb.st_size)
		return 0;
	return fail(r, -EEXIST,
		    "'%s' exists and is not an unfinished transfer; remove it "
		    "or use --force",
		    r->path);
}

static int open_target(struct receiver *r)
{
	struct stat sb;
	bool resumable;
	int ret;

	r->is_dev = !stat(r->path, &sb) && S_ISBLK(sb.st_mode);
	ret = tbsi_img_journal_path(r->path, r->is_dev, r->o->state_dir,
				    r->jpath, sizeof(r->jpath));
	if (ret)
		return fail(r, ret, "target path too long");
	resumable = !tbsi_img_journal_read(r->jpath, &r->j) &&
		    r->j.key == tbsi_img_key(&r->info) &&
		    r->j.size == r->info.size;
	ret = check_fresh(r, resumable);
	if (ret)
		return ret;
	r->fd = tbsi_img_open_target(r->path, r->info.size, &r->is_dev, r->err);
	if (r->fd < 0)
		return r->fd;
	if (!resumable) {
		r->j.key = tbsi_img_key(&r->info);
		r->j.size = r->info.size;
		r->j.done = 0;
		return resize(r, 0);
	}
	/* Bytes past the journal's offset may be from the broken run. */
	return resize(r, r->j.done);
}

static int journal(struct receiver *r, uint64_t done)
{
	int ret;

	r->j.done = done;
	ret = tbsi_img_journal_write(r->jpath, &r->j);
	if (ret)
		return fail(r, ret, "could not write '%s': %s", r->jpath,
			    strerror(-ret));
	return 0;
}

/* Answers the header: where to resume, and the hash of what is there. */
static int send_start(struct receiver *r)
{
	XXH128_hash_t h;
	uint64_t v[3];
	int ret;

	XXH3_128bits_reset(r->hash);
	ret = tbsi_img_hash_range(r->fd, 0, r->j.done, r->hash, r->rec,
				  IMG_REC_MAX);
	if (ret)
		return fail(r, ret, "could not read '%s': %s", r->path,
			    strerror(-ret));
	h = XXH3_128bits_digest(r->hash);
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
	XXH3_128bits_reset(r->hash);
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
	ssize_t w;

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
	XXH3_128bits_update(r->hash, data, x.raw_len);
	w = pwrite(r->fd, data, x.raw_len, (off_t)x.offset);
	if (w != (ssize_t)x.raw_len)
		return fail(r, w < 0 ? -errno : -ENOSPC,
			    "could not write '%s' at offset %llu: %s", r->path,
			    (unsigned long long)x.offset,
			    strerror(w < 0 ? errno : ENOSPC));
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
	tbsi_img_hash_zeros(r->hash, v[1]);
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
	XXH128_hash_t mine = XXH3_128bits_digest(r->hash), theirs;
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
		unlink(r->jpath);
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
		ret = tbsi_img_sidecar_write(r->path, &r->info, r->err);
		if (ret)
			return ret;
	}
	unlink(r->jpath);
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

/* After a failure: tell the sender, and read its stream to its end. */
static void drain(struct receiver *r, int code)
{
	uint16_t type;

	if (code != -ECONNABORTED)
		tbsi_img_send_error(r->s, code, r->err->msg);
	while (tbs_session_recv(r->s, &type, r->rec, IMG_REC_MAX, -1) > 0)
		;
	tbs_session_confirm(r->s);
}

int tbs_image_recv(struct tbs_session *s, const char *path,
		   const struct tbs_image_opts *opts,
		   struct tbs_image_stats *st, struct tbs_error *err)
{
	struct tbs_image_opts o;
	struct tbs_error e = { 0 };
	struct receiver r = { .s = s, .o = &o, .fd = -1, .path = path };
	int ret, f;

	r.err = err ? err : &e;
	ret = TBSI_OPTS_LOAD(&o, opts, arg, arg);
	if (ret)
		return tbsi_err(r.err, ret,
				"struct tbs_image_opts is not valid");
	r.sync_every = r.o->sync_every ? r.o->sync_every : TBS_IMAGE_SYNC_EVERY;
	r.hash = XXH3_createState();
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
	XXH3_freeState(r.hash);
	free(r.rec);
	free(r.raw);
	ZSTD_freeDCtx(r.dctx);
	return ret;
}
