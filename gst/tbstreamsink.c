// SPDX-License-Identifier: MIT
/*
 * tbstreamsink: buffers to the peer's tbstreamsrc over a USB4STREAM
 * stream, caps, segment and timestamps kept (docs/PROTOCOL.md, "Media").
 *
 * The streaming thread only queues: render() puts the buffer in a short
 * queue and returns, so the pipeline never waits for the peer (unless
 * "live" is off).  One thread of the element owns the link: it brings the
 * stream up, starts a session, and sends what is queued as soon as the
 * session's window takes it (its readiness descriptor says when; nothing
 * waits a fixed time).  When the queue holds more than "max-buffers" or
 * its oldest buffer waited longer than "max-delay", whole buffers are
 * dropped: delta frames first, oldest first, and with a dropped frame the
 * delta frames that depend on it; then a key frame is asked for upstream.
 * A new session (the receiver restarted, the cable came back) starts at a
 * frame that decodes alone.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gst/base/gstbasesink.h>
#include <gst/video/video.h>

#include "elements.h"
#include "media-gst.h"
#include "media-io.h"

#define GST_CAT_DEFAULT tbs_media_debug

#define DEFAULT_MAX_BUFFERS 4
#define DEFAULT_MAX_DELAY (200 * GST_MSECOND)
#define KEY_ASK_INTERVAL G_USEC_PER_SEC /* repeat a key-unit request */
#define DROP_POST_INTERVAL G_USEC_PER_SEC /* at most one drop message */

enum {
	PROP_LIVE = TBS_PROP_N_COMMON,
	PROP_MAX_BUFFERS,
	PROP_MAX_DELAY,
	PROP_SENT,
	PROP_DROPPED,
};

/* A queued buffer (or, with buf NULL, the end of the stream). */
struct item {
	GstBuffer *buf;
	GstCaps *caps; /* in effect for it */
	GstSegment *seg; /* in effect for it, NULL if not in time format */
	guint caps_seq, seg_seq;
	gint64 queued; /* monotonic, us */
	gboolean delta;
};

struct _GstTbStreamSink {
	GstBaseSink parent;

	struct tbs_gst_where where;
	gboolean live;
	guint max_buffers;
	guint64 max_delay;

	GMutex lock; /* protects everything down to the I/O thread's part */
	GCond cond;
	GQueue queue;
	GstCaps *caps;
	guint caps_seq;
	GstSegment *seg;
	guint seg_seq;
	gboolean connected, flushing, stopping;
	gboolean eos_queued, eos_done;
	gboolean eos_lost; /* the receiver did not confirm the end */
	gboolean need_key; /* drop delta frames until a key frame */
	gboolean has_delta; /* the stream has delta frames at all */
	gboolean key_wanted; /* ask upstream for a key unit */
	gint64 key_asked;
	guint64 sent, dropped, drop_posted;
	gint64 drop_posted_at;
	const gchar *drop_reason;
	GstFlowReturn flow; /* an error of the I/O thread */

	GThread *thread;
	struct tbs_link link;
	gboolean link_ok;
	int work; /* eventfd: something was queued */

	/* The I/O thread's own. */
	guint sent_caps_seq, sent_seg_seq;
	guint64 seq;
	guint8 *scratch;
	gsize scratch_len;
};

G_DEFINE_TYPE(GstTbStreamSink, gst_tb_stream_sink, GST_TYPE_BASE_SINK);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
	"sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void item_free(struct item *it)
{
	gst_clear_buffer(&it->buf);
	gst_clear_caps(&it->caps);
	if (it->seg)
		gst_segment_free(it->seg);
	g_free(it);
}

static void signal_work(GstTbStreamSink *self)
{
	guint64 one = 1;

	if (write(self->work, &one, sizeof(one)) < 0)
		return; /* readable already */
}

/* Counts a dropped buffer; says whether a message is due.  Lock held. */
static gboolean count_drop(GstTbStreamSink *self, const gchar *reason)
{
	gint64 now = g_get_monotonic_time();

	self->dropped++;
	self->drop_reason = reason;
	if (now - self->drop_posted_at < DROP_POST_INTERVAL)
		return FALSE;
	self->drop_posted_at = now;
	return TRUE;
}

static void post_drops(GstTbStreamSink *self)
{
	guint64 dropped, sent;
	const gchar *reason;

	g_mutex_lock(&self->lock);
	dropped = self->dropped;
	sent = self->sent;
	reason = self->drop_reason;
	self->drop_posted = dropped;
	g_mutex_unlock(&self->lock);
	GST_INFO_OBJECT(self, "%" G_GUINT64_FORMAT " buffers dropped (%s)",
			dropped, reason);
	tbs_gst_post(GST_ELEMENT(self), "tbstream-dropped", "dropped",
		     G_TYPE_UINT64, dropped, "sent", G_TYPE_UINT64, sent,
		     "reason", G_TYPE_STRING, reason, NULL);
}

/* Asks upstream for a key frame, at most once a second.  Lock held. */
static void want_key(GstTbStreamSink *self)
{
	gint64 now = g_get_monotonic_time();

	self->need_key = TRUE;
	if (self->has_delta && now - self->key_asked >= KEY_ASK_INTERVAL) {
		self->key_wanted = TRUE;
		self->key_asked = now;
	}
}

/* Sends what want_key() asked for; lock not held. */
static void ask_key(GstTbStreamSink *self, gboolean all_headers, guint count)
{
	GstEvent *ev;

	g_mutex_lock(&self->lock);
	if (!self->key_wanted && !count) {
		g_mutex_unlock(&self->lock);
		return;
	}
	self->key_wanted = FALSE;
	g_mutex_unlock(&self->lock);
	ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE,
							 all_headers, count);
	GST_DEBUG_OBJECT(self, "asking upstream for a key unit");
	gst_pad_push_event(GST_BASE_SINK_PAD(self), ev);
}

/*
 * Removes the queued frame at @link and every delta frame after it that
 * depends on it.  Returns whether a key frame after them stays queued.
 */
static gboolean drop_run(GstTbStreamSink *self, GList *link,
			 gboolean *post)
{
	GList *next;
	struct item *it;

	do {
		next = link->next;
		it = link->data;
		g_queue_delete_link(&self->queue, link);
		item_free(it);
		*post |= count_drop(self, "the receiver is slow");
		link = next;
	} while (link && ((struct item *)link->data)->buf &&
		 ((struct item *)link->data)->delta);
	return link && ((struct item *)link->data)->buf;
}

/* The first frame to drop: the oldest delta frame, else the oldest. */
static GList *victim(GstTbStreamSink *self)
{
	GList *l, *first = NULL;
	struct item *it;

	for (l = self->queue.head; l; l = l->next) {
		it = l->data;
		if (!it->buf)
			continue;
		if (it->delta)
			return l;
		if (!first)
			first = l;
	}
	return first;
}

static gboolean over_limits(GstTbStreamSink *self)
{
	struct item *head = g_queue_peek_head(&self->queue);
	guint n = g_queue_get_length(&self->queue);

	if (!head || !head->buf)
		return FALSE;
	if (n > self->max_buffers)
		return TRUE;
	return n > 1 && (guint64)(g_get_monotonic_time() - head->queued) *
				  GST_USECOND >
			       self->max_delay;
}

/* Live: drops whole buffers until the queue is within its limits. */
static gboolean enforce_limits(GstTbStreamSink *self)
{
	gboolean post = FALSE;
	GList *v;

	while (over_limits(self) && (v = victim(self)))
		if (!drop_run(self, v, &post))
			want_key(self);
	return post;
}

/* Whether @buf may be queued now; counts it as dropped if not.  Lock held. */
static gboolean admit(GstTbStreamSink *self, GstBuffer *buf, gboolean *post)
{
	gboolean delta = GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);

	self->has_delta |= delta;
	if (self->live && !self->connected) {
		*post |= count_drop(self, "no receiver");
		want_key(self);
		return FALSE;
	}
	if (self->need_key && delta) {
		*post |= count_drop(self, "waiting for a key frame");
		want_key(self);
		return FALSE;
	}
	self->need_key = FALSE;
	return TRUE;
}

static struct item *item_new(GstTbStreamSink *self, GstBuffer *buf)
{
	struct item *it = g_new0(struct item, 1);

	it->buf = buf ? gst_buffer_ref(buf) : NULL;
	it->caps = self->caps ? gst_caps_ref(self->caps) : NULL;
	it->seg = self->seg ? gst_segment_copy(self->seg) : NULL;
	it->caps_seq = self->caps_seq;
	it->seg_seq = self->seg_seq;
	it->queued = g_get_monotonic_time();
	it->delta = buf && GST_BUFFER_FLAG_IS_SET(buf,
						  GST_BUFFER_FLAG_DELTA_UNIT);
	return it;
}

static GstFlowReturn gst_tb_stream_sink_render(GstBaseSink *bs, GstBuffer *buf)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);
	GstFlowReturn ret = GST_FLOW_OK;
	gboolean post = FALSE;

	g_mutex_lock(&self->lock);
	if (self->flow != GST_FLOW_OK || self->flushing) {
		ret = self->flushing ? GST_FLOW_FLUSHING : self->flow;
		g_mutex_unlock(&self->lock);
		return ret;
	}
	if (admit(self, buf, &post)) {
		g_queue_push_tail(&self->queue, item_new(self, buf));
		if (self->live)
			post |= enforce_limits(self);
		signal_work(self);
		while (!self->live && !self->flushing &&
		       self->flow == GST_FLOW_OK &&
		       g_queue_get_length(&self->queue) > self->max_buffers)
			g_cond_wait(&self->cond, &self->lock);
		if (self->flushing)
			ret = GST_FLOW_FLUSHING;
	}
	g_mutex_unlock(&self->lock);
	if (post)
		post_drops(self);
	ask_key(self, TRUE, 0);
	return ret;
}

/*
 * Queues the end of the stream and waits until it was delivered; FALSE
 * when it was not and the stream is not live (an error said why).
 */
static gboolean sink_eos(GstTbStreamSink *self)
{
	gboolean waited = FALSE, lost, done;

	g_mutex_lock(&self->lock);
	if (self->connected || !self->live) {
		self->eos_done = self->eos_lost = FALSE;
		self->eos_queued = TRUE;
		g_queue_push_tail(&self->queue, item_new(self, NULL));
		signal_work(self);
		GST_INFO_OBJECT(self, "end of stream queued: waiting for the receiver to confirm everything");
		while (!self->eos_done && !self->flushing &&
		       self->flow == GST_FLOW_OK &&
		       (self->connected || !self->live))
			g_cond_wait(&self->cond, &self->lock);
		waited = TRUE;
	}
	lost = waited && !self->live &&
	       (self->eos_lost || self->flow != GST_FLOW_OK);
	done = self->eos_done && !self->eos_lost;
	g_mutex_unlock(&self->lock);
	GST_DEBUG_OBJECT(self, "end of stream %s",
			 !waited ? "with no receiver" :
			 done	 ? "delivered" :
				   "not confirmed");
	return !lost;
}

static void clear_queue(GstTbStreamSink *self)
{
	struct item *it;

	while ((it = g_queue_pop_head(&self->queue)))
		item_free(it);
	g_cond_broadcast(&self->cond);
}

static gboolean gst_tb_stream_sink_event(GstBaseSink *bs, GstEvent *ev)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);
	const GstSegment *seg;

	switch (GST_EVENT_TYPE(ev)) {
	case GST_EVENT_SEGMENT:
		gst_event_parse_segment(ev, &seg);
		g_mutex_lock(&self->lock);
		if (self->seg)
			gst_segment_free(self->seg);
		self->seg = seg->format == GST_FORMAT_TIME ?
				    gst_segment_copy(seg) :
				    NULL;
		self->seg_seq++;
		g_mutex_unlock(&self->lock);
		break;
	case GST_EVENT_EOS:
		if (!sink_eos(self)) {
			/* not an end of stream: the error ends the pipeline */
			gst_event_unref(ev);
			return FALSE;
		}
		break;
	case GST_EVENT_FLUSH_STOP:
		g_mutex_lock(&self->lock);
		clear_queue(self);
		self->need_key = TRUE;
		g_mutex_unlock(&self->lock);
		break;
	default:
		break;
	}
	return GST_BASE_SINK_CLASS(gst_tb_stream_sink_parent_class)
		->event(bs, ev);
}

static gboolean gst_tb_stream_sink_set_caps(GstBaseSink *bs, GstCaps *caps)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);

	if (!gst_caps_is_fixed(caps))
		return FALSE;
	g_mutex_lock(&self->lock);
	gst_caps_replace(&self->caps, caps);
	self->caps_seq++;
	g_mutex_unlock(&self->lock);
	GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, caps);
	return TRUE;
}

/* ---- the I/O thread ---- */

/* Room for a message of @len bytes in the scratch buffer. */
static guint8 *scratch(GstTbStreamSink *self, gsize len)
{
	if (len > self->scratch_len) {
		g_free(self->scratch);
		self->scratch = g_malloc(len);
		self->scratch_len = len;
	}
	return self->scratch;
}

static int send_caps(GstTbStreamSink *self, struct tbs_session *s,
		     struct item *it)
{
	gchar *text = gst_caps_to_string(it->caps);
	gsize n = strlen(text);
	int r = -EINVAL;

	if (n && n <= TBS_MEDIA_CAPS_MAX) {
		tbs_media_caps_encode(scratch(self, n + TBS_MEDIA_WORD), text,
				      n);
		r = tbs_media_send(s, TBS_MEDIA_CAPS, self->scratch,
				   n + TBS_MEDIA_WORD, 0);
	} else {
		GST_ELEMENT_ERROR(self, STREAM, FORMAT,
				  ("the caps are too long to send (%" G_GSIZE_FORMAT
				   " bytes, at most %d)",
				   n, TBS_MEDIA_CAPS_MAX),
				  (NULL));
	}
	g_free(text);
	if (!r)
		self->sent_caps_seq = it->caps_seq;
	return r;
}

static int send_segment(GstTbStreamSink *self, struct tbs_session *s,
			struct item *it)
{
	struct tbs_media_segment w;
	guint8 msg[TBS_MEDIA_SEGMENT_LEN];
	int r = 0;

	if (it->seg && tbs_gst_segment_to_wire(it->seg, &w)) {
		tbs_media_segment_encode(msg, &w);
		r = tbs_media_send(s, TBS_MEDIA_SEGMENT, msg, sizeof(msg), 0);
	}
	if (!r)
		self->sent_seg_seq = it->seg_seq;
	return r;
}

static int send_frame(GstTbStreamSink *self, struct tbs_session *s,
		      struct item *it)
{
	struct tbs_media_frame f;
	GstMapInfo map;
	guint8 *p;
	int r;

	tbs_gst_frame_from_buffer(it->buf, &f);
	if (f.len > TBS_MEDIA_FRAME_MAX) {
		GST_WARNING_OBJECT(self, "buffer of %" G_GUINT64_FORMAT
			" bytes is larger than a frame may be: dropped", f.len);
		return 0;
	}
	if (!gst_buffer_map(it->buf, &map, GST_MAP_READ))
		return -ENOMEM;
	f.seq = self->seq;
	f.hash = tbs_media_hash(map.data, map.size);
	p = scratch(self, TBS_MEDIA_FRAME_HDR + map.size);
	tbs_media_frame_encode(p, &f);
	memcpy(p + TBS_MEDIA_FRAME_HDR, map.data, map.size);
	gst_buffer_unmap(it->buf, &map);
	r = tbs_media_send(s, TBS_MEDIA_FRAME, p,
			   TBS_MEDIA_FRAME_HDR + f.len, 0);
	if (!r)
		self->seq++;
	return r;
}

/* Sends one queued item (and the caps or segment it needs first). */
static int send_item(GstTbStreamSink *self, struct tbs_session *s,
		     struct item *it)
{
	guint8 eos[TBS_MEDIA_EOS_LEN];
	int r = 0;

	if (it->caps && it->caps_seq != self->sent_caps_seq)
		r = send_caps(self, s, it);
	if (!r && it->seg_seq != self->sent_seg_seq)
		r = send_segment(self, s, it);
	if (r)
		return r;
	if (it->buf)
		return send_frame(self, s, it);
	tbs_media_eos_encode(eos);
	return tbs_media_send(s, TBS_MEDIA_EOS, eos, sizeof(eos), 0);
}

/*
 * Sends queued items while the window takes them: 0 when the queue is
 * empty or the window full, 1 after the end of the stream, or an error.
 */
static int send_queued(GstTbStreamSink *self, struct tbs_session *s)
{
	struct item *it;
	int r;

	for (;;) {
		g_mutex_lock(&self->lock);
		it = g_queue_pop_head(&self->queue);
		g_cond_broadcast(&self->cond);
		g_mutex_unlock(&self->lock);
		if (!it)
			return 0;
		r = send_item(self, s, it);
		if (r == -EAGAIN) {
			g_mutex_lock(&self->lock);
			g_queue_push_head(&self->queue, it);
			g_mutex_unlock(&self->lock);
			return 0;
		}
		g_mutex_lock(&self->lock);
		if (!r && it->buf)
			self->sent++;
		g_mutex_unlock(&self->lock);
		if (r || !it->buf) {
			item_free(it);
			return r ? r : 1;
		}
		item_free(it);
	}
}

/* Handles what the receiver sends: requests for key units. */
static int read_incoming(GstTbStreamSink *self, struct tbs_session *s)
{
	guint8 msg[TBS_MEDIA_KEYUNIT_LEN];
	struct tbs_media_keyunit k;
	uint16_t type;
	uint32_t len;
	int r;

	while ((r = tbs_media_begin(s, &type, &len, 0)) == 1) {
		if (type != TBS_MEDIA_KEYUNIT) {
			GST_DEBUG_OBJECT(self, "skipping message type %#x",
					 type);
			r = tbs_media_skip(s, len - TBS_MEDIA_WORD);
			if (r)
				return r;
			continue;
		}
		r = tbs_media_read_msg(s, len, msg, sizeof(msg));
		if (!r)
			r = tbs_media_keyunit_decode(msg, len, &k);
		if (r)
			return r;
		GST_DEBUG_OBJECT(self, "the receiver asks for a key unit");
		ask_key(self, k.all_headers, k.count ? k.count : 1);
	}
	return r == -EAGAIN ? 0 : r ? r : -ECONNRESET;
}

/* Buffers queued and not sent, the end of the stream aside; lock held. */
static guint queued_buffers(GstTbStreamSink *self)
{
	guint n = g_queue_get_length(&self->queue);
	struct item *last = g_queue_peek_tail(&self->queue);

	return last && !last->buf ? n - 1 : n;
}

/* What was lost when the end of the stream was not confirmed (@r). */
static gchar *unconfirmed_msg(GstTbStreamSink *self, struct tbs_session *s,
			      int r, guint64 *unacked)
{
	struct tbs_session_stats st;
	gchar *why, *msg;
	guint queued;

	tbs_session_get_stats(s, &st);
	*unacked = st.bytes_sent - st.bytes_acked;
	g_mutex_lock(&self->lock);
	queued = queued_buffers(self);
	g_mutex_unlock(&self->lock);
	if (r == -ECANCELED)
		why = g_strdup("stopped before the receiver confirmed the end of the stream");
	else
		why = g_strdup_printf("the receiver did not confirm the end of the stream (%s)",
				      tbs_session_error(s)[0] ?
					      tbs_session_error(s) :
					      g_strerror(-r));
	msg = g_strdup_printf("%s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			      " bytes sent were acknowledged and %u buffers not sent, the last buffers may not have arrived",
			      why, st.bytes_acked, st.bytes_sent, queued);
	g_free(why);
	why = tbs_gst_clean(msg); /* the session's error may hold the peer's words */
	g_free(msg);
	return why;
}

/*
 * The receiver did not confirm the end of the stream (@r says why): what
 * was sent last may not have arrived.  Not live, that is an error (the
 * pipeline ends with it, not with the end of the stream).  When the
 * element itself stopped (the application stopped the pipeline while it
 * waited), a warning says so, live or not, with the bytes not
 * acknowledged in its details ("unconfirmed-bytes").
 */
static void eos_unconfirmed(GstTbStreamSink *self, struct tbs_session *s,
			    int r)
{
	guint64 unacked;
	gchar *msg = unconfirmed_msg(self, s, r, &unacked);
	gboolean live;

	g_mutex_lock(&self->lock);
	live = self->live;
	if (!live && r != -ECANCELED)
		self->flow = GST_FLOW_ERROR;
	self->eos_lost = TRUE;
	g_mutex_unlock(&self->lock);
	GST_WARNING_OBJECT(self, "%s", msg);
	if (r == -ECANCELED)
		GST_ELEMENT_WARNING_WITH_DETAILS(self, RESOURCE, WRITE,
			("%s", msg), (NULL),
			("unconfirmed-bytes", G_TYPE_UINT64, unacked, NULL));
	else if (!live)
		tbs_gst_post_link_error(GST_ELEMENT(self), r, msg);
	g_free(msg);
}

/*
 * After the end of the stream went out: the receiver confirms everything.
 * Returns 1 once the session is closed and freed, else its error.
 */
static int finish_eos(GstTbStreamSink *self, struct tbs_session *s)
{
	uint16_t type;
	uint32_t len;
	int r = tbs_session_finish(s);

	if (r)
		eos_unconfirmed(self, s, r);
	while (!r && (r = tbs_media_begin(s, &type, &len, -1)) == 1)
		r = tbs_media_skip(s, len - TBS_MEDIA_WORD);
	if (!r) {
		/* everything was confirmed: a stop may cut the close short */
		r = tbs_link_finish(&self->link);
		GST_DEBUG_OBJECT(self, "end of stream confirmed (%d)", r);
		r = 1;
	}
	g_mutex_lock(&self->lock);
	self->eos_done = TRUE;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	return r;
}

static void on_connected(GstTbStreamSink *self)
{
	GList *l;

	g_mutex_lock(&self->lock);
	self->connected = TRUE;
	self->sent_caps_seq = 0;
	self->sent_seg_seq = 0;
	self->seq = 0;
	/* The receiver starts at a frame that decodes alone. */
	while ((l = self->queue.head) && ((struct item *)l->data)->buf &&
	       ((struct item *)l->data)->delta) {
		item_free(l->data);
		g_queue_delete_link(&self->queue, l);
		self->dropped++;
	}
	if (!self->queue.head)
		want_key(self);
	g_mutex_unlock(&self->lock);
	tbs_gst_where_connected(GST_ELEMENT(self), &self->where, TRUE);
	GST_INFO_OBJECT(self, "the receiver is connected");
	tbs_gst_post(GST_ELEMENT(self), "tbstream-connected", NULL);
	ask_key(self, TRUE, 0);
}

static void on_disconnected(GstTbStreamSink *self, struct tbs_session *s,
			    int r)
{
	struct item *it;
	gboolean post = FALSE;
	gchar *why;

	g_mutex_lock(&self->lock);
	self->connected = FALSE;
	if (self->live) {
		while ((it = g_queue_pop_head(&self->queue))) {
			if (it->buf)
				post |= count_drop(self, "no receiver");
			item_free(it);
		}
	}
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	tbs_gst_where_connected(GST_ELEMENT(self), &self->where, FALSE);
	if (r == -ECANCELED)
		return;
	/* the session's error may hold the peer's words */
	why = tbs_gst_clean(tbs_session_error(s)[0] ? tbs_session_error(s) :
						      g_strerror(-r));
	GST_INFO_OBJECT(self, "the receiver went away: %s", why);
	tbs_gst_post(GST_ELEMENT(self), "tbstream-disconnected", "reason",
		     G_TYPE_STRING, why, NULL);
	g_free(why);
	if (post)
		post_drops(self);
}

/* One session: returns 1 after the end of the stream, else why it ended. */
static int run_session(GstTbStreamSink *self, struct tbs_session *s)
{
	struct pollfd p[3] = {
		{ .fd = tbs_session_fd(s), .events = POLLIN },
		{ .fd = self->work, .events = POLLIN },
		{ .fd = tbs_link_wake_fd(&self->link), .events = POLLIN },
	};
	guint64 v;
	unsigned int ev;
	int r;

	if (p[0].fd < 0)
		return p[0].fd;
	for (;;) {
		ev = tbs_session_ready(s);
		if (ev & TBS_SESSION_ERROR)
			return -ECONNRESET;
		if (ev & TBS_SESSION_RECV) {
			r = read_incoming(self, s);
			if (r)
				return r;
		}
		r = send_queued(self, s);
		if (r == 1)
			return finish_eos(self, s);
		if (r)
			return r;
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[2].revents)
			return -ECANCELED;
		if (p[1].revents && read(self->work, &v, sizeof(v)) < 0)
			v = 0;
	}
}

/* The end of the stream is queued or sent, and not confirmed yet. */
static gboolean eos_pending(GstTbStreamSink *self)
{
	gboolean r;

	g_mutex_lock(&self->lock);
	r = self->eos_queued && !self->eos_done;
	g_mutex_unlock(&self->lock);
	return r;
}

/* After the end of the stream: wait until flushed or stopped. */
static void wait_after_eos(GstTbStreamSink *self)
{
	g_mutex_lock(&self->lock);
	while (!self->stopping && self->eos_queued)
		g_cond_wait(&self->cond, &self->lock);
	g_mutex_unlock(&self->lock);
}

static gpointer io_main(gpointer data)
{
	GstTbStreamSink *self = data;
	struct tbs_session *s;
	int r;

	for (;;) {
		r = tbs_link_connect(&self->link, &s);
		if (r == -ECANCELED)
			break;
		if (r) {
			g_mutex_lock(&self->lock);
			self->flow = GST_FLOW_ERROR;
			g_cond_broadcast(&self->cond);
			g_mutex_unlock(&self->lock);
			tbs_gst_post_link_error(GST_ELEMENT(self), r,
						self->link.err.msg);
			break;
		}
		on_connected(self);
		r = run_session(self, s);
		if (r == 1) {
			tbs_gst_where_connected(GST_ELEMENT(self),
						&self->where, FALSE);
			wait_after_eos(self);
			continue;
		}
		if (r == -ECANCELED && eos_pending(self))
			eos_unconfirmed(self, s, r); /* stopped meanwhile */
		on_disconnected(self, s, r);
		tbs_link_close(&self->link);
		if (r == -ECANCELED)
			break;
	}
	return NULL;
}

static gboolean gst_tb_stream_sink_start(GstBaseSink *bs)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);

	if (!tbs_gst_valid_name(GST_ELEMENT(self), self->where.stream))
		return FALSE;
	self->flow = GST_FLOW_OK;
	self->flushing = self->stopping = self->connected = FALSE;
	self->eos_queued = self->eos_done = FALSE;
	self->need_key = self->has_delta = FALSE;
	self->sent = self->dropped = self->drop_posted = 0;
	self->work = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (self->work < 0)
		return tbs_gst_setup_failed(GST_ELEMENT(self), -errno);
	if (!tbs_gst_link_init(GST_ELEMENT(self), &self->where,
			       TBS_ROLE_SENDER, &self->link))
		return FALSE;
	self->link_ok = TRUE;
	self->thread = g_thread_new("tbstreamsink", io_main, self);
	return TRUE;
}

static gboolean gst_tb_stream_sink_stop(GstBaseSink *bs)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);

	g_mutex_lock(&self->lock);
	self->stopping = TRUE;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	if (self->link_ok)
		tbs_link_abort(&self->link);
	if (self->thread)
		g_thread_join(self->thread);
	self->thread = NULL;
	if (self->link_ok)
		tbs_link_destroy(&self->link);
	self->link_ok = FALSE;
	if (self->work >= 0)
		close(self->work);
	self->work = -1;
	g_mutex_lock(&self->lock);
	clear_queue(self);
	gst_clear_caps(&self->caps);
	g_mutex_unlock(&self->lock);
	g_clear_pointer(&self->scratch, g_free);
	self->scratch_len = 0;
	return TRUE;
}

static gboolean gst_tb_stream_sink_unlock(GstBaseSink *bs)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);

	g_mutex_lock(&self->lock);
	self->flushing = TRUE;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	return TRUE;
}

static gboolean gst_tb_stream_sink_unlock_stop(GstBaseSink *bs)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(bs);

	g_mutex_lock(&self->lock);
	self->flushing = FALSE;
	g_mutex_unlock(&self->lock);
	return TRUE;
}

static void gst_tb_stream_sink_set_property(GObject *o, guint id,
					    const GValue *v, GParamSpec *ps)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(o);

	if (tbs_gst_where_set(o, &self->where, id, v))
		return;
	g_mutex_lock(&self->lock);
	switch (id) {
	case PROP_LIVE:
		self->live = g_value_get_boolean(v);
		break;
	case PROP_MAX_BUFFERS:
		self->max_buffers = g_value_get_uint(v);
		break;
	case PROP_MAX_DELAY:
		self->max_delay = g_value_get_uint64(v);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
	}
	g_mutex_unlock(&self->lock);
}

static void gst_tb_stream_sink_get_property(GObject *o, guint id, GValue *v,
					    GParamSpec *ps)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(o);

	if (tbs_gst_where_get(o, &self->where, id, v))
		return;
	g_mutex_lock(&self->lock);
	switch (id) {
	case PROP_LIVE:
		g_value_set_boolean(v, self->live);
		break;
	case PROP_MAX_BUFFERS:
		g_value_set_uint(v, self->max_buffers);
		break;
	case PROP_MAX_DELAY:
		g_value_set_uint64(v, self->max_delay);
		break;
	case PROP_SENT:
		g_value_set_uint64(v, self->sent);
		break;
	case PROP_DROPPED:
		g_value_set_uint64(v, self->dropped);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
	}
	g_mutex_unlock(&self->lock);
}

static void gst_tb_stream_sink_finalize(GObject *o)
{
	GstTbStreamSink *self = GST_TB_STREAM_SINK(o);

	tbs_gst_where_clear(&self->where);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	G_OBJECT_CLASS(gst_tb_stream_sink_parent_class)->finalize(o);
}

static void gst_tb_stream_sink_init(GstTbStreamSink *self)
{
	tbs_gst_where_init(&self->where);
	self->live = TRUE;
	self->max_buffers = DEFAULT_MAX_BUFFERS;
	self->max_delay = DEFAULT_MAX_DELAY;
	self->work = -1;
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	g_queue_init(&self->queue);
	gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
}

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)
#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)

static void install_properties(GObjectClass *k)
{
	tbs_gst_install_where(k, "Whether a receiver is connected now");
	g_object_class_install_property(k, PROP_LIVE,
		g_param_spec_boolean("live", "Live",
			"Never wait for the receiver: drop whole buffers when it is absent or slow (TRUE); or wait for it and lose nothing (FALSE)",
			TRUE, RW | GST_PARAM_MUTABLE_READY));
	g_object_class_install_property(k, PROP_MAX_BUFFERS,
		g_param_spec_uint("max-buffers", "Maximum buffers",
			"Buffers waiting for room in the session's window before the oldest are dropped (live) or the pipeline waits",
			1, 1000, DEFAULT_MAX_BUFFERS, RW));
	g_object_class_install_property(k, PROP_MAX_DELAY,
		g_param_spec_uint64("max-delay", "Maximum delay",
			"Live: nanoseconds a buffer may wait for room in the session's window before it is dropped",
			0, G_MAXUINT64, DEFAULT_MAX_DELAY, RW));
	g_object_class_install_property(k, PROP_SENT,
		g_param_spec_uint64("sent", "Sent",
			"Buffers handed to the session", 0, G_MAXUINT64, 0,
			RO));
	g_object_class_install_property(k, PROP_DROPPED,
		g_param_spec_uint64("dropped", "Dropped",
			"Buffers dropped: no receiver, a slow receiver, or delta frames whose key frame was dropped (a \"tbstream-dropped\" element message says so at most once a second)",
			0, G_MAXUINT64, 0, RO));
}

static void gst_tb_stream_sink_class_init(GstTbStreamSinkClass *klass)
{
	GObjectClass *k = G_OBJECT_CLASS(klass);
	GstElementClass *ek = GST_ELEMENT_CLASS(klass);
	GstBaseSinkClass *bk = GST_BASE_SINK_CLASS(klass);

	k->set_property = gst_tb_stream_sink_set_property;
	k->get_property = gst_tb_stream_sink_get_property;
	k->finalize = gst_tb_stream_sink_finalize;
	install_properties(k);
	gst_element_class_add_static_pad_template(ek, &sink_template);
	gst_element_class_set_static_metadata(ek,
		"USB4STREAM media sink", "Sink/Network",
		"Sends buffers with their caps and timestamps to a tbstreamsrc on the host at the other end of a USB4/Thunderbolt cable",
		"tbstream");
	bk->start = gst_tb_stream_sink_start;
	bk->stop = gst_tb_stream_sink_stop;
	bk->render = gst_tb_stream_sink_render;
	bk->event = gst_tb_stream_sink_event;
	bk->set_caps = gst_tb_stream_sink_set_caps;
	bk->unlock = gst_tb_stream_sink_unlock;
	bk->unlock_stop = gst_tb_stream_sink_unlock_stop;
}
