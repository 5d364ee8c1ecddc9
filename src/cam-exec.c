// SPDX-License-Identifier: MIT
/*
 * tbstream cam: runs tbstream-cam (cam-main.c), the part that needs
 * GStreamer, from beside this program (a build tree) or from the
 * library-exec directory it was installed with.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef TBS_LIBEXECDIR
#define TBS_LIBEXECDIR "/usr/libexec/tbstream"
#endif

/* Where tbstream-cam is: beside /proc/self/exe, else the installed one. */
static bool helper_path(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash && (size_t)(slash - self) + 14 < len) {
			memcpy(buf, self, (size_t)(slash - self));
			memcpy(buf + (slash - self), "/tbstream-cam", 14);
			if (!access(buf, X_OK))
				return true;
		}
	}
	snprintf(buf, len, "%s/tbstream-cam", TBS_LIBEXECDIR);
	return !access(buf, X_OK);
}

int cmd_cam(const struct cli *cli, int argc, char **argv)
{
	char path[PATH_MAX];
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	int i;

	if (!args)
		return EXIT_FAIL;
	if (!helper_path(path, sizeof(path))) {
		cli_msg("tbstream cam needs the GStreamer elements: install the package gstreamer1.0-tbstream (or build with GStreamer's development files: meson -Dgst=enabled)");
		free(args);
		return EXIT_MISSING;
	}
	args[0] = "tbstream-cam";
	args[1] = "--sysroot";
	args[2] = (char *)cli->root;
	for (i = 0; i < argc; i++)
		args[3 + i] = argv[i];
	execv(path, args);
	cli_msg("could not run '%s': %s", path, strerror(errno));
	free(args);
	return EXIT_FAIL;
}
