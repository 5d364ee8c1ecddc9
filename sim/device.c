// SPDX-License-Identifier: MIT
/*
 * tbsim: the character device /dev/tbstreamX.
 *
 * Semantics follow section 3 of the contract:
 *
 *	open	waits for the peer's service (ENXIO with O_NONBLOCK), EINVAL
 *		without HopIDs, ENOMEM when the host controller has no free
 *		DMA ring; the first open allocates the rings
 *	read	what is there, across frame edges; 0 once the peer's CLOSE
 *		is reached, and from then on (sticky) until reopened
 *	write	frames of at most 4096 bytes; short when the tx ring fills,
 *		blocks only when no entry is free
 *	poll	POLLIN, POLLOUT, POLLHUP|POLLERR
 *	close	the last close sends CLOSE and waits a bounded time for the
 *		tx ring to drain into the peer; what is left is lost
 *
 * Frames toward a peer whose stream is not open are dropped (and, with
 * --wedge, use up the link's credits until it stops).  With --stale, data
 * frames toward a closed end are kept instead and read first at its next
 * open: the contract's "not guaranteed to arrive" cuts both ways.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "fabric.h"

#define READ_IOV_MAX 1000

static void wait_on(struct fabric *fab, struct waiter *w, pthread_cond_t *c)
{
	w->cond = c;
	pthread_cond_wait(c, &fab->lock);
	w->cond = NULL;
}

static void wait_until(struct fabric *fab, pthread_cond_t *c, uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000),
			       .tv_nsec = (long)(ns % 1000000000) };

	pthread_cond_timedwait(c, &fab->lock, &ts);
}

static void notify_handles(struct endpoint *ep)
{
	struct list_head *p;

	list_for_each(p, &ep->handles) {
		struct handle *h = list_entry(p, struct handle, link);

		if (h->ph) {
			fuse_lowlevel_notify_poll(h->ph);
			fuse_pollhandle_destroy(h->ph);
			h->ph = NULL;
		}
	}
}

static void ep_wake(struct endpoint *ep)
{
	pthread_cond_broadcast(&ep->cond);
	notify_handles(ep);
}

void stream_wake(struct fabric *fab, struct stream *s)
{
	pthread_cond_broadcast(&s->open_cond);
	if (s->ep)
		ep_wake(s->ep);
}

static unsigned int tx_free(const struct endpoint *ep)
{
	unsigned int used = ep->tx.count + ep->tx_reserved;

	return used >= ep->tx.size ? 0 : ep->tx.size - used;
}

static bool ep_open(const struct stream *s)
{
	return s && s->ep && s->ep->state == EP_LIVE && !s->ep->closing;
}

static struct service *peer_service(struct stream *s)
{
	struct cable_end *e = s->svc->end;
	struct list_head *p;

	if (!e || !e->cable->plugged)
		return NULL;
	list_for_each(p, &e->peer->host->services) {
		struct service *svc = list_entry(p, struct service, link);

		if (svc->end == e->peer)
			return svc;
	}
	return NULL;
}

/* The peer's stream that receives what @s sends, open or not. */
static struct stream *stream_receiver_any(struct stream *s)
{
	struct service *svc = peer_service(s);
	struct list_head *p;

	if (!svc)
		return NULL;
	list_for_each(p, &svc->streams) {
		struct stream *r = list_entry(p, struct stream, link);

		if (r->in_hopid == s->out_hopid && !r->removed)
			return r;
	}
	return NULL;
}

/* The peer's stream that receives what @s sends, if it is open. */
static struct stream *stream_receiver(struct stream *s)
{
	struct stream *r = stream_receiver_any(s);

	return ep_open(r) ? r : NULL;
}

/* The peer's stream that sends to @r, if it is open. */
struct stream *stream_sender_to(struct stream *r)
{
	struct service *svc = peer_service(r);
	struct list_head *p;

	if (!svc)
		return NULL;
	list_for_each(p, &svc->streams) {
		struct stream *s = list_entry(p, struct stream, link);

		if (s->out_hopid == r->in_hopid && s->ep &&
		    s->ep->state == EP_LIVE)
			return s;
	}
	return NULL;
}

static void schedule_pump(struct fabric *fab, struct stream *s, uint64_t when)
{
	struct event *ev;

	if (s->pump_at && s->pump_at <= when)
		return;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return;
	ev->kind = EV_PUMP;
	ev->when_ns = when;
	ev->stream = s;
	s->refs++;
	s->pump_at = when;
	schedule(fab, ev);
}

/* Rate limiting: may @len bytes leave through @e now? */
static bool take_tokens(struct fabric *fab, struct cable_end *e, size_t len,
			uint64_t now, uint64_t *retry_at)
{
	double rate = (double)fab->opt.rate;
	double burst = rate / 200 > 65536 ? rate / 200 : 65536;

	if (!fab->opt.rate)
		return true;
	e->tokens += rate * (double)(now - e->tokens_ns) / 1e9;
	e->tokens_ns = now;
	if (e->tokens > burst)
		e->tokens = burst;
	if (e->tokens >= (double)len) {
		e->tokens -= (double)len;
		return true;
	}
	*retry_at = now + (uint64_t)(((double)len - e->tokens) / rate * 1e9) +
		    1000;
	return false;
}

static void corrupt(struct frame *f)
{
	unsigned int bit;

	if (!f->len)
		return;
	bit = (unsigned int)(now_ns() % ((uint64_t)f->len * 8));
	f->data[bit / 8] ^= (char)(1u << (bit % 8));
	f->crc_error = 1;
}

/* With --stale: keep a data frame for the closed end's next open. */
static bool keep_stale(struct fabric *fab, struct stream *s, struct frame *f)
{
	struct stream *r = stream_receiver_any(s);

	if (!fab->opt.stale || f->kind != FRAME_DATA || !r)
		return false;
	if (!r->stale.slot && ring_init(&r->stale, r->ring_size))
		return false;
	if (r->stale.count >= r->stale.size)
		return false;
	ring_push(&r->stale, f);
	return true;
}

/* Count a frame dropped toward a closed peer; with --wedge, credits. */
static bool drop_unopened(struct fabric *fab, struct stream *s,
			  struct cable_end *e, struct frame *f)
{
	if (fab->opt.wedge) {
		if (!e->credits) {
			e->cable->wedged = true;
			return false;
		}
		e->credits--;
	}
	s->cnt.unopened++;
	if (keep_stale(fab, s, f))
		return true;
	if (f->kind == FRAME_DATA)
		s->cnt.dropped++;
	frame_free(fab, f);
	return true;
}

/* Apply the host's pending drop and corrupt commands to a data frame. */
static bool deliver_faults(struct fabric *fab, struct stream *s,
			   struct stream *r, struct frame *f)
{
	struct host *h = r->svc->host;

	if (f->kind != FRAME_DATA)
		return true;
	if (h->drop_pending) {
		h->drop_pending--;
		s->cnt.dropped++;
		frame_free(fab, f);
		return false;
	}
	if (h->corrupt_pending) {
		h->corrupt_pending--;
		corrupt(f);
		r->cnt.corrupted++;
	}
	r->cnt.rx_frames++;
	r->cnt.rx_bytes += f->len;
	return true;
}

/* May the frame at the head of the tx ring cross now?  Else when. */
static bool may_cross(struct fabric *fab, struct cable_end *e,
		      struct frame *f, uint64_t now, uint64_t *retry_at)
{
	uint64_t stall = e->peer->host->stall_until_ns;

	if (stall > now) {
		*retry_at = stall;
		return false;
	}
	if (f->due_ns > now) {
		*retry_at = f->due_ns;
		return false;
	}
	return take_tokens(fab, e, f->len, now, retry_at);
}

/**
 * pump() - move frames from @s's tx ring over the cable
 *
 * Stops when the peer's rx ring is full (its next read pumps again), or
 * when rate, latency or a stall hold the head frame (a timer pumps again).
 */
void pump(struct fabric *fab, struct stream *s)
{
	struct endpoint *ep = s->ep;
	struct cable_end *e = s->svc->end;
	struct stream *r;
	struct frame *f;
	uint64_t now = now_ns(), retry_at = 0;
	bool moved = false, freed = false;

	if (!ep || ep->state != EP_LIVE || !e || e->cable->wedged)
		return;
	r = stream_receiver(s);
	while ((f = ring_peek(&ep->tx))) {
		if (!r) {
			if (!drop_unopened(fab, s, e, f))
				break;
			ring_pop(&ep->tx);
			freed = true;
			continue;
		}
		if (!may_cross(fab, e, f, now, &retry_at))
			break;
		/* the one spare slot is for a CLOSE */
		if (r->ep->rx.count >= r->ep->rx.size + (f->kind == FRAME_CLOSE))
			break;
		ring_pop(&ep->tx);
		freed = true;
		if (!deliver_faults(fab, s, r, f))
			continue;
		if (f->kind == FRAME_CLOSE)
			r->ep->peer_closed = true;
		e->frames++;
		e->bytes += f->len;
		ring_push(&r->ep->rx, f);
		moved = true;
	}
	if (retry_at)
		schedule_pump(fab, s, retry_at);
	if (moved)
		ep_wake(r->ep);
	if (freed)
		ep_wake(ep);
}

static struct endpoint *endpoint_new(struct fabric *fab, struct stream *s)
{
	struct host *h = s->svc->host;
	struct endpoint *ep;

	if (h->rings_used + 1 >= fab->opt.rings)
		return NULL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	if (ring_init(&ep->tx, s->ring_size) || ring_init(&ep->rx, s->ring_size))
		goto err_rings;
	ep->stream = s;
	ep->state = EP_LIVE;
	list_init(&ep->handles);
	cond_init(&ep->cond);
	h->rings_used++;
	s->refs++;
	s->ep = ep;
	if (s->svc->end)
		s->svc->end->peer->credits = TB_CREDITS;
	return ep;

err_rings:
	free(ep->tx.slot);
	free(ep->rx.slot);
	free(ep);
	return NULL;
}

/* Give the rings back; the endpoint lives on while handles hold it. */
static void endpoint_teardown(struct fabric *fab, struct endpoint *ep)
{
	struct stream *s = ep->stream;

	s->cnt.dropped += ep->tx.count;
	ring_drain(fab, &ep->tx);
	ring_drain(fab, &ep->rx);
	if (s->ep == ep) {
		s->ep = NULL;
		s->svc->host->rings_used--;
	}
}

/**
 * endpoint_kill() - the stream was unplugged or removed under its users
 *
 * Every call on the old handles fails from now on (ENXIO, or end of file
 * for readers of a removed stream); a new open starts afresh.
 */
void endpoint_kill(struct fabric *fab, struct endpoint *ep,
		   enum ep_state why)
{
	if (ep->state != EP_LIVE)
		return;
	ep->state = why;
	endpoint_teardown(fab, ep);
	ep_wake(ep);
	pthread_cond_broadcast(&ep->stream->open_cond);
}

static void endpoint_put(struct fabric *fab, struct endpoint *ep)
{
	struct stream *s = ep->stream;

	if (ep->refs)
		return;
	pthread_cond_destroy(&ep->cond);
	free(ep);
	stream_put(s);
}

/*
 * close(2) returns before the kernel's release reaches us (FUSE sends it
 * in the background), whereas a real device's last close is done when
 * close(2) returns.  An open that finds only handles whose files were
 * closed (flushed) waits, briefly, for their release, so that it gets a
 * fresh endpoint as it would on a real device, not the old one's sticky
 * end of file.
 */
static bool ep_releasing(const struct endpoint *ep)
{
	struct list_head *p;

	if (!ep || list_empty(&ep->handles))
		return false;
	list_for_each(p, &ep->handles)
		if (!list_entry(p, struct handle, link)->flushed)
			return false;
	return true;
}

void dev_flush(struct fabric *fab, struct handle *h)
{
	h->flushed = true;
}

static int open_wait(struct fabric *fab, struct stream *s, bool nonblock,
		     struct waiter *w)
{
	uint64_t deadline = now_ns() + 2000000000ULL;

	while (ep_releasing(s->ep) && now_ns() < deadline && !w->interrupted)
		wait_until(fab, &s->open_cond, deadline);
	for (;;) {
		if (fab->shutdown || s->removed)
			return -ENODEV;
		if (!s->attached) {
			if (nonblock)
				return -ENXIO;
		} else if (!s->in_hopid || !s->out_hopid) {
			return -EINVAL;
		} else if (!s->ep || !s->ep->closing) {
			return 0;
		}
		if (w->interrupted)
			return -EINTR;
		wait_on(fab, w, &s->open_cond);
	}
}

/* A new endpoint reads the frames kept for it first. */
static void take_stale(struct stream *s)
{
	struct frame *f;

	while (s->ep->rx.count < s->ep->rx.size && (f = ring_pop(&s->stale))) {
		s->cnt.rx_frames++;
		s->cnt.rx_bytes += f->len;
		ring_push(&s->ep->rx, f);
	}
}

int dev_open(struct fabric *fab, struct stream *s, bool nonblock,
	     struct waiter *w, struct handle **hp)
{
	struct handle *h;
	int err = open_wait(fab, s, nonblock, w);

	if (err)
		return err;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (!s->ep) {
		if (!endpoint_new(fab, s)) {
			free(h);
			return -ENOMEM;
		}
		take_stale(s);
	}
	h->ep = s->ep;
	h->ep->refs++;
	list_add_tail(&h->link, &h->ep->handles);
	s->nopen++;
	*hp = h;
	/* frames may be waiting for this receiver at the peer */
	if (stream_sender_to(s))
		pump(fab, stream_sender_to(s));
	return 0;
}

/* The last close: CLOSE to the peer, then a bounded flush, then teardown. */
static void endpoint_close(struct fabric *fab, struct endpoint *ep)
{
	struct stream *s = ep->stream;
	struct frame *f = frame_alloc(fab);
	uint64_t deadline = now_ns() + fab->opt.flush_ms * 1000000ULL;

	ep->closing = true;
	if (f) {
		f->kind = FRAME_CLOSE;
		f->due_ns = now_ns() + fab->opt.latency_us * 1000;
		ring_push(&ep->tx, f);
		pump(fab, s);
	}
	while (ep->state == EP_LIVE && ep->tx.count && !fab->shutdown &&
	       now_ns() < deadline)
		wait_until(fab, &ep->cond, deadline);
	if (ep->state == EP_LIVE) {
		ep->state = EP_REMOVED;
		endpoint_teardown(fab, ep);
	}
	ep->closing = false;
	pthread_cond_broadcast(&s->open_cond);
}

void dev_release(struct fabric *fab, struct handle *h)
{
	struct endpoint *ep = h->ep;

	list_del(&h->link);
	if (h->ph)
		fuse_pollhandle_destroy(h->ph);
	free(h);
	ep->refs--;
	ep->stream->nopen--;
	if (!ep->refs && ep->state == EP_LIVE)
		endpoint_close(fab, ep);
	pthread_cond_broadcast(&ep->stream->open_cond);
	endpoint_put(fab, ep);
}

static int read_wait(struct fabric *fab, struct endpoint *ep, bool nonblock,
		     struct waiter *w)
{
	for (;;) {
		if (ep->state == EP_UNPLUGGED)
			return -ENXIO;
		if (ep->state == EP_REMOVED || ep->eof)
			return 0;
		if (fab->shutdown)
			return -EIO;
		if (ring_peek(&ep->rx))
			return 1;
		if (nonblock)
			return -EAGAIN;
		if (w->interrupted)
			return -EINTR;
		wait_on(fab, w, &ep->cond);
	}
}

/*
 * Take up to @size bytes from the rx ring: whole frames are handed out in
 * @frames (the caller replies from them, then frees them), a frame only
 * partly wanted is copied into @tail and stays in the ring.
 */
static ssize_t collect(struct fabric *fab, struct endpoint *ep, size_t size,
		       struct frame **frames, unsigned int *nframes,
		       char *tail, size_t *tail_len)
{
	size_t total = 0;
	struct frame *f;

	while (total < size && *nframes < READ_IOV_MAX &&
	       (f = ring_peek(&ep->rx))) {
		size_t avail = (size_t)(f->len - f->off);

		if (f->kind == FRAME_CLOSE) {
			if (!total) {
				frame_free(fab, ring_pop(&ep->rx));
				ep->eof = true;
			}
			break;
		}
		if (f->crc_error && fab->opt.new_kernel) {
			if (total)
				break;
			frame_free(fab, ring_pop(&ep->rx));
			return -EIO;
		}
		if (avail > size - total) {
			*tail_len = size - total;
			memcpy(tail, f->data + f->off, *tail_len);
			f->off += (uint16_t)*tail_len;
			return (ssize_t)size;
		}
		frames[(*nframes)++] = ring_pop(&ep->rx);
		total += avail;
	}
	return (ssize_t)total;
}

/**
 * dev_read() - a read(2) on the device
 *
 * Return: bytes taken (see collect()), 0 at end of file, or -errno.
 */
ssize_t dev_read(struct fabric *fab, struct handle *h, size_t size,
		 bool nonblock, struct waiter *w, struct frame **frames,
		 unsigned int *nframes, char *tail, size_t *tail_len)
{
	struct endpoint *ep = h->ep;
	struct stream *sender;
	ssize_t n;
	int ret;

	*nframes = 0;
	*tail_len = 0;
	h->flushed = false;
	ret = read_wait(fab, ep, nonblock, w);
	if (ret <= 0)
		return ret;
	n = collect(fab, ep, size, frames, nframes, tail, tail_len);
	sender = stream_sender_to(ep->stream);
	if (sender)
		pump(fab, sender);
	return n;
}

/**
 * dev_write_reserve() - wait for free tx entries and promise some
 *
 * Return: the number of entries reserved for a write of @size bytes (the
 * write is short when fewer than it needs are free), or -errno.
 */
ssize_t dev_write_reserve(struct fabric *fab, struct handle *h, size_t size,
			  bool nonblock, struct waiter *w)
{
	struct endpoint *ep = h->ep;
	size_t need = (size + TB_FRAME_MAX - 1) / TB_FRAME_MAX;
	unsigned int avail;

	h->flushed = false;
	for (;;) {
		if (ep->state != EP_LIVE || fab->shutdown)
			return -ENXIO;
		if (ep->peer_closed && fab->opt.new_kernel)
			return -EPIPE;
		avail = tx_free(ep);
		if (avail)
			break;
		if (ep->peer_closed)
			return -ENXIO;
		if (nonblock)
			return -EAGAIN;
		if (w->interrupted)
			return -EINTR;
		wait_on(fab, w, &ep->cond);
	}
	if (need > avail)
		need = avail;
	ep->tx_reserved += (unsigned int)need;
	return (ssize_t)need;
}

/**
 * dev_write_commit() - queue the frames the caller filled, and send them
 *
 * Return: the bytes written, or -ENXIO when the stream went away while
 * the caller copied (the frames are then freed).
 */
ssize_t dev_write_commit(struct fabric *fab, struct handle *h,
			 struct frame **frames, unsigned int nframes,
			 unsigned int reserved, size_t size)
{
	struct endpoint *ep = h->ep;
	struct stream *s = ep->stream;
	uint64_t due = now_ns() + fab->opt.latency_us * 1000;

	ep->tx_reserved -= reserved;
	if (ep->state != EP_LIVE) {
		for (unsigned int i = 0; i < nframes; i++)
			frame_free(fab, frames[i]);
		return -ENXIO;
	}
	for (unsigned int i = 0; i < nframes; i++) {
		frames[i]->due_ns = due;
		ring_push(&ep->tx, frames[i]);
		s->cnt.tx_frames++;
		s->cnt.tx_bytes += frames[i]->len;
	}
	pump(fab, s);
	return (ssize_t)size;
}

unsigned int dev_poll(struct fabric *fab, struct handle *h,
		      struct fuse_pollhandle *ph)
{
	struct endpoint *ep = h->ep;
	unsigned int ev = 0;

	if (ep->state != EP_LIVE) {
		ev = POLLHUP | POLLERR;
	} else {
		if (ring_peek(&ep->rx) || ep->eof)
			ev |= POLLIN | POLLRDNORM;
		if (tx_free(ep))
			ev |= POLLOUT | POLLWRNORM;
		if (ep->peer_closed && fab->opt.new_kernel)
			ev |= POLLHUP;
	}
	if (ph) {
		if (h->ph)
			fuse_pollhandle_destroy(h->ph);
		h->ph = ph;
	}
	return ev;
}

static void wake(struct fabric *fab, struct stream *s, void *arg)
{
	stream_wake(fab, s);
}

void wake_all(struct fabric *fab)
{
	for_each_stream(fab, wake, NULL);
}
