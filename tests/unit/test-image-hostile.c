// SPDX-License-Identifier: MIT
/*
 * tbs_image_recv() against a hostile sender over a socketpair: extents and
 * runs of zeros at the wrong offset or past the announced size, a wrong
 * final hash, a malformed header.  Each must fail with the right errno,
 * write nothing outside the image, and leave no sidecar.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../../lib/image-int.h"
#include "../tap.h"

#define SIZE 65536
#define HUGE (1ull << 43) /* 8 TiB: hours of hashing zeros one by one */

struct rx {
	struct tbs_session *s;
	const char *path;
	int ret;
	struct tbs_error err;
};

static void *rx_run(void *arg)
{
	struct rx *r = arg;

	r->ret = tbs_session_start(r->s);
	if (!r->ret)
		r->ret = tbs_image_recv(r->s, r->path, NULL, NULL, &r->err);
	tbs_session_close(r->s);
	return NULL;
}

static void send_u64s(struct tbs_session *s, uint16_t type, uint64_t a,
		      uint64_t b, int n)
{
	uint64_t v[2] = { a, b };
	uint8_t p[16];

	tbs_session_send(s, type, p, tbsi_img_put_u64s(p, v, n), 5000);
}

static void send_header(struct tbs_session *s, uint64_t size)
{
	struct img_header h = { 0 };
	uint8_t p[IMG_HEADER_LEN];

	h.info.size = size;
	h.info.block_size = 4096;
	strcpy(h.info.source, "hostile");
	tbs_session_send(s, IMG_HEADER, p, tbsi_img_put_header(p, &h), 5000);
}

static void send_extent(struct tbs_session *s, uint64_t off, uint32_t len)
{
	static uint8_t p[IMG_EXTENT_HDR + 8192];
	struct img_extent x = { .offset = off, .raw_len = len };

	memset(p + IMG_EXTENT_HDR, 0xab, len);
	tbsi_img_put_extent_hdr(p, &x);
	tbs_session_send(s, IMG_EXTENT, p, IMG_EXTENT_HDR + len, 5000);
}

/* The hash of an image of @size zeros. */
static XXH128_hash_t zeros_hash(uint64_t size)
{
	struct tree_hash *t = tree_hash_new();
	XXH128_hash_t h;

	tree_hash_zeros(t, size);
	h = tree_hash_digest128(t);
	tree_hash_free(t);
	return h;
}

/* The hostile side: a header, what @act sends, then the end. */
static int run(const char *path, int act, struct tbs_error *err)
{
	struct tbs_session_opts so =
		TBS_OPTS_INIT(tbs_session_opts, .role = TBS_ROLE_SENDER,
			      .handshake_ms = 5000);
	struct tbs_session_opts ro =
		TBS_OPTS_INIT(tbs_session_opts, .role = TBS_ROLE_RECEIVER,
			      .handshake_ms = 5000);
	struct rx r = { .path = path };
	struct tbs_session *s;
	uint8_t buf[512];
	pthread_t t;
	int fd[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) ||
	    tbs_session_new(&s, fd[0], fd[0], &so) ||
	    tbs_session_new(&r.s, fd[1], fd[1], &ro))
		return -ENOMEM;
	pthread_create(&t, NULL, rx_run, &r);
	tbs_session_start(s);
	send_header(s, act == 4 ? IMG_MAX_SIZE + 1 : act == 6 ? HUGE : SIZE);
	tbs_session_recv(s, NULL, buf, sizeof(buf), 5000); /* START */
	send_u64s(s, IMG_BEGIN, 0, 0, 1);
	if (act == 0) {
		send_extent(s, 4096, 4096); /* a gap */
	} else if (act == 1) {
		send_extent(s, 0, 4096);
		send_extent(s, SIZE - 100, 4096);
	} else if (act == 2) {
		send_u64s(s, IMG_ZERO, 0, SIZE + 1, 2);
	} else if (act == 3) {
		send_u64s(s, IMG_ZERO, 0, SIZE, 2);
		send_u64s(s, IMG_FINAL, 1, 2, 2);
	} else if (act == 5 || act == 6) { /* an image of zeros */
		uint64_t size = act == 6 ? HUGE : SIZE;
		XXH128_hash_t h = zeros_hash(size);

		send_u64s(s, IMG_ZERO, 0, size, 2);
		send_u64s(s, IMG_FINAL, h.high64, h.low64, 2);
	}
	tbs_session_finish(s);
	while (tbs_session_recv(s, NULL, buf, sizeof(buf), 5000) > 0)
		;
	tbs_session_close(s);
	pthread_join(t, NULL);
	tbs_session_free(s);
	tbs_session_free(r.s);
	close(fd[0]);
	close(fd[1]);
	*err = r.err;
	return r.ret;
}

static off_t size_of(const char *p)
{
	struct stat sb;

	return stat(p, &sb) ? -1 : sb.st_size;
}

static bool all_zero(const char *p)
{
	static uint8_t b[SIZE];
	FILE *f = fopen(p, "rb");
	size_t n = f ? fread(b, 1, sizeof(b), f) : 0;

	if (f)
		fclose(f);
	return tbsi_img_is_zero(b, n);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static bool has(const char *dir, const char *name, const char *text)
{
	char p[256], b[256] = "";
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (f) {
		if (!fgets(b, sizeof(b), f))
			b[0] = 0;
		fclose(f);
	}
	return !strcmp(b, text);
}

static void link_in(const char *dir, const char *target, const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (symlink(target, p))
		perror(p);
}

/*
 * What a local user can plant beside an image: symbolic links as the
 * target or as the temporary names of the journal and the sidecar, and
 * a journal (its key is computable) that would let an existing file be
 * overwritten without --force.
 */
static void test_planted(const char *dir)
{
	struct tbs_image_info info = { .size = SIZE, .block_size = 4096 };
	char p[256], j[300];
	struct tbs_error e;
	struct stat sb;
	FILE *f;

	put(dir, "victim", "keep\n");
	put(dir, "victim2", "keep too\n");
	link_in(dir, "created", "dang");
	snprintf(p, sizeof(p), "%s/dang", dir);
	is_int(run(p, 5, &e), -ELOOP, "a dangling link as the target: refused");
	snprintf(p, sizeof(p), "%s/created", dir);
	ok(access(p, F_OK) != 0, "and the file it names is not created");
	link_in(dir, "victim", "lnk");
	snprintf(p, sizeof(p), "%s/lnk", dir);
	is_int(run(p, 5, &e), -ELOOP, "a link to a file as the target: refused");
	ok(has(dir, "victim", "keep\n"), "and that file is kept");

	link_in(dir, "victim", "new.img.tbsimage.part.tmp");
	link_in(dir, "victim2", "new.img.tbsimage.tmp");
	snprintf(p, sizeof(p), "%s/new.img", dir);
	is_int(run(p, 5, &e), 0, "with links planted as temporary files");
	ok(has(dir, "victim", "keep\n") && has(dir, "victim2", "keep too\n"),
	   "the files they point to are kept");
	snprintf(p, sizeof(p), "%s/new.img.tbsimage", dir);
	ok(!lstat(p, &sb) && S_ISREG(sb.st_mode), "the sidecar is a file");

	put(dir, "old.img", "precious\n");
	snprintf(p, sizeof(p), "%s/old.img", dir);
	stat(p, &sb);
	snprintf(j, sizeof(j), "%s%s", p, TBS_IMAGE_JOURNAL);
	f = fopen(j, "w");
	if (f) {
		fprintf(f,
			"tbsimage-journal 2\nkey %016llx\nsize %d\ndone 0\n"
			"target %llu\n",
			(unsigned long long)tbsi_img_key(&info), SIZE,
			(unsigned long long)sb.st_ino);
		fclose(f);
	}
	if (!geteuid() && chown(j, 65534, 65534))
		perror(j);
	if (geteuid()) {
		tap_skip("needs root to plant another user's journal");
	} else {
		is_int(run(p, 5, &e), -EEXIST,
		       "another user's journal does not allow overwriting");
		ok(has(dir, "old.img", "precious\n"), "the file is kept");
	}
}

int main(void)
{
	char dir[] = "/tmp/test-image-hostile.XXXXXX", img[64], side[80];
	struct tbs_error e;
	int ret;

	if (!mkdtemp(dir)) {
		tap_skip("no temporary directory");
		return tap_done();
	}
	snprintf(img, sizeof(img), "%s/x.img", dir);
	snprintf(side, sizeof(side), "%s%s", img, TBS_IMAGE_SIDECAR);

	ret = run(img, 0, &e);
	is_int(ret, -EPROTO, "an extent after a gap is refused");
	ok(all_zero(img), "and nothing of it was written");
	ret = run(img, 1, &e);
	is_int(ret, -EPROTO, "an extent past the announced size is refused");
	is_int(size_of(img), SIZE, "the image keeps its size");
	ret = run(img, 2, &e);
	is_int(ret, -EPROTO, "zeros past the announced size are refused");
	ret = run(img, 3, &e);
	is_int(ret, -EBADMSG, "a final hash that differs is refused");
	ok(strstr(e.msg, "must not be used") != NULL, "and said so: %s", e.msg);
	ok(access(side, F_OK) != 0, "no sidecar claims the image complete");
	unlink(img);
	ret = run(img, 4, &e);
	is_int(ret, -EPROTO, "an absurd image size is refused");
	ok(access(img, F_OK) != 0, "before any file is made");
	alarm(60);
	ret = run(img, 6, &e);
	alarm(0);
	is_int(ret, 0, "8 TiB of zeros described in a few bytes: done at once");
	is_int(size_of(img), (off_t)HUGE, "a sparse image of that size");
	unlink(img);
	unlink(side);
	test_planted(dir);

	snprintf(side, sizeof(side), "rm -rf %s", dir);
	if (system(side))
		printf("# could not remove %s\n", dir);
	return tap_done();
}
