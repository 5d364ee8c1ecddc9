// SPDX-License-Identifier: MIT
/*
 * The media messages (media-wire.h): fixed layouts, little-endian; each
 * begins with its own length.
 *
 * FRAME header (64 bytes; the buffer's bytes follow):
 *
 *	0   u32 length: 64 + the bytes	32  u64 duration
 *	4   u32 flags (TBS_MF_*)		40  u64 offset
 *	8   u64 seq				48  u64 offset_end
 *	16  u64 pts				56  u64 XXH3-64 of the bytes
 *	24  u64 dts
 *
 * SEGMENT (96 bytes):
 *
 *	0   u32 length, 96			40  u64 offset
 *	4   u32 format, 3 (time)		48  u64 start
 *	8   u32 flags				56  u64 stop
 *	12  u32 0				64  u64 time
 *	16  f64 rate				72  u64 position
 *	24  f64 applied_rate			80  u64 duration
 *	32  u64 base				88  u64 0
 *
 * CAPS: u32 length, then the text.  EOS: u32 length, 4.
 * KEYUNIT (24 bytes): u32 length, u32 flags (bit 0: all headers), u32
 * count, u32 0, u64 running time.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "../lib/byteorder.h"
#include "media-wire.h"

#define FORMAT_TIME 3 /* GST_FORMAT_TIME */
#define SEGMENT_FLAGS 0x3ffu /* GstSegmentFlags known to 1.22 */

uint64_t tbs_media_hash(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

size_t tbs_media_frame_encode(uint8_t *out, const struct tbs_media_frame *f)
{
	tbsi_le_put32(out, (uint32_t)(TBS_MEDIA_FRAME_HDR + f->len));
	tbsi_le_put32(out + 4, f->flags & TBS_MF_KNOWN);
	tbsi_le_put64(out + 8, f->seq);
	tbsi_le_put64(out + 16, f->pts);
	tbsi_le_put64(out + 24, f->dts);
	tbsi_le_put64(out + 32, f->duration);
	tbsi_le_put64(out + 40, f->offset);
	tbsi_le_put64(out + 48, f->offset_end);
	tbsi_le_put64(out + 56, f->hash);
	return TBS_MEDIA_FRAME_HDR;
}

int tbs_media_frame_decode(const uint8_t *p, struct tbs_media_frame *f)
{
	uint32_t len = tbsi_le_get32(p);

	if (tbs_media_check_len(TBS_MEDIA_FRAME, len))
		return -EBADMSG;
	f->flags = tbsi_le_get32(p + 4) & TBS_MF_KNOWN;
	f->seq = tbsi_le_get64(p + 8);
	f->pts = tbsi_le_get64(p + 16);
	f->dts = tbsi_le_get64(p + 24);
	f->duration = tbsi_le_get64(p + 32);
	f->offset = tbsi_le_get64(p + 40);
	f->offset_end = tbsi_le_get64(p + 48);
	f->hash = tbsi_le_get64(p + 56);
	f->len = len - TBS_MEDIA_FRAME_HDR;
	return 0;
}

int tbs_media_check_len(uint16_t type, uint32_t len)
{
	bool ok;

	switch (type) {
	case TBS_MEDIA_FRAME:
		ok = len >= TBS_MEDIA_FRAME_HDR && len <= TBS_MEDIA_MSG_MAX;
		break;
	case TBS_MEDIA_CAPS:
		ok = len > TBS_MEDIA_WORD &&
		     len - TBS_MEDIA_WORD <= TBS_MEDIA_CAPS_MAX;
		break;
	case TBS_MEDIA_SEGMENT:
		ok = len == TBS_MEDIA_SEGMENT_LEN;
		break;
	case TBS_MEDIA_EOS:
		ok = len == TBS_MEDIA_EOS_LEN;
		break;
	case TBS_MEDIA_KEYUNIT:
		ok = len == TBS_MEDIA_KEYUNIT_LEN;
		break;
	default:
		ok = len >= TBS_MEDIA_WORD && len <= TBS_MEDIA_MSG_MAX;
	}
	return ok ? 0 : -EBADMSG;
}

static void put_double(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	tbsi_le_put64(p, v);
}

static double get_double(const uint8_t *p)
{
	uint64_t v = tbsi_le_get64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

size_t tbs_media_segment_encode(uint8_t *out,
				const struct tbs_media_segment *seg)
{
	tbsi_le_put32(out, TBS_MEDIA_SEGMENT_LEN);
	tbsi_le_put32(out + 4, FORMAT_TIME);
	tbsi_le_put32(out + 8, seg->flags & SEGMENT_FLAGS);
	tbsi_le_put32(out + 12, 0);
	put_double(out + 16, seg->rate);
	put_double(out + 24, seg->applied_rate);
	tbsi_le_put64(out + 32, seg->base);
	tbsi_le_put64(out + 40, seg->offset);
	tbsi_le_put64(out + 48, seg->start);
	tbsi_le_put64(out + 56, seg->stop);
	tbsi_le_put64(out + 64, seg->time);
	tbsi_le_put64(out + 72, seg->position);
	tbsi_le_put64(out + 80, seg->duration);
	tbsi_le_put64(out + 88, 0);
	return TBS_MEDIA_SEGMENT_LEN;
}

/* A rate GStreamer accepts: finite and not zero. */
static bool valid_rate(double r)
{
	return isfinite(r) && r != 0.0;
}

/*
 * A time the receiver can compute with: below 2^63 ns (292 years), so
 * that running times stay signed 64-bit numbers; or none, if @none.
 */
static bool valid_time(uint64_t t, bool none)
{
	return t <= INT64_MAX || (none && t == TBS_MEDIA_NONE);
}

int tbs_media_segment_decode(const uint8_t *p, size_t len,
			     struct tbs_media_segment *seg)
{
	if (len != TBS_MEDIA_SEGMENT_LEN ||
	    tbsi_le_get32(p) != TBS_MEDIA_SEGMENT_LEN ||
	    tbsi_le_get32(p + 4) != FORMAT_TIME)
		return -EBADMSG;
	seg->flags = tbsi_le_get32(p + 8) & SEGMENT_FLAGS;
	seg->rate = get_double(p + 16);
	seg->applied_rate = get_double(p + 24);
	seg->base = tbsi_le_get64(p + 32);
	seg->offset = tbsi_le_get64(p + 40);
	seg->start = tbsi_le_get64(p + 48);
	seg->stop = tbsi_le_get64(p + 56);
	seg->time = tbsi_le_get64(p + 64);
	seg->position = tbsi_le_get64(p + 72);
	seg->duration = tbsi_le_get64(p + 80);
	if (!valid_rate(seg->rate) || !valid_rate(seg->applied_rate) ||
	    !valid_time(seg->base, false) || !valid_time(seg->offset, false) ||
	    !valid_time(seg->start, false) || !valid_time(seg->time, false) ||
	    !valid_time(seg->stop, true) || !valid_time(seg->position, true) ||
	    !valid_time(seg->duration, true) ||
	    (seg->stop != TBS_MEDIA_NONE && seg->stop < seg->start))
		return -EBADMSG;
	return 0;
}

size_t tbs_media_keyunit_encode(uint8_t *out, const struct tbs_media_keyunit *k)
{
	tbsi_le_put32(out, TBS_MEDIA_KEYUNIT_LEN);
	tbsi_le_put32(out + 4, k->all_headers ? 1 : 0);
	tbsi_le_put32(out + 8, k->count);
	tbsi_le_put32(out + 12, 0);
	tbsi_le_put64(out + 16, k->running_time);
	return TBS_MEDIA_KEYUNIT_LEN;
}

int tbs_media_keyunit_decode(const uint8_t *p, size_t len,
			     struct tbs_media_keyunit *k)
{
	if (len != TBS_MEDIA_KEYUNIT_LEN ||
	    tbsi_le_get32(p) != TBS_MEDIA_KEYUNIT_LEN ||
	    tbsi_le_get32(p + 4) > 1)
		return -EBADMSG;
	k->all_headers = tbsi_le_get32(p + 4) == 1;
	k->count = tbsi_le_get32(p + 8);
	k->running_time = tbsi_le_get64(p + 16);
	return 0;
}

size_t tbs_media_eos_encode(uint8_t *out)
{
	tbsi_le_put32(out, TBS_MEDIA_EOS_LEN);
	return TBS_MEDIA_EOS_LEN;
}

size_t tbs_media_caps_encode(uint8_t *out, const char *text, size_t len)
{
	tbsi_le_put32(out, (uint32_t)(TBS_MEDIA_WORD + len));
	memcpy(out + TBS_MEDIA_WORD, text, len);
	return TBS_MEDIA_WORD + len;
}

int tbs_media_caps_decode(const uint8_t *p, size_t len, const char **text,
			  size_t *text_len)
{
	size_t i;

	if (len < TBS_MEDIA_WORD || len > UINT32_MAX || tbsi_le_get32(p) != len ||
	    tbs_media_check_len(TBS_MEDIA_CAPS, (uint32_t)len))
		return -EBADMSG;
	for (i = TBS_MEDIA_WORD; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -EBADMSG;
	*text = (const char *)p + TBS_MEDIA_WORD;
	*text_len = len - TBS_MEDIA_WORD;
	return 0;
}
