#!/bin/bash
# Throughput of 'tbstream pipe' (verified, session protocol) against
# 'dd bs=1M' on the raw device, on the same simulated stream in the same
# run, reported as a ratio.  Twice: with the simulator's link rate set
# below what the processors manage (link-bound, as on a real cable) and
# unlimited (processor-bound).  The link-bound rate is half the slower
# unlimited result, and that run moves ten seconds of data, so fixed costs
# (start-up, handshake, confirmation) weigh little.
#
# Usage: bench/bench-pipe.sh [MIB]   (MIB: size of the unlimited run, 512)
# Uses build/ (TBSIM and TBSTREAM may name other binaries).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
TBSIM=${TBSIM:-$top/build/sim/tbsim}
TBSTREAM=${TBSTREAM:-$top/build/src/tbstream}
T=${T:-300}
TOP_SRCDIR=$top
. "$top/tests/lib.sh"
. "$top/tests/e2e/common.sh"
. "$top/bench/lib.sh"
size_mib=${1:-512}

# raw BYTES: dd from host2's device to host1's, MiB/s.
raw() {
	local n=$(($1 / 1048576)) start r
	t dd if="$D1" of=/dev/null bs=1M status=none &
	r=$!
	wait_open "$H1" bench || bail "raw reader did not open"
	start=$(now)
	t dd if=/dev/zero of="$D2" bs=1M count=$n conv=notrunc status=none ||
		bail "dd to the raw device failed"
	wait $r || bail "dd from the raw device failed"
	mbps $(($n * 1048576)) "$start" "$(now)"
}

# run LABEL BYTES: both measurements, then the ratio.
run() {
	local r p
	r=$(raw "$2")
	p=$(piped "$2")
	printf '%-28s %8s MiB/s %8s MiB/s %7s\n' "$1" "$r" "$p" \
		"$(awk -v p="$p" -v r="$r" 'BEGIN { printf "%.3f", p / r }')"
	RAW=$r PIPE=$p
}

sim_start --adv-delay 100 >/dev/null
ts "$H1" up bench >/dev/null &
D2=$(ts "$H2" up bench) || bail "could not set up the stream"
wait
D1=$(ts "$H1" up bench)
printf '%-28s %13s %13s %7s\n' "case" "dd raw" "pipe" "ratio"
run "unlimited ($size_mib MiB)" $((size_mib * 1048576))
limit=$(echo "$RAW $PIPE" | awk '{ m = $1 < $2 ? $1 : $2; print int(m / 2) }')
[ "$limit" -ge 1 ] || limit=1
echo "rate $((limit * 1048576))" >"$CTL"
run "link-bound ($limit MiB/s)" $((limit * 1048576 * 10))
echo "rate 0" >"$CTL"
