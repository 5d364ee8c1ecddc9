// SPDX-License-Identifier: MIT
/*
 * The media elements under GstHarness, each against a peer that this test
 * plays with the library's own sessions over a socket pair (the elements'
 * "fd" property): what tbstreamsink sends, message by message; what
 * tbstreamsrc makes of a sender's messages, well formed and hostile; key
 * unit requests both ways; restarts of the peer; the live sink's drops;
 * elements stopped while they wait for a peer that does not answer.
 * Also the media codec and the clock mapping alone.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "../../gst/elements.h"
#include "../../gst/media-io.h"
#include "../../gst/media-sync.h"
#include "../../gst/media-wire.h"
#include "../tap.h"
#include "../unit/session-relay.h"

#define diag(...) (printf("# " __VA_ARGS__), printf("\n"))

#define T_MS 20000 /* every wait of the test is bounded */
#define RAW_CAPS "video/x-raw, format=(string)GRAY8, width=(int)16, height=(int)4, framerate=(fraction)30/1"

/* ---- the codec and the clock mapping alone ---- */

static void test_codec(void)
{
	struct tbs_media_frame f = { TBS_MF_DELTA | TBS_MF_MARKER, 7, 1000,
				     900, 33, 5, 6, 0xabcdef, 123 };
	struct tbs_media_frame g;
	struct tbs_media_segment s = { 0, 1.0, 1.0, 10, 0, 20, TBS_MEDIA_NONE,
				       20, 20, TBS_MEDIA_NONE };
	struct tbs_media_segment t;
	struct tbs_media_keyunit k;
	uint8_t b[128];
	const char *text;
	size_t n;

	tbs_media_frame_encode(b, &f);
	ok(!tbs_media_frame_decode(b, &g) && g.flags == f.flags &&
		   g.seq == f.seq && g.pts == f.pts && g.dts == f.dts &&
		   g.duration == f.duration && g.offset == f.offset &&
		   g.offset_end == f.offset_end && g.hash == f.hash &&
		   g.len == f.len,
	   "a frame header decodes as it was encoded");
	ok(tbs_media_check_len(TBS_MEDIA_FRAME, 63) &&
		   !tbs_media_check_len(TBS_MEDIA_FRAME, 64) &&
		   tbs_media_check_len(TBS_MEDIA_FRAME, TBS_MEDIA_MSG_MAX + 1),
	   "frame lengths: below its header and above the limit refused");
	ok(tbs_media_check_len(TBS_MEDIA_CAPS, 4) &&
		   tbs_media_check_len(TBS_MEDIA_CAPS, 4 + 65537) &&
		   tbs_media_check_len(TBS_MEDIA_SEGMENT, 95) &&
		   tbs_media_check_len(TBS_MEDIA_EOS, 5) &&
		   tbs_media_check_len(TBS_MEDIA_KEYUNIT, 23) &&
		   tbs_media_check_len(0x7777, 3) &&
		   !tbs_media_check_len(0x7777, 4),
	   "empty caps, oversized caps and wrong fixed lengths refused");
	tbs_media_segment_encode(b, &s);
	ok(!tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t) &&
		   t.start == 20 && t.base == 10 && t.rate == 1.0 &&
		   t.stop == TBS_MEDIA_NONE,
	   "a segment decodes as it was encoded");
	s.rate = 0;
	tbs_media_segment_encode(b, &s);
	ok(tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t),
	   "a segment of rate 0 is refused");
	s.rate = 1.0;
	s.stop = 5;
	tbs_media_segment_encode(b, &s);
	ok(tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t),
	   "a segment that stops before it starts is refused");
	s.stop = TBS_MEDIA_NONE;
	s.base = (uint64_t)INT64_MAX + 1;
	tbs_media_segment_encode(b, &s);
	ok(tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t),
	   "a segment whose base is 2^63 or more is refused");
	s.base = 10;
	s.position = TBS_MEDIA_NONE - 1;
	tbs_media_segment_encode(b, &s);
	ok(tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t),
	   "a segment with a position of 2^64 - 2 is refused");
	s.position = TBS_MEDIA_NONE;
	s.time = INT64_MAX;
	tbs_media_segment_encode(b, &s);
	ok(!tbs_media_segment_decode(b, TBS_MEDIA_SEGMENT_LEN, &t),
	   "a segment whose times are below 2^63 decodes");
	s.time = 0;
	n = tbs_media_caps_encode(b, "video/x-raw\n", 12);
	ok(tbs_media_caps_decode(b, n, &text, &n),
	   "caps with a control character are refused");
	n = tbs_media_caps_encode(b, "image/jpeg", 10);
	ok(!tbs_media_caps_decode(b, n, &text, &n) && n == 10,
	   "caps text decodes");
	tbs_media_keyunit_encode(b, &(struct tbs_media_keyunit){ true, 3,
								 9 });
	ok(!tbs_media_keyunit_decode(b, TBS_MEDIA_KEYUNIT_LEN, &k) &&
		   k.all_headers && k.count == 3 && k.running_time == 9,
	   "a key unit request decodes");
	b[4] = 2;
	ok(tbs_media_keyunit_decode(b, TBS_MEDIA_KEYUNIT_LEN, &k),
	   "a key unit request with unknown flags is refused");
}

static void test_sync(void)
{
	const int64_t ms = 1000000;
	struct tbs_sync y;
	int64_t t, jit;
	int i;

	tbs_sync_reset(&y, 10 * ms);
	for (i = 0; i < 100; i++)
		tbs_sync_add(&y, 5000 * ms + i * 33 * ms, i * 33 * ms);
	ok(y.offset == 5000 * ms && y.latency <= 10 * ms,
	   "a steady delay becomes the offset, with little latency");
	for (i = 100; i < 200; i++) {
		jit = (i % 10) * 3 * ms;
		tbs_sync_add(&y, 5000 * ms + i * 33 * ms + jit, i * 33 * ms);
	}
	ok(y.latency >= 27 * ms && y.latency <= 45 * ms,
	   "27 ms of jitter gives a latency that covers it (%llu ms)",
	   (unsigned long long)(y.latency / ms));
	for (i = 200; i < 600; i++) { /* the receiver's clock runs slow */
		t = i * 33 * ms;
		tbs_sync_add(&y, 5000 * ms + t - t / 100, t);
	}
	ok(y.offset < 5000 * ms - 40 * ms,
	   "the offset follows a drifting clock");

	/* times from a hostile peer: no overflow, nothing absurd kept */
	tbs_sync_reset(&y, 10 * ms);
	for (i = 0; i < 10; i++)
		tbs_sync_add(&y, 5000 * ms + i * 33 * ms, i * 33 * ms);
	t = y.offset;
	tbs_sync_add(&y, 5330 * ms, INT64_MIN);
	tbs_sync_add(&y, 5363 * ms, INT64_MIN + 1);
	ok(y.offset == t && y.latency <= 250 * ms,
	   "running times near -2^63 leave the offset and bound the latency");
	tbs_sync_add(&y, 5396 * ms, INT64_MAX);
	ok(y.offset <= t && y.latency <= 250 * ms,
	   "a running time near 2^63 moves the offset, with no overflow");
}

/* ---- a peer played by the test ---- */

struct peer {
	int fd;
	int role;
	struct tbs_session *s;
	size_t window;
	int idle_ms; /* 0: the default */
	int r;
	pthread_t t;
};

static void *peer_start_main(void *arg)
{
	struct peer *p = arg;
	struct tbs_session_opts o = TBS_OPTS_INIT(
		tbs_session_opts, .role = p->role, .id = TBS_MEDIA_ID,
		.id_len = strlen(TBS_MEDIA_ID), .handshake_ms = T_MS,
		.window = p->window, .idle_ms = p->idle_ms);

	p->r = tbs_session_new(&p->s, p->fd, p->fd, &o);
	if (!p->r)
		p->r = tbs_session_start(p->s);
	return NULL;
}

/* Starts the peer's session in a thread; peer_wait() joins it. */
static void peer_begin(struct peer *p, int fd, int role)
{
	p->fd = fd;
	p->role = role;
	pthread_create(&p->t, NULL, peer_start_main, p);
}

static int peer_wait(struct peer *p)
{
	pthread_join(p->t, NULL);
	return p->r;
}

static void peer_end(struct peer *p)
{
	if (p->s)
		tbs_session_abort(p->s, -ECONNRESET, "test peer ends");
	tbs_session_free(p->s);
	p->s = NULL;
}

/* The next whole message: its type and length, its bytes in @buf. */
static int next_msg(struct peer *p, uint16_t *type, uint8_t *buf,
		    size_t cap)
{
	uint32_t len;
	int r = tbs_media_begin(p->s, type, &len, T_MS);

	if (r != 1)
		return r ? r : -ENODATA;
	r = tbs_media_read_msg(p->s, len, buf, cap);
	return r ? r : (int)len;
}

static int send_msg(struct peer *p, uint16_t type, const void *buf,
		    size_t len)
{
	return tbs_media_send(p->s, type, buf, len, T_MS);
}

static int send_caps(struct peer *p, const char *caps)
{
	uint8_t b[512];

	return send_msg(p, TBS_MEDIA_CAPS, b,
			tbs_media_caps_encode(b, caps, strlen(caps)));
}

static int send_frame(struct peer *p, struct tbs_media_frame *f,
		      const uint8_t *data)
{
	uint8_t b[TBS_MEDIA_FRAME_HDR + 4096];

	if (!f->hash)
		f->hash = tbs_media_hash(data, f->len);
	tbs_media_frame_encode(b, f);
	memcpy(b + TBS_MEDIA_FRAME_HDR, data, f->len);
	return send_msg(p, TBS_MEDIA_FRAME, b, TBS_MEDIA_FRAME_HDR + f->len);
}

static int send_eos(struct peer *p)
{
	uint8_t b[TBS_MEDIA_EOS_LEN];

	return send_msg(p, TBS_MEDIA_EOS, b, tbs_media_eos_encode(b));
}

static void socket_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
}

/* ---- tbstreamsink ---- */

/* The element @name with fd=@fd and the properties @props ("k=v ..."). */
static GstElement *element(const char *name, int fd, const char *props)
{
	GstElement *e = gst_element_factory_make(name, NULL);
	gchar **kv = g_strsplit(props, " ", -1);
	gchar **p, **pair;

	g_object_set(e, "fd", fd, NULL);
	for (p = kv; *p; p++) {
		pair = g_strsplit(*p, "=", 2);
		if (pair[0] && pair[1])
			gst_util_set_object_arg(G_OBJECT(e), pair[0], pair[1]);
		g_strfreev(pair);
	}
	g_strfreev(kv);
	return e;
}

static GstHarness *sink_harness(int fd, const char *props)
{
	GstHarness *h = gst_harness_new_with_element(
		element("tbstreamsink", fd, props), "sink", NULL);

	gst_harness_set_src_caps_str(h, RAW_CAPS);
	return h;
}

static GstBuffer *frame_buffer(guint i, gboolean delta)
{
	GstBuffer *b = gst_buffer_new_allocate(NULL, 64, NULL);

	gst_buffer_memset(b, 0, (guint8)i, 64);
	GST_BUFFER_PTS(b) = (i + 1) * 33 * GST_MSECOND;
	GST_BUFFER_DTS(b) = (i + 1) * 33 * GST_MSECOND - GST_MSECOND;
	GST_BUFFER_DURATION(b) = 33 * GST_MSECOND;
	GST_BUFFER_OFFSET(b) = i;
	GST_BUFFER_OFFSET_END(b) = i + 1;
	if (delta)
		GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
	return b;
}

/* Reads frames until one arrives; returns its header (and skips others). */
static int next_frame(struct peer *p, struct tbs_media_frame *f,
		      uint8_t *data, int *caps_seen)
{
	uint8_t buf[TBS_MEDIA_FRAME_HDR + 4096];
	uint16_t type;
	int n;

	for (;;) {
		n = next_msg(p, &type, buf, sizeof(buf));
		if (n < 0)
			return n;
		if (type == TBS_MEDIA_CAPS && caps_seen)
			(*caps_seen)++;
		if (type == TBS_MEDIA_EOS)
			return -ENODATA;
		if (type != TBS_MEDIA_FRAME)
			continue;
		if (tbs_media_frame_decode(buf, f))
			return -EBADMSG;
		memcpy(data, buf + TBS_MEDIA_FRAME_HDR, f->len);
		return 0;
	}
}

static gpointer push_eos(gpointer h)
{
	return GINT_TO_POINTER(gst_harness_push_event(h, gst_event_new_eos()));
}

static void test_sink_messages(void)
{
	struct tbs_media_segment seg;
	struct tbs_media_frame f;
	struct peer p = { 0 };
	uint8_t buf[8192], data[4096];
	const char *text;
	size_t n;
	uint16_t type;
	GstHarness *h;
	GstSegment gseg;
	GThread *eos;
	int sv[2], len, good = 1, i, r1, r2, r3;

	socket_pair(sv);
	h = sink_harness(sv[0], "live=false");
	peer_begin(&p, sv[1], TBS_ROLE_RECEIVER);
	gst_harness_play(h);
	ok(!peer_wait(&p), "sink: the session with the receiver starts");
	gst_segment_init(&gseg, GST_FORMAT_TIME);
	gseg.time = 7 * GST_SECOND;
	gseg.base = 3 * GST_SECOND;
	gst_harness_push_event(h, gst_event_new_segment(&gseg));
	for (i = 0; i < 5; i++)
		gst_harness_push(h, frame_buffer(i, i % 2));
	len = next_msg(&p, &type, buf, sizeof(buf));
	ok(len > 0 && type == TBS_MEDIA_CAPS &&
		   !tbs_media_caps_decode(buf, (size_t)len, &text, &n) &&
		   n == strlen(RAW_CAPS) && !memcmp(text, RAW_CAPS, n),
	   "sink: the caps go first, as text");
	len = next_msg(&p, &type, buf, sizeof(buf));
	ok(len > 0 && type == TBS_MEDIA_SEGMENT &&
		   !tbs_media_segment_decode(buf, (size_t)len, &seg) &&
		   seg.start == 0 && seg.time == 7 * GST_SECOND &&
		   seg.base == 3 * GST_SECOND && seg.rate == 1.0,
	   "sink: then the segment");
	for (i = 0; i < 5; i++) {
		if (next_frame(&p, &f, data, NULL) ||
		    f.pts != (guint64)(i + 1) * 33 * GST_MSECOND ||
		    f.dts != f.pts - GST_MSECOND ||
		    f.duration != 33 * GST_MSECOND || f.offset != (guint)i ||
		    f.offset_end != (guint)i + 1 || f.seq != (guint)i ||
		    !!(f.flags & TBS_MF_DELTA) != i % 2 || f.len != 64 ||
		    data[0] != i || f.hash != tbs_media_hash(data, 64))
			good = 0;
	}
	ok(good, "sink: each buffer with its times, offsets, flags and bytes");
	eos = g_thread_new("eos", push_eos, h); /* returns once confirmed */
	len = next_msg(&p, &type, buf, sizeof(buf));
	ok(len == TBS_MEDIA_EOS_LEN && type == TBS_MEDIA_EOS,
	   "sink: the end of the stream travels (%d, %#x)", len, type);
	r1 = tbs_media_begin(p.s, &type, (uint32_t *)&len, T_MS);
	r2 = tbs_session_confirm(p.s);
	r3 = tbs_session_close(p.s);
	ok(!r1 && !r2 && !r3 && g_thread_join(eos),
	   "sink: the session ends in order, every byte confirmed");
	tbs_session_free(p.s);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

/* The receiver asks for a key unit: it goes upstream of the sink. */
static void test_sink_keyunit(void)
{
	struct tbs_media_keyunit k = { true, 4, TBS_MEDIA_NONE };
	struct peer p = { 0 };
	uint8_t b[TBS_MEDIA_KEYUNIT_LEN];
	GstEvent *ev = NULL;
	gboolean all = FALSE;
	guint count = 0;
	GstHarness *h;
	gint64 end;
	int sv[2];

	socket_pair(sv);
	h = sink_harness(sv[0], "");
	peer_begin(&p, sv[1], TBS_ROLE_RECEIVER);
	gst_harness_play(h);
	peer_wait(&p);
	tbs_media_keyunit_encode(b, &k);
	send_msg(&p, TBS_MEDIA_KEYUNIT, b, sizeof(b));
	end = g_get_monotonic_time() + T_MS * 1000;
	while (g_get_monotonic_time() < end &&
	       !(ev = gst_harness_try_pull_upstream_event(h)))
		g_usleep(1000);
	while (ev && !gst_video_event_is_force_key_unit(ev)) {
		gst_event_unref(ev);
		ev = gst_harness_pull_upstream_event(h);
	}
	if (ev)
		gst_video_event_parse_upstream_force_key_unit(ev, NULL, &all,
							      &count);
	ok(ev && all && count == 4,
	   "sink: the receiver's key unit request goes upstream");
	gst_clear_event(&ev);
	peer_end(&p);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

static guint64 get_u64(GstElement *e, const char *prop)
{
	guint64 v = 0;

	g_object_get(e, prop, &v, NULL);
	return v;
}

static gboolean wait_prop(GstElement *e, const char *prop, gboolean want)
{
	gint64 end = g_get_monotonic_time() + T_MS * 1000;
	gboolean v = !want;

	while (g_get_monotonic_time() < end) {
		g_object_get(e, prop, &v, NULL);
		if (v == want)
			return TRUE;
		g_usleep(1000);
	}
	return FALSE;
}

/* No receiver: every buffer is taken at once, counted and reported. */
static void test_sink_no_receiver(void)
{
	GstHarness *h;
	GstBus *bus = gst_bus_new();
	GstMessage *m;
	int sv[2], i, ret = GST_FLOW_OK;

	socket_pair(sv);
	h = sink_harness(sv[0], "");
	gst_element_set_bus(h->element, bus);
	gst_harness_play(h);
	for (i = 0; i < 20; i++)
		ret |= gst_harness_push(h, frame_buffer(i, FALSE));
	ok(ret == GST_FLOW_OK && get_u64(h->element, "dropped") == 20,
	   "sink: with no receiver, 20 buffers taken and dropped");
	while ((m = gst_bus_timed_pop_filtered(bus, 5 * GST_SECOND,
					       GST_MESSAGE_ELEMENT)) &&
	       !gst_message_has_name(m, "tbstream-dropped"))
		gst_message_unref(m);
	ok(m != NULL, "sink: a \"tbstream-dropped\" element message tells of it");
	gst_clear_message(&m);
	gst_harness_teardown(h);
	gst_object_unref(bus);
	close(sv[0]);
	close(sv[1]);
}

/*
 * A receiver that reads nothing for a while: the live sink drops whole
 * runs of delta frames, never one whose key frame went out without it.
 */
static void test_sink_slow_receiver(void)
{
	struct tbs_media_frame f;
	struct peer p = { .window = 512 * 1024 };
	uint8_t data[4096];
	gboolean pushed_delta[400], chain = TRUE;
	GstHarness *h;
	GstBuffer *b;
	int sv[2], i, n = 0, last = -1, ret = GST_FLOW_OK;

	socket_pair(sv);
	h = sink_harness(sv[0], "max-buffers=3 window=524288");
	peer_begin(&p, sv[1], TBS_ROLE_RECEIVER);
	gst_harness_play(h);
	peer_wait(&p);
	wait_prop(h->element, "connected", TRUE);
	for (i = 0; i < 400; i++) {
		b = gst_buffer_new_allocate(NULL, 4000, NULL);
		gst_buffer_memset(b, 0, (guint8)i, 4000);
		GST_BUFFER_PTS(b) = i * GST_MSECOND;
		GST_BUFFER_OFFSET(b) = i;
		pushed_delta[i] = i % 10 != 0;
		if (pushed_delta[i])
			GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
		ret |= gst_harness_push(h, b);
	}
	ok(ret == GST_FLOW_OK && get_u64(h->element, "dropped") > 0,
	   "sink: the window full, buffers are dropped (%llu), none waits",
	   (unsigned long long)get_u64(h->element, "dropped"));
	b = frame_buffer(0, FALSE);
	GST_BUFFER_OFFSET(b) = 999; /* the last one, a key frame */
	gst_harness_push(h, b);
	while (!next_frame(&p, &f, data, NULL) && f.offset < 400) {
		if (pushed_delta[f.offset] && last != (int)f.offset - 1)
			chain = FALSE;
		last = (int)f.offset;
		n++;
	}
	ok(n > 0 && chain,
	   "sink: %d frames arrived, every delta frame right after the frame it depends on",
	   n);
	peer_end(&p);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

/* The receiver restarts: a new session starts at a key frame, caps again. */
static void test_sink_receiver_restart(void)
{
	struct tbs_media_frame f;
	struct peer p = { 0 };
	uint8_t data[4096];
	GstHarness *h;
	int sv[2], i, caps = 0, r;

	socket_pair(sv);
	h = sink_harness(sv[0], "");
	peer_begin(&p, sv[1], TBS_ROLE_RECEIVER);
	gst_harness_play(h);
	peer_wait(&p);
	wait_prop(h->element, "connected", TRUE);
	gst_harness_push(h, frame_buffer(0, FALSE));
	r = next_frame(&p, &f, data, &caps);
	ok(!r && f.seq == 0 && caps == 1, "sink: first session: caps, frame 0");
	peer_end(&p);
	wait_prop(h->element, "connected", FALSE);
	peer_begin(&p, sv[1], TBS_ROLE_RECEIVER);
	ok(!peer_wait(&p) && wait_prop(h->element, "connected", TRUE),
	   "sink: a restarted receiver gets a new session on the same descriptor");
	for (i = 1; i < 6; i++)
		gst_harness_push(h, frame_buffer(i, i < 4));
	caps = 0;
	r = next_frame(&p, &f, data, &caps);
	ok(!r && caps == 1 && f.seq == 0 && f.offset == 4 &&
		   !(f.flags & TBS_MF_DELTA),
	   "sink: it gets the caps again, then a key frame first (frame %llu)",
	   (unsigned long long)f.offset);
	peer_end(&p);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

/* ---- tbstreamsrc ---- */

static GstHarness *src_harness(int fd)
{
	GstHarness *h = gst_harness_new_with_element(
		element("tbstreamsrc", fd, ""), NULL, "src");

	gst_harness_use_systemclock(h);
	gst_harness_play(h);
	return h;
}

static struct tbs_media_frame frame(guint64 seq, guint32 flags, guint len)
{
	struct tbs_media_frame f = { flags, seq, seq * 33 * GST_MSECOND,
				     TBS_MEDIA_NONE, 33 * GST_MSECOND,
				     seq, seq + 1, 0, len };

	return f;
}

static void fill(uint8_t *data, guint64 seq, guint len)
{
	memset(data, (int)(seq * 3 + 1), len);
}

/* Pulls until a buffer comes (events are skipped); NULL on time-out. */
static GstBuffer *pull(GstHarness *h)
{
	return gst_harness_pull(h);
}

static gboolean buffer_is(GstBuffer *b, guint64 seq, guint len)
{
	uint8_t want[4096];
	gboolean same;
	GstMapInfo m;

	if (!b || !gst_buffer_map(b, &m, GST_MAP_READ))
		return FALSE;
	fill(want, seq, len);
	same = m.size == len && !memcmp(m.data, want, len);
	gst_buffer_unmap(b, &m);
	return same && GST_BUFFER_PTS(b) == seq * 33 * GST_MSECOND &&
	       GST_BUFFER_DURATION(b) == 33 * GST_MSECOND &&
	       GST_BUFFER_OFFSET(b) == seq;
}

static int send_seq(struct peer *p, guint64 seq, guint32 flags)
{
	struct tbs_media_frame f = frame(seq, flags, 100 + (guint)seq);
	uint8_t data[4096];

	fill(data, seq, f.len);
	return send_frame(p, &f, data);
}

static void test_src_stream(void)
{
	struct peer p = { 0 };
	struct tbs_media_segment seg = { 0, 1.0, 1.0, 0, 0, 2 * GST_SECOND,
					 TBS_MEDIA_NONE, 4 * GST_SECOND, 0,
					 TBS_MEDIA_NONE };
	uint8_t b[TBS_MEDIA_SEGMENT_LEN];
	GstClockTime min = 0, max = 0;
	gboolean live = FALSE, good = TRUE;
	GstEvent *ev;
	GstCaps *caps, *want;
	GstBuffer *buf;
	GstQuery *q;
	GstHarness *h;
	int sv[2], i;

	socket_pair(sv);
	peer_begin(&p, sv[1], TBS_ROLE_SENDER);
	h = src_harness(sv[0]);
	ok(!peer_wait(&p), "src: the session with the sender starts");
	send_caps(&p, RAW_CAPS);
	tbs_media_segment_encode(b, &seg);
	send_msg(&p, TBS_MEDIA_SEGMENT, b, sizeof(b));
	for (i = 0; i < 5; i++)
		send_seq(&p, (guint64)i, i % 2 ? TBS_MF_DELTA : 0);
	for (i = 0; i < 5; i++) {
		buf = pull(h);
		if (!buffer_is(buf, (guint64)i, 100 + i) ||
		    GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT) !=
			    (i % 2) ||
		    GST_BUFFER_DTS(buf) != GST_CLOCK_TIME_NONE ||
		    GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT) !=
			    (i == 0))
			good = FALSE;
		gst_clear_buffer(&buf);
	}
	ok(good, "src: five buffers, bytes, times, offsets and flags as sent");
	caps = gst_pad_get_current_caps(h->sinkpad);
	want = gst_caps_from_string(RAW_CAPS);
	ok(caps && gst_caps_is_equal(caps, want),
	   "src: the sender's caps on the pad");
	gst_clear_caps(&caps);
	gst_clear_caps(&want);
	while ((ev = gst_harness_try_pull_event(h)) &&
	       GST_EVENT_TYPE(ev) != GST_EVENT_SEGMENT)
		gst_event_unref(ev);
	if (ev) {
		const GstSegment *s;

		gst_event_parse_segment(ev, &s);
		ok(s->start == 2 * GST_SECOND && s->time == 4 * GST_SECOND &&
			   s->rate == 1.0 &&
			   gst_segment_to_stream_time(s, GST_FORMAT_TIME,
						      3 * GST_SECOND) ==
				   5 * GST_SECOND,
		   "src: the sender's segment, stream times kept");
	} else {
		ok(0, "src: the sender's segment, stream times kept");
	}
	gst_clear_event(&ev);
	q = gst_query_new_latency();
	gst_pad_peer_query(h->sinkpad, q);
	gst_query_parse_latency(q, &live, &min, &max);
	gst_query_unref(q);
	ok(live && min > 0, "src: live, with a measured latency (%llu us)",
	   (unsigned long long)(min / 1000));
	send_caps(&p, "video/x-raw, format=(string)GRAY8, width=(int)8, height=(int)8, framerate=(fraction)30/1");
	send_seq(&p, 5, 0);
	buf = pull(h);
	caps = gst_pad_get_current_caps(h->sinkpad);
	ok(buffer_is(buf, 5, 105) && caps &&
		   gst_structure_has_field(gst_caps_get_structure(caps, 0),
					   "width") &&
		   g_value_get_int(gst_structure_get_value(
			   gst_caps_get_structure(caps, 0), "width")) == 8,
	   "src: new caps in mid-stream come before the buffer after them");
	gst_clear_caps(&caps);
	gst_clear_buffer(&buf);
	send_eos(&p);
	ok(!tbs_session_close(p.s), "src: the end confirmed in order");
	while ((ev = gst_harness_pull_event(h)) &&
	       GST_EVENT_TYPE(ev) != GST_EVENT_EOS)
		gst_event_unref(ev);
	ok(ev != NULL, "src: the end of the stream goes downstream");
	gst_clear_event(&ev);
	tbs_session_free(p.s);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

static void test_src_keyunit_and_gaps(void)
{
	struct tbs_media_keyunit k;
	struct peer p = { 0 };
	uint8_t b[64];
	uint16_t type = 0;
	GstBuffer *buf;
	GstHarness *h;
	int sv[2], len;

	socket_pair(sv);
	peer_begin(&p, sv[1], TBS_ROLE_SENDER);
	h = src_harness(sv[0]);
	peer_wait(&p);
	send_caps(&p, RAW_CAPS);
	send_seq(&p, 0, 0);
	gst_buffer_unref(pull(h));
	gst_harness_push_upstream_event(
		h, gst_video_event_new_upstream_force_key_unit(
			   GST_CLOCK_TIME_NONE, TRUE, 2));
	len = next_msg(&p, &type, b, sizeof(b));
	ok(type == TBS_MEDIA_KEYUNIT &&
		   !tbs_media_keyunit_decode(b, (size_t)len, &k) &&
		   k.count == 2 && k.all_headers,
	   "src: a key unit request goes to the sender");
	send_seq(&p, 1, TBS_MF_DELTA);
	send_seq(&p, 3, TBS_MF_DELTA); /* 2 was dropped by the sender */
	send_seq(&p, 4, TBS_MF_DELTA);
	send_seq(&p, 5, 0);
	buf = pull(h);
	ok(buffer_is(buf, 1, 101), "src: the frame before the gap");
	gst_clear_buffer(&buf);
	buf = pull(h);
	ok(buffer_is(buf, 5, 105) &&
		   GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT),
	   "src: after the gap, delta frames dropped until a key frame, marked as a discontinuity");
	gst_clear_buffer(&buf);
	ok(get_u64(h->element, "missing") == 1,
	   "src: the frame the sender dropped is counted");
	len = next_msg(&p, &type, b, sizeof(b));
	ok(len > 0 && type == TBS_MEDIA_KEYUNIT,
	   "src: after the gap it asked the sender for a key frame");
	peer_end(&p);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

/* One hostile message: the session ends, nothing of it is pushed. */
struct hostile {
	const char *what;
	uint16_t type;
	uint8_t msg[256];
	size_t len;
};

static void make_hostile(struct hostile *x, int i)
{
	struct tbs_media_frame f = frame(1, 0, 16);
	struct tbs_media_segment s = { 0, 0.0, 1.0, 0, 0, 0, TBS_MEDIA_NONE,
				       0, 0, TBS_MEDIA_NONE };
	static const char *caps[] = {
		"video/x-raw, width=(int)[ 1, 5 ]", "not caps at all ((",
		"video/x-raw, name=(string)\"\xff\xfe\"",
	};

	memset(x, 0, sizeof(*x));
	switch (i) {
	case 0:
	case 1:
	case 2:
		x->what = caps[i];
		x->type = TBS_MEDIA_CAPS;
		x->len = tbs_media_caps_encode(x->msg, caps[i],
					       strlen(caps[i]));
		break;
	case 3:
		x->what = "a frame whose bytes do not match their hash";
		f.hash = 12345;
		x->type = TBS_MEDIA_FRAME;
		tbs_media_frame_encode(x->msg, &f);
		fill(x->msg + TBS_MEDIA_FRAME_HDR, 1, 16);
		x->len = TBS_MEDIA_FRAME_HDR + 16;
		break;
	case 4:
		x->what = "a frame that claims more bytes than it has";
		f.len = 200;
		f.hash = 1;
		x->type = TBS_MEDIA_FRAME;
		tbs_media_frame_encode(x->msg, &f);
		x->len = TBS_MEDIA_FRAME_HDR + 16;
		break;
	case 5:
		x->what = "a segment of rate 0";
		x->type = TBS_MEDIA_SEGMENT;
		x->len = tbs_media_segment_encode(x->msg, &s);
		break;
	default:
		x->what = "a message shorter than its length word";
		x->type = TBS_MEDIA_EOS;
		x->msg[0] = 2;
		x->len = 2;
	}
}

static void test_src_hostile(void)
{
	struct hostile x;
	struct peer p = { 0 };
	GstBuffer *buf;
	GstHarness *h;
	int sv[2], i, r;

	socket_pair(sv);
	peer_begin(&p, sv[1], TBS_ROLE_SENDER);
	h = src_harness(sv[0]);
	peer_wait(&p);
	for (i = 0; i < 7; i++) {
		make_hostile(&x, i);
		send_caps(&p, RAW_CAPS);
		send_msg(&p, x.type, x.msg, x.len);
		if (x.type != TBS_MEDIA_CAPS) /* a good frame after it */
			send_seq(&p, 2, 0);
		r = tbs_media_begin(p.s, &(uint16_t){ 0 },
				    &(uint32_t){ 0 }, T_MS);
		peer_end(&p);
		peer_begin(&p, sv[1], TBS_ROLE_SENDER);
		peer_wait(&p);
		send_caps(&p, RAW_CAPS);
		send_seq(&p, 0, 0);
		buf = pull(h);
		ok(r < 0 && buffer_is(buf, 0, 100) &&
			   GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT),
		   "src: %s ends the session (%d); nothing of it pushed; the next session's first frame is",
		   x.what, r);
		gst_clear_buffer(&buf);
	}
	ok(get_u64(h->element, "refused") == 7, "src: 7 messages refused");
	send_msg(&p, 0x4dff, "\x08\0\0\0abcd", 8);
	send_seq(&p, 1, 0);
	buf = pull(h);
	ok(buffer_is(buf, 1, 101), "src: a message of an unknown type is skipped");
	gst_clear_buffer(&buf);
	peer_end(&p);
	gst_harness_teardown(h);
	close(sv[0]);
	close(sv[1]);
}

/*
 * tbstreamsrc with @props (posting on @bus, if any) in a session with the
 * sender @p over a new socket pair @sv, after the sender's caps and its
 * frame 0: whether that frame came out whole.
 */
static GstHarness *src_running(struct peer *p, int sv[2], const char *props,
			       GstBus *bus, gboolean *first)
{
	GstHarness *h;
	GstBuffer *buf;

	socket_pair(sv);
	peer_begin(p, sv[1], TBS_ROLE_SENDER);
	h = gst_harness_new_with_element(element("tbstreamsrc", sv[0], props),
					 NULL, "src");
	if (bus)
		gst_element_set_bus(h->element, bus);
	gst_harness_use_systemclock(h);
	gst_harness_play(h);
	peer_wait(p);
	send_caps(p, RAW_CAPS);
	send_seq(p, 0, 0);
	buf = pull(h);
	*first = buffer_is(buf, 0, 100);
	gst_clear_buffer(&buf);
	return h;
}

/*
 * A sender that begins a message and stops inside it, yet keeps its
 * session alive: the element must still stop.  The sender pushes more
 * than both windows hold, so the receiver is known to be reading inside
 * that message (or past its EOS) when it is told to stop.
 */
#define HALF_WINDOW (512 * 1024) /* the smallest session window */
#define HALF_PUSHED (3 * 1024 * 1024)

enum half_kind { HALF_FRAME, HALF_UNKNOWN, HALF_EOS, HALF_N };

/* Sends @n bytes of a message's body as bare records (no boundary). */
static int send_body(struct peer *p, uint16_t type, size_t n)
{
	static uint8_t zero[64 * 1024];
	ssize_t r;

	for (; n; n -= (size_t)r) {
		r = tbs_session_send(p->s, type, zero,
				     n < sizeof(zero) ? n : sizeof(zero), T_MS);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static int send_half(struct peer *p, enum half_kind k)
{
	struct tbs_media_frame f = frame(1, 0, 16u << 20);
	uint8_t b[TBS_MEDIA_FRAME_HDR];
	size_t i;
	int r;

	switch (k) {
	case HALF_FRAME:
		f.hash = 1;
		tbs_media_frame_encode(b, &f);
		r = (int)tbs_session_send(p->s, TBS_MEDIA_FRAME, b, sizeof(b),
					  T_MS);
		return r < 0 ? r : send_body(p, TBS_MEDIA_FRAME, HALF_PUSHED);
	case HALF_UNKNOWN:
		memcpy(b, "\0\0\0\1", 4); /* 16 MiB */
		r = (int)tbs_session_send(p->s, 0x4dff, b, 4, T_MS);
		return r < 0 ? r : send_body(p, 0x4dff, HALF_PUSHED);
	default: /* the end, then messages after it that are skipped */
		r = send_eos(p);
		for (i = 0; !r && i < HALF_PUSHED / 4096; i++) {
			static uint8_t m[4096] = { 0, 0x10 }; /* 4096 */

			r = send_msg(p, 0x4dff, m, sizeof(m));
		}
		return r;
	}
}

struct stopper {
	GstElement *e;
	GMutex lock;
	GCond cond;
	gboolean done;
};

static gpointer stop_main(gpointer arg)
{
	struct stopper *x = arg;

	gst_element_set_state(x->e, GST_STATE_NULL);
	g_mutex_lock(&x->lock);
	x->done = TRUE;
	g_cond_signal(&x->cond);
	g_mutex_unlock(&x->lock);
	return NULL;
}

/* Sets @e to NULL in a thread: whether it got there within @ms. */
static gboolean stop_within(GstElement *e, int ms)
{
	struct stopper x = { .e = e };
	gint64 end = g_get_monotonic_time() + ms * G_TIME_SPAN_MILLISECOND;
	gboolean done;
	GThread *t;

	g_mutex_init(&x.lock);
	g_cond_init(&x.cond);
	t = g_thread_new("stop", stop_main, &x);
	g_mutex_lock(&x.lock);
	while (!x.done && g_cond_wait_until(&x.cond, &x.lock, end))
		;
	done = x.done;
	g_mutex_unlock(&x.lock);
	if (!done)
		return FALSE; /* the element hangs: t and x stay, the test ends */
	g_thread_join(t);
	g_mutex_clear(&x.lock);
	g_cond_clear(&x.cond);
	return TRUE;
}

static gboolean stop_bounded(GstElement *e)
{
	return stop_within(e, T_MS);
}

static void test_src_stop_inside(void)
{
	static const char *what[HALF_N] = {
		"half a frame", "half a message of an unknown type",
		"an end, then nothing",
	};
	struct peer p = { .window = HALF_WINDOW };
	gboolean first;
	GstHarness *h;
	int sv[2], k, r;

	for (k = 0; k < HALF_N; k++) {
		h = src_running(&p, sv, "window=524288", NULL, &first);
		r = send_half(&p, (enum half_kind)k);
		ok(first && !r, "src: the sender sent a frame, then %s (%d)",
		   what[k], r);
		if (!ok(stop_bounded(h->element),
			"src: stops while the sender, alive, sent %s",
			what[k]))
			return;
		peer_end(&p);
		gst_harness_teardown(h);
		close(sv[0]);
		close(sv[1]);
	}
}

static gpointer finish_main(gpointer arg)
{
	return GINT_TO_POINTER(tbs_session_finish(arg));
}

/*
 * The sender ended its stream and the source closes in order, but the
 * sender goes deaf (the relay stops carrying the source's records: it
 * never hears the source's END, so never confirms it), yet stays alive
 * (its keep-alives still come): the source's close would go on until its
 * retransmissions of the END run out (about 9 s), or up to the confirm
 * time-out (a minute).  Stopping the element aborts it at once: it stops
 * within STOP_CLOSING_MS (the abort waits at most 2 s for the peer).
 */
#define STOP_CLOSING_MS 6000
static void test_src_stop_closing(void)
{
	struct peer p = { .idle_ms = 120000 };
	gboolean first, stopped;
	GThread *fin;
	struct relay r;
	GstHarness *h;
	GstBuffer *buf;
	gint64 t0;

	relay_init(&r);
	relay_start(&r);
	peer_begin(&p, r.b, TBS_ROLE_SENDER);
	h = gst_harness_new_with_element(element("tbstreamsrc", r.a, ""),
					 NULL, "src");
	gst_harness_use_systemclock(h);
	gst_harness_play(h);
	peer_wait(&p);
	send_caps(&p, RAW_CAPS);
	send_seq(&p, 0, 0);
	buf = pull(h);
	first = buffer_is(buf, 0, 100);
	gst_clear_buffer(&buf);
	r.ab.freeze = true; /* the source's END and confirmation never arrive */
	ok(first && !send_eos(&p),
	   "src stopped while closing: a frame, then the end of the stream");
	fin = g_thread_new("finish", finish_main, p.s);
	g_usleep(500000); /* the source reads the end, confirms and closes */
	t0 = g_get_monotonic_time();
	stopped = stop_within(h->element, STOP_CLOSING_MS);
	diag("stopped in %" G_GINT64_FORMAT " ms",
	     (g_get_monotonic_time() - t0) / 1000);
	if (!ok(stopped,
		"src stopped while closing: the element stops (within %d s, not at the end of the close)",
		STOP_CLOSING_MS / 1000))
		return;
	tbs_session_abort(p.s, -ECONNRESET, "test peer ends");
	ok(g_thread_join(fin) != GINT_TO_POINTER(0),
	   "src stopped while closing: the sender's end was not confirmed");
	peer_end(&p);
	gst_harness_teardown(h);
	relay_stop(&r);
}

/* Whether @text is safe to print: no control, format or non-UTF-8 byte. */
static gboolean clean_text(const gchar *text)
{
	const gchar *p;

	if (!g_utf8_validate(text, -1, NULL))
		return FALSE;
	for (p = text; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x20 || (c >= 0x7f && c < 0xa0) ||
		    g_unichar_type(c) == G_UNICODE_FORMAT)
			return FALSE;
	}
	return TRUE;
}

/* What the element posts after @bus's next element message or error. */
static gchar *next_text(GstBus *bus, gboolean *error)
{
	GstMessage *m = gst_bus_timed_pop_filtered(
		bus, T_MS * GST_MSECOND,
		GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR);
	const GstStructure *st;
	GError *err = NULL;
	gchar *text = NULL;

	if (!m)
		return NULL;
	*error = GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR;
	if (*error) {
		gst_message_parse_error(m, &err, NULL);
		text = g_strdup(err->message);
		g_error_free(err);
	} else {
		st = gst_message_get_structure(m);
		text = g_strdup(gst_structure_get_string(st, "reason") ?:
				gst_structure_get_string(st, "message") ?:
						"");
	}
	gst_message_unref(m);
	return text;
}

/*
 * A peer that aborts with words that drive a terminal: what the element
 * posts (the disconnection's reason) keeps the words and loses the
 * control bytes.
 */
static void test_src_peer_words(void)
{
	static const char evil[] = "evil\x1b[2J\r\nfake line\xe2\x80\xae\xc2\x9b"
				   "31m\x7f \xc3\xa9t\xc3\xa9";
	struct peer p = { 0 };
	gboolean error = FALSE, said = FALSE, clean = TRUE, first;
	GstBus *bus = gst_bus_new();
	GstHarness *h;
	gchar *text;
	int sv[2];

	h = src_running(&p, sv, "", bus, &first);
	tbs_session_abort(p.s, -EIO, evil);
	while (!said && !error && (text = next_text(bus, &error))) {
		said = strstr(text, "peer aborted: evil") &&
		       strstr(text, "fake line") &&
		       strstr(text, "\xc3\xa9t\xc3\xa9");
		clean &= clean_text(text);
		g_free(text);
	}
	ok(first && said, "src: the peer's abort is told, its words kept");
	ok(clean, "src: no control, format or stray byte of the peer's words is posted");
	peer_end(&p);
	gst_element_set_state(h->element, GST_STATE_NULL);
	gst_harness_teardown(h);
	gst_object_unref(bus);
	close(sv[0]);
	close(sv[1]);
}

int main(int argc, char **argv)
{
	gst_init(&argc, &argv);
	signal(SIGPIPE, SIG_IGN); /* the relay writes to ends that closed */
	if (!tbs_gst_register(NULL))
		return 1;
	test_codec();
	test_sync();
	test_sink_messages();
	test_sink_keyunit();
	test_sink_no_receiver();
	test_sink_slow_receiver();
	test_sink_receiver_restart();
	test_src_stream();
	test_src_keyunit_and_gaps();
	test_src_hostile();
	test_src_stop_inside();
	test_src_stop_closing();
	test_src_peer_words();
	return tap_done();
}
