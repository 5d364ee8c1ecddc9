/* SPDX-License-Identifier: MIT */
/* tbsim internal: the FUSE operations (fs.c). */
#ifndef TBSIM_FS_H
#define TBSIM_FS_H

#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops tbsim_ops;
extern const struct fuse_custom_io tbsim_io;

#endif
