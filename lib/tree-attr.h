/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: what a file carries beyond its content
 * and mode, for the file-tree engine: extended attributes, POSIX ACLs
 * (the kernel's "system.posix_acl_*" attributes) and owners by name.
 *
 * On the wire (docs/PROTOCOL.md 5.1): an XATTR message per attribute,
 * right after the ENTRY of a directory, link or special file, and after
 * the DATA of a regular file (so that writing cannot clear a file
 * capability); a NAME message for each user or group id before the first
 * entry or ACL that uses it.
 */
#ifndef TBS_TREE_ATTR_H
#define TBS_TREE_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"

/* The kernel's ACL attribute: a header, then entries (posix_acl_xattr.h). */
#define ACL_XATTR_VERSION 2
#define ACL_HDR 4
#define ACL_ENTRY 8
enum acl_tag {
	ACL_T_USER_OBJ = 0x01,
	ACL_T_USER = 0x02,
	ACL_T_GROUP_OBJ = 0x04,
	ACL_T_GROUP = 0x08,
	ACL_T_MASK = 0x10,
	ACL_T_OTHER = 0x20,
};

/* The kinds of attributes, for the policy and for "not kept" notes. */
enum xattr_kind {
	XK_USER, /* user.* */
	XK_ACL, /* system.posix_acl_access and _default */
	XK_PRIV, /* trusted.* and security.* */
	XK_OTHER, /* any other system.*: never sent nor set */
	XK_OWNER, /* not an attribute: owner and group (as root) */
	XK_COUNT,
};

enum xattr_kind tree_xattr_kind(const char *name, size_t len);
/* Whether @v is a well-formed ACL attribute; -EINVAL when not. */
int tree_acl_check(const uint8_t *v, size_t len);

#ifdef TBS_TREE_SEND_H
/* NAME messages for the owner and group of @te, when not sent before. */
int tx_attr_owner(struct tx *tx, const struct tx_entry *te);
/* XATTR messages for @te, read by its path (not a regular file). */
int tx_attr_path(struct tx *tx, const struct tx_entry *te);
/* XATTR messages for regular file @te, open as @fd. */
int tx_attr_fd(struct tx *tx, const struct tx_entry *te, int fd);
#endif

#endif
