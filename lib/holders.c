// SPDX-License-Identifier: MIT
/*
 * Holders: which processes have a stream device open (scanning
 * /proc/PID/fd), and taking a stream down only when none does.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static bool pid_holds(pid_t pid, const char *dev)
{
	char dir[64], fd[PATH_MAX], target[PATH_MAX];
	struct dirent *de;
	bool found = false;
	ssize_t n;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(fd, sizeof(fd), "%s/%s", dir, de->d_name);
		n = readlink(fd, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = !strcmp(target, dev);
	}
	closedir(d);
	return found;
}

int tbs_stream_holders(const char *root, const struct tbs_stream *st,
		       pid_t *pids, size_t max, pid_t exclude)
{
	char dev[PATH_MAX];
	struct dirent *de;
	int n = 0;
	char *end;
	DIR *d;
	long pid;

	if (!st->device[0] || !realpath(st->device, dev))
		return 0;
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == exclude)
			continue;
		if (!pid_holds(pid, dev))
			continue;
		if ((size_t)n < max)
			pids[n] = pid;
		n++;
	}
	closedir(d);
	return n;
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
