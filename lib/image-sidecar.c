// SPDX-License-Identifier: MIT
/*
 * What lives beside an image: the sidecar (IMAGE.tbsimage, a small JSON
 * object that describes a complete image) and the journal
 * (IMAGE.tbsimage.part, the state of an unfinished transfer), both
 * replaced atomically (written to a temporary file, synced, renamed).
 * Also tbs_image_verify(), which hashes an image against its sidecar.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image-int.h"
#include "internal.h"

#define RUN_DIR "/run/tbstream"

int tbsi_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The identity a journal must match to be resumed. */
uint64_t tbsi_img_key(const struct tbs_image_info *info)
{
	XXH3_state_t *h = XXH3_createState();
	uint64_t k;

	if (!h)
		return 0;
	XXH3_64bits_reset(h);
	XXH3_64bits_update(h, &info->size, sizeof(info->size));
	XXH3_64bits_update(h, &info->block_size, sizeof(info->block_size));
	XXH3_64bits_update(h, info->model, strlen(info->model));
	XXH3_64bits_update(h, "/", 1);
	XXH3_64bits_update(h, info->serial, strlen(info->serial));
	k = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return k;
}

/**
 * tbsi_img_journal_path() - where the journal of a target lives
 * @target:    the image file or device
 * @is_dev:    a device's journal goes to @state_dir, a file's beside it
 * @state_dir: directory for devices' journals, NULL for /run/tbstream
 * @buf:       receives the path
 * @len:       size of @buf
 *
 * Return: 0, or -ENAMETOOLONG.
 */
int tbsi_img_journal_path(const char *target, bool is_dev,
			  const char *state_dir, char *buf, size_t len)
{
	const char *base = strrchr(target, '/');
	int n;

	if (!is_dev) {
		n = snprintf(buf, len, "%s%s", target, TBS_IMAGE_JOURNAL);
	} else {
		state_dir = state_dir ? state_dir : RUN_DIR;
		mkdir(state_dir, 0700);
		n = snprintf(buf, len, "%s/%s%s", state_dir,
			     base ? base + 1 : target, TBS_IMAGE_JOURNAL);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int tbsi_img_journal_read(const char *path, struct img_journal *j)
{
	unsigned long long k, s, d;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "tbsimage-journal 1\nkey %llx\nsize %llu\ndone %llu", &k,
		   &s, &d);
	fclose(f);
	if (n != 3 || d > s)
		return -EINVAL;
	j->key = k;
	j->size = s;
	j->done = d;
	return 0;
}

/* Syncs the directory that holds @path, so that a rename is durable. */
static int sync_dir_of(const char *path)
{
	char tmp[PATH_MAX];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), "%s", path);
	fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = fsync(fd) ? -errno : 0;
	close(fd);
	return ret;
}

/* Replaces @path with @text, durably. */
static int replace_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = tbsi_write_all(fd, text, strlen(text));
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return ret;
	}
	return sync_dir_of(path);
}

int tbsi_img_journal_write(const char *path, const struct img_journal *j)
{
	char text[160];

	snprintf(text, sizeof(text),
		 "tbsimage-journal 1\nkey %016llx\nsize %llu\ndone %llu\n",
		 (unsigned long long)j->key, (unsigned long long)j->size,
		 (unsigned long long)j->done);
	return replace_file(path, text);
}

/* Appends "key": "value" with JSON escapes. */
static void json_kv(char **p, size_t *left, const char *k, const char *v,
		    bool last)
{
	char esc[2 * 256 + 1];
	size_t n = 0;
	int w;

	for (; *v && n + 7 < sizeof(esc); v++) {
		if (*v == '"' || *v == '\\')
			esc[n++] = '\\';
		if ((unsigned char)*v < 0x20)
			n += (size_t)snprintf(esc + n, 7, "\\u%04x", *v);
		else
			esc[n++] = *v;
	}
	esc[n] = '\0';
	w = snprintf(*p, *left, "  \"%s\": \"%s\"%s\n", k, esc,
		     last ? "" : ",");
	if (w > 0 && (size_t)w < *left) {
		*p += w;
		*left -= (size_t)w;
	}
}

int tbsi_img_sidecar_write(const char *image, const struct tbs_image_info *i,
			   struct tbs_error *err)
{
	char path[PATH_MAX], text[2048], *p = text, *base;
	size_t left = sizeof(text);
	int n, ret;

	base = strrchr(image, '/');
	n = snprintf(p, left,
		     "{\n  \"format\": \"tbsimage 1\",\n"
		     "  \"size\": %llu,\n  \"block_size\": %u,\n"
		     "  \"hash_algorithm\": \"xxh3-128\",\n",
		     (unsigned long long)i->size, i->block_size);
	p += n;
	left -= (size_t)n;
	json_kv(&p, &left, "image", base ? base + 1 : image, false);
	json_kv(&p, &left, "hash", i->hash, false);
	json_kv(&p, &left, "source", i->source, false);
	json_kv(&p, &left, "model", i->model, false);
	json_kv(&p, &left, "serial", i->serial, false);
	json_kv(&p, &left, "date", i->date, true);
	snprintf(p, left, "}\n");
	snprintf(path, sizeof(path), "%s%s", image, TBS_IMAGE_SIDECAR);
	ret = replace_file(path, text);
	if (ret)
		return tbsi_err(err, ret, "could not write '%s': %s", path,
				strerror(-ret));
	return 0;
}

/* Reads the string value of "key" in @line into @out (escapes undone). */
static bool json_get_str(const char *line, const char *key, char *out,
			 size_t len)
{
	char pat[40];
	const char *v;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	v = strstr(line, pat);
	if (!v)
		return false;
	for (v += strlen(pat); *v && *v != '"' && n + 1 < len; v++) {
		if (*v == '\\' && v[1])
			v++;
		out[n++] = *v;
	}
	out[n] = '\0';
	return true;
}

static void sidecar_line(const char *line, struct tbs_image_info *info,
			 int *seen)
{
	unsigned long long v;
	const char *p;

	if ((p = strstr(line, "\"size\":")) && sscanf(p + 7, "%llu", &v) == 1) {
		info->size = v;
		*seen |= 1;
	} else if ((p = strstr(line, "\"block_size\":")) &&
		   sscanf(p + 13, "%llu", &v) == 1 && v <= UINT32_MAX) {
		info->block_size = (uint32_t)v;
	} else if (json_get_str(line, "hash", info->hash, sizeof(info->hash))) {
		*seen |= 2;
	} else if (!json_get_str(line, "source", info->source,
				 sizeof(info->source)) &&
		   !json_get_str(line, "model", info->model,
				 sizeof(info->model)) &&
		   !json_get_str(line, "serial", info->serial,
				 sizeof(info->serial))) {
		json_get_str(line, "date", info->date, sizeof(info->date));
	}
}

int tbs_image_sidecar_read(const char *image, struct tbs_image_info *info,
			   struct tbs_error *err)
{
	char path[PATH_MAX], line[1024];
	XXH128_hash_t h;
	int seen = 0;
	FILE *f;

	memset(info, 0, sizeof(*info));
	snprintf(path, sizeof(path), "%s%s", image, TBS_IMAGE_SIDECAR);
	f = fopen(path, "re");
	if (!f)
		return tbsi_err(err, -errno, "could not open '%s': %s", path,
				strerror(errno));
	while (fgets(line, sizeof(line), f))
		sidecar_line(line, info, &seen);
	fclose(f);
	if (seen != 3 || tbsi_img_hash_parse(info->hash, &h))
		return tbsi_err(err, -EINVAL,
				"'%s' is not a tbstream image sidecar (no size "
				"or hash)",
				path);
	return 0;
}
