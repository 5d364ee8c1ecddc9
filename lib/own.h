/* SPDX-License-Identifier: MIT */
/*
 * Internal header, not installed: the files a receiver makes and opens
 * again (partial files, journals, marks, image files), used by both
 * engines.  A file is trusted only if it is a regular file with one link,
 * owned by this process, opened without following a link or blocking;
 * new files are created exclusively.
 */
#ifndef TBS_OWN_H
#define TBS_OWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

int tbsi_open_own(int dfd, const char *name, int flags, uint64_t dev,
		  struct stat *sb);
int tbsi_read_own(int dfd, const char *name, uint64_t dev, char *buf,
		  size_t len);
int tbsi_create_excl(int dfd, const char *name, int flags, mode_t mode);

#endif
