// SPDX-License-Identifier: MIT
/*
 * tbstream command: the progress line of long transfers.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

#define REDRAW_NS 100000000ULL

/* Binary units for sizes: "1.21 GiB". */
int format_bytes(char *buf, size_t size, double bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	return snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", bytes, unit[u]);
}

void progress_init(struct progress *p, const char *label, bool quiet)
{
	*p = (struct progress){ .label = label };
	p->enabled = !quiet && isatty(STDERR_FILENO);
	p->start_ns = cli_now_ns();
}

void progress_set_total(struct progress *p, uint64_t bytes, uint64_t items)
{
	p->total_bytes = bytes;
	p->total_items = items;
}

uint64_t progress_elapsed_ms(const struct progress *p)
{
	return (cli_now_ns() - p->start_ns) / 1000000;
}

/* Bytes per second since the start. */
double progress_rate(const struct progress *p)
{
	double s = (double)(cli_now_ns() - p->start_ns) / 1e9;

	return s > 0 ? (double)p->bytes / s : 0;
}

static void draw(struct progress *p)
{
	char done[32], total[32], rate[32];
	double r = progress_rate(p);

	format_bytes(done, sizeof(done), (double)p->bytes);
	format_bytes(total, sizeof(total), (double)p->total_bytes);
	snprintf(rate, sizeof(rate), "%.2f MB/s", r / 1e6);
	fprintf(stderr, "\r\033[K%s  %s", p->label, done);
	if (p->total_bytes) {
		fprintf(stderr, " / %s  %3d%%", total,
			(int)(100.0 * (double)p->bytes /
			      (double)p->total_bytes));
	}
	fprintf(stderr, "  %s", rate);
	if (p->total_bytes && r > 0 && p->bytes < p->total_bytes) {
		unsigned long left =
			(unsigned long)((double)(p->total_bytes - p->bytes) /
					r);

		fprintf(stderr, "  %lu:%02lu left", left / 60, left % 60);
	}
	if (p->total_items)
		fprintf(stderr, "  files %llu/%llu",
			(unsigned long long)p->items,
			(unsigned long long)p->total_items);
	if (p->skipped && p->total_bytes)
		fprintf(stderr, "  %d%% zero",
			(int)(100.0 * (double)p->skipped /
			      (double)p->total_bytes));
	fflush(stderr);
	p->drawn = true;
}

void progress_update(struct progress *p, uint64_t bytes, uint64_t items)
{
	uint64_t now;

	p->bytes = bytes;
	p->items = items;
	if (!p->enabled)
		return;
	now = cli_now_ns();
	if (now - p->drawn_ns < REDRAW_NS)
		return;
	p->drawn_ns = now;
	draw(p);
}

void progress_skip(struct progress *p, uint64_t skipped)
{
	p->skipped = skipped;
}

/* The final state, then a new line, so later messages start clean. */
void progress_end(struct progress *p)
{
	if (!p->enabled)
		return;
	draw(p);
	fputc('\n', stderr);
}
