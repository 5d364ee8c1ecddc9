// SPDX-License-Identifier: MIT
/*
 * tbsim: frames and rings.
 *
 * Frames are recycled through a free list so that moving data costs no
 * allocation.  The free list is capped: memory stays bounded by the rings
 * that are open, not by the data that went through them.
 */
#include <errno.h>
#include <stdlib.h>

#include "fabric.h"

#define FREE_FRAMES_MAX 2048 /* 8 MiB kept for reuse at most */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

struct frame *frame_alloc(struct fabric *fab)
{
	struct frame *f;

	pthread_mutex_lock(&pool_lock);
	f = fab->free_frames;
	if (f) {
		fab->free_frames = f->next;
		fab->nfree_frames--;
	}
	pthread_mutex_unlock(&pool_lock);
	if (!f) {
		f = malloc(sizeof(*f));
		if (!f)
			return NULL;
	}
	f->next = NULL;
	f->due_ns = 0;
	f->len = 0;
	f->off = 0;
	f->kind = FRAME_DATA;
	f->crc_error = 0;
	return f;
}

void frame_free(struct fabric *fab, struct frame *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&pool_lock);
	if (fab->nfree_frames < FREE_FRAMES_MAX) {
		f->next = fab->free_frames;
		fab->free_frames = f;
		fab->nfree_frames++;
		f = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	free(f);
}

void frames_fini(struct fabric *fab)
{
	struct frame *f, *next;

	for (f = fab->free_frames; f; f = next) {
		next = f->next;
		free(f);
	}
	fab->free_frames = NULL;
	fab->nfree_frames = 0;
}

/* One slot more than the ring's size, so that the CLOSE frame always fits. */
int ring_init(struct ring *r, unsigned int size)
{
	r->slot = calloc(size + 1, sizeof(*r->slot));
	r->size = size;
	r->head = 0;
	r->count = 0;
	return r->slot ? 0 : -ENOMEM;
}

void ring_push(struct ring *r, struct frame *f)
{
	r->slot[(r->head + r->count) % (r->size + 1)] = f;
	r->count++;
}

struct frame *ring_peek(struct ring *r)
{
	return r->count ? r->slot[r->head] : NULL;
}

struct frame *ring_pop(struct ring *r)
{
	struct frame *f = ring_peek(r);

	if (f) {
		r->head = (r->head + 1) % (r->size + 1);
		r->count--;
	}
	return f;
}

void ring_drain(struct fabric *fab, struct ring *r)
{
	struct frame *f;

	while ((f = ring_pop(r)))
		frame_free(fab, f);
	free(r->slot);
	r->slot = NULL;
	r->size = 0;
}
