// SPDX-License-Identifier: MIT
/*
 * tbstream cam --list: the cameras GStreamer's device monitor finds, with
 * the formats, sizes and frame rates each offers; and the choices of
 * "tbstream cam send" that depend on them (cam.h).
 */
#include <stdio.h>
#include <string.h>

#include <gst/gst.h>

#include "cam.h"
#include "escape.h"

/* The monitor's cameras, to free with g_list_free_full(.., unref). */
static GList *cameras(void)
{
	GstDeviceMonitor *mon = gst_device_monitor_new();
	GList *devs = NULL;

	gst_device_monitor_add_filter(mon, "Video/Source", NULL);
	if (gst_device_monitor_start(mon)) {
		devs = gst_device_monitor_get_devices(mon);
		gst_device_monitor_stop(mon);
	}
	gst_object_unref(mon);
	return devs;
}

/* The device node of @d ("" when its provider does not say). */
static const char *node_of(GstDevice *d, GstStructure **props)
{
	const char *p = NULL;

	*props = gst_device_get_properties(d);
	if (*props) {
		p = gst_structure_get_string(*props, "device.path");
		if (!p)
			p = gst_structure_get_string(*props, "api.v4l2.path");
	}
	return p ? p : "";
}

bool cam_first(char *buf, size_t len)
{
	GList *devs = cameras(), *l;
	GstStructure *props;
	bool found = false;

	for (l = devs; l && !found; l = l->next) {
		const char *node = node_of(l->data, &props);

		if (node[0]) {
			snprintf(buf, len, "%s", node);
			found = true;
		}
		if (props)
			gst_structure_free(props);
	}
	g_list_free_full(devs, gst_object_unref);
	return found;
}

bool cam_has_mjpeg(const char *dev, const struct cam_args *a)
{
	GstElement *src = gst_element_factory_make("v4l2src", NULL);
	GstCaps *want = cam_caps_new(a, "image/jpeg"), *got = NULL;
	GstPad *pad;
	bool yes = false;

	if (src) {
		g_object_set(src, "device", dev, NULL);
		if (gst_element_set_state(src, GST_STATE_READY) !=
		    GST_STATE_CHANGE_FAILURE) {
			pad = gst_element_get_static_pad(src, "src");
			got = gst_pad_query_caps(pad, NULL);
			gst_object_unref(pad);
			yes = got && gst_caps_can_intersect(got, want);
		}
		gst_element_set_state(src, GST_STATE_NULL);
		gst_object_unref(src);
	}
	gst_clear_caps(&got);
	gst_caps_unref(want);
	return yes;
}

/* One format of a camera: "image/jpeg 1280x720 30/1" or with the format. */
static void format_of(const GstStructure *s, char *buf, size_t len)
{
	const char *fmt = gst_structure_get_string(s, "format");
	gint w = 0, h = 0, num = 0, den = 1;

	gst_structure_get_int(s, "width", &w);
	gst_structure_get_int(s, "height", &h);
	gst_structure_get_fraction(s, "framerate", &num, &den);
	snprintf(buf, len, "%s%s%s %dx%d", gst_structure_get_name(s),
		 fmt ? " " : "", fmt ? fmt : "", w, h);
	if (num)
		snprintf(buf + strlen(buf), len - strlen(buf), " %d/%d", num,
			 den);
}

static void print_camera(GstDevice *d, bool json, bool first)
{
	GstStructure *props;
	const char *node = node_of(d, &props);
	gchar *name = gst_device_get_display_name(d);
	GstCaps *caps = gst_device_get_caps(d);
	char f[256];
	guint i, n = caps ? gst_caps_get_size(caps) : 0;

	if (json) {
		printf("%s\n    {\"device\": ", first ? "" : ",");
		json_str(stdout, node);
		printf(", \"name\": ");
		json_str(stdout, name);
		printf(", \"formats\": [");
	} else { /* a driver's or a USB descriptor's words: escaped */
		esc_write(stdout, node[0] ? node : "(no device node)", ESC_TERM);
		fputs("  ", stdout);
		esc_write(stdout, name ? name : "", ESC_TERM);
		putchar('\n');
	}
	for (i = 0; i < n; i++) {
		format_of(gst_caps_get_structure(caps, i), f, sizeof(f));
		if (json) {
			printf("%s", i ? ", " : "");
			json_str(stdout, f);
		} else {
			fputs("    ", stdout);
			esc_write(stdout, f, ESC_TERM);
			putchar('\n');
		}
	}
	if (json)
		printf("]}");
	gst_clear_caps(&caps);
	g_free(name);
	if (props)
		gst_structure_free(props);
}

int cam_list(const struct cam_args *a)
{
	GList *devs = cameras(), *l;

	if (a->json)
		printf("{\"cameras\": [");
	for (l = devs; l; l = l->next)
		print_camera(l->data, a->json, l == devs);
	if (a->json)
		printf("%s]}\n", devs ? "\n  " : "");
	else if (!devs && !a->quiet)
		cli_msg("no camera found (GStreamer's device monitor sees no video source): is one connected, and may this user open /dev/video*?");
	g_list_free_full(devs, gst_object_unref);
	return EXIT_OK;
}
