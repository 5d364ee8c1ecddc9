/* SPDX-License-Identifier: MIT */
/*
 * Reading and writing media messages (media-wire.h) on a session: the
 * length word first, then the rest straight into the caller's buffer.
 * A message that breaks the format leaves the session's stream at an
 * unknown place: the caller must end that session (-EBADMSG).
 */
#ifndef TBS_MEDIA_IO_H
#define TBS_MEDIA_IO_H

#include <stddef.h>
#include <stdint.h>

#include "tbstream.h"

/*
 * Begins the next message: 1 with its type and length (the word read);
 * -EAGAIN when none began within @timeout_ms; 0 once the peer ended its
 * stream; -EBADMSG for a length impossible for its type; or the
 * session's error.
 */
int tbs_media_begin(struct tbs_session *s, uint16_t *type, uint32_t *len,
		    int timeout_ms);

/* Reads the next @n bytes of the current message: 0 or a negative errno. */
int tbs_media_read(struct tbs_session *s, void *buf, size_t n);

/*
 * Reads the rest of the current message, which must be exactly @n bytes
 * (nothing is read for 0): 0, -EBADMSG when it had another length, or the
 * session's error.
 */
int tbs_media_rest(struct tbs_session *s, void *buf, size_t n);

/*
 * Reads the rest of a message whose length word was @len into @buf, after
 * that word (which it writes at @buf): 0, or -EBADMSG when @len > @cap.
 */
int tbs_media_read_msg(struct tbs_session *s, uint32_t len, void *buf,
		       size_t cap);

/* Skips the rest of the current message, @n bytes. */
int tbs_media_skip(struct tbs_session *s, size_t n);

/* Sends one whole message (tbs_session_send_msg()): 0 or a negative errno. */
int tbs_media_send(struct tbs_session *s, uint16_t type, const void *buf,
		   size_t len, int timeout_ms);

#endif
