// SPDX-License-Identifier: MIT
/*
 * Media messages on a session (media-io.h).  tbs_session_recv() reads the
 * length word without going past it, then tbs_session_recv_msg() takes
 * the rest of that message whole; so a frame's bytes are copied once,
 * from the session into the buffer that is pushed downstream.
 */
#include <errno.h>

#include "../lib/byteorder.h"
#include "media-io.h"
#include "media-wire.h"

int tbs_media_read(struct tbs_session *s, void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t r;

	while (n) {
		r = tbs_session_recv(s, NULL, p, n, -1);
		if (r <= 0)
			return r ? (int)r : -EBADMSG; /* ended inside */
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int tbs_media_begin(struct tbs_session *s, uint16_t *type, uint32_t *len,
		    int timeout_ms)
{
	uint8_t w[TBS_MEDIA_WORD];
	ssize_t r;

	r = tbs_session_recv(s, type, w, sizeof(w), timeout_ms);
	if (r <= 0)
		return (int)r;
	if (r < (ssize_t)sizeof(w)) {
		r = tbs_media_read(s, w + r, sizeof(w) - (size_t)r);
		if (r)
			return (int)r;
	}
	*len = tbsi_le_get32(w);
	return tbs_media_check_len(*type, *len) ? -EBADMSG : 1;
}

int tbs_media_rest(struct tbs_session *s, void *buf, size_t n)
{
	ssize_t r;

	if (!n)
		return 0;
	r = tbs_session_recv_msg(s, NULL, buf, n, -1);
	if (r == -EMSGSIZE || (r >= 0 && (size_t)r != n))
		return -EBADMSG;
	return r < 0 ? (int)r : 0;
}

int tbs_media_read_msg(struct tbs_session *s, uint32_t len, void *buf,
		       size_t cap)
{
	if (len > cap || len < TBS_MEDIA_WORD)
		return -EBADMSG;
	tbsi_le_put32(buf, len);
	return tbs_media_rest(s, (uint8_t *)buf + TBS_MEDIA_WORD,
			      len - TBS_MEDIA_WORD);
}

int tbs_media_skip(struct tbs_session *s, size_t n)
{
	uint8_t buf[4096];
	ssize_t r;

	while (n) {
		r = tbs_session_recv(s, NULL, buf,
				     n < sizeof(buf) ? n : sizeof(buf), -1);
		if (r <= 0)
			return r ? (int)r : -EBADMSG;
		n -= (size_t)r;
	}
	return 0;
}

int tbs_media_send(struct tbs_session *s, uint16_t type, const void *buf,
		   size_t len, int timeout_ms)
{
	ssize_t r = tbs_session_send_msg(s, type, buf, len, timeout_ms);

	return r < 0 ? (int)r : 0;
}
