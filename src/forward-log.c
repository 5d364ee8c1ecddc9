// SPDX-License-Identifier: MIT
/*
 * tbstream forward: the log.  One line per event on standard error
 * ("tbstream: forward: ..."), or with --json one JSON object per line on
 * standard output:
 *
 *	{"event":"close","message":"connection 3 from 127.0.0.1:50122: ..."}
 *
 * Events of single connections (open, close, refuse) only with -v or
 * --json.  A line may hold the peer's text (an origin, a reason, a
 * session error with the peer's ABORT message): every line is escaped
 * as it is written (escape.h), so no byte from the peer drives a
 * terminal or breaks a JSON line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "forward.h"

void fwd_text(const uint8_t *s, size_t n, char *out, size_t cap)
{
	n = strnlen((const char *)s, n);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

static bool per_connection(const char *event)
{
	return !strcmp(event, "open") || !strcmp(event, "close") ||
	       !strcmp(event, "refuse") || !strcmp(event, "accept");
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
		flockfile(stderr);
		fputs("tbstream: forward: ", stderr);
		esc_write(stderr, line, ESC_TERM);
		fputc('\n', stderr);
		funlockfile(stderr);
		return;
	}
	flockfile(stdout);
	fputs("{\"event\":", stdout);
	json_str(stdout, event);
	fputs(",\"message\":", stdout);
	json_str(stdout, line);
	fputs("}\n", stdout);
	fflush(stdout);
	funlockfile(stdout);
}
