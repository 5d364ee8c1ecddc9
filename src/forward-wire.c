// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the messages (docs/PROTOCOL.md, section 10).
 *
 * Every message is one session message; its application type says which.
 * All integers little-endian; "id" is the u32 connection id (1, 2, ...,
 * chosen by the listening side, never reused within a session).
 *
 *	type	name	direction	body
 *	0x4601	HELLO	both, first	u16 version, u8 role, u8 0,
 *					u32 max_conns, u32 window, u32 max_data
 *	0x4602	OPEN	L -> C		id, origin text (0..200)
 *	0x4603	ACCEPT	C -> L		id
 *	0x4604	REFUSE	C -> L		id, u32 errno, reason text (0..200)
 *	0x4605	DATA	both		id, 1..max_data bytes
 *	0x4606	CREDIT	both		id, u32 bytes
 *	0x4607	SHUT	both		id
 *	0x4608	RESET	both		id, u32 errno
 *	0x4609	CLOSE	C -> L		id
 *
 * Decoding checks lengths and ranges only; whether a message may come
 * now (ids, credit, states) is the multiplexer's to check.
 */
#include <errno.h>
#include <string.h>

#include "../lib/byteorder.h"
#include "forward.h"

static const char *const names[] = {
	"HELLO", "OPEN",   "ACCEPT", "REFUSE", "DATA",
	"CREDIT", "SHUT", "RESET",  "CLOSE",
};

const char *fwd_type_name(uint16_t type)
{
	if (type < FWD_HELLO || type > FWD_CLOSE)
		return "unknown";
	return names[type - FWD_HELLO];
}

static int bad(const char **why, const char *what)
{
	*why = what;
	return -EPROTO;
}

static int decode_hello(const uint8_t *b, size_t len, struct fwd_msg *m,
			const char **why)
{
	struct fwd_hello *h = &m->hello;

	if (len < FWD_HELLO_LEN)
		return bad(why, "HELLO shorter than 16 bytes");
	h->version = tbsi_le_get16(b);
	h->role = b[2];
	h->max_conns = tbsi_le_get32(b + 4);
	h->window = tbsi_le_get32(b + 8);
	h->max_data = tbsi_le_get32(b + 12);
	if (h->version != FWD_VERSION)
		return bad(why, "HELLO of another forward version");
	if (h->role != FWD_ROLE_LISTEN && h->role != FWD_ROLE_CONNECT)
		return bad(why, "HELLO with an unknown role");
	if (!h->max_conns || h->max_conns > FWD_MAX_CONNS)
		return bad(why, "HELLO with a connection limit out of range");
	if (h->window < FWD_MIN_WINDOW || h->window > FWD_MAX_WINDOW)
		return bad(why, "HELLO with a window out of range");
	if (h->max_data < FWD_MIN_DATA || h->max_data > FWD_MAX_DATA)
		return bad(why, "HELLO with a data size out of range");
	return 0;
}

/* An errno from the wire: 1..4095, else EIO. */
static int32_t wire_errno(uint32_t v)
{
	return v >= 1 && v <= 4095 ? (int32_t)v : EIO;
}

/* Checks the body length of @type against its fixed part. */
static int check_len(uint16_t type, size_t len, const char **why)
{
	if (len < FWD_HDR)
		return bad(why, "message shorter than its connection id");
	switch (type) {
	case FWD_ACCEPT:
	case FWD_SHUT:
	case FWD_CLOSE:
		return len == FWD_HDR ? 0 : bad(why, "wrong message length");
	case FWD_CREDIT:
	case FWD_RESET:
		return len == FWD_HDR + 4 ? 0 :
					    bad(why, "wrong message length");
	case FWD_OPEN:
		return len <= FWD_HDR + FWD_TEXT_MAX ?
			       0 :
			       bad(why, "OPEN text too long");
	case FWD_REFUSE:
		return len >= FWD_HDR + 4 &&
				       len <= FWD_HDR + 4 + FWD_TEXT_MAX ?
			       0 :
			       bad(why, "wrong REFUSE length");
	case FWD_DATA:
		return len > FWD_HDR && len <= FWD_MSG_MAX ?
			       0 :
			       bad(why, "DATA of no bytes or too many");
	default:
		return bad(why, "unknown message type");
	}
}

int fwd_decode(uint16_t type, const uint8_t *b, size_t len,
	       struct fwd_msg *m, const char **why)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->type = type;
	if (type == FWD_HELLO)
		return decode_hello(b, len, m, why);
	r = check_len(type, len, why);
	if (r)
		return r;
	m->id = tbsi_le_get32(b);
	if (!m->id)
		return bad(why, "connection id 0");
	m->data = b + FWD_HDR;
	m->len = len - FWD_HDR;
	if (type == FWD_CREDIT) {
		m->credit = tbsi_le_get32(b + FWD_HDR);
		if (!m->credit || m->credit > FWD_MAX_WINDOW)
			return bad(why, "CREDIT out of range");
	} else if (type == FWD_REFUSE || type == FWD_RESET) {
		m->err = wire_errno(tbsi_le_get32(b + FWD_HDR));
		m->data += 4;
		m->len -= 4;
	}
	return 0;
}

size_t fwd_encode_hello(uint8_t *b, const struct fwd_hello *h)
{
	tbsi_le_put16(b, h->version);
	b[2] = h->role;
	b[3] = 0;
	tbsi_le_put32(b + 4, h->max_conns);
	tbsi_le_put32(b + 8, h->window);
	tbsi_le_put32(b + 12, h->max_data);
	return FWD_HELLO_LEN;
}

size_t fwd_encode(uint8_t *b, uint16_t type, uint32_t id, uint32_t a,
		  const char *text)
{
	size_t n = FWD_HDR, t;

	tbsi_le_put32(b, id);
	if (type == FWD_CREDIT || type == FWD_REFUSE || type == FWD_RESET) {
		tbsi_le_put32(b + n, a);
		n += 4;
	}
	if (text && (type == FWD_OPEN || type == FWD_REFUSE)) {
		t = strnlen(text, FWD_TEXT_MAX);
		memcpy(b + n, text, t);
		n += t;
	}
	return n;
}
