/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the file-tree sender's state, shared by
 * the walk (tree-walk.c), the attributes (tree-attr.c) and the engine
 * (tree-send.c).
 *
 * The sender never holds the whole list: the walk yields one entry at a
 * time into a ring of at most TX_AHEAD entries, from the oldest file whose
 * data is not sent yet to the newest entry listed.  Memory therefore does
 * not grow with the number of entries, only with the directories open on
 * the current path and with the files that have further names.
 */
#ifndef TBS_TREE_SEND_H
#define TBS_TREE_SEND_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "internal.h"
#include "tree-int.h"

#define TX_AHEAD 4096 /* entries listed ahead of the file being sent */

struct tx_entry {
	struct tree_entry e; /* no pointers used but @target below */
	char *path; /* to open locally */
	size_t rel; /* where the relative path starts in @path */
	char *target; /* symbolic link target, e.target_len bytes */
	uint64_t dev, ino; /* as listed: a file that is no longer it is not
			    * sent */
	uint64_t hash; /* HASH sent with it (checksum, further names) */
	uint8_t want, wflags; /* the receiver's answer (files) */
	uint64_t woff;
	bool failed;
};

/* A file sent and not yet confirmed. */
struct tx_pend {
	uint32_t index;
	bool failed;
};

struct tx_ino {
	dev_t dev;
	ino_t ino;
	uint32_t index;
	int used;
};

/* A directory being walked: its names, sorted, and the next one. */
struct tx_frame {
	char **names;
	size_t next;
	size_t len; /* of its path */
	int fd; /* the directory, held (-1: deeper than TX_DIR_FDS) */
};

#define TX_DIR_FDS 32 /* directories of the current path held open */

struct tx_walk {
	const char *const *paths;
	size_t npaths, root; /* the next path to start */
	char path[PATH_MAX];
	size_t rel;
	struct tx_frame *stack;
	size_t depth, cap;
	int at_fd; /* the entry being listed: its name relative to ... */
	const char *at_name; /* ... @at_fd (AT_FDCWD: @path itself) */
	bool count_only; /* the first pass for the totals: no notes */
};

/* Ids already named to the receiver (NAME messages). */
struct tx_ids {
	uint64_t *v; /* kind << 32 | id, open addressing, 0 free */
	size_t n, cap;
};

struct tx {
	struct tbs_session *s;
	struct tbs_tree_opts o;
	struct tbs_tree_stats st; /* under @lock */
	struct tbs_error *err;
	uint32_t sflags; /* TSF_* asked for in START */

	struct tx_walk walk;
	bool walk_done;
	uint64_t expect_entries, expect_bytes;
	struct tx_ino *inos; /* files with further names */
	size_t nino, ino_cap;
	struct tx_ids ids;

	/* under @lock: the reader thread looks entries up by index */
	struct tx_entry *ring; /* TX_AHEAD entries: index & (TX_AHEAD - 1) */
	uint64_t head, n; /* the oldest entry kept, the next index */
	struct tx_pend *fifo; /* files awaiting CONFIRM, in order */
	size_t fifo_head, fifo_len, fifo_cap;
	uint64_t failed; /* entries the receiver failed, beyond the ring */
	uint64_t errors; /* entries this side could not list or send */
	uint64_t removed;

	int dir_fd; /* the directory of the last file sent, held */
	char *dir_path; /* its path, @dir_len bytes */
	size_t dir_len;

	uint8_t *out; /* the record being filled */
	size_t out_len;
	struct tree_hash *hash;
	uint8_t *buf; /* for hashing and attributes */

	pthread_t reader;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool finished; /* FINISH arrived */
	uint64_t fin_applied, fin_failed, fin_removed;
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
/* An entry this side could not list or send: noted and counted. */
__attribute__((format(printf, 2, 3))) void tx_error(struct tx *tx,
						    const char *fmt, ...);

/* tree-walk.c */
int tx_walk_start(struct tx *tx, struct tx_walk *w, const char *const *paths,
		  size_t n);
int tx_walk_next(struct tx *tx, struct tx_walk *w, struct tx_entry *te);
void tx_entry_free(struct tx_entry *te);
void tx_walk_free(struct tx_walk *w);

/* tree-send.c, for the attributes */
int tx_put(struct tx *tx, uint8_t type, const void *body, size_t len);

#endif
