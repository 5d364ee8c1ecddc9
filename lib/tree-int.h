/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the file-tree engine's messages and the
 * helpers its sender and receiver share.  docs/PROTOCOL.md ("File trees")
 * is the specification; this header mirrors it.
 *
 * Every session record of application type TBS_TREE_APP carries one or
 * more messages, each an 8-byte header and a body; a message never spans
 * two records.
 *
 *   msg header: u8 type, u8 flags (0), u16 reserved (0), u32 body length
 *
 *   sender -> receiver
 *   0x01 START     24  u32 version (2), u32 flags (TSF_*), u64 entries,
 *                      u64 bytes (both expected, 0: not counted)
 *   0x02 ENTRY   68+  fixed part below, path components, link target
 *   0x03 LISTED    16  u64 entries, u64 bytes (the list is complete)
 *   0x04 FILE      16  u32 index, u32 0, u64 first offset sent
 *   0x05 DATA     16+  u32 index, u32 0, u64 offset, bytes
 *   0x06 FILE_END  24  u32 index, u32 0, u64 size, u64 hash of the file
 *   0x07 SKIP      8+  u32 index, u32 reason (TS_*), message
 *   0x08 DONE      16  u64 entries, u64 entries the sender failed to list
 *                      or send
 *   0x09 HASH      16  u32 index, u32 0, u64 hash of the whole file
 *   0x0a XATTR     8+  u32 index, u8 name length, u8 0, u16 0, name, value
 *   0x0b NAME      8+  u32 id, u8 kind (TN_*), u8 length, u16 0, name
 *
 *   receiver -> sender
 *   0x41 WANT      24  u32 index, u8 action, u8 flags, u16 0, u64 offset,
 *                      u64 hash (RESUME: of the prefix the receiver has)
 *   0x42 CONFIRM    4  u32 index (in increasing order)
 *   0x43 FAIL      8+  u32 index (ALL: the whole transfer), i32 errno,
 *                      message
 *   0x44 FINISH    24  u64 entries applied, u64 entries failed, u64 removed
 *   0x45 REMOVED   4+  u32 flags (TRF_*), the path (as text)
 */
#ifndef TBS_TREE_INT_H
#define TBS_TREE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "byteorder.h"
#include "tree-hash.h"

#define TBS_TREE_APP 0x7472 /* session application type, "tr" */
#define TREE_VERSION 2
#define TREE_REC_MAX (256 * 1024) /* one session record */
#define TREE_MSG_HDR 8
#define TREE_ENTRY_FIXED 68
#define TREE_DATA_HDR 16
#define TREE_NAME_MAX 255 /* bytes of one path component */
#define TREE_PATH_MAX 4096 /* bytes of a whole path, separators included */
#define TREE_DEPTH_MAX 256 /* components of a path */
#define TREE_TARGET_MAX 4095 /* bytes of a symbolic link's target */
#define TREE_TEXT_MAX 1024 /* bytes of a message text */
#define TREE_NONE 0xffffffffu /* no index: no hard link, whole transfer */
#define TREE_XNAME_MAX 255 /* bytes of an extended attribute's name */
#define TREE_XVALUE_MAX 65536 /* bytes of its value */
#define TREE_ID_NAME_MAX 255 /* bytes of a user or group name */
#define TREE_REMOVED_MAX 16384 /* bytes of a REMOVED message's path */
/*
 * Names that begin so are the receiver's own (partial files, journals):
 * no entry may have such a component, and a sender does not send them.
 */
#define TREE_TMP_PREFIX ".tbs-"
#define TREE_TMP_PREFIX_LEN 5

enum tree_msg_type {
	TM_START = 0x01,
	TM_ENTRY = 0x02,
	TM_LISTED = 0x03,
	TM_FILE = 0x04,
	TM_DATA = 0x05,
	TM_FILE_END = 0x06,
	TM_SKIP = 0x07,
	TM_DONE = 0x08,
	TM_HASH = 0x09,
	TM_XATTR = 0x0a,
	TM_NAME = 0x0b,
	TM_WANT = 0x41,
	TM_CONFIRM = 0x42,
	TM_FAIL = 0x43,
	TM_FINISH = 0x44,
	TM_REMOVED = 0x45,
};

/* START flags: what the sender asks for (either side may ask). */
#define TSF_CHECKSUM 0x1 /* compare by hash: every file has a HASH */
#define TSF_MIRROR 0x2 /* remove what is not listed (receiver must allow) */
#define TSF_DRY_RUN 0x4 /* change nothing, say what would change */
#define TSF_NUMERIC_IDS 0x8 /* owners by number: no NAME messages */
#define TSF_ALL (TSF_CHECKSUM | TSF_MIRROR | TSF_DRY_RUN | TSF_NUMERIC_IDS)

enum tree_kind {
	TK_FILE = 1,
	TK_DIR = 2,
	TK_SYMLINK = 3,
	TK_HARDLINK = 4, /* another name of entry @link */
	TK_FIFO = 5,
	TK_CHR = 6,
	TK_BLK = 7,
};

/* ENTRY flags */
#define TEF_LINKED 0x1 /* a file with further names: a HASH follows */

enum tree_want {
	TW_FULL = 1, /* send the whole file */
	TW_RESUME = 2, /* a prefix of @offset bytes with hash @hash is there */
	TW_SAME = 3, /* the receiver has it: nothing to send */
	TW_KEEP = 4, /* the receiver keeps its newer copy */
	TW_REFUSE = 5, /* refused (a FAIL message says why) */
};

#define TWF_REPLACE 0x1 /* WANT: the file replaces the receiver's */
#define TWF_DRY 0x2 /* WANT: a dry run: it would be taken, send nothing */

enum tree_skip {
	TS_UNREADABLE = 1, /* the sender could not read the file */
	TS_CHANGED = 2, /* it changed while it was being read */
};

enum tree_id_kind {
	TN_USER = 1,
	TN_GROUP = 2,
};

#define TRF_DIR 0x1 /* REMOVED: a directory, with everything in it */
#define TRF_DRY 0x2 /* REMOVED: would be removed (a dry run) */

/* One path component: pointers into the message, never NUL-terminated. */
struct tree_comp {
	const uint8_t *name;
	uint16_t len;
};

struct tree_entry {
	uint32_t index;
	uint8_t kind;
	uint8_t flags; /* TEF_* */
	uint16_t ncomp;
	uint32_t mode, uid, gid;
	uint32_t link;
	uint64_t size;
	int64_t mtime_s, atime_s;
	uint32_t mtime_ns, atime_ns;
	uint64_t rdev;
	uint16_t target_len;
	const uint8_t *comps; /* ncomp x (u16 length, bytes) */
	size_t comps_len;
	const uint8_t *target;
};

/* A decoded message; the pointers point into the record. */
struct tree_msg {
	uint8_t type;
	uint32_t index; /* also NAME's id */
	uint32_t u32; /* START version, WANT action, SKIP reason, FAIL errno,
		       * NAME kind, REMOVED flags */
	uint32_t flags; /* START flags, WANT flags */
	uint64_t a, b, c; /* offsets, sizes, hashes, counts */
	const uint8_t *data; /* DATA bytes, SKIP/FAIL/REMOVED text, XATTR and
			      * NAME name */
	size_t len;
	const uint8_t *value; /* XATTR value */
	size_t value_len;
	struct tree_entry e; /* ENTRY */
};

/* tree-wire.c: the codec.  Decoders never trust a length. */
typedef int (*tree_msg_fn)(void *arg, const struct tree_msg *m);
int tree_parse_record(const uint8_t *buf, size_t len, tree_msg_fn fn, void *arg,
		      char *why, size_t why_len);
int tree_decode(uint8_t type, const uint8_t *p, size_t len, struct tree_msg *m,
		char *why, size_t why_len);
int tree_comp_next(const struct tree_entry *e, size_t *pos,
		   struct tree_comp *c);
const char *tree_name_problem(const uint8_t *name, size_t len);
bool tree_name_reserved(const uint8_t *name, size_t len);
size_t tree_entry_encode(uint8_t *out, size_t cap, const struct tree_entry *e,
			 const char *const *names, const uint16_t *lens,
			 const char *target);
size_t tree_msg_put(uint8_t *out, size_t cap, uint8_t type, const void *body,
		    size_t len);
int tree_path_text(const struct tree_entry *e, char *buf, size_t len);

#endif
