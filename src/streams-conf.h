/* SPDX-License-Identifier: MIT */
/*
 * The persistent streams file, /etc/tbstream/streams.conf: one stream per
 * line, "PEER NAME [PROFILE]".  The format is documented in
 * tbstream.conf(5).
 */
#ifndef TBS_STREAMS_CONF_H
#define TBS_STREAMS_CONF_H

#include <stddef.h>

#include "tbstream.h"

#define STREAMS_CONF_DEFAULT "/etc/tbstream/streams.conf"
/* A PEER that matches every connected peer. */
#define STREAMS_CONF_ANY "*"

/**
 * struct conf_stream - one line of the file
 * @peer:    "*", a unique id, or the name the peer announces
 * @name:    stream name
 * @profile: "default", "latency" or "throughput"
 * @line:    its line number, for messages
 */
struct conf_stream {
	char peer[64];
	char name[TBS_NAME_MAX + 1];
	char profile[16];
	int line;
};

/**
 * streams_conf_read() - read and check a streams file
 * @path:    the file
 * @out:     receives an array to free(), NULL when there is no stream
 * @missing: set when the file does not exist (then 0 streams, no error)
 * @err:     receives "FILE:LINE: what is wrong" on failure
 *
 * Return: the number of streams, -EINVAL for a bad line or a stream
 * listed twice, or another negative errno when the file cannot be read.
 */
int streams_conf_read(const char *path, struct conf_stream **out,
		      bool *missing, struct tbs_error *err);

/**
 * streams_conf_match() - whether a line's PEER names a connected peer
 * @c: the line
 * @p: the peer
 */
bool streams_conf_match(const struct conf_stream *c, const struct tbs_peer *p);

#endif
