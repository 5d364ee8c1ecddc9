/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the file-tree receiver's state, shared by
 * the protocol side (tree-recv.c) and the file-system side (tree-apply.c).
 */
#ifndef TBS_TREE_RECV_H
#define TBS_TREE_RECV_H

#include <sys/types.h>

#include "internal.h"
#include "tree-int.h"

enum rx_state {
	RS_NEW = 0,
	RS_WANTED, /* a WANT went out; data may come */
	RS_PENDING, /* written and verified, waiting for the next commit */
	RS_DONE, /* in place and durable (or present already) */
	RS_FAILED,
};

#define RXF_MADE 0x1 /* this transfer created or wrote it */
#define RXF_FRESH 0x2 /* a directory this run created: empty but for us */

/*
 * An entry, as little as the receiver needs: its path is its parent (an
 * earlier directory entry, or none: the receiving directory) and its last
 * name, so that memory grows with names received, not with whole paths.
 */
struct rx_entry {
	uint8_t kind, state, want, wflags;
	uint8_t xflags; /* RXF_* */
	uint8_t name_len;
	uint32_t name; /* offset of its last name in rx->arena */
	uint32_t parent; /* index of its directory's entry, or TREE_NONE */
	uint32_t mode, uid, gid, link;
	uint32_t mtime_ns, atime_ns;
	int64_t mtime_s, atime_s;
	uint64_t size, rdev, woff;
	uint64_t dev, ino; /* what was checked or made: compared before use */
	struct tree_hash *resume; /* hash of the partial copy's prefix */
};

struct rx_file {
	bool active;
	uint32_t index;
	int fd; /* -1: discarding */
	uint64_t pos;
	uint64_t ckpt_pos;
	uint64_t wb_pos; /* write-back started up to here */
	uint64_t ino; /* of the partial file */
	int64_t ckpt_ms;
	struct tree_hash *hash;
};

/* A slot of the table of directory entries (open addressing). */
struct rx_dir {
	uint64_t hash; /* of the path's components as on the wire; 0: free */
	uint32_t idx;
};

/* A file system the transfer wrote to: each is synced before confirming. */
struct rx_fs {
	uint64_t dev;
	int fd; /* a readable directory on it, for syncfs */
};

/* Sends a finished record of messages to the sender. */
typedef int (*rx_emit_fn)(void *arg, const uint8_t *buf, size_t len);

struct rx {
	rx_emit_fn emit;
	void *emit_arg;
	struct tbs_tree_opts o;
	struct tbs_tree_stats st;
	struct tbs_error *err;
	bool is_root;
	int root; /* O_PATH descriptor of the directory */
	struct rx_fs *fs; /* every file system written to, the root's first */
	size_t nfs;

	struct rx_entry *ents;
	size_t n, cap;
	uint64_t announced; /* entries START announced: no more are taken */
	uint8_t *arena; /* last names */
	size_t arena_len, arena_cap;
	struct rx_dir *dirs; /* directory entries by the hash of their path */
	size_t ndirs, dirs_cap;
	bool started, listed, done;

	int pfd; /* parent directory of the last entry looked up */
	uint64_t pdev; /* its device */
	uint32_t pidx; /* its entry (TREE_NONE: the root); valid if pfd >= 0 */
	bool pfresh; /* this transfer created it */

	struct rx_file cur;
	uint32_t *pend;
	size_t npend, pend_cap;
	uint64_t pend_bytes;
	int64_t pend_ms;

	uint8_t *out;
	size_t out_len;
	uint8_t *hbuf; /* for hashing files already there */
	char fatal[TBS_MSG_MAX];
	char first[TBS_MSG_MAX]; /* the first entry refused or failed */
};

/* tree-apply.c */
int rx_chain(const struct rx *rx, uint32_t idx, uint32_t *out);
int rx_parent(struct rx *rx, const struct rx_entry *re, char *name);
void rx_path(const struct rx *rx, const struct rx_entry *re, char *buf,
	     size_t len);
void rx_tmp_name(const char *name, const char *ext, char *buf, size_t len);
int rx_decide(struct rx *rx, struct rx_entry *re, uint64_t *off,
	      uint64_t *hash);
int rx_mkdir(struct rx *rx, struct rx_entry *re);
int rx_symlink(struct rx *rx, struct rx_entry *re, const uint8_t *target,
	       size_t len);
int rx_special(struct rx *rx, struct rx_entry *re);
int rx_open_tmp(struct rx *rx, struct rx_entry *re, uint64_t from);
void rx_checkpoint(struct rx *rx, struct rx_entry *re, bool force);
void rx_writeback(struct rx *rx);
int rx_finish_file(struct rx *rx, struct rx_entry *re);
void rx_drop_tmp(struct rx *rx, struct rx_entry *re);
int rx_commit(struct rx *rx);
int rx_finalize(struct rx *rx);

int rx_sync(struct rx *rx);
void rx_fs_free(struct rx *rx);

/* tree-recv.c: the protocol side */
__attribute__((format(printf, 3, 4))) int
rx_refuse(struct rx *rx, struct rx_entry *re, const char *fmt, ...);
int rx_put(struct rx *rx, uint8_t type, const void *body, size_t len);

/*
 * The receiver without a session, for tbs_tree_recv() and for the fuzz
 * target that drives its file-system side with records: rx_open() on a
 * directory, rx_record() for each record of the sender, rx_idle() when
 * nothing came for a while, rx_end() after DONE (FINISH is emitted),
 * rx_close().  Records to the sender go to @emit.
 */
int rx_open(struct rx *rx, const char *dir, const struct tbs_tree_opts *opts,
	    rx_emit_fn emit, void *emit_arg, struct tbs_error *err);
int rx_record(struct rx *rx, uint16_t type, const uint8_t *buf, size_t len);
int rx_idle(struct rx *rx);
int rx_end(struct rx *rx);
void rx_close(struct rx *rx);

#endif
