/* SPDX-License-Identifier: MIT */
/* The elements of the tbstream GStreamer plugin. */
#ifndef TBS_ELEMENTS_H
#define TBS_ELEMENTS_H

#include <gst/base/gstbasesink.h>
#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_TB_STREAM_SINK (gst_tb_stream_sink_get_type())
G_DECLARE_FINAL_TYPE(GstTbStreamSink, gst_tb_stream_sink, GST, TB_STREAM_SINK,
		     GstBaseSink)

#define GST_TYPE_TB_STREAM_SRC (gst_tb_stream_src_get_type())
G_DECLARE_FINAL_TYPE(GstTbStreamSrc, gst_tb_stream_src, GST, TB_STREAM_SRC,
		     GstPushSrc)

/* Registers both elements with @plugin (NULL: the static plugin). */
gboolean tbs_gst_register(GstPlugin *plugin);

G_END_DECLS

#endif
