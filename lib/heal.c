// SPDX-License-Identifier: MIT
/*
 * Heal: streams that a killed process left behind.
 *
 * A stream is in use while a process has its device open, or while a
 * bring-up (tbs_stream_up()) holds a shared flock on its ConfigFS
 * directory.  A stream in use by nobody may be stale: left by a process
 * that was killed, towards a peer that has taken its own side down since.
 * It still holds its HopIDs, and the peer may choose exactly those for its
 * next stream; on the follower that stream then cannot take them.
 *
 * Whether the peer still has a stream is found the one way the driver
 * shows it: the stream is made again without HopIDs and takes the peer's
 * advertisement of its name, if there is one.  Then it has its HopIDs
 * again (the peer's, mirrored: the same pair as before when both sides
 * agreed) and its ring size and throttling are restored; or it has none,
 * and it is removed.
 *
 * An advertisement takes time to cross the cable: a stream the peer has
 * just taken over is not advertised yet.  The follower may remove such a
 * stream (any of its jobs makes it again from the allocator's current
 * advertisement), the allocator may not (its HopIDs are the pair's): it
 * heals carefully, giving a stream found unadvertised its HopIDs back and
 * probing it again after a while.
 *
 * Locking.  A bring-up holds an exclusive flock on its stream's directory
 * from the moment it finds or creates the stream until the stream is up,
 * so that healing leaves it alone and a second bring-up of the same
 * stream at the same moment sees that it is busy.  It takes that lock,
 * creates and removes the stream only while it holds an exclusive flock
 * on sys/kernel/config/thunderbolt, as healing does: no process finds a
 * stream between another's mkdir and its lock, or between the release of
 * that lock and the rmdir.
 * (The driver's own directory below it, thunderbolt/stream, is what
 * 'tbstream reconcile' locks to take turns with other runs.)  flock(2)
 * locks vanish with the process that held them, also after a kill -9.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

static int lock_path(const char *path, int how)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do
		ret = flock(fd, how);
	while (ret && errno == EINTR);
	if (ret) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int tbsi_lock_root(const char *root, int how)
{
	char path[PATH_MAX];

	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS_PARENT);
	return lock_path(path, how);
}

void tbsi_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/*
 * Takes @path's lock exclusively, without waiting: the caller holds the
 * root lock, so healing holds no stream lock now, and a stream locked
 * already is another process's bring-up (-EBUSY).
 */
static int lock_stream_dir(const char *path)
{
	int fd = lock_path(path, LOCK_EX | LOCK_NB);

	return fd == -EWOULDBLOCK ? -EBUSY : fd;
}

int tbsi_stream_lock(const char *root, const char *service, const char *name)
{
	char path[PATH_MAX];
	int rootfd, fd;

	rootfd = tbsi_lock_root(root, LOCK_EX);
	if (rootfd < 0)
		return rootfd;
	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS "/%s/%s", service,
		  name);
	fd = lock_stream_dir(path);
	tbsi_unlock(rootfd);
	return fd;
}

int tbsi_stream_create_locked(const char *root, const char *service,
			      const char *name, int *lockfd,
			      struct tbs_error *err)
{
	char path[PATH_MAX];
	int rootfd, ret;

	rootfd = tbsi_lock_root(root, LOCK_EX);
	if (rootfd < 0)
		return tbsi_err(err, rootfd, "could not lock '%s': %s",
				TBSI_CONFIGFS_PARENT, strerror(-rootfd));
	ret = tbs_stream_create(root, service, name, err);
	if (!ret) {
		tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS "/%s/%s",
			  service, name);
		*lockfd = lock_stream_dir(path);
		if (*lockfd < 0)
			ret = tbsi_err(err, *lockfd, "could not lock '%s': %s",
				       path, strerror(-*lockfd));
	}
	tbsi_unlock(rootfd);
	return ret;
}

int tbsi_stream_remove_locked(const char *root, const char *service,
			      const char *name, int lockfd,
			      struct tbs_error *err)
{
	int rootfd, ret;

	rootfd = tbsi_lock_root(root, LOCK_EX);
	tbsi_unlock(lockfd);
	ret = tbs_stream_remove(root, service, name, err);
	tbsi_unlock(rootfd);
	return ret;
}

static void restore(const char *root, const struct tbs_stream *old,
		    const struct tbs_stream *now)
{
	if (old->ring_size > 0 && old->ring_size != now->ring_size)
		tbs_stream_set(root, old->service, old->name,
			       TBS_ATTR_RING_SIZE, old->ring_size, NULL);
	if (old->throttling >= 0 && old->throttling != now->throttling)
		tbs_stream_set(root, old->service, old->name,
			       TBS_ATTR_THROTTLING, old->throttling, NULL);
}

/*
 * Makes @st again without HopIDs: 1 when the peer's advertisement gave it
 * HopIDs (its tuning restored), 0 when not (it is left without), or a
 * negative errno.
 */
static int probe(const char *root, const struct tbs_stream *st)
{
	struct tbs_stream now;
	int ret;

	ret = tbs_stream_remove(root, st->service, st->name, NULL);
	if (!ret)
		ret = tbs_stream_create(root, st->service, st->name, NULL);
	if (!ret)
		ret = tbs_stream_get(root, st->service, st->name, &now, NULL);
	if (ret)
		return ret;
	if (now.in_hopid <= 0 || now.out_hopid <= 0)
		return 0;
	restore(root, st, &now);
	return 1;
}

/* Gives a probed stream its HopIDs back, as it had them. */
static void reinstate(const char *root, const struct tbs_stream *st)
{
	if (!tbs_stream_set(root, st->service, st->name, TBS_ATTR_IN_HOPID,
			    st->in_hopid, NULL))
		tbs_stream_set(root, st->service, st->name, TBS_ATTR_OUT_HOPID,
			       st->out_hopid, NULL);
}

/* Whether stream @s of the list is a candidate: on @service, unused. */
static bool candidate(const struct tbs_stream *s, const char *service,
		      const char *skip)
{
	return s->connected && !strcmp(s->service, service) &&
	       strcmp(s->name, skip) && s->holders == 0;
}

/*
 * Probes @s unless a bring-up holds its lock.  Return: 1 when it was
 * removed; 2 when the peer does not advertise it but it was given its
 * HopIDs back to be probed again (@careful); 0 when it stays.
 */
static int heal_one(const char *root, const struct tbs_stream *s, bool careful)
{
	char path[PATH_MAX];
	int fd, ret;

	tbsi_path(path, sizeof(path), root, TBSI_CONFIGFS "/%s/%s", s->service,
		  s->name);
	fd = lock_path(path, LOCK_EX | LOCK_NB);
	if (fd < 0)
		return 0;
	if (s->in_hopid > 0 && s->out_hopid > 0)
		ret = probe(root, s);
	else
		ret = 0; /* holds nothing, does nothing: removed */
	if (ret == 0 && careful) {
		reinstate(root, s);
		ret = 2;
	} else if (ret == 0) {
		ret = !tbs_stream_remove(root, s->service, s->name, NULL);
	} else {
		ret = 0;
	}
	close(fd);
	return ret;
}

/* One pass over @arr; marks in @again what careful probing kept. */
static int heal_pass(const char *root, struct tbs_stream *arr, int n,
		     bool *again, const char *service, const char *skip,
		     bool careful)
{
	int i, r, removed = 0;

	for (i = 0; i < n; i++) {
		if (!again[i] || !candidate(&arr[i], service, skip))
			continue;
		r = heal_one(root, &arr[i], careful);
		again[i] = r == 2;
		removed += r == 1;
	}
	return removed;
}

int tbsi_heal(const char *root, const char *service, const char *skip,
	      int settle_ms)
{
	struct tbs_stream *arr;
	int rootfd, n, i, removed;
	bool *again;

	rootfd = tbsi_lock_root(root, LOCK_EX);
	if (rootfd < 0)
		return rootfd;
	n = tbs_streams_list(root, &arr, NULL);
	again = calloc(n > 0 ? n : 1, sizeof(*again));
	if (n < 0 || !again) {
		tbsi_unlock(rootfd);
		tbs_streams_free(arr);
		free(again);
		return n < 0 ? n : -ENOMEM;
	}
	for (i = 0; i < n; i++)
		again[i] = true;
	removed = heal_pass(root, arr, n, again, service, skip, settle_ms > 0);
	for (i = 0; i < n && settle_ms > 0 && !again[i]; i++)
		;
	if (i < n && settle_ms > 0) {
		/* an advertisement on its way has arrived by now */
		tbsi_sleep_ms(settle_ms);
		tbsi_holders_fill(arr, n);
		removed += heal_pass(root, arr, n, again, service, skip, false);
	}
	free(again);
	tbs_streams_free(arr);
	tbsi_unlock(rootfd);
	return removed;
}
