// SPDX-License-Identifier: MIT
/*
 * The file-tree engine without a simulator: its message codec (names,
 * entries, records that lie about lengths), and whole transfers between
 * tbs_tree_send() and tbs_tree_recv() over a socketpair: every kind of
 * entry, a second run that sends nothing, a file kept without --overwrite,
 * and a partial copy continued from its journal.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "tbstream.h"
#include "../../lib/tree-int.h"
#include "../tap.h"

static int noop(void *arg, const struct tree_msg *m)
{
	(void)arg;
	(void)m;
	return 0;
}

static void test_names(void)
{
	static const struct {
		const char *name;
		size_t len;
		bool ok;
	} t[] = {
		{ "a", 1, true },	 { "", 0, false },
		{ ".", 1, false },	 { "..", 2, false },
		{ "...", 3, true },	 { "a/b", 3, false },
		{ "a\0b", 3, false },	 { "new\nline", 8, true },
		{ "\xe9\xff", 2, true }, { ".tbs", 4, true },
	};
	char longname[300];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(!tree_name_problem((const uint8_t *)t[i].name, t[i].len) ==
			   t[i].ok,
		   "name %zu %s", i, t[i].ok ? "accepted" : "refused");
	memset(longname, 'a', sizeof(longname));
	ok(!tree_name_problem((const uint8_t *)longname, 255),
	   "255 bytes accepted");
	ok(tree_name_problem((const uint8_t *)longname, 256),
	   "256 bytes refused");
}

static size_t one_entry(uint8_t *buf, size_t cap, uint8_t kind,
			const char *target)
{
	const char *names[] = { "dir", "file name" };
	uint16_t lens[] = { 3, 9 };
	struct tree_entry e = { .index = 7,
				.kind = kind,
				.ncomp = 2,
				.mode = 0640,
				.uid = 1000,
				.gid = 100,
				.link = TREE_NONE,
				.size = 123456789,
				.mtime_s = -5,
				.mtime_ns = 999999999,
				.target_len = target ? strlen(target) : 0 };

	return tree_entry_encode(buf, cap, &e, names, lens, target);
}

static int keep_entry(void *arg, const struct tree_msg *m)
{
	char *path = arg;

	if (m->type != TM_ENTRY)
		return -1;
	return tree_path_text(&m->e, path, 64) ? -1 : 0;
}

static void test_entries(void)
{
	uint8_t buf[512];
	char path[64] = "";
	size_t n = one_entry(buf, sizeof(buf), TK_FILE, NULL);
	struct tree_msg m;

	ok(n > 0 && !tree_parse_record(buf, n, keep_entry, path, NULL, 0),
	   "an entry decodes");
	ok(!strcmp(path, "dir/file name"), "its path is dir/file name (%s)",
	   path);
	ok(!tree_decode(TM_ENTRY, buf + 8, n - 8, &m, NULL, 0) &&
		   m.e.size == 123456789 && m.e.mtime_s == -5 &&
		   m.e.mode == 0640 && m.e.index == 7,
	   "its fields survive");
	n = one_entry(buf, sizeof(buf), TK_SYMLINK, "../../etc");
	ok(!tree_parse_record(buf, n, noop, NULL, NULL, 0),
	   "a link may point anywhere: it is never followed");
	n = one_entry(buf, sizeof(buf), TK_FILE, "x");
	ok(tree_parse_record(buf, n, noop, NULL, NULL, 0) == -EPROTO,
	   "a file with a link target is refused");
	n = one_entry(buf, sizeof(buf), TK_FILE, NULL);
	ok(tree_parse_record(buf, n - 1, noop, NULL, NULL, 0) == -EPROTO,
	   "a cut entry is refused");
	buf[8 + 6] = 0;
	ok(tree_parse_record(buf, n, noop, NULL, NULL, 0) == -EPROTO,
	   "an entry of no components is refused");
}

static void test_records(void)
{
	uint8_t buf[64] = { 0 };
	char why[128];
	size_t n = tree_msg_put(buf, sizeof(buf), TM_CONFIRM, "\1\0\0\0", 4);

	ok(!tree_parse_record(buf, n, noop, NULL, NULL, 0), "CONFIRM decodes");
	ok(tree_parse_record(buf, 0, noop, NULL, NULL, 0) == -EPROTO,
	   "an empty record is refused");
	buf[1] = 1;
	ok(tree_parse_record(buf, n, noop, NULL, why, sizeof(why)) == -EPROTO &&
		   strstr(why, "reserved"),
	   "reserved bits are refused: %s", why);
	buf[1] = 0;
	tbsi_le_put32(buf + 4, 0xffffffff);
	ok(tree_parse_record(buf, n, noop, NULL, why, sizeof(why)) == -EPROTO &&
		   strstr(why, "longer"),
	   "a length beyond the record is refused: %s", why);
	n = tree_msg_put(buf, sizeof(buf), TM_CONFIRM, "\1\0\0\0\0", 5);
	ok(tree_parse_record(buf, n, noop, NULL, NULL, 0) == -EPROTO,
	   "a message of the wrong length is refused");
	n = tree_msg_put(buf, sizeof(buf), 0x99, "", 0);
	ok(tree_parse_record(buf, n, noop, NULL, NULL, 0) == -EPROTO,
	   "an unknown type is refused");
}

/* ---- whole transfers over a socketpair ---- */

struct side {
	struct tbs_session *s;
	int fd, r;
	const char *dir;
	const char *const *paths;
	unsigned int flags;
	struct tbs_tree_stats st;
	struct tbs_error e;
};

static void *side_main(void *arg)
{
	struct side *d = arg;
	struct tbs_tree_opts o =
		TBS_OPTS_INIT(tbs_tree_opts, .flags = d->flags);

	d->r = tbs_session_start(d->s);
	if (!d->r && d->paths)
		d->r = tbs_tree_send(d->s, d->paths, 1, &o, &d->st, &d->e);
	else if (!d->r)
		d->r = tbs_tree_recv(d->s, d->dir, &o, &d->st, &d->e);
	if (!d->r || d->r == -EIO)
		tbs_session_close(d->s);
	return NULL;
}

static void transfer(struct side *snd, struct side *rcv)
{
	struct tbs_session_opts o = TBS_OPTS_INIT(
		tbs_session_opts, .handshake_ms = 5000, .idle_ms = 5000);
	pthread_t a, b;
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	o.role = TBS_ROLE_SENDER;
	tbs_session_new(&snd->s, sv[0], sv[0], &o);
	o.role = TBS_ROLE_RECEIVER;
	tbs_session_new(&rcv->s, sv[1], sv[1], &o);
	pthread_create(&a, NULL, side_main, snd);
	pthread_create(&b, NULL, side_main, rcv);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	tbs_session_free(snd->s);
	tbs_session_free(rcv->s);
	close(sv[0]);
	close(sv[1]);
	if (snd->r)
		printf("#   sender: %d %s\n", snd->r, snd->e.msg);
	if (rcv->r)
		printf("#   receiver: %d %s\n", rcv->r, rcv->e.msg);
}

static char top[256];

static void put_file(const char *rel, const void *data, size_t len)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", top, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, data, len) != (ssize_t)len)
			perror(p);
		close(fd);
	}
}

static bool same_file(const char *a, const char *b)
{
	char pa[512], pb[512], cmd[1100];

	snprintf(pa, sizeof(pa), "%s/%s", top, a);
	snprintf(pb, sizeof(pb), "%s/%s", top, b);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", pa, pb);
	return system(cmd) == 0;
}

static void make_tree(uint8_t *big, size_t big_len)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/src/t/d", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/src/t/d/e", top);
	mkdir(p, 0755);
	put_file("src/t/big", big, big_len);
	put_file("src/t/d/small", "small\n", 6);
	put_file("src/t/d/empty", "", 0);
	snprintf(p, sizeof(p), "%s/src/t/d/link", top);
	if (symlink("../big", p))
		perror(p);
	snprintf(p, sizeof(p), "%s/src/t/d/hard", top);
	{
		char q[512];

		snprintf(q, sizeof(q), "%s/src/t/d/small", top);
		if (link(q, p))
			perror(p);
	}
	put_file("src/t/sparse", "s", 1);
	snprintf(p, sizeof(p), "%s/src/t/sparse", top);
	if (truncate(p, 5 << 20))
		perror(p);
}

static void run(struct side *snd, struct side *rcv, const char *src,
		const char *dst, unsigned int rflags)
{
	static char sp[512], dp[512];
	static const char *paths[1];

	snprintf(sp, sizeof(sp), "%s/%s", top, src);
	snprintf(dp, sizeof(dp), "%s/%s", top, dst);
	paths[0] = sp;
	*snd = (struct side){ .paths = paths };
	*rcv = (struct side){ .dir = dp, .flags = rflags };
	transfer(snd, rcv);
}

static void test_transfer(uint8_t *big, size_t big_len)
{
	struct side s, r;
	struct stat sb;
	char p[512];

	make_tree(big, big_len);
	run(&s, &r, "src/t", "dst", 0);
	is_int(s.r, 0, "a tree: the sender succeeds");
	is_int(r.r, 0, "the receiver succeeds");
	is_int(s.st.files_done, 4, "four files confirmed");
	is_int(r.st.hardlinks, 1, "one hard link");
	ok(same_file("src/t/big", "dst/t/big") &&
		   same_file("src/t/d/small", "dst/t/d/hard") &&
		   same_file("src/t/sparse", "dst/t/sparse"),
	   "the contents arrived");
	snprintf(p, sizeof(p), "%s/dst/t/sparse", top);
	ok(!stat(p, &sb) && sb.st_blocks < 64, "the sparse file stays sparse");
	snprintf(p, sizeof(p), "%s/dst/t/d/link", top);
	ok(!lstat(p, &sb) && S_ISLNK(sb.st_mode), "the link is a link");

	run(&s, &r, "src/t", "dst", 0);
	is_int(s.r, 0, "again: the sender succeeds");
	is_int(s.st.bytes_data, 0, "no byte is sent again");
	is_int(s.st.files_present, 4, "every file is found complete");

	put_file("src/t/d/small", "SMALL\n", 6);
	run(&s, &r, "src/t", "dst", 0);
	is_int(s.r, -EIO, "a changed file: the sender reports it");
	is_int(r.r, -EIO, "the receiver too");
	ok(!same_file("src/t/d/small", "dst/t/d/small"),
	   "the receiver's copy is kept");
	run(&s, &r, "src/t", "dst", TBS_TREE_OVERWRITE);
	is_int(s.r, 0, "with --overwrite it is replaced");
	ok(same_file("src/t/d/small", "dst/t/d/small"), "and now the same");
}

/* A partial copy with a journal, as an interrupted run leaves it. */
static void test_resume(uint8_t *big, size_t big_len)
{
	char p[512], st[1100];
	struct stat sb, pb;
	struct side s, r;
	int fd;

	snprintf(p, sizeof(p), "%s/src/t/big", top);
	stat(p, &sb);
	snprintf(p, sizeof(p), "%s/part", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/part/t", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "part/t/.tbs-%016llx.part",
		 (unsigned long long)XXH3_64bits("big", 3));
	put_file(p, big, 3 << 20);
	snprintf(st, sizeof(st), "%s/%s", top, p);
	stat(st, &pb);
	snprintf(p, sizeof(p), "%s/part/t/.tbs-%016llx.state", top,
		 (unsigned long long)XXH3_64bits("big", 3));
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	snprintf(st, sizeof(st),
		 "tbstream partial 2 size %zu mtime %lld.%09ld verified %d "
		 "inode %llu\n",
		 big_len, (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
		 3 << 20, (unsigned long long)pb.st_ino);
	if (write(fd, st, strlen(st)) < 0)
		perror(p);
	close(fd);
	run(&s, &r, "src/t", "part", 0);
	is_int(s.r, 0, "a partial copy: the sender succeeds");
	is_int(s.st.files_resumed, 1, "the large file is resumed");
	is_int(s.st.bytes_resumed, 3 << 20, "from its verified point");
	ok(same_file("src/t/big", "part/t/big"), "and arrives exactly");

	/* a journal that lies: the prefix hash does not match */
	snprintf(p, sizeof(p), "%s/lie", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/lie/t", top);
	mkdir(p, 0755);
	memset(big, 0x55, 1 << 20);
	snprintf(p, sizeof(p), "lie/t/.tbs-%016llx.part",
		 (unsigned long long)XXH3_64bits("big", 3));
	put_file(p, big, 3 << 20);
	snprintf(st, sizeof(st), "%s/%s", top, p);
	stat(st, &pb);
	snprintf(p, sizeof(p), "%s/lie/t/.tbs-%016llx.state", top,
		 (unsigned long long)XXH3_64bits("big", 3));
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	snprintf(st, sizeof(st),
		 "tbstream partial 2 size %zu mtime %lld.%09ld verified %d "
		 "inode %llu\n",
		 big_len, (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
		 3 << 20, (unsigned long long)pb.st_ino);
	if (write(fd, st, strlen(st)) < 0)
		perror(p);
	close(fd);
	run(&s, &r, "src/t", "lie", 0);
	is_int(r.r, -EIO, "a partial copy that differs: the file is refused");
	is_int(r.st.failed, 1, "that file alone");
	snprintf(p, sizeof(p), "%s/lie/t/big", top);
	ok(access(p, F_OK) && errno == ENOENT, "nothing takes its name");
	snprintf(p, sizeof(p), "%s/lie/t/.tbs-%016llx.part", top,
	       (unsigned long long)XXH3_64bits("big", 3));
	ok(access(p, F_OK) && errno == ENOENT, "the partial copy is removed");
	run(&s, &r, "src/t", "lie", 0);
	is_int(s.r, 0, "sent again: the sender succeeds");
	is_int(s.st.files_resumed, 0, "nothing is resumed");
	ok(same_file("src/t/big", "lie/t/big"), "the file arrives exactly");
}

/*
 * A read-only file with a user attribute, received by a user who is not
 * root (nobody, when the test runs as root): the attribute is set while
 * the file is written, so the file must stay writable for its owner
 * until then.  Return: a bit per failed check, in a child process.
 */
static int readonly_child(void)
{
	struct side s, r;
	struct stat sb;
	char p[512], v[16];
	int bad = 0;

	if (!geteuid() && (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
			   setresuid(65534, 65534, 65534)))
		return 64;
	run(&s, &r, "ro/t", "ro-dst", 0);
	snprintf(p, sizeof(p), "%s/ro-dst/t/f", top);
	bad |= (s.r || r.r) << 0;
	bad |= (stat(p, &sb) || (sb.st_mode & 07777) != 0444) << 1;
	bad |= (getxattr(p, "user.note", v, sizeof(v)) != 4 ||
		memcmp(v, "kept", 4)) << 2;
	return bad;
}

static void test_readonly(void)
{
	char p[1200], d[512];
	int st = -1;
	pid_t pid;

	snprintf(d, sizeof(d), "%s/ro/t", top);
	snprintf(p, sizeof(p), "mkdir -p %s %s/ro-dst", d, top);
	if (system(p)) {
		ok(false, "a read-only file: its directories");
		return;
	}
	put_file("ro/t/f", "read only\n", 10);
	snprintf(p, sizeof(p), "%s/ro/t/f", top);
	if (setxattr(p, "user.note", "kept", 4, 0)) {
		tap_skip("a read-only file with an attribute: no user "
			 "attributes here");
		return;
	}
	snprintf(d, sizeof(d), "%s/ro-dst", top);
	if (chmod(p, 0444) || chmod(top, 0755) ||
	    (!geteuid() && chown(d, 65534, 65534))) {
		ok(false, "a read-only file: its modes");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (!pid)
		_exit(readonly_child());
	if (pid > 0)
		waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && !(WEXITSTATUS(st) & 65),
	   "a read-only file, received by a user who is not root");
	ok(WIFEXITED(st) && !(WEXITSTATUS(st) & 2), "it is read-only there");
	ok(WIFEXITED(st) && !(WEXITSTATUS(st) & 4),
	   "its user attribute arrived");
}

int main(void)
{
	size_t big_len = 9 << 20, i;
	uint8_t *big = malloc(big_len);
	char cmd[600];

	alarm(120);
	test_names();
	test_entries();
	test_records();
	snprintf(top, sizeof(top), "%s/test-tree.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top) || !big)
		return 1;
	for (i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/src/t %s/dst", top, top);
	if (system(cmd))
		return 1;
	test_transfer(big, big_len);
	test_resume(big, big_len);
	test_readonly();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	if (system(cmd))
		return 1;
	free(big);
	return tap_done();
}
