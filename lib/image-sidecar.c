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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image-int.h"
#include "internal.h"

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

/* The journal: "tbsimage-journal 2", key, size, done, and the target
 * (inode of the image file, or the device number) it belongs to. */
int tbsi_img_journal_read(int dfd, const char *name, struct img_journal *j)
{
	unsigned long long k, s, d, t;
	char buf[256];
	int ret = tbsi_read_own(dfd, name, 0, buf, sizeof(buf));

	if (ret)
		return ret;
	if (sscanf(buf,
		   "tbsimage-journal 2\nkey %llx\nsize %llu\ndone %llu\n"
		   "target %llu",
		   &k, &s, &d, &t) != 4 ||
	    d > s)
		return -EINVAL;
	j->key = k;
	j->size = s;
	j->done = d;
	j->target = t;
	return 0;
}

/* Syncs directory @dfd, so that a rename or a new name in it is durable. */
int tbsi_img_sync_dir(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = fsync(fd) ? -errno : 0;
	close(fd);
	return ret;
}

/* Replaces @name in @dfd with @text, durably, through a new file. */
static int replace_file(int dfd, const char *name, const char *text,
			mode_t mode)
{
	char tmp[NAME_MAX + 8];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = tbsi_create_excl(dfd, tmp, O_WRONLY, mode);
	if (fd < 0)
		return fd;
	ret = tbsi_write_all(fd, text, strlen(text), -1);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && renameat(dfd, tmp, dfd, name))
		ret = -errno;
	if (ret) {
		unlinkat(dfd, tmp, 0);
		return ret;
	}
	return tbsi_img_sync_dir(dfd);
}

int tbsi_img_journal_write(int dfd, const char *name,
			   const struct img_journal *j)
{
	char text[200];

	snprintf(text, sizeof(text),
		 "tbsimage-journal 2\nkey %016llx\nsize %llu\ndone %llu\n"
		 "target %llu\n",
		 (unsigned long long)j->key, (unsigned long long)j->size,
		 (unsigned long long)j->done, (unsigned long long)j->target);
	return replace_file(dfd, name, text, 0600);
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

/**
 * tbsi_img_sidecar_write() - describe a complete image beside it
 * @dfd:  the image's directory
 * @base: the image's name in it
 * @i:    what describes it
 * @err:  receives the reason of a failure
 *
 * Return: 0 or a negative errno.
 */
int tbsi_img_sidecar_write(int dfd, const char *base,
			   const struct tbs_image_info *i,
			   struct tbs_error *err)
{
	char name[NAME_MAX + 16], text[2048], *p = text;
	size_t left = sizeof(text);
	int n, ret;

	n = snprintf(p, left,
		     "{\n  \"format\": \"tbsimage 2\",\n"
		     "  \"size\": %llu,\n  \"block_size\": %u,\n"
		     "  \"hash_algorithm\": \"" IMG_HASH_NAME "\",\n",
		     (unsigned long long)i->size, i->block_size);
	p += n;
	left -= (size_t)n;
	json_kv(&p, &left, "image", base, false);
	json_kv(&p, &left, "hash", i->hash, false);
	json_kv(&p, &left, "source", i->source, false);
	json_kv(&p, &left, "model", i->model, false);
	json_kv(&p, &left, "serial", i->serial, false);
	json_kv(&p, &left, "date", i->date, true);
	snprintf(p, left, "}\n");
	snprintf(name, sizeof(name), "%s%s", base, TBS_IMAGE_SIDECAR);
	ret = replace_file(dfd, name, text, 0644);
	if (ret)
		return tbsi_err(err, ret, "could not write '%s': %s", name,
				strerror(-ret));
	return 0;
}

/* The byte a JSON escape after its backslash stands for; 0 when none. */
static size_t json_unescape(const char *v, char *c)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k = *v ? strchr(from, *v) : NULL;
	unsigned int u;
	int used = 0;

	if (k) {
		*c = to[k - from];
		return 1;
	}
	/* The writer spells only control characters as \u00XX. */
	if (sscanf(v, "u%4x%n", &u, &used) == 1 && used == 5 && u && u < 0x80) {
		*c = (char)u;
		return 5;
	}
	return 0;
}

/* Reads the string value of "key" in @line into @out (escapes undone). */
static bool json_get_str(const char *line, const char *key, char *out,
			 size_t len)
{
	char pat[40];
	const char *v;
	size_t n = 0, k;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	v = strstr(line, pat);
	if (!v)
		return false;
	for (v += strlen(pat); *v && *v != '"' && n + 1 < len; v++) {
		if (*v == '\\' && (k = json_unescape(v + 1, &out[n]))) {
			v += k;
			n++;
			continue;
		}
		out[n++] = *v;
	}
	out[n] = '\0';
	return true;
}

static void sidecar_line(const char *line, struct tbs_image_info *info,
			 char *algo, int *seen)
{
	unsigned long long v;
	const char *p;

	if ((p = strstr(line, "\"size\":")) && sscanf(p + 7, "%llu", &v) == 1) {
		info->size = v;
		*seen |= 1;
	} else if ((p = strstr(line, "\"block_size\":")) &&
		   sscanf(p + 13, "%llu", &v) == 1 && v <= UINT32_MAX) {
		info->block_size = (uint32_t)v;
	} else if (json_get_str(line, "hash_algorithm", algo, 32)) {
		*seen |= 4;
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
	char path[PATH_MAX], line[1024], algo[32] = "";
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
		sidecar_line(line, info, algo, &seen);
	fclose(f);
	if ((seen & 4) && strcmp(algo, IMG_HASH_NAME))
		return tbsi_err(err, -EINVAL,
				"'%s' gives the hash as %s, which this tbstream "
				"does not compute (an image of an older "
				"tbstream: 'xxhsum -H2' checks it)",
				path, algo);
	if ((seen & 3) != 3 || tbsi_img_hash_parse(info->hash, &h))
		return tbsi_err(err, -EINVAL,
				"'%s' is not a tbstream image sidecar (no size "
				"or hash)",
				path);
	return 0;
}
