// SPDX-License-Identifier: MIT
/*
 * tbstream cam recv --v4l2: the device must be one that the v4l2loopback
 * module made, so that applications on this host see the remote camera
 * as a local one (cam.h).  Says how to get the module when it is not
 * there, and refuses a real video device.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cam.h"

#define V4L2_MAJOR 81 /* video4linux character devices */

/* Reads the first line of @path into @buf ("" if it cannot be read). */
static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Whether the video device @name (videoN) is a loopback one. */
static bool is_loopback(const char *name, char *label, size_t len)
{
	char path[PATH_MAX], real[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/class/video4linux/%s/name", name);
	read_line(path, label, len);
	snprintf(path, sizeof(path), "/sys/class/video4linux/%s", name);
	if (!realpath(path, real))
		return false;
	/* v4l2loopback's devices have no parent: they are virtual. */
	return strstr(real, "/devices/virtual/") != NULL;
}

int cam_v4l2_check(const char *dev)
{
	char label[256], name[64];
	struct stat st;

	if (access("/sys/module/v4l2loopback", F_OK)) {
		cli_msg("the v4l2loopback kernel module is not loaded, so '%s' cannot be fed: install it (as root: apt install v4l2loopback-dkms) and load it (modprobe v4l2loopback exclusive_caps=1 card_label=tbstream), then use the /dev/videoN it made (v4l2-ctl --list-devices)",
			dev);
		return EXIT_MISSING;
	}
	if (stat(dev, &st) || !S_ISCHR(st.st_mode) ||
	    major(st.st_rdev) != V4L2_MAJOR) {
		cli_msg("'%s' is not a video device (%s): the v4l2loopback module is loaded; its devices are listed by 'v4l2-ctl --list-devices'",
			dev, errno ? strerror(errno) : "not a character device");
		return EXIT_MISSING;
	}
	snprintf(name, sizeof(name), "video%u", minor(st.st_rdev));
	if (!is_loopback(name, label, sizeof(label))) {
		cli_msg("'%s' (%s) is not a v4l2loopback device: feeding a real camera's device fails",
			dev, label[0] ? label : "unknown");
		return EXIT_USAGE;
	}
	return 0;
}
