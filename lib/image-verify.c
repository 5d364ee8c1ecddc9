// SPDX-License-Identifier: MIT
/*
 * tbs_image_verify(): hashes an image file (holes without reading them) or
 * a block device again and compares size and XXH3-128 with what its
 * sidecar says.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-int.h"
#include "internal.h"

#define BUF (1024 * 1024)

/* A device restored from an image may be larger: only its start counts. */
static int image_size(int fd, uint64_t want, uint64_t *size)
{
	struct stat sb;

	if (fstat(fd, &sb))
		return -errno;
	if (S_ISBLK(sb.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			return -errno;
		if (*size >= want)
			*size = want;
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	*size = (uint64_t)sb.st_size;
	return 0;
}

/* Hashes [0, size): holes of a file are fed as zeros without reading. */
static int hash_all(int fd, uint64_t size, struct tree_hash *h, uint8_t *buf,
		    const struct tbs_image_opts *o, struct tbs_image_stats *st)
{
	uint64_t off = 0, end;
	off_t d;
	int ret;

	while (off < size) {
		d = lseek(fd, (off_t)off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			d = (off_t)size;
		if (d > (off_t)off) {
			tree_hash_zeros(h, (uint64_t)d - off);
			st->zero_bytes += (uint64_t)d - off;
			off = (uint64_t)d;
			continue;
		}
		end = off + BUF < size ? off + BUF : size;
		ret = tree_hash_range(h, fd, off, end - off, buf, BUF);
		if (ret)
			return ret;
		st->data_bytes += end - off;
		off = end;
		st->done = off;
		if (o && o->progress)
			o->progress(o->arg, st);
	}
	return 0;
}

int tbs_image_verify(const char *path, const struct tbs_image_info *info,
		     const struct tbs_image_opts *opts,
		     struct tbs_image_stats *st, struct tbs_error *err)
{
	struct tbs_image_stats s = { .size = info->size };
	struct tree_hash *h = tree_hash_new();
	uint8_t *buf = malloc(BUF);
	XXH128_hash_t got;
	uint64_t size = 0;
	struct tbs_error e = { 0 };
	struct tbs_image_opts o;
	int fd = -1, ret;

	err = err ? err : &e;
	ret = TBSI_OPTS_LOAD(&o, opts, arg, arg);
	if (ret) {
		tbsi_err(err, ret, "struct tbs_image_opts is not valid");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !h || !buf) {
		ret = tbsi_err(err, fd < 0 ? -errno : -ENOMEM,
			       "could not open '%s': %s", path,
			       strerror(fd < 0 ? errno : ENOMEM));
		goto out;
	}
	ret = image_size(fd, info->size, &size);
	if (!ret && size != info->size)
		ret = tbsi_err(err, -EBADMSG,
			       "'%s' has %llu bytes, its sidecar says %llu",
			       path, (unsigned long long)size,
			       (unsigned long long)info->size);
	if (!ret)
		ret = hash_all(fd, size, h, buf, &o, &s);
	if (ret && !err->code)
		ret = tbsi_err(err, ret, "could not read '%s': %s", path,
			       strerror(-ret));
	if (ret)
		goto out;
	got = tree_hash_digest128(h);
	tbsi_img_hash_hex(&got, s.hash);
	if (strcmp(s.hash, info->hash))
		ret = tbsi_err(err, -EBADMSG,
			       "'%s' hashes to %s, its sidecar says %s: the "
			       "image is damaged",
			       path, s.hash, info->hash);
out:
	if (st)
		*st = s;
	if (fd >= 0)
		close(fd);
	tree_hash_free(h);
	free(buf);
	return ret;
}
