// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the local end of connections.  Addresses come from
 * this host's command line only (the peer never names one); they are
 * resolved once, at start.
 *
 *	unix:PATH	a UNIX socket
 *	HOST:PORT	TCP, IPv4 or a name
 *	[V6]:PORT	TCP, IPv6
 *	PORT		TCP on 127.0.0.1
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "child.h"
#include "forward.h"

extern char **environ;

static int parse_unix(const char *path, struct fwd_addr *a, char *msg,
		      size_t len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->sa[0];

	if (!path[0] || strlen(path) >= sizeof(un->sun_path)) {
		snprintf(msg, len, "'%s': a UNIX socket path has 1 to %zu bytes",
			 a->text, sizeof(un->sun_path) - 1);
		return -EINVAL;
	}
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, strlen(path));
	a->salen[0] = sizeof(*un);
	a->n = 1;
	a->is_unix = true;
	return 0;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "PORT" into @host and @port. */
static int split(char *s, const char **host, const char **port)
{
	char *c;

	if (strspn(s, "0123456789") == strlen(s)) {
		*host = "127.0.0.1";
		*port = s;
		return 0;
	}
	if (s[0] == '[') {
		c = strchr(s, ']');
		if (!c || c[1] != ':')
			return -EINVAL;
		*c = '\0';
		*host = s + 1;
		*port = c + 2;
		return 0;
	}
	c = strrchr(s, ':');
	if (!c || strchr(s, ':') != c)
		return -EINVAL;
	*c = '\0';
	*host = s;
	*port = c + 1;
	return 0;
}

static int resolve(const char *host, const char *port, struct fwd_addr *a,
		   char *msg, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *p;
	long pn = cli_parse_num(port);
	int r;

	if (!host[0] || pn < 1 || pn > 65535) {
		snprintf(msg, len,
			 "'%s' is not an address: use HOST:PORT, [V6]:PORT, "
			 "PORT or unix:PATH",
			 a->text);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(msg, len, "could not resolve '%s': %s", host,
			 gai_strerror(r));
		return -EHOSTUNREACH;
	}
	for (p = res; p && a->n < FWD_ADDRS_MAX; p = p->ai_next) {
		if (p->ai_addrlen > sizeof(a->sa[0]))
			continue;
		memcpy(&a->sa[a->n], p->ai_addr, p->ai_addrlen);
		a->salen[a->n++] = p->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
}

int fwd_addr_parse(const char *s, struct fwd_addr *a, char *msg, size_t len)
{
	char copy[sizeof(a->text)];
	const char *host, *port;

	memset(a, 0, sizeof(*a));
	if (strlen(s) >= sizeof(a->text)) {
		snprintf(msg, len, "address too long");
		return -EINVAL;
	}
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (!strncmp(s, "unix:", 5))
		return parse_unix(s + 5, a, msg, len);
	snprintf(copy, sizeof(copy), "%s", s);
	if (split(copy, &host, &port)) {
		snprintf(msg, len,
			 "'%s' is not an address: use HOST:PORT, [V6]:PORT, "
			 "PORT or unix:PATH",
			 s);
		return -EINVAL;
	}
	return resolve(host, port, a, msg, len);
}

void fwd_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
		     size_t cap)
{
	const struct sockaddr_in *in = (const void *)sa;
	const struct sockaddr_in6 *in6 = (const void *)sa;
	char h[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, h, sizeof(h));
		snprintf(buf, cap, "%s:%u", h, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof(h));
		snprintf(buf, cap, "[%s]:%u", h, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "local");
	}
	(void)len;
}

static void tune(int fd, int family)
{
	int one = 1;

	if (family == AF_INET || family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * A UNIX socket path that exists: a socket nobody listens on (left by a
 * process that was killed) is removed; anything else is refused.
 */
static int unix_stale(const struct fwd_addr *a, char *msg, size_t len)
{
	const struct sockaddr_un *un = (const void *)&a->sa[0];
	struct stat sb;
	int fd, r;

	if (lstat(un->sun_path, &sb))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(msg, len,
			 "'%s' exists and is not a socket: choose another "
			 "path or remove it",
			 un->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const void *)un, a->salen[0]) ? errno : 0;
	close(fd);
	if (r == ECONNREFUSED)
		return unlink(un->sun_path) ? -errno : 0;
	snprintf(msg, len, "'%s' is in use: another program listens there",
		 un->sun_path);
	return -EADDRINUSE;
}

int fwd_listen(struct fwd_addr *a, char *msg, size_t len)
{
	const struct sockaddr_un *un = (const void *)&a->sa[0];
	int fd, r, one = 1, fam = a->sa[0].ss_family;
	struct stat sb;

	if (a->is_unix) {
		r = unix_stale(a, msg, len);
		if (r)
			return r;
	}
	fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	if (!a->is_unix)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const void *)&a->sa[0], a->salen[0]) ||
	    listen(fd, SOMAXCONN))
		goto err_close;
	if (a->is_unix && !lstat(un->sun_path, &sb)) {
		a->dev = sb.st_dev;
		a->ino = sb.st_ino;
	}
	return fd;
err_close:
	r = errno;
	close(fd);
	errno = r;
err:
	r = -errno;
	snprintf(msg, len, "could not listen on '%s': %s", a->text,
		 strerror(errno));
	return r;
}

void fwd_unlisten(const struct fwd_addr *a, int fd)
{
	const struct sockaddr_un *un = (const void *)&a->sa[0];
	struct stat sb;

	if (fd < 0)
		return;
	/* Removes the socket file only while it is still ours. */
	if (a->is_unix && a->ino && !lstat(un->sun_path, &sb) &&
	    sb.st_ino == a->ino && sb.st_dev == a->dev)
		unlink(un->sun_path);
	close(fd);
}

int fwd_connect_start(const struct fwd_addr *a, int i, bool *done)
{
	int fam = a->sa[i].ss_family, fd, e;

	fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	tune(fd, fam);
	*done = !connect(fd, (const void *)&a->sa[i], a->salen[i]);
	if (*done || errno == EINPROGRESS || errno == EAGAIN)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

int fwd_spawn(char *const *argv, const char *cmd, pid_t *pid)
{
	char *sh[] = { "sh", "-c", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	r = child_attr_init(&at, true);
	if (r)
		goto err_close;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
	if (argv)
		r = -posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
	else
		r = -posix_spawn(pid, "/bin/sh", &fa, &at, sh, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r)
		goto err_close;
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	return sv[0];
err_close:
	close(sv[0]);
	close(sv[1]);
	return r;
}
