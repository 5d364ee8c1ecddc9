#!/bin/bash
# Throughput of the network transport against iperf3 on the same link in
# the same run, reported as ratios: two network namespaces joined by a
# veth pair named thunderbolt0 (as in tests/e2e/test-net.sh), host1
# without the stream driver, so that the commands take IP over
# Thunderbolt.  All one way, MB/s (10^6 bytes per second), each figure
# the median of ROUNDS rounds; a ratio is the median of the rounds'
# ratios, each against iperf3 of its own round:
#
#	iperf3		one TCP stream, host2 to host1 (its own buffers)
#	session		'tbstream bench --transport net', 1 MiB messages: the
#			session protocol (checksums, acknowledgement) on
#			data in memory, as iperf3 moves it
#	raw		the same command's raw phase: plain read(2) and
#			write(2) on the transport's TCP connection
#	pipe		'tbstream pipe' from a file on tmpfs to /dev/null:
#			the session plus reading standard input
#
# Twice: unlimited (both hosts share this machine's processors, which are
# then the bottleneck, so every byte the session copies or hashes beyond
# what iperf3 does costs throughput), and link-bound, with host2's veth
# end shaped by tbf to half of the slowest unlimited figure (at most 9.3
# Gb/s, what IP over Thunderbolt reaches on real cables), as a cable would
# be, with a queue of 2 ms: the goal is 0.9 of iperf3 there.  Each
# tbstream run moves about SECONDS of data, so the fixed costs (meeting,
# handshake, confirmation) weigh little.
#
# Usage: bench/bench-net.sh [SECONDS [ROUNDS]]   (3 and 3)
# Needs root (network namespaces), iperf3 and tc; uses build/.
set -u
. "$(dirname "$0")/common.sh"
. "$top/tests/e2e/net.sh"
secs=${1:-3}
rounds=${2:-3}
skip() { echo "bench-net: $*" >&2; exit 0; }
done_testing() { :; }
command -v iperf3 >/dev/null || skip "needs iperf3 (apt-get install iperf3)"
command -v tc >/dev/null || skip "needs tc (apt-get install iproute2)"

# iperf: iperf3 from host2 to host1 for $secs s, MB/s.
iperf() {
	local addr s
	addr=$(ll_of "$NS1")
	in1 timeout $((secs + 20)) iperf3 -s -1 -B "$addr%thunderbolt0" \
		>/dev/null 2>&1 &
	s=$!
	sleep 0.5
	in2 timeout $((secs + 20)) iperf3 -c "$addr%thunderbolt0" -t "$secs" \
		-J >"$SIM_DIR/iperf.json" 2>/dev/null || bail "iperf3 failed"
	wait $s
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("%.1f" % (j["end"]["sum_received"]["bits_per_second"] / 8e6))' \
		"$SIM_DIR/iperf.json"
}

# benched BYTES: tbstream bench on both hosts, 1 MiB messages; prints the
# session's and the raw phase's one-way MB/s.
benched() {
	local b=(bench --transport net --sizes 1m --rounds 20 --bytes "$1"
		--json) r
	n1 "${b[@]}" >"$SIM_DIR/b1.json" 2>"$SIM_DIR/b1.err" &
	r=$!
	n2 "${b[@]}" >"$SIM_DIR/b2.json" 2>"$SIM_DIR/b2.err" ||
		bail "tbstream bench failed: $(cat "$SIM_DIR/b2.err")"
	wait $r || bail "tbstream bench failed: $(cat "$SIM_DIR/b1.err")"
	python3 -c 'import json, sys
r = {x["kind"]: x["mb_per_s"] for x in json.load(open(sys.argv[1]))["results"]}
print(r["session"], r["raw"])' "$SIM_DIR/b1.json"
}

# piped BYTES: tbstream pipe from host2 to host1, MB/s.
piped() {
	local start r
	truncate -s "$1" "$ZEROS"
	n1 pipe -q </dev/null >/dev/null &
	r=$!
	start=$(now)
	n2 pipe -q <"$ZEROS" >/dev/null || bail "sending pipe failed"
	wait $r || bail "receiving pipe failed"
	rm -f "$ZEROS"
	mbs "$1" "$start" "$(now)"
}

# median: of the numbers on standard input
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run LABEL MB/S: ROUNDS rounds of the four, about $secs s at MB/S each.
run() {
	local i s r p bytes pbytes ri='' rs='' rr='' rp=''
	bytes=$(awk -v m="$2" -v s="$secs" 'BEGIN { b = int(m * 1e6 * s / 1048576);
		if (b < 64) b = 64; if (b > 16384) b = 16384; print b "m" }')
	pbytes=$(awk -v m="$2" -v s="$secs" 'BEGIN { printf "%d", m * 1e6 * s }')
	for _ in $(seq "$rounds"); do
		i=$(iperf)
		read -r s r <<<"$(benched "$bytes")"
		p=$(piped "$pbytes")
		ri="$ri $i" rs="$rs $s" rr="$rr $r" rp="$rp $p"
		echo "$i $s $r $p" >>"$SIM_DIR/rounds"
	done
	med() { tr ' ' '\n' | grep . | median; }
	rat() { awk -v c="$1" '{ print $c / $1 }' "$SIM_DIR/rounds" | median; }
	printf '%-28s %8.0f %8.0f %8.0f %8.0f %6s %6s %6s\n' "$1" \
		"$(echo "$ri" | med)" "$(echo "$rs" | med)" \
		"$(echo "$rr" | med)" "$(echo "$rp" | med)" \
		"$(rat 2)" "$(rat 3)" "$(rat 4)"
	SLOWEST=$(awk 'NR == 1 || $2 < m { m = $2 } END { print m }' \
		"$SIM_DIR/rounds")
	rm -f "$SIM_DIR/rounds"
}

sim_start --network --driver host1:absent --adv-delay 0 >/dev/null
TMP=$SIM_DIR
ZEROS=$SIM_DIR/zeros
[ -d /dev/shm ] && ZEROS=/dev/shm/tbstream-bench-net.$$
net_start
trap 'rm -f "$ZEROS"; net_cleanup; sim_cleanup' EXIT
echo "MB/s one way, host2 to host1 over a veth pair in two network" \
	"namespaces; medians of $rounds rounds"
printf '%-28s %8s %8s %8s %8s %6s %6s %6s\n' "case" "iperf3" "session" \
	"raw" "pipe" "ses/i" "raw/i" "pipe/i"
run "unlimited" 1500
limit=$(awk -v m="$SLOWEST" 'BEGIN { l = int(m / 2); c = int(9.3e9 / 8 / 1e6);
	print l < c ? l : c }')
in2 tc qdisc replace dev thunderbolt0 root tbf rate "$((limit * 8))mbit" \
	burst 1m latency 2ms || bail "tc tbf failed"
run "link-bound (tbf $limit MB/s)" "$limit"
in2 tc qdisc del dev thunderbolt0 root
