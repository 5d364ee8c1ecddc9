/* SPDX-License-Identifier: MIT */
/*
 * libtbstream: USB4STREAM streams between two hosts, without manual set-up.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure, unless its comment says otherwise.  The library keeps no global
 * state; every call that touches the system takes the system root ("/" on a
 * real machine, a tbsim host directory in tests).
 *
 * The ABI.  Only the functions declared here are exported, each under the
 * symbol version of the release that added it (lib/libtbstream.sym); the
 * soname changes only when something existing changes incompatibly.
 *
 * Option structs (every struct tbs_*_opts) grow without breaking programs
 * built against an older header, by one convention:
 *  - the first member is "size_t size", the size of the struct as the
 *    program was compiled; declare and fill one with TBS_OPTS_INIT(), which
 *    sets it and zero-fills the rest:
 *
 *	struct tbs_up_opts o = TBS_OPTS_INIT(tbs_up_opts, .timeout_ms = 5000);
 *
 *  - zero is the default of every member, so a member added later keeps
 *    the older behaviour for a program that does not know it;
 *  - new members are only ever added at the end, and so that the struct
 *    has no padding after its last member (the library checks both);
 *  - a NULL pointer to options means every default;
 *  - the library reads only the first @size bytes (members beyond them
 *    take their defaults), fails with -EINVAL when @size is smaller than
 *    the first published layout (zero: TBS_OPTS_INIT() was not used), and
 *    with -E2BIG when the program's struct is larger than the library
 *    knows and a member the library does not know is not zero.
 *
 * Structs the library fills in (struct tbs_stream, struct tbs_peer, the
 * *_stats structs, struct tbs_error) keep their layout within a soname.
 */
#ifndef TBSTREAM_H
#define TBSTREAM_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * TBS_OPTS_INIT() - a zero-filled option struct with its size set
 * @type: the struct's tag without "struct", e.g. tbs_up_opts
 * @...:  designated initialisers of the members to set (may be empty)
 *
 * An expression of type struct @type: use it to declare options or to
 * reset them, e.g. "o = TBS_OPTS_INIT(tbs_tree_opts);".
 */
#define TBS_OPTS_INIT(type, ...) \
	((struct type){ .size = sizeof(struct type), __VA_ARGS__ })

/**
 * tbs_version() - the library's version
 *
 * Return: a static string such as "0.1.0".
 */
const char *tbs_version(void);

/* --- streams --- */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/** Longest message a &struct tbs_error holds, with its terminating NUL. */
#define TBS_MSG_MAX 512
/** Longest stream name: it is published as an XDomain property key. */
#define TBS_NAME_MAX 8

/**
 * struct tbs_error - why a call failed, for a person to read
 * @code: the negative errno the call returned
 * @msg:  what failed and what to do, e.g. "could not write '-1' to
 *        '/sys/.../in_hopid': Device or resource busy"
 *
 * Every call that takes a @err fills it on failure; @err may be NULL.
 */
struct tbs_error {
	int code;
	char msg[TBS_MSG_MAX];
};

/**
 * struct tbs_peer - another host that offers the stream service
 * @unique_id:   the remote host's UUID: the key that names the peer
 * @device_name: name the remote host announces ("" when absent)
 * @vendor_name: vendor the remote host announces ("" when absent)
 * @xdomain:     its sysfs name now, "D-R" (changes with the route)
 * @service:     its stream service now, "D-R.I": the ConfigFS directory
 * @domain:      domain number D
 * @route:       route R
 * @rx_speed:    link speed as sysfs gives it ("40.0 Gb/s"), "" if unknown
 * @tx_speed:    same, transmit
 * @rx_lanes:    lanes, 0 if unknown
 * @tx_lanes:    lanes, 0 if unknown
 * @network:     the peer also offers IP over Thunderbolt
 */
struct tbs_peer {
	char unique_id[64];
	char device_name[64];
	char vendor_name[64];
	char xdomain[32];
	char service[40];
	unsigned int domain;
	unsigned long long route;
	char rx_speed[24];
	char tx_speed[24];
	int rx_lanes;
	int tx_lanes;
	bool network;
};

/**
 * tbs_host_uid() - this host's own unique id in a domain
 * @root:   system root ("/" on a real machine)
 * @domain: domain number
 * @buf:    receives the UUID
 * @len:    size of @buf
 * @err:    receives the reason of a failure, may be NULL
 *
 * Return: 0, or -ENODEV when the domain has no host router.
 */
int tbs_host_uid(const char *root, unsigned int domain, char *buf, size_t len,
		 struct tbs_error *err);

/**
 * tbs_peers_list() - the hosts connected now that offer the stream service
 * @root:  system root
 * @peers: receives an array to free with tbs_peers_free(), NULL if none
 * @err:   receives the reason of a failure, may be NULL
 *
 * Return: the number of peers (0 when there is none), -ENODEV when there
 * is no Thunderbolt bus, or another negative errno.
 */
int tbs_peers_list(const char *root, struct tbs_peer **peers,
		   struct tbs_error *err);

/**
 * tbs_peers_free() - free what tbs_peers_list() returned
 * @peers: the array, may be NULL
 */
void tbs_peers_free(struct tbs_peer *peers);

/**
 * tbs_peer_find() - the one peer a user means
 * @root: system root
 * @spec: unique id, device name, route ("0-503" or "503"), or NULL for
 *        "the only peer"
 * @peer: receives the peer
 * @err:  receives the reason of a failure, may be NULL
 *
 * Return: 0; -ENODEV when no peer (or none matching) is connected, with a
 * message that says whether the bus, the driver or the cable is missing;
 * -ENOTUNIQ when @spec is NULL and several peers are connected.
 */
int tbs_peer_find(const char *root, const char *spec, struct tbs_peer *peer,
		  struct tbs_error *err);

/**
 * struct tbs_stream - a stream as configured in ConfigFS
 * @name:       stream name
 * @service:    ConfigFS service directory ("0-503.0")
 * @peer_uid:   unique id of the peer behind @service, "" when not connected
 * @index:      X of /dev/tbstreamX, -1 if unknown
 * @device:     the device path under the root, "" if @index is unknown
 * @in_hopid:   receive HopID, 0 when unset
 * @out_hopid:  transmit HopID, 0 when unset
 * @ring_size:  DMA ring entries
 * @throttling: interrupt throttling, ns
 * @connected:  the peer behind @service is connected now
 * @holder:     a process that has the device open, 0 if none
 * @holders:    how many processes have the device open; -1 when not looked
 *              up (tbs_stream_get() does not, tbs_streams_list() and
 *              tbs_stream_find() do)
 * @holder_comm: command name of @holder
 */
struct tbs_stream {
	char name[TBS_NAME_MAX + 1];
	char service[40];
	char peer_uid[64];
	int index;
	char device[4096];
	int in_hopid;
	int out_hopid;
	int ring_size;
	int throttling;
	bool connected;
	pid_t holder;
	int holders;
	char holder_comm[32];
};

/**
 * tbs_streams_list() - every stream configured, connected peer or not
 * @root:    system root
 * @streams: receives an array to free with tbs_streams_free()
 * @err:     receives the reason of a failure, may be NULL
 *
 * Return: the number of streams, or -ENOENT (with a message) when the
 * stream driver's ConfigFS directory is missing.
 */
int tbs_streams_list(const char *root, struct tbs_stream **streams,
		     struct tbs_error *err);

/**
 * tbs_streams_free() - free what tbs_streams_list() returned
 * @streams: the array, may be NULL
 */
void tbs_streams_free(struct tbs_stream *streams);

/**
 * tbs_stream_get() - read one stream's configuration
 * @root:    system root
 * @service: ConfigFS service directory ("0-503.0")
 * @name:    stream name
 * @st:      receives the stream
 * @err:     receives the reason of a failure, may be NULL
 *
 * Reads ConfigFS and sysfs only, so that it can be polled cheaply; the
 * holders (@st->holders is -1) come from tbs_stream_holders().
 *
 * Return: 0, or -ENOENT when the stream does not exist.
 */
int tbs_stream_get(const char *root, const char *service, const char *name,
		   struct tbs_stream *st, struct tbs_error *err);

/**
 * tbs_stream_create() - create a stream directory (and its service's)
 * @root:    system root
 * @service: ConfigFS service directory ("0-503.0")
 * @name:    stream name, at most %TBS_NAME_MAX bytes
 * @err:     receives the reason of a failure, may be NULL
 *
 * Return: 0, -EEXIST when it exists already, or another negative errno.
 */
int tbs_stream_create(const char *root, const char *service, const char *name,
		      struct tbs_error *err);

/**
 * tbs_stream_remove() - remove a stream, and its service directory if empty
 * @root:    system root
 * @service: ConfigFS service directory
 * @name:    stream name
 * @err:     receives the reason of a failure, may be NULL
 *
 * Does not look for holders; see tbs_stream_down().
 *
 * Return: 0, or a negative errno.
 */
int tbs_stream_remove(const char *root, const char *service, const char *name,
		      struct tbs_error *err);

/** enum tbs_attr - the writable attributes of a stream */
enum tbs_attr {
	TBS_ATTR_IN_HOPID,
	TBS_ATTR_OUT_HOPID,
	TBS_ATTR_RING_SIZE,
	TBS_ATTR_THROTTLING,
};

/**
 * tbs_stream_set() - write one attribute of a stream
 * @root:    system root
 * @service: ConfigFS service directory
 * @name:    stream name
 * @attr:    which attribute
 * @value:   the value (-1 allocates a HopID, 0 releases it)
 * @err:     receives the reason of a failure, may be NULL
 *
 * Set ring size and throttling before the HopIDs and before any open.
 *
 * Return: 0; -EBUSY while the device is open or the HopID is taken;
 * -EINVAL when the value is out of range.
 */
int tbs_stream_set(const char *root, const char *service, const char *name,
		   enum tbs_attr attr, long value, struct tbs_error *err);

/**
 * tbs_stream_holders() - the processes that have a device open
 * @root:    system root
 * @st:      the stream (its @device is used)
 * @pids:    receives up to @max process ids
 * @max:     size of @pids
 * @exclude: a process id to leave out (0: none)
 *
 * Scans /proc/PID/fd of every process this user may see.
 *
 * Return: the number of holders found (may exceed @max).
 */
int tbs_stream_holders(const char *root, const struct tbs_stream *st,
		       pid_t *pids, size_t max, pid_t exclude);

/** tbs_up_opts.throttling: no interrupt throttling (lowest latency). */
#define TBS_THROTTLING_OFF (-1)

/**
 * struct tbs_up_opts - how tbs_stream_up() sets a stream up
 * @size:       sizeof(struct tbs_up_opts): use TBS_OPTS_INIT()
 * @timeout_ms: how long to wait for the peer, its advertisement and the
 *              device node; 0 means 30 s
 * @ring_size:  DMA ring entries, 0 for the driver's default
 * @throttling: interrupt throttling in ns, 0 for the driver's default,
 *              %TBS_THROTTLING_OFF for none
 * @cancel_fd:  a descriptor that becomes readable when the caller wants
 *              the call to stop waiting (the read end of a pipe, an
 *              eventfd); 0 for none (standard input is never one)
 */
struct tbs_up_opts {
	size_t size;
	int timeout_ms;
	int ring_size;
	int throttling;
	int cancel_fd;
};

/**
 * tbs_up_opts_profile() - apply a named profile
 * @opts:    options to change
 * @profile: "latency" (small ring, no throttling) or "throughput"
 *           (large ring, default throttling)
 *
 * Return: 0, or -EINVAL for an unknown profile.
 */
int tbs_up_opts_profile(struct tbs_up_opts *opts, const char *profile);

/**
 * tbs_stream_up() - make stream @name usable towards a peer
 * @root:     system root
 * @peer_uid: the peer's unique id (or any @spec of tbs_peer_find()), NULL
 *            for the only peer
 * @name:     stream name
 * @opts:     options, NULL for defaults
 * @st:       receives the stream once usable
 * @err:      receives the reason of a failure, may be NULL
 *
 * Both hosts call this with the same name, in either order, up to the
 * time-out apart.  The host whose unique id sorts lower allocates the
 * HopIDs (from 9 upwards; 8 is kept for IP over Thunderbolt and taken only
 * when nothing else is free); the other creates its stream again until it
 * has taken the HopIDs from the peer's advertisement.  Returns once the
 * device node exists.  On a stream that already has its HopIDs it changes
 * nothing.
 *
 * It heals what killed processes left behind: while the follower's stream
 * does not get its HopIDs, and when the allocator finds none free, streams
 * towards the same peer that no process uses and that the peer does not
 * advertise any more are removed, since they hold HopIDs that may be
 * needed.  Streams the peer still has are kept as they are.
 *
 * Waits up to the time-out for a peer to be connected.  The allocating
 * host cannot tell whether the peer ever runs the same command: only the
 * follower times out, and an open or a session on top finds out for the
 * allocator.
 *
 * Return: 1 when this call created the stream, 0 when it existed already;
 * -ENODEV no peer or no driver, -ENOTUNIQ several peers and no @peer_uid,
 * -ENOSPC no free HopID, -ETIMEDOUT the peer did not advertise the stream
 * (or the device node did not appear) in time, -ECANCELED when
 * @opts->cancel_fd became readable (what this call created is removed
 * again), or another negative errno.
 */
int tbs_stream_up(const char *root, const char *peer_uid, const char *name,
		  const struct tbs_up_opts *opts, struct tbs_stream *st,
		  struct tbs_error *err);

/**
 * tbs_stream_find() - find a configured stream by peer and name
 * @root:     system root
 * @peer_uid: the peer's unique id, or NULL for any peer
 * @name:     stream name
 * @st:       receives the stream
 * @err:      receives the reason of a failure, may be NULL
 *
 * Return: 0; -ENOENT when no such stream exists; -ENOTUNIQ when @peer_uid
 * is NULL and streams of that name exist towards several peers.
 */
int tbs_stream_find(const char *root, const char *peer_uid, const char *name,
		    struct tbs_stream *st, struct tbs_error *err);

/**
 * tbs_stream_down() - remove a stream unless a process holds it
 * @root:  system root
 * @st:    the stream (from tbs_stream_find())
 * @force: remove it even while held (readers see end of file)
 * @err:   receives the reason of a failure, may be NULL
 *
 * Removes the service directory as well once it is empty.
 *
 * Return: 0, or -EBUSY naming the holding process.
 */
int tbs_stream_down(const char *root, const struct tbs_stream *st, bool force,
		    struct tbs_error *err);

/** Open the endpoint's descriptors non-blocking. */
#define TBS_EP_NONBLOCK 0x1

/**
 * struct tbs_endpoint - an open stream device, used by this process alone
 * @rfd:  descriptor to read from
 * @wfd:  descriptor to write to (a second open of the same device, so the
 *        two directions can block independently; over the network
 *        transport, the connected socket itself, equal to @rfd)
 * @path: the device path
 */
struct tbs_endpoint {
	int rfd;
	int wfd;
	char path[4096];
};

/**
 * tbs_endpoint_open() - open a configured stream for exclusive use
 * @root:       system root
 * @st:         the stream (from tbs_stream_up() or tbs_stream_find())
 * @timeout_ms: how long to wait for the node and the peer's connection
 * @flags:      %TBS_EP_NONBLOCK or 0
 * @ep:         receives the descriptors
 * @err:        receives the reason of a failure, may be NULL
 *
 * Never blocks longer than @timeout_ms: the device is probed with
 * O_NONBLOCK until it attaches.  Takes an exclusive flock on the device and
 * checks that no other process has it open (a second reader would steal
 * frames).
 *
 * Return: 0; -ETIMEDOUT the peer was not connected in time; -EBUSY another
 * process has the device; -ENOMEM no free DMA ring; -EINVAL HopIDs unset.
 */
int tbs_endpoint_open(const char *root, const struct tbs_stream *st,
		      int timeout_ms, int flags, struct tbs_endpoint *ep,
		      struct tbs_error *err);

/**
 * tbs_endpoint_close() - close both descriptors (the peer sees end of file)
 * @ep: the endpoint; its descriptors become -1
 *
 * A connection of the network transport (tbs_net_open()) first ends its
 * sending direction, then waits at most half a second for the peer's end.
 */
void tbs_endpoint_close(struct tbs_endpoint *ep);

/**
 * enum tbs_check - what a check of tbs_diagnose() found
 * @TBS_CHECK_OK:   as it should be
 * @TBS_CHECK_INFO: worth knowing; nothing to do
 * @TBS_CHECK_WARN: streams work, but something is likely to fail
 * @TBS_CHECK_FAIL: streams cannot work until it is fixed
 */
enum tbs_check {
	TBS_CHECK_OK,
	TBS_CHECK_INFO,
	TBS_CHECK_WARN,
	TBS_CHECK_FAIL,
};

/**
 * typedef tbs_diag_fn - receives one finding of tbs_diagnose()
 * @arg:    the @arg given to tbs_diagnose()
 * @check:  what was checked: "kernel", "bus", "driver", "configfs",
 *          "peer", "transport", "network", "rings", "streams" (others
 *          may be added)
 * @status: what was found
 * @code:   a negative errno for %TBS_CHECK_FAIL (-ENODEV: something is
 *          missing), else 0
 * @msg:    the finding and what to do, one line
 */
typedef void (*tbs_diag_fn)(void *arg, const char *check,
			    enum tbs_check status, int code, const char *msg);

/**
 * tbs_diagnose() - check the whole chain from the kernel to the streams
 * @root:   system root
 * @peer:   restrict the stream checks to this peer's unique id, or NULL
 * @report: called once or more per check, in order, may be NULL
 * @arg:    passed to @report
 *
 * Finds a kernel without the stream driver (before 7.2), no Thunderbolt
 * bus, the module not loaded, ConfigFS not mounted or the kernel built
 * without CONFIG_USB4_CONFIGFS, no peer (or one without the stream
 * service), the transport each connected host gets (USB4STREAM or IP over
 * Thunderbolt, and why), IP over Thunderbolt and HopID 8, the streams
 * holding DMA rings, and streams that cannot work; changes nothing.  While
 * the commands can use IP over Thunderbolt towards a peer, failures of the
 * stream driver's chain are reported as warnings.
 *
 * Return: 0 when no check failed, else the @code of the first failure.
 */
int tbs_diagnose(const char *root, const char *peer, tbs_diag_fn report,
		 void *arg);

/* --- end streams --- */

/* --- transports --- */
/*
 * Two transports join the two hosts of a cable, each giving a struct
 * tbs_endpoint that the session runs over unchanged: a USB4STREAM stream
 * (above), and TCP over IP over Thunderbolt (the thunderbolt-net interface
 * towards the peer) for kernels without the stream driver.  On the
 * network, the two hosts meet with IPv6 link-local addresses on that
 * interface only, and agree which transfer is which by the stream name
 * (docs/PROTOCOL.md, section 11).
 */

/**
 * enum tbs_transport - how a job reaches its peer
 * @TBS_TRANSPORT_AUTO:   the stream when both hosts have the stream
 *                        driver, else IP over Thunderbolt
 * @TBS_TRANSPORT_STREAM: a USB4STREAM stream
 * @TBS_TRANSPORT_NET:    TCP over IP over Thunderbolt
 */
enum tbs_transport {
	TBS_TRANSPORT_AUTO = 0,
	TBS_TRANSPORT_STREAM = 1,
	TBS_TRANSPORT_NET = 2,
};

/**
 * struct tbs_offer - what a connected host offers, and what this host can
 *                    use towards it
 * @unique_id:      the remote host's UUID
 * @device_name:    the name it announces ("" when absent)
 * @xdomain:        its XDomain now, "D-R"
 * @stream_service: its stream service "D-R.I", "" when its stream driver
 *                  is not loaded
 * @net_service:    its IP over Thunderbolt service, "" when it has none
 * @ifname:         this host's network interface of that service
 *                  ("thunderbolt0"), "" when there is none here
 * @stream_here:    this host has the stream driver
 * @transport:      what %TBS_TRANSPORT_AUTO uses towards it, or
 *                  %TBS_TRANSPORT_AUTO when neither transport can work
 * @why:            one line: why that transport, or why none
 */
struct tbs_offer {
	char unique_id[64];
	char device_name[64];
	char xdomain[32];
	char stream_service[40];
	char net_service[40];
	char ifname[32];
	bool stream_here;
	int transport;
	char why[256];
};

/**
 * tbs_offers_list() - every connected host and the transports towards it
 * @root:   system root
 * @offers: receives an array to free with tbs_offers_free(), NULL if none
 * @err:    receives the reason of a failure, may be NULL
 *
 * Unlike tbs_peers_list(), also lists hosts without the stream service.
 *
 * Return: the number of hosts, -ENODEV when there is no Thunderbolt bus,
 * or another negative errno.
 */
int tbs_offers_list(const char *root, struct tbs_offer **offers,
		    struct tbs_error *err);

/**
 * tbs_offers_free() - free what tbs_offers_list() returned
 * @offers: the array, may be NULL
 */
void tbs_offers_free(struct tbs_offer *offers);

/**
 * tbs_transport_choose() - the transport of a job towards a peer
 * @root:  system root
 * @peer:  unique id, device name or route of the peer; NULL for the only
 *         connected host
 * @want:  an enum tbs_transport
 * @offer: receives what the peer offers and the choice
 * @err:   receives the reason of a failure, may be NULL
 *
 * Both hosts make the same choice from what each sees: a host offers the
 * stream service exactly when it has the stream driver, so "both hosts
 * have it" reads the same on either side.
 *
 * Return: %TBS_TRANSPORT_STREAM or %TBS_TRANSPORT_NET; -ENODEV when no
 * host (or none matching) is connected or the transport wanted cannot
 * work (the message says what is missing on which host); -ENOTUNIQ when
 * @peer is NULL and several hosts are connected.
 */
int tbs_transport_choose(const char *root, const char *peer, int want,
			 struct tbs_offer *offer, struct tbs_error *err);

/** The UDP port of the announcements on the network (PROTOCOL.md, 11.2). */
#define TBS_NET_PORT 17272

/* tbs_net_opts.flags */
#define TBS_NET_IFUP 0x1 /* bring a down interface up (CAP_NET_ADMIN) */

/**
 * struct tbs_net_opts - how tbs_net_up() and tbs_net_open() behave
 * @size:       sizeof(struct tbs_net_opts): use TBS_OPTS_INIT()
 * @timeout_ms: how long each of the two waits for the peer; 0 means 30 s
 * @cancel_fd:  a descriptor that becomes readable when the caller wants
 *              the calls to stop waiting; 0 for none
 * @flags:      %TBS_NET_IFUP or 0
 * @port:       UDP port of the announcements, 0 for %TBS_NET_PORT
 */
struct tbs_net_opts {
	size_t size;
	int timeout_ms;
	int cancel_fd;
	unsigned int flags;
	unsigned int port;
};

/** struct tbs_net - the network interface towards a peer, in use */
struct tbs_net;

/**
 * tbs_net_up() - make the interface of IP over Thunderbolt towards a peer
 *                usable
 * @root: system root: it says which interface belongs to the Thunderbolt
 *        bus and to which peer; the interface itself is the running
 *        kernel's, in this process's network namespace
 * @peer: as for tbs_transport_choose()
 * @opts: options, NULL for defaults
 * @np:   receives the interface in use, to free with tbs_net_free()
 * @err:  receives the reason of a failure, may be NULL
 *
 * With %TBS_NET_IFUP, brings a down interface up; tbs_net_down() takes it
 * down again once no other tbstream process uses it.  Nothing else is
 * changed: no address (the kernel's IPv6 link-local address is used), no
 * route, no firewall rule.  Waits until the interface has a usable
 * link-local address, which it gets once the other host's end is up too.
 *
 * Return: 1 when this call brought the interface up, 0 when it was up;
 * -ENODEV no interface of IP over Thunderbolt towards the peer (the
 * message says what is missing), -ENETDOWN it is down (without
 * %TBS_NET_IFUP), -EPERM not allowed to bring it up, -EADDRNOTAVAIL IPv6
 * is disabled on it, -ETIMEDOUT no usable link-local address in time (no
 * carrier: the other host's end is down), -ECANCELED when
 * @opts->cancel_fd became readable (the interface is as it was).
 */
int tbs_net_up(const char *root, const char *peer,
	       const struct tbs_net_opts *opts, struct tbs_net **np,
	       struct tbs_error *err);

/**
 * tbs_net_open() - meet the peer on the network and connect
 * @n:    from tbs_net_up()
 * @name: the stream name: the same on both hosts, at most %TBS_NAME_MAX
 *        bytes
 * @ep:   receives the connection, one socket as both descriptors
 *        (tbs_endpoint_close() closes it)
 * @err:  receives the reason of a failure, may be NULL
 *
 * Announces @name on the interface's link-local all-nodes group, and
 * connects to, or accepts from, the host that announces the same name:
 * only on that interface, only the peer's link-local address, only until
 * one connection is made.  The time-out and cancel_fd of tbs_net_up()
 * apply.
 *
 * Return: 0; -EBUSY another process of this host uses @name towards the
 * peer; -ETIMEDOUT no peer met in time; -ECANCELED; -EINVAL bad name.
 */
int tbs_net_open(struct tbs_net *n, const char *name, struct tbs_endpoint *ep,
		 struct tbs_error *err);

/**
 * tbs_net_down() - undo what tbs_net_up() changed
 * @n:   the interface in use, may be NULL
 * @err: receives the reason of a failure, may be NULL
 *
 * Takes the interface down again if tbs_net_up() (of this process or of
 * one that died) brought it up and no other tbstream process uses it.
 * Safe to call more than once, and from another thread while tbs_net_open()
 * runs (on a signal, before exiting).
 *
 * Return: 0, or a negative errno when the interface could not be taken
 * down.
 */
int tbs_net_down(struct tbs_net *n, struct tbs_error *err);

/**
 * tbs_net_free() - tbs_net_down(), then free
 * @n: the interface in use, may be NULL
 */
void tbs_net_free(struct tbs_net *n);
/* --- end transports --- */

/* --- session --- */
/*
 * The session protocol (docs/PROTOCOL.md) over a pair of file descriptors
 * that behave like /dev/tbstreamX: a handshake that survives lost early
 * frames, checked records, retransmission, and an end-to-end confirmation of
 * each direction.  Each session owns two internal threads (one reads, one
 * runs the timers); the calls below are thread-safe in this sense: one
 * thread may send (tbs_session_send, tbs_session_finish) while another
 * receives (tbs_session_recv, tbs_session_confirm); each of the two groups
 * must be used by one thread at a time.  A send call writes a small record
 * itself when nothing else is being written.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TBS_SESSION_MAX_RECORD (256 * 1024) /* largest record payload */
#define TBS_SESSION_MAX_MSG (1024 * 1024 * 1024) /* largest message */
#define TBS_SESSION_MAX_ID 64 /* longest transfer identity */

enum tbs_session_role {
	TBS_ROLE_DUPLEX = 0, /* both directions may carry data */
	TBS_ROLE_SENDER = 1, /* refuses a peer that is also a sender */
	TBS_ROLE_RECEIVER = 2, /* refuses a peer that is also a receiver */
};

/**
 * struct tbs_session_opts - how a session behaves; zero means the default
 * @size: sizeof(struct tbs_session_opts): use TBS_OPTS_INIT()
 * @role: an enum tbs_session_role
 * @id: transfer identity given to the peer (opaque, may be NULL)
 * @id_len: its length, at most TBS_SESSION_MAX_ID
 * @options: option bits offered to the peer; the intersection is agreed
 * @handshake_ms: how long to wait for the peer's answer (30000)
 * @idle_ms: silence after which the peer is declared gone (10000)
 * @rto_ms: retransmission time-out without acknowledgement (1000)
 * @confirm_ms: how long to wait for the peer to confirm an END (60000)
 * @max_retries: retransmissions of one offset before giving up (8)
 * @window: bytes of unacknowledged data kept for retransmission, and bytes
 *	    of received data buffered for tbs_session_recv (4 MiB, at least
 *	    512 KiB)
 * @flags: TBS_SESSION_CALLER_READS, or 0
 * @read_signal: with TBS_SESSION_CALLER_READS, the signal that interrupts
 *		 a receiving thread's read(2) (reserved by the application,
 *		 such as SIGRTMIN + 1)
 *
 * TBS_SESSION_CALLER_READS (for request and reply, where one message in
 * each direction is all there is): a thread blocked in tbs_session_recv()
 * or tbs_session_recv_msg() with nothing to take reads the descriptor
 * itself, instead of waiting for the session's reader thread to read and
 * wake it, which saves one thread wake-up per received message (on a
 * loaded machine, a round trip waits for a processor at each wake-up).
 * One thread at a time reads: the receiving thread takes the reads over
 * once the reader thread's read returned, and handles every record it
 * reads as the reader thread would (acknowledgements, keep-alives, the
 * end, an abort); the reader thread reads again when no receiver read for
 * 50 ms, or at once when a thread waits for the peer in another call
 * (room in the window, the end, tbs_session_ready()) or the session
 * failed.  A time-out, a failure (the peer vanished or aborted, the cable
 * went away), tbs_session_abort() or tbs_session_close() from another
 * thread interrupt the receiving thread's read with @read_signal
 * (pthread_kill(3)); tbs_session_new() installs an empty handler for it
 * without SA_RESTART, unless the application has a handler of its own
 * without SA_RESTART (-EINVAL with SA_RESTART).  The application must not
 * use @read_signal for anything else; a receiving thread that blocks it
 * waits for the reader thread, as without the flag.  The flag has no
 * effect when reads of @rfd cannot block on their own (see
 * tbs_session_new()).  A time-out of a receiving thread that reads itself
 * expires up to 10 ms late.
 */
struct tbs_session_opts {
	size_t size;
	int role;
	const void *id;
	size_t id_len;
	uint32_t options;
	int handshake_ms;
	int idle_ms;
	int rto_ms;
	int confirm_ms;
	int max_retries;
	size_t window;
	uint32_t flags;
	int read_signal;
};

/* tbs_session_opts.flags */
#define TBS_SESSION_CALLER_READS 0x1 /* receiving threads read themselves */

/**
 * struct tbs_session_stats - counters of one session
 */
struct tbs_session_stats {
	uint64_t bytes_sent; /* payload bytes given to tbs_session_send */
	uint64_t bytes_acked; /* of those, acknowledged by the peer */
	uint64_t bytes_received; /* payload bytes received in order */
	uint64_t records_sent; /* data records written, retransmits included */
	uint64_t records_received; /* valid records of every type */
	uint64_t retransmits; /* go-back-N restarts */
	uint64_t bad_records; /* records with a wrong payload checksum */
	uint64_t garbage_bytes; /* bytes skipped while resynchronising */
	uint64_t nacks_sent;
};

struct tbs_session;

/**
 * tbs_session_new() - allocate a session over two file descriptors
 * @sp: where to store the session
 * @rfd: descriptor to read from
 * @wfd: descriptor to write to (may equal @rfd)
 * @opts: options, or NULL for the defaults
 *
 * Nothing is sent yet.  @wfd is switched to O_NONBLOCK and @rfd to
 * blocking reads (the session's reader thread waits in read(2)), unless
 * they are one descriptor that is not a socket, or share their status
 * flags: then both are non-blocking.  They stay owned by the caller, get
 * their flags back in tbs_session_free(), and must outlive the session.
 *
 * Return: 0, -EINVAL for bad options (a @read_signal that cannot be
 * caught, or whose handler restarts system calls), -E2BIG for options
 * newer than this library, -ENOMEM.
 */
int tbs_session_new(struct tbs_session **sp, int rfd, int wfd,
		    const struct tbs_session_opts *opts);

/**
 * tbs_session_free() - stop the session's threads and free it
 * @s: session, may be NULL
 *
 * Does not wait for the peer: call tbs_session_close() first for an orderly
 * end.  Restores the descriptors' flags; does not close them.
 */
void tbs_session_free(struct tbs_session *s);

/**
 * tbs_session_start() - start the session's threads and run the handshake
 * @s: session from tbs_session_new()
 *
 * Blocks until the peer answered and the versions, roles and options are
 * agreed, at most the handshake time-out.
 *
 * Return: 0; -ETIMEDOUT when the peer never answered, -EPROTONOSUPPORT for
 * an incompatible protocol version, -EPROTO when the peer speaks something
 * else, -EINVAL for incompatible roles, -ECONNRESET or -ENXIO when the
 * stream went away.  tbs_session_error() explains.
 */
int tbs_session_start(struct tbs_session *s);

/**
 * tbs_session_send() - queue one record for the peer
 * @s: started session
 * @type: application record type, passed through unchanged
 * @buf: payload
 * @len: payload length, 1 to TBS_SESSION_MAX_RECORD
 * @timeout_ms: how long to wait for room in the window; -1 waits as long as
 *		the peer is alive
 *
 * Copies the payload; returns when it is queued, not when it arrived.
 *
 * Return: @len; -EAGAIN when the window stayed full for @timeout_ms,
 * -EINVAL for an empty record, -EMSGSIZE for one larger than either side
 * accepts, -EPIPE after tbs_session_finish(), -EBUSY when another thread
 * is sending, or the session's error.
 */
ssize_t tbs_session_send(struct tbs_session *s, uint16_t type,
			 const void *buf, size_t len, int timeout_ms);

/**
 * tbs_session_recv() - take received data, in order
 * @s: started session
 * @type: where to store the record's application type (may be NULL)
 * @buf: destination
 * @len: its size; the rest of a longer record comes with the next calls
 * @timeout_ms: how long to wait for data; -1 waits as long as the peer is
 *		alive
 *
 * Return: bytes copied (> 0); 0 once the peer ended its stream and the
 * whole-stream hash matched; -EAGAIN on time-out; -EBADMSG on a hash
 * mismatch; or the session's error.
 */
ssize_t tbs_session_recv(struct tbs_session *s, uint16_t *type, void *buf,
			 size_t len, int timeout_ms);

/**
 * tbs_session_finish() - end the outgoing stream and wait for confirmation
 * @s: started session
 *
 * Sends END with the length and XXH3 hash of everything sent, then waits
 * until the peer confirmed it with tbs_session_confirm() (or its
 * tbs_session_close()), at most the confirm time-out.
 *
 * Return: 0 when the peer confirmed every byte; a negative errno otherwise.
 */
int tbs_session_finish(struct tbs_session *s);

/**
 * tbs_session_confirm() - confirm the peer's stream to the peer
 * @s: session on which tbs_session_recv() returned 0
 *
 * Call it once the data is durable; the peer's tbs_session_finish() returns
 * only then.
 *
 * Return: 0; -EINVAL when the end of the peer's stream was not yet received;
 * or the session's error.
 */
int tbs_session_confirm(struct tbs_session *s);

/**
 * tbs_session_close() - end the session in order
 * @s: started session
 *
 * Finishes the outgoing stream if that was not done, confirms the incoming
 * stream once it ended and was read completely, and exchanges BYE, so that
 * neither side closes while the other has data in flight.  Every step is
 * bounded by the session's time-outs (a peer that is alive but does not
 * read holds it up to the confirm time-out).  To end it sooner, another
 * thread may call tbs_session_abort() while it runs: it then returns that
 * abort's error within a fraction of a second, and the session's threads
 * are stopped once, by whichever of the two calls comes first, before
 * either returns.  Call tbs_session_free() afterwards, once both returned.
 *
 * Return: 0 when both directions were confirmed; -EBUSY when the peer's data
 * was not read to its end; or the session's error (the abort's @err after
 * a tbs_session_abort() from another thread).
 */
int tbs_session_close(struct tbs_session *s);

/**
 * tbs_session_abort() - end the session because of a local failure
 * @s: session
 * @err: negative errno, such as -ENOSPC
 * @msg: what happened, for a person (at most 200 bytes reach the peer),
 *	 such as "disk full writing backup.img"
 *
 * Sends ABORT with @err and @msg to the peer, whose calls then fail with
 * @err and "peer aborted: @msg", and stops the session's threads (waiting
 * at most a fraction of a second for the ABORT to leave, and at most two
 * seconds for a peer that keeps sending).  Calls on this side fail with
 * @err afterwards, and those blocked in another thread return it:
 * tbs_session_start(), tbs_session_send(), tbs_session_recv(),
 * tbs_session_finish() and tbs_session_close() (which is how an orderly
 * close that waits for a peer that does not read is cut short).  It may be
 * called from any thread at any time between tbs_session_new() and
 * tbs_session_free(), also several times, also while tbs_session_close()
 * runs; once a close returned, it only records @err.  Call
 * tbs_session_free() next, once every other call on @s returned.
 *
 * Return: 0, or -EINVAL when @err is not a negative errno.
 */
int tbs_session_abort(struct tbs_session *s, int err, const char *msg);

/**
 * tbs_session_error() - what went wrong
 * @s: session
 *
 * Return: a message naming the failure and the offset, such as "peer
 * vanished at offset 123456: nothing received for 10 s", or "" while there
 * was none.  A returned message never changes; it is valid until
 * tbs_session_free().
 */
const char *tbs_session_error(struct tbs_session *s);

/**
 * tbs_session_peer_id() - the transfer identity the peer announced
 * @s: started session
 * @buf: destination
 * @len: its size
 *
 * Return: the identity's length (it is truncated to @len), or -ENOTCONN
 * before the handshake.
 */
int tbs_session_peer_id(struct tbs_session *s, void *buf, size_t len);

/**
 * tbs_session_options() - option bits both sides offered
 * @s: started session
 *
 * Return: the agreed option bits (0 before the handshake).
 */
uint32_t tbs_session_options(struct tbs_session *s);

/**
 * tbs_session_get_stats() - copy the session's counters
 * @s: session
 * @st: destination
 */
void tbs_session_get_stats(struct tbs_session *s,
			   struct tbs_session_stats *st);

/*
 * Messages: the same stream of records, with boundaries kept.  A message
 * is one or more records, the last one marked (PROTOCOL.md, 3.2); it
 * arrives whole, in order, checked, with its application type.  Messages
 * and tbs_session_send() bytes may be mixed on one session: tbs_session_recv()
 * reads across boundaries, tbs_session_recv_msg() up to the next one.
 */

/**
 * tbs_session_send_msg() - queue one message for the peer
 * @s: started session
 * @type: application type, passed through unchanged
 * @buf: the message
 * @len: its length, 1 to %TBS_SESSION_MAX_MSG
 * @timeout_ms: how long to wait for room in the window; 0 does not wait,
 *		-1 waits as long as the peer is alive
 *
 * A message up to the window size (&tbs_session_opts.window) is queued
 * whole or not at all: on time-out nothing was queued, so a live source
 * can drop a frame instead of stalling.  A longer message is queued record
 * by record as the window frees (the window is not enlarged): the time-out
 * applies until its first record is queued, after which the call waits as
 * long as the peer is alive.  The payload is copied once, into the window
 * (kept until the peer acknowledged it).  A small message (up to 8 KiB)
 * is written by this call itself when nothing else is being written; a
 * larger one by the session's timer thread; either way at once, with no
 * delay for coalescing.
 *
 * Return: @len; -EAGAIN when the window had no room for it in time;
 * -EINVAL for an empty message; -EMSGSIZE above %TBS_SESSION_MAX_MSG;
 * -EPIPE after tbs_session_finish(); -EBUSY when another thread is
 * sending; or the session's error.
 */
ssize_t tbs_session_send_msg(struct tbs_session *s, uint16_t type,
			     const void *buf, size_t len, int timeout_ms);

/**
 * tbs_session_recv_msg() - take the next message, whole
 * @s: started session
 * @type: where to store its application type (may be NULL)
 * @buf: destination
 * @cap: size of @buf
 * @timeout_ms: how long to wait for a message to begin; 0 does not wait,
 *		-1 waits as long as the peer is alive
 *
 * Copies the message into @buf as its records arrive (the session does
 * not hold a whole message, so messages larger than the window work; a
 * message larger than @cap is consumed and dropped).  Once its first
 * bytes were there the call returns only with the whole message or the
 * session's error.  If tbs_session_recv() took part of a message, the
 * rest of it is the next message.  Several threads may receive at once:
 * they take turns, and each message goes whole to one of them.
 *
 * Return: the message's length (> 0); 0 once the peer ended its stream and
 * the whole-stream hash matched (call tbs_session_confirm() as for
 * tbs_session_recv()); -EAGAIN when no message began in time; -EMSGSIZE
 * when it was longer than @cap (the stream stays usable: the next call
 * returns the next message); -EPROTO when the peer's stream ended inside a
 * message; or the session's error.
 */
ssize_t tbs_session_recv_msg(struct tbs_session *s, uint16_t *type, void *buf,
			     size_t cap, int timeout_ms);

/* tbs_session_ready() bits */
#define TBS_SESSION_RECV 0x1 /* recv would not wait: data, end or error */
#define TBS_SESSION_SEND 0x2 /* the window has room (or the session failed) */
#define TBS_SESSION_ERROR 0x4 /* the session failed: every call says why */

/**
 * tbs_session_fd() - a descriptor for an event loop
 * @s: session
 *
 * The descriptor becomes readable (poll, epoll, select, a GLib source)
 * whenever the session's readiness may have changed: data or the end of
 * the peer's stream arrived, the window freed, the handshake completed,
 * the session failed.  Call tbs_session_ready() then: it says what is
 * ready and makes the descriptor unreadable again until the next change.
 * The descriptor belongs to the session (do not read or close it); it is
 * readable at first, so that the caller looks once.
 *
 * Return: the descriptor, or a negative errno.
 */
int tbs_session_fd(struct tbs_session *s);

/**
 * tbs_session_ready() - what the session can do now without waiting
 * @s: session
 *
 * Clears the readiness of tbs_session_fd().  Use it with calls that do
 * not wait (a time-out of 0), and call it again after each wake-up: each
 * change wakes the descriptor once.
 *
 * Return: %TBS_SESSION_RECV, %TBS_SESSION_SEND and %TBS_SESSION_ERROR bits.
 */
unsigned int tbs_session_ready(struct tbs_session *s);
/* --- end session --- */

/* --- tree --- */
/*
 * The file-tree engine (docs/PROTOCOL.md, section "File trees"): files,
 * directories, symbolic links, hard links, holes and metadata over a started
 * session, each file checked by hash, written beside its target and renamed
 * into place once durable, confirmed file by file, resumable.  One side
 * calls tbs_tree_send(), the other tbs_tree_recv(); both return once every
 * entry was confirmed or refused.  The caller then closes the session
 * (tbs_session_close() after success, tbs_session_free() alone after a
 * failure).
 */

/* tbs_tree_opts.flags */
#define TBS_TREE_OVERWRITE 0x1 /* receiver: replace existing entries */
#define TBS_TREE_UPDATE 0x2 /* receiver: replace only older files */
#define TBS_TREE_SPECIALS 0x4 /* send, or create as root, device nodes
			       * and FIFOs */
#define TBS_TREE_CHECKSUM 0x8 /* either side: a file is unchanged when its
			       * hash matches, not its size and time */
#define TBS_TREE_DELETE 0x10 /* receiver: remove, inside the directory
			      * only and after a complete transfer, what
			      * the sender no longer has; sender: ask for
			      * that (the receiver must allow it) */
#define TBS_TREE_DRY_RUN 0x20 /* either side: change nothing, report
			       * what would change */
#define TBS_TREE_NUMERIC_IDS 0x40 /* either side: owners by number, not
				   * by user and group name */
#define TBS_TREE_NO_XATTRS 0x80 /* either side: no extended attributes */
#define TBS_TREE_NO_ACLS 0x100 /* either side: no POSIX ACLs */
#define TBS_TREE_ALL_XATTRS 0x200 /* receiver, as root: also trusted.* and
				   * security.* (file capabilities) */

/* What tbs_tree_opts.change reports; | TBS_TREE_WOULD in a dry run. */
#define TBS_TREE_CREATED 1 /* an entry that was not there */
#define TBS_TREE_REPLACED 2 /* an entry put in place of another */
#define TBS_TREE_REMOVED 3 /* removed: the sender no longer has it */
#define TBS_TREE_WOULD 0x100

/**
 * struct tbs_tree_stats - what a transfer did, on either side
 * @entries: entries in the transfer (files, directories, links, ...)
 * @files: regular files (hard links not counted)
 * @dirs: directories
 * @symlinks: symbolic links
 * @hardlinks: further names of a file already in the transfer
 * @specials: device nodes and FIFOs
 * @bytes_total: sum of the sizes of the regular files
 * @bytes_data: file bytes that went over the cable in this run
 * @bytes_done: bytes of the files confirmed or found complete
 * @files_done: files confirmed durable by the receiver in this run
 * @files_present: files found complete on the receiver, not sent again
 * @files_resumed: files continued from a partial copy
 * @bytes_resumed: bytes of those partial copies not sent again
 * @failed: entries refused or not transferred
 * @warnings: entries left out with a warning (sockets, specials)
 */
struct tbs_tree_stats {
	uint64_t entries, files, dirs, symlinks, hardlinks, specials;
	uint64_t bytes_total, bytes_data, bytes_done;
	uint64_t files_done, files_present, files_resumed, bytes_resumed;
	uint64_t failed, warnings;
};

/**
 * struct tbs_tree_opts - how a transfer behaves; zero means the default
 * @size: sizeof(struct tbs_tree_opts): use TBS_OPTS_INIT()
 * @flags: TBS_TREE_* bits
 * @max_entries: receiver: most entries accepted (default 16777216)
 * @max_file_size: receiver: largest file accepted (default 2^50)
 * @notify: called for every warning or refused entry with a message a
 *	    person can act on (may be NULL: messages are dropped)
 * @progress: called now and then with the counters (may be NULL); when
 *	      set, the sender first counts what it will send, so that the
 *	      totals are known from the start
 * @arg: passed to @notify, @progress and @change
 * @change: called for every entry created, replaced or removed (with
 *	    %TBS_TREE_WOULD: that would be, in a dry run) with its path
 *	    relative to the receiving directory, raw bytes that must be
 *	    escaped before they are shown (may be NULL).  The receiver
 *	    reports everything; the sender the files it sends and what the
 *	    receiver removed.
 *
 * @notify, @progress and @change are called from the calling thread or,
 * on the sending side, from the engine's receiving thread; they must be
 * thread-safe.
 */
struct tbs_tree_opts {
	size_t size;
	unsigned int flags;
	uint64_t max_entries;
	uint64_t max_file_size;
	void (*notify)(void *arg, const char *msg);
	void (*progress)(void *arg, const struct tbs_tree_stats *st);
	void *arg;
	void (*change)(void *arg, unsigned int what, const char *path);
};

/**
 * tbs_tree_send() - send files and directory trees over a started session
 * @s: session, started (tbs_session_start()) and used by nothing else
 * @paths: what to send; each arrives under the receiver's directory by its
 *	   last component, directories with everything beneath them
 * @n: number of @paths
 * @opts: options, or NULL
 * @st: receives the counters (may be NULL)
 * @err: receives the reason of a failure (may be NULL)
 *
 * Return: 0 when the receiver confirmed every entry; -EIO when some
 * entries were refused or failed (the others were transferred), -ENOENT
 * when a path cannot be read, -EINVAL when two paths end in the same name,
 * -EPROTO when the receiver gave up on the transfer, or the session's
 * error.
 */
int tbs_tree_send(struct tbs_session *s, const char *const *paths, size_t n,
		  const struct tbs_tree_opts *opts, struct tbs_tree_stats *st,
		  struct tbs_error *err);

/**
 * tbs_tree_recv() - receive what tbs_tree_send() sends into a directory
 * @s: session, started and used by nothing else
 * @dir: the directory to write into (created if missing); nothing is ever
 *	 written outside it
 * @opts: options, or NULL
 * @st: receives the counters (may be NULL)
 * @err: receives the reason of a failure (may be NULL)
 *
 * Nothing that was in @dir changes unless @opts allows it
 * (%TBS_TREE_OVERWRITE, %TBS_TREE_UPDATE), and files are confirmed only
 * once every file system they were written to was synced.
 *
 * Return: 0 when every entry was written, verified and made durable;
 * -EIO when some entries were refused or failed (the message names the
 * first), -EPROTO when the sender broke the protocol (nothing more is
 * written), or the session's error.
 */
int tbs_tree_recv(struct tbs_session *s, const char *dir,
		  const struct tbs_tree_opts *opts, struct tbs_tree_stats *st,
		  struct tbs_error *err);
/* --- end tree --- */

/* --- image --- */
/*
 * Disk images over a session (docs/PROTOCOL.md, "Disk images"): the sender
 * reads a block device or an image file and sends only its data (blocks of
 * zeros are described, not sent; optionally compressed with zstd); the
 * receiver writes a sparse raw image file or a block device, checks every
 * extent and the XXH3-128 hash of the whole image, makes it durable, writes
 * a sidecar file describing the image and only then confirms.  An
 * interrupted transfer resumes from the last block the receiver confirmed.
 */
#include <stdint.h>

#define TBS_IMAGE_BLOCK 4096 /* granularity of zero detection */
#define TBS_IMAGE_SIDECAR ".tbsimage" /* suffix of the sidecar file */
#define TBS_IMAGE_JOURNAL ".tbsimage.part" /* suffix of the resume state */
#define TBS_IMAGE_SYNC_EVERY (64ULL << 20) /* default checkpoint interval */

/**
 * struct tbs_image_info - what describes an image (header and sidecar)
 * @size:       bytes of the image
 * @block_size: granularity of zero detection
 * @model:      model of the source device, "" for a file
 * @serial:     serial number of the source device, "" for a file
 * @source:     the source's path on the sending host
 * @hash:       XXH3-128 of the whole image, 32 hex digits ("" until known)
 * @date:       when the image was completed, UTC, ISO 8601
 */
struct tbs_image_info {
	uint64_t size;
	uint32_t block_size;
	char model[64];
	char serial[64];
	char source[256];
	char hash[33];
	char date[32];
};

/**
 * struct tbs_image_stats - counters of one image transfer
 * @size:       bytes of the image
 * @start:      offset the transfer began at (> 0 when it resumed)
 * @done:       offset reached so far
 * @data_bytes: bytes sent or written as data, from @start
 * @zero_bytes: bytes described as zeros, from @start
 * @wire_bytes: extent bytes on the session, after compression
 * @extents:    data extents sent or received
 * @confirmed:  highest offset the receiver confirmed as durable
 * @hash:       XXH3-128 of the whole image once known, else ""
 */
struct tbs_image_stats {
	uint64_t size;
	uint64_t start;
	uint64_t done;
	uint64_t data_bytes;
	uint64_t zero_bytes;
	uint64_t wire_bytes;
	uint64_t extents;
	uint64_t confirmed;
	char hash[33];
};

/**
 * struct tbs_image_opts - how an image is sent or received
 * @size:       sizeof(struct tbs_image_opts): use TBS_OPTS_INIT()
 * @force:      send: read a device even while mounted read-write;
 *              receive: overwrite an existing file that is not a
 *              resumable transfer
 * @compress:   zstd level for the extents sent, 0 for none
 * @sync_every: receive: bytes between checkpoints (sync, journal,
 *              confirmation); 0 for %TBS_IMAGE_SYNC_EVERY
 * @state_dir:  receive: where the journal of a block device target goes
 *              (NULL: /run/tbstream); a file's journal is beside it
 * @progress:   called after each extent with the counters, may be NULL
 * @arg:        passed to @progress
 */
struct tbs_image_opts {
	size_t size;
	bool force;
	int compress;
	uint64_t sync_every;
	const char *state_dir;
	void (*progress)(void *arg, const struct tbs_image_stats *st);
	void *arg;
};

/**
 * tbs_image_probe() - size and identity of a source, and whether it may be
 *                     read
 * @path:  block device, partition or image file
 * @force: allow a device mounted read-write or held by another device
 * @info:  receives size, block size, model, serial and source
 * @err:   receives the reason of a failure, may be NULL
 *
 * Return: 0; -EBUSY when the device (or one of its partitions) is mounted
 * read-write or held (unless @force); -ENOENT, -EACCES, -EINVAL (not a
 * file or block device) or another negative errno.
 */
int tbs_image_probe(const char *path, bool force, struct tbs_image_info *info,
		    struct tbs_error *err);

/**
 * tbs_image_send() - send an image over a started session
 * @s:    session, started as %TBS_ROLE_SENDER
 * @path: block device, partition or image file
 * @opts: options, may be NULL
 * @st:   receives the counters, may be NULL
 * @err:  receives the reason of a failure, may be NULL
 *
 * Resumes where the receiver's journal says, once the receiver's copy of
 * the blocks before it was found identical by hash.  Ends this side's
 * stream and reads the receiver's to its end; the caller then calls
 * tbs_session_close().
 *
 * Return: 0 only when the receiver confirmed that the whole image is
 * durable and its hash matched; a negative errno otherwise.
 */
int tbs_image_send(struct tbs_session *s, const char *path,
		   const struct tbs_image_opts *opts, struct tbs_image_stats *st,
		   struct tbs_error *err);

/**
 * tbs_image_recv() - receive an image over a started session
 * @s:    session, started as %TBS_ROLE_RECEIVER
 * @path: image file to write (created sparse) or block device to restore
 * @opts: options, may be NULL
 * @st:   receives the counters, may be NULL
 * @err:  receives the reason of a failure, may be NULL
 *
 * Refuses a mounted or held device and one smaller than the image.  A file
 * gets a sidecar (@path + %TBS_IMAGE_SIDECAR) once complete.  The last
 * component of @path is followed only when it is a symbolic link to a
 * block device; everything beside the target is written relative to its
 * directory, through files created exclusively.
 *
 * Return: 0 when the image is complete, verified and durable; -EBUSY,
 * -EFBIG (target too small), -EEXIST (file exists), -ELOOP (a symbolic
 * link to no block device), -EBADMSG (hash mismatch), or another negative
 * errno.
 */
int tbs_image_recv(struct tbs_session *s, const char *path,
		   const struct tbs_image_opts *opts, struct tbs_image_stats *st,
		   struct tbs_error *err);

/**
 * tbs_image_sidecar_read() - read the sidecar of an image
 * @image: the image file (the sidecar is @image + %TBS_IMAGE_SIDECAR)
 * @info:  receives what it says
 * @err:   receives the reason of a failure, may be NULL
 *
 * Return: 0, -ENOENT without a sidecar, -EINVAL when it is malformed.
 */
int tbs_image_sidecar_read(const char *image, struct tbs_image_info *info,
			   struct tbs_error *err);

/**
 * tbs_image_verify() - hash an image file or device again
 * @path: the image
 * @info: what it must match (size and hash), e.g. from its sidecar
 * @st:   receives the counters (@done grows while hashing), may be NULL
 * @opts: only @progress and @arg are used, may be NULL
 * @err:  receives the reason of a failure, may be NULL
 *
 * Return: 0 when size and hash match; -EBADMSG when they do not; another
 * negative errno when the image cannot be read.
 */
int tbs_image_verify(const char *path, const struct tbs_image_info *info,
		     const struct tbs_image_opts *opts,
		     struct tbs_image_stats *st, struct tbs_error *err);
/* --- end image --- */

#ifdef __cplusplus
}
#endif

#endif /* TBSTREAM_H */
