# shellcheck shell=bash
# gst-launch-1.0 pipelines on the simulated hosts, for the GStreamer end
# to end tests: each in the background under timeout(1), its output in
# $TMP/NAME.log (every buffer logged by identity, with -v) and its
# buffers in $TMP/NAME/, which frames.py compares.  Needs tests/lib.sh
# (sim_start: TMP).
# shellcheck disable=SC2034 # the PID_NAME variables are read through eval

FRAMES="python3 $TOP_SRCDIR/tests/gst/frames.py"

# run NAME HOST PIPELINE...: gst-launch-1.0 -v in the background; sets
# PID_NAME; its output goes to $TMP/NAME.log and buffers to $TMP/NAME/.
run() {
	local name=$1
	shift
	rm -rf "${TMP:?}/$name" "$TMP/$name.log"
	mkdir "$TMP/$name"
	# timeout(1) itself, so that kill_run can find the pipeline
	LD_PRELOAD=${GST_LAUNCH_PRELOAD:-} \
		ASAN_OPTIONS=${GST_LAUNCH_ASAN_OPTIONS:-${ASAN_OPTIONS:-}} \
		timeout -k 3 "$T" gst-launch-1.0 -v -m "$@" \
		>"$TMP/$name.log" 2>&1 &
	eval "PID_$name=\$!"
}

# sender NAME HOST LIVE SOURCE...: SOURCE ! identity ! tbstreamsink (with
# the properties of $SINK_PROPS too), each buffer also written to
# $TMP/NAME/.
SINK_PROPS=
sender() {
	local name=$1 host=$2 live=$3
	shift 3
	# shellcheck disable=SC2086 # one word a property
	run "$name" -e "$@" ! identity silent=false ! tee name=t ! queue ! \
		tbstreamsink sysroot="$host" live="$live" timeout=30 \
		$SINK_PROPS t. ! queue ! multifilesink location="$TMP/$name/%05d"
}

# receiver NAME HOST: tbstreamsrc ! identity ! multifilesink.
receiver() {
	run "$1" tbstreamsrc sysroot="$2" timeout=30 ! \
		identity silent=false ! \
		multifilesink location="$TMP/$1/%05d"
}

# finish NAME...: waits for each; ok when all exited 0.
finish() {
	local n st=0 pid r
	for n in "$@"; do
		eval "pid=\$PID_$n"
		wait "$pid"
		r=$?
		[ $r -eq 0 ] && continue
		st=1
		diag "$n exited $r"
		grep -E '^(ERROR|WARNING)|Additional debug' "$TMP/$n.log" |
			head -5 | sed 's/^/#   /'
	done
	return $st
}

# sig SIGNAL NAME: sends SIGNAL to the pipeline NAME (the child of its
# timeout(1)).
sig() {
	local pid
	eval "pid=\$PID_$2"
	pkill "-$1" -P "$pid"
}

# kill_run NAME: kills the pipeline NAME (under its time limit) at once.
kill_run() {
	local pid
	eval "pid=\$PID_$1"
	sig KILL "$1"
	wait "$pid" 2>/dev/null
}

# received NAME: buffers seen so far.
received() {
	grep -c 'last-message = chain' "$TMP/$1.log" 2>/dev/null || echo 0
}

at_least() {
	[ "$(received "$1")" -ge "$2" ]
}

# compare MODE SENT RECV [MIN]: frames.py, as one test case.
compare() {
	local mode=$1 a=$2 b=$3 out
	shift 3
	if out=$($FRAMES "$mode" "$TMP/$a.log" "$TMP/$a" "$TMP/$b.log" \
		"$TMP/$b" "$@"); then
		ok "$DESC: $out"
	else
		not_ok "$DESC"
		echo "$out" | sed 's/^/#   /'
	fi
}
