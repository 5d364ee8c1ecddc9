/* SPDX-License-Identifier: MIT */
/*
 * tbsim internal: the simulated USB4 fabric.
 *
 * Hosts are joined by cables.  Each host has a ConfigFS tree of service
 * directories holding streams, and each stream that is open has an
 * endpoint: a transmit and a receive ring of frames.  A frame written on
 * one host travels over the cable to the peer's stream whose in_hopid is
 * the writer's out_hopid, if that stream is open, and is dropped
 * otherwise, as the contract says of a real link.
 *
 *	writer ──write()──► tx ring ──pump (rate, latency, faults)──► rx ring
 *	                                                               │
 *	reader ◄──read()───────────────────────────────────────────────┘
 *
 * Everything here is protected by the one fabric lock.  The FUSE layer
 * (fs.c) maps file operations onto these objects.
 */
#ifndef TBSIM_FABRIC_H
#define TBSIM_FABRIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "list.h"
#include "node.h"

#define TB_FRAME_MAX 4096
#define TB_HOPID_MIN 8
#define TB_NAME_MAX 8
#define TB_RING_MIN 32
#define TB_RING_MAX 4096
#define TB_RING_DEFAULT 256
#define TB_THROTTLING_MAX 16776960
#define TB_THROTTLING_DEFAULT 8192
#define TB_CREDITS 16 /* frames toward a closed peer before a wedge */

struct fuse_pollhandle;

/* A request that may block: an interrupt sets the flag and wakes it. */
struct waiter {
	volatile bool interrupted;
	pthread_cond_t *cond; /* what it sleeps on, under the fabric lock */
};

enum frame_kind { FRAME_DATA, FRAME_CLOSE };

struct frame {
	struct frame *next; /* in the free list */
	uint64_t due_ns;    /* not delivered before (latency) */
	uint16_t len;
	uint16_t off; /* bytes already read from the front */
	uint8_t kind;
	uint8_t crc_error;
	char data[TB_FRAME_MAX];
};

struct ring {
	struct frame **slot;
	unsigned int size, head, count;
};

/* Why an endpoint stopped working. */
enum ep_state { EP_LIVE, EP_UNPLUGGED, EP_REMOVED };

/* The open state of a stream: rings and paths, shared by all its opens. */
struct endpoint {
	struct stream *stream;
	struct ring tx, rx;
	unsigned int tx_reserved; /* entries promised to writers copying */
	unsigned int refs;
	enum ep_state state;
	bool closing;	  /* last close is flushing the tx ring */
	bool eof;	  /* the peer's CLOSE was read: sticky */
	bool peer_closed; /* the peer's CLOSE arrived */
	struct list_head handles;
	pthread_cond_t cond;
};

/* One open file of a device node. */
struct handle {
	struct list_head link; /* in endpoint->handles */
	struct endpoint *ep;
	struct fuse_pollhandle *ph;
	bool flushed; /* closed by its process, release not yet here */
};

struct counters {
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
	uint64_t dropped, corrupted, unopened;
};

struct stream {
	struct list_head link; /* in service->streams */
	struct service *svc;
	struct node *dir, *devnode;
	char name[TB_NAME_MAX + 1];
	unsigned int id, index;
	int in_hopid, out_hopid, ring_size, throttling, busy_poll;
	bool attached, removed;
	unsigned int refs; /* the directory, endpoints and events */
	unsigned int nopen;
	struct endpoint *ep;
	struct counters cnt;
	/*
	 * With --stale: data frames sent toward this stream while it was
	 * closed, delivered first at its next open (at most ring_size).
	 */
	struct ring stale;
	uint64_t pump_at; /* a pump event is pending for then (0: none) */
	pthread_cond_t open_cond; /* blocking opens wait for attach */
};

/* A ConfigFS directory stream/<domain>-<route>.<index>. */
struct service {
	struct list_head link; /* in host->services */
	struct host *host;
	struct node *dir;
	char name[40];
	unsigned int domain, index;
	uint64_t route;
	struct cable_end *end; /* attached to, or NULL */
	uint64_t in_used, out_used; /* HopID bitmaps */
	struct list_head streams;
};

/* A stream the peer advertised, as this host knows it. */
struct advert {
	char name[TB_NAME_MAX + 1];
	int in_hopid, out_hopid;
};

struct cable_end {
	struct cable *cable;
	struct host *host;
	struct cable_end *peer;
	uint64_t route; /* at which this host sees the other */
	bool present;	/* XDomain and services visible here */
	struct node *xd_node, *svc_node[2];
	struct node *net_link; /* sys/class/net/thunderboltN, with --network */
	int netif;	       /* that N, -1 when there is none */
	struct advert *adv; /* peer's streams, as last received */
	size_t nadv;
	unsigned int credits; /* toward the peer, with --wedge */
	double tokens;	      /* rate limiting toward the peer */
	uint64_t tokens_ns;
	uint64_t frames, bytes; /* sent toward the peer */
};

struct cable {
	unsigned int id;
	struct cable_end end[2];
	bool plugged, wedged;
	unsigned int plug_gen;
};

/* What the kernel of a host has (tbsim --kernel, --driver, --configfs). */
enum host_driver { DRV_LOADED, DRV_UNLOADED, DRV_ABSENT };
enum host_configfs { CFS_MOUNTED, CFS_UNMOUNTED, CFS_NO_USB4 };

struct host {
	unsigned int id;
	char name[32];
	char uuid[40];
	char release[64]; /* proc/sys/kernel/osrelease */
	enum host_driver driver;
	enum host_configfs configfs;
	bool netif_up; /* IP over Thunderbolt up: it holds HopID 8 */
	struct node *root, *devices, *streamdir, *devdir;
	struct node *classnet; /* sys/class/net, with --network */
	uint64_t netif_used;   /* bitmap of thunderboltN numbers */
	unsigned int rings_used;
	struct list_head services;
	unsigned int corrupt_pending, drop_pending;
	uint64_t stall_until_ns;
	uint64_t dev_used; /* bitmap of tbstreamX numbers */
	unsigned int cable_count;
};

/* One --kernel, --driver, --configfs or --netif; host "" is every host. */
enum host_what { HS_KERNEL, HS_DRIVER, HS_CONFIGFS, HS_NETIF };
struct host_setting {
	char host[32];
	enum host_what what;
	char value[64];
};

struct sim_options {
	unsigned int hosts;
	struct host_setting *settings;
	unsigned int nsettings;
	unsigned int rings;	  /* per host controller, one kept back */
	int max_hopid;
	unsigned int adv_delay_ms;
	unsigned int node_delay_ms;
	unsigned int flush_ms;	  /* bound of the flush at last close */
	uint64_t rate;		  /* bytes per second, 0 unlimited */
	uint64_t latency_us;
	bool new_kernel;	  /* EIO on CRC, EPIPE, POLLHUP, busy_poll */
	bool wedge;		  /* model credit wedges */
	bool stale;		  /* keep frames toward a closed end */
	bool network;		  /* peers also offer the network service */
	char link_speed[32];
	char (*cable_spec)[2][32];
	unsigned int ncable_spec;
};

enum event_kind { EV_PUMP, EV_NODE, EV_XD_APPEAR, EV_ADVERT };

struct event {
	struct list_head link;
	uint64_t when_ns;
	enum event_kind kind;
	struct stream *stream; /* EV_PUMP, EV_NODE: holds a reference */
	struct cable_end *end; /* EV_XD_APPEAR, EV_ADVERT */
	unsigned int plug_gen;
	struct advert *adv; /* EV_ADVERT: the snapshot carried */
	size_t nadv;
};

struct fabric {
	pthread_mutex_t lock;
	struct sim_options opt;
	struct host *hosts;
	unsigned int nhosts;
	struct cable *cables;
	unsigned int ncables;
	unsigned int next_stream_id;
	struct list_head events;
	pthread_cond_t timer_cond;
	pthread_t timer;
	bool shutdown;
	struct node_table nodes;
	struct node *root, *control;
	void (*request_stop)(struct fabric *fab);
	/* frame pool */
	struct frame *free_frames;
	unsigned int nfree_frames;
	uint64_t frames_allocated;
};

/* fabric.c: objects, topology, configuration */
int fabric_init(struct fabric *fab, const struct sim_options *opt);
void fabric_fini(struct fabric *fab);
int fabric_start(struct fabric *fab);
void fabric_stop(struct fabric *fab);
uint64_t now_ns(void);
void cond_init(pthread_cond_t *c);
struct host *fabric_host(struct fabric *fab, const char *name);
void for_each_stream(struct fabric *fab,
		     void (*fn)(struct fabric *, struct stream *, void *),
		     void *arg);
int service_mkdir(struct fabric *fab, struct host *h, const char *name);
int service_rmdir(struct fabric *fab, struct service *svc);
int stream_mkdir(struct fabric *fab, struct service *svc, const char *name);
int stream_rmdir(struct fabric *fab, struct stream *s);
void stream_put(struct stream *s);
int stream_attr_store(struct fabric *fab, struct stream *s, const char *attr,
		      const char *buf, size_t len);
int stream_attr_show(struct stream *s, const char *attr, char *buf,
		     size_t size);
int cable_plug(struct fabric *fab, struct cable *c);
int cable_unplug(struct fabric *fab, struct cable *c);
void schedule(struct fabric *fab, struct event *ev);
int fabric_status(struct fabric *fab, char **buf, size_t *len);

/* device.c: the character device */
int dev_open(struct fabric *fab, struct stream *s, bool nonblock,
	     struct waiter *w, struct handle **hp);
void dev_release(struct fabric *fab, struct handle *h);
void dev_flush(struct fabric *fab, struct handle *h);
ssize_t dev_read(struct fabric *fab, struct handle *h, size_t size,
		 bool nonblock, struct waiter *w, struct frame **frames,
		 unsigned int *nframes, char *tail, size_t *tail_len);
ssize_t dev_write_reserve(struct fabric *fab, struct handle *h, size_t size,
			  bool nonblock, struct waiter *w);
ssize_t dev_write_commit(struct fabric *fab, struct handle *h,
			 struct frame **frames, unsigned int nframes,
			 unsigned int reserved, size_t size);
unsigned int dev_poll(struct fabric *fab, struct handle *h,
		      struct fuse_pollhandle *ph);
void pump(struct fabric *fab, struct stream *s);
void endpoint_kill(struct fabric *fab, struct endpoint *ep,
		   enum ep_state why);
void stream_wake(struct fabric *fab, struct stream *s);
void wake_all(struct fabric *fab);
struct stream *stream_sender_to(struct stream *r);

/* frames.c: the frame pool (own lock, usable without the fabric lock) */
struct frame *frame_alloc(struct fabric *fab);
void frame_free(struct fabric *fab, struct frame *f);
void frames_fini(struct fabric *fab);
int ring_init(struct ring *r, unsigned int size);
void ring_drain(struct fabric *fab, struct ring *r);
void ring_push(struct ring *r, struct frame *f);
struct frame *ring_peek(struct ring *r);
struct frame *ring_pop(struct ring *r);

/* control.c */
int control_write(struct fabric *fab, const char *buf, size_t len);

#endif
