/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the file-tree sender's state, shared by
 * the walk (tree-walk.c) and the engine (tree-send.c).
 */
#ifndef TBS_TREE_SEND_H
#define TBS_TREE_SEND_H

#include <pthread.h>
#include <sys/types.h>

#include "internal.h"
#include "tree-int.h"

struct tx_entry {
	struct tree_entry e; /* no pointers used but @target below */
	char *path; /* to open locally */
	size_t rel; /* where the relative path starts in @path */
	char *target; /* symbolic link target, e.target_len bytes */
	uint8_t want, wflags; /* the receiver's answer (files) */
	uint64_t woff, whash;
	uint64_t dev, ino; /* as listed: a file that is no longer it is not
			    * sent */
	bool confirmed, failed, present;
};

struct tx_ino {
	dev_t dev;
	ino_t ino;
	uint32_t index;
	int used;
};

struct tx {
	struct tbs_session *s;
	struct tbs_tree_opts o;
	struct tbs_tree_stats st; /* under @lock */
	struct tbs_error *err;
	struct tx_entry *ents;
	size_t n, cap;
	struct tx_ino *inos;
	size_t nino, ino_cap;

	uint8_t *out; /* the record being filled */
	size_t out_len;
	struct tree_hash *hash;
	uint8_t *buf; /* for hashing */

	pthread_t reader;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool finished; /* FINISH arrived */
	uint64_t fin_applied, fin_failed;
	int fatal; /* negative errno: the transfer cannot go on */
	char fatal_msg[TBS_MSG_MAX];
	char first[TBS_MSG_MAX]; /* the first entry not transferred */
	bool reader_done, stop;
};

__attribute__((format(printf, 2, 3))) void tx_notify(struct tx *tx,
						     const char *fmt, ...);
/* An entry is not transferred: says why, and keeps the first reason. */
__attribute__((format(printf, 2, 3))) void tx_fail_note(struct tx *tx,
							const char *fmt, ...);
int tx_walk(struct tx *tx, const char *const *paths, size_t n);

#endif
