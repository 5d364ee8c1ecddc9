// SPDX-License-Identifier: MIT
/*
 * Configuration: streams in ConfigFS (sys/kernel/config/thunderbolt/stream/
 * <service>/<name>/{index,in_hopid,out_hopid,ring_size,throttling}).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const attr_names[] = {
	[TBS_ATTR_IN_HOPID] = "in_hopid",
	[TBS_ATTR_OUT_HOPID] = "out_hopid",
	[TBS_ATTR_RING_SIZE] = "ring_size",
	[TBS_ATTR_THROTTLING] = "throttling",
};

static int stream_path(char *buf, size_t len, const char *root,
		       const char *service, const char *name, const char *attr)
{
	if (!name)
		return tbsi_path(buf, len, root, TBSI_CONFIGFS "/%s", service);
	if (!attr)
		return tbsi_path(buf, len, root, TBSI_CONFIGFS "/%s/%s",
				 service, name);
	return tbsi_path(buf, len, root, TBSI_CONFIGFS "/%s/%s/%s", service,
			 name, attr);
}

static int read_num(const char *root, const char *service, const char *name,
		    const char *attr, int *val)
{
	char path[PATH_MAX];
	long v;
	int ret;

	ret = stream_path(path, sizeof(path), root, service, name, attr);
	if (!ret)
		ret = tbsi_read_int(path, &v);
	*val = ret ? -1 : (int)v;
	return ret;
}

/* Which connected peer, if any, sits behind ConfigFS service @service. */
static void stream_peer(const char *root, struct tbs_stream *st)
{
	char path[PATH_MAX], key[32];

	st->connected = false;
	st->peer_uid[0] = '\0';
	if (tbsi_path(path, sizeof(path), root, TBSI_DEVICES "/%s/key",
		      st->service) ||
	    tbsi_read_str(path, key, sizeof(key)) || strcmp(key, "stream"))
		return;
	st->connected = true;
	*strrchr(path, '/') = '\0';
	*strrchr(path, '.') = '\0';
	strcat(path, "/unique_id");
	if (tbsi_read_str(path, st->peer_uid, sizeof(st->peer_uid)))
		st->peer_uid[0] = '\0';
}

int tbs_stream_get(const char *root, const char *service, const char *name,
		   struct tbs_stream *st, struct tbs_error *err)
{
	char path[PATH_MAX];

	memset(st, 0, sizeof(*st));
	stream_path(path, sizeof(path), root, service, name, NULL);
	if (!tbsi_is_dir(path))
		return tbsi_err(err, -ENOENT, "no stream '%s' in '%s'", name,
				path);
	snprintf(st->name, sizeof(st->name), "%s", name);
	snprintf(st->service, sizeof(st->service), "%s", service);
	read_num(root, service, name, "index", &st->index);
	read_num(root, service, name, "in_hopid", &st->in_hopid);
	read_num(root, service, name, "out_hopid", &st->out_hopid);
	read_num(root, service, name, "ring_size", &st->ring_size);
	read_num(root, service, name, "throttling", &st->throttling);
	if (st->index >= 0)
		tbsi_path(st->device, sizeof(st->device), root,
			  "dev/tbstream%d", st->index);
	stream_peer(root, st);
	st->holders = -1; /* not looked up: see tbs_stream_holders() */
	return 0;
}

static int list_service(const char *root, const char *service,
			struct tbs_stream **arr, int *n)
{
	char path[PATH_MAX];
	struct tbs_stream *p;
	struct dirent *de;
	DIR *dir;

	stream_path(path, sizeof(path), root, service, NULL, NULL);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || !tbsi_valid_name(de->d_name))
			continue;
		p = realloc(*arr, (*n + 1) * sizeof(**arr));
		if (!p) {
			closedir(dir);
			return -ENOMEM;
		}
		*arr = p;
		if (!tbs_stream_get(root, service, de->d_name, &p[*n], NULL))
			(*n)++;
	}
	closedir(dir);
	return 0;
}

static int stream_cmp(const void *a, const void *b)
{
	const struct tbs_stream *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : strcmp(x->name, y->name);
}

int tbs_streams_list(const char *root, struct tbs_stream **streams,
		     struct tbs_error *err)
{
	struct tbs_stream *arr = NULL;
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0, ret = 0;
	DIR *dir;

	*streams = NULL;
	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS);
	dir = opendir(path);
	if (!dir)
		return tbsi_no_driver(root, err);
	while (!ret && (de = readdir(dir)))
		if (de->d_name[0] != '.')
			ret = list_service(root, de->d_name, &arr, &n);
	closedir(dir);
	if (ret) {
		free(arr);
		return tbsi_err(err, ret, "out of memory");
	}
	if (!n) {
		free(arr);
		return 0;
	}
	qsort(arr, n, sizeof(*arr), stream_cmp);
	ret = tbsi_holders_fill(arr, n);
	if (ret) {
		free(arr);
		return tbsi_err(err, ret, "out of memory");
	}
	*streams = arr;
	return n;
}

void tbs_streams_free(struct tbs_stream *streams)
{
	free(streams);
}

static int make_dir(const char *path, struct tbs_error *err)
{
	if (!mkdir(path, 0755))
		return 0;
	if (errno == EEXIST)
		return -EEXIST;
	if (errno == EACCES || errno == EPERM)
		return tbsi_err(
			err, -errno,
			"could not create '%s': %s: setting a stream up "
			"takes root (sudo), or list it in "
			"/etc/tbstream/streams.conf for the system to "
			"set up",
			path, strerror(errno));
	return tbsi_err(err, -errno, "could not create '%s': %s", path,
			strerror(errno));
}

int tbs_stream_create(const char *root, const char *service, const char *name,
		      struct tbs_error *err)
{
	char path[PATH_MAX];
	int ret;

	if (!tbsi_valid_name(name))
		return tbsi_err(
			err, -EINVAL,
			"invalid stream name '%s': 1 to %d bytes, no '/'", name,
			TBS_NAME_MAX);
	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS);
	if (!tbsi_is_dir(path))
		return tbsi_no_driver(root, err);
	stream_path(path, sizeof(path), root, service, NULL, NULL);
	ret = make_dir(path, err);
	if (ret && ret != -EEXIST)
		return ret;
	stream_path(path, sizeof(path), root, service, name, NULL);
	ret = make_dir(path, err);
	if (ret == -EEXIST)
		return tbsi_err(err, ret, "stream '%s' exists already", path);
	return ret;
}

int tbs_stream_remove(const char *root, const char *service, const char *name,
		      struct tbs_error *err)
{
	char path[PATH_MAX];

	stream_path(path, sizeof(path), root, service, name, NULL);
	if (rmdir(path))
		return tbsi_err(err, -errno, "could not remove '%s': %s", path,
				strerror(errno));
	stream_path(path, sizeof(path), root, service, NULL, NULL);
	if (rmdir(path) && errno != ENOTEMPTY && errno != EEXIST &&
	    errno != EBUSY)
		return tbsi_err(err, -errno, "could not remove '%s': %s", path,
				strerror(errno));
	return 0;
}

int tbs_stream_set(const char *root, const char *service, const char *name,
		   enum tbs_attr attr, long value, struct tbs_error *err)
{
	char path[PATH_MAX], val[32];

	if ((unsigned int)attr > TBS_ATTR_THROTTLING)
		return tbsi_err(err, -EINVAL, "unknown attribute %d", attr);
	stream_path(path, sizeof(path), root, service, name, attr_names[attr]);
	snprintf(val, sizeof(val), "%ld", value);
	return tbsi_write_attr(path, val, err);
}

int tbs_stream_find(const char *root, const char *peer_uid, const char *name,
		    struct tbs_stream *st, struct tbs_error *err)
{
	struct tbs_stream *arr;
	int n, i, found = -1;

	n = tbs_streams_list(root, &arr, err);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (strcmp(arr[i].name, name) ||
		    (peer_uid && strcasecmp(arr[i].peer_uid, peer_uid)))
			continue;
		if (found >= 0) {
			tbs_streams_free(arr);
			return tbsi_err(err, -ENOTUNIQ,
					"streams named '%s' exist towards "
					"several peers: choose one with --peer",
					name);
		}
		found = i;
	}
	if (found >= 0)
		*st = arr[found];
	tbs_streams_free(arr);
	if (found < 0)
		return tbsi_err(
			err, -ENOENT,
			"no stream '%s' is configured%s (see 'tbstream list')",
			name, peer_uid ? " towards that peer" : "");
	return 0;
}
