/* SPDX-License-Identifier: MIT */
/*
 * tbstream forward: sockets carried over one stream, many connections at
 * once (docs/PROTOCOL.md, section 10).
 *
 *	forward-wire.c	the messages: encoding, checks of every field
 *	forward-addr.c	addresses from the command line, listening,
 *			connecting, running a command per connection
 *	forward-mux.c	the event loop: connections, credit, the session
 *	forward-conn.c	one connection's buffers and socket I/O
 *	forward-link.c	bringing the stream up, opening it and starting a
 *			session again after every failure, in a thread
 *	forward-log.c	the log: a line per event, peer strings escaped
 *	cmd-forward.c	the command line
 */
#ifndef TBS_FORWARD_H
#define TBS_FORWARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cli.h"
#include "job.h"

/* --- wire (forward-wire.c) --- */

#define FWD_VERSION 1
#define FWD_ID "forward/1" /* the session's transfer identity */
#define FWD_HDR 4 /* u32 connection id before every body but HELLO */
#define FWD_MAX_DATA (TBS_SESSION_MAX_RECORD - FWD_HDR) /* one record */
#define FWD_MIN_DATA 4096
#define FWD_MIN_WINDOW 65536
#define FWD_MAX_WINDOW (64u << 20)
#define FWD_MAX_CONNS 65536
#define FWD_TEXT_MAX 200 /* origin and refusal texts */
#define FWD_MSG_MAX (FWD_HDR + FWD_MAX_DATA) /* largest message */

enum fwd_type {
	FWD_HELLO = 0x4601,
	FWD_OPEN = 0x4602,
	FWD_ACCEPT = 0x4603,
	FWD_REFUSE = 0x4604,
	FWD_DATA = 0x4605,
	FWD_CREDIT = 0x4606,
	FWD_SHUT = 0x4607,
	FWD_RESET = 0x4608,
	FWD_CLOSE = 0x4609,
};

enum fwd_role {
	FWD_ROLE_LISTEN = 1, /* opens connections: accepts local clients */
	FWD_ROLE_CONNECT = 2, /* accepts them: connects or runs a command */
};

struct fwd_hello {
	uint16_t version;
	uint8_t role;
	uint32_t max_conns; /* connections this side holds at once */
	uint32_t window; /* bytes of one connection this side buffers */
	uint32_t max_data; /* largest DATA body this side takes */
};

/* A decoded message; @data and @text point into the buffer decoded. */
struct fwd_msg {
	uint16_t type;
	uint32_t id;
	int32_t err; /* REFUSE, RESET: a positive errno */
	uint32_t credit; /* CREDIT */
	struct fwd_hello hello; /* HELLO */
	const uint8_t *data; /* DATA body; OPEN, REFUSE text */
	size_t len;
};

#define FWD_HELLO_LEN 16

/*
 * Decodes a message of application type @type; checks every field and
 * length.  Return: 0, or -EPROTO with @why naming the fault.
 */
int fwd_decode(uint16_t type, const uint8_t *buf, size_t len,
	       struct fwd_msg *m, const char **why);
size_t fwd_encode_hello(uint8_t *buf, const struct fwd_hello *h);
/* Id, then optional u32 @a, then @text (truncated to FWD_TEXT_MAX). */
size_t fwd_encode(uint8_t *buf, uint16_t type, uint32_t id, uint32_t a,
		  const char *text);
const char *fwd_type_name(uint16_t type);

/* --- addresses (forward-addr.c) --- */

#define FWD_ADDRS_MAX 8

struct fwd_addr {
	char text[300]; /* as given */
	int n;
	struct sockaddr_storage sa[FWD_ADDRS_MAX];
	socklen_t salen[FWD_ADDRS_MAX];
	bool is_unix;
	dev_t dev; /* the UNIX socket file this process made */
	ino_t ino;
};

/*
 * Parses "unix:PATH", "HOST:PORT", "[V6]:PORT" or "PORT" (127.0.0.1) and
 * resolves it.  Return: 0, or a negative errno with @msg set.
 */
int fwd_addr_parse(const char *s, struct fwd_addr *a, char *msg, size_t len);
void fwd_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		     size_t cap);
/*
 * Listens on @a (a stale UNIX socket, one nobody listens on, is replaced).
 * Return: the descriptor, or a negative errno with @msg set.
 */
int fwd_listen(struct fwd_addr *a, char *msg, size_t len);
void fwd_unlisten(const struct fwd_addr *a, int fd);
/* Starts a non-blocking connect to address @i of @a; fd or -errno. */
int fwd_connect_start(const struct fwd_addr *a, int i, bool *done);
/*
 * Runs @argv (or "sh -c @cmd" when @argv is NULL) with one end of a
 * socket pair as standard input and output.  Return: our end or -errno.
 */
int fwd_spawn(char *const *argv, const char *cmd, pid_t *pid);

/* --- log (forward-log.c) --- */

struct fwd_log {
	bool verbose;
	bool json;
};

/*
 * Text of @n bytes from the peer as a C string (up to a NUL, cut to
 * @cap): it is escaped when a log line is written.
 */
void fwd_text(const uint8_t *s, size_t n, char *out, size_t cap);
__attribute__((format(printf, 3, 4))) void
fwd_log(const struct fwd_log *l, const char *event, const char *fmt, ...);

/* --- the engine --- */

struct fwd_conf {
	enum fwd_role role;
	struct fwd_addr addr; /* listen or connect address */
	bool exec; /* connect side: run a command */
	char *const *argv; /* the command, or NULL for @cmd through sh */
	const char *cmd;
	uint32_t max_conns;
	uint32_t window;
	int connect_timeout_ms;
	struct fwd_log log;
	/* Called each time the link comes up (the peer's HELLO came). */
	void (*on_up)(void *arg);
	void *arg;
};

/* Counters, for the log and tests. */
struct fwd_stats {
	uint64_t sessions, conns, refused, resets, violations;
};

struct fwd_mux;
struct fwd_link;

/*
 * The multiplexer: takes each session the link has ready, carries
 * connections over it until it fails or the peer breaks the protocol
 * (then every open connection is reset and the link starts again), until
 * it is asked to stop.
 */
struct fwd_mux *fwd_mux_new(const struct fwd_conf *conf, int listen_fd);
void fwd_mux_free(struct fwd_mux *m);
/*
 * Runs until @stop_fd is readable; @chld_fd is a signalfd of SIGCHLD.
 * Return: 0, or a negative errno.
 */
int fwd_mux_run(struct fwd_mux *m, struct fwd_link *l, int stop_fd,
		int chld_fd);
const struct fwd_stats *fwd_mux_stats(const struct fwd_mux *m);

/* --- the link (forward-link.c) --- */

struct fwd_link;

struct fwd_link_conf {
	const char *root;
	const char *name;
	const char *peer;
	struct tbs_up_opts up;
	const struct fwd_log *log;
	int transport; /* TBS_TRANSPORT_STREAM or TBS_TRANSPORT_NET */
};

int fwd_link_start(struct fwd_link **lp, const struct fwd_link_conf *c);
/* A descriptor that is readable while a session is ready to take. */
int fwd_link_fd(struct fwd_link *l);
/* Takes the ready session (NULL if none). */
struct tbs_session *fwd_link_take(struct fwd_link *l);
/* The session ended (@s from fwd_link_take()): free it and start again. */
void fwd_link_done(struct fwd_link *l, struct tbs_session *s,
		   const char *why);
/*
 * Stops the thread and frees the link.  Return: 1 when it had to create
 * the stream again (it vanished meanwhile), else 0.
 */
int fwd_link_stop(struct fwd_link *l);

/* --- the command (cmd-forward.c), also run by tbstream disk --- */

struct fwd_run {
	struct job j; /* the stream, the peer, bring-up and take-down */
	const char *listen, *connect; /* as given */
	struct fwd_conf conf;
};

void fwd_run_init(struct fwd_run *r, const struct cli *cli,
		  const char *name);

/* The options of forward and disk alike, for getopt_long(). */
enum { FWD_OPT_JSON = 300 };
#define FWD_RUN_SHORTOPTS JOB_SHORTOPTS "m:vh"
#define FWD_RUN_LONGOPTS                                                       \
	JOB_LONGOPTS, { "max-connections", required_argument, NULL, 'm' },     \
		{ "verbose", no_argument, NULL, 'v' },                         \
		{ "json", no_argument, NULL, FWD_OPT_JSON },                   \
	{                                                                      \
		"help", no_argument, NULL, 'h'                                 \
	}
/* Their help: the peer's options, then the job's and the log's. */
#define FWD_RUN_HELP_PEER                                                      \
	"  -p, --peer ID|NAME|ROUTE  the peer, when several are "              \
	"connected\n"                                                          \
	"  -t, --timeout S           how long to wait for the peer at "        \
	"start\n"                                                              \
	"                            (default: as long as it takes)\n"
#define FWD_RUN_HELP_JOB                                                       \
	"      --profile P           latency or throughput\n"                  \
	JOB_TRANSPORT_HELP                                                     \
	"  -k, --keep                leave the stream up afterwards\n"         \
	"  -v, --verbose             a line per connection\n"                  \
	"      --json                events as JSON lines on standard "        \
	"output\n"                                                             \
	"  -h, --help                show this help\n"
/* Handles one option of FWD_RUN_LONGOPTS but help: 0, or -1 if bad. */
int fwd_run_opt(struct fwd_run *r, int c, const char *arg);
/* Runs until a signal (through job_run()); returns the exit status. */
int fwd_run(struct fwd_run *r);

#endif
