/* SPDX-License-Identifier: MIT */
/*
 * What the round-trip benchmarks share: a clock in microseconds, and
 * reading or writing exactly so many bytes.
 */
#ifndef TBS_BENCH_RTT_H
#define TBS_BENCH_RTT_H

#include <errno.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 10 /* round trips before those counted */

static inline double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Writes (@wr) or reads @len bytes at @buf; -1 at the end or an error. */
static inline int full(int fd, void *buf, size_t len, bool wr)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = wr ? write(fd, (char *)buf + done, len - done) :
			 read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

#endif
