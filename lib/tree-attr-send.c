// SPDX-License-Identifier: MIT
/*
 * The file-tree sender's side of what a file carries beyond its content:
 * its extended attributes and ACLs (XATTR messages) and the names of the
 * users and groups it names (NAME messages, each id once), so that the
 * receiver can map owners by name.  What cannot be read is left out with
 * a note: the file itself still goes.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "tree-send.h"
#include "tree-attr.h"

#define XLIST_MAX 65536 /* the kernel's limit of a list of names */

/* ---- names of users and groups ---- */

static size_t ids_slot(const struct tx_ids *t, uint64_t key)
{
	size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull) & (t->cap - 1);

	while (t->v[i] && t->v[i] != key)
		i = (i + 1) & (t->cap - 1);
	return i;
}

/* Adds @key; 1 if it was new, 0 if known, -ENOMEM. */
static int ids_add(struct tx_ids *t, uint64_t key)
{
	size_t i;

	if (t->n * 2 >= t->cap) {
		struct tx_ids n = { .cap = t->cap ? t->cap * 2 : 64 };

		n.v = calloc(n.cap, sizeof(*n.v));
		if (!n.v)
			return -ENOMEM;
		for (i = 0; i < t->cap; i++)
			if (t->v[i])
				n.v[ids_slot(&n, t->v[i])] = t->v[i];
		n.n = t->n;
		free(t->v);
		*t = n;
	}
	i = ids_slot(t, key);
	if (t->v[i])
		return 0;
	t->v[i] = key;
	t->n++;
	return 1;
}

/* The name of user or group @id here, into @buf; 0 or -ENOENT. */
static int id_name(int kind, uint32_t id, char *buf, size_t len)
{
	char tmp[4096];
	const char *name = NULL;

	if (kind == TN_USER) {
		struct passwd pw, *res = NULL;

		if (!getpwuid_r(id, &pw, tmp, sizeof(tmp), &res) && res)
			name = res->pw_name;
	} else {
		struct group gr, *res = NULL;

		if (!getgrgid_r(id, &gr, tmp, sizeof(tmp), &res) && res)
			name = res->gr_name;
	}
	if (!name || !name[0] || strlen(name) >= len ||
	    strlen(name) > TREE_ID_NAME_MAX)
		return -ENOENT;
	strcpy(buf, name);
	return 0;
}

/* NAME for @id, the first time it is used; ids without a name: none. */
static int put_name(struct tx *tx, int kind, uint32_t id)
{
	uint8_t m[8 + TREE_ID_NAME_MAX + 1];
	char name[TREE_ID_NAME_MAX + 1];
	size_t n;
	int r;

	if (tx->sflags & TSF_NUMERIC_IDS)
		return 0;
	r = ids_add(&tx->ids, (uint64_t)kind << 32 | id | 1ull << 40);
	if (r <= 0)
		return r;
	if (id_name(kind, id, name, sizeof(name)))
		return 0;
	n = strlen(name);
	memset(m, 0, 8);
	tbsi_le_put32(m, id);
	m[4] = (uint8_t)kind;
	m[5] = (uint8_t)n;
	memcpy(m + 8, name, n);
	return tx_put(tx, TM_NAME, m, 8 + n);
}

int tx_attr_owner(struct tx *tx, const struct tx_entry *te)
{
	int r = put_name(tx, TN_USER, te->e.uid);

	return r ? r : put_name(tx, TN_GROUP, te->e.gid);
}

/* The users and groups an ACL names. */
static int acl_names(struct tx *tx, const uint8_t *v, size_t len)
{
	size_t i;
	int r = 0;

	for (i = ACL_HDR; !r && i + ACL_ENTRY <= len; i += ACL_ENTRY) {
		uint16_t tag = tbsi_le_get16(v + i);

		if (tag == ACL_T_USER || tag == ACL_T_GROUP)
			r = put_name(tx, tag == ACL_T_USER ? TN_USER : TN_GROUP,
				     tbsi_le_get32(v + i + 4));
	}
	return r;
}

/* ---- extended attributes ---- */

/* Whether the attribute @name goes over the cable. */
static bool wanted(const struct tx *tx, const char *name)
{
	enum xattr_kind k = tree_xattr_kind(name, strlen(name));

	if (k == XK_ACL)
		return !(tx->o.flags & TBS_TREE_NO_ACLS);
	return k != XK_OTHER && !(tx->o.flags & TBS_TREE_NO_XATTRS);
}

static int put_xattr(struct tx *tx, uint32_t idx, const char *name,
		     const uint8_t *v, size_t len)
{
	size_t n = strlen(name);
	uint8_t *m;
	int r;

	if (n > TREE_XNAME_MAX || len > TREE_XVALUE_MAX)
		return 0;
	if (tree_xattr_kind(name, n) == XK_ACL) {
		if (tree_acl_check(v, len))
			return 0;
		r = acl_names(tx, v, len);
		if (r)
			return r;
	}
	r = tx_put(tx, TM_XATTR, NULL, 8 + n + len);
	if (r)
		return r;
	m = tx->out + tx->out_len - (8 + n + len);
	memset(m, 0, 8);
	tbsi_le_put32(m, idx);
	m[4] = (uint8_t)n;
	memcpy(m + 8, name, n);
	memcpy(m + 8 + n, v, len);
	return 0;
}

/*
 * Every attribute of the entry that @list and @get read (by path or by
 * descriptor), as XATTR messages.
 */
struct xsrc {
	const char *path;
	int fd;
};

static ssize_t xlist(const struct xsrc *x, char *buf, size_t len)
{
	return x->fd >= 0 ? flistxattr(x->fd, buf, len)
			  : llistxattr(x->path, buf, len);
}

static ssize_t xget(const struct xsrc *x, const char *name, void *buf,
		    size_t len)
{
	return x->fd >= 0 ? fgetxattr(x->fd, name, buf, len)
			  : lgetxattr(x->path, name, buf, len);
}

static int put_all(struct tx *tx, const struct tx_entry *te,
		   const struct xsrc *x)
{
	char *names = malloc(XLIST_MAX), *p;
	ssize_t n, v;
	int r = 0;

	if (!names)
		return -ENOMEM;
	n = xlist(x, names, XLIST_MAX);
	if (n < 0 && errno != ENOTSUP && errno != ENODATA)
		tx_notify(tx, "'%s': its extended attributes cannot be read: "
			      "%s; sent without them",
			  te->path, strerror(errno));
	for (p = names; !r && n > 0 && p < names + n; p += strlen(p) + 1) {
		if (!wanted(tx, p))
			continue;
		v = xget(x, p, tx->buf, TREE_XVALUE_MAX);
		if (v >= 0)
			r = put_xattr(tx, te->e.index, p, tx->buf, (size_t)v);
	}
	free(names);
	return r;
}

static bool any_wanted(const struct tx *tx)
{
	return (tx->o.flags & (TBS_TREE_NO_XATTRS | TBS_TREE_NO_ACLS)) !=
	       (TBS_TREE_NO_XATTRS | TBS_TREE_NO_ACLS);
}

int tx_attr_path(struct tx *tx, const struct tx_entry *te)
{
	struct xsrc x = { .path = te->path, .fd = -1 };

	return any_wanted(tx) ? put_all(tx, te, &x) : 0;
}

int tx_attr_fd(struct tx *tx, const struct tx_entry *te, int fd)
{
	struct xsrc x = { .path = te->path, .fd = fd };

	return any_wanted(tx) ? put_all(tx, te, &x) : 0;
}
