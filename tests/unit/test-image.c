// SPDX-License-Identifier: MIT
/*
 * The image engine's records and files: round trips, and every field a
 * hostile peer controls (lengths, offsets, sizes, strings) checked against
 * its bounds; journal and sidecar round trips; verify of a sparse file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/image-int.h"
#include "../tap.h"

static void test_header(void)
{
	struct img_header h = { .flags = IMG_F_ZSTD }, g;
	uint8_t p[IMG_HEADER_LEN];

	h.info.size = 123456789;
	h.info.block_size = 4096;
	strcpy(h.info.model, "Disk\x01Model");
	memset(h.info.serial, 'S', sizeof(h.info.serial) - 1);
	strcpy(h.info.source, "/dev/sda");
	is_int(tbsi_img_put_header(p, &h), IMG_HEADER_LEN, "header length");
	is_int(tbsi_img_get_header(p, sizeof(p), &g), 0, "header decodes");
	ok(g.info.size == 123456789 && g.info.block_size == 4096 &&
		   g.flags == IMG_F_ZSTD,
	   "size, block size and flags survive");
	ok(!strcmp(g.info.model, "Disk?Model"), "control bytes are replaced");
	is_int(strlen(g.info.serial), 63, "a full string field is terminated");
	is_int(tbsi_img_get_header(p, sizeof(p) - 1, &g), -EPROTO,
	       "a short header is refused");
	p[0] ^= 1;
	is_int(tbsi_img_get_header(p, sizeof(p), &g), -EPROTO,
	       "a wrong magic is refused");
	p[0] ^= 1;
	p[4] = 2;
	is_int(tbsi_img_get_header(p, sizeof(p), &g), -EPROTO,
	       "another version is refused");
	p[4] = 1;
	h.info.block_size = 3000;
	tbsi_img_put_header(p, &h);
	is_int(tbsi_img_get_header(p, sizeof(p), &g), -EPROTO,
	       "a block size that is not a power of two is refused");
	h.info.block_size = 4096;
	h.info.size = IMG_MAX_SIZE + 1;
	tbsi_img_put_header(p, &h);
	is_int(tbsi_img_get_header(p, sizeof(p), &g), -EPROTO,
	       "an absurd size is refused");
}

static int extent(uint64_t off, uint32_t raw, uint8_t enc, size_t data,
		  uint64_t size)
{
	static uint8_t p[IMG_EXTENT_HDR + 16];
	struct img_extent x = { .offset = off, .raw_len = raw, .enc = enc };

	tbsi_img_put_extent_hdr(p, &x);
	return tbsi_img_get_extent(p, IMG_EXTENT_HDR + data, size, &x);
}

static void test_extent(void)
{
	is_int(extent(4096, 16, IMG_ENC_RAW, 16, 8192), 0, "an extent decodes");
	is_int(extent(8176, 16, IMG_ENC_RAW, 16, 8192), 0,
	       "an extent may end at the image's end");
	is_int(extent(8180, 16, IMG_ENC_RAW, 16, 8192), -EPROTO,
	       "an extent past the end is refused");
	is_int(extent(UINT64_MAX - 4, 16, IMG_ENC_RAW, 16, UINT64_MAX), -EPROTO,
	       "offset + length cannot wrap around");
	is_int(extent(0, 0, IMG_ENC_RAW, 16, 8192), -EPROTO,
	       "an empty extent is refused");
	is_int(extent(0, IMG_MAX_EXTENT + 1, IMG_ENC_ZSTD, 16, 1 << 30),
	       -EPROTO, "an extent longer than a record's room is refused");
	is_int(extent(0, 16, IMG_ENC_RAW, 15, 8192), -EPROTO,
	       "raw data shorter than announced is refused");
	is_int(extent(0, 16, IMG_ENC_ZSTD, 5, 8192), 0,
	       "compressed data may be shorter");
	is_int(extent(0, 16, 7, 16, 8192), -EPROTO,
	       "an unknown encoding is refused");
	is_int(extent(0, 16, IMG_ENC_RAW, 0, 8192), -EPROTO,
	       "a record without data is refused");
}

static void test_small(void)
{
	uint64_t v[2] = { 1, 2 }, w[2];
	XXH128_hash_t h = { .low64 = 0x1122, .high64 = 0xabc }, g;
	uint8_t p[16], z[4099] = { 0 };
	char hex[33];

	tbsi_img_put_u64s(p, v, 2);
	ok(!tbsi_img_get_u64s(p, 16, w, 2) && w[0] == 1 && w[1] == 2,
	   "u64 fields round trip");
	is_int(tbsi_img_get_u64s(p, 15, w, 2), -EPROTO,
	       "a wrong record length is refused");
	tbsi_img_hash_hex(&h, hex);
	ok(!strcmp(hex, "0000000000000abc0000000000001122"),
	   "a hash prints high half first, as xxhsum -H2");
	ok(!tbsi_img_hash_parse(hex, &g) && XXH128_isEqual(g, h),
	   "a hash parses back");
	ok(tbsi_img_hash_parse("xyz", &g) < 0, "a bad hash is refused");
	ok(tbsi_img_is_zero(z, sizeof(z)), "zeros are zeros");
	z[4098] = 1;
	ok(!tbsi_img_is_zero(z, sizeof(z)), "a last odd byte is seen");
}

/* The image hash of @len bytes at @p. */
static XXH128_hash_t content_hash(const void *p, size_t len)
{
	struct tree_hash *t = tree_hash_new();
	XXH128_hash_t h;

	tree_hash_update(t, p, len);
	h = tree_hash_digest128(t);
	tree_hash_free(t);
	return h;
}

static void test_files(const char *dir)
{
	struct img_journal j = { .key = 0xfeed, .size = 8192, .done = 4096 };
	struct tbs_image_info i = { .size = 8192, .block_size = 4096 }, g;
	char img[512];
	const char *jp = "x.img" TBS_IMAGE_JOURNAL;
	struct tbs_error e = { 0 };
	XXH128_hash_t h;
	uint8_t z[8192] = { 0 };
	int fd, dfd = open(dir, O_PATH | O_DIRECTORY);

	snprintf(img, sizeof(img), "%s/x.img", dir);
	j.target = 77;
	ok(!tbsi_img_journal_write(dfd, jp, &j), "a journal is written");
	memset(&j, 0, sizeof(j));
	ok(!tbsi_img_journal_read(dfd, jp, &j) && j.key == 0xfeed &&
		   j.size == 8192 && j.done == 4096 && j.target == 77,
	   "and read back");
	j.done = 9000;
	tbsi_img_journal_write(dfd, jp, &j);
	is_int(tbsi_img_journal_read(dfd, jp, &j), -EINVAL,
	       "a journal past the image's end is refused");

	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0 && !ftruncate(fd, 8192) && pwrite(fd, "a", 1, 5000) == 1,
	   "a sparse image is made");
	close(fd);
	z[5000] = 'a';
	h = content_hash(z, sizeof(z));
	tbsi_img_hash_hex(&h, i.hash);
	strcpy(i.source, "/dev/\"odd\"\\name");
	strcpy(i.model, "tab\there\001bell\177");
	strcpy(i.date, "2026-01-01T00:00:00Z");
	ok(!tbsi_img_sidecar_write(dfd, "x.img", &i, &e),
	   "a sidecar is written");
	ok(!tbs_image_sidecar_read(img, &g, &e) && g.size == 8192 &&
		   !strcmp(g.hash, i.hash) && !strcmp(g.source, i.source) &&
		   !strcmp(g.model, i.model),
	   "and read back, quotes, backslashes and controls too");
	is_int(tbs_image_verify(img, &g, NULL, NULL, &e), 0,
	       "verify accepts the image");
	g.hash[0] = g.hash[0] == '0' ? '1' : '0';
	is_int(tbs_image_verify(img, &g, NULL, NULL, &e), -EBADMSG,
	       "verify refuses another hash");
	g.size = 4096;
	is_int(tbs_image_verify(img, &g, NULL, NULL, &e), -EBADMSG,
	       "verify refuses another size");
	close(dfd);
}

int main(void)
{
	char dir[] = "/tmp/test-image.XXXXXX";
	char cmd[64];

	test_header();
	test_extent();
	test_small();
	if (mkdtemp(dir)) {
		test_files(dir);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			printf("# could not remove %s\n", dir);
	} else {
		tap_skip("no temporary directory");
	}
	return tap_done();
}
