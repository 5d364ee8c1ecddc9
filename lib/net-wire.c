// SPDX-License-Identifier: MIT
/*
 * The messages of the network transport (PROTOCOL.md, section 11): one
 * fixed layout of 112 bytes for the announcements on UDP and for the two
 * messages that open a TCP connection.  Little-endian.
 *
 *	offset	size	field
 *	0	4	magic "TBSN"
 *	4	1	version (1)
 *	5	1	type: 1 ANNOUNCE, 2 CONNECT, 3 ACCEPT
 *	6	1	flags: bit 0 LISTEN (ANNOUNCE: port listens)
 *	7	1	name length, 1..8
 *	8	8	stream name, zero padded
 *	16	8	nonce of the sender's run, not 0
 *	24	8	nonce of the receiver's run as last heard, or 0
 *	32	2	TCP port (ANNOUNCE with LISTEN), else 0
 *	34	2	0
 *	36	64	the sender's unique id, NUL padded
 *	100	4	0
 *	104	8	XXH3-64 of bytes 0..103
 *
 * Nothing in a message is an address: a host connects only to the
 * address an announcement came from (net-meet.c).
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "byteorder.h"
#include "net-int.h"

static const uint8_t magic[4] = { 'T', 'B', 'S', 'N' };

void tbsi_net_encode(const struct tbsi_net_msg *m,
		     uint8_t out[TBSI_NET_MSG_LEN])
{
	size_t nlen = strnlen(m->name, TBS_NAME_MAX);
	size_t ulen = strnlen(m->uid, TBSI_NET_UID_MAX - 1);

	memset(out, 0, TBSI_NET_MSG_LEN);
	memcpy(out, magic, 4);
	out[4] = TBSI_NET_VERSION;
	out[5] = m->type;
	out[6] = m->flags;
	out[7] = (uint8_t)nlen;
	memcpy(out + 8, m->name, nlen);
	tbsi_le_put64(out + 16, m->nonce);
	tbsi_le_put64(out + 24, m->peer_nonce);
	tbsi_le_put16(out + 32, m->port);
	memcpy(out + 36, m->uid, ulen);
	tbsi_le_put64(out + 104, XXH3_64bits(out, 104));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* A name as streams have them: 1..8 bytes, printable, no '/', no '.' first. */
static int decode_name(const uint8_t *p, size_t len, char *out)
{
	size_t i;

	if (len < 1 || len > TBS_NAME_MAX || !all_zero(p + len, 8 - len))
		return -EBADMSG;
	for (i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == '/')
			return -EBADMSG;
	memcpy(out, p, len);
	out[len] = '\0';
	return tbsi_valid_name(out) ? 0 : -EBADMSG;
}

/* A unique id: printable ASCII, NUL terminated within its field. */
static int decode_uid(const uint8_t *p, char *out)
{
	size_t len = strnlen((const char *)p, TBSI_NET_UID_MAX);
	size_t i;

	if (!len || len == TBSI_NET_UID_MAX ||
	    !all_zero(p + len, TBSI_NET_UID_MAX - len))
		return -EBADMSG;
	for (i = 0; i < len; i++)
		if (p[i] <= ' ' || p[i] >= 0x7f)
			return -EBADMSG;
	memcpy(out, p, len + 1);
	return 0;
}

int tbsi_net_decode(const void *buf, size_t len, struct tbsi_net_msg *m)
{
	const uint8_t *p = buf;

	memset(m, 0, sizeof(*m));
	if (len != TBSI_NET_MSG_LEN || memcmp(p, magic, 4))
		return -EBADMSG;
	if (tbsi_le_get64(p + 104) != XXH3_64bits(p, 104))
		return -EBADMSG;
	if (p[4] != TBSI_NET_VERSION)
		return -EPROTONOSUPPORT;
	if (p[5] < TBSI_NET_ANNOUNCE || p[5] > TBSI_NET_ACCEPT ||
	    !all_zero(p + 34, 2) || !all_zero(p + 100, 4))
		return -EBADMSG;
	m->type = p[5];
	m->flags = p[6];
	m->nonce = tbsi_le_get64(p + 16);
	m->peer_nonce = tbsi_le_get64(p + 24);
	m->port = tbsi_le_get16(p + 32);
	if (!m->nonce || decode_name(p + 8, p[7], m->name) ||
	    decode_uid(p + 36, m->uid))
		return -EBADMSG;
	if ((m->flags & TBSI_NET_LISTEN) &&
	    (m->type != TBSI_NET_ANNOUNCE || !m->port))
		return -EBADMSG;
	return 0;
}
