// SPDX-License-Identifier: MIT
/*
 * tbstreamsrc: a live source of what the peer's tbstreamsink sends over a
 * USB4STREAM stream (docs/PROTOCOL.md, "Media").
 *
 * The streaming thread owns the link: in create() it connects (either
 * side may start first), waits on the session's readiness descriptor and
 * reads the next message.  Caps and segments are applied before the
 * buffer that follows them; a buffer keeps its timestamps, flags and
 * bytes, and its running time is moved by an offset measured from the
 * arrivals (media-sync.h), so that it is due when it arrives; the latency
 * query is answered with what was measured.  A buffer whose bytes do not
 * match their hash is never pushed; a gap in the buffers' numbers, or a
 * new session, makes the next buffer a discontinuity, and after a lost
 * buffer delta frames are dropped until a key frame.  Upstream requests
 * for a key unit travel to the sender.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <gst/base/gstpushsrc.h>
#include <gst/video/video.h>

#include "elements.h"
#include "media-gst.h"
#include "media-io.h"
#include "media-sync.h"

#define GST_CAT_DEFAULT tbs_media_debug

#define INITIAL_LATENCY (10 * GST_MSECOND)

enum {
	PROP_RECEIVED = TBS_PROP_N_COMMON,
	PROP_MISSING,
	PROP_REFUSED,
	PROP_LATENCY,
};

/* What create() does after a message. */
enum step { NEXT, WAIT, PUSH, RECONNECT };

struct _GstTbStreamSrc {
	GstPushSrc parent;

	struct tbs_gst_where where;
	struct tbs_link link;
	gboolean link_ok;

	GMutex lock; /* s for the threads that send requests; the counters */
	struct tbs_session *s; /* the running session, owned by the link */
	guint64 received, missing, refused;
	GstClockTime latency;

	/* The streaming thread's own. */
	GstCaps *caps; /* the sender's, NULL until it sent them */
	gboolean caps_dirty;
	GstSegment seg; /* the sender's */
	gboolean seg_dirty;
	guint64 next_seq;
	gboolean discont, need_key, has_delta;
	gint64 key_asked; /* monotonic, us */
	struct tbs_sync sync;
};

G_DEFINE_TYPE(GstTbStreamSrc, gst_tb_stream_src, GST_TYPE_PUSH_SRC);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
	"src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void start_session(GstTbStreamSrc *self, struct tbs_session *s)
{
	g_mutex_lock(&self->lock);
	self->s = s;
	g_mutex_unlock(&self->lock);
	self->next_seq = 0;
	self->discont = TRUE;
	self->need_key = TRUE;
	tbs_sync_reset(&self->sync, self->latency);
	tbs_gst_where_connected(GST_ELEMENT(self), &self->where, TRUE);
	GST_INFO_OBJECT(self, "the sender is connected");
	tbs_gst_post(GST_ELEMENT(self), "tbstream-connected", NULL);
}

/* Forgets the session; @why (if any) says what ended it. */
static void end_session(GstTbStreamSrc *self, const gchar *why)
{
	g_mutex_lock(&self->lock);
	self->s = NULL;
	g_mutex_unlock(&self->lock);
	tbs_gst_where_connected(GST_ELEMENT(self), &self->where, FALSE);
	self->discont = TRUE;
	if (why) {
		GST_INFO_OBJECT(self, "the sender went away: %s", why);
		tbs_gst_post(GST_ELEMENT(self), "tbstream-disconnected",
			     "reason", G_TYPE_STRING, why, NULL);
	}
}

/* The session failed (@r): ends it and says why (the peer's words). */
static enum step session_failed(GstTbStreamSrc *self, int r)
{
	gchar *why = tbs_gst_clean(self->s && tbs_session_error(self->s)[0] ?
					   tbs_session_error(self->s) :
					   g_strerror(-r));

	end_session(self, why);
	g_free(why);
	tbs_link_close(&self->link);
	return RECONNECT;
}

/* The peer broke the media format: the session cannot go on. */
static enum step refuse(GstTbStreamSrc *self, const gchar *what)
{
	g_mutex_lock(&self->lock);
	self->refused++;
	g_mutex_unlock(&self->lock);
	GST_WARNING_OBJECT(self, "the sender %s: ending the session", what);
	tbs_link_refuse(&self->link, "malformed media message");
	end_session(self, what);
	tbs_link_close(&self->link);
	return RECONNECT;
}

/* The sender ended its stream: confirm it and end the session in order. */
static void finish(GstTbStreamSrc *self)
{
	uint16_t type;
	uint32_t len;
	int r;

	while ((r = tbs_media_begin(self->s, &type, &len, -1)) == 1 &&
	       !tbs_media_skip(self->s, len - TBS_MEDIA_WORD))
		;
	end_session(self, NULL);
	r = tbs_link_finish(&self->link);
	GST_DEBUG_OBJECT(self, "session closed (%d)", r);
}

/* Asks the sender for a key unit; any thread. */
static void request_key(GstTbStreamSrc *self, gboolean all_headers,
			guint count)
{
	struct tbs_media_keyunit k = { all_headers, count,
				       TBS_MEDIA_NONE };
	guint8 msg[TBS_MEDIA_KEYUNIT_LEN];
	int r = -ENOTCONN;

	tbs_media_keyunit_encode(msg, &k);
	g_mutex_lock(&self->lock);
	if (self->s)
		r = tbs_media_send(self->s, TBS_MEDIA_KEYUNIT, msg,
				   sizeof(msg), 0);
	g_mutex_unlock(&self->lock);
	GST_DEBUG_OBJECT(self, "key unit request: %d", r);
}

static enum step on_caps(GstTbStreamSrc *self, uint32_t len)
{
	guint8 *msg = g_malloc(len);
	const char *text;
	size_t n;
	gchar *str;
	GstCaps *caps = NULL;
	int r;

	r = tbs_media_read_msg(self->s, len, msg, len);
	if (r == -EBADMSG)
		r = 0; /* cannot happen: the buffer has the length */
	if (r) {
		g_free(msg);
		return session_failed(self, r);
	}
	if (!tbs_media_caps_decode(msg, len, &text, &n) &&
	    g_utf8_validate(text, (gssize)n, NULL)) {
		str = g_strndup(text, n);
		caps = gst_caps_from_string(str);
		g_free(str);
	}
	g_free(msg);
	if (!caps || !gst_caps_is_fixed(caps)) {
		gst_clear_caps(&caps);
		return refuse(self, "sent caps that are not fixed caps");
	}
	if (!self->caps || !gst_caps_is_equal(caps, self->caps)) {
		gst_caps_replace(&self->caps, caps);
		self->caps_dirty = TRUE;
	}
	gst_caps_unref(caps);
	return NEXT;
}

static enum step on_segment(GstTbStreamSrc *self, uint32_t len)
{
	guint8 msg[TBS_MEDIA_SEGMENT_LEN];
	struct tbs_media_segment w;
	int r = tbs_media_read_msg(self->s, len, msg, sizeof(msg));

	if (r)
		return session_failed(self, r);
	if (tbs_media_segment_decode(msg, len, &w))
		return refuse(self, "sent a malformed segment");
	tbs_gst_segment_from_wire(&w, &self->seg);
	self->seg_dirty = TRUE;
	tbs_sync_reset(&self->sync, self->latency);
	return NEXT;
}

/* Reads a frame's bytes into a new buffer; NULL (and *@step) if not. */
static GstBuffer *read_frame(GstTbStreamSrc *self, uint32_t len,
			     struct tbs_media_frame *f, enum step *step)
{
	guint8 hdr[TBS_MEDIA_FRAME_HDR];
	GstBuffer *b;
	GstMapInfo map;
	int r;

	r = tbs_media_read(self->s, hdr + TBS_MEDIA_WORD,
			   sizeof(hdr) - TBS_MEDIA_WORD);
	memcpy(hdr, &(guint32){ GUINT32_TO_LE(len) }, TBS_MEDIA_WORD);
	if (!r && tbs_media_frame_decode(hdr, f))
		r = -EBADMSG;
	b = r ? NULL : gst_buffer_new_allocate(NULL, f->len, NULL);
	if (b && !gst_buffer_map(b, &map, GST_MAP_WRITE))
		gst_clear_buffer(&b);
	if (!r && !b) {
		*step = tbs_media_skip(self->s, f->len) ?
				session_failed(self, -ENOMEM) :
				NEXT;
		return NULL;
	}
	if (!r) {
		r = tbs_media_rest(self->s, map.data, map.size);
		if (!r && tbs_media_hash(map.data, map.size) != f->hash)
			r = -EILSEQ;
		gst_buffer_unmap(b, &map);
	}
	if (r) {
		gst_clear_buffer(&b);
		*step = r == -EBADMSG ? refuse(self, "sent a malformed frame") :
		       r == -EILSEQ   ? refuse(self, "sent a frame whose bytes do not match their hash") :
					session_failed(self, r);
	}
	return b;
}

/* Whether a frame is to be pushed: in order and decodable. */
static gboolean admit(GstTbStreamSrc *self, const struct tbs_media_frame *f)
{
	gboolean delta = f->flags & TBS_MF_DELTA;

	self->has_delta |= delta;
	if (f->seq != self->next_seq) {
		g_mutex_lock(&self->lock);
		self->missing += f->seq > self->next_seq ?
					 f->seq - self->next_seq :
					 0;
		g_mutex_unlock(&self->lock);
		self->discont = TRUE;
		self->need_key = TRUE;
	}
	self->next_seq = f->seq + 1;
	if (self->need_key && delta) {
		if (g_get_monotonic_time() - self->key_asked >=
		    G_USEC_PER_SEC) {
			self->key_asked = g_get_monotonic_time();
			request_key(self, TRUE, 0);
		}
		return FALSE;
	}
	self->need_key = FALSE;
	return TRUE; /* a sender without caps (filesrc) gets none either */
}

/* Moves the buffer's running time so that it is due on arrival. */
static void map_time(GstTbStreamSrc *self, GstBuffer *b)
{
	GstClockTime now, rt;
	unsigned int changed;

	if (!GST_BUFFER_PTS_IS_VALID(b))
		return;
	now = gst_element_get_current_running_time(GST_ELEMENT(self));
	rt = gst_segment_to_running_time(&self->seg, GST_FORMAT_TIME,
					 GST_BUFFER_PTS(b));
	if (!GST_CLOCK_TIME_IS_VALID(now) || !GST_CLOCK_TIME_IS_VALID(rt) ||
	    now > G_MAXINT64 || rt > G_MAXINT64)
		return; /* no time to compute with (the peer's is absurd) */
	changed = tbs_sync_add(&self->sync, (gint64)now, (gint64)rt);
	if (changed & 1)
		self->seg_dirty = TRUE;
	if (changed & 2) {
		g_mutex_lock(&self->lock);
		self->latency = self->sync.latency;
		g_mutex_unlock(&self->lock);
		GST_DEBUG_OBJECT(self, "latency now %" GST_TIME_FORMAT,
				 GST_TIME_ARGS(self->sync.latency));
		gst_element_post_message(GST_ELEMENT(self),
			gst_message_new_latency(GST_OBJECT(self)));
	}
}

/* Applies caps and segment before @b goes out. */
static GstFlowReturn prepare(GstTbStreamSrc *self, GstBuffer *b)
{
	GstSegment seg;

	if (self->caps_dirty) {
		if (!gst_base_src_set_caps(GST_BASE_SRC(self), self->caps))
			return GST_FLOW_NOT_NEGOTIATED;
		self->caps_dirty = FALSE;
	}
	map_time(self, b);
	if (self->seg_dirty) {
		gst_segment_copy_into(&self->seg, &seg);
		if (self->sync.started)
			gst_segment_offset_running_time(&seg, GST_FORMAT_TIME,
							self->sync.offset);
		gst_base_src_new_segment(GST_BASE_SRC(self), &seg);
		self->seg_dirty = FALSE;
	}
	if (self->discont)
		GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
	self->discont = FALSE;
	g_mutex_lock(&self->lock);
	self->received++;
	g_mutex_unlock(&self->lock);
	return GST_FLOW_OK;
}

static enum step on_frame(GstTbStreamSrc *self, uint32_t len, GstBuffer **out)
{
	struct tbs_media_frame f;
	enum step step = NEXT;
	GstBuffer *b = read_frame(self, len, &f, &step);

	if (!b)
		return step;
	if (!admit(self, &f)) {
		gst_buffer_unref(b);
		return NEXT;
	}
	tbs_gst_frame_to_buffer(&f, b);
	GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DISCONT);
	if (f.flags & TBS_MF_DISCONT)
		self->discont = TRUE;
	*out = b;
	return PUSH;
}

/* Handles the message that began (type @type, length @len). */
static enum step dispatch(GstTbStreamSrc *self, uint16_t type, uint32_t len,
			  GstBuffer **out, gboolean *eos)
{
	int r;

	switch (type) {
	case TBS_MEDIA_FRAME:
		return on_frame(self, len, out);
	case TBS_MEDIA_CAPS:
		return on_caps(self, len);
	case TBS_MEDIA_SEGMENT:
		return on_segment(self, len);
	case TBS_MEDIA_EOS:
		*eos = TRUE;
		finish(self);
		return RECONNECT;
	default:
		GST_DEBUG_OBJECT(self, "skipping message type %#x", type);
		r = tbs_media_skip(self->s, len - TBS_MEDIA_WORD);
		return r ? session_failed(self, r) : NEXT;
	}
}

/*
 * Reads and handles the next message.  Once it began (even its length
 * word only), the reads wait for the rest of it: an interruption then ends
 * the session (tbs_link_inside()).
 */
static enum step on_message(GstTbStreamSrc *self, GstBuffer **out,
			    gboolean *eos)
{
	uint16_t type;
	uint32_t len;
	enum step step;
	int r;

	if (tbs_link_interrupted(&self->link))
		return WAIT; /* before a message: the session may go on */
	tbs_link_inside(&self->link, true);
	r = tbs_media_begin(self->s, &type, &len, 0);
	if (r == -EAGAIN) {
		step = WAIT;
	} else if (r == -EBADMSG) {
		step = refuse(self, "sent a message of an impossible length");
	} else if (r < 0) {
		step = session_failed(self, r);
	} else if (r == 0) { /* the sender ended its stream without an end */
		finish(self);
		step = RECONNECT;
	} else {
		step = dispatch(self, type, len, out, eos);
	}
	tbs_link_inside(&self->link, false);
	return step;
}

/* Waits for the session or an interruption: FALSE when interrupted. */
static gboolean wait_ready(GstTbStreamSrc *self)
{
	struct pollfd p[2] = {
		{ .fd = tbs_session_fd(self->s), .events = POLLIN },
		{ .fd = tbs_link_wake_fd(&self->link), .events = POLLIN },
	};

	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	return !p[1].revents;
}

static GstFlowReturn connect(GstTbStreamSrc *self)
{
	struct tbs_session *s;
	int r = tbs_link_connect(&self->link, &s);

	if (r == -ECANCELED)
		return GST_FLOW_FLUSHING;
	if (r) {
		tbs_gst_post_link_error(GST_ELEMENT(self), r,
					self->link.err.msg);
		return GST_FLOW_ERROR;
	}
	start_session(self, s);
	return GST_FLOW_OK;
}

static GstFlowReturn gst_tb_stream_src_create(GstPushSrc *ps, GstBuffer **out)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(ps);
	gboolean eos = FALSE;
	GstFlowReturn ret;
	unsigned int ev;
	enum step step;

	*out = NULL;
	for (;;) {
		if (!self->s && (ret = connect(self)) != GST_FLOW_OK)
			return ret;
		ev = tbs_session_ready(self->s);
		if (ev & TBS_SESSION_ERROR) {
			session_failed(self, -ECONNRESET);
			continue;
		}
		step = ev & TBS_SESSION_RECV ? on_message(self, out, &eos) :
					       WAIT;
		if (eos)
			return GST_FLOW_EOS;
		if (step == PUSH) {
			ret = prepare(self, *out);
			if (ret != GST_FLOW_OK)
				gst_clear_buffer(out);
			return ret;
		}
		if (step == WAIT && !wait_ready(self))
			return GST_FLOW_FLUSHING;
	}
}

static gboolean gst_tb_stream_src_negotiate(GstBaseSrc *bs)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);

	/* The caps are the sender's: nothing to choose before they came. */
	if (!self->caps)
		return TRUE;
	self->caps_dirty = FALSE;
	return gst_base_src_set_caps(bs, self->caps);
}

static gboolean gst_tb_stream_src_query(GstBaseSrc *bs, GstQuery *q)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);
	GstClockTime lat;

	if (GST_QUERY_TYPE(q) != GST_QUERY_LATENCY)
		return GST_BASE_SRC_CLASS(gst_tb_stream_src_parent_class)
			->query(bs, q);
	g_mutex_lock(&self->lock);
	lat = self->latency;
	g_mutex_unlock(&self->lock);
	gst_query_set_latency(q, TRUE, lat, GST_CLOCK_TIME_NONE);
	return TRUE;
}

static gboolean gst_tb_stream_src_event(GstBaseSrc *bs, GstEvent *ev)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);
	gboolean all_headers = TRUE;
	guint count = 0;

	if (gst_video_event_is_force_key_unit(ev)) {
		gst_video_event_parse_upstream_force_key_unit(ev, NULL,
							      &all_headers,
							      &count);
		request_key(self, all_headers, count);
		return TRUE;
	}
	return GST_BASE_SRC_CLASS(gst_tb_stream_src_parent_class)->event(bs, ev);
}

static gboolean gst_tb_stream_src_start(GstBaseSrc *bs)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);

	if (!tbs_gst_valid_name(GST_ELEMENT(self), self->where.stream) ||
	    !tbs_gst_link_init(GST_ELEMENT(self), &self->where,
			       TBS_ROLE_RECEIVER, &self->link))
		return FALSE;
	self->link_ok = TRUE;
	gst_clear_caps(&self->caps);
	gst_segment_init(&self->seg, GST_FORMAT_TIME);
	self->seg_dirty = TRUE;
	self->caps_dirty = FALSE;
	self->received = self->missing = self->refused = 0;
	self->latency = INITIAL_LATENCY;
	self->key_asked = 0;
	self->has_delta = FALSE;
	return TRUE;
}

static gboolean gst_tb_stream_src_stop(GstBaseSrc *bs)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);

	if (self->link_ok) {
		tbs_link_abort(&self->link);
		end_session(self, NULL);
		tbs_link_destroy(&self->link);
	}
	self->link_ok = FALSE;
	gst_clear_caps(&self->caps);
	return TRUE;
}

static gboolean gst_tb_stream_src_unlock(GstBaseSrc *bs)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);

	if (self->link_ok)
		tbs_link_interrupt(&self->link);
	return TRUE;
}

static gboolean gst_tb_stream_src_unlock_stop(GstBaseSrc *bs)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(bs);

	if (self->link_ok)
		tbs_link_resume(&self->link);
	return TRUE;
}

static void gst_tb_stream_src_set_property(GObject *o, guint id,
					   const GValue *v, GParamSpec *ps)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(o);

	if (!tbs_gst_where_set(o, &self->where, id, v))
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void gst_tb_stream_src_get_property(GObject *o, guint id, GValue *v,
					   GParamSpec *ps)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(o);

	if (tbs_gst_where_get(o, &self->where, id, v))
		return;
	g_mutex_lock(&self->lock);
	switch (id) {
	case PROP_RECEIVED:
		g_value_set_uint64(v, self->received);
		break;
	case PROP_MISSING:
		g_value_set_uint64(v, self->missing);
		break;
	case PROP_REFUSED:
		g_value_set_uint64(v, self->refused);
		break;
	case PROP_LATENCY:
		g_value_set_uint64(v, self->latency);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
	}
	g_mutex_unlock(&self->lock);
}

static void gst_tb_stream_src_finalize(GObject *o)
{
	GstTbStreamSrc *self = GST_TB_STREAM_SRC(o);

	tbs_gst_where_clear(&self->where);
	g_mutex_clear(&self->lock);
	G_OBJECT_CLASS(gst_tb_stream_src_parent_class)->finalize(o);
}

static void gst_tb_stream_src_init(GstTbStreamSrc *self)
{
	tbs_gst_where_init(&self->where);
	g_mutex_init(&self->lock);
	self->latency = INITIAL_LATENCY;
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)

static void install_properties(GObjectClass *k)
{
	tbs_gst_install_where(k, "Whether a sender is connected now");
	g_object_class_install_property(k, PROP_RECEIVED,
		g_param_spec_uint64("received", "Received",
			"Buffers pushed downstream", 0, G_MAXUINT64, 0, RO));
	g_object_class_install_property(k, PROP_MISSING,
		g_param_spec_uint64("missing", "Missing",
			"Buffers the sender dropped (seen as gaps in their numbers)",
			0, G_MAXUINT64, 0, RO));
	g_object_class_install_property(k, PROP_REFUSED,
		g_param_spec_uint64("refused", "Refused",
			"Messages refused because they broke the format (each ends its session; nothing of them is pushed)",
			0, G_MAXUINT64, 0, RO));
	g_object_class_install_property(k, PROP_LATENCY,
		g_param_spec_uint64("latency", "Latency",
			"Nanoseconds the latency query answers: how much later than the fastest buffer the slowest of the last seconds arrived, plus a margin",
			0, G_MAXUINT64, INITIAL_LATENCY, RO));
}

static void gst_tb_stream_src_class_init(GstTbStreamSrcClass *klass)
{
	GObjectClass *k = G_OBJECT_CLASS(klass);
	GstElementClass *ek = GST_ELEMENT_CLASS(klass);
	GstBaseSrcClass *bk = GST_BASE_SRC_CLASS(klass);
	GstPushSrcClass *pk = GST_PUSH_SRC_CLASS(klass);

	k->set_property = gst_tb_stream_src_set_property;
	k->get_property = gst_tb_stream_src_get_property;
	k->finalize = gst_tb_stream_src_finalize;
	install_properties(k);
	gst_element_class_add_static_pad_template(ek, &src_template);
	gst_element_class_set_static_metadata(ek,
		"USB4STREAM media source", "Source/Network",
		"Receives buffers with their caps and timestamps from a tbstreamsink on the host at the other end of a USB4/Thunderbolt cable",
		"tbstream");
	bk->start = gst_tb_stream_src_start;
	bk->stop = gst_tb_stream_src_stop;
	bk->negotiate = gst_tb_stream_src_negotiate;
	bk->query = gst_tb_stream_src_query;
	bk->event = gst_tb_stream_src_event;
	bk->unlock = gst_tb_stream_src_unlock;
	bk->unlock_stop = gst_tb_stream_src_unlock_stop;
	pk->create = gst_tb_stream_src_create;
}
