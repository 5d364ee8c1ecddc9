// SPDX-License-Identifier: MIT
/*
 * The HELLO budget of a stream, kept across sessions and processes.
 *
 * Frames sent toward a peer whose end is not open can use up the link's
 * end-to-end credits (about 16 frames) and wedge it until reboot.  A
 * session sends at most HELLO_MAX_TIMED HELLOs before the peer answered;
 * a retried command must not get a new allowance, so the HELLOs that went
 * unanswered are counted in a small file per device, and the count is
 * cleared once a peer answered (its end was open, so the credits are back).
 *
 * The file is named after the device's identity (device, inode, device
 * number, change time: a stream created again is a new device), in
 * $TBSTREAM_RUNDIR, else /run/tbstream for root, else
 * $XDG_RUNTIME_DIR/tbstream.  Descriptors that are not devices or files
 * (sockets, pipes in tests) have no file: the budget is per session.  A
 * directory that cannot be used is no error: the budget is then per
 * session, as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session-int.h"

/* Opens the run directory; -1 when there is none to use. */
static int rundir_open(void)
{
	const char *d = secure_getenv("TBSTREAM_RUNDIR");
	char buf[4096];
	const char *x;

	if (!d && geteuid() == 0) {
		d = "/run/tbstream";
	} else if (!d && (x = secure_getenv("XDG_RUNTIME_DIR"))) {
		if (snprintf(buf, sizeof(buf), "%s/tbstream", x) >=
		    (int)sizeof(buf))
			return -1;
		d = buf;
	}
	if (!d)
		return -1;
	if (mkdir(d, 0755) && errno != EEXIST)
		return -1;
	return open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The file's name for the session's device; false for a non-device. */
static bool budget_name(const struct tbs_session *s, char *buf, size_t len)
{
	struct stat st;

	if (fstat(s->wfd, &st) || !(S_ISCHR(st.st_mode) || S_ISREG(st.st_mode)))
		return false;
	return snprintf(buf, len, "hello-%llx-%llx-%llx-%lld.%09ld",
			(unsigned long long)st.st_dev,
			(unsigned long long)st.st_ino,
			(unsigned long long)st.st_rdev,
			(long long)st.st_ctim.tv_sec,
			(long)st.st_ctim.tv_nsec) < (int)len;
}

static int budget_read(int dfd, const char *name)
{
	char buf[16] = { 0 };
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;
	long v;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	v = strtol(buf, NULL, 10);
	return v < 0 ? 0 : v > HELLO_MAX_TIMED ? HELLO_MAX_TIMED : (int)v;
}

/* Takes the stream's remaining allowance; lock held. */
void tbs_session_budget_load(struct tbs_session *s)
{
	char name[128];
	int dfd;

	s->hello_budget = HELLO_MAX_TIMED;
	if (!budget_name(s, name, sizeof(name)))
		return;
	dfd = rundir_open();
	if (dfd < 0)
		return;
	s->hello_budget -= budget_read(dfd, name);
	close(dfd);
}

/*
 * Records the unanswered HELLOs of this session on top of those before
 * it, or clears the count once the peer @answered; lock held.
 */
void tbs_session_budget_save(struct tbs_session *s, bool answered)
{
	char name[128], val[16];
	int dfd, fd, n;

	if (!budget_name(s, name, sizeof(name)))
		return;
	dfd = rundir_open();
	if (dfd < 0)
		return;
	if (answered) {
		unlinkat(dfd, name, 0);
		close(dfd);
		return;
	}
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	close(dfd);
	if (fd < 0)
		return;
	n = snprintf(val, sizeof(val), "%d\n",
		     HELLO_MAX_TIMED - s->hello_budget + s->hellos);
	if (write(fd, val, (size_t)n) != n)
		n = -1; /* the budget is then per session */
	close(fd);
}
