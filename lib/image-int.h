/* SPDX-License-Identifier: MIT */
/*
 * Internal header of the image engine, not installed.  The records of a
 * disk image transfer travel as application records of a session
 * (docs/PROTOCOL.md, "Disk images"); all integers are little-endian.
 *
 *   app type       dir  payload
 *   0x4901 HEADER  S>R  magic, version, flags, block size, hash algorithm,
 *                       size, model[64], serial[64], source[256] (408)
 *   0x4902 START   R>S  offset to resume at, XXH3-128 of [0, offset) (24)
 *   0x4903 BEGIN   S>R  offset the extents begin at (8)
 *   0x4904 EXTENT  S>R  offset, raw length, encoding, XXH3-64 of the raw
 *                       bytes if compressed (24), then the bytes
 *   0x4905 ZERO    S>R  offset, length of a run of zeros (16)
 *   0x4906 FINAL   S>R  XXH3-128 of the whole image (16)
 *   0x4907 CONFIRM R>S  offset below which the image is durable (8)
 *   0x4908 ERROR   both errno, message (4 + at most 200)
 *   0x4909 DONE    R>S  XXH3-128 verified and written to the sidecar (16)
 */
#ifndef TBS_IMAGE_INT_H
#define TBS_IMAGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <xxhash.h>

#include "tbstream.h"
#include "own.h"
#include "tree-hash.h"

enum img_type {
	IMG_HEADER = 0x4901,
	IMG_START,
	IMG_BEGIN,
	IMG_EXTENT,
	IMG_ZERO,
	IMG_FINAL,
	IMG_CONFIRM,
	IMG_ERROR,
	IMG_DONE,
};

#define IMG_MAGIC 0x4d494254u /* "TBIM" */
#define IMG_VERSION 1
#define IMG_F_ZSTD 0x1
/* The hash of the image: the hash tree of tree-hash.c (1 was plain XXH3). */
#define IMG_HASH_TREE 2
#define IMG_HASH_NAME "xxh3-128-tree"
#define IMG_HEADER_LEN 408
#define IMG_EXTENT_HDR 24
#define IMG_ENC_RAW 0
#define IMG_ENC_ZSTD 1
/* Largest raw extent: whole blocks that fit a record after its header. */
#define IMG_MAX_EXTENT (TBS_SESSION_MAX_RECORD - TBS_IMAGE_BLOCK)
#define IMG_MAX_SIZE (1ULL << 60)
#define IMG_MAX_MSG 200
#define IMG_REC_MAX TBS_SESSION_MAX_RECORD

struct img_header {
	uint16_t flags;
	struct tbs_image_info info;
};

struct img_extent {
	uint64_t offset;
	uint32_t raw_len;
	uint8_t enc;
	uint64_t sum;
	const uint8_t *data;
	size_t data_len;
};

/* image-wire.c: encoders return the payload length, decoders 0/-EPROTO. */
size_t tbsi_img_put_header(uint8_t *p, const struct img_header *h);
int tbsi_img_get_header(const uint8_t *p, size_t len, struct img_header *h);
size_t tbsi_img_put_extent_hdr(uint8_t *p, const struct img_extent *x);
int tbsi_img_get_extent(const uint8_t *p, size_t len, uint64_t size,
			struct img_extent *x);
size_t tbsi_img_put_u64s(uint8_t *p, const uint64_t *v, int n);
int tbsi_img_get_u64s(const uint8_t *p, size_t len, uint64_t *v, int n);
void tbsi_img_hash_hex(const XXH128_hash_t *h, char *buf);
int tbsi_img_hash_parse(const char *s, XXH128_hash_t *h);

/* image-dev.c */
int tbsi_img_open_source(const char *path, bool force,
			 struct tbs_image_info *info, struct tbs_error *err);
int tbsi_img_open_device(const char *path, dev_t rdev, uint64_t size,
			 struct tbs_error *err);
int tbsi_img_zero_range(int fd, bool is_dev, uint64_t off, uint64_t len);
bool tbsi_img_is_zero(const uint8_t *p, size_t len);

/* image-sidecar.c: the files beside an image, relative to its directory */
struct img_journal {
	uint64_t key;
	uint64_t size;
	uint64_t done;
	uint64_t target; /* inode of the image file, or device number */
};

struct stat;
uint64_t tbsi_img_key(const struct tbs_image_info *info);
int tbsi_img_sync_dir(int dfd);
int tbsi_img_journal_read(int dfd, const char *name, struct img_journal *j);
int tbsi_img_journal_write(int dfd, const char *name,
			   const struct img_journal *j);
int tbsi_img_sidecar_write(int dfd, const char *base,
			   const struct tbs_image_info *i,
			   struct tbs_error *err);
int tbsi_pread_all(int fd, void *buf, size_t len, uint64_t off);

/* image-send.c / image-recv.c: the ERROR record */
int tbsi_img_send_error(struct tbs_session *s, int code, const char *msg);
int tbsi_img_session_err(struct tbs_session *s, int code, const char *what,
			 struct tbs_error *err);

#endif
