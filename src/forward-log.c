// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the log.  One line per event on standard error
 * ("tbstream: forward: ..."), or with --json one JSON object per line on
 * standard output:
 *
 *	{"event":"close","message":"connection 3 from 127.0.0.1:50122: ..."}
 *
 * Events of single connections (open, close, refuse) only with -v or
 * --json.  Text that came from the peer is escaped before it gets here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "forward.h"

void fwd_escape(const uint8_t *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	if (!cap)
		return;
	for (i = 0; i < n && o + 5 < cap; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x",
					      s[i]);
	}
	out[o] = '\0';
}

static bool per_connection(const char *event)
{
	return !strcmp(event, "open") || !strcmp(event, "close") ||
	       !strcmp(event, "refuse");
}

void fwd_log(const struct fwd_log *l, const char *event, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (per_connection(event) && !l->verbose && !l->json)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!l->json) {
		fprintf(stderr, "tbstream: forward: %s\n", line);
		return;
	}
	fputs("{\"event\":", stdout);
	json_str(stdout, event);
	fputs(",\"message\":", stdout);
	json_str(stdout, line);
	fputs("}\n", stdout);
	fflush(stdout);
}
