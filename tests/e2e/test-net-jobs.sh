#!/bin/bash
# The long-running commands over IP over Thunderbolt: each simulated host
# in a network namespace of its own (tests/e2e/net.sh), host1 without the
# stream driver, so the automatic choice is the network.
#
# tbstream forward: curl through a listening side in host1's namespace to
# python's http.server in host2's (every body checked), the connecting
# side restarted and met again, a clean end on SIGTERM with the
# interfaces left as they were; tbstream disk share / attach with nbdcopy
# both ways; tbstream cam a test pattern into a Matroska file (when
# GStreamer is there), and --transport stream refused with the reason.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/net.sh"

need curl nbdkit nbdcopy
sim_start --network --driver host1:absent --adv-delay 0
BG=
jobs_cleanup() {
	local p
	for p in $BG; do kill "$p" 2>/dev/null; done
	for p in $BG; do wait "$p" 2>/dev/null; done
	net_cleanup
	sim_cleanup
}
net_start down
trap jobs_cleanup EXIT

# fwdbg N LOG ARGS...: tbstream forward in host N's namespace, background.
fwdbg() {
	local n=$1 log=$2
	shift 2
	if [ "$n" = 1 ]; then bg1 "$@" >"$log" 2>&1; else bg2 "$@" >"$log" 2>&1; fi
	BG="$BG $!"
}
# up_in LOG [N]: until LOG says "link up" N times (30 s).
ups() { [ "$(grep -c 'link up' "$1")" -ge "$2" ]; }
up_in() {
	wait_for 30 ups "$1" "${2:-1}" || {
		sed 's/^/#   /' "$1"
		return 1
	}
}
# stop PID: SIGTERM, its exit status in $ST.
stop() {
	kill "$1" 2>/dev/null
	wait_limit "$1"
	ST=$?
}

# --- forward: curl in host1's namespace, http.server in host2's ---
mkdir "$TMP/www" "$TMP/got"
for i in $(seq 8); do head -c $((i * 150000)) /dev/urandom >"$TMP/www/f$i"; done
(cd "$TMP/www" && exec nsenter --net=/proc/"$NS2"/ns/net -- timeout 300 \
	python3 -m http.server --bind 127.0.0.1 8080 >/dev/null 2>&1) &
BG="$BG $!"
in2 bash -c 'for i in $(seq 100); do
	curl -s -o /dev/null http://127.0.0.1:8080/ && exit 0; sleep 0.1; done
	exit 1' || bail "http.server did not start"
fwdbg 2 "$TMP/c.log" forward -v web --connect 127.0.0.1:8080
c=$!
fwdbg 1 "$TMP/l.log" forward -v web --listen 127.0.0.1:9090
l=$!
check "forward: the link comes up over the network" up_in "$TMP/l.log"
check "and the choice is said" grep -q \
	"transport: IP over Thunderbolt on 'thunderbolt0'" "$TMP/l.log"
fetch() {
	local args=() i
	for i in $(seq 8); do
		args+=(-o "$TMP/got/$1$i" "http://127.0.0.1:9090/f$i")
	done
	in1 timeout 60 curl -s --fail --parallel --parallel-max 8 --max-time 50 \
		"${args[@]}"
	CURL_ST=$?
	BAD=0
	for i in $(seq 8); do
		cmp -s "$TMP/www/f$i" "$TMP/got/$1$i" || BAD=$((BAD + 1))
	done
}
fetch a
is "8 fetches at once through forward: curl exits 0, no body differs" \
	"$CURL_ST $BAD" "0 0"
# the connecting side restarts: the listening side meets it again
kill -KILL "$c"
wait "$c" 2>/dev/null
fwdbg 2 "$TMP/c2.log" forward -v web --connect 127.0.0.1:8080
c=$!
check "the connecting side restarted: the link comes up again" \
	up_in "$TMP/l.log" 2
fetch b
is "and the fetches work again" "$CURL_ST $BAD" "0 0"
stop "$l"
is "SIGTERM: the listening side exits 0" "$ST" 0
stop "$c"
is "SIGTERM: the connecting side exits 0" "$ST" 0
check_fails "host1's interface is down again" if_up "$NS1"
check_fails "host2's too" if_up "$NS2"

# --- disk share / attach: nbdcopy both ways ---
head -c $((24 << 20)) /dev/urandom >"$TMP/disk.img"
head -c $((24 << 20)) /dev/urandom >"$TMP/new.img"
SOCK=$TMP/nbd.sock
U="nbd+unix:///?socket=$SOCK"
sum() { sha256sum "$1" | cut -d' ' -f1; }
fwdbg 2 "$TMP/s.log" disk share -v "$TMP/disk.img"
s=$!
fwdbg 1 "$TMP/a.log" disk attach -v --socket "$SOCK"
a=$!
check "disk: the link comes up over the network" up_in "$TMP/a.log"
in1 timeout 60 nbdcopy "$U" "$TMP/read.img"
is "nbdcopy from the export: same hash" "$(sum "$TMP/read.img")" \
	"$(sum "$TMP/disk.img")"
in1 timeout 60 nbdcopy "$TMP/new.img" "$U"
is "nbdcopy to the export: the shared file has its hash" \
	"$(sum "$TMP/disk.img")" "$(sum "$TMP/new.img")"
stop "$a"
is "attach ends on SIGTERM with 0" "$ST" 0
stop "$s"
is "share ends on SIGTERM with 0" "$ST" 0

# --- cam: a test pattern into a file ---
cam_exe=$(dirname "$TBSTREAM")/tbstream-cam
if command -v gst-launch-1.0 >/dev/null && [ -x "$cam_exe" ]; then
	# up beforehand, as a network manager keeps them: a live source
	# drops what it makes before the peer is met
	link_up "$NS1"
	link_up "$NS2"
	wait_for 10 ll_ready "$NS1" && wait_for 10 ll_ready "$NS2"
	bg1 cam recv --file "$TMP/cam.mkv" --json --timeout 30 \
		>"$TMP/cr.json" 2>"$TMP/cr.err"
	r=$!
	n2 cam send --test --frames 60 --size 320x240 --timeout 30 \
		2>"$TMP/cs.err"
	rs=$?
	wait_limit $r
	is "cam send -> cam recv --file over the network: both exit 0" \
		"$rs $?" "0 0"
	sed 's/^/# recv: /' "$TMP/cr.err"
	sed 's/^/# send: /' "$TMP/cs.err"
	n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["frames_received"])' \
		"$TMP/cr.json" 2>/dev/null || echo 0)
	m=$(t gst-launch-1.0 -v filesrc location="$TMP/cam.mkv" ! \
		matroskademux ! jpegdec ! identity silent=false ! fakesink \
		2>&1 | grep -c 'last-message = chain')
	check "every frame received is in the file ($n received, $m decoded)" \
		test "$n" -gt 0 -a "$m" -eq "$n"
	check "the receiver said which transport" grep -q \
		"transport: IP over Thunderbolt" "$TMP/cr.err"
	status 3 "cam --transport stream without the driver: exit 3" \
		n1 cam recv --file "$TMP/x.mkv" --transport stream --timeout 3
	has_msg "and why" "stream driver|thunderbolt_stream"
else
	skip "no GStreamer or tbstream-cam"
fi
done_testing
