// SPDX-License-Identifier: MIT
/*
 * tbsim: a simulated USB4 fabric with USB4STREAM, mounted with FUSE.
 *
 * The main thread runs the FUSE loop.  A manager thread waits for the
 * reasons to stop (a signal, "stop" in the control file, the end of the
 * watched process, the end of the lifetime) and then stops in an order
 * that cannot hang: wake every waiting request, unmount, and if the
 * kernel still holds the connection after a grace period, exit anyway
 * (the kernel then fails whatever is left with ENOTCONN).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fabric.h"
#include "fs.h"

#define TBSIM_VERSION "0.1.0"

struct sim {
	struct fabric fab;
	struct fuse_session *se;
	char mountpoint[PATH_MAX];
	char *fuse_opts;
	bool foreground, debug;
	pid_t watch_pid;
	unsigned int lifetime_s;
	int stop_fd; /* eventfd: "stop" in the control file */
	volatile int loop_done;
	volatile int unmounted;
};

static void usage(FILE *out)
{
	fprintf(out,
"Usage: tbsim [OPTIONS] MOUNTPOINT\n"
"       tbsim --stop MOUNTPOINT\n"
"\n"
"Mounts a simulated USB4 fabric: MOUNTPOINT/HOST is the system root of\n"
"each simulated host (sys/bus/thunderbolt, sys/kernel/config/thunderbolt/\n"
"stream, dev/tbstreamX) and MOUNTPOINT/control injects faults.  Returns\n"
"once mounted; stop it with 'tbsim --stop MOUNTPOINT' or fusermount3 -u.\n"
"\n"
"Topology:\n"
"  --hosts N            simulated hosts host1..hostN (default 2)\n"
"  --cable A:B          a cable between hosts A and B (repeatable; default:\n"
"                       host1:host2, host2:host3, ... in a chain)\n"
"  --network            peers also offer IP over Thunderbolt (service .0;\n"
"                       the stream service then has index 1)\n"
"  --link-speed TEXT    rx_speed/tx_speed shown in sysfs (\"40.0 Gb/s\")\n"
"Kernel of a host (HOST: host1, host2, ...; without it, every host):\n"
"  --kernel [HOST:]RELEASE  proc/sys/kernel/osrelease (7.2.0-tbsim); before\n"
"                       7.2 the stream driver is absent\n"
"  --driver [HOST:]STATE  thunderbolt_stream: loaded, unloaded (in\n"
"                       lib/modules only) or absent; without it, no ConfigFS\n"
"                       directory and no stream service for the peer\n"
"  --configfs [HOST:]STATE  mounted, unmounted, or no-usb4 (mounted, but the\n"
"                       kernel built without CONFIG_USB4_CONFIGFS)\n"
"  --netif [HOST:]STATE  with --network: thunderbolt0 up (it holds HopID 8)\n"
"                       or down (default)\n"
"Host controller and driver:\n"
"  --rings N            DMA rings per host, one kept for control (12)\n"
"  --max-hopid N        highest usable HopID (19)\n"
"  --adv-delay MS       property exchange delay: XDomains appearing after a\n"
"                       plug, advertisements reaching the peer (500)\n"
"  --node-delay MS      delay before /dev/tbstreamX appears (50)\n"
"  --flush-ms MS        bound of the flush at the last close (500)\n"
"  --new-kernel         newer kernel: EIO on CRC errors, EPIPE and POLLHUP\n"
"                       after the peer closed, a busy_poll attribute\n"
"  --wedge              frames toward a closed peer use up 16 credits,\n"
"                       then the link stops until unplugged\n"
"  --stale              data frames sent toward a closed end are kept (up\n"
"                       to its ring size) and read first at its next open,\n"
"                       as a reopened end may read an earlier run's frames\n"
"Link:\n"
"  --rate BYTES_PER_S   link rate of each cable and direction (0: unlimited)\n"
"  --latency US         one-way latency (0)\n"
"Process:\n"
"  -f, --foreground     stay in the foreground\n"
"  -d, --debug          FUSE debug output (implies -f)\n"
"  -o OPTIONS           extra FUSE mount options (e.g. allow_other)\n"
"  --watch-pid PID      stop when process PID ends\n"
"  --lifetime S         stop after S seconds\n"
"  --stop               stop the simulator mounted at MOUNTPOINT\n"
"  -h, --help           this help;  -V, --version  the version\n"
"\n"
"Control file commands (one per line): unplug [A B [N]], plug [A B [N]],\n"
"corrupt HOST N, drop HOST N, stall HOST MS, rate BPS, latency US, stop.\n"
"Reading it shows hosts, cables and streams with their counters.\n");
}

enum {
	OPT_HOSTS = 256, OPT_CABLE, OPT_NETWORK, OPT_LINK_SPEED, OPT_RINGS,
	OPT_MAX_HOPID, OPT_ADV_DELAY, OPT_NODE_DELAY, OPT_FLUSH, OPT_NEW_KERNEL,
	OPT_WEDGE, OPT_STALE, OPT_RATE, OPT_LATENCY, OPT_WATCH, OPT_LIFETIME, OPT_STOP,
	OPT_KERNEL, OPT_DRIVER, OPT_CONFIGFS, OPT_NETIF,
};

static const char *const driver_values[] = { "loaded", "unloaded", "absent",
					     NULL };
static const char *const configfs_values[] = { "mounted", "unmounted",
					       "no-usb4", NULL };
static const char *const netif_values[] = { "up", "down", NULL };

static const struct option long_opts[] = {
	{ "hosts", required_argument, NULL, OPT_HOSTS },
	{ "cable", required_argument, NULL, OPT_CABLE },
	{ "network", no_argument, NULL, OPT_NETWORK },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "driver", required_argument, NULL, OPT_DRIVER },
	{ "configfs", required_argument, NULL, OPT_CONFIGFS },
	{ "netif", required_argument, NULL, OPT_NETIF },
	{ "link-speed", required_argument, NULL, OPT_LINK_SPEED },
	{ "rings", required_argument, NULL, OPT_RINGS },
	{ "max-hopid", required_argument, NULL, OPT_MAX_HOPID },
	{ "adv-delay", required_argument, NULL, OPT_ADV_DELAY },
	{ "node-delay", required_argument, NULL, OPT_NODE_DELAY },
	{ "flush-ms", required_argument, NULL, OPT_FLUSH },
	{ "new-kernel", no_argument, NULL, OPT_NEW_KERNEL },
	{ "wedge", no_argument, NULL, OPT_WEDGE },
	{ "stale", no_argument, NULL, OPT_STALE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "latency", required_argument, NULL, OPT_LATENCY },
	{ "watch-pid", required_argument, NULL, OPT_WATCH },
	{ "lifetime", required_argument, NULL, OPT_LIFETIME },
	{ "stop", no_argument, NULL, OPT_STOP },
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 },
};

static int number(const char *opt, const char *arg, unsigned long long min,
		  unsigned long long max, unsigned long long *v)
{
	char *end;

	errno = 0;
	*v = strtoull(arg, &end, 10);
	if (*arg == '-' || !*arg || *end || errno || *v < min || *v > max) {
		fprintf(stderr, "tbsim: --%s wants a number from %llu to %llu, "
				"not '%s'\n", opt, min, max, arg);
		return -1;
	}
	return 0;
}

static int add_cable(struct sim_options *o, const char *spec)
{
	const char *colon = strchr(spec, ':');
	char (*cs)[2][32];

	if (!colon || colon == spec || !colon[1] || colon - spec >= 32 ||
	    strlen(colon + 1) >= 32) {
		fprintf(stderr, "tbsim: --cable wants HOST:HOST, not '%s'\n",
			spec);
		return -1;
	}
	cs = realloc(o->cable_spec, (o->ncable_spec + 1) * sizeof(*cs));
	if (!cs)
		return -1;
	o->cable_spec = cs;
	snprintf(cs[o->ncable_spec][0], 32, "%.*s", (int)(colon - spec), spec);
	snprintf(cs[o->ncable_spec][1], 32, "%s", colon + 1);
	o->ncable_spec++;
	return 0;
}

/*
 * --kernel, --driver, --configfs, --netif: "[HOST:]VALUE", VALUE one of
 * @allowed (NULL: any).
 */
static int add_setting(struct sim_options *o, enum host_what what,
		       const char *opt, const char *spec,
		       const char *const *allowed)
{
	const char *colon = strchr(spec, ':'), *v = colon ? colon + 1 : spec;
	struct host_setting *s;
	bool good = !allowed && *v;

	for (; allowed && *allowed; allowed++)
		good |= !strcmp(v, *allowed);
	if (!good || strlen(v) >= sizeof(s->value) ||
	    (colon && (colon == spec || colon - spec >= 32))) {
		fprintf(stderr, "tbsim: bad value for --%s: '%s'\n", opt, spec);
		return -1;
	}
	s = realloc(o->settings, (o->nsettings + 1) * sizeof(*s));
	if (!s)
		return -1;
	o->settings = s;
	s += o->nsettings++;
	s->what = what;
	snprintf(s->host, sizeof(s->host), "%.*s",
		 colon ? (int)(colon - spec) : 0, spec);
	snprintf(s->value, sizeof(s->value), "%s", v);
	return 0;
}

static int default_cables(struct sim_options *o)
{
	for (unsigned int i = 1; i < o->hosts; i++) {
		char spec[64];

		snprintf(spec, sizeof(spec), "host%u:host%u", i, i + 1);
		if (add_cable(o, spec))
			return -1;
	}
	return 0;
}

/* Returns 1 to go on, 0 to exit with success, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct sim *sim,
		      struct sim_options *o, bool *stop)
{
	unsigned long long v;
	int c;

	while ((c = getopt_long(argc, argv, "fdho:V", long_opts, NULL)) != -1) {
		const char *name = c >= 256 ? long_opts[c - 256].name : "";
		int bad = 0;

		switch (c) {
		case OPT_HOSTS:
			bad = number(name, optarg, 2, 64, &v);
			o->hosts = (unsigned int)v;
			break;
		case OPT_CABLE:
			bad = add_cable(o, optarg);
			break;
		case OPT_NETWORK:
			o->network = true;
			break;
		case OPT_KERNEL:
			bad = add_setting(o, HS_KERNEL, name, optarg, NULL);
			break;
		case OPT_DRIVER:
			bad = add_setting(o, HS_DRIVER, name, optarg,
					  driver_values);
			break;
		case OPT_CONFIGFS:
			bad = add_setting(o, HS_CONFIGFS, name, optarg,
					  configfs_values);
			break;
		case OPT_NETIF:
			bad = add_setting(o, HS_NETIF, name, optarg,
					  netif_values);
			break;
		case OPT_LINK_SPEED:
			snprintf(o->link_speed, sizeof(o->link_speed), "%s",
				 optarg);
			break;
		case OPT_RINGS:
			bad = number(name, optarg, 2, 64, &v);
			o->rings = (unsigned int)v;
			break;
		case OPT_MAX_HOPID:
			bad = number(name, optarg, 8, 63, &v);
			o->max_hopid = (int)v;
			break;
		case OPT_ADV_DELAY:
			bad = number(name, optarg, 0, 600000, &v);
			o->adv_delay_ms = (unsigned int)v;
			break;
		case OPT_NODE_DELAY:
			bad = number(name, optarg, 0, 600000, &v);
			o->node_delay_ms = (unsigned int)v;
			break;
		case OPT_FLUSH:
			bad = number(name, optarg, 0, 600000, &v);
			o->flush_ms = (unsigned int)v;
			break;
		case OPT_NEW_KERNEL:
			o->new_kernel = true;
			break;
		case OPT_WEDGE:
			o->wedge = true;
			break;
		case OPT_STALE:
			o->stale = true;
			break;
		case OPT_RATE:
			bad = number(name, optarg, 0, 1ULL << 40, &v);
			o->rate = v;
			break;
		case OPT_LATENCY:
			bad = number(name, optarg, 0, 10000000, &v);
			o->latency_us = v;
			break;
		case OPT_WATCH:
			bad = number(name, optarg, 1, INT_MAX, &v);
			sim->watch_pid = (pid_t)v;
			break;
		case OPT_LIFETIME:
			bad = number(name, optarg, 1, 1U << 30, &v);
			sim->lifetime_s = (unsigned int)v;
			break;
		case OPT_STOP:
			*stop = true;
			break;
		case 'f':
			sim->foreground = true;
			break;
		case 'd':
			sim->debug = sim->foreground = true;
			break;
		case 'o':
			sim->fuse_opts = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("tbsim %s\n", TBSIM_VERSION);
			return 0;
		default:
			usage(stderr);
			return -1;
		}
		if (bad)
			return -1;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "tbsim: %s\n", optind == argc ?
			"missing MOUNTPOINT (see tbsim --help)" :
			"only one MOUNTPOINT may be given");
		return -1;
	}
	if (!realpath(argv[optind], sim->mountpoint)) {
		fprintf(stderr, "tbsim: mount point '%s': %s\n", argv[optind],
			strerror(errno));
		return -1;
	}
	return 1;
}

static bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], mnt[PATH_MAX];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
		    !strcmp(mnt, path))
			found = true;
	fclose(f);
	return found;
}

/* tbsim --stop: ask through the control file, wait for the unmount. */
static int stop_mounted(const char *mnt)
{
	char path[PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/control", mnt);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "stop\n", 5) != 5) {
		fprintf(stderr, "tbsim: no simulator answers at '%s': %s\n",
			mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	for (int i = 0; i < 200 && is_mounted(mnt); i++)
		usleep(50000);
	if (is_mounted(mnt)) {
		fprintf(stderr, "tbsim: '%s' is still mounted after 10 s\n",
			mnt);
		return 1;
	}
	return 0;
}

static void unmount_now(struct sim *sim)
{
	sim->unmounted = 1;
	if (umount2(sim->mountpoint, MNT_DETACH) == 0 || errno == EINVAL)
		return;
	/* not root: fusermount3 can do it for the user who mounted */
	pid_t pid = fork();

	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q",
		       sim->mountpoint, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void request_stop(struct fabric *fab)
{
	struct sim *sim = container_of(fab, struct sim, fab);
	uint64_t one = 1;

	if (write(sim->stop_fd, &one, sizeof(one)) < 0)
		perror("tbsim: stop");
}

static int pidfd_of(pid_t pid)
{
	return pid ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
}

static void *manager_main(void *arg)
{
	struct sim *sim = arg;
	sigset_t set;
	struct pollfd pfd[3];
	uint64_t deadline = sim->lifetime_s ?
		now_ns() + sim->lifetime_s * 1000000000ULL : 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pfd[0] = (struct pollfd){ .fd = signalfd(-1, &set, 0), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sim->stop_fd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = pidfd_of(sim->watch_pid),
				  .events = POLLIN };
	if (sim->watch_pid && pfd[2].fd < 0 && kill(sim->watch_pid, 0))
		goto stop; /* already gone */
	for (;;) {
		int timeout = -1;

		if (deadline) {
			uint64_t now = now_ns();

			if (now >= deadline)
				break;
			timeout = (int)((deadline - now) / 1000000) + 1;
		}
		if (poll(pfd, 3, timeout) > 0)
			break;
	}
stop:
	pthread_mutex_lock(&sim->fab.lock);
	sim->fab.shutdown = true;
	wake_all(&sim->fab);
	pthread_mutex_unlock(&sim->fab.lock);
	fuse_session_exit(sim->se);
	unmount_now(sim);
	for (int i = 0; i < 40 && !sim->loop_done; i++)
		usleep(50000);
	if (!sim->loop_done)
		_exit(0); /* the kernel fails what is left with ENOTCONN */
	return NULL;
}

static struct fuse_session *session_new(struct sim *sim)
{
	char opts[512];
	char *argv[] = { "tbsim", "-o", opts, "-d", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(sim->debug ? 4 : 3, argv);

	struct fuse_session *se;

	snprintf(opts, sizeof(opts), "fsname=tbsim,subtype=tbsim,"
		 "default_permissions%s%s", sim->fuse_opts ? "," : "",
		 sim->fuse_opts ? sim->fuse_opts : "");
	se = fuse_session_new(&args, &tbsim_ops, sizeof(tbsim_ops), &sim->fab);
	fuse_opt_free_args(&args);
	return se;
}

static int serve(struct sim *sim)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	pthread_t manager;
	sigset_t set;
	int ret;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sim->fab.request_stop = request_stop;
	if (!cfg || fabric_start(&sim->fab) ||
	    pthread_create(&manager, NULL, manager_main, sim)) {
		fprintf(stderr, "tbsim: could not start threads\n");
		return 1;
	}
	fuse_loop_cfg_set_max_threads(cfg, 1024);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	ret = fuse_session_loop_mt(sim->se, cfg);
	sim->loop_done = 1;
	request_stop(&sim->fab); /* unmounted from outside: wake the manager */
	fuse_loop_cfg_destroy(cfg);
	fabric_stop(&sim->fab);
	pthread_join(manager, NULL);
	return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sim sim = { .stop_fd = -1 };
	struct sim_options o = {
		.hosts = 2, .rings = 12, .max_hopid = 19, .adv_delay_ms = 500,
		.node_delay_ms = 50, .flush_ms = 500, .link_speed = "40.0 Gb/s",
	};
	bool stop = false;
	int ret, err;

	ret = parse_args(argc, argv, &sim, &o, &stop);
	if (ret <= 0)
		return ret ? 2 : 0;
	if (stop)
		return stop_mounted(sim.mountpoint);
	if (!o.ncable_spec && default_cables(&o))
		return 1;
	err = fabric_init(&sim.fab, &o);
	if (err) {
		fprintf(stderr, "tbsim: bad topology: %s\n", strerror(-err));
		return 2;
	}
	sim.stop_fd = eventfd(0, EFD_CLOEXEC);
	sim.se = session_new(&sim);
	if (!sim.se || sim.stop_fd < 0)
		return 1;
	if (fuse_session_mount(sim.se, sim.mountpoint)) {
		fprintf(stderr, "tbsim: could not mount on '%s'\n",
			sim.mountpoint);
		return 1;
	}
	if (fuse_session_custom_io(sim.se, &tbsim_io, fuse_session_fd(sim.se)))
		return 1;
	if (fuse_daemonize(sim.foreground))
		return 1;
	ret = serve(&sim);
	if (!sim.unmounted)
		fuse_session_unmount(sim.se);
	fuse_session_destroy(sim.se);
	fabric_fini(&sim.fab);
	free(o.cable_spec);
	free(o.settings);
	return ret;
}
