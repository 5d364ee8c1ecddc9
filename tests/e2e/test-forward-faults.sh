#!/bin/bash
# tbstream forward through faults, with transfers under way: the cable
# unplugged and plugged back, each side killed and started again, stopped
# cleanly and started again, corrupted and lost frames.  No connection
# ever gets a wrong byte (a transfer completes with the right body, or
# fails with a prefix of it); both forwards keep running, and new
# connections work again once the link is back.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/forward-lib.sh"

need curl
fwd_start
N=8
mkdir "$TMP/www" "$TMP/got"
for i in $(seq $N); do
	head -c $((3 << 20)) /dev/urandom >"$TMP/www/f$i"
done
echo small >"$TMP/www/small"
http_start "$TMP/www"
hp=$HP
lp=$(free_port)

start_connect() {
	fwd "$H2" "$TMP/c.log" flt --connect "127.0.0.1:$hp"
	C=$FWD_PID
}
start_listen() {
	fwd "$H1" "$TMP/l.log" flt --listen "$lp"
	L=$FWD_PID
}
start_connect
start_listen
UPS=1
check "the link comes up" link_up "$TMP/l.log"

# transfers: N downloads in the background, at the simulator's rate.
transfers() {
	local i
	rm -f "$TMP"/got/*
	PIDS=
	for i in $(seq $N); do
		curl -s --max-time 60 -o "$TMP/got/f$i" \
			"http://127.0.0.1:$lp/f$i" &
		PIDS="$PIDS $!"
	done
}

# verdict DESC [all]: every transfer that succeeded has the right body,
# every one that failed got a prefix of it; with "all", every one must
# have succeeded.
verdict() {
	local i p st good=0 wrong=0 failed=0 n
	i=0
	for p in $PIDS; do
		i=$((i + 1))
		wait "$p"
		st=$?
		n=$(stat -c %s "$TMP/got/f$i" 2>/dev/null || echo 0)
		if [ $st -eq 0 ] && cmp -s "$TMP/www/f$i" "$TMP/got/f$i"; then
			good=$((good + 1))
		elif [ $st -ne 0 ] && { [ "$n" -eq 0 ] ||
			cmp -s -n "$n" "$TMP/www/f$i" "$TMP/got/f$i"; }; then
			failed=$((failed + 1))
		else
			wrong=$((wrong + 1))
			echo "# f$i: curl $st, $n bytes, not what was served"
		fi
	done
	diag "$1: $good complete, $failed failed cleanly"
	is "$1: no connection got a wrong byte" "$wrong" 0
	[ "${2:-}" != all ] || is "$1: every transfer completed" "$failed" 0
}

# recovered DESC: both forwards run, the link is up again, a new
# connection works.
recovered() {
	local t0 t1
	UPS=$((UPS + 1))
	t0=${T0:-$(date +%s%N)}
	if link_up "$TMP/l.log" "$UPS" && link_up "$TMP/c.log" 1 &&
		wait_for 30 curl -sf -o "$TMP/small.got" \
			"http://127.0.0.1:$lp/small"; then
		t1=$(date +%s%N)
		ok "$1: a new connection works again"
		diag "$1: a new connection worked" \
			"$(((t1 - t0) / 1000000)) ms after the fault ended"
	else
		not_ok "$1: a new connection works again"
		sed 's/^/#   /' "$TMP/l.log" "$TMP/c.log" | tail -20
	fi
	check "$1: both forwards still run" kill -0 "$L" "$C"
}

echo "rate 12000000" >"$CTL"

transfers
sleep 0.5
echo unplug >"$CTL"
sleep 0.3
echo plug >"$CTL"
T0=$(date +%s%N)
verdict "unplug"
recovered "unplug"

# The connecting side killed and started again.
transfers
sleep 0.5
kill_bg "$C"
start_connect
T0=$(date +%s%N)
verdict "connecting side killed"
recovered "connecting side killed and restarted"

# The listening side killed and started again: the connecting side,
# which keeps running, sees its peer restart.
transfers
sleep 0.5
kill_bg "$L"
verdict "listening side killed"
start_listen
T0=$(date +%s%N)
UPS=0
recovered "listening side killed and restarted"

# The connecting side stopped cleanly (SIGTERM) and started again: the
# listening side is told, and its open connections are reset at once.
transfers
sleep 0.5
stop_bg "$C"
is "SIGTERM: the connecting side exits 0" "$ST" 0
verdict "connecting side stopped"
check "the listening side was told why" \
	grep -q "tbstream forward stopped on the other host" "$TMP/l.log"
start_connect
T0=$(date +%s%N)
recovered "connecting side stopped and started again"

# Corrupted and lost frames are repaired by the session: every transfer
# completes, right.
transfers
sleep 0.3
echo "corrupt host1 20" >"$CTL"
echo "corrupt host2 5" >"$CTL"
echo "drop host1 10" >"$CTL"
echo "drop host2 5" >"$CTL"
verdict "corrupted and lost frames" all
check "the corruption was there to repair" \
	test "$(sim_stat host1 flt corrupted)" -gt 0 -o \
	"$(sim_stat host2 flt corrupted)" -gt 0
check "both forwards still run" kill -0 "$L" "$C"
echo "rate 0" >"$CTL"
done_testing
