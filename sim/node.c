// SPDX-License-Identifier: MIT
/*
 * tbsim: the node tree and the inode table behind it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node.h"

#define FUSE_ROOT_INO 1

static size_t slot(const struct node_table *t, uint64_t ino)
{
	return (ino * 0x9e3779b97f4a7c15ULL >> 32) % t->nbucket;
}

int nodes_init(struct node_table *t)
{
	t->nbucket = 1024;
	t->bucket = calloc(t->nbucket, sizeof(*t->bucket));
	t->count = 0;
	t->next_ino = FUSE_ROOT_INO;
	return t->bucket ? 0 : -ENOMEM;
}

static void node_free(struct node *n)
{
	free(n->name);
	free(n->text);
	free(n);
}

void nodes_fini(struct node_table *t)
{
	for (size_t i = 0; i < t->nbucket; i++) {
		struct node *n = t->bucket[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	}
	free(t->bucket);
	t->bucket = NULL;
}

static void table_insert(struct node_table *t, struct node *n)
{
	size_t i = slot(t, n->ino);

	n->hnext = t->bucket[i];
	t->bucket[i] = n;
	t->count++;
}

static void table_remove(struct node_table *t, struct node *n)
{
	struct node **pp = &t->bucket[slot(t, n->ino)];

	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = n->hnext;
		t->count--;
	}
}

struct node *node_get(struct node_table *t, uint64_t ino)
{
	struct node *n = t->bucket[slot(t, ino)];

	while (n && n->ino != ino)
		n = n->hnext;
	return n;
}

/**
 * node_new() - add a node under @parent (or the root when @parent is NULL)
 *
 * Return: the node, or NULL when memory ran out.
 */
struct node *node_new(struct node_table *t, struct node *parent,
		      const char *name, mode_t mode, enum node_kind kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->ino = t->next_ino++;
	n->mode = mode;
	n->kind = kind;
	n->parent = parent;
	list_init(&n->children);
	list_init(&n->sibling);
	if (parent)
		list_add_tail(&n->sibling, &parent->children);
	table_insert(t, n);
	return n;
}

struct node *node_dir(struct node_table *t, struct node *parent,
		      const char *name)
{
	return node_new(t, parent, name, S_IFDIR | 0755, N_DIR);
}

struct node *node_text(struct node_table *t, struct node *parent,
		       const char *name, const char *fmt, ...)
{
	struct node *n = node_new(t, parent, name, S_IFREG | 0444, N_TEXT);
	va_list ap;

	if (!n)
		return NULL;
	va_start(ap, fmt);
	if (vasprintf(&n->text, fmt, ap) < 0)
		n->text = NULL;
	va_end(ap);
	return n;
}

struct node *node_link(struct node_table *t, struct node *parent,
		       const char *name, const char *target)
{
	struct node *n = node_new(t, parent, name, S_IFLNK | 0777, N_LINK);

	if (n && !(n->text = strdup(target))) {
		node_unlink(t, n);
		return NULL;
	}
	return n;
}

struct node *node_child(struct node *dir, const char *name)
{
	struct list_head *p;

	list_for_each(p, &dir->children) {
		struct node *c = list_entry(p, struct node, sibling);

		if (!strcmp(c->name, name))
			return c;
	}
	return NULL;
}

static void node_release(struct node_table *t, struct node *n)
{
	if (n->unlinked && n->nlookup == 0) {
		table_remove(t, n);
		node_free(n);
	}
}

/**
 * node_unlink() - take @n and everything under it out of the tree
 *
 * Nodes the kernel still knows stay in the inode table, marked unlinked,
 * until node_forget() drops their last lookup.
 */
void node_unlink(struct node_table *t, struct node *n)
{
	struct list_head *p, *next;

	if (!n || n->unlinked)
		return;
	list_for_each_safe(p, next, &n->children)
		node_unlink(t, list_entry(p, struct node, sibling));
	list_del(&n->sibling);
	n->parent = NULL;
	n->unlinked = true;
	n->stream = NULL;
	n->svc = NULL;
	n->host = NULL;
	node_release(t, n);
}

void node_forget(struct node_table *t, struct node *n, uint64_t nlookup)
{
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	node_release(t, n);
}
