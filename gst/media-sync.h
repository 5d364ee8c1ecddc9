/* SPDX-License-Identifier: MIT */
/*
 * The receiver's clock mapping: the sender's buffers keep their
 * timestamps; their running time on the receiver is shifted by an offset
 * so that they are due when they arrive, and the latency the receiver
 * reports covers how much later than that some arrive.
 *
 * For each buffer, d = arrival (receiver's running time) - the sender's
 * running time of the buffer.  Over a sliding window (SYNC_BUCKETS
 * buckets of SYNC_BUCKET_NS), the offset follows the smallest d (the
 * fastest a buffer came through), moved only when it is off by more than
 * a small hysteresis, and the latency is the largest d minus the offset,
 * plus a margin, grown at once and shrunk only when the window's largest
 * d fell well below it.  Clock drift between the hosts moves the floor
 * slowly; the offset follows it.  Knows nothing of GStreamer.
 */
#ifndef TBS_MEDIA_SYNC_H
#define TBS_MEDIA_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#define SYNC_BUCKETS 8
#define SYNC_BUCKET_NS 500000000LL

struct tbs_sync {
	int64_t lo[SYNC_BUCKETS], hi[SYNC_BUCKETS];
	int64_t bucket_end; /* arrival time the current bucket ends at */
	int cur; /* the current bucket */
	bool started;
	int64_t offset; /* ns added to the sender's running time */
	uint64_t latency; /* ns reported */
};

void tbs_sync_reset(struct tbs_sync *y, uint64_t latency);

/*
 * Adds a buffer of sender running time @rt that arrived at receiver
 * running time @now.  Returns a bit mask: 1 when the offset changed, 2
 * when the latency changed.
 */
unsigned int tbs_sync_add(struct tbs_sync *y, int64_t now, int64_t rt);

#endif
