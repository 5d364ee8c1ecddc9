// SPDX-License-Identifier: MIT
/*
 * tbstream cam: a camera of one host shown, recorded or offered as a
 * local camera on the other, through tbstreamsink and tbstreamsrc.
 *
 *	send [DEVICE]	v4l2src (MJPEG passed through when the camera
 *			gives it, else encoded with jpegenc), or a test
 *			pattern (--test), into tbstreamsink
 *	recv		tbstreamsrc into a window (autovideosink), a
 *			v4l2loopback device (--v4l2) or a Matroska file
 *			(--file)
 *	--list		cameras and their formats (GstDeviceMonitor)
 *
 * The elements bring the stream up, wait for the peer and come back after
 * a restart or an unplug by themselves; this command builds the pipeline,
 * says on standard error what the elements report, and maps their
 * failure to the exit statuses of every tbstream command.  User strings
 * (paths, names) reach the pipeline as property values, never inside a
 * pipeline description.  Built as tbstream-cam, which "tbstream cam"
 * runs, so that the tbstream command itself does not need GStreamer.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gst/gst.h>

#include "cam.h"
#include "job.h"

static void cam_usage(FILE *out)
{
	fprintf(out,
		"Usage: tbstream cam send [DEVICE] [OPTIONS]\n"
		"       tbstream cam recv [--window | --v4l2 /dev/videoN | --file FILE] [OPTIONS]\n"
		"       tbstream cam --list [--json]\n"
		"\n"
		"Shares a camera with the host at the other end of the cable: "
		"'send' on\n"
		"the host with the camera (DEVICE, default the first camera), "
		"'recv'\n"
		"on the other, in either order.  MJPEG from the camera goes "
		"through\n"
		"untouched, other formats are encoded as JPEG.  Either side may "
		"stop\n"
		"and start again, and the cable may be unplugged: the picture "
		"comes back\n"
		"by itself.  The stream ends when the sender's source ends "
		"(--frames).\n"
		"\n"
		"  send:\n"
		"      --test            a test pattern instead of a camera\n"
		"      --size WxH        picture size (default: the camera's; "
		"1280x720\n"
		"                        with --test)\n"
		"      --fps N           frames per second (default: the "
		"camera's; 30)\n"
		"      --raw             send uncompressed video (needs the "
		"bandwidth)\n"
		"      --frames N        stop after N frames\n"
		"  recv:\n"
		"      --window          show it in a window (the default)\n"
		"      --v4l2 DEVICE     feed a v4l2loopback device: "
		"applications on\n"
		"                        this host see the camera as a local "
		"one\n"
		"      --file FILE       record it to a Matroska file (ended "
		"cleanly by\n"
		"                        Ctrl-C or the end of the stream)\n"
		"      --overwrite       replace an existing FILE\n"
		"  both:\n"
		"  -s, --stream NAME     stream name (default 'cam')\n"
		"  -p, --peer ID|NAME|ROUTE\n"
		"                        the peer, when several are connected\n"
		"  -t, --timeout S       fail when the peer is away this long "
		"(default:\n"
		"                        wait for ever)\n"
		"      --transport T     stream, net (IP over Thunderbolt) or "
		"auto: the\n"
		"                        stream when both hosts have its "
		"driver\n"
		"                        (default auto; the same on both "
		"hosts)\n"
		"  -l, --list            list cameras and their formats\n"
		"  -j, --json            machine-readable list or summary\n"
		"  -q, --quiet           no messages but errors\n"
		"  -h, --help            show this help\n"
		"\n"
		"Environment: TBSTREAM_CAM_VIDEOSINK, a GStreamer element "
		"description used\n"
		"instead of autovideosink for --window.\n");
}

enum { OPT_TEST = 256, OPT_SIZE, OPT_FPS, OPT_RAW, OPT_FRAMES, OPT_WINDOW,
       OPT_V4L2, OPT_FILE, OPT_OVERWRITE, OPT_DEVICE };

/* Parses "WxH" into @a; false when it is not one. */
static bool parse_size(const char *s, struct cam_args *a)
{
	unsigned int w, h;
	char x, end;

	if (sscanf(s, "%u%c%u%c", &w, &x, &h, &end) != 3 || x != 'x' ||
	    w < 16 || h < 16 || w > 16384 || h > 16384)
		return false;
	a->width = (int)w;
	a->height = (int)h;
	return true;
}

/* Options that take no number. 1: handled, 0: not one, -1: bad value. */
static int cam_flag(struct cam_args *a, int c, const char *arg)
{
	if (c == OPT_TEST)
		a->test = true;
	else if (c == OPT_RAW)
		a->raw = true;
	else if (c == OPT_WINDOW)
		a->out = CAM_WINDOW;
	else if (c == OPT_OVERWRITE)
		a->overwrite = true;
	else if (c == OPT_V4L2 || c == OPT_FILE)
		a->out = c == OPT_V4L2 ? CAM_V4L2 : CAM_FILE, a->target = arg;
	else if (c == OPT_DEVICE)
		a->device = arg;
	else if (c == OPT_SIZE)
		return parse_size(arg, a) ? 1 : -1;
	else if (c == 'l')
		a->list = true;
	else if (c == 'j')
		a->json = true;
	else if (c == 'q')
		a->quiet = true;
	else
		return 0;
	return 1;
}

/*
 * --stream, --peer, --timeout and --transport are the job skeleton's
 * (job.h), as for every command on a stream; the rest of the job (the
 * choice of the transport, bring-up, reopening after a restart or an
 * unplug, take-down) is the elements' own, so that the picture comes
 * back by itself and a signal can end a file cleanly.
 */
static int cam_opt(struct cam_args *a, struct job *j, int c, const char *arg)
{
	int r = cam_flag(a, c, arg);
	long n;

	if (r)
		return r > 0 ? 0 : -1;
	if (c == 's' || c == 'p' || c == 't' || c == JOB_OPT_TRANSPORT)
		return job_opt(j, c, arg) > 0 ? 0 : -1;
	n = cli_parse_num(arg);
	if (c == OPT_FPS && n >= 1 && n <= 1000)
		a->fps = (int)n;
	else if (c == OPT_FRAMES && n >= 1)
		a->frames = n;
	else
		return -1;
	return 0;
}

/* Checks what the options say together; returns 0 or an exit status. */
static int cam_check(struct cam_args *a, int argc, char **argv)
{
	if (a->list)
		return optind < argc ? cli_usage_error("cam", "--list takes no command") : 0;
	if (optind >= argc)
		return cli_usage_error("cam", "send or recv?");
	a->send = !strcmp(argv[optind], "send");
	if (!a->send && strcmp(argv[optind], "recv"))
		return cli_usage_error("cam", "the command is send or recv");
	if (a->send && optind + 2 < argc)
		return cli_usage_error("cam", "send takes at most one DEVICE");
	if (a->send && optind + 1 < argc)
		a->device = argv[optind + 1];
	if (!a->send && optind + 1 < argc)
		return cli_usage_error("cam", "recv takes no argument");
	if (a->send && a->out != CAM_NONE)
		return cli_usage_error("cam", "--window, --v4l2 and --file are for recv");
	if (!a->send && (a->test || a->raw || a->frames || a->width ||
			 a->fps || a->device))
		return cli_usage_error("cam", "--test, --raw, --frames, --size, --fps and DEVICE are for send");
	if (a->test && a->device)
		return cli_usage_error("cam", "--test or a DEVICE, not both");
	if (!a->stream[0] || strlen(a->stream) > TBS_NAME_MAX ||
	    strchr(a->stream, '/'))
		return cli_usage_error("cam", "a stream NAME has 1 to 8 bytes, no '/'");
	if (!a->send && a->out == CAM_NONE)
		a->out = CAM_WINDOW;
	return 0;
}

static int cam_parse(int argc, char **argv, struct cam_args *a,
		     struct job *j)
{
	static const struct option opts[] = {
		{ "test", no_argument, NULL, OPT_TEST },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "fps", required_argument, NULL, OPT_FPS },
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "frames", required_argument, NULL, OPT_FRAMES },
		{ "window", no_argument, NULL, OPT_WINDOW },
		{ "v4l2", required_argument, NULL, OPT_V4L2 },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "stream", required_argument, NULL, 's' },
		{ "peer", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "transport", required_argument, NULL, JOB_OPT_TRANSPORT },
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, outs = 0;

	while ((c = getopt_long(argc, argv, "s:p:t:ljqh", opts, NULL)) !=
	       -1) {
		if (c == 'h') {
			cam_usage(stdout);
			return -1;
		}
		outs += c == OPT_WINDOW || c == OPT_V4L2 || c == OPT_FILE;
		if (c == '?' || cam_opt(a, j, c, optarg))
			return cli_bad_option("cam", c, argv);
	}
	if (outs > 1)
		return cli_usage_error("cam", "one of --window, --v4l2 and --file");
	a->stream = j->name;
	a->peer = j->peer;
	a->timeout = j->up.timeout_ms / 1000;
	a->transport = j->transport == TBS_TRANSPORT_NET    ? "net" :
		       j->transport == TBS_TRANSPORT_STREAM ? "stream" :
							      "auto";
	return cam_check(a, argc, argv);
}

int cmd_cam(const struct cli *cli, int argc, char **argv)
{
	struct cam_args a = { .root = cli->root };
	struct job j;
	int r;

	job_init(&j, cli, "cam");
	j.up.timeout_ms = 0; /* a camera's viewer waits for ever */
	r = cam_parse(argc, argv, &a, &j);
	if (r)
		return r < 0 ? EXIT_OK : r;
	if (!gst_init_check(NULL, NULL, NULL)) {
		cli_msg("could not initialise GStreamer");
		return EXIT_FAIL;
	}
	r = cam_register();
	if (!r)
		r = a.list ? cam_list(&a) : cam_run(&a);
	gst_deinit();
	return r;
}
