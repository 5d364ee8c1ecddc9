// SPDX-License-Identifier: MIT
/*
 * tbstream-udev-name: what udev needs to name a stream device.
 *
 * Called by 60-tbstream.rules as IMPORT{program}="tbstream-udev-name %k"
 * for each /dev/tbstreamX.  Finds the stream whose ConfigFS "index" is X
 * (the only mapping the driver guarantees) and the peer behind its
 * service, and prints udev properties:
 *
 *	TBSTREAM_NAME=backup           the stream's name
 *	TBSTREAM_SERVICE=0-503.0       its ConfigFS service directory
 *	TBSTREAM_PEER=rescuer          the name the peer announces, or its
 *	                               unique id when it announces none
 *	TBSTREAM_PEER_UID=7c2c...      the peer's unique id
 *
 * The last two only while the peer is connected.  Names come from the
 * peer and from whoever made the stream: every byte outside
 * [A-Za-z0-9#+-.:=@_] is written as \xNN (as udev's own by-label links
 * do), and so is a leading '.', so that no value can be "..", hold a '/',
 * or change the meaning of the rule.
 *
 * Exit status: 0 when the stream was found, 1 when no stream has that
 * index (udev then adds no link), 2 for a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tbstream.h"

#define PREFIX "tbstream"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream-udev-name [--sysroot DIR] tbstreamX\n"
		"\n"
		"Prints the udev properties TBSTREAM_NAME, TBSTREAM_SERVICE,\n"
		"TBSTREAM_PEER and TBSTREAM_PEER_UID of the stream device\n"
		"/dev/tbstreamX, for the stable links of 60-tbstream.rules.\n");
}

static bool plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("#+-.:=@_", c);
}

/* Prints KEY=VALUE with VALUE encoded for a device link component. */
static void put_prop(const char *key, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;

	printf("%s=", key);
	for (; *s; s++) {
		if (plain(*s) && !(*s == '.' && s == (const void *)value))
			putchar(*s);
		else
			printf("\\x%02x", *s);
	}
	putchar('\n');
}

/* Parses "tbstreamX" (or "/dev/tbstreamX"); returns X or -1. */
static long parse_index(const char *kname)
{
	const char *slash = strrchr(kname, '/');
	char *end;
	long x;

	if (slash)
		kname = slash + 1;
	if (strncmp(kname, PREFIX, strlen(PREFIX)))
		return -1;
	kname += strlen(PREFIX);
	if (*kname < '0' || *kname > '9')
		return -1;
	x = strtol(kname, &end, 10);
	return *end || x > 1000000 ? -1 : x;
}

static void put_peer(const char *root, const struct tbs_stream *st)
{
	struct tbs_peer *peers;
	int n, i;

	n = tbs_peers_list(root, &peers, NULL);
	for (i = 0; i < n; i++) {
		if (strcmp(peers[i].service, st->service))
			continue;
		put_prop("TBSTREAM_PEER", peers[i].device_name[0]
						  ? peers[i].device_name
						  : peers[i].unique_id);
		put_prop("TBSTREAM_PEER_UID", peers[i].unique_id);
		break;
	}
	if (n > 0)
		tbs_peers_free(peers);
}

int main(int argc, char **argv)
{
	const char *root = getenv("TBSTREAM_SYSROOT");
	struct tbs_stream *arr;
	int n, i, found = -1;
	long x;

	if (argc == 4 && !strcmp(argv[1], "--sysroot")) {
		root = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	x = argc == 2 ? parse_index(argv[1]) : -1;
	if (x < 0) {
		usage(stderr);
		return 2;
	}
	if (!root || !root[0])
		root = "/";
	n = tbs_streams_list(root, &arr, NULL);
	for (i = 0; i < n && found < 0; i++)
		if (arr[i].index == x)
			found = i;
	if (found >= 0) {
		put_prop("TBSTREAM_NAME", arr[found].name);
		put_prop("TBSTREAM_SERVICE", arr[found].service);
		if (arr[found].connected)
			put_peer(root, &arr[found]);
	}
	if (n > 0)
		tbs_streams_free(arr);
	return found >= 0 ? 0 : 1;
}
