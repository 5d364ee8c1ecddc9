// SPDX-License-Identifier: MIT
/*
 * tbstream disk: a disk (or image file) of one host used by the other,
 * over NBD.  No NBD server of our own: "share" is a forward that runs
 * Debian's nbdkit in its single-connection mode (-s, the connection on
 * its standard input and output) for every connection of the peer;
 * "attach" is a forward listening on a local UNIX socket, the NBD export
 * that any NBD client uses (nbdcopy, nbdfuse, qemu), and with --nbd the
 * kernel's block device through nbd-client.
 *
 *	share	refuses a device mounted read-write here unless --read-only;
 *		shared writable, a device is held open exclusively (O_EXCL)
 *		while shared, so that it cannot be mounted here meanwhile
 *	attach	nbd+unix:///?socket=PATH on standard output
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "forward.h"

#define DISK_STREAM "disk"

extern char **environ;

struct disk_args {
	struct fwd_run run;
	const char *path; /* share */
	bool read_only;
	const char *socket; /* attach */
	const char *nbd;
	char sock[PATH_MAX];
	char uri[PATH_MAX + 32];
	pid_t nbd_client;
};

static void disk_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream disk share DEVICE|FILE [--read-only] "
		"[OPTIONS]\n"
		"       tbstream disk attach [--socket PATH] [--nbd /dev/nbdN] "
		"[OPTIONS]\n"
		"\n"
		"share serves a block device or an image file of this host "
		"to the\n"
		"peer (with nbdkit); attach, on the peer, makes it an NBD "
		"export on\n"
		"a local UNIX socket (printed as nbd+unix:///?socket=PATH), "
		"and with\n"
		"--nbd a block device.  Both run until stopped, through "
		"unplugs and\n"
		"restarts of the other side.\n"
		"\n"
		"  -r, --read-only           share: the peer may only read "
		"(needed for\n"
		"                            a device mounted read-write "
		"here)\n"
		"  -S, --socket PATH         attach: the export's socket "
		"(default\n"
		"                            $TBSTREAM_RUNDIR, /run/tbstream or\n"
		"                            $XDG_RUNTIME_DIR/tbstream, "
		"disk-NAME.sock)\n"
		"      --nbd /dev/nbdN       attach: connect that block device "
		"to the\n"
		"                            export (kernel nbd module, "
		"nbd-client)\n"
		"  -s, --stream NAME         the stream (default 'disk')\n"
		FWD_RUN_HELP_PEER
		"  -m, --max-connections N   share: NBD connections at once "
		"(default 128)\n"
		FWD_RUN_HELP_JOB);
}

enum { OPT_NBD = 256 };

static int disk_opt(void *args, int c, const char *arg)
{
	struct disk_args *d = args;

	switch (c) {
	case 'r':
		d->read_only = true;
		return 0;
	case 'S':
		d->socket = arg;
		return 0;
	case OPT_NBD:
		d->nbd = arg;
		return 0;
	default:
		return fwd_run_opt(&d->run, c, arg);
	}
}

/* Parses the options after "share" or "attach"; -1 after --help. */
static int disk_parse(int argc, char **argv, struct disk_args *d)
{
	static const struct option opts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 'S' },
		{ "nbd", required_argument, NULL, OPT_NBD },
		FWD_RUN_LONGOPTS,
		{ 0 },
	};
	int ret;

	ret = cli_getopt("disk", argc, argv, "rS:" FWD_RUN_SHORTOPTS, opts,
			 disk_usage, disk_opt, d);
	return ret ? ret : job_check_name(&d->run.j, "disk");
}

/* Starts @argv (child.h), its output to /dev/null if @quiet: 0 or errno. */
static int run(char *const *argv, bool quiet, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int r;

	if (child_attr_init(&at, false))
		return ENOMEM;
	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
						 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY,
						 0);
	}
	r = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return r;
}

/* Runs @argv and waits for it; its exit status, or -1. */
static int run_wait(char *const *argv, bool quiet)
{
	int st = -1;
	pid_t pid;

	if (run(argv, quiet, &pid) || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether @prog is on the PATH. */
static bool have(const char *prog)
{
	char path[PATH_MAX];
	const char *p = getenv("PATH");
	const char *e;

	for (p = p ? p : "/usr/bin:/bin"; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		snprintf(path, sizeof(path), "%.*s/%s", (int)(e - p), p, prog);
		if (!access(path, X_OK))
			return true;
	}
	return false;
}

/*
 * What may be shared, as given: a file, or a device not mounted read-write
 * (unless read-only); a writable device stays held exclusively in *@excl.
 */
static int share_check(struct disk_args *d, int *excl)
{
	struct tbs_image_info info;
	struct tbs_error e = { 0 };
	struct stat sb;
	int fd;

	*excl = -1;
	if (stat(d->path, &sb)) {
		cli_msg("disk share: could not open '%s': %s", d->path,
			strerror(errno));
		return cli_exit_status(-errno);
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		cli_msg("disk share: '%s' is neither a block device nor a file",
			d->path);
		return EXIT_USAGE;
	}
	if (tbs_image_probe(d->path, true, &info, &e))
		return cli_fail(&e);
	fd = open(d->path, (d->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC |
				   (S_ISBLK(sb.st_mode) && !d->read_only ?
					    O_EXCL :
					    0));
	if (fd < 0 && errno == EBUSY) {
		cli_msg("disk share: '%s' is mounted or in use here (a file "
			"system, device mapper, RAID or LVM): unmount it, or "
			"share it with --read-only",
			d->path);
		return EXIT_BUSY;
	}
	if (fd < 0) {
		cli_msg("disk share: could not open '%s'%s: %s", d->path,
			d->read_only ? "" : " for writing (or use --read-only)",
			strerror(errno));
		return EXIT_FAIL;
	}
	if (S_ISBLK(sb.st_mode) && !d->read_only)
		*excl = fd; /* no mount here while the peer writes */
	else
		close(fd);
	return 0;
}

static int disk_share(struct disk_args *d)
{
	char real[PATH_MAX], file[PATH_MAX + 8];
	char *argv[] = { "nbdkit",    "-s",	"--exit-with-parent",
			 "file",      file,	NULL,
			 NULL };
	int excl, ret;

	ret = share_check(d, &excl);
	if (ret)
		return ret;
	if (!have("nbdkit")) {
		cli_msg("disk share: nbdkit is not installed (Debian: apt-get "
			"install nbdkit)");
		ret = EXIT_MISSING;
		goto out;
	}
	if (!realpath(d->path, real))
		snprintf(real, sizeof(real), "%s", d->path);
	snprintf(file, sizeof(file), "file=%s", real);
	if (d->read_only) {
		argv[3] = "-r";
		argv[4] = "file";
		argv[5] = file;
	}
	d->run.conf.argv = argv;
	fwd_log(&d->run.conf.log, "share",
		"sharing '%s'%s on stream '%s': run 'tbstream disk attach' on "
		"the other host",
		real, d->read_only ? " read-only" : "", d->run.j.name);
	ret = fwd_run(&d->run);
out:
	if (excl >= 0)
		close(excl);
	return ret;
}

/* The directory of the default socket, made if missing (mode 0700). */
static int rundir(char *buf, size_t len)
{
	const char *env = getenv("TBSTREAM_RUNDIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat sb;

	if (env && env[0])
		snprintf(buf, len, "%s", env);
	else if (!geteuid() || !xdg || !xdg[0])
		snprintf(buf, len, "/run/tbstream");
	else
		snprintf(buf, len, "%s/tbstream", xdg);
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(buf, &sb) || !S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	return 0;
}

/*
 * The block device for --nbd: there, or the nbd module loaded now.
 * Return: 0, or the exit status after a message.
 */
static int nbd_check(const char *dev)
{
	char *modprobe[] = { "modprobe", "nbd", NULL };
	struct utsname u;
	char mods[300];
	struct stat sb;

	if (!have("nbd-client")) {
		cli_msg("disk attach: nbd-client is not installed (Debian: "
			"apt-get install nbd-client)");
		return EXIT_MISSING;
	}
	if (!stat(dev, &sb) && S_ISBLK(sb.st_mode))
		return 0;
	if (access("/sys/module/nbd", F_OK))
		run_wait(modprobe, true);
	if (!stat(dev, &sb) && S_ISBLK(sb.st_mode))
		return 0;
	uname(&u);
	snprintf(mods, sizeof(mods), "/lib/modules/%s", u.release);
	cli_msg("disk attach: '%s' is not there: the kernel's nbd module is "
		"not loaded and 'modprobe nbd' could not load it%s%s%s; "
		"install the modules of this kernel (Debian: the package "
		"linux-image-%s) and run 'modprobe nbd', or use the export "
		"without a block device (nbdfuse, nbdcopy, qemu-img)",
		dev, access(mods, F_OK) ? " ('" : "",
		access(mods, F_OK) ? mods : "",
		access(mods, F_OK) ? "' is missing)" : "", u.release);
	return EXIT_MISSING;
}

/* Each time the link comes up: connect the block device if it is not. */
static void attach_up(void *arg)
{
	struct disk_args *d = arg;
	char *argv[] = { "nbd-client", "-unix", d->sock, (char *)d->nbd,
			 "-b", "4096", NULL };
	char pid[300];

	if (!d->nbd)
		return;
	snprintf(pid, sizeof(pid), "/sys/block/%s/pid",
		 strrchr(d->nbd, '/') ? strrchr(d->nbd, '/') + 1 : d->nbd);
	if (!access(pid, F_OK))
		return; /* still connected */
	if (run(argv, false, &d->nbd_client))
		fwd_log(&d->run.conf.log, "error",
			"could not run nbd-client for %s", d->nbd);
	else
		fwd_log(&d->run.conf.log, "nbd", "connecting %s to %s", d->nbd,
			d->uri);
}

static int disk_attach(struct disk_args *d)
{
	char *disconnect[] = { "nbd-client", "-d", (char *)d->nbd, NULL };
	char dir[PATH_MAX - 64], listen[PATH_MAX + 8];
	int ret;

	if (d->nbd && (ret = nbd_check(d->nbd)))
		return ret;
	if (d->socket) {
		snprintf(d->sock, sizeof(d->sock), "%s", d->socket);
	} else if ((ret = rundir(dir, sizeof(dir)))) {
		cli_msg("disk attach: could not make '%s': %s", dir,
			strerror(-ret));
		return EXIT_FAIL;
	} else {
		snprintf(d->sock, sizeof(d->sock), "%s/disk-%s.sock", dir,
			 d->run.j.name);
	}
	snprintf(listen, sizeof(listen), "unix:%s", d->sock);
	snprintf(d->uri, sizeof(d->uri), "nbd+unix:///?socket=%s", d->sock);
	d->run.listen = listen;
	d->run.conf.on_up = attach_up;
	d->run.conf.arg = d;
	if (d->run.conf.log.json) {
		fwd_log(&d->run.conf.log, "export", "%s", d->uri);
	} else {
		printf("%s\n", d->uri);
		fflush(stdout);
	}
	ret = fwd_run(&d->run);
	if (d->nbd && d->nbd_client > 0)
		run_wait(disconnect, false);
	return ret;
}

int cmd_disk(const struct cli *cli, int argc, char **argv)
{
	struct disk_args d = { 0 };
	bool share;
	int ret;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		disk_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	share = !strcmp(argv[1], "share");
	if (!share && strcmp(argv[1], "attach"))
		return cli_usage_error("disk", "share or attach");
	fwd_run_init(&d.run, cli, DISK_STREAM);
	ret = disk_parse(argc - 1, argv + 1, &d);
	if (ret)
		return ret < 0 ? EXIT_OK : ret;
	if (share && optind + 2 != argc)
		return cli_usage_error("disk", "share takes one DEVICE or FILE");
	if (!share && optind + 1 != argc)
		return cli_usage_error("disk", "attach takes no argument");
	if (!share && d.read_only)
		return cli_usage_error("disk", "--read-only is for share");
	if (share && (d.socket || d.nbd))
		return cli_usage_error("disk", "--socket and --nbd are for "
					       "attach");
	d.path = share ? argv[optind + 1] : NULL;
	return share ? disk_share(&d) : disk_attach(&d);
}
