/* SPDX-License-Identifier: MIT */
/*
 * tbstream command: the programs it starts (nbd-client, modprobe, the
 * command of a forward) start clean.  While a job runs, the command
 * blocks the signals it handles (job.c reads them from a descriptor) and
 * ignores SIGPIPE; a child inherits both across exec, and would then be a
 * program that neither Ctrl-C, kill nor a closed pipe stops.
 */
#ifndef TBSTREAM_CHILD_H
#define TBSTREAM_CHILD_H

#include <spawn.h>
#include <stdbool.h>

/*
 * Attributes for posix_spawn(): no signal blocked, the default action for
 * those the command handles or ignores, and (@own_group) a process group
 * of its own.  Return: 0 or -ENOMEM; posix_spawnattr_destroy() after.
 */
int child_attr_init(posix_spawnattr_t *at, bool own_group);

#endif
