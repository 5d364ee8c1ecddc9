/* SPDX-License-Identifier: MIT */
/*
 * tbsim internal: the file tree the FUSE layer shows.
 *
 * Every file and directory of every host is a node with a stable inode
 * number.  A node removed from the tree (an unplugged XDomain, a removed
 * stream) stays allocated until the kernel has forgotten it, so a late
 * request on its inode finds a node marked unlinked instead of freed memory.
 */
#ifndef TBSIM_NODE_H
#define TBSIM_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "list.h"

struct stream;
struct service;
struct host;

enum node_kind {
	N_DIR,
	N_TEXT,	   /* a read-only sysfs attribute with fixed text */
	N_ATTR,	   /* a stream's ConfigFS attribute */
	N_DEV,	   /* /dev/tbstreamX */
	N_CONTROL, /* the fault-injection file */
	N_LINK,	   /* a sysfs symbolic link; @text is its target */
};

enum dir_role {
	D_PLAIN,
	D_STREAM_ROOT, /* sys/kernel/config/thunderbolt/stream */
	D_SERVICE,     /* stream/<service> */
	D_STREAM,      /* stream/<service>/<name> */
};

struct node {
	uint64_t ino;
	char *name;
	struct node *parent;
	struct list_head children, sibling;
	mode_t mode;
	enum node_kind kind;
	enum dir_role role;
	char *text;		/* N_TEXT */
	const char *attr;	/* N_ATTR: the attribute's name */
	struct stream *stream;	/* N_ATTR, N_DEV, D_STREAM */
	struct service *svc;	/* D_SERVICE */
	struct host *host;	/* D_STREAM_ROOT */
	uint64_t nlookup;
	bool unlinked;
	struct node *hnext;
};

struct node_table {
	struct node **bucket;
	size_t nbucket, count;
	uint64_t next_ino;
};

int nodes_init(struct node_table *t);
void nodes_fini(struct node_table *t);
struct node *node_new(struct node_table *t, struct node *parent,
		      const char *name, mode_t mode, enum node_kind kind);
struct node *node_dir(struct node_table *t, struct node *parent,
		      const char *name);
struct node *node_text(struct node_table *t, struct node *parent,
		       const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
struct node *node_link(struct node_table *t, struct node *parent,
		       const char *name, const char *target);
struct node *node_child(struct node *dir, const char *name);
struct node *node_get(struct node_table *t, uint64_t ino);
void node_unlink(struct node_table *t, struct node *n);
void node_forget(struct node_table *t, struct node *n, uint64_t nlookup);

#endif
