// SPDX-License-Identifier: MIT
/*
 * Holders: which processes have a stream device open (scanning
 * /proc/PID/fd, once for any number of devices), and taking a stream down
 * only when none does.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* One device looked for: its real path, and what was found. */
struct wanted {
	char dev[PATH_MAX];
	pid_t *pids;
	size_t max;
	int n;
	pid_t last; /* the last process counted, to count each once */
};

/* Counts process @pid once for each wanted device it has open. */
static void scan_pid(pid_t pid, struct wanted *w, int nw)
{
	char dir[64], fd[PATH_MAX], target[PATH_MAX];
	struct dirent *de;
	ssize_t len;
	DIR *d;
	int i;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fd, sizeof(fd), "%s/%s", dir, de->d_name);
		len = readlink(fd, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		for (i = 0; i < nw; i++) {
			if (w[i].last == pid || strcmp(target, w[i].dev))
				continue;
			w[i].last = pid;
			if ((size_t)w[i].n < w[i].max)
				w[i].pids[w[i].n] = pid;
			w[i].n++;
		}
	}
	closedir(d);
}

/* One walk over /proc for every wanted device. */
static void scan(struct wanted *w, int nw, pid_t exclude)
{
	struct dirent *de;
	char *end;
	long pid;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == exclude)
			continue;
		scan_pid(pid, w, nw);
	}
	closedir(d);
}

int tbs_stream_holders(const char *root, const struct tbs_stream *st,
		       pid_t *pids, size_t max, pid_t exclude)
{
	struct wanted w = { .pids = pids, .max = max };

	if (!st->device[0] || !realpath(st->device, w.dev))
		return 0;
	scan(&w, 1, exclude);
	return w.n;
}

static void holder_comm(struct tbs_stream *st)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)st->holder);
	if (tbsi_read_str(path, st->holder_comm, sizeof(st->holder_comm)))
		snprintf(st->holder_comm, sizeof(st->holder_comm), "?");
}

int tbsi_holders_fill(struct tbs_stream *arr, int n)
{
	struct wanted *w;
	int i, m = 0;

	w = calloc(n ? n : 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		arr[i].holders = 0;
		arr[i].holder = 0;
		arr[i].holder_comm[0] = '\0';
		w[i].pids = &arr[i].holder;
		w[i].max = 1;
		if (arr[i].device[0] && realpath(arr[i].device, w[i].dev))
			m++;
	}
	if (m)
		scan(w, n, 0);
	for (i = 0; i < n; i++) {
		arr[i].holders = w[i].n;
		if (arr[i].holders > 0)
			holder_comm(&arr[i]);
	}
	free(w);
	return 0;
}

int tbs_stream_down(const char *root, const struct tbs_stream *st, bool force,
		    struct tbs_error *err)
{
	char comm[32] = "?", path[64];
	pid_t pid;
	int n;

	n = tbs_stream_holders(root, st, &pid, 1, 0);
	if (n > 0 && !force) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		tbsi_read_str(path, comm, sizeof(comm));
		return tbsi_err(
			err, -EBUSY,
			"stream '%s' (%s) is in use by process %d (%s)%s; "
			"stop it first or use --force",
			st->name, st->device, (int)pid, comm,
			n > 1 ? " and others" : "");
	}
	return tbs_stream_remove(root, st->service, st->name, err);
}
