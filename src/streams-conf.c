// SPDX-License-Identifier: MIT
/*
 * Reading the persistent streams file.  The format (tbstream.conf(5)):
 *
 *	# comment
 *	PEER  NAME  [PROFILE]
 *
 * fields separated by blanks, one stream per line.  Anything unexpected is
 * an error naming the file and the line: a field too many today may be an
 * option tomorrow, and a file that is read differently from what its
 * author meant must not be acted on.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "streams-conf.h"

#define MAX_STREAMS 1024

static const char *const profiles[] = { "default", "latency", "throughput" };

struct reader {
	const char *path;
	int line;
	struct tbs_error *err;
};

__attribute__((format(printf, 2, 3))) static int bad(struct reader *r,
						     const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r->err) {
		r->err->code = -EINVAL;
		snprintf(r->err->msg, sizeof(r->err->msg), "%s:%d: %s", r->path,
			 r->line, what);
	}
	return -EINVAL;
}

/* @s for a message: bytes that are not printable as \xNN, at most 24. */
static const char *shown(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 5 < len && n < 24; s++) {
		unsigned char ch = *s;

		if (isgraph(ch) && ch != '\\')
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", ch);
	}
	buf[n] = '\0';
	return buf;
}

static bool known_profile(const char *p)
{
	size_t i;

	for (i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (!strcmp(p, profiles[i]))
			return true;
	return false;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (!isgraph((unsigned char)*s))
			return false;
	return true;
}

/* Splits @buf into at most @max blank-separated fields; returns how many. */
static int split(char *buf, char **field, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	buf[strcspn(buf, "#\n")] = '\0';
	for (tok = strtok_r(buf, " \t\r", &save); tok;
	     tok = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return max + 1;
		field[n++] = tok;
	}
	return n;
}

static int parse_line(struct reader *r, char *buf, struct conf_stream *c)
{
	char show[64];
	char *f[3];
	int n = split(buf, f, 3);

	if (n == 0)
		return 0;
	if (n == 1)
		return bad(r, "expected 'PEER NAME [PROFILE]', found only "
			      "one field");
	if (n > 3)
		return bad(r, "expected 'PEER NAME [PROFILE]', found more "
			      "than three fields");
	if (!printable(f[0]) || strlen(f[0]) >= sizeof(c->peer))
		return bad(r, "PEER must be '*', a unique id or a host name "
			      "of at most %zu bytes",
			   sizeof(c->peer) - 1);
	if (strlen(f[1]) > TBS_NAME_MAX || strchr(f[1], '/') ||
	    !printable(f[1]))
		return bad(r, "stream NAME '%s' must have 1 to %d bytes, no "
			      "'/'",
			   shown(f[1], show, sizeof(show)), TBS_NAME_MAX);
	if (n == 3 && !known_profile(f[2]))
		return bad(r, "unknown PROFILE '%s' (default, latency or "
			      "throughput)",
			   shown(f[2], show, sizeof(show)));
	snprintf(c->peer, sizeof(c->peer), "%s", f[0]);
	snprintf(c->name, sizeof(c->name), "%s", f[1]);
	snprintf(c->profile, sizeof(c->profile), "%s",
		 n == 3 ? f[2] : "default");
	c->line = r->line;
	return 1;
}

/* The same stream twice (same peer spelling and name) is an error. */
static int check_twice(struct reader *r, const struct conf_stream *arr,
		       size_t n)
{
	const struct conf_stream *c = &arr[n];
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcasecmp(arr[i].peer, c->peer) &&
		    !strcmp(arr[i].name, c->name))
			return bad(r, "stream '%s' towards '%s' is listed "
				      "already on line %d",
				   c->name, c->peer, arr[i].line);
	if (n >= MAX_STREAMS)
		return bad(r, "more than %d streams", MAX_STREAMS);
	return 0;
}

static int read_lines(FILE *f, struct reader *r, struct conf_stream **out)
{
	struct conf_stream *arr = NULL, *grown;
	size_t n = 0, cap = 0, len = 0;
	char *buf = NULL;
	int ret = 0;

	while (getline(&buf, &len, f) >= 0) {
		r->line++;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			grown = realloc(arr, cap * sizeof(*arr));
			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			arr = grown;
		}
		ret = parse_line(r, buf, &arr[n]);
		if (ret > 0) {
			ret = check_twice(r, arr, n);
			if (!ret)
				n++;
		}
		if (ret < 0)
			break;
	}
	free(buf);
	if (!ret && ferror(f))
		ret = -EIO;
	if (ret < 0) {
		free(arr);
		return ret;
	}
	*out = arr;
	return (int)n;
}

int streams_conf_read(const char *path, struct conf_stream **out,
		      bool *missing, struct tbs_error *err)
{
	struct reader r = { .path = path, .err = err };
	FILE *f;
	int ret;

	*out = NULL;
	*missing = false;
	f = fopen(path, "re");
	if (!f && errno == ENOENT) {
		*missing = true;
		return 0;
	}
	if (!f) {
		ret = -errno;
		goto err_io;
	}
	ret = read_lines(f, &r, out);
	fclose(f);
	if (ret == -EIO || ret == -ENOMEM)
		goto err_io;
	return ret;

err_io:
	if (err) {
		err->code = ret;
		snprintf(err->msg, sizeof(err->msg), "could not read '%s': %s",
			 path, strerror(-ret));
	}
	return ret;
}

bool streams_conf_match(const struct conf_stream *c, const struct tbs_peer *p)
{
	return !strcmp(c->peer, STREAMS_CONF_ANY) ||
	       !strcasecmp(c->peer, p->unique_id) ||
	       !strcmp(c->peer, p->device_name);
}
