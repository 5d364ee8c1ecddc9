/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the file-tree receiver's state, shared by
 * the protocol side (tree-recv.c), the file-system side (tree-apply.c),
 * attributes (tree-attr-recv.c) and removal (tree-mirror.c).
 *
 * Memory.  Directories are kept for the whole transfer (their metadata is
 * set last, and entries name them as parents).  Every other entry is kept
 * in a window, from the oldest one still needed (a file being written or
 * waiting for its commit, a hard link waiting for its file) to the newest
 * listed; a file with further names moves to a small table once it is in
 * place.  A sender lists little ahead of the data it sends, so the window
 * stays small and memory does not grow with the number of files.
 */
#ifndef TBS_TREE_RECV_H
#define TBS_TREE_RECV_H

#include <pthread.h>
#include <sys/types.h>

#include "internal.h"
#include "tree-attr.h"
#include "tree-int.h"

enum rx_state {
	RS_NEW = 0,
	RS_WANTED, /* a WANT went out; data may come */
	RS_PENDING, /* written and verified, waiting for the next commit */
	RS_LINK, /* a hard link waiting for its file */
	RS_DONE, /* in place and durable (or present already) */
	RS_FAILED,
};

#define RXF_MADE 0x1 /* this transfer created or wrote it */
#define RXF_FRESH 0x2 /* a directory this run created: empty but for us */
#define RXF_PROVEN 0x4 /* the same content, proven by the sender's HASH */
#define RXF_DRY 0x8 /* dry run: a directory that would be made */
#define RXF_DACL 0x10 /* a directory whose new entries inherit an ACL */
#define RXF_ATTRS 0x20 /* its attributes may be set (XATTR messages) */

/* rx_entry.eflags beyond the wire's TEF_* */
#define REF_HASHWAIT 0x40 /* its HASH comes next */
#define REF_HASHED 0x80 /* the sender's hash is in @hash */

enum rx_arena { RA_WIN, RA_DIR, RA_LINK };

/* What every kept entry has: its place in the tree. */
struct rx_node {
	uint32_t index; /* its index in the transfer */
	uint32_t parent; /* the directory's id (rx->dirs), TREE_NONE: root */
	uint32_t name; /* offset of its last name in its arena */
	uint8_t name_len, kind, state, xflags;
	uint8_t arena; /* enum rx_arena */
};

/* A directory, kept for the whole transfer. */
struct rx_dir {
	struct rx_node n;
	uint32_t mode, uid, gid; /* owners mapped to local ids */
	uint32_t mtime_ns, atime_ns;
	int64_t mtime_s, atime_s;
	uint64_t dev, ino; /* what was checked or made: compared before use */
};

/* Any other entry, while it is needed. */
struct rx_entry {
	struct rx_node n;
	uint8_t want, wflags;
	uint8_t eflags; /* TEF_*, and the receiver's own REF_* */
	uint32_t dir; /* TK_DIR: its id in rx->dirs */
	uint32_t mode, uid, gid, link;
	uint32_t mtime_ns, atime_ns;
	int64_t mtime_s, atime_s;
	uint64_t size, rdev, woff, hash;
	uint64_t dev, ino;
	struct tree_hash *resume; /* hash of the partial copy's prefix */
};

/* A file with further names, once it is in place (or failed). */
struct rx_link {
	struct rx_node n;
	uint8_t want;
	uint64_t dev, ino;
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
	bool acl; /* an access ACL came for it */
	bool unnamed; /* @fd has no name yet (tree-unnamed.c) */
	bool chmod; /* its mode is not yet the sender's */
	uint8_t cap[64]; /* its file capability, set after its owner */
	size_t cap_len;
};

/* Open addressing: a hash and an id (0 hash: free). */
struct rx_slot {
	uint64_t hash;
	uint32_t id;
};

/* A file system the transfer wrote to: each is synced before confirming. */
struct rx_fs {
	uint64_t dev;
	int fd; /* a readable directory on it, for syncfs */
};

/* A written file waiting for its commit: where it goes, and how it went. */
struct rx_cfile {
	uint32_t index;
	uint16_t dir; /* its directory: rx_batch.dfd[dir] */
	uint8_t flags; /* CF_* */
	uint8_t name_len;
	uint32_t name; /* offset in rx_batch.names */
	uint32_t mtime_ns;
	int64_t mtime_s;
	int fd; /* an unnamed file, linked to its name; -1: renamed */
	int err; /* set by the committer: 0 or -errno */
};

#define CF_REPLACE 0x1 /* may replace what has its name */
#define CF_UPDATE 0x2 /* only if what has its name is still older */
#define CF_STATE 0x4 /* a large file: its journal goes */

enum rx_bstate {
	RB_OPEN = 0, /* files are added */
	RB_QUEUED, /* closed, for the committer */
	RB_SYNCING, /* its data is being synced */
	RB_PLACED, /* renamed into place; the renames wait for a sync */
	RB_RENAME_SYNC, /* the renames are being synced */
	RB_DONE, /* durable in place (or @err): for the receiving thread */
};

/*
 * A batch of written files, committed together: synced, renamed into
 * place, the renames synced.  The receiving thread fills it and, once
 * it is RB_DONE, confirms its files; in between it is the committer's.
 */
struct rx_batch {
	struct rx_cfile *f;
	size_t n, cap;
	size_t nfd; /* its unnamed files (each holds a descriptor) */
	int *dfd; /* the directories its files go to, held */
	size_t ndfd, dfd_cap;
	uint32_t last_dir; /* the receiver's id of dfd[ndfd - 1] */
	char *names;
	size_t names_len, names_cap;
	uint64_t bytes;
	int64_t since_ms;
	int state; /* enum rx_bstate, under rx.fs_lock */
	int err; /* a sync failed: -errno */
};

#define RX_BATCHES 4 /* in flight, and the one being filled */
#define RX_COMMIT_FILES 1024 /* files of a batch at most */
#define RX_COMMIT_DIRS 64 /* directories of a batch at most */
#define RX_AHEAD_MAX 64 /* files created ahead at most */
#define RX_RESUME_MIN (8u << 20) /* files from this size keep a journal */

/* How unnamed files get their name (tree-unnamed.c). */
enum rx_unnamed_how {
	RX_UNNAMED_OFF = 0, /* not at all: temporary names */
	RX_UNNAMED_EMPTY, /* linkat(fd, "", AT_EMPTY_PATH) */
	RX_UNNAMED_PROC, /* linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW) */
};

/* A directory on the current path of the sender's walk. */
struct rx_frame {
	uint32_t dir;
	size_t names; /* mirror: its names start at rx->mirror.offs[names] */
};

/* --delete: the names listed per open directory, and what goes. */
struct rx_mirror {
	bool on;
	uint8_t *buf; /* names of the open directories' entries */
	size_t len, cap;
	uint32_t *offs; /* where each name starts in @buf (u8 length first) */
	size_t noffs, offs_cap;
	uint8_t *gone; /* candidates: u32 directory id, u8 length, name */
	size_t gone_len, gone_cap;
	uint64_t ngone, removed;
};

/* User and group names from the sender, mapped to local ids. */
struct rx_ids {
	struct rx_slot *map; /* hash: kind << 32 | sender's id */
	uint32_t *local; /* by slot */
	size_t n, cap;
};

/* Sends a finished record of messages to the sender. */
typedef int (*rx_emit_fn)(void *arg, const uint8_t *buf, size_t len);

struct rx {
	rx_emit_fn emit;
	void *emit_arg;
	struct tbs_tree_opts o;
	struct tbs_tree_stats st;
	struct tbs_error *err;
	bool is_root, dry;
	bool root_dry; /* a dry run into a directory that is not there */
	const char *made_root; /* the directory, if this receiver made it */
	uint32_t sflags; /* TSF_* of START */
	int root; /* O_PATH descriptor of the directory */
	struct rx_fs *fs; /* every file system written to, the root's first;
			   * under @fs_lock */
	size_t nfs;
	pthread_mutex_t fs_lock;
	pthread_cond_t fs_cv;
	pthread_cond_t done_cv; /* a batch is RB_DONE */
	pthread_t committer; /* syncs and renames batches (tree-sync.c) */
	bool committer_on, committer_stop;
	struct rx_batch batch[RX_BATCHES]; /* [bhead, btail] by index % */
	uint64_t bhead, btail; /* the oldest in flight; the one filled */
	struct rx_ahead *ahead; /* files created ahead (tree-ahead.c) */
	bool ahead_off;
	int unnamed_how; /* enum rx_unnamed_how, set once at the start */
	bool unnamed_off; /* the file system has none (atomic: any thread) */
	unsigned int unnamed_open; /* unnamed files open (atomic) */
	unsigned int unnamed_max; /* at most (RLIMIT_NOFILE) */
	size_t batch_fds; /* unnamed files of one batch at most */
	size_t batch_dirs; /* directories of one batch at most */
	size_t ahead_max; /* files created ahead at most */
	int umask; /* the process's, -1: unknown */

	/* directories, for the whole transfer */
	struct rx_dir *dirs;
	size_t ndirs, dirs_cap;
	uint8_t *darena;
	size_t darena_len, darena_cap;
	struct rx_slot *dtab; /* by the hash of their path on the wire */
	size_t dtab_cap;

	/* the window of other entries: index & (win_cap - 1) */
	struct rx_entry *win;
	size_t win_cap;
	uint64_t base, n; /* the oldest entry kept, the next index */
	uint8_t *warena; /* their names, from warena_start */
	size_t warena_start, warena_len, warena_cap;
	uint64_t names_total; /* bytes of names received */

	/* files with further names */
	struct rx_link *links;
	size_t nlinks, links_cap;
	struct rx_slot *ltab; /* by index */
	size_t ltab_cap;
	uint8_t *larena;
	size_t larena_len, larena_cap;

	struct rx_frame *path; /* the sender's walk: directories open */
	size_t depth, path_cap;
	struct rx_mirror mirror;
	struct rx_ids ids;
	uint32_t attr_idx; /* the entry XATTR messages may follow */
	uint8_t not_kept; /* XK_* bits already reported */
	uint8_t lost; /* XK_* bits the file system did not keep */

	uint64_t announced; /* entries START announced (for progress) */
	bool started, listed, done;
	uint64_t sender_errors; /* DONE: what the sender could not send */

	int pfd; /* parent directory of the last entry looked up */
	uint64_t pdev; /* its device */
	uint32_t pidx; /* its directory id (TREE_NONE: the root) */
	bool pfresh, pdacl; /* this transfer created it; it has a default ACL */
	int pdacl_known;

	struct rx_file cur;
	uint32_t *lwait; /* hard links waiting for their file */
	size_t nlwait, lwait_cap;

	uint8_t *out;
	size_t out_len;
	uint8_t *hbuf; /* for hashing files already there */
	char fatal[TBS_MSG_MAX];
	char first[TBS_MSG_MAX]; /* the first entry refused or failed */
};

/* tree-recv.c: entries and names */
struct rx_entry *rx_ent(struct rx *rx, uint64_t idx);
struct rx_link *rx_link_find(struct rx *rx, uint32_t idx);
const uint8_t *rx_name(const struct rx *rx, const struct rx_node *n);
int rx_grow(void **p, size_t *cap, size_t need, size_t size);

/* tree-apply.c */
int rx_chain(const struct rx *rx, uint32_t dir, uint32_t *out);
int rx_parent(struct rx *rx, const struct rx_node *n, char *name);
int rx_walk_to(struct rx *rx, uint32_t dir);
void rx_path(const struct rx *rx, const struct rx_node *n, char *buf,
	     size_t len);
void rx_path_raw(const struct rx *rx, uint32_t dir, const uint8_t *name,
		 size_t name_len, char *buf, size_t len);
void rx_tmp_name(const char *name, const char *ext, char *buf, size_t len);
void rx_change(struct rx *rx, unsigned int what, const struct rx_node *n);
int rx_decide(struct rx *rx, struct rx_entry *re, uint64_t *off);
int rx_mkdir(struct rx *rx, struct rx_dir *d);
int rx_symlink(struct rx *rx, struct rx_entry *re, const uint8_t *target,
	       size_t len);
int rx_special(struct rx *rx, struct rx_entry *re);
int rx_open_tmp(struct rx *rx, struct rx_entry *re, uint64_t from);
void rx_close_cur(struct rx *rx, int fd);
void rx_checkpoint(struct rx *rx, struct rx_entry *re, bool force);
void rx_writeback(struct rx *rx);
int rx_finish_file(struct rx *rx, struct rx_entry *re);
void rx_drop_tmp(struct rx *rx, struct rx_entry *re);
int rx_rename(int pfd, const char *tmp, const char *name, bool replace);
int rx_place_file(struct rx *rx, const struct rx_batch *b,
		  struct rx_cfile *f);
void rx_placed(struct rx *rx, const struct rx_cfile *f);
void rx_links(struct rx *rx);
int rx_dir_open(struct rx *rx, const struct rx_dir *d);
int rx_finalize(struct rx *rx);
int rx_finish_dirs(struct rx *rx);

/* tree-ahead.c */
void rx_ahead_fill(struct rx *rx);
int rx_ahead_take(struct rx *rx, uint32_t index, bool *unnamed, mode_t *mode);
void rx_ahead_stop(struct rx *rx);

/* tree-unnamed.c */
void rx_unnamed_setup(struct rx *rx);
bool rx_unnamed_for(const struct rx *rx, const struct rx_entry *re);
int rx_unnamed_open(struct rx *rx, int dfd, mode_t mode);
void rx_unnamed_close(struct rx *rx, int fd);
int rx_unnamed_link(const struct rx *rx, int fd, int dfd, const char *name);
mode_t rx_create_mode(const struct rx *rx, const struct rx_entry *re);
bool rx_mode_final(const struct rx *rx, const struct rx_entry *re,
		   mode_t mode);

/* tree-sync.c */
int rx_fs_open(struct rx *rx, const char *dir);
int rx_fs_add(struct rx *rx, int dfd, uint64_t dev);
int rx_sync(struct rx *rx);
void rx_fs_free(struct rx *rx);
int rx_pend(struct rx *rx, struct rx_entry *re);
int rx_commit_poll(struct rx *rx, bool idle);
int rx_commit_all(struct rx *rx);

/* tree-attr-recv.c */
int rx_on_name(struct rx *rx, const struct tree_msg *m);
uint32_t rx_map_id(const struct rx *rx, int kind, uint32_t id);
int rx_on_xattr(struct rx *rx, const struct tree_msg *m);
void rx_attr_inherited(struct rx *rx, int fd, const struct rx_node *n);
int rx_attr_cap(struct rx *rx, int fd, const struct rx_node *n);
void rx_not_kept(struct rx *rx, enum xattr_kind k, const struct rx_node *n,
		 int err);
size_t rx_lost_text(const struct rx *rx, char *buf, size_t len);
void rx_ids_free(struct rx_ids *ids);

/* tree-mirror.c */
int rx_tree_enter(struct rx *rx, uint32_t parent, const uint8_t *name,
		  size_t len);
int rx_tree_push(struct rx *rx, uint32_t dir);
int rx_tree_close(struct rx *rx, size_t depth);
int rx_mirror_apply(struct rx *rx);
void rx_mirror_free(struct rx_mirror *m);

/* tree-recv.c: the protocol side */
__attribute__((format(printf, 3, 4))) int
rx_refuse(struct rx *rx, struct rx_node *n, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) void rx_warn(struct rx *rx,
						   const char *fmt, ...);
__attribute__((format(printf, 2, 3))) int rx_violation(struct rx *rx,
						       const char *fmt, ...);
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
