// SPDX-License-Identifier: MIT
/* Registers the elements, from the plugin or from a program (elements.h). */
#include <gst/gst.h>

#include "elements.h"
#include "media-gst.h"

gboolean tbs_gst_register(GstPlugin *plugin)
{
	GST_DEBUG_CATEGORY_INIT(tbs_media_debug, "tbstream", 0,
				"USB4STREAM media elements");
	return gst_element_register(plugin, "tbstreamsink", GST_RANK_NONE,
				    GST_TYPE_TB_STREAM_SINK) &&
	       gst_element_register(plugin, "tbstreamsrc", GST_RANK_NONE,
				    GST_TYPE_TB_STREAM_SRC);
}
