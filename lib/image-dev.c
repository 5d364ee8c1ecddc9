// SPDX-License-Identifier: MIT
/*
 * Sources and targets of disk images: block devices (their real size from
 * BLKGETSIZE64, their identity from sysfs, whether they or one of their
 * partitions are mounted or held) and image files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image-int.h"
#include "internal.h"

#define MAX_DEVS 256

/* The device and its partitions, when it is a whole disk. */
struct devset {
	dev_t dev[MAX_DEVS];
	int n;
};

static void sysfs_dir(dev_t d, char *buf, size_t len)
{
	snprintf(buf, len, "/sys/dev/block/%u:%u", major(d), minor(d));
}

static void devset_fill(struct devset *ds, dev_t d)
{
	char dir[PATH_MAX], p[PATH_MAX + 300], val[32];
	unsigned int ma, mi;
	struct dirent *e;
	DIR *dh;

	ds->dev[0] = d;
	ds->n = 1;
	sysfs_dir(d, dir, sizeof(dir));
	dh = opendir(dir);
	if (!dh)
		return;
	while ((e = readdir(dh)) && ds->n < MAX_DEVS) {
		snprintf(p, sizeof(p), "%s/%s/partition", dir, e->d_name);
		if (e->d_name[0] == '.' || !tbsi_exists(p))
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", dir, e->d_name);
		if (!tbsi_read_str(p, val, sizeof(val)) &&
		    sscanf(val, "%u:%u", &ma, &mi) == 2)
			ds->dev[ds->n++] = makedev(ma, mi);
	}
	closedir(dh);
}

static bool devset_has(const struct devset *ds, dev_t d)
{
	int i;

	for (i = 0; i < ds->n; i++)
		if (ds->dev[i] == d)
			return true;
	return false;
}

/* Whether a line of /proc/self/mountinfo mounts one of @ds. */
static bool mount_matches(const struct devset *ds, char *line, bool *rw,
			  char *where, size_t len)
{
	char mnt[PATH_MAX], opts[256], src[PATH_MAX];
	unsigned int ma, mi;
	struct stat sb;
	char *sep;
	bool hit;

	if (sscanf(line, "%*d %*d %u:%u %*s %4095s %255s", &ma, &mi, mnt,
		   opts) != 4)
		return false;
	hit = devset_has(ds, makedev(ma, mi));
	sep = strstr(line, " - ");
	if (!hit && sep && sscanf(sep + 3, "%*s %4095s", src) == 1 &&
	    src[0] == '/' && !stat(src, &sb) && S_ISBLK(sb.st_mode))
		hit = devset_has(ds, sb.st_rdev);
	if (!hit)
		return false;
	*rw = !strncmp(opts, "rw", 2) && (opts[2] == ',' || !opts[2]);
	snprintf(where, len, "%s", mnt);
	return true;
}

/*
 * Finds a mount of the device or its partitions; prefers a read-write
 * one.  Return: 2 mounted read-write, 1 mounted read-only, 0 not mounted.
 */
static int devset_mounted(const struct devset *ds, char *where, size_t len)
{
	char line[3 * PATH_MAX], w[PATH_MAX];
	int found = 0;
	bool rw;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	while (found < 2 && fgets(line, sizeof(line), f)) {
		if (!mount_matches(ds, line, &rw, w, sizeof(w)))
			continue;
		if (rw || !found)
			snprintf(where, len, "%s", w);
		found = rw ? 2 : 1;
	}
	fclose(f);
	return found;
}

/* The name of a device that holds one of @ds (dm, md, ...), or false. */
static bool devset_held(const struct devset *ds, char *who, size_t len)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	struct dirent *e;
	bool held = false;
	DIR *dh;
	int i;

	for (i = 0; i < ds->n && !held; i++) {
		sysfs_dir(ds->dev[i], dir, sizeof(dir));
		snprintf(p, sizeof(p), "%s/holders", dir);
		dh = opendir(p);
		if (!dh)
			continue;
		while (!held && (e = readdir(dh))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(who, len, "%s", e->d_name);
			held = true;
		}
		closedir(dh);
	}
	return held;
}

/* Model and serial from sysfs, of the disk a partition belongs to. */
static void dev_identity(dev_t d, struct tbs_image_info *info)
{
	char dir[PATH_MAX], p[PATH_MAX + 32], real[PATH_MAX];
	char *slash;

	sysfs_dir(d, dir, sizeof(dir));
	if (!realpath(dir, real))
		return;
	snprintf(p, sizeof(p), "%s/partition", real);
	if (tbsi_exists(p) && (slash = strrchr(real, '/')))
		*slash = '\0';
	snprintf(p, sizeof(p), "%s/device/model", real);
	tbsi_read_str(p, info->model, sizeof(info->model));
	snprintf(p, sizeof(p), "%s/device/serial", real);
	if (tbsi_read_str(p, info->serial, sizeof(info->serial))) {
		snprintf(p, sizeof(p), "%s/device/wwid", real);
		tbsi_read_str(p, info->serial, sizeof(info->serial));
	}
}

/* Refuses a device that is in use, as its use allows. */
static int dev_check_use(const char *path, dev_t d, bool writing, bool force,
			 struct tbs_error *err)
{
	char where[PATH_MAX];
	struct devset ds;
	int m;

	devset_fill(&ds, d);
	m = devset_mounted(&ds, where, sizeof(where));
	if (writing && m)
		return tbsi_err(err, -EBUSY,
				"'%s' (or a partition of it) is mounted on "
				"'%s'; unmount it before restoring onto it",
				path, where);
	if (m == 2 && !force)
		return tbsi_err(
			err, -EBUSY,
			"'%s' (or a partition of it) is mounted read-write on "
			"'%s': a copy would not be consistent; unmount it or "
			"remount it read-only (or use --force)",
			path, where);
	if (devset_held(&ds, where, sizeof(where)) && (writing || !force))
		return tbsi_err(err, -EBUSY,
				"'%s' is held by '%s' (device mapper, RAID or "
				"LVM); stop that first%s",
				path, where,
				writing ? "" : " (or use --force)");
	return 0;
}

static int dev_size(int fd, const char *path, uint64_t *size,
		    struct tbs_error *err)
{
	if (ioctl(fd, BLKGETSIZE64, size))
		return tbsi_err(err, -errno,
				"could not read the size of '%s': %s", path,
				strerror(errno));
	return 0;
}

/**
 * tbsi_img_open_source() - open a source and describe it
 * @path:  block device or image file
 * @force: read a device mounted read-write
 * @info:  receives size, block size, identity and path
 * @err:   receives the reason of a failure
 *
 * Return: the descriptor, or a negative errno.
 */
int tbsi_img_open_source(const char *path, bool force,
			 struct tbs_image_info *info, struct tbs_error *err)
{
	struct stat sb;
	int fd, ret;

	memset(info, 0, sizeof(*info));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tbsi_err(err, -errno, "could not open '%s': %s", path,
				strerror(errno));
	ret = fstat(fd, &sb) ? -errno : 0;
	if (!ret && S_ISBLK(sb.st_mode)) {
		ret = dev_check_use(path, sb.st_rdev, false, force, err);
		if (!ret)
			ret = dev_size(fd, path, &info->size, err);
		dev_identity(sb.st_rdev, info);
	} else if (!ret && S_ISREG(sb.st_mode)) {
		info->size = (uint64_t)sb.st_size;
	} else if (!ret) {
		ret = tbsi_err(err, -EINVAL,
			       "'%s' is neither a block device nor a file",
			       path);
	}
	if (!ret && info->size > IMG_MAX_SIZE)
		ret = tbsi_err(err, -EFBIG, "'%s' is too large", path);
	if (ret) {
		close(fd);
		return ret;
	}
	info->block_size = TBS_IMAGE_BLOCK;
	snprintf(info->source, sizeof(info->source), "%s", path);
	return fd;
}

int tbs_image_probe(const char *path, bool force, struct tbs_image_info *info,
		    struct tbs_error *err)
{
	int fd = tbsi_img_open_source(path, force, info, err);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/**
 * tbsi_img_open_device() - open a block device an image is restored onto
 * @path: the device as the user named it (a link such as
 *        /dev/disk/by-id/... is the user's choice and is followed)
 * @rdev: the device number it had when it was checked
 * @size: size of the image
 * @err:  receives the reason of a failure
 *
 * Refuses a device that is mounted or held, one smaller than the image,
 * and a path that no longer is that device.  Never creates anything.
 *
 * Return: the descriptor (opened O_EXCL: the kernel refuses it while the
 * device is in use), or a negative errno.
 */
int tbsi_img_open_device(const char *path, dev_t rdev, uint64_t size,
			 struct tbs_error *err)
{
	struct stat sb;
	uint64_t have;
	int fd, ret;

	ret = dev_check_use(path, rdev, true, false, err);
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0)
		return tbsi_err(err, -errno,
				"could not open '%s' for writing: %s", path,
				strerror(errno));
	if (fstat(fd, &sb) || !S_ISBLK(sb.st_mode) || sb.st_rdev != rdev)
		ret = tbsi_err(err, -ESTALE,
			       "'%s' changed while it was being opened", path);
	else
		ret = dev_size(fd, path, &have, err);
	if (!ret && have < size)
		ret = tbsi_err(
			err, -EFBIG,
			"'%s' has %llu bytes, the image %llu: it does not fit",
			path, (unsigned long long)have,
			(unsigned long long)size);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/**
 * tbsi_img_zero_range() - make a range of the target read as zeros
 * @fd:     target
 * @is_dev: a block device keeps its old contents, so zeros are written
 *          (BLKZEROOUT, else plain writes); a file was truncated and
 *          reads zeros already (holes)
 * @off:    offset
 * @len:    length
 *
 * Return: 0 or a negative errno.
 */
int tbsi_img_zero_range(int fd, bool is_dev, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];
	uint64_t r[2] = { off, len };
	size_t n;
	int ret;

	if (!is_dev || !len)
		return 0;
	if (!(off % 512) && !(len % 512) && !ioctl(fd, BLKZEROOUT, r))
		return 0;
	while (len) {
		n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ret = tbsi_write_all(fd, zeros, n, (off_t)off);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* Stops at the first word that is not zero: data blocks cost nothing. */
bool tbsi_img_is_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t i, j, words = len / 8;
	uint64_t acc;

	for (i = 0; i < words; i += 32) {
		acc = 0;
		for (j = i; j < i + 32 && j < words; j++)
			acc |= w[j];
		if (acc)
			return false;
	}
	for (i = words * 8; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int tbsi_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}
