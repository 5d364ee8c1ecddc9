/* SPDX-License-Identifier: MIT */
/*
 * Builds fake system roots for unit tests: plain directories and files
 * shaped like sysfs and ConfigFS.  Not part of the library.
 */
#ifndef TBS_TEST_TREE_H
#define TBS_TEST_TREE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates every directory of @path (relative to @root). */
static inline void tree_mkdir(const char *root, const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s/%s", root, path) >= PATH_MAX)
		exit(99);
	for (p = buf + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(buf, 0755);
		*p = '/';
	}
	mkdir(buf, 0755);
}

/* Writes @content (plus a newline) to @path, creating its directories. */
static inline void tree_put(const char *root, const char *path,
			    const char *content)
{
	char buf[PATH_MAX], dir[PATH_MAX];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/')) {
		*strrchr(dir, '/') = '\0';
		tree_mkdir(root, dir);
	}
	if (snprintf(buf, sizeof(buf), "%s/%s", root, path) >= PATH_MAX)
		exit(99);
	f = fopen(buf, "w");
	if (!f) {
		perror(buf);
		exit(99);
	}
	fprintf(f, "%s\n", content);
	fclose(f);
}

static inline char *tree_new(void)
{
	static char tmpl[64];

	snprintf(tmpl, sizeof(tmpl), "/tmp/tbs-tree-XXXXXX");
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(99);
	}
	return tmpl;
}

static inline void tree_free(const char *root)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", root);
}

#endif
