// SPDX-License-Identifier: MIT
/*
 * sysio: system calls on one file, one result per line, for shell tests.
 *
 *	sysio PATH MODE [OP...]
 *
 * MODE is r, w or rw, with n appended for O_NONBLOCK.  Prints "open OK" or
 * "open ENAME", then one line per OP:
 *
 *	read:N		one read(2) of up to N bytes: "read COUNT" or "read ENAME"
 *	readall:N	read until N bytes or end of file: "readall COUNT"
 *	write:N		one write(2) of N pattern bytes: "write COUNT"
 *	writeall:N	write N bytes, looping on short writes: "writeall COUNT"
 *	poll:MS		poll(2) for in and out: "poll IN OUT HUP ERR" or "poll -"
 *	pollin:MS	poll(2) for input only
 *	sleep:MS	pause
 *	block		set O_NONBLOCK off;  nonblock: set it on
 *	close		close(2): "close OK" or "close ENAME"
 *	seek		lseek(2) to 0: "seek OK" or "seek ENAME"
 *	ioctl		an ioctl(2) (TCGETS): "ioctl OK" or "ioctl ENAME"
 *	mmap		mmap(2) of one page: "mmap OK" or "mmap ENAME"
 *
 * Exits 0 when every call was made (whatever it returned), 2 on misuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "E?";
}

static char *buffer(size_t n)
{
	char *b = malloc(n ? n : 1);

	if (!b) {
		perror("sysio");
		exit(2);
	}
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + i % 26);
	return b;
}

static void do_read(int fd, size_t n, int all)
{
	char *b = buffer(n);
	size_t got = 0;
	ssize_t r;

	do {
		r = read(fd, b + got, n - got);
		if (r > 0)
			got += (size_t)r;
	} while (all && r > 0 && got < n);
	if (r < 0 && !got)
		printf("%s %s\n", all ? "readall" : "read", ename(errno));
	else
		printf("%s %zu\n", all ? "readall" : "read", got);
	free(b);
}

static void do_write(int fd, size_t n, int all)
{
	char *b = buffer(n);
	size_t put = 0;
	ssize_t r;

	do {
		r = write(fd, b + put, n - put);
		if (r > 0)
			put += (size_t)r;
	} while (all && r > 0 && put < n);
	if (r < 0 && !put)
		printf("%s %s\n", all ? "writeall" : "write", ename(errno));
	else
		printf("%s %zu\n", all ? "writeall" : "write", put);
	free(b);
}

static void do_poll(int fd, int ms, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r = poll(&p, 1, ms);

	if (r < 0) {
		printf("poll %s\n", ename(errno));
		return;
	}
	printf("poll%s%s%s%s%s\n", p.revents & POLLIN ? " IN" : "",
	       p.revents & POLLOUT ? " OUT" : "",
	       p.revents & POLLHUP ? " HUP" : "",
	       p.revents & POLLERR ? " ERR" : "", r == 0 ? " -" : "");
}

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int run(int fd, const char *op)
{
	const char *colon = strchr(op, ':');
	int arg = colon ? (int)strtol(colon + 1, NULL, 10) : 0;
	size_t len = colon ? (size_t)(colon - op) : strlen(op);
	struct termios tio;

#define IS(word) (len == strlen(word) && !strncmp(op, word, len))
	if (IS("read") || IS("readall"))
		do_read(fd, (size_t)arg, IS("readall"));
	else if (IS("write") || IS("writeall"))
		do_write(fd, (size_t)arg, IS("writeall"));
	else if (IS("poll") || IS("pollin"))
		do_poll(fd, (int)arg, IS("poll") ? POLLIN | POLLOUT : POLLIN);
	else if (IS("sleep"))
		usleep((useconds_t)arg * 1000);
	else if (IS("block") || IS("nonblock"))
		set_nonblock(fd, IS("nonblock"));
	else if (IS("seek"))
		printf("seek %s\n",
		       lseek(fd, 0, SEEK_SET) < 0 ? ename(errno) : "OK");
	else if (IS("ioctl"))
		printf("ioctl %s\n", ioctl(fd, TCGETS, &tio) ? ename(errno) :
							       "OK");
	else if (IS("mmap"))
		printf("mmap %s\n", mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd,
					  0) == MAP_FAILED ?
					     ename(errno) :
					     "OK");
	else if (IS("close"))
		printf("close %s\n", close(fd) ? ename(errno) : "OK");
	else
		return -1;
#undef IS
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int flags, fd;
	const char *m;

	if (argc < 3) {
		fprintf(stderr, "usage: sysio PATH r|w|rw[n] [OP...]\n");
		return 2;
	}
	m = argv[2];
	flags = !strncmp(m, "rw", 2) ? O_RDWR :
		m[0] == 'w'	     ? O_WRONLY :
					 O_RDONLY;
	if (strchr(m, 'n'))
		flags |= O_NONBLOCK;
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open(argv[1], flags);
	printf("open %s\n", fd < 0 ? ename(errno) : "OK");
	if (fd < 0)
		return 0;
	for (int i = 3; i < argc; i++)
		if (run(fd, argv[i])) {
			fprintf(stderr, "sysio: unknown op '%s'\n", argv[i]);
			return 2;
		}
	return 0;
}
