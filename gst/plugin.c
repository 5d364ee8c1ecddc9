// SPDX-License-Identifier: MIT
/* The tbstream GStreamer plugin: tbstreamsink and tbstreamsrc. */
#include <gst/gst.h>

#include "elements.h"

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, tbstream,
		  "Media over USB4/Thunderbolt cables (USB4STREAM)",
		  tbs_gst_register, TBS_VERSION, "MIT", "tbstream", "tbstream")
