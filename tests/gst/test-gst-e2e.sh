#!/bin/bash
# tbstreamsink and tbstreamsrc end to end: gst-launch-1.0 on each of the
# two simulated hosts of tbsim, a separate process each.  Every buffer a
# pipeline sees is logged (identity, with -v) and written to a file
# (multifilesink); frames.py compares the two sides.  Exact runs
# (live=false): count, caps, times, offsets, flags and bytes equal, in
# either order of start, through a change of caps, and with frames
# corrupted and lost on the cable.  Live runs: the receiver killed and
# started again, the sender killed and started again, the cable unplugged
# and plugged, frames corrupted and lost, the receiver stalled: every
# buffer that arrives equals the one sent, and the stream goes on.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/gst/launch.sh"

need gst-launch-1.0
sim_start --adv-delay 200

SIZE="width=320,height=240,framerate=30/1"
# Buffers: logged, then both written out and sent.
LOG="identity silent=false ! tee name=t ! queue ! multifilesink"

SNOW="videotestsrc pattern=snow"
JPEG="$SNOW num-buffers=60 ! video/x-raw,$SIZE ! jpegenc"

DESC="MJPEG, sender first, nothing lost"
sender s1 "$H1" false $JPEG
sleep 1
receiver r1 "$H2"
check "$DESC: both pipelines end at the end of the stream" finish s1 r1
compare same s1 r1

DESC="raw video, receiver first"
receiver r2 "$H2"
sleep 1
sender s2 "$H1" false $SNOW num-buffers=40 ! video/x-raw,format=I420,$SIZE
check "$DESC: both end" finish s2 r2
compare same s2 r2

DESC="caps change in mid-stream"
receiver r3 "$H2"
sender s3 "$H1" false \
	$SNOW num-buffers=15 ! video/x-raw,width=160,height=120 ! c. \
	$SNOW num-buffers=15 ! video/x-raw,width=352,height=288 ! c. \
	concat name=c ! jpegenc
check "$DESC: both end" finish s3 r3
compare same s3 r3
check "$DESC: the receiver pushed both caps in turn" \
	test "$(grep -c 'GstTbStreamSrc:tbstreamsrc0.GstPad:src: caps = ' \
		"$TMP/r3.log")" -ge 2

DESC="frames corrupted and lost on the cable, nothing lost"
receiver r4 "$H2"
sender s4 "$H1" false $SNOW num-buffers=60 ! video/x-raw,$SIZE ! jpegenc
wait_for 20 at_least r4 5
echo "corrupt host2 3" >"$CTL"
echo "drop host2 3" >"$CTL"
check "$DESC: both end" finish s4 r4
compare same s4 r4

# ---- live: the sender never waits ----
LIVE="$SNOW is-live=true num-buffers=150 ! video/x-raw,$SIZE ! jpegenc"

DESC="live, receiver killed and started again"
sender s5 "$H1" true $LIVE
receiver r5a "$H2"
wait_for 20 at_least r5a 10
kill_run r5a
receiver r5b "$H2"
check "$DESC: both end" finish s5 r5b
compare subset s5 r5b 10
check "$DESC: the sender posted connect and disconnect messages" \
	grep -q 'tbstream-disconnected' "$TMP/s5.log"

DESC="live, sender killed and started again"
receiver r6 "$H2"
sender s6a "$H1" true $SNOW is-live=true ! video/x-raw,$SIZE ! jpegenc
wait_for 20 at_least r6 10
kill_run s6a
n=$(received r6)
sender s6b "$H1" true videotestsrc pattern=ball is-live=true \
	num-buffers=60 ! video/x-raw,$SIZE ! jpegenc
check "$DESC: both end" finish s6b r6
check "$DESC: the receiver went on with the new sender ($n, then $(received r6) buffers)" \
	test "$(received r6)" -gt "$((n + 10))"

DESC="live, cable unplugged and plugged"
receiver r7 "$H2"
sender s7 "$H1" true $SNOW is-live=true num-buffers=210 ! video/x-raw,$SIZE ! jpegenc
wait_for 20 at_least r7 10
echo unplug >"$CTL"
sleep 1
n=$(received r7)
echo plug >"$CTL"
check "$DESC: both end" finish s7 r7
compare subset s7 r7 "$((n + 10))"

DESC="live, frames corrupted and lost"
receiver r8 "$H2"
sender s8 "$H1" true $LIVE
wait_for 20 at_least r8 5
echo "corrupt host2 5" >"$CTL"
echo "drop host2 5" >"$CTL"
check "$DESC: both end" finish s8 r8
compare subset s8 r8 100

# A window of 1 MiB, a quarter of what the stall holds back (snow is
# about 90 KB a frame): the sender must drop, however fast each side runs.
DESC="live, receiver stalled"
receiver r9 "$H2"
SINK_PROPS="window=1048576" sender s9 "$H1" true $LIVE
wait_for 20 at_least r9 5
echo "stall host2 1500" >"$CTL"
check "$DESC: both end" finish s9 r9
compare subset s9 r9 20
check "$DESC: the sender dropped buffers and said so" \
	grep -q 'tbstream-dropped' "$TMP/s9.log"

# ---- delta frames: the receiver starts at a key frame ----
DESC="VP8, receiver started again"
VP8="$SNOW is-live=true num-buffers=150 ! video/x-raw,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=10000"
if gst-inspect-1.0 vp8enc >/dev/null 2>&1; then
	sender s10 "$H1" true $VP8
	receiver r10a "$H2"
	wait_for 20 at_least r10a 10
	kill_run r10a
	receiver r10b "$H2"
	check "$DESC: both end" finish s10 r10b
	compare subset s10 r10b 10
	# Key frames come only on request: one every 10000 frames else.
	first=$($FRAMES first "$TMP/r10b.log")
	check "$DESC: the new receiver starts at a key frame made on request ($first)" \
		test "${first% *}" = key -a "${first#* }" != 0
else
	skip "vp8enc is not installed"
fi

done_testing
