// SPDX-License-Identifier: MIT
/*
 * The sending side of a disk image: HEADER, then the receiver's START
 * (where to resume, with the hash of what it has), BEGIN, EXTENT and ZERO
 * records in order of offset, FINAL with the hash of the whole image.  The
 * receiver's CONFIRM, ERROR and DONE records are read between extents and
 * after the end.  Zero blocks are found per TBS_IMAGE_BLOCK; holes of an
 * image file are skipped without reading them (SEEK_DATA).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "image-int.h"
#include "internal.h"

#define HEADROOM 64 /* room for an extent's header before its data */
#define CHUNK (4 * (size_t)IMG_MAX_EXTENT)
/* A long run of zeros is sent in parts, so that the receiver can confirm. */
#define ZERO_FLUSH (64ULL << 20)

struct sender {
	struct tbs_session *s;
	const struct tbs_image_opts *o;
	struct tbs_error *err;
	struct tbs_image_stats st;
	struct tbs_image_info info;
	int fd;
	struct tree_hash *hash;
	uint8_t *chunk; /* CHUNK bytes after HEADROOM */
	uint8_t *zbuf;
	size_t zcap;
	ZSTD_CCtx *cctx;
	uint64_t zero_off, zero_len; /* the run of zeros not yet sent */
	uint64_t start; /* from the receiver's START */
	XXH128_hash_t start_hash;
	bool got_start, done;
	XXH128_hash_t done_hash;
	int peer_err; /* from an ERROR record */
	char peer_msg[IMG_MAX_MSG + 1];
};

int tbsi_img_session_err(struct tbs_session *s, int code, const char *what,
			 struct tbs_error *err)
{
	const char *m = tbs_session_error(s);

	return tbsi_err(err, code, "%s: %s", what,
			m && m[0] ? m : strerror(-code));
}

/**
 * tbsi_img_send_error() - tell the peer why this side stops
 * @s:    session
 * @code: negative errno
 * @msg:  message for a person, cut to IMG_MAX_MSG bytes
 *
 * Return: 0 or the session's error.
 */
int tbsi_img_send_error(struct tbs_session *s, int code, const char *msg)
{
	uint8_t p[4 + IMG_MAX_MSG];
	size_t n = strnlen(msg, IMG_MAX_MSG);
	int32_t e = -code;

	memcpy(p, &e, 4);
	memcpy(p + 4, msg, n);
	return tbs_session_send(s, IMG_ERROR, p, 4 + n, -1) < 0 ? -EPIPE : 0;
}

static void take_error(struct sender *x, const uint8_t *p, size_t n)
{
	int32_t e = EIO;

	if (n >= 4)
		memcpy(&e, p, 4);
	x->peer_err = e > 0 && e < 4096 ? -e : -EIO;
	n = n > 4 ? n - 4 : 0;
	n = n > IMG_MAX_MSG ? IMG_MAX_MSG : n;
	memcpy(x->peer_msg, p + 4, n);
	x->peer_msg[n] = '\0';
}

/* Handles one record of the receiver. */
static int on_reply(struct sender *x, uint16_t type, const uint8_t *p, size_t n)
{
	uint64_t v[3];

	if (type == IMG_ERROR) {
		take_error(x, p, n);
	} else if (type == IMG_CONFIRM && !tbsi_img_get_u64s(p, n, v, 1) &&
		   v[0] <= x->info.size) {
		x->st.confirmed = v[0];
	} else if (type == IMG_START && !x->got_start &&
		   !tbsi_img_get_u64s(p, n, v, 3) && v[0] <= x->info.size) {
		x->got_start = true;
		x->start = v[0];
		x->start_hash.high64 = v[1];
		x->start_hash.low64 = v[2];
	} else if (type == IMG_DONE && !tbsi_img_get_u64s(p, n, v, 2)) {
		x->done = true;
		x->st.confirmed = x->info.size;
		x->done_hash.high64 = v[0];
		x->done_hash.low64 = v[1];
	} else {
		return tbsi_err(x->err, -EPROTO,
				"the receiver sent a malformed record (type "
				"%#x, %zu bytes)",
				type, n);
	}
	return 0;
}

/*
 * Reads the receiver's records for up to @timeout_ms.  Return: 1 once its
 * stream ended, 0 when nothing (more) is waiting, or a negative errno.
 */
static int poll_replies(struct sender *x, int timeout_ms)
{
	uint8_t p[512];
	uint16_t type;
	ssize_t n;
	int ret;

	for (;;) {
		n = tbs_session_recv(x->s, &type, p, sizeof(p), timeout_ms);
		if (n == -EAGAIN)
			return 0;
		if (n == 0)
			return 1;
		if (n < 0)
			return tbsi_img_session_err(
				x->s, (int)n, "lost the receiver", x->err);
		ret = on_reply(x, type, p, (size_t)n);
		if (ret)
			return ret;
		if (x->peer_err || timeout_ms)
			return 0;
	}
}

static int send_rec(struct sender *x, uint16_t type, const void *p, size_t n)
{
	ssize_t r = tbs_session_send(x->s, type, p, n, -1);

	if (r < 0)
		return tbsi_img_session_err(x->s, (int)r, "sending the image",
					    x->err);
	return 0;
}

static int flush_zeros(struct sender *x)
{
	uint64_t v[2] = { x->zero_off, x->zero_len };
	uint8_t p[16];
	int ret;

	if (!x->zero_len)
		return 0;
	ret = send_rec(x, IMG_ZERO, p, tbsi_img_put_u64s(p, v, 2));
	x->st.zero_bytes += x->zero_len;
	x->zero_len = 0;
	return ret;
}

static void add_zeros(struct sender *x, uint64_t off, uint64_t len)
{
	if (!x->zero_len)
		x->zero_off = off;
	x->zero_len += len;
}

/* Compresses into zbuf when that saves space; returns the payload. */
static uint8_t *encode(struct sender *x, struct img_extent *e, uint8_t *data)
{
	size_t z;

	e->enc = IMG_ENC_RAW;
	e->data_len = e->raw_len;
	if (!x->cctx)
		return data - IMG_EXTENT_HDR;
	z = ZSTD_compressCCtx(x->cctx, x->zbuf + IMG_EXTENT_HDR, x->zcap, data,
			      e->raw_len, x->o->compress);
	if (ZSTD_isError(z) || z >= e->raw_len)
		return data - IMG_EXTENT_HDR;
	/* Raw bytes are covered by the record's checksum; these are not. */
	e->sum = XXH3_64bits(data, e->raw_len);
	e->enc = IMG_ENC_ZSTD;
	e->data_len = z;
	return x->zbuf;
}

/*
 * Sends @len bytes at @data (inside the chunk) as one extent.  Its header
 * goes into the bytes before @data, which were already sent or are
 * headroom.
 */
static int send_extent(struct sender *x, uint64_t off, uint8_t *data,
		       size_t len)
{
	struct img_extent e = { .offset = off, .raw_len = (uint32_t)len };
	uint8_t *rec;
	int ret;

	ret = flush_zeros(x);
	if (ret)
		return ret;
	rec = encode(x, &e, data);
	tbsi_img_put_extent_hdr(rec, &e);
	ret = send_rec(x, IMG_EXTENT, rec, IMG_EXTENT_HDR + e.data_len);
	x->st.data_bytes += len;
	x->st.wire_bytes += e.data_len;
	x->st.extents++;
	return ret;
}

/* Splits one chunk read at @off into zero runs and extents. */
static int send_chunk(struct sender *x, uint64_t off, size_t len)
{
	size_t bs = x->info.block_size, i, run = 0, n;
	int ret = 0;

	for (i = 0; i < len && !ret; i += n) {
		n = len - i < bs ? len - i : bs;
		if (tbsi_img_is_zero(x->chunk + i, n)) {
			if (run)
				ret = send_extent(x, off + i - run,
						  x->chunk + i - run, run);
			run = 0;
			add_zeros(x, off + i, n);
			continue;
		}
		if (run + n > IMG_MAX_EXTENT) {
			ret = send_extent(x, off + i - run, x->chunk + i - run,
					  run);
			run = 0;
		}
		run += n;
	}
	if (!ret && run)
		ret = send_extent(x, off + len - run, x->chunk + len - run,
				  run);
	return ret;
}

/* Where the next data is, from @off; the hole before it is zeros. */
static uint64_t next_data(struct sender *x, uint64_t off)
{
	off_t d = lseek(x->fd, (off_t)off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? x->info.size : off;
	d &= ~(off_t)(x->info.block_size - 1);
	return (uint64_t)d > off ? (uint64_t)d : off;
}

/* Reports @off as reached; zeros not yet sent count as skipped already. */
static void progress(struct sender *x, uint64_t off)
{
	struct tbs_image_stats st;

	x->st.done = off;
	if (!x->o->progress)
		return;
	st = x->st;
	st.zero_bytes += x->zero_len;
	x->o->progress(x->o->arg, &st);
}

static int send_from(struct sender *x, uint64_t off)
{
	uint64_t d;
	size_t n;
	int ret = 0;

	while (off < x->info.size && !ret && !x->peer_err) {
		d = next_data(x, off);
		if (d > off) {
			tree_hash_zeros(x->hash, d - off);
			add_zeros(x, off, d - off);
			off = d;
			continue;
		}
		n = x->info.size - off < CHUNK ? x->info.size - off : CHUNK;
		ret = tbsi_pread_all(x->fd, x->chunk, n, off);
		if (ret)
			return tbsi_err(
				x->err, ret,
				"could not read '%s' at offset %llu: %s",
				x->info.source, (unsigned long long)off,
				strerror(-ret));
		tree_hash_update(x->hash, x->chunk, n);
		ret = send_chunk(x, off, n);
		if (!ret && x->zero_len >= ZERO_FLUSH)
			ret = flush_zeros(x);
		off += n;
		progress(x, off);
		if (!ret && poll_replies(x, 0) < 0)
			ret = x->err ? x->err->code : -EPROTO;
	}
	if (ret)
		return ret;
	progress(x, off);
	return flush_zeros(x);
}

/* Waits for the receiver's START; a receiver that refuses sends ERROR. */
static int wait_start(struct sender *x)
{
	int ret = 0;

	while (!x->got_start && !x->peer_err && !ret)
		ret = poll_replies(x, 1000);
	if (ret == 1)
		ret = tbsi_err(x->err, -ECONNRESET,
			       "the receiver ended before the transfer began");
	return ret < 0 ? ret : 0;
}

/*
 * Resumes at the receiver's offset when its copy of the blocks before it
 * hashes the same as the source; otherwise starts again from 0.
 */
static int choose_begin(struct sender *x, uint64_t *begin)
{
	XXH128_hash_t h;
	uint64_t v;
	uint8_t p[8];
	int ret;

	*begin = 0;
	if (x->start) {
		ret = tree_hash_fd(x->hash, x->fd, x->start, x->chunk, CHUNK);
		if (ret)
			return tbsi_err(x->err, ret, "could not read '%s': %s",
					x->info.source, strerror(-ret));
		h = tree_hash_digest128(x->hash);
		if (XXH128_isEqual(h, x->start_hash))
			*begin = x->start;
		else
			tree_hash_reset(x->hash);
	}
	x->st.start = *begin;
	v = *begin;
	return send_rec(x, IMG_BEGIN, p, tbsi_img_put_u64s(p, &v, 1));
}

static int send_final(struct sender *x)
{
	XXH128_hash_t h = tree_hash_digest128(x->hash);
	uint64_t v[2] = { h.high64, h.low64 };
	uint8_t p[16];

	tbsi_img_hash_hex(&h, x->st.hash);
	return send_rec(x, IMG_FINAL, p, tbsi_img_put_u64s(p, v, 2));
}

/*
 * Ends this side's stream, then reads the receiver's to its end: its DONE
 * (or ERROR) comes after the confirmation of this side's stream.
 */
static int finish(struct sender *x, int ret)
{
	int r = tbs_session_finish(x->s);

	if (r) {
		if (!ret)
			ret = tbsi_img_session_err(
				x->s, r, "the receiver did not confirm",
				x->err);
		poll_replies(x, 0);
	} else {
		do
			r = poll_replies(x, -1);
		while (!r);
		if (r == 1)
			tbs_session_confirm(x->s);
		else if (!ret)
			ret = r;
	}
	if (x->peer_err)
		return tbsi_err(x->err, x->peer_err, "receiver: %s",
				x->peer_msg);
	if (!ret && !x->done)
		return tbsi_err(
			x->err, -EPROTO,
			"the receiver ended without confirming the image");
	return ret;
}

static int sender_init(struct sender *x, const char *path)
{
	x->fd = tbsi_img_open_source(path, x->o->force, &x->info, x->err);
	if (x->fd < 0)
		return x->fd;
	x->st.size = x->info.size;
	x->hash = tree_hash_new();
	x->chunk = malloc(CHUNK + HEADROOM);
	if (x->o->compress) {
		x->zcap = ZSTD_compressBound(IMG_MAX_EXTENT);
		x->zbuf = malloc(x->zcap + IMG_EXTENT_HDR);
		x->cctx = ZSTD_createCCtx();
	}
	if (!x->hash || !x->chunk || (x->o->compress && (!x->zbuf || !x->cctx)))
		return tbsi_err(x->err, -ENOMEM, "out of memory");
	x->chunk += HEADROOM;
	tree_hash_reset(x->hash);
	return 0;
}

static void sender_free(struct sender *x)
{
	if (x->fd >= 0)
		close(x->fd);
	tree_hash_free(x->hash);
	free(x->chunk ? x->chunk - HEADROOM : NULL);
	free(x->zbuf);
	ZSTD_freeCCtx(x->cctx);
}

static int send_header(struct sender *x)
{
	struct img_header h = { .info = x->info };
	uint8_t p[IMG_HEADER_LEN];

	h.flags = x->cctx ? IMG_F_ZSTD : 0;
	return send_rec(x, IMG_HEADER, p, tbsi_img_put_header(p, &h));
}

static int run(struct sender *x)
{
	uint64_t begin;
	int ret;

	ret = send_header(x);
	if (!ret)
		ret = wait_start(x);
	if (!ret && !x->peer_err)
		ret = choose_begin(x, &begin);
	if (!ret && !x->peer_err)
		ret = send_from(x, begin);
	if (!ret && !x->peer_err)
		ret = send_final(x);
	return ret;
}

int tbs_image_send(struct tbs_session *s, const char *path,
		   const struct tbs_image_opts *opts,
		   struct tbs_image_stats *st, struct tbs_error *err)
{
	struct tbs_image_opts o;
	struct tbs_error e = { 0 };
	struct sender x = { .s = s, .o = &o, .fd = -1 };
	int ret;

	x.err = err ? err : &e;
	ret = TBSI_OPTS_LOAD(&o, opts, arg, arg);
	if (ret)
		return tbsi_err(x.err, ret,
				"struct tbs_image_opts is not valid");
	ret = sender_init(&x, path);
	if (ret) {
		tbsi_img_send_error(s, ret, x.err->msg);
	} else {
		ret = run(&x);
		if (ret && !x.peer_err)
			tbsi_img_send_error(s, ret, x.err->msg);
	}
	ret = finish(&x, ret);
	if (!ret && !XXH128_isEqual(x.done_hash, tree_hash_digest128(x.hash)))
		ret = tbsi_err(x.err, -EBADMSG,
			       "the receiver confirmed a different hash");
	if (st)
		*st = x.st;
	sender_free(&x);
	return ret;
}
