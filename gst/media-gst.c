// SPDX-License-Identifier: MIT
/*
 * The GStreamer side that tbstreamsink and tbstreamsrc share
 * (media-gst.h): where the stream is, and how buffers, segments and
 * failures map onto the media messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "media-gst.h"

GST_DEBUG_CATEGORY(tbs_media_debug);
#define GST_CAT_DEFAULT tbs_media_debug

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | \
	    GST_PARAM_MUTABLE_READY)

void tbs_gst_install_where(GObjectClass *k, const gchar *role)
{
	g_object_class_install_property(k, TBS_PROP_STREAM,
		g_param_spec_string("stream", "Stream",
			"Name of the stream, 1 to 8 bytes; the element on the other host uses the same name",
			"cam", RW));
	g_object_class_install_property(k, TBS_PROP_PEER,
		g_param_spec_string("peer", "Peer",
			"The peer: its unique id, device name or route (default: the only peer connected)",
			NULL, RW));
	g_object_class_install_property(k, TBS_PROP_SYSROOT,
		g_param_spec_string("sysroot", "System root",
			"System root: / on a real machine, a tbsim host directory in tests (default: $TBSTREAM_SYSROOT, else /)",
			NULL, RW));
	g_object_class_install_property(k, TBS_PROP_TIMEOUT,
		g_param_spec_uint("timeout", "Time-out",
			"Seconds to wait for the peer, at the start and whenever it went away, before failing with an error (0: wait for ever)",
			0, 86400, 0, RW));
	g_object_class_install_property(k, TBS_PROP_FD,
		g_param_spec_int("fd", "Descriptor",
			"An open descriptor to run the session on instead of a stream (a socket, or a /dev/tbstreamX the caller opened); -1: bring the stream up and open it",
			-1, G_MAXINT, -1, RW));
	g_object_class_install_property(k, TBS_PROP_WINDOW,
		g_param_spec_uint64("window", "Window",
			"Bytes of the session's window (0: the session's default of 4 MiB; frames larger than the window go out piece by piece)",
			0, G_GUINT64_CONSTANT(1) << 30, 0, RW));
	g_object_class_install_property(k, TBS_PROP_TRANSPORT,
		g_param_spec_string("transport", "Transport",
			"stream (USB4STREAM), net (TCP over IP over Thunderbolt) or auto: the stream when both hosts have its driver, else the network; the same on both hosts",
			"auto", RW));
	g_object_class_install_property(k, TBS_PROP_CONNECTED,
		g_param_spec_boolean("connected", "Connected",
			role, FALSE,
			G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

void tbs_gst_where_init(struct tbs_gst_where *w)
{
	w->stream = g_strdup("cam");
	w->peer = NULL;
	w->sysroot = NULL;
	w->timeout = 0;
	w->fd = -1;
	w->window = 0;
	w->transport = TBS_TRANSPORT_AUTO;
	w->connected = FALSE;
}

void tbs_gst_where_clear(struct tbs_gst_where *w)
{
	g_clear_pointer(&w->stream, g_free);
	g_clear_pointer(&w->peer, g_free);
	g_clear_pointer(&w->sysroot, g_free);
}

static const gchar *const transports[] = {
	[TBS_TRANSPORT_AUTO] = "auto",
	[TBS_TRANSPORT_STREAM] = "stream",
	[TBS_TRANSPORT_NET] = "net",
};

/* A transport by name; a name that is none of them is refused. */
static void set_transport(GObject *o, struct tbs_gst_where *w,
			  const GValue *v)
{
	const gchar *s = g_value_get_string(v);
	guint i;

	for (i = 0; i < G_N_ELEMENTS(transports); i++)
		if (!g_strcmp0(s, transports[i])) {
			GST_OBJECT_LOCK(o);
			w->transport = (gint)i;
			GST_OBJECT_UNLOCK(o);
			return;
		}
	g_warning("transport '%s': stream, net or auto", s ? s : "(null)");
}

static void set_str(GObject *o, gchar **dst, const GValue *v)
{
	GST_OBJECT_LOCK(o);
	g_free(*dst);
	*dst = g_value_dup_string(v);
	GST_OBJECT_UNLOCK(o);
}

gboolean tbs_gst_where_set(GObject *o, struct tbs_gst_where *w, guint id,
			   const GValue *v)
{
	switch (id) {
	case TBS_PROP_STREAM:
		set_str(o, &w->stream, v);
		break;
	case TBS_PROP_PEER:
		set_str(o, &w->peer, v);
		break;
	case TBS_PROP_SYSROOT:
		set_str(o, &w->sysroot, v);
		break;
	case TBS_PROP_TIMEOUT:
		w->timeout = g_value_get_uint(v);
		break;
	case TBS_PROP_FD:
		w->fd = g_value_get_int(v);
		break;
	case TBS_PROP_WINDOW:
		w->window = g_value_get_uint64(v);
		break;
	case TBS_PROP_TRANSPORT:
		set_transport(o, w, v);
		break;
	default:
		return FALSE;
	}
	return TRUE;
}

gboolean tbs_gst_where_get(GObject *o, struct tbs_gst_where *w, guint id,
			   GValue *v)
{
	GST_OBJECT_LOCK(o);
	switch (id) {
	case TBS_PROP_STREAM:
		g_value_set_string(v, w->stream);
		break;
	case TBS_PROP_PEER:
		g_value_set_string(v, w->peer);
		break;
	case TBS_PROP_SYSROOT:
		g_value_set_string(v, w->sysroot);
		break;
	case TBS_PROP_TIMEOUT:
		g_value_set_uint(v, w->timeout);
		break;
	case TBS_PROP_FD:
		g_value_set_int(v, w->fd);
		break;
	case TBS_PROP_WINDOW:
		g_value_set_uint64(v, w->window);
		break;
	case TBS_PROP_CONNECTED:
		g_value_set_boolean(v, w->connected);
		break;
	case TBS_PROP_TRANSPORT:
		g_value_set_string(v, transports[w->transport]);
		break;
	default:
		GST_OBJECT_UNLOCK(o);
		return FALSE;
	}
	GST_OBJECT_UNLOCK(o);
	return TRUE;
}

void tbs_gst_where_connected(GstElement *e, struct tbs_gst_where *w,
			     gboolean on)
{
	GST_OBJECT_LOCK(e);
	w->connected = on;
	GST_OBJECT_UNLOCK(e);
}

/* The link configuration (strings borrowed from @w; copied by the link). */
static void link_cfg(const struct tbs_gst_where *w, int role,
		     struct tbs_link_cfg *cfg)
{
	const gchar *env = g_getenv("TBSTREAM_SYSROOT");

	cfg->root = w->sysroot && w->sysroot[0] ? w->sysroot :
		    env && env[0]		      ? env :
						      "/";
	cfg->stream = w->stream && w->stream[0] ? w->stream : "cam";
	cfg->peer = w->peer && w->peer[0] ? w->peer : NULL;
	cfg->fd = w->fd;
	cfg->timeout_ms = (int)w->timeout * 1000;
	cfg->window = (size_t)w->window;
	cfg->role = role;
	cfg->transport = w->transport;
}

gboolean tbs_gst_link_init(GstElement *e, struct tbs_gst_where *w, int role,
			   struct tbs_link *link)
{
	struct tbs_link_cfg cfg;
	int r;

	GST_OBJECT_LOCK(e);
	link_cfg(w, role, &cfg);
	r = tbs_link_init(link, &cfg, tbs_gst_link_notify, e);
	GST_OBJECT_UNLOCK(e);
	return r ? tbs_gst_setup_failed(e, r) : TRUE;
}

gboolean tbs_gst_setup_failed(GstElement *e, int code)
{
	GST_ELEMENT_ERROR(e, RESOURCE, FAILED, (NULL),
			  ("could not set up: %s", g_strerror(-code)));
	return FALSE;
}

static const struct {
	GstBufferFlags gst;
	guint32 wire;
} flag_map[] = {
	{ GST_BUFFER_FLAG_DELTA_UNIT, TBS_MF_DELTA },
	{ GST_BUFFER_FLAG_DISCONT, TBS_MF_DISCONT },
	{ GST_BUFFER_FLAG_HEADER, TBS_MF_HEADER },
	{ GST_BUFFER_FLAG_GAP, TBS_MF_GAP },
	{ GST_BUFFER_FLAG_DROPPABLE, TBS_MF_DROPPABLE },
	{ GST_BUFFER_FLAG_MARKER, TBS_MF_MARKER },
	{ GST_BUFFER_FLAG_DECODE_ONLY, TBS_MF_DECODE_ONLY },
	{ GST_BUFFER_FLAG_RESYNC, TBS_MF_RESYNC },
	{ GST_BUFFER_FLAG_LIVE, TBS_MF_LIVE },
	{ GST_BUFFER_FLAG_NON_DROPPABLE, TBS_MF_NON_DROPPABLE },
	{ GST_BUFFER_FLAG_SYNC_AFTER, TBS_MF_SYNC_AFTER },
	{ GST_BUFFER_FLAG_CORRUPTED, TBS_MF_CORRUPTED },
};

void tbs_gst_frame_from_buffer(GstBuffer *b, struct tbs_media_frame *f)
{
	guint i;

	f->flags = 0;
	for (i = 0; i < G_N_ELEMENTS(flag_map); i++)
		if (GST_BUFFER_FLAG_IS_SET(b, flag_map[i].gst))
			f->flags |= flag_map[i].wire;
	f->pts = GST_BUFFER_PTS(b);
	f->dts = GST_BUFFER_DTS(b);
	f->duration = GST_BUFFER_DURATION(b);
	f->offset = GST_BUFFER_OFFSET(b);
	f->offset_end = GST_BUFFER_OFFSET_END(b);
	f->len = gst_buffer_get_size(b);
}

void tbs_gst_frame_to_buffer(const struct tbs_media_frame *f, GstBuffer *b)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(flag_map); i++)
		if (f->flags & flag_map[i].wire)
			GST_BUFFER_FLAG_SET(b, flag_map[i].gst);
	GST_BUFFER_PTS(b) = f->pts;
	GST_BUFFER_DTS(b) = f->dts;
	GST_BUFFER_DURATION(b) = f->duration;
	GST_BUFFER_OFFSET(b) = f->offset;
	GST_BUFFER_OFFSET_END(b) = f->offset_end;
}

gboolean tbs_gst_segment_to_wire(const GstSegment *seg,
				 struct tbs_media_segment *w)
{
	if (seg->format != GST_FORMAT_TIME)
		return FALSE;
	w->flags = seg->flags;
	w->rate = seg->rate;
	w->applied_rate = seg->applied_rate;
	w->base = seg->base;
	w->offset = seg->offset;
	w->start = seg->start;
	w->stop = seg->stop;
	w->time = seg->time;
	w->position = seg->position;
	w->duration = seg->duration;
	return TRUE;
}

void tbs_gst_segment_from_wire(const struct tbs_media_segment *w,
			       GstSegment *seg)
{
	gst_segment_init(seg, GST_FORMAT_TIME);
	seg->flags = (GstSegmentFlags)w->flags;
	seg->rate = w->rate;
	seg->applied_rate = w->applied_rate;
	seg->base = w->base;
	seg->offset = w->offset;
	seg->start = w->start;
	seg->stop = w->stop;
	seg->time = w->time;
	seg->position = w->position;
	seg->duration = w->duration;
}

static gboolean safe_char(gunichar c)
{
	switch (g_unichar_type(c)) {
	case G_UNICODE_CONTROL:
	case G_UNICODE_FORMAT:
	case G_UNICODE_LINE_SEPARATOR:
	case G_UNICODE_PARAGRAPH_SEPARATOR:
	case G_UNICODE_UNASSIGNED:
	case G_UNICODE_PRIVATE_USE:
	case G_UNICODE_SURROGATE:
		return FALSE;
	default:
		return TRUE;
	}
}

gchar *tbs_gst_clean(const gchar *text)
{
	gsize n = strlen(text);
	const gchar *p = text, *end = text + n;
	GString *out = g_string_sized_new(n);
	gunichar c;

	while (p < end) {
		c = g_utf8_get_char_validated(p, end - p);
		if (c == (gunichar)-1 || c == (gunichar)-2) {
			g_string_append_c(out, '?'); /* not UTF-8 */
			p++;
			continue;
		}
		if (safe_char(c))
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
		else
			g_string_append_c(out, '?');
		p = g_utf8_next_char(p);
	}
	return g_string_free(out, FALSE);
}

void tbs_gst_post(GstElement *e, const gchar *name, const gchar *field, ...)
{
	GstStructure *st;
	va_list ap;

	if (field) {
		va_start(ap, field);
		st = gst_structure_new_valist(name, field, ap);
		va_end(ap);
	} else {
		st = gst_structure_new_empty(name);
	}
	gst_element_post_message(e, gst_message_new_element(GST_OBJECT(e), st));
}

static gint resource_code(int code)
{
	switch (code) {
	case -EBUSY:
		return GST_RESOURCE_ERROR_BUSY;
	case -ENOSPC:
	case -ENOMEM:
		return GST_RESOURCE_ERROR_NO_SPACE_LEFT;
	case -EACCES:
	case -EPERM:
		return GST_RESOURCE_ERROR_NOT_AUTHORIZED;
	case -ENODEV:
	case -ENOENT:
	case -ETIMEDOUT:
		return GST_RESOURCE_ERROR_NOT_FOUND;
	default:
		return GST_RESOURCE_ERROR_FAILED;
	}
}

void tbs_gst_post_link_error(GstElement *e, int code, const gchar *msg)
{
	gchar *text = tbs_gst_clean(msg);
	GError *err = g_error_new_literal(GST_RESOURCE_ERROR,
					  resource_code(code), text);
	GstStructure *details = gst_structure_new("details", "errno", G_TYPE_INT,
						  -code, NULL);
	GstMessage *m = gst_message_new_error_with_details(GST_OBJECT(e), err,
							   NULL, details);

	g_error_free(err);
	g_free(text);
	gst_element_post_message(e, m);
}

void tbs_gst_link_notify(void *arg, const char *msg)
{
	GstElement *e = arg;
	gchar *text = tbs_gst_clean(msg);

	GST_INFO_OBJECT(e, "%s", text);
	tbs_gst_post(e, "tbstream-waiting", "message", G_TYPE_STRING, text,
		     NULL);
	g_free(text);
}

gboolean tbs_gst_valid_name(GstElement *e, const gchar *name)
{
	if (name && name[0] && strlen(name) <= TBS_NAME_MAX &&
	    !strchr(name, '/'))
		return TRUE;
	GST_ELEMENT_ERROR(e, RESOURCE, SETTINGS,
			  ("invalid stream name '%s': 1 to %d bytes, no '/'",
			   name ? name : "", TBS_NAME_MAX),
			  (NULL));
	return FALSE;
}
