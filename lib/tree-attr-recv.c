// SPDX-License-Identifier: MIT
/*
 * The file-tree receiver's side of what a file carries beyond its content:
 * owners mapped by name, extended attributes and ACLs.  Its rules:
 *
 * - A name from the sender is only looked up in this host's own
 *   /etc/passwd and /etc/group; an id the sender did not name, or whose
 *   name is not there, stays the sender's number (and owners are set
 *   only by a receiver running as root, as before).
 * - user.* attributes and ACLs are set (unless --no-xattrs, --no-acls);
 *   trusted.* and security.* (file capabilities, SELinux labels) only by
 *   a receiver running as root that was given --all-xattrs; no other
 *   system.* attribute ever.  An ACL is checked and its users and groups
 *   mapped like owners.
 * - Attributes are set on what this transfer made (or, with
 *   --overwrite, a directory that was there), through a descriptor or a
 *   checked inode, never through a name a link could redirect.
 * - Nothing is buffered but a file capability (at most 64 bytes), which
 *   is set after the owner (changing the owner clears it).
 * - What the file system cannot keep, or policy does not allow, is said
 *   once per kind, not per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tree-recv.h"

#define IDS_MAX 65536 /* names of users and groups taken */
#define CAP_NAME "security.capability"
#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"

/* ---- owners by name ---- */

static bool numeric(const struct rx *rx)
{
	return (rx->o.flags & TBS_TREE_NUMERIC_IDS) ||
	       (rx->sflags & TSF_NUMERIC_IDS);
}

static uint64_t id_key(int kind, uint32_t id)
{
	return (uint64_t)kind << 32 | id | 1ull << 40; /* never 0 */
}

static size_t ids_slot(const struct rx_ids *t, uint64_t key)
{
	size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (t->cap - 1);

	while (t->map[i].hash && t->map[i].hash != key)
		i = (i + 1) & (t->cap - 1);
	return i;
}

uint32_t rx_map_id(const struct rx *rx, int kind, uint32_t id)
{
	size_t i;

	if (!rx->ids.cap || numeric(rx))
		return id;
	i = ids_slot(&rx->ids, id_key(kind, id));
	return rx->ids.map[i].hash ? rx->ids.map[i].id : id;
}

static int ids_put(struct rx_ids *t, uint64_t key, uint32_t local)
{
	size_t i;

	if (t->n * 2 >= t->cap) {
		struct rx_ids n = { .cap = t->cap ? t->cap * 2 : 64 };

		n.map = calloc(n.cap, sizeof(*n.map));
		if (!n.map)
			return -ENOMEM;
		for (i = 0; i < t->cap; i++)
			if (t->map[i].hash)
				n.map[ids_slot(&n, t->map[i].hash)] = t->map[i];
		n.n = t->n;
		free(t->map);
		*t = n;
	}
	i = ids_slot(t, key);
	t->n += !t->map[i].hash;
	t->map[i] = (struct rx_slot){ .hash = key, .id = local };
	return 0;
}

void rx_ids_free(struct rx_ids *ids)
{
	free(ids->map);
	ids->map = NULL;
	ids->n = ids->cap = 0;
}

/* @name's id in this host's own file (not through NSS); -ENOENT. */
static int local_id(int kind, const char *name, uint32_t *id)
{
	FILE *f = fopen(kind == TN_USER ? PASSWD_FILE : GROUP_FILE, "re");
	char buf[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	if (kind == TN_USER) {
		struct passwd pw, *p;

		while (r && !fgetpwent_r(f, &pw, buf, sizeof(buf), &p))
			if (!strcmp(p->pw_name, name)) {
				*id = p->pw_uid;
				r = 0;
			}
	} else {
		struct group gr, *g;

		while (r && !fgetgrent_r(f, &gr, buf, sizeof(buf), &g))
			if (!strcmp(g->gr_name, name)) {
				*id = g->gr_gid;
				r = 0;
			}
	}
	fclose(f);
	return r;
}

/* NAME: the sender's id @m->index is called @m->data there. */
int rx_on_name(struct rx *rx, const struct tree_msg *m)
{
	char name[TREE_ID_NAME_MAX + 1];
	uint32_t local;

	if (numeric(rx))
		return 0;
	if (rx->ids.n >= IDS_MAX)
		return rx_violation(rx, "more than %d owner names", IDS_MAX);
	memcpy(name, m->data, m->len);
	name[m->len] = 0;
	if (local_id((int)m->u32, name, &local))
		return 0; /* not known here: the number stays */
	return ids_put(&rx->ids, id_key((int)m->u32, m->index), local);
}

/* ---- what cannot be kept, said once per kind ---- */

static const char *const kind_text[XK_COUNT] = {
	[XK_USER] = "extended attributes (user.*)",
	[XK_ACL] = "ACLs",
	[XK_PRIV] = ("trusted.* and security.* attributes (file "
		     "capabilities, SELinux labels)"),
	[XK_OTHER] = "system.* attributes other than ACLs",
	[XK_OWNER] = "owners",
};

/**
 * rx_not_kept() - what entry @n carries of kind @k is not kept: said once
 * per kind
 * @rx:  receiver
 * @k:   the kind
 * @n:   the entry (the first one is named)
 * @err: why (an errno: the file system could not keep it, which the final
 *       verdict repeats), or 0 (the receiver's options)
 */
void rx_not_kept(struct rx *rx, enum xattr_kind k, const struct rx_node *n,
		 int err)
{
	char path[400];

	if (err)
		rx->lost |= (uint8_t)(1u << k);
	if (rx->not_kept & (1u << k))
		return;
	rx->not_kept |= (uint8_t)(1u << k);
	rx_path(rx, n, path, sizeof(path));
	if (k == XK_OTHER)
		rx_warn(rx, "%s are never set; not kept (the first: on '%s')",
			kind_text[k], path);
	else if (!err)
		rx_warn(rx,
			"%s are set only by a receiver running as root with "
			"--all-xattrs; not kept (the first: on '%s')",
			kind_text[k], path);
	else if (err == ENOTSUP)
		rx_warn(rx,
			"the file system does not keep %s; not kept (the "
			"first: on '%s'; said once)",
			kind_text[k], path);
	else
		rx_warn(rx, "%s could not be set on '%s': %s (said once)",
			kind_text[k], path, strerror(err));
}

/* The kinds the file system did not keep, for the verdict: "ACLs, owners". */
size_t rx_lost_text(const struct rx *rx, char *buf, size_t len)
{
	size_t n = 0;
	int k;

	buf[0] = 0;
	for (k = 0; k < XK_COUNT; k++)
		if (rx->lost & (1u << k) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
					      n ? ", " : "", kind_text[k]);
	return n < len ? n : len - 1;
}

/* ---- extended attributes ---- */

/* An ACL with its users and groups mapped to this host's ids. */
static void acl_map(const struct rx *rx, uint8_t *v, size_t len)
{
	size_t i;

	for (i = ACL_HDR; i + ACL_ENTRY <= len; i += ACL_ENTRY) {
		uint16_t tag = tbsi_le_get16(v + i);

		if (tag == ACL_T_USER || tag == ACL_T_GROUP)
			tbsi_le_put32(v + i + 4,
				      rx_map_id(rx,
						tag == ACL_T_USER ? TN_USER
								  : TN_GROUP,
						tbsi_le_get32(v + i + 4)));
	}
}

/* Sets an attribute on special file @re, checked by inode. */
static int set_special(struct rx *rx, struct rx_entry *re, const char *name,
		       const void *v, size_t len)
{
	char pname[TREE_NAME_MAX + 1], proc[64];
	struct stat sb;
	int pfd = rx_parent(rx, &re->n, pname), fd, r = 0;

	if (pfd < 0)
		return pfd;
	fd = openat(pfd, pname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || sb.st_ino != re->ino || sb.st_dev != re->dev)
		r = -ESTALE;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (!r && setxattr(proc, name, v, len, 0))
		r = -errno;
	close(fd);
	return r;
}

/* The entry XATTR messages now may follow, and its node. */
static struct rx_node *attr_target(struct rx *rx, uint32_t idx,
				   struct rx_entry **re)
{
	*re = NULL;
	if (rx->cur.active && rx->cur.index == idx) {
		*re = rx_ent(rx, idx);
		return *re ? &(*re)->n : NULL;
	}
	if (idx != rx->attr_idx)
		return NULL;
	*re = rx_ent(rx, idx);
	if (!*re)
		return NULL;
	return (*re)->n.kind == TK_DIR ? &rx->dirs[(*re)->dir].n : &(*re)->n;
}

/* Whether policy lets attribute @k be set; 0 no (said), 1 yes. */
static bool allowed(struct rx *rx, enum xattr_kind k, const struct rx_node *n)
{
	if (k == XK_ACL)
		return !(rx->o.flags & TBS_TREE_NO_ACLS);
	if (rx->o.flags & TBS_TREE_NO_XATTRS)
		return false;
	if (k == XK_OTHER || (k == XK_PRIV && (!rx->is_root ||
					       !(rx->o.flags &
						 TBS_TREE_ALL_XATTRS)))) {
		rx_not_kept(rx, k, n, 0);
		return false;
	}
	return true;
}

/* On the file being written: now, or (a capability) after its owner. */
static int set_on_file(struct rx *rx, const char *name, const uint8_t *v,
		       size_t len)
{
	struct rx_file *f = &rx->cur;

	if (f->fd < 0)
		return 0;
	if (!strcmp(name, CAP_NAME)) {
		if (len > sizeof(f->cap))
			return -E2BIG;
		memcpy(f->cap, v, len);
		f->cap_len = len;
		return 0;
	}
	if (!strcmp(name, ACL_ACCESS))
		f->acl = true;
	return fsetxattr(f->fd, name, v, len, 0) ? -errno : 0;
}

static int set_attr(struct rx *rx, struct rx_entry *re, struct rx_node *n,
		    const char *name, const uint8_t *v, size_t len)
{
	int fd, r;

	if (rx->cur.active && rx->cur.index == n->index)
		return set_on_file(rx, name, v, len);
	if (!(n->xflags & RXF_ATTRS) || n->state == RS_FAILED)
		return 0;
	if (n->kind != TK_DIR)
		return set_special(rx, re, name, v, len);
	fd = rx_dir_open(rx, &rx->dirs[re->dir]);
	if (fd < 0)
		return fd;
	r = fsetxattr(fd, name, v, len, 0) ? -errno : 0;
	close(fd);
	if (!r && !strcmp(name, ACL_DEFAULT)) {
		n->xflags |= RXF_DACL;
		rx->pdacl_known = 0;
	}
	return r;
}

/**
 * rx_on_xattr() - an XATTR message: set the attribute, if allowed
 * @rx: receiver
 * @m:  the message: its entry (the file being written, or the entry
 *      listed last), name and value
 *
 * Return: 0 (set, or not kept and said), -EPROTO when it names no such
 * entry or is a malformed ACL.
 */
int rx_on_xattr(struct rx *rx, const struct tree_msg *m)
{
	uint8_t acl[TREE_XVALUE_MAX];
	char name[TREE_XNAME_MAX + 1];
	struct rx_entry *re;
	struct rx_node *n = attr_target(rx, m->index, &re);
	enum xattr_kind k;
	const uint8_t *v = m->value;
	int r;

	if (!n || n->kind == TK_HARDLINK)
		return rx_violation(rx, "an attribute for no entry");
	memcpy(name, m->data, m->len);
	name[m->len] = 0;
	k = tree_xattr_kind(name, m->len);
	if (k == XK_ACL && tree_acl_check(m->value, m->value_len))
		return rx_violation(rx, "a malformed ACL");
	if (rx->dry || n->kind == TK_SYMLINK || !allowed(rx, k, n))
		return 0;
	if (k == XK_ACL) {
		memcpy(acl, m->value, m->value_len);
		acl_map(rx, acl, m->value_len);
		v = acl;
	}
	r = set_attr(rx, re, n, name, v, m->value_len);
	if (r == -EOPNOTSUPP)
		r = -ENOTSUP;
	if (r)
		rx_not_kept(rx, k, n, -r);
	return 0;
}

/*
 * What @fd (just made for @n) inherited from a default ACL of its
 * directory goes: its own ACLs, if any, come in XATTR messages.
 */
void rx_attr_inherited(struct rx *rx, int fd, const struct rx_node *n)
{
	int dfd;

	if (rx->o.flags & TBS_TREE_NO_ACLS)
		return;
	if (!rx->pdacl_known) {
		if (n->parent != TREE_NONE &&
		    (rx->dirs[n->parent].n.xflags & RXF_FRESH)) {
			rx->pdacl = rx->dirs[n->parent].n.xflags & RXF_DACL;
		} else {
			dfd = openat(rx->pfd, ".",
				     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			rx->pdacl = dfd >= 0 &&
				    fgetxattr(dfd, ACL_DEFAULT, NULL, 0) > 0;
			if (dfd >= 0)
				close(dfd);
		}
		rx->pdacl_known = 1;
	}
	if (!rx->pdacl)
		return;
	fremovexattr(fd, ACL_ACCESS);
	if (n->kind == TK_DIR)
		fremovexattr(fd, ACL_DEFAULT);
}

/* The file capability of the file being written, after its owner. */
int rx_attr_cap(struct rx *rx, int fd, const struct rx_node *n)
{
	struct rx_file *f = &rx->cur;
	int r;

	if (!f->cap_len || f->index != n->index)
		return 0;
	r = fsetxattr(fd, CAP_NAME, f->cap, f->cap_len, 0) ? errno : 0;
	f->cap_len = 0;
	if (r)
		rx_not_kept(rx, XK_PRIV, n, r == EOPNOTSUPP ? ENOTSUP : r);
	return 0;
}
