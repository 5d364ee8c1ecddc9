// SPDX-License-Identifier: MIT
/*
 * tbstream cam: the pipelines and their main loop (cam.h).
 *
 *	send: v4l2src ! image/jpeg ! tbstreamsink		(MJPEG camera)
 *	      v4l2src ! video/x-raw ! videoconvert ! jpegenc ! tbstreamsink
 *	      videotestsrc ! video/x-raw ! jpegenc ! tbstreamsink	(--test)
 *	      ... ! video/x-raw ! tbstreamsink			(--raw)
 *	recv: tbstreamsrc ! decodebin ! videoconvert ! autovideosink
 *	      tbstreamsrc ! decodebin ! videoconvert ! YUY2 ! v4l2sink
 *	      tbstreamsrc ! matroskamux ! fdsink		(--file)
 *
 * Elements are made one by one and configured through their properties,
 * so that no user string is ever parsed as a pipeline description (but
 * TBSTREAM_CAM_VIDEOSINK, which is one).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gst/gst.h>

#include "../gst/elements.h"
#include "cam.h"

struct run {
	const struct cam_args *a;
	GstElement *pipe, *tbs; /* the pipeline, its tbstream element */
	int file; /* --file: the file recorded into, or -1 */
	GMainLoop *loop;
	int status;
	bool stopping; /* a signal came: the end is clean */
	char said[TBS_MSG_MAX]; /* the last notice, not repeated */
};

int cam_register(void)
{
	GstElementFactory *f = gst_element_factory_find("tbstreamsrc");

	if (f) {
		gst_object_unref(f);
		return 0;
	}
	if (gst_plugin_register_static(GST_VERSION_MAJOR, GST_VERSION_MINOR,
				       "tbstream", "USB4STREAM media",
				       tbs_gst_register, TBS_VERSION, "MIT",
				       "tbstream", "tbstream", "tbstream"))
		return 0;
	cli_msg("could not register the GStreamer elements tbstreamsink and tbstreamsrc");
	return EXIT_FAIL;
}

/* Makes element @factory into the pipeline; NULL (said) when missing. */
static GstElement *make(struct run *r, const char *factory)
{
	GstElement *e = gst_element_factory_make(factory, NULL);

	if (!e) {
		cli_msg("the GStreamer element '%s' is missing: install gstreamer1.0-plugins-base and gstreamer1.0-plugins-good",
			factory);
		return NULL;
	}
	gst_bin_add(GST_BIN(r->pipe), e);
	return e;
}

GstCaps *cam_caps_new(const struct cam_args *a, const char *media)
{
	GstCaps *caps = gst_caps_new_empty_simple(media);

	if (a->width)
		gst_caps_set_simple(caps, "width", G_TYPE_INT, a->width,
				    "height", G_TYPE_INT, a->height, NULL);
	if (a->fps)
		gst_caps_set_simple(caps, "framerate", GST_TYPE_FRACTION,
				    a->fps, 1, NULL);
	return caps;
}

static GstElement *make_caps(struct run *r, const char *media)
{
	GstElement *e = make(r, "capsfilter");
	GstCaps *caps = cam_caps_new(r->a, media);

	if (e)
		g_object_set(e, "caps", caps, NULL);
	gst_caps_unref(caps);
	return e;
}

/* The stream's element, configured from the common options. */
static GstElement *make_tbs(struct run *r, const char *factory)
{
	const struct cam_args *a = r->a;
	GstElement *e = make(r, factory);

	if (e)
		g_object_set(e, "stream", a->stream, "peer", a->peer,
			     "sysroot", a->root, "timeout", (guint)a->timeout,
			     "transport", a->transport, NULL);
	r->tbs = e;
	return e;
}

static bool link_all(GstElement **e, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!e[i])
			return false;
	for (i = 0; i + 1 < n; i++)
		if (!gst_element_link(e[i], e[i + 1])) {
			cli_msg("could not link %s to %s", GST_ELEMENT_NAME(e[i]),
				GST_ELEMENT_NAME(e[i + 1]));
			return false;
		}
	return true;
}

/* The camera to use; 0 or an exit status. */
static int pick_camera(const struct cam_args *a, char *dev, size_t len)
{
	struct stat st;

	if (!a->device) {
		if (cam_first(dev, len))
			return 0;
		cli_msg("no camera found: connect one, name its device (tbstream cam send /dev/videoN), or send a test pattern (--test)");
		return EXIT_MISSING;
	}
	if (stat(a->device, &st)) {
		cli_msg("no camera at '%s': %s", a->device, strerror(errno));
		return EXIT_MISSING;
	}
	snprintf(dev, len, "%s", a->device);
	return 0;
}

static int build_send(struct run *r)
{
	const struct cam_args *a = r->a;
	GstElement *e[6];
	char dev[4096];
	bool mjpeg = false;
	int n = 0, st;

	if (a->test) {
		e[n] = make(r, "videotestsrc");
		if (e[n])
			g_object_set(e[n], "is-live", TRUE, "pattern", 18, NULL);
	} else {
		st = pick_camera(a, dev, sizeof(dev));
		if (st)
			return st;
		mjpeg = !a->raw && cam_has_mjpeg(dev, a);
		e[n] = make(r, "v4l2src");
		if (e[n])
			g_object_set(e[n], "device", dev, NULL);
	}
	if (e[n] && a->frames)
		g_object_set(e[n], "num-buffers", (gint)a->frames, NULL);
	n++;
	e[n++] = make_caps(r, mjpeg ? "image/jpeg" : "video/x-raw");
	if (!mjpeg && !a->raw) {
		e[n++] = make(r, "videoconvert");
		e[n++] = make(r, "jpegenc");
	}
	e[n++] = make_tbs(r, "tbstreamsink");
	if (!a->quiet)
		cli_msg("sending %s%s as %s on stream '%s'",
			a->test ? "a test pattern" : "camera ",
			a->test ? "" : dev,
			mjpeg ? "MJPEG from the camera" :
			a->raw ? "raw video" : "JPEG",
			a->stream);
	return link_all(e, n) ? 0 : EXIT_FAIL;
}

static void on_pad(GstElement *dec, GstPad *pad, gpointer next)
{
	GstPad *sink = gst_element_get_static_pad(next, "sink");

	if (!gst_pad_is_linked(sink))
		gst_pad_link(pad, sink);
	gst_object_unref(sink);
}

/* The window's sink: TBSTREAM_CAM_VIDEOSINK or autovideosink. */
static GstElement *make_window(struct run *r)
{
	const char *desc = getenv("TBSTREAM_CAM_VIDEOSINK");
	GError *err = NULL;
	GstElement *e;

	if (!desc || !desc[0])
		return make(r, "autovideosink");
	e = gst_parse_bin_from_description(desc, TRUE, &err);
	if (!e) {
		cli_msg("TBSTREAM_CAM_VIDEOSINK '%s': %s", desc, err->message);
		g_error_free(err);
		return NULL;
	}
	gst_bin_add(GST_BIN(r->pipe), e);
	return e;
}

/* tbstreamsrc ! decodebin ! videoconvert [! caps] ! @out */
static bool build_decode(struct run *r, GstElement *src, GstElement *out,
			 bool yuy2)
{
	GstElement *dec = make(r, "decodebin");
	GstElement *conv = make(r, "videoconvert");
	GstElement *e[3] = { conv, out, NULL };
	GstCaps *caps;
	int n = 2;

	if (!src || !dec || !conv || !out || !gst_element_link(src, dec))
		return false;
	if (yuy2) {
		e[1] = make(r, "capsfilter");
		e[2] = out;
		n = 3;
		caps = gst_caps_from_string("video/x-raw, format=YUY2");
		if (e[1])
			g_object_set(e[1], "caps", caps, NULL);
		gst_caps_unref(caps);
	}
	g_signal_connect(dec, "pad-added", G_CALLBACK(on_pad), conv);
	return link_all(e, n);
}

/* Whether @base can name a file in a directory. */
static bool file_name(const char *path, const char *base)
{
	size_t n = strlen(path);

	return n && path[n - 1] != '/' && strcmp(base, ".") &&
	       strcmp(base, "..");
}

/*
 * Creates the file to record into, itself rather than through filesink:
 * relative to its directory, with O_EXCL and O_NOFOLLOW, so that neither a
 * link planted at its name nor a file that appears there meanwhile is ever
 * written through.  --overwrite removes the name first (a link itself,
 * never what it points to).  0 (*@fd set) or an exit status, said.
 */
static int file_create(const char *path, bool overwrite, int *fd)
{
	char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
	int dfd = -1, st = EXIT_FAIL;

	if (!file_name(path, base)) {
		cli_msg("'%s' names a directory: name the file to record into", path);
		goto out;
	}
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		cli_msg("could not open the directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (overwrite && unlinkat(dfd, base, 0) && errno != ENOENT) {
		cli_msg("could not replace '%s': %s", path, strerror(errno));
		goto out;
	}
	*fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			       O_CLOEXEC, 0666);
	if (*fd >= 0)
		st = 0;
	else if (errno == EEXIST)
		cli_msg("'%s' exists: use --overwrite to replace it", path);
	else
		cli_msg("could not create '%s': %s", path, strerror(errno));
out:
	if (dfd >= 0)
		close(dfd);
	g_free(dir);
	g_free(base);
	return st;
}

static int build_recv(struct run *r)
{
	const struct cam_args *a = r->a;
	GstElement *src = make_tbs(r, "tbstreamsrc"), *out, *e[3];
	int st;

	if (a->out == CAM_FILE) {
		st = file_create(a->target, a->overwrite, &r->file);
		if (st)
			return st;
		e[0] = src;
		e[1] = make(r, "matroskamux");
		e[2] = make(r, "fdsink");
		if (e[2])
			g_object_set(e[2], "fd", r->file, NULL);
		return link_all(e, 3) ? 0 : EXIT_FAIL;
	}
	if (a->out == CAM_V4L2) {
		st = cam_v4l2_check(a->target);
		if (st)
			return st;
		out = make(r, "v4l2sink");
		if (out)
			g_object_set(out, "device", a->target, NULL);
	} else {
		out = make_window(r);
	}
	return build_decode(r, src, out, a->out == CAM_V4L2) ? 0 : EXIT_FAIL;
}

/* Says @msg once (unless --quiet), not again while it is the same. */
static void notice(struct run *r, const char *msg)
{
	if (r->a->quiet || !strcmp(r->said, msg))
		return;
	snprintf(r->said, sizeof(r->said), "%s", msg);
	cli_msg("%s", msg);
}

static void on_element(struct run *r, GstMessage *m)
{
	const GstStructure *s = gst_message_get_structure(m);
	const char *peer = r->a->send ? "receiver" : "sender";
	char buf[TBS_MSG_MAX];
	const char *text;

	if (!s || GST_MESSAGE_SRC(m) != GST_OBJECT(r->tbs))
		return;
	if (gst_structure_has_name(s, "tbstream-waiting") &&
	    (text = gst_structure_get_string(s, "message"))) {
		/* the transport's choice is news, not a wait */
		snprintf(buf, sizeof(buf), "%s%s",
			 strncmp(text, "transport: ", 11) ? "waiting: " : "",
			 text);
		notice(r, buf);
	} else if (gst_structure_has_name(s, "tbstream-connected")) {
		snprintf(buf, sizeof(buf), "the %s is connected", peer);
		notice(r, buf);
	} else if (gst_structure_has_name(s, "tbstream-disconnected") &&
		   (text = gst_structure_get_string(s, "reason"))) {
		snprintf(buf, sizeof(buf), "the %s went away (%s): waiting for it to come back",
			 peer, text);
		notice(r, buf);
	}
}

static void on_error(struct run *r, GstMessage *m)
{
	const GstStructure *d = NULL;
	GError *err = NULL;
	int code = 0;

	gst_message_parse_error(m, &err, NULL);
	gst_message_parse_error_details(m, &d);
	if (d && gst_structure_get_int(d, "errno", &code) && code > 0)
		r->status = cli_exit_status(-code);
	else if (err && err->domain == GST_RESOURCE_ERROR &&
		 err->code == GST_RESOURCE_ERROR_NOT_FOUND)
		r->status = EXIT_MISSING;
	else
		r->status = EXIT_FAIL;
	cli_msg("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
		err ? err->message : "failed");
	g_clear_error(&err);
	g_main_loop_quit(r->loop);
}

/*
 * A warning of the sender stopped while its receiver had not confirmed
 * the end of the stream: frames may be lost, the run failed.
 */
static bool unconfirmed(GstMessage *m)
{
	const GstStructure *d = NULL;

	gst_message_parse_warning_details(m, &d);
	return d && gst_structure_has_field(d, "unconfirmed-bytes");
}

static gboolean on_bus(GstBus *bus, GstMessage *m, gpointer data)
{
	struct run *r = data;
	GError *err = NULL;

	switch (GST_MESSAGE_TYPE(m)) {
	case GST_MESSAGE_ERROR:
		if (r->status == EXIT_OK)
			on_error(r, m);
		break;
	case GST_MESSAGE_WARNING:
		gst_message_parse_warning(m, &err, NULL);
		if (!r->a->quiet || unconfirmed(m))
			cli_msg("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
				err->message);
		if (unconfirmed(m) && r->status == EXIT_OK)
			r->status = EXIT_FAIL;
		g_clear_error(&err);
		break;
	case GST_MESSAGE_EOS:
		g_main_loop_quit(r->loop);
		break;
	case GST_MESSAGE_ELEMENT:
		on_element(r, m);
		break;
	default:
		break;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean on_timeout(gpointer data)
{
	g_main_loop_quit(((struct run *)data)->loop);
	return G_SOURCE_REMOVE;
}

/*
 * A signal ends the run cleanly: a file gets the end of its stream first
 * (a few seconds at most); a second signal stops at once.
 */
static gboolean on_signal(gpointer data)
{
	struct run *r = data;

	if (r->stopping || r->a->out != CAM_FILE) {
		r->stopping = true;
		g_main_loop_quit(r->loop);
		return G_SOURCE_CONTINUE;
	}
	r->stopping = true;
	gst_element_send_event(r->pipe, gst_event_new_eos());
	g_timeout_add_seconds(5, on_timeout, r);
	return G_SOURCE_CONTINUE;
}

static void summary(struct run *r)
{
	guint64 a = 0, b = 0, c = 0;

	if (r->a->send)
		g_object_get(r->tbs, "sent", &a, "dropped", &b, NULL);
	else
		g_object_get(r->tbs, "received", &a, "missing", &b, "refused",
			     &c, NULL);
	if (r->a->json && r->a->send)
		printf("{\"frames_sent\": %" G_GUINT64_FORMAT
		       ", \"frames_dropped\": %" G_GUINT64_FORMAT
		       ", \"status\": %d}\n", a, b, r->status);
	else if (r->a->json)
		printf("{\"frames_received\": %" G_GUINT64_FORMAT
		       ", \"frames_missing\": %" G_GUINT64_FORMAT
		       ", \"messages_refused\": %" G_GUINT64_FORMAT
		       ", \"status\": %d}\n", a, b, c, r->status);
	else if (!r->a->quiet && r->a->send)
		cli_msg("%" G_GUINT64_FORMAT " frames sent, %" G_GUINT64_FORMAT
			" dropped", a, b);
	else if (!r->a->quiet)
		cli_msg("%" G_GUINT64_FORMAT " frames received", a);
}

static int run_loop(struct run *r)
{
	GstBus *bus = gst_element_get_bus(r->pipe);
	bool failed = false;
	GstMessage *m;
	guint sig[3];

	gst_bus_add_watch(bus, on_bus, r);
	sig[0] = g_unix_signal_add(SIGINT, on_signal, r);
	sig[1] = g_unix_signal_add(SIGTERM, on_signal, r);
	sig[2] = g_unix_signal_add(SIGHUP, on_signal, r);
	if (gst_element_set_state(r->pipe, GST_STATE_PLAYING) ==
	    GST_STATE_CHANGE_FAILURE)
		failed = true; /* the bus says why */
	else
		g_main_loop_run(r->loop);
	gst_element_set_state(r->pipe, GST_STATE_NULL);
	/*
	 * Once it ran, what came after the loop is not news, but for frames
	 * that may be lost; if it never started, the bus says why.
	 */
	while ((m = gst_bus_pop(bus))) {
		if (failed || (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING &&
			       unconfirmed(m)))
			on_bus(bus, m, r);
		gst_message_unref(m);
	}
	if (failed && r->status == EXIT_OK)
		r->status = EXIT_FAIL;
	g_source_remove(sig[0]);
	g_source_remove(sig[1]);
	g_source_remove(sig[2]);
	gst_bus_remove_watch(bus);
	gst_object_unref(bus);
	summary(r);
	return r->status;
}

int cam_run(const struct cam_args *a)
{
	struct run r = { .a = a, .file = -1, .status = EXIT_OK };
	int st;

	r.pipe = gst_pipeline_new("cam");
	/* what the elements say while they stop is read after the stop */
	gst_pipeline_set_auto_flush_bus(GST_PIPELINE(r.pipe), FALSE);
	r.loop = g_main_loop_new(NULL, FALSE);
	st = a->send ? build_send(&r) : build_recv(&r);
	if (!st)
		st = run_loop(&r);
	gst_element_set_state(r.pipe, GST_STATE_NULL);
	gst_object_unref(r.pipe);
	g_main_loop_unref(r.loop);
	if (r.file >= 0 && close(r.file) && !st) {
		cli_msg("could not write '%s': %s", a->target, strerror(errno));
		st = EXIT_FAIL;
	}
	return st;
}
