/* SPDX-License-Identifier: MIT */
/*
 * What tbstreamsink and tbstreamsrc share on the GStreamer side: the
 * properties that say where the stream is, and the conversions between
 * GStreamer's buffers, segments and errors and the media messages.
 */
#ifndef TBS_MEDIA_GST_H
#define TBS_MEDIA_GST_H

#include <gst/gst.h>

#include "link.h"
#include "media-wire.h"

GST_DEBUG_CATEGORY_EXTERN(tbs_media_debug);

/* The properties of both elements, with the ids they are installed at. */
enum {
	TBS_PROP_STREAM = 1,
	TBS_PROP_PEER,
	TBS_PROP_SYSROOT,
	TBS_PROP_TIMEOUT,
	TBS_PROP_FD,
	TBS_PROP_WINDOW,
	TBS_PROP_CONNECTED,
	TBS_PROP_TRANSPORT,
	TBS_PROP_N_COMMON, /* an element's own properties start here */
};

struct tbs_gst_where {
	gchar *stream, *peer, *sysroot;
	guint timeout; /* s, 0: for ever */
	gint fd;
	guint64 window;
	gint transport; /* an enum tbs_transport */
	gboolean connected; /* read-only, under the object lock */
};

void tbs_gst_install_where(GObjectClass *k, const gchar *role);
void tbs_gst_where_init(struct tbs_gst_where *w);
void tbs_gst_where_clear(struct tbs_gst_where *w);
/* Property access; FALSE when @id is not one of the common ones. */
gboolean tbs_gst_where_set(GObject *o, struct tbs_gst_where *w, guint id,
			   const GValue *v);
gboolean tbs_gst_where_get(GObject *o, struct tbs_gst_where *w, guint id,
			   GValue *v);
/**
 * tbs_gst_where_connected() - sets the "connected" property's value
 * @e:  the element
 * @w:  its properties
 * @on: whether a peer is connected now
 *
 * Takes @e's object lock, under which the property is read.
 */
void tbs_gst_where_connected(GstElement *e, struct tbs_gst_where *w,
			     gboolean on);
/**
 * tbs_gst_link_init() - sets up an element's link to its peer
 * @e:    the element
 * @w:    its properties, read under @e's object lock
 * @role: TBS_ROLE_SENDER or TBS_ROLE_RECEIVER
 * @link: the link to set up
 *
 * Posts the failure on @e as an error.
 *
 * Return: TRUE when the link is set up.
 */
gboolean tbs_gst_link_init(GstElement *e, struct tbs_gst_where *w, int role,
			   struct tbs_link *link);
/**
 * tbs_gst_setup_failed() - posts the failure of an element's set-up
 * @e:    the element
 * @code: the cause, a negative errno
 *
 * Return: FALSE, for the element's start() to return.
 */
gboolean tbs_gst_setup_failed(GstElement *e, int code);

/* Buffer metadata to a frame header and back. */
void tbs_gst_frame_from_buffer(GstBuffer *b, struct tbs_media_frame *f);
void tbs_gst_frame_to_buffer(const struct tbs_media_frame *f, GstBuffer *b);
/* FALSE when @seg is not in time format (it does not travel then). */
gboolean tbs_gst_segment_to_wire(const GstSegment *seg,
				 struct tbs_media_segment *w);
void tbs_gst_segment_from_wire(const struct tbs_media_segment *w,
			       GstSegment *seg);

/*
 * @text (which may hold a peer's bytes: an ABORT's message inside a
 * session's error) made safe for a terminal and a log: printable
 * characters of well-formed UTF-8 stay; control characters, format
 * characters (bidirectional overrides, zero-width ones), line and
 * paragraph separators and bytes that are not UTF-8 become '?'.  Every
 * text from the link or a session goes through it before it is posted or
 * logged.  Return: a new string, for g_free().
 */
gchar *tbs_gst_clean(const gchar *text);

/* Posts an element message named @name with the fields given (@field may be
 * NULL for none), a list ended by NULL as for gst_structure_new(). */
void tbs_gst_post(GstElement *e, const gchar *name, const gchar *field, ...);
/* The link's notify callback (@arg: the element): a "tbstream-waiting"
 * element message with the text. */
void tbs_gst_link_notify(void *arg, const char *msg);
/* Whether @name is a stream name; posts an error on @e when it is not. */
gboolean tbs_gst_valid_name(GstElement *e, const gchar *name);

/* Posts the link's failure as an error (with "errno" in its details). */
void tbs_gst_post_link_error(GstElement *e, int code, const gchar *msg);

#endif
