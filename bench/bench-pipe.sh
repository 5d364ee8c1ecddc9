#!/bin/bash
# Throughput of 'tbstream pipe' (verified, session protocol) against the
# raw device, on the same simulated stream in the same run, both fed the
# same way: 'head -c N /dev/zero | tbstream pipe' into 'tbstream pipe
# >/dev/null', against 'head -c N /dev/zero | dd of=DEV bs=1M' into 'dd
# if=DEV of=/dev/null bs=1M'.  Prints the rates and their ratio, and the
# processor time (user + system) per GiB of each side's process, pipe
# against dd.  Twice: with the simulator's link rate unlimited
# (processor-bound) and set below what the processors manage (link-bound,
# as on a real cable).  The link-bound rate is half the slower unlimited
# result, and that run moves ten seconds of data, so fixed costs
# (start-up, handshake, confirmation) weigh little.  Each case alternates
# raw and pipe runs (ROUNDS of each), so that a change of the machine's
# load weighs on both alike.
#
# Usage: bench/bench-pipe.sh [MIB]   (MIB: size of the unlimited run, 1024)
# Uses build/ (TBSIM and TBSTREAM may name other binaries).
set -u
. "$(dirname "$0")/common.sh"
size_mib=${1:-1024}
ROUNDS=${ROUNDS:-4}


# cpu OUT CMD...: runs CMD (standard input and output as given), writes
# the processor time it took (user + system, seconds) to OUT.
cpu() {
	python3 -c '
import resource, subprocess, sys
r = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f\n" % (u.ru_utime + u.ru_stime))
sys.exit(r)' "$@"
}

# add FILE SECONDS: adds SECONDS to the sum in FILE.
add() {
	awk -v a="$(cat "$1" 2>/dev/null || echo 0)" -v b="$2" \
		'BEGIN { print a + b }' >"$1.new" && mv "$1.new" "$1"
}

# raw BYTES: dd from host2's device to host1's; adds the time and each
# side's processor time to $TMP/raw.{time,tx,rx}.
raw() {
	local start r
	cpu "$TMP/cpu.rx" dd if="$D1" of=/dev/null bs=1M status=none &
	r=$!
	wait_open "$H1" bench || bail "raw reader did not open"
	start=$(now)
	head -c "$1" /dev/zero |
		cpu "$TMP/cpu.tx" dd of="$D2" bs=1M conv=notrunc status=none ||
		bail "dd to the raw device failed"
	wait $r || bail "dd from the raw device failed"
	add "$TMP/raw.time" "$(awk -v s="$start" -v e="$(now)" 'BEGIN { print e - s }')"
	add "$TMP/raw.tx" "$(cat "$TMP/cpu.tx")"
	add "$TMP/raw.rx" "$(cat "$TMP/cpu.rx")"
}

# piped BYTES: tbstream pipe from host2 to host1 (verified); adds to
# $TMP/pipe.{time,tx,rx}.
piped() {
	local start r
	cpu "$TMP/cpu.rx" "$TBSTREAM" --sysroot "$H1" pipe bench \
		</dev/null >/dev/null &
	r=$!
	start=$(now)
	head -c "$1" /dev/zero |
		cpu "$TMP/cpu.tx" "$TBSTREAM" --sysroot "$H2" pipe bench \
		>/dev/null || bail "sending pipe failed"
	wait $r || bail "receiving pipe failed"
	add "$TMP/pipe.time" "$(awk -v s="$start" -v e="$(now)" 'BEGIN { print e - s }')"
	add "$TMP/pipe.tx" "$(cat "$TMP/cpu.tx")"
	add "$TMP/pipe.rx" "$(cat "$TMP/cpu.rx")"
}

# per_gib FILE BYTES: the processor seconds in FILE per GiB moved.
per_gib() {
	awk -v c="$(cat "$1")" -v b="$2" 'BEGIN { printf "%.2f", c / (b / 1073741824) }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'
}

# run LABEL BYTES: ROUNDS of raw and pipe runs of BYTES / ROUNDS each,
# alternating; then the rates and the ratios.
run() {
	local r p side rd pd i per=$(($2 / ROUNDS))
	rm -f "$TMP"/raw.* "$TMP"/pipe.*
	for i in $(seq $ROUNDS); do
		raw $per
		piped $per
	done
	r=$(mbps $((per * ROUNDS)) 0 "$(cat "$TMP/raw.time")")
	p=$(mbps $((per * ROUNDS)) 0 "$(cat "$TMP/pipe.time")")
	printf '%-28s %8s MiB/s %8s MiB/s %7s\n' "$1" "$r" "$p" \
		"$(ratio "$p" "$r")"
	for side in tx rx; do
		rd=$(per_gib "$TMP/raw.$side" $((per * ROUNDS)))
		pd=$(per_gib "$TMP/pipe.$side" $((per * ROUNDS)))
		printf '  CPU s/GiB, %-15s %8s dd   %8s pipe %7s\n' \
			"$([ $side = tx ] && echo sending side || echo receiving side)" \
			"$rd" "$pd" "$(ratio "$pd" "$rd")"
	done
	RAW=$r PIPE=$p
}

sim_start --adv-delay 100 >/dev/null
ts "$H1" up bench >/dev/null &
D2=$(ts "$H2" up bench) || bail "could not set up the stream"
wait
D1=$(ts "$H1" up bench)
printf '%-28s %13s %13s %7s\n' "case" "head|dd raw" "pipe" "ratio"
run "unlimited ($size_mib MiB)" $((size_mib * 1048576))
limit=$(echo "$RAW $PIPE" | awk '{ m = $1 < $2 ? $1 : $2; print int(m / 2) }')
[ "$limit" -ge 1 ] || limit=1
echo "rate $((limit * 1048576))" >"$CTL"
run "link-bound ($limit MiB/s)" $((limit * 1048576 * 10))
echo "rate 0" >"$CTL"
