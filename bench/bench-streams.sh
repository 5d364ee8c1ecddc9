#!/bin/bash
# Two streams at once between the same two hosts: the message latency on
# one (latency profile) while a bulk transfer runs at full rate on the
# other (throughput profile), against the same figures without the bulk
# transfer, in the same run; and the bulk rate with and without the
# messages.  Twice: with the simulator's link rate unlimited (processors
# as the bottleneck) and limited to half of the bulk rate alone (the link
# as the bottleneck, as on a cable).  Messages are measured with
# 'tbstream bench' (raw device and session, 64 B and 4 KiB).
#
# Usage: bench/bench-streams.sh [ROUNDS]   (round trips per size, 2000)
# Uses build/ (TBSIM and TBSTREAM may name other binaries).
set -u
. "$(dirname "$0")/common.sh"
rounds=${1:-2000}
CHUNK=64M


sim_start --adv-delay 100 >/dev/null
for spec in bulk:throughput ctl:latency; do
	ts "$H1" up ${spec%%:*} --profile ${spec#*:} >/dev/null &
	ts "$H2" up ${spec%%:*} --profile ${spec#*:} >/dev/null ||
		bail "could not set up stream ${spec%%:*}"
	wait
done

# bulk_start: host2 sends zeros to host1 on 'bulk' until bulk_stop.
bulk_start() {
	rm -f "$TMP/stop"
	BULK_T0=$(now)
	ts "$H1" pipe bulk </dev/null | wc -c >"$TMP/bytes" &
	BULK_RX=$!
	while [ ! -e "$TMP/stop" ]; do head -c $CHUNK /dev/zero; done |
		ts "$H2" pipe bulk >/dev/null &
	BULK_TX=$!
	wait_open "$H1" bulk && wait_open "$H2" bulk || bail "no bulk stream"
}

# bulk_stop: sets RATE to the bulk rate in MB/s since bulk_start, set-up
# included (as long in both runs).  (Not in a command substitution: a
# subshell cannot wait for these.)
bulk_stop() {
	touch "$TMP/stop"
	wait $BULK_TX || bail "the bulk sender failed"
	wait $BULK_RX
	RATE=$(awk -v b="$(cat "$TMP/bytes")" -v s="$BULK_T0" -v e="$(now)" \
		'BEGIN { printf "%.1f", b / 1e6 / (e - s) }')
}

# messages OUT: tbstream bench on 'ctl', its JSON into OUT.
messages() {
	local other
	ts "$H1" bench ctl --sizes 64,4k --rounds "$rounds" --bytes 64k \
		--json >"$1.1" 2>/dev/null &
	other=$!
	ts "$H2" bench ctl --sizes 64,4k --rounds "$rounds" --bytes 64k \
		--json >"$1" 2>/dev/null || bail "tbstream bench failed"
	wait $other
}

# report LABEL IDLE LOADED ALONE WITH: the table of one link condition.
report() {
	python3 - "$@" <<'PY'
import json, sys
label, idle, loaded, alone, with_msgs = sys.argv[1:6]
a = json.load(open(idle))["results"]
b = json.load(open(loaded))["results"]
print(label)
print("  %-16s %21s %21s %13s" % ("round trip (us)", "idle p50 / p99",
      "bulk running p50 / p99", "ratio p50 p99"))
for x, y in zip(a, b):
	print("  %-16s %10.1f / %8.1f %10.1f / %8.1f %6.2f %6.2f" % (
	      "%s %d B" % (x["kind"], x["size"]), x["rtt_p50_us"],
	      x["rtt_p99_us"], y["rtt_p50_us"], y["rtt_p99_us"],
	      y["rtt_p50_us"] / x["rtt_p50_us"],
	      y["rtt_p99_us"] / x["rtt_p99_us"]))
print("  bulk MB/s: alone %s, with messages %s, ratio %.3f" % (
      alone, with_msgs, float(with_msgs) / float(alone)))
PY
}

# run LABEL: both measurements of one link condition; the bulk transfer
# alone runs as long as the messages took.
run() {
	local alone with t0 took
	t0=$(now)
	messages "$TMP/idle"
	took=$(awk -v s="$t0" -v e="$(now)" 'BEGIN { print e - s }')
	bulk_start
	sleep "$took"
	bulk_stop
	alone=$RATE
	bulk_start
	messages "$TMP/loaded"
	bulk_stop
	with=$RATE
	report "$1" "$TMP/idle" "$TMP/loaded" "$alone" "$with"
	ALONE=$alone
}

run "link unlimited (the processors are the bottleneck)"
limit=$(awk -v a="$ALONE" 'BEGIN { print int(a * 1e6 / 2) }')
echo "rate $limit" >"$CTL"
run "link limited to $((limit / 1000000)) MB/s (the link is the bottleneck)"
echo "rate 0" >"$CTL"
