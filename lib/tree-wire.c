// SPDX-License-Identifier: MIT
/*
 * The file-tree engine's messages: encoding, and decoding that trusts no
 * length, count or name from the wire.  The layouts are drawn in
 * tree-int.h and specified in docs/PROTOCOL.md ("File trees").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tree-int.h"
#include "tree-attr.h"

/* Why a path component from the wire is unacceptable, or NULL. */
const char *tree_name_problem(const uint8_t *name, size_t len)
{
	if (!len)
		return "an empty path component";
	if (len > TREE_NAME_MAX)
		return "a path component longer than 255 bytes";
	if (memchr(name, '/', len))
		return "a name containing '/'";
	if (memchr(name, 0, len))
		return "a name containing a NUL byte";
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return "a '.' or '..' path component";
	return NULL;
}

/* Whether @name is one of the receiver's temporary names. */
bool tree_name_reserved(const uint8_t *name, size_t len)
{
	return len >= TREE_TMP_PREFIX_LEN &&
	       !memcmp(name, TREE_TMP_PREFIX, TREE_TMP_PREFIX_LEN);
}

static int fail(char *why, size_t why_len, const char *what, const char *arg)
{
	if (why && why_len)
		snprintf(why, why_len, "%s%s", what, arg);
	return -EPROTO;
}

int tree_comp_next(const struct tree_entry *e, size_t *pos, struct tree_comp *c)
{
	if (*pos + 2 > e->comps_len)
		return 0;
	c->len = tbsi_le_get16(e->comps + *pos);
	c->name = e->comps + *pos + 2;
	*pos += 2 + (size_t)c->len;
	return 1;
}

/* Checks the components; sets e->comps_len. */
static int decode_comps(struct tree_entry *e, const uint8_t *p, size_t len,
			char *why, size_t why_len)
{
	size_t pos = 0, total = 0;
	const char *bad;
	uint16_t n, i;

	for (i = 0; i < e->ncomp; i++) {
		if (pos + 2 > len)
			return fail(why, why_len, "truncated path", "");
		n = tbsi_le_get16(p + pos);
		if (n > len - pos - 2)
			return fail(why, why_len, "truncated path", "");
		bad = tree_name_problem(p + pos + 2, n);
		if (bad)
			return fail(why, why_len, "a path with ", bad);
		total += (size_t)n + 1;
		if (total > TREE_PATH_MAX)
			return fail(why, why_len,
				    "a path longer than 4096 bytes", "");
		pos += 2 + (size_t)n;
	}
	e->comps = p;
	e->comps_len = pos;
	return 0;
}

static void decode_entry_fixed(const uint8_t *p, struct tree_entry *e)
{
	e->index = tbsi_le_get32(p);
	e->kind = p[4];
	e->flags = p[5];
	e->ncomp = tbsi_le_get16(p + 6);
	e->mode = tbsi_le_get32(p + 8);
	e->uid = tbsi_le_get32(p + 12);
	e->gid = tbsi_le_get32(p + 16);
	e->link = tbsi_le_get32(p + 20);
	e->size = tbsi_le_get64(p + 24);
	e->mtime_s = (int64_t)tbsi_le_get64(p + 32);
	e->mtime_ns = tbsi_le_get32(p + 40);
	e->atime_ns = tbsi_le_get32(p + 44);
	e->atime_s = (int64_t)tbsi_le_get64(p + 48);
	e->rdev = tbsi_le_get64(p + 56);
	e->target_len = tbsi_le_get16(p + 64);
}

static int check_entry(const struct tree_entry *e, char *why, size_t why_len)
{
	if (e->kind < TK_FILE || e->kind > TK_BLK)
		return fail(why, why_len, "an unknown kind of entry", "");
	if (!e->ncomp || e->ncomp > TREE_DEPTH_MAX)
		return fail(why, why_len,
			    "a path with no or too many components", "");
	if (e->mode & ~07777u)
		return fail(why, why_len, "an invalid mode", "");
	if (e->mtime_ns >= 1000000000u || e->atime_ns >= 1000000000u)
		return fail(why, why_len, "an invalid time", "");
	if ((e->kind == TK_SYMLINK) != (e->target_len > 0) ||
	    e->target_len > TREE_TARGET_MAX)
		return fail(why, why_len, "an invalid link target", "");
	if ((e->kind == TK_HARDLINK) != (e->link != TREE_NONE) ||
	    (e->kind == TK_HARDLINK && e->link >= e->index))
		return fail(why, why_len, "a hard link to no earlier entry",
			    "");
	if (e->size > INT64_MAX)
		return fail(why, why_len, "an impossible size", "");
	if (e->flags & ~TEF_LINKED ||
	    (e->flags && e->kind != TK_FILE))
		return fail(why, why_len, "an entry with unknown flags", "");
	return 0;
}

static int decode_entry(const uint8_t *p, size_t len, struct tree_entry *e,
			char *why, size_t why_len)
{
	int r;

	if (len < TREE_ENTRY_FIXED)
		return fail(why, why_len, "a short entry", "");
	decode_entry_fixed(p, e);
	if (tbsi_le_get16(p + 66))
		return fail(why, why_len, "an entry with reserved bits set",
			    "");
	r = check_entry(e, why, why_len);
	if (r)
		return r;
	p += TREE_ENTRY_FIXED;
	len -= TREE_ENTRY_FIXED;
	r = decode_comps(e, p, len, why, why_len);
	if (r)
		return r;
	if (len - e->comps_len != e->target_len)
		return fail(why, why_len, "an entry of the wrong length", "");
	e->target = p + e->comps_len;
	if (memchr(e->target, 0, e->target_len))
		return fail(why, why_len, "a link target containing a NUL byte",
			    "");
	return 0;
}

/* Fixed body length of each type; -1 for a minimum (variable length). */
static int body_len(uint8_t type, size_t *min)
{
	static const struct {
		uint8_t type;
		uint8_t len;
		bool var;
	} t[] = {
		{ TM_START, 24, false },  { TM_ENTRY, TREE_ENTRY_FIXED, true },
		{ TM_LISTED, 16, false }, { TM_FILE, 24, false },
		{ TM_DATA, 17, true },	  { TM_FILE_END, 24, false },
		{ TM_SKIP, 8, true },	  { TM_DONE, 16, false },
		{ TM_HASH, 16, false },	  { TM_XATTR, 9, true },
		{ TM_NAME, 9, true },	  { TM_WANT, 24, false },
		{ TM_CONFIRM, 4, false }, { TM_FAIL, 8, true },
		{ TM_FINISH, 24, false }, { TM_REMOVED, 5, true },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].type == type) {
			*min = t[i].len;
			return t[i].var;
		}
	}
	return -1;
}

static void decode_fixed(uint8_t type, const uint8_t *p, size_t len,
			 struct tree_msg *m)
{
	switch (type) {
	case TM_START:
		m->u32 = tbsi_le_get32(p);
		m->flags = tbsi_le_get32(p + 4);
		m->a = tbsi_le_get64(p + 8);
		m->b = tbsi_le_get64(p + 16);
		break;
	case TM_LISTED:
	case TM_DONE:
		m->a = tbsi_le_get64(p);
		m->b = tbsi_le_get64(p + 8);
		break;
	case TM_WANT:
		m->index = tbsi_le_get32(p);
		m->u32 = p[4];
		m->flags = p[5];
		m->a = tbsi_le_get64(p + 8);
		m->b = tbsi_le_get64(p + 16);
		break;
	case TM_CONFIRM:
	case TM_REMOVED:
		m->index = tbsi_le_get32(p);
		m->u32 = m->index;
		break;
	case TM_FINISH:
		m->a = tbsi_le_get64(p);
		m->b = tbsi_le_get64(p + 8);
		m->c = tbsi_le_get64(p + 16);
		break;
	case TM_XATTR:
	case TM_NAME:
		m->index = tbsi_le_get32(p);
		m->u32 = p[4];
		break;
	default: /* FILE, DATA, FILE_END, SKIP, FAIL, HASH */
		m->index = tbsi_le_get32(p);
		m->u32 = tbsi_le_get32(p + 4);
		if (len >= 16)
			m->a = tbsi_le_get64(p + 8);
		if (type == TM_FILE_END || type == TM_FILE)
			m->b = tbsi_le_get64(p + 16);
	}
}

/* XATTR: a name of 1..255 bytes without NUL, then a value of 0..64 KiB. */
static int decode_xattr(const uint8_t *p, size_t len, struct tree_msg *m,
			char *why, size_t why_len)
{
	size_t n = p[4];

	if (p[5] || tbsi_le_get16(p + 6))
		return fail(why, why_len, "an attribute with reserved bits set",
			    "");
	if (!n || n > len - 8 || memchr(p + 8, 0, n))
		return fail(why, why_len, "an attribute with a bad name", "");
	m->data = p + 8;
	m->len = n;
	m->value = p + 8 + n;
	m->value_len = len - 8 - n;
	if (m->value_len > TREE_XVALUE_MAX)
		return fail(why, why_len, "an attribute value over 64 KiB", "");
	return 0;
}

/* NAME: a user or group name as passwd(5) and group(5) can hold it. */
static int decode_name(const uint8_t *p, size_t len, struct tree_msg *m,
		       char *why, size_t why_len)
{
	size_t n = p[5], i;

	if ((m->u32 != TN_USER && m->u32 != TN_GROUP) ||
	    tbsi_le_get16(p + 6) || !n || n != len - 8)
		return fail(why, why_len, "a malformed owner name", "");
	for (i = 0; i < n; i++)
		if (p[8 + i] < 0x21 || p[8 + i] == ':' || p[8 + i] == 0x7f)
			return fail(why, why_len,
				    "an owner name with a space, ':' or a "
				    "control character",
				    "");
	m->data = p + 8;
	m->len = n;
	return 0;
}

/* The variable part of SKIP, FAIL and REMOVED: a bounded text. */
static int decode_text(uint8_t type, const uint8_t *p, size_t len,
		       struct tree_msg *m, char *why, size_t why_len)
{
	size_t off = type == TM_REMOVED ? 4 : 8;

	m->data = p + off;
	m->len = len - off;
	if (m->len > (type == TM_REMOVED ? TREE_REMOVED_MAX : TREE_TEXT_MAX))
		return fail(why, why_len, "a message too long", "");
	return 0;
}

int tree_decode(uint8_t type, const uint8_t *p, size_t len, struct tree_msg *m,
		char *why, size_t why_len)
{
	size_t min;
	int var = body_len(type, &min);

	memset(m, 0, sizeof(*m));
	m->type = type;
	if (var < 0)
		return fail(why, why_len, "a message of unknown type", "");
	if (len < min || (!var && len != min))
		return fail(why, why_len, "a message of the wrong length", "");
	if (type == TM_ENTRY)
		return decode_entry(p, len, &m->e, why, why_len);
	decode_fixed(type, p, len, m);
	switch (type) {
	case TM_DATA:
		m->data = p + TREE_DATA_HDR;
		m->len = len - TREE_DATA_HDR;
		return 0;
	case TM_SKIP:
	case TM_FAIL:
	case TM_REMOVED:
		return decode_text(type, p, len, m, why, why_len);
	case TM_XATTR:
		return decode_xattr(p, len, m, why, why_len);
	case TM_NAME:
		return decode_name(p, len, m, why, why_len);
	case TM_WANT:
		if (m->u32 < TW_FULL || m->u32 > TW_REFUSE ||
		    m->flags & ~(TWF_REPLACE | TWF_DRY) || m->b)
			return fail(why, why_len, "an unknown answer", "");
		return 0;
	default:
		return 0;
	}
}

int tree_parse_record(const uint8_t *buf, size_t len, tree_msg_fn fn, void *arg,
		      char *why, size_t why_len)
{
	struct tree_msg m;
	size_t pos = 0;
	uint32_t n;
	int r;

	if (!len)
		return fail(why, why_len, "an empty record", "");
	while (pos < len) {
		if (len - pos < TREE_MSG_HDR)
			return fail(why, why_len, "a truncated message", "");
		n = tbsi_le_get32(buf + pos + 4);
		if (buf[pos + 1] || tbsi_le_get16(buf + pos + 2))
			return fail(why, why_len,
				    "a message with reserved bits set", "");
		if (n > len - pos - TREE_MSG_HDR)
			return fail(why, why_len,
				    "a message longer than its record", "");
		r = tree_decode(buf[pos], buf + pos + TREE_MSG_HDR, n, &m, why,
				why_len);
		if (r)
			return r;
		r = fn(arg, &m);
		if (r)
			return r;
		pos += TREE_MSG_HDR + n;
	}
	return 0;
}

size_t tree_msg_put(uint8_t *out, size_t cap, uint8_t type, const void *body,
		    size_t len)
{
	if (cap < TREE_MSG_HDR || len > cap - TREE_MSG_HDR)
		return 0;
	out[0] = type;
	out[1] = 0;
	tbsi_le_put16(out + 2, 0);
	tbsi_le_put32(out + 4, (uint32_t)len);
	if (body && len)
		memcpy(out + TREE_MSG_HDR, body, len);
	return TREE_MSG_HDR + len;
}

static void encode_entry_fixed(uint8_t *p, const struct tree_entry *e)
{
	memset(p, 0, TREE_ENTRY_FIXED);
	tbsi_le_put32(p, e->index);
	p[4] = e->kind;
	p[5] = e->flags;
	tbsi_le_put16(p + 6, e->ncomp);
	tbsi_le_put32(p + 8, e->mode);
	tbsi_le_put32(p + 12, e->uid);
	tbsi_le_put32(p + 16, e->gid);
	tbsi_le_put32(p + 20, e->link);
	tbsi_le_put64(p + 24, e->size);
	tbsi_le_put64(p + 32, (uint64_t)e->mtime_s);
	tbsi_le_put32(p + 40, e->mtime_ns);
	tbsi_le_put32(p + 44, e->atime_ns);
	tbsi_le_put64(p + 48, (uint64_t)e->atime_s);
	tbsi_le_put64(p + 56, e->rdev);
	tbsi_le_put16(p + 64, e->target_len);
}

/*
 * Encodes an ENTRY message (header included) with the components
 * @names/@lens and the link target @target (e->target_len bytes).
 * Returns its length, 0 when it does not fit.
 */
size_t tree_entry_encode(uint8_t *out, size_t cap, const struct tree_entry *e,
			 const char *const *names, const uint16_t *lens,
			 const char *target)
{
	size_t n = TREE_MSG_HDR + TREE_ENTRY_FIXED, i;
	uint8_t *p;

	for (i = 0; i < e->ncomp; i++)
		n += 2 + (size_t)lens[i];
	n += e->target_len;
	if (n > cap)
		return 0;
	tree_msg_put(out, cap, TM_ENTRY, NULL, n - TREE_MSG_HDR);
	encode_entry_fixed(out + TREE_MSG_HDR, e);
	p = out + TREE_MSG_HDR + TREE_ENTRY_FIXED;
	for (i = 0; i < e->ncomp; i++) {
		tbsi_le_put16(p, lens[i]);
		memcpy(p + 2, names[i], lens[i]);
		p += 2 + lens[i];
	}
	if (e->target_len)
		memcpy(p, target, e->target_len);
	return n;
}

/* The entry's path for messages: '/' between components, odd bytes as
 * \xNN.  Returns 0, or -ENAMETOOLONG when it was cut. */
int tree_path_text(const struct tree_entry *e, char *buf, size_t len)
{
	struct tree_comp c;
	size_t pos = 0, o = 0, i;
	char tmp[8];

	if (!len)
		return -ENAMETOOLONG;
	buf[0] = 0;
	while (tree_comp_next(e, &pos, &c)) {
		for (i = 0; i <= c.len; i++) {
			if (i == c.len && pos >= e->comps_len)
				break;
			if (i == c.len)
				snprintf(tmp, sizeof(tmp), "/");
			else if (c.name[i] < 0x20 || c.name[i] >= 0x7f ||
				 c.name[i] == '\\')
				snprintf(tmp, sizeof(tmp), "\\x%02x",
					 c.name[i]);
			else
				snprintf(tmp, sizeof(tmp), "%c", c.name[i]);
			if (o + strlen(tmp) + 1 > len)
				return -ENAMETOOLONG;
			memcpy(buf + o, tmp, strlen(tmp) + 1);
			o += strlen(tmp);
		}
	}
	return 0;
}

/* ---- attributes: which kind a name is, whether an ACL is well formed ---- */

enum xattr_kind tree_xattr_kind(const char *name, size_t len)
{
	if (len > 5 && !memcmp(name, "user.", 5))
		return XK_USER;
	if ((len > 8 && !memcmp(name, "trusted.", 8)) ||
	    (len > 9 && !memcmp(name, "security.", 9)))
		return XK_PRIV;
	if ((len == strlen(ACL_ACCESS) && !memcmp(name, ACL_ACCESS, len)) ||
	    (len == strlen(ACL_DEFAULT) && !memcmp(name, ACL_DEFAULT, len)))
		return XK_ACL;
	return XK_OTHER;
}

int tree_acl_check(const uint8_t *v, size_t len)
{
	size_t i;

	if (len < ACL_HDR || (len - ACL_HDR) % ACL_ENTRY ||
	    tbsi_le_get32(v) != ACL_XATTR_VERSION)
		return -EINVAL;
	for (i = ACL_HDR; i < len; i += ACL_ENTRY) {
		uint16_t tag = tbsi_le_get16(v + i);

		if (tag != ACL_T_USER_OBJ && tag != ACL_T_USER &&
		    tag != ACL_T_GROUP_OBJ && tag != ACL_T_GROUP &&
		    tag != ACL_T_MASK && tag != ACL_T_OTHER)
			return -EINVAL;
		if (tbsi_le_get16(v + i + 2) & ~7u)
			return -EINVAL;
	}
	return 0;
}
