/* SPDX-License-Identifier: MIT */
/*
 * tbstream command: the progress line of long transfers.
 *
 * Drawn on standard error only when it is a terminal, at most ten times a
 * second, as one line rewritten in place:
 *
 *	sending  1.21 GiB / 4.00 GiB  30%  1.05 GB/s  0:02 left  files 12/40
 */
#ifndef TBSTREAM_PROGRESS_H
#define TBSTREAM_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *label;
	uint64_t total_bytes; /* 0 when unknown */
	uint64_t total_items; /* 0: no item count shown */
	uint64_t bytes, items, skipped;
	uint64_t start_ns, drawn_ns;
	bool enabled, drawn;
};

void progress_init(struct progress *p, const char *label, bool quiet);
void progress_set_total(struct progress *p, uint64_t bytes, uint64_t items);
void progress_update(struct progress *p, uint64_t bytes, uint64_t items);
void progress_skip(struct progress *p, uint64_t skipped);
void progress_end(struct progress *p);
double progress_rate(const struct progress *p);
uint64_t progress_elapsed_ms(const struct progress *p);
int format_bytes(char *buf, size_t size, double bytes);

#endif
