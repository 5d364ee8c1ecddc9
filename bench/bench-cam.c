// SPDX-License-Identifier: MIT
/*
 * bench-cam: frames of a camera's size and rate over one stream, through
 * tbstreamsink/tbstreamsrc or through filesink/filesrc on the raw device,
 * and the latency each frame adds.
 *
 *   bench-cam send tbs ROOT FORMAT SECONDS	appsrc ! tbstreamsink
 *   bench-cam send raw DEVICE FORMAT SECONDS	appsrc ! filesink
 *   bench-cam recv tbs ROOT OUT		tbstreamsrc ! appsink
 *   bench-cam recv raw DEVICE OUT		filesrc ! appsink
 *
 * FORMAT: mjpeg1080 (1920x1080 JPEG frames from videotestsrc, 30 fps) or
 * raw4k (3840x2160 RGB, 30 fps, ~750 MB/s).  The sender paces frames as a
 * camera would and writes each frame's send time (CLOCK_MONOTONIC) into
 * its first bytes; both ways carry exactly the same bytes, each frame
 * padded to a multiple of filesrc's 4 KiB block so that the raw way never
 * waits for the next frame.  The receiver writes one line per frame to
 * OUT: sequence number and latency in ns (arrival minus send time; the
 * two processes share the clock on one machine), and on standard output
 * the frames it got.  The sender prints the frames it sent and dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#define MAGIC 0x46434254u /* "TBCF" */
#define HDR 24 /* magic, seq, padded length, send time, payload length */
#define BLOCK 4096
#define FPS 30

struct tpl {
	guint8 *data; /* HDR + payload, padded */
	gsize len;
};

struct frames {
	GArray *tpl; /* of struct tpl */
	gsize size; /* the largest */
};

static guint64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (guint64)ts.tv_sec * 1000000000ull + (guint64)ts.tv_nsec;
}

static gsize padded(gsize n)
{
	return (n + HDR + BLOCK - 1) / BLOCK * BLOCK;
}

/* A pipeline from @desc, or exit with why not. */
static GstElement *launch(const char *desc)
{
	GError *err = NULL;
	GstElement *p = gst_parse_launch(desc, &err);

	if (!p || err) {
		fprintf(stderr, "bench-cam: %s: %s\n", desc,
			err ? err->message : "failed");
		exit(1);
	}
	return p;
}

/* Encodes @n frames with @desc ("... ! appsink name=s"), as templates. */
static void make_frames(struct frames *f, const char *desc, int n)
{
	GstElement *p = launch(desc);
	GstElement *s = gst_bin_get_by_name(GST_BIN(p), "s");
	GstSample *smp;
	GstMapInfo m;
	struct tpl t;

	f->tpl = g_array_new(FALSE, FALSE, sizeof(struct tpl));
	gst_element_set_state(p, GST_STATE_PLAYING);
	while (n-- && (smp = gst_app_sink_pull_sample(GST_APP_SINK(s)))) {
		gst_buffer_map(gst_sample_get_buffer(smp), &m, GST_MAP_READ);
		t.len = padded(m.size);
		t.data = g_malloc0(t.len);
		memcpy(t.data + HDR, m.data, m.size);
		memcpy(t.data + 20, &(guint32){ (guint32)m.size }, 4);
		g_array_append_val(f->tpl, t);
		if (t.len > f->size)
			f->size = t.len;
		gst_buffer_unmap(gst_sample_get_buffer(smp), &m);
		gst_sample_unref(smp);
	}
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(s);
	gst_object_unref(p);
}

static const char *format_desc(const char *format)
{
	if (!strcmp(format, "raw4k"))
		return "videotestsrc pattern=ball num-buffers=4 ! video/x-raw,format=RGB,width=3840,height=2160 ! appsink name=s sync=false";
	return "videotestsrc pattern=smpte horizontal-speed=8 num-buffers=30 ! video/x-raw,width=1920,height=1080 ! jpegenc quality=85 ! appsink name=s sync=false";
}

static GstElement *send_pipeline(const char *mode, const char *where,
				 const char *format, GstElement **src)
{
	GstElement *p, *sink;
	GstCaps *caps;

	if (!strcmp(mode, "tbs")) {
		p = launch("appsrc name=a is-live=true format=time ! tbstreamsink name=k stream=cam");
		sink = gst_bin_get_by_name(GST_BIN(p), "k");
		g_object_set(sink, "sysroot", where, NULL);
	} else {
		p = launch("appsrc name=a is-live=true format=time ! filesink name=k sync=false buffer-mode=unbuffered");
		sink = gst_bin_get_by_name(GST_BIN(p), "k");
		g_object_set(sink, "location", where, NULL);
	}
	gst_object_unref(sink);
	*src = gst_bin_get_by_name(GST_BIN(p), "a");
	caps = gst_caps_from_string(strcmp(format, "raw4k") ?
		"image/jpeg, width=1920, height=1080, framerate=30/1" :
		"video/x-raw, format=RGB, width=3840, height=2160, framerate=30/1");
	g_object_set(*src, "caps", caps, NULL);
	gst_caps_unref(caps);
	return p;
}

/* Pushes frame @i of @f, stamped now, at its time. */
static void push(GstElement *src, struct frames *f, guint32 i,
		 guint64 start)
{
	struct tpl *t = &g_array_index(f->tpl, struct tpl, i % f->tpl->len);
	gsize len = t->len;
	guint64 due = start + (guint64)i * 1000000000ull / FPS, sent;
	struct timespec ts = { (time_t)(due / 1000000000ull),
			       (long)(due % 1000000000ull) };
	GstBuffer *b = gst_buffer_new_allocate(NULL, len, NULL);
	GstMapInfo m;

	gst_buffer_map(b, &m, GST_MAP_WRITE);
	memcpy(m.data, t->data, len);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
	sent = now_ns();
	memcpy(m.data, &(guint32){ MAGIC }, 4);
	memcpy(m.data + 4, &i, 4);
	memcpy(m.data + 8, &(guint32){ (guint32)len }, 4);
	memcpy(m.data + 12, &sent, 8);
	gst_buffer_unmap(b, &m);
	GST_BUFFER_PTS(b) = (guint64)i * GST_SECOND / FPS;
	GST_BUFFER_DURATION(b) = GST_SECOND / FPS;
	gst_app_src_push_buffer(GST_APP_SRC(src), b);
}

static int do_send(const char *mode, const char *where, const char *format,
		   int seconds)
{
	struct frames f = { 0 };
	GstElement *src, *p, *k;
	guint64 start, sent = 0, dropped = 0;
	guint32 i, n = (guint32)(seconds * FPS);
	GstMessage *msg;

	make_frames(&f, format_desc(format), strcmp(format, "raw4k") ? 30 : 2);
	p = send_pipeline(mode, where, format, &src);
	gst_element_set_state(p, GST_STATE_PLAYING);
	start = now_ns() + 200000000ull;
	for (i = 0; i < n; i++)
		push(src, &f, i, start);
	gst_app_src_end_of_stream(GST_APP_SRC(src));
	msg = gst_bus_timed_pop_filtered(gst_element_get_bus(p),
					 30 * GST_SECOND,
					 GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
	k = gst_bin_get_by_name(GST_BIN(p), "k");
	if (!strcmp(mode, "tbs"))
		g_object_get(k, "sent", &sent, "dropped", &dropped, NULL);
	else
		sent = n;
	printf("sent %" G_GUINT64_FORMAT " dropped %" G_GUINT64_FORMAT
	       " bytes_per_frame %" G_GSIZE_FORMAT "\n",
	       sent, dropped, f.size);
	if (msg)
		gst_message_unref(msg);
	gst_object_unref(k);
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(src);
	gst_object_unref(p);
	for (i = 0; i < f.tpl->len; i++)
		g_free(g_array_index(f.tpl, struct tpl, i).data);
	g_array_unref(f.tpl);
	return 0;
}

/* Reassembles frames from buffers of any size; one line per frame. */
struct asm_state {
	guint8 hdr[HDR];
	gsize have, left; /* header bytes held; bytes of the frame to come */
	guint32 seq;
	guint64 sent;
	guint64 frames;
	FILE *out;
};

static void feed(struct asm_state *a, const guint8 *p, gsize n)
{
	gsize k;

	while (n) {
		if (a->left == 0) {
			k = MIN(n, HDR - a->have);
			memcpy(a->hdr + a->have, p, k);
			a->have += k;
			p += k;
			n -= k;
			if (a->have < HDR)
				return;
			memcpy(&a->seq, a->hdr + 4, 4);
			memcpy(&a->left, a->hdr + 8, 4);
			a->left = a->left > HDR ? a->left - HDR : 1;
			memcpy(&a->sent, a->hdr + 12, 8);
			a->have = 0;
			continue;
		}
		k = MIN(n, a->left);
		a->left -= k;
		p += k;
		n -= k;
		if (!a->left) {
			fprintf(a->out, "%u %" G_GUINT64_FORMAT "\n", a->seq,
				now_ns() - a->sent);
			a->frames++;
		}
	}
}

static int do_recv(const char *mode, const char *where, const char *out)
{
	struct asm_state a = { .out = fopen(out, "w") };
	GstElement *p, *src, *sink;
	GstSample *smp;
	GstMapInfo m;

	if (!strcmp(mode, "tbs")) {
		p = launch("tbstreamsrc name=r stream=cam timeout=60 ! appsink name=s sync=false max-buffers=0");
		src = gst_bin_get_by_name(GST_BIN(p), "r");
		g_object_set(src, "sysroot", where, NULL);
	} else {
		p = launch("filesrc name=r blocksize=4096 ! appsink name=s sync=false max-buffers=0");
		src = gst_bin_get_by_name(GST_BIN(p), "r");
		g_object_set(src, "location", where, NULL);
	}
	sink = gst_bin_get_by_name(GST_BIN(p), "s");
	gst_element_set_state(p, GST_STATE_PLAYING);
	while ((smp = gst_app_sink_try_pull_sample(GST_APP_SINK(sink),
						   (a.frames ? 3 : 60) *
							   GST_SECOND))) {
		gst_buffer_map(gst_sample_get_buffer(smp), &m, GST_MAP_READ);
		feed(&a, m.data, m.size);
		gst_buffer_unmap(gst_sample_get_buffer(smp), &m);
		gst_sample_unref(smp);
	}
	printf("received %" G_GUINT64_FORMAT "\n", a.frames);
	fclose(a.out);
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(src);
	gst_object_unref(sink);
	gst_object_unref(p);
	return 0;
}

int main(int argc, char **argv)
{
	gst_init(&argc, &argv);
	if (argc == 6 && !strcmp(argv[1], "send"))
		return do_send(argv[2], argv[3], argv[4],
			       (int)strtol(argv[5], NULL, 10));
	if (argc == 5 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: bench-cam send tbs|raw ROOT|DEVICE mjpeg1080|raw4k SECONDS\n"
			"       bench-cam recv tbs|raw ROOT|DEVICE OUT\n");
	return 2;
}
