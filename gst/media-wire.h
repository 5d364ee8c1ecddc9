/* SPDX-License-Identifier: MIT */
/*
 * The media messages of tbstreamsink and tbstreamsrc (docs/PROTOCOL.md,
 * section "Media"): what travels in the session's messages, encoded and
 * decoded without GStreamer, so that the decoders can be fuzzed alone.
 *
 *	app	name	 direction	payload
 *	0x4d01	CAPS	 S -> R		the caps as text (no NUL)
 *	0x4d02	SEGMENT	 S -> R		a time segment
 *	0x4d03	FRAME	 S -> R		a buffer: its header, then its bytes
 *	0x4d04	EOS	 S -> R		nothing
 *	0x4d41	KEYUNIT	 R -> S		a request for a decodable frame
 *
 * Every message begins with a u32: its own length in bytes, that word
 * included.  A receiver reads that word first (with tbs_session_recv()),
 * then the rest of the message, so that a frame's bytes can go straight
 * into the buffer made for them.  Every decoder checks the length first
 * and every field against its bounds; a message that fails is refused
 * whole (-EBADMSG) and nothing of it is used.  All integers are
 * little-endian.
 */
#ifndef TBS_MEDIA_WIRE_H
#define TBS_MEDIA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TBS_MEDIA_CAPS 0x4d01
#define TBS_MEDIA_SEGMENT 0x4d02
#define TBS_MEDIA_FRAME 0x4d03
#define TBS_MEDIA_EOS 0x4d04
#define TBS_MEDIA_KEYUNIT 0x4d41

/* The transfer identity of a media session (both sides check it). */
#define TBS_MEDIA_ID "tbs-media 1"

#define TBS_MEDIA_WORD 4 /* the length word that begins every message */
#define TBS_MEDIA_CAPS_MAX 65536 /* longest caps text */
#define TBS_MEDIA_SEGMENT_LEN 96
#define TBS_MEDIA_FRAME_HDR 64
#define TBS_MEDIA_FRAME_MAX (256u << 20) /* largest buffer accepted */
#define TBS_MEDIA_EOS_LEN 4
#define TBS_MEDIA_KEYUNIT_LEN 24
#define TBS_MEDIA_MSG_MAX (TBS_MEDIA_FRAME_HDR + TBS_MEDIA_FRAME_MAX)

#define TBS_MEDIA_NONE UINT64_MAX /* a time that is not set */

/* Buffer flags as they travel (the receiver sets GStreamer's own). */
enum {
	TBS_MF_DELTA = 1u << 0, /* not decodable alone */
	TBS_MF_DISCONT = 1u << 1,
	TBS_MF_HEADER = 1u << 2,
	TBS_MF_GAP = 1u << 3,
	TBS_MF_DROPPABLE = 1u << 4,
	TBS_MF_MARKER = 1u << 5,
	TBS_MF_DECODE_ONLY = 1u << 6,
	TBS_MF_RESYNC = 1u << 7,
	TBS_MF_LIVE = 1u << 8,
	TBS_MF_NON_DROPPABLE = 1u << 9,
	TBS_MF_SYNC_AFTER = 1u << 10,
	TBS_MF_CORRUPTED = 1u << 11,
	TBS_MF_KNOWN = (1u << 12) - 1,
};

/**
 * struct tbs_media_frame - the header of one buffer
 * @flags:      TBS_MF_* bits (unknown bits are dropped by the decoder)
 * @seq:        number of the buffer in its session, from 0; a gap means
 *              buffers were dropped on the way
 * @pts:        presentation time, ns, or %TBS_MEDIA_NONE
 * @dts:        decoding time, ns, or %TBS_MEDIA_NONE
 * @duration:   ns, or %TBS_MEDIA_NONE
 * @offset:     the buffer's offset (a frame number for video), or NONE
 * @offset_end: its end offset, or NONE
 * @hash:       XXH3-64 of the bytes that follow the header
 * @len:        how many bytes follow the header
 */
struct tbs_media_frame {
	uint32_t flags;
	uint64_t seq;
	uint64_t pts, dts, duration;
	uint64_t offset, offset_end;
	uint64_t hash;
	uint64_t len;
};

/**
 * struct tbs_media_segment - a time segment, as GStreamer's GstSegment
 *
 * Only TIME segments travel; a sender with another format sends none.
 * Times are ns or %TBS_MEDIA_NONE where GStreamer allows "none".
 */
struct tbs_media_segment {
	uint32_t flags;
	double rate, applied_rate;
	uint64_t base, offset, start, stop, time, position, duration;
};

/**
 * struct tbs_media_keyunit - a request for a decodable frame
 * @all_headers: also send the stream's headers again
 * @count:       the request's number, as GStreamer counts them
 * @running_time: when it is wanted, or %TBS_MEDIA_NONE for "at once"
 */
struct tbs_media_keyunit {
	bool all_headers;
	uint32_t count;
	uint64_t running_time;
};

/*
 * Encoders write the whole message but a frame's bytes (its header only)
 * and return its length; a caps message is 4 bytes of length and the text.
 */
size_t tbs_media_frame_encode(uint8_t *out, const struct tbs_media_frame *f);
size_t tbs_media_segment_encode(uint8_t *out,
				const struct tbs_media_segment *seg);
size_t tbs_media_keyunit_encode(uint8_t *out,
				const struct tbs_media_keyunit *k);
size_t tbs_media_eos_encode(uint8_t *out);
size_t tbs_media_caps_encode(uint8_t *out, const char *text, size_t len);

/*
 * The length word of a message of application type @type: 0, or -EBADMSG
 * when it is impossible for that type (a frame's covers its bytes too).
 * Unknown types pass with any length of at least 4.
 */
int tbs_media_check_len(uint16_t type, uint32_t len);

/*
 * Decoders of a whole message (a frame: its header, TBS_MEDIA_FRAME_HDR
 * bytes): 0, or -EBADMSG when it is malformed.
 */
int tbs_media_frame_decode(const uint8_t *p, struct tbs_media_frame *f);
int tbs_media_segment_decode(const uint8_t *p, size_t len,
			     struct tbs_media_segment *seg);
int tbs_media_keyunit_decode(const uint8_t *p, size_t len,
			     struct tbs_media_keyunit *k);
/*
 * Checks CAPS: 1..TBS_MEDIA_CAPS_MAX bytes of text with no control
 * character and no NUL; sets *@text and *@text_len.
 */
int tbs_media_caps_decode(const uint8_t *p, size_t len, const char **text,
			  size_t *text_len);

/* XXH3-64 of a frame's bytes, as the header carries it. */
uint64_t tbs_media_hash(const void *p, size_t len);

#endif
