// SPDX-License-Identifier: MIT
/*
 * Sessions over the simulated device: two hosts of a tbsim fabric, one
 * stream between them, one session on each /dev/tbstreamX, with the
 * simulator's own faults (credit wedge towards a closed peer, corrupted
 * and dropped frames, unplug, a peer that closes), and receivers that read
 * the device themselves (TBS_SESSION_CALLER_READS) when the cable goes or
 * the peer is killed, and a close that waits for a peer that reads
 * nothing, aborted from another thread.  Each case mounts its own
 * simulator; tbsim --watch-pid unmounts it even if this test is killed.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "session-caller.h"
#include "../tap.h"

#define MiB (1024 * 1024)

struct sim {
	char dir[64], mnt[96], ctl[128], c1[160], c2[160];
	char dev1[320], dev2[320];
	int fd1, fd2;
};

static int sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sys(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int put(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t n = -1;

	if (fd >= 0) {
		n = write(fd, value, strlen(value));
		close(fd);
	}
	return n == (ssize_t)strlen(value) ? 0 : -1;
}

static int get(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = -1;

	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/*
 * Opens /dev/tbstreamX of a stream directory, waiting for the node; its
 * path goes to @path.
 */
static int open_dev(const char *host, const char *stream, char *path)
{
	char idx[16];
	int i, fd = -1;

	snprintf(path, 320, "%s/index", stream);
	if (get(path, idx, sizeof(idx)))
		return -1;
	snprintf(path, 320, "%s/dev/tbstream%d", host, atoi(idx));
	for (i = 0; i < 100 && fd < 0; i++) {
		fd = open(path, O_RDWR | O_NONBLOCK);
		if (fd < 0)
			usleep(50000);
	}
	return fd;
}

/* The stream "s" on both hosts: host2 allocates, host1 follows. */
static int sim_pair(struct sim *m)
{
	char s1[200], s2[200], p[256], v[32];
	int i;

	snprintf(p, sizeof(p), "%s/0-1.0", m->c2);
	snprintf(s2, sizeof(s2), "%s/0-1.0/s", m->c2);
	if (mkdir(p, 0755) || mkdir(s2, 0755))
		return -1;
	snprintf(p, sizeof(p), "%s/in_hopid", s2);
	if (put(p, "-1\n"))
		return -1;
	snprintf(p, sizeof(p), "%s/out_hopid", s2);
	if (put(p, "-1\n"))
		return -1;
	snprintf(p, sizeof(p), "%s/0-503.0", m->c1);
	snprintf(s1, sizeof(s1), "%s/0-503.0/s", m->c1);
	if (mkdir(p, 0755))
		return -1;
	for (i = 0; i < 100; i++) {
		if (mkdir(s1, 0755))
			return -1;
		snprintf(p, sizeof(p), "%s/in_hopid", s1);
		if (!get(p, v, sizeof(v)) && atoi(v) != 0)
			break;
		rmdir(s1);
		usleep(50000);
	}
	snprintf(p, sizeof(p), "%s/host1", m->mnt);
	m->fd1 = open_dev(p, s1, m->dev1);
	snprintf(p, sizeof(p), "%s/host2", m->mnt);
	m->fd2 = open_dev(p, s2, m->dev2);
	return m->fd1 >= 0 && m->fd2 >= 0 ? 0 : -1;
}

static int sim_start(struct sim *m, const char *opts)
{
	memset(m, 0, sizeof(*m));
	m->fd1 = m->fd2 = -1;
	snprintf(m->dir, sizeof(m->dir), "/tmp/tbs-session-sim.XXXXXX");
	if (!mkdtemp(m->dir))
		return -1;
	snprintf(m->mnt, sizeof(m->mnt), "%s/mnt", m->dir);
	snprintf(m->ctl, sizeof(m->ctl), "%s/control", m->mnt);
	snprintf(m->c1, sizeof(m->c1),
		 "%s/host1/sys/kernel/config/thunderbolt/stream", m->mnt);
	snprintf(m->c2, sizeof(m->c2),
		 "%s/host2/sys/kernel/config/thunderbolt/stream", m->mnt);
	if (mkdir(m->mnt, 0755) ||
	    sys("timeout -k 2 20 '%s' --watch-pid %d --lifetime 300 --adv-delay 50 --node-delay 10 %s '%s'",
		TBSIM_PATH, (int)getpid(), opts, m->mnt))
		return -1;
	return sim_pair(m);
}

static void sim_stop(struct sim *m)
{
	if (m->fd1 >= 0)
		close(m->fd1);
	if (m->fd2 >= 0)
		close(m->fd2);
	if (m->mnt[0])
		sys("timeout -k 2 15 '%s' --stop '%s' >/dev/null 2>&1 || fusermount3 -u -z '%s' 2>/dev/null",
		    TBSIM_PATH, m->mnt, m->mnt);
	if (m->dir[0])
		sys("rm -rf '%s'", m->dir);
}

/*
 * Runs a (host1) and b (host2): a starts first, b after b_delay_ms; cmd
 * goes to the control file once b received cmd_after bytes.  b_cut: b
 * stops (closes its device) after receiving that many bytes, like a killed
 * process.
 */
static void run(struct sim *m, struct end *a, struct end *b, int b_delay_ms,
		const char *cmd, uint64_t cmd_after, uint64_t b_cut)
{
	int i;

	end_setup(a, m->fd1, m->fd1, b);
	end_setup(b, m->fd2, m->fd2, a);
	pthread_create(&a->thread, NULL, end_main, a);
	usleep((useconds_t)b_delay_ms * 1000);
	if (b_cut) {
		uint8_t buf[65536];
		ssize_t n = 0;

		b->start_r = tbs_session_start(b->s);
		while (!b->start_r && b->received < b_cut &&
		       (n = tbs_session_recv(b->s, NULL, buf, sizeof(buf),
					     10000)) > 0)
			b->received += (uint64_t)n;
		tbs_session_free(b->s);
		b->s = NULL;
		close(m->fd2);
		m->fd2 = -1;
	} else {
		pthread_create(&b->thread, NULL, end_main, b);
	}
	for (i = 0; cmd && i < 1000 &&
		    __atomic_load_n(&b->received, __ATOMIC_RELAXED) < cmd_after;
	     i++)
		usleep(10000);
	if (cmd && put(m->ctl, cmd))
		printf("# could not write '%s' to the control file\n", cmd);
	pthread_join(a->thread, NULL);
	if (!b_cut)
		pthread_join(b->thread, NULL);
	tbs_session_free(a->s);
	tbs_session_free(b->s);
	end_show("host1", a);
	end_show("host2", b);
}

static bool start(struct sim *m, const char *opts)
{
	if (!sim_start(m, opts))
		return true;
	ok(0, "simulator with %s started and the stream paired", opts);
	sim_stop(m);
	return false;
}

static void test_late_peer_wedge(void)
{
	struct sim m;
	struct end a = { .send_len = 6 * MiB, .seed = 1 };
	struct end b = { .send_len = 5 * MiB, .seed = 2 };

	if (!start(&m, "--wedge"))
		return;
	run(&m, &a, &b, 1500, NULL, 0, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "wedging link, peer 1.5 s late: both directions byte-exact");
	sim_stop(&m);
}

static void test_corrupt_drop(void)
{
	struct sim m;
	struct end a = { .send_len = 8 * MiB, .seed = 3 };
	struct end b = { .send_len = 4 * MiB, .seed = 4 };

	if (!start(&m, "--rate 40000000 --new-kernel"))
		return;
	run(&m, &a, &b, 100, "corrupt host1 3\ndrop host2 2\n", 1 * MiB, 0);
	ok(end_clean(&a) && end_clean(&b),
	   "corrupted and dropped frames (newer kernel): repaired");
	ok(a.st.retransmits + b.st.retransmits > 0, "by retransmission");
	sim_stop(&m);
}

static void test_unplug(void)
{
	struct sim m;
	struct end a = { .send_len = 8 * MiB, .seed = 5 };
	struct end b = { .send_len = 8 * MiB, .seed = 6 };

	if (!start(&m, "--rate 20000000"))
		return;
	run(&m, &a, &b, 100, "unplug\n", 1 * MiB, 0);
	ok(end_honest(&a) && end_honest(&b), "unplug: no false success");
	ok(end_rx_failed(&a) && end_rx_failed(&b), "unplug: both fail");
	ok(strstr(a.err, "went away") && strstr(b.err, "went away"),
	   "unplug: both say the stream went away");
	sim_stop(&m);
}

static void test_peer_closes(void)
{
	struct sim m;
	struct end a = { .send_len = 8 * MiB, .seed = 7 };
	struct end b = { .seed = 8 };

	if (!start(&m, "--rate 40000000"))
		return;
	run(&m, &a, &b, 100, NULL, 0, 1 * MiB);
	ok(end_honest(&a), "peer closes mid-stream: no false success");
	ok(a.send_r < 0 || a.finish_r < 0, "the sender fails");
	ok(strstr(a.err, "peer closed") != NULL, "and says the peer closed");
	sim_stop(&m);
}

/*
 * The far end of caller_case(), in a process of its own: a session on
 * host2's device that echoes every message until it fails.
 */
static void echo_process(struct sim *m, const struct tbs_session_opts *o)
{
	struct echo e = { 0 };
	int rb = open(m->dev2, O_RDWR);

	alarm(120);
	if (rb < 0 || tbs_session_new(&e.s, rb, m->fd2, o) ||
	    tbs_session_start(e.s))
		_exit(1);
	echo_main(&e);
	_exit(0);
}

/*
 * Request and reply over the device, receivers reading it themselves (a
 * blocking descriptor to read, the non-blocking one to write), the echo
 * in another process, until a receiver waits in read(2) with no
 * time-out; then @cmd (to the control file), or the echo process is
 * killed if NULL.
 */
static void caller_case(const char *what, const char *cmd, const char *expect)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(tbs_session_opts,
						  .idle_ms = 3000);
	struct tbs_session *sa = NULL;
	struct blocked b = { 0 };
	struct sim m;
	pid_t pid;
	int ra;

	if (!start(&m, "--rate 40000000"))
		return;
	caller_opts(&o);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		echo_process(&m, &o);
	close(m.fd2);
	m.fd2 = -1;
	ra = open(m.dev1, O_RDWR);
	if (pid < 0 || ra < 0 || tbs_session_new(&sa, ra, m.fd1, &o)) {
		ok(0, "%s: sessions made", what);
		goto out;
	}
	ok(!tbs_session_start(sa) && round_trips(sa, 30),
	   "%s: round trips over the device", what);
	b.s = sa;
	pthread_create(&b.thread, NULL, recv_blocked, &b);
	ok(receiver_in_read(sa), "%s: a receiver is blocked in read(2)",
	   what);
	if (!cmd)
		kill(pid, SIGKILL);
	else if (put(m.ctl, cmd))
		printf("# could not write '%s' to the control file\n", cmd);
	pthread_join(b.thread, NULL);
	ok(b.r < 0, "%s: the receiver fails (%d)", what, (int)b.r);
	ok(strstr(tbs_session_error(sa), expect) != NULL,
	   "%s: and says why: %s", what, tbs_session_error(sa));
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	tbs_session_free(sa);
	if (ra >= 0)
		close(ra);
	sim_stop(&m);
}

static void test_caller_unplug(void)
{
	caller_case("receiver reading, unplug", "unplug\n", "went away");
}

static void test_caller_peer_killed(void)
{
	caller_case("receiver reading, peer killed", NULL, "peer closed");
}

/*
 * The far end of test_close_aborted(), in a process of its own: a session
 * on host2's device whose application reads nothing (its session stays
 * alive, so the other side's close would wait for the confirm time-out).
 * Exits 0 once it heard of the abort, 2 on another failure.
 */
static void idle_process(struct sim *m)
{
	struct tbs_session *s;
	int i;

	alarm(60);
	if (tbs_session_new(&s, m->fd2, m->fd2, NULL) || tbs_session_start(s))
		_exit(1);
	for (i = 0; i < 400; i++) {
		if (tbs_session_ready(s) & TBS_SESSION_ERROR)
			_exit(strstr(tbs_session_error(s),
				     "peer aborted: stopped by the user") ?
				      0 :
				      2);
		usleep(50000);
	}
	_exit(3);
}

struct closing {
	struct tbs_session *s;
	int r;
};

static void *close_main(void *arg)
{
	struct closing *c = arg;

	c->r = tbs_session_close(c->s);
	return NULL;
}

/*
 * tbs_session_close() waits for a peer that reads nothing; another thread
 * aborts: the close returns (within 20 s, where the confirm time-out is
 * 60 s) with the abort's error, and the peer process hears of it.
 */
static void test_close_aborted(void)
{
	static uint8_t buf[256 * 1024];
	struct closing c = { .r = 1 };
	struct timespec ts;
	pthread_t t;
	struct sim m;
	pid_t pid;
	int st = -1;

	if (!start(&m, "--rate 40000000"))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		idle_process(&m);
	close(m.fd2);
	m.fd2 = -1;
	if (pid < 0 || tbs_session_new(&c.s, m.fd1, m.fd1, NULL) ||
	    tbs_session_start(c.s)) {
		ok(0, "close aborted: sessions started");
		goto out;
	}
	ok(tbs_session_send(c.s, 1, buf, sizeof(buf), 20000) ==
		   (ssize_t)sizeof(buf),
	   "close aborted: 256 KiB queued for a peer that reads nothing");
	pthread_create(&t, NULL, close_main, &c);
	usleep(500000); /* the close waits for a confirmation */
	tbs_session_abort(c.s, -ECANCELED, "stopped by the user");
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	if (pthread_timedjoin_np(t, NULL, &ts)) {
		printf("not ok - the close did not return\nBail out! the close did not return after an abort\n");
		fflush(stdout);
		kill(pid, SIGKILL);
		sim_stop(&m);
		_exit(1);
	}
	ok(1, "close aborted: the close returned");
	is_int(c.r, -ECANCELED, "close aborted: with the abort's error");
	waitpid(pid, &st, 0);
	pid = -1;
	is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0,
	       "close aborted: the peer process heard the ABORT");
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	tbs_session_free(c.s);
	sim_stop(&m);
}

int main(void)
{
	if (access("/dev/fuse", R_OK | W_OK)) {
		tap_skip("no /dev/fuse");
		return tap_done();
	}
	pair_watchdog(200);
	test_late_peer_wedge();
	test_corrupt_drop();
	test_unplug();
	test_peer_closes();
	test_caller_unplug();
	test_caller_peer_killed();
	test_close_aborted();
	return tap_done();
}
