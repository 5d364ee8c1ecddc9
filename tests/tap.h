/* SPDX-License-Identifier: MIT */
/*
 * A tiny TAP producer for C tests: each check prints "ok N - what" or
 * "not ok N - what" with the file and line of a failure; tap_done() prints
 * the plan and gives the exit status.  Not part of the library.
 */
#ifndef TBS_TAP_H
#define TBS_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_count, tap_failures;

__attribute__((format(printf, 4, 5))) static inline int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", pass ? "" : "not ", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass) {
		tap_failures++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(a, b, what)                                                    \
	do {                                                                  \
		long long a_ = (a), b_ = (b);                                 \
		if (!ok(a_ == b_, "%s", what))                                \
			printf("#   got %lld, expected %lld\n", a_, b_);      \
	} while (0)

static inline void tap_skip(const char *why)
{
	printf("ok %d # SKIP %s\n", ++tap_count, why);
}

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failures ? 1 : 0;
}

#endif
