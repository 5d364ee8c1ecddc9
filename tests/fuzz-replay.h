/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz replay tests share: a deterministic generator, replaying
 * a libFuzzer corpus through a target without libFuzzer, writing seed
 * inputs for a new corpus, and the main() of a test that does only that
 * (fuzz_replay_main()).  Not part of the library.
 */
#ifndef TBS_FUZZ_REPLAY_H
#define TBS_FUZZ_REPLAY_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

/* A linear congruential generator: the same inputs on every run. */
static inline uint32_t rnd(uint64_t *st)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*st >> 33);
}

/* Feeds each file of @dir (up to @cap bytes) to @one; returns the count. */
static inline int fuzz_replay_corpus(const char *dir, uint8_t *buf,
				     size_t cap,
				     int (*one)(const uint8_t *, size_t))
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char path[4096];
	int n = 0, fd;
	ssize_t len;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, cap);
		close(fd);
		if (len >= 0) {
			one(buf, (size_t)len);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Writes 16 generated inputs as @dir/seed-NN; returns 0 or 1. */
static inline int fuzz_write_corpus(const char *dir, uint8_t *buf,
				    size_t (*make)(uint8_t *, uint64_t *))
{
	uint64_t st = 42;
	char path[4096];
	size_t n;
	int i, fd;

	for (i = 0; i < 16; i++) {
		n = make(buf, &st);
		snprintf(path, sizeof(path), "%s/seed-%02d", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, n) != (ssize_t)n) {
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
	}
	return 0;
}

/**
 * struct fuzz_replay - a replay test of one fuzz target
 * @corpus:     the target's seed corpus
 * @one:        the fuzz target
 * @make:       writes one generated input into @buf, returns its length
 * @buf:        room for a generated input
 * @file_cap:   most bytes read of a corpus file
 * @iterations: how many generated inputs
 */
struct fuzz_replay {
	const char *corpus;
	int (*one)(const uint8_t *, size_t);
	size_t (*make)(uint8_t *, uint64_t *);
	uint8_t *buf;
	size_t file_cap;
	int iterations;
};

/**
 * fuzz_replay_main() - the main() of a replay test
 * @argc: main()'s
 * @argv: main()'s
 * @r:    the target and its inputs
 *
 * "--write-corpus DIR" writes the seeds into DIR; otherwise @r's target
 * runs over its corpus, then over the generated inputs, a TAP line each.
 * Return: the exit status.
 */
static inline int fuzz_replay_main(int argc, char **argv,
				   const struct fuzz_replay *r)
{
	uint8_t *file = malloc(r->file_cap);
	uint64_t st = 1;
	int i, n;

	if (argc == 3 && !strcmp(argv[1], "--write-corpus")) {
		free(file);
		return fuzz_write_corpus(argv[2], r->buf, r->make);
	}
	n = file ? fuzz_replay_corpus(r->corpus, file, r->file_cap, r->one) : -1;
	free(file);
	ok(n > 0, "replayed %d corpus inputs from %s", n, r->corpus);
	for (i = 0; i < r->iterations; i++)
		r->one(r->buf, r->make(r->buf, &st));
	ok(1, "%d random inputs decoded without breaking an invariant",
	   r->iterations);
	return tap_done();
}

#endif
