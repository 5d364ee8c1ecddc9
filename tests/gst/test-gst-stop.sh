#!/bin/bash
# shellcheck disable=SC2034 # the PID_NAME variables are read through eval
# Stopping a sender with Ctrl-C, as users do.  gst-launch-1.0 -e with
# tbstreamsink live=false (lose nothing): once, the end of the stream goes
# to the receiver and every buffer arrives byte-exact; against a receiver
# that is stopped (SIGSTOP), a second Ctrl-C ends the sender at once,
# non-zero; a receiver that dies before confirming the end makes the
# sender fail, non-zero, saying the last buffers may not have arrived.
# tbstream cam send, whose Ctrl-C stops the pipeline (state NULL): while
# the end of the stream waits for a stopped receiver, it stops at once
# (the session would wait up to its idle time-out), says frames may be
# lost and exits 1; with the receiver running it is a clean stop, 0.
# Every wait has a limit below the session's time-outs; verdicts are the
# exit statuses, the messages and the bytes.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/gst/launch.sh"

need gst-launch-1.0
sim_start --adv-delay 200

SRC="videotestsrc pattern=snow is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! jpegenc"

# endless_sender NAME: a live source that never ends, to a sink that is
# not live (it loses nothing).
endless_sender() {
	# shellcheck disable=SC2086 # one word an element or property
	sender "$1" "$H1" false $SRC
}

says() {
	grep -q "$2" "$TMP/$1.log"
}

gone() {
	local pid
	eval "pid=\$PID_$1"
	! kill -0 "$pid" 2>/dev/null
}

# ended NAME: waits for NAME's exit status (it has ended), into ST.
ended() {
	local pid
	eval "pid=\$PID_$1"
	wait "$pid"
	ST=$?
}

# ---- a healthy receiver: one Ctrl-C delivers everything ----
DESC="Ctrl-C once, receiver running"
receiver r1 "$H2"
endless_sender s1
wait_for 30 at_least r1 10
sig INT s1
check "$DESC: the sender ends at the end of the stream" wait_for 30 gone s1
ended s1
is "$DESC: the sender exits 0" "$ST" 0
check "$DESC: the receiver ends too" wait_for 30 gone r1
ended r1
is "$DESC: the receiver exits 0" "$ST" 0
compare same s1 r1

# ---- a stopped receiver: a second Ctrl-C ends gst-launch-1.0 at once ----
DESC="Ctrl-C twice, receiver stopped"
receiver r2 "$H2"
endless_sender s2
wait_for 30 at_least r2 10
sig STOP r2
sig INT s2
wait_for 10 says s2 "Waiting for EOS"
sig INT s2
check "$DESC: the sender ends within 8 s" wait_for 8 gone s2
sig KILL s2 2>/dev/null
ended s2
check "$DESC: non-zero ($ST)" test "$ST" -ne 0 -a "$ST" -ne 124
sig KILL r2
sig CONT r2
ended r2

# ---- the receiver dies before confirming the end ----
DESC="Ctrl-C once, receiver stopped then killed"
receiver r3 "$H2"
endless_sender s3
wait_for 30 at_least r3 10
sig STOP r3
sig INT s3
wait_for 10 says s3 "Waiting for EOS"
sig KILL r3
sig CONT r3
ended r3
check "$DESC: the sender ends" wait_for 20 gone s3
ended s3
check "$DESC: and exits non-zero ($ST)" test "$ST" -ne 0 -a "$ST" -ne 124
check "$DESC: saying the last buffers may not have arrived" \
	says s3 "did not confirm the end of the stream.*may not have arrived"
grep -E '^ERROR' "$TMP/s3.log" | head -2 | sed 's/^/#   /'

# ---- tbstream cam send: the end of the stream waits, Ctrl-C stops ----
# The application stops the pipeline (gst_element_set_state(NULL)) while
# the sink waits for a receiver that was stopped: the session is aborted,
# the command ends at once (the receiver's session would be declared gone
# only after 10 s), says frames may be lost, and fails.
DESC="cam send: the end waits for a stopped receiver, Ctrl-C"
# cam HOST ARGS...: tbstream cam under timeout(1), which is the process
# (exec) that the caller runs in the background: the command is its child.
cam() {
	LD_PRELOAD=${GST_LAUNCH_PRELOAD:-} \
		ASAN_OPTIONS=${GST_LAUNCH_ASAN_OPTIONS:-${ASAN_OPTIONS:-}} \
		exec timeout -k 3 "$T" "$TBSTREAM" --sysroot "$@"
}
rm -f "$TMP/c4.mkv"
(cam "$H2" cam recv --file "$TMP/c4.mkv" --timeout 30) >"$TMP/r4.log" 2>&1 &
PID_r4=$!
(GST_DEBUG=tbstream:4 GST_DEBUG_NO_COLOR=1 cam "$H1" cam send --test \
	--frames 60 --size 320x240 --timeout 30) >"$TMP/s4.log" 2>&1 &
PID_s4=$!
wait_for 30 says s4 "the receiver is connected"
sig STOP r4
check "$DESC: the sender waits for the receiver's confirmation" \
	wait_for 30 says s4 "end of stream queued"
sig INT s4
check "$DESC: the sender stops within 8 s" wait_for 8 gone s4
sig KILL s4 2>/dev/null
ended s4
is "$DESC: exit status 1" "$ST" 1
check "$DESC: says the last frames may not have arrived" \
	says s4 "stopped before the receiver confirmed the end of the stream.*may not have arrived"
grep -E '^tbstream: .*(confirm|sent)' "$TMP/s4.log" | sed 's/^/#   /'
sig KILL r4
sig CONT r4
ended r4

# ---- tbstream cam send, healthy: Ctrl-C mid-stream is a clean stop ----
DESC="cam send: Ctrl-C with the receiver running"
(cam "$H2" cam recv --file "$TMP/c5.mkv" --timeout 30) >"$TMP/r5.log" 2>&1 &
PID_r5=$!
(cam "$H1" cam send --test --size 320x240 --timeout 30) >"$TMP/s5.log" 2>&1 &
PID_s5=$!
wait_for 30 says s5 "the receiver is connected"
sig INT s5
check "$DESC: the sender stops" wait_for 20 gone s5
ended s5
is "$DESC: exit status 0" "$ST" 0
sig INT r5
check "$DESC: the receiver stops" wait_for 20 gone r5
ended r5
is "$DESC: the receiver exits 0" "$ST" 0

done_testing
