#!/bin/bash
# tbstream cam: usage errors and exit statuses, --list, the v4l2loopback
# device (how to get the module when it is missing; fed for real when it
# is loaded), and the camera use case end to end on tbsim with a test
# pattern: into a Matroska file that GStreamer reads back frame by frame,
# into a window (TBSTREAM_CAM_VIDEOSINK in place of a display), and a
# receiver that waits for a sender that never comes.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

need gst-launch-1.0
sim_start --adv-delay 200

cam() {
	local host=$1
	shift
	LD_PRELOAD=${GST_LAUNCH_PRELOAD:-} \
		ASAN_OPTIONS=${GST_LAUNCH_ASAN_OPTIONS:-${ASAN_OPTIONS:-}} \
		t "$TBSTREAM" --sysroot "$host" cam "$@"
}

# ---- the command line ----
status 0 "--help" cam "$H1" --help
status 2 "no command" cam "$H1"
status 2 "an unknown command" cam "$H1" show
status 2 "recv with --test" cam "$H1" recv --test
status 2 "send with --file" cam "$H1" send --test --file x.mkv
status 2 "a bad --size" cam "$H1" send --test --size 12
status 2 "two outputs" cam "$H1" recv --window --file x.mkv
status 2 "a stream name too long" cam "$H1" recv --stream waytoolongname
status 0 "--list" cam "$H1" --list
check "--list --json is JSON with a list of cameras" sh -c \
	"$(printf '%q' "$TBSTREAM") cam --list --json | python3 -c 'import json, sys; assert isinstance(json.load(sys.stdin)[\"cameras\"], list)'"
# A camera whose name, node and format hold terminal escapes (a plugin of
# the tests): listed, escaped.
mkdir "$TMP/fakecam"
cp "$FAKE_CAMERA" "$TMP/fakecam/"
GST_PLUGIN_PATH_1_0="$TMP/fakecam" GST_REGISTRY_1_0="$TMP/fakecam.reg" \
	cam "$H1" --list >"$TMP/list.out" 2>&1
check "--list: the camera with escapes in its name is listed" \
	grep -q "fake camera" "$TMP/list.out"
is "--list: none of its control characters reaches the terminal" \
	"$(tr -d '\n' <"$TMP/list.out" | tr -dc '\000-\037\177' | wc -c)" 0
check "--list: nor its bidirectional override" \
	sh -c "! grep -q \"\$(printf '\342\200\256')\" '$TMP/list.out'"
sed 's/^/# /' "$TMP/list.out"
status 3 "send from a camera that is not there" \
	cam "$H1" send /nonexistent/video0 --timeout 2
has_msg "and says so" "no camera at '/nonexistent/video0'"
touch "$TMP/exists.mkv"
status 1 "recv into an existing file without --overwrite" \
	cam "$H2" recv --file "$TMP/exists.mkv" --timeout 2
has_msg "says how to replace it" "use --overwrite"
# A link at the name is replaced, never written through.
echo keep >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/link.mkv"
status 4 "recv --overwrite onto a link (no sender: time-out)" \
	cam "$H2" recv --file "$TMP/link.mkv" --overwrite --timeout 2
check "the link's target is untouched" grep -qx keep "$TMP/victim"
check "the name is a new file, no longer a link" \
	test -f "$TMP/link.mkv" -a ! -L "$TMP/link.mkv"
ln -s "$TMP/nowhere.mkv" "$TMP/dangling.mkv"
status 1 "recv onto a dangling link without --overwrite" \
	cam "$H2" recv --file "$TMP/dangling.mkv" --timeout 2
check "creates nothing through it" test ! -e "$TMP/nowhere.mkv"
status 1 "recv --file naming a directory" \
	cam "$H2" recv --file "$TMP/" --timeout 2

# ---- v4l2loopback ----
if [ -e /sys/module/v4l2loopback ]; then
	dev=
	for v in /sys/devices/virtual/video4linux/video*; do
		[ -e "$v" ] && dev=/dev/${v##*/} && break
	done
	if [ -n "$dev" ]; then
		cam "$H2" recv --v4l2 "$dev" --timeout 30 \
			>"$TMP/v4l2.out" 2>&1 &
		r=$!
		cam "$H1" send --test --frames 300 --size 320x240 \
			--timeout 30 >/dev/null 2>&1 &
		s=$!
		check "v4l2loopback: an application reads the remote camera" \
			t gst-launch-1.0 v4l2src device="$dev" num-buffers=5 \
			! fakesink
		wait $s
		wait $r
	else
		skip "v4l2loopback is loaded but made no device"
	fi
else
	status 3 "--v4l2 without the v4l2loopback module" \
		cam "$H2" recv --v4l2 /dev/video9 --timeout 2
	has_msg "says which package to install" "apt install v4l2loopback-dkms"
	has_msg "and how to load it" "modprobe v4l2loopback"
fi
status 2 "--v4l2 on a device that is not a loopback one" \
	sh -c "[ -e /sys/module/v4l2loopback ] || exit 2;
	       $(printf '%q' "$TBSTREAM") cam recv --v4l2 /dev/null"

# ---- end to end: a test pattern into a file ----
cam "$H2" recv --file "$TMP/cam.mkv" --json --timeout 30 \
	>"$TMP/recv.json" 2>"$TMP/recv.err" &
r=$!
status 0 "send --test --frames 90: exit 0 at the end" \
	cam "$H1" send --test --frames 90 --size 320x240 --timeout 30
wait $r
check "recv --file: exit 0 at the end of the stream" test $? -eq 0
sed 's/^/# recv: /' "$TMP/recv.err"
n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["frames_received"])' \
	"$TMP/recv.json" 2>/dev/null || echo 0)
m=$(t gst-launch-1.0 -v filesrc location="$TMP/cam.mkv" ! matroskademux ! \
	jpegdec ! identity silent=false ! fakesink 2>&1 |
	grep -c 'last-message = chain')
check "the file holds every frame received, each decodable ($n received, $m decoded)" \
	test "$n" -gt 0 -a "$m" -eq "$n"
check "the receiver said when the sender connected" \
	grep -q "the sender is connected" "$TMP/recv.err"

# ---- into a window: TBSTREAM_CAM_VIDEOSINK in place of the display ----
TBSTREAM_CAM_VIDEOSINK="fakesink sync=true" cam "$H2" recv --json \
	--timeout 30 >"$TMP/win.json" 2>"$TMP/win.err" &
r=$!
cam "$H1" send --test --frames 60 --size 320x240 --timeout 30 --quiet
wait $r
check "recv --window: exit 0 at the end of the stream" test $? -eq 0
check "and frames were shown" python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["frames_received"] == 0)' "$TMP/win.json"

# ---- no sender ----
status 4 "recv --timeout 2 with no sender: time-out" \
	cam "$H2" recv --file "$TMP/none.mkv" --timeout 2
has_msg "names the stream and what to run" "stream 'cam'.*tbstream cam send"

# ---- no tbstream-cam (beside tbstream, nor installed) ----
mkdir "$TMP/bin"
cp "$TBSTREAM" "$TMP/bin/tbstream"
status 3 "without tbstream-cam: missing" env \
	LD_LIBRARY_PATH="$TOP_BUILDDIR/lib" "$TMP/bin/tbstream" cam --list
has_msg "names the package" "gstreamer1.0-tbstream"

done_testing
