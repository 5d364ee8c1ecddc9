/* SPDX-License-Identifier: MIT */
/*
 * tbstream cam (tbstream-cam): what its files share.  cmd-cam.c parses
 * the command line, cam-run.c builds and runs a pipeline, cam-list.c
 * lists cameras, cam-v4l2.c checks a v4l2loopback device.
 */
#ifndef TBS_CAM_H
#define TBS_CAM_H

#include <stdbool.h>

#include <gst/gst.h>

#include "cli.h"

enum cam_out { CAM_NONE, CAM_WINDOW, CAM_V4L2, CAM_FILE };

struct cam_args {
	const char *root; /* system root */
	const char *stream, *peer;
	int timeout; /* s, 0: for ever */
	const char *transport; /* the elements' "transport": auto, stream, net */
	bool list, json, quiet;
	bool send; /* else recv */
	/* send */
	const char *device; /* NULL: the first camera */
	bool test, raw;
	int width, height, fps; /* 0: the camera's own */
	long frames; /* 0: no end */
	/* recv */
	enum cam_out out;
	const char *target; /* the v4l2loopback device or the file */
	bool overwrite;
};

/* Caps of @media at the size and rate @a asks for (none: any). */
GstCaps *cam_caps_new(const struct cam_args *a, const char *media);
/* Makes the elements available when no installed plugin has them. */
int cam_register(void);
int cam_run(const struct cam_args *a);
int cam_list(const struct cam_args *a);
/* The first camera's device path into @buf; false when there is none. */
bool cam_first(char *buf, size_t len);
/* Whether @dev accepts MJPEG at what @a asks for (size, rate). */
bool cam_has_mjpeg(const char *dev, const struct cam_args *a);
/* Checks that @dev is a v4l2loopback device: 0 or an exit status. */
int cam_v4l2_check(const char *dev);

#endif
