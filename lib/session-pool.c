// SPDX-License-Identifier: MIT
/*
 * Buffers of large records to send, and blocks to receive into, used
 * again.
 *
 * A record of POOL_MIN bytes or more gets a buffer of 64, 128 or 256 KiB
 * (the smallest that holds it).  When the peer acknowledged it, its
 * buffer goes back to a free list of its size instead of to malloc(): so
 * large buffers are not mapped, faulted in page by page and unmapped again
 * for every record, which cost a bulk sender more processor time than
 * copying and checksumming its data.  What the lists hold is bounded by
 * the window.  The lists have their own lock, taken with or without the
 * session's (never the other way round).
 *
 * The same for the blocks received bytes are read into (RX_BLOCK bytes
 * each): a block whose records were all consumed goes to a free list,
 * bounded by the window too (but two blocks at least), and the reader
 * takes the next one from it.
 * That list is protected by the session's lock.
 */
#include <stdlib.h>

#include "session-int.h"

static unsigned int pool_class(size_t len)
{
	unsigned int c = 0;

	while (c + 1 < POOL_CLASSES && len > (size_t)POOL_MIN << c)
		c++;
	return c;
}

/* A record with room for @len bytes of payload (not yet filled in). */
struct txrec *tbs_session_txrec_alloc(struct tbs_session *s, size_t len)
{
	unsigned int c = pool_class(len);
	struct txrec *t = NULL;
	size_t cap = len;

	if (len >= POOL_MIN) {
		cap = (size_t)POOL_MIN << c;
		pthread_mutex_lock(&s->pool_lock);
		t = s->pool[c];
		if (t) {
			s->pool[c] = t->next;
			s->pool_bytes -= cap;
		}
		pthread_mutex_unlock(&s->pool_lock);
	}
	if (!t) {
		t = malloc(sizeof(*t) + cap);
		if (!t)
			return NULL;
		t->cap = (uint32_t)cap;
	}
	t->len = (uint32_t)len;
	return t;
}

/* Gives a record's buffer back, to a free list or to free(). */
void tbs_session_txrec_put(struct tbs_session *s, struct txrec *t)
{
	unsigned int c = pool_class(t->cap);

	if (t->cap >= POOL_MIN) {
		pthread_mutex_lock(&s->pool_lock);
		if (s->pool_bytes + t->cap <= s->o.window) {
			t->next = s->pool[c];
			s->pool[c] = t;
			s->pool_bytes += t->cap;
			t = NULL;
		}
		pthread_mutex_unlock(&s->pool_lock);
	}
	free(t);
}

void tbs_session_pool_free(struct tbs_session *s)
{
	struct txrec *t;
	unsigned int c;

	for (c = 0; c < POOL_CLASSES; c++)
		while ((t = s->pool[c])) {
			s->pool[c] = t->next;
			free(t);
		}
	s->pool_bytes = 0;
}

/* A block to read into, with the reader's reference; lock held. */
struct rxblk *tbs_session_blk_new(struct tbs_session *s)
{
	struct rxblk *b = s->blk_free;

	if (b) {
		s->blk_free = b->next;
		s->blk_free_n--;
	} else {
		b = malloc(sizeof(*b) + RX_BLOCK);
	}
	if (b) {
		b->refs = 1;
		s->rx_blocks++;
	}
	return b;
}

/* Drops one reference to a block; lock held. */
void tbs_session_blk_put(struct tbs_session *s, struct rxblk *b)
{
	uint64_t most = s->o.window > 2 * RX_BLOCK ? s->o.window : 2 * RX_BLOCK;

	if (--b->refs)
		return;
	s->rx_blocks--;
	if ((uint64_t)(s->blk_free_n + 1) * RX_BLOCK > most) {
		free(b);
		return;
	}
	b->next = s->blk_free;
	s->blk_free = b;
	s->blk_free_n++;
}

void tbs_session_blk_pool_free(struct tbs_session *s)
{
	struct rxblk *b;

	while ((b = s->blk_free)) {
		s->blk_free = b->next;
		free(b);
	}
	s->blk_free_n = 0;
}
