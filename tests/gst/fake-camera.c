// SPDX-License-Identifier: MIT
/*
 * A GStreamer plugin for tests only: a device provider with one camera
 * whose name, device node and format hold terminal escapes, a line break
 * and a bidirectional override, as a device's driver or a USB descriptor
 * may.  "tbstream cam --list" must print them escaped.
 */
#include <gst/gst.h>

#define EVIL "\x1b[2J\x1b]0;owned\x07\r\nfake camera \xe2\x80\xae"

GType tbs_fake_device_get_type(void);
GType tbs_fake_provider_get_type(void);

typedef struct {
	GstDevice parent;
} TbsFakeDevice;
typedef struct {
	GstDeviceClass parent_class;
} TbsFakeDeviceClass;
G_DEFINE_TYPE(TbsFakeDevice, tbs_fake_device, GST_TYPE_DEVICE)

static void tbs_fake_device_class_init(TbsFakeDeviceClass *k)
{
}

static void tbs_fake_device_init(TbsFakeDevice *d)
{
}

typedef struct {
	GstDeviceProvider parent;
} TbsFakeProvider;
typedef struct {
	GstDeviceProviderClass parent_class;
} TbsFakeProviderClass;
G_DEFINE_TYPE(TbsFakeProvider, tbs_fake_provider, GST_TYPE_DEVICE_PROVIDER)

static GList *probe(GstDeviceProvider *p)
{
	GstCaps *caps = gst_caps_new_simple("video/x-raw", "format",
					    G_TYPE_STRING, "YU\x1b[31mY2",
					    "width", G_TYPE_INT, 640, "height",
					    G_TYPE_INT, 480, NULL);
	GstStructure *props = gst_structure_new(
		"props", "device.path", G_TYPE_STRING, "/dev/video\x1b[31m7\n",
		NULL);
	GstDevice *d = g_object_new(tbs_fake_device_get_type(),
				    "display-name", EVIL, "device-class",
				    "Video/Source", "caps", caps, "properties",
				    props, NULL);

	gst_caps_unref(caps);
	gst_structure_free(props);
	return g_list_append(NULL, d);
}

static void tbs_fake_provider_class_init(TbsFakeProviderClass *k)
{
	GstDeviceProviderClass *dk = GST_DEVICE_PROVIDER_CLASS(k);

	dk->probe = probe;
	gst_device_provider_class_set_static_metadata(dk, "Fake cameras",
		"Video/Source", "A camera with a hostile name, for tests",
		"tbstream");
}

static void tbs_fake_provider_init(TbsFakeProvider *p)
{
}

static gboolean plugin_init(GstPlugin *plugin)
{
	return gst_device_provider_register(plugin, "tbsfakecameras",
					    GST_RANK_PRIMARY,
					    tbs_fake_provider_get_type());
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, tbsfakecam,
		  "A camera with a hostile name, for tests", plugin_init, "1",
		  "MIT", "tbstream", "tbstream")
