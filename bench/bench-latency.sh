#!/bin/bash
# Round trip of one message (64 B, 4 KiB), the session against the raw
# device, in the same run on a simulator, at two levels:
#
#  library  tbs_session_send_msg()/recv_msg() against read/write on the
#           device (bench-latency.c): 'session' with the receiving
#           thread reading the device (TBS_SESSION_CALLER_READS),
#           requirement p50 within 1.5; 'thread' with the session's
#           reader thread handing each message over (the default)
#  command  'tbstream pipe' against 'tbstream pipe --raw', both driven
#           through standard input and output (pipe-rtt.c), the far end
#           echoing through a FIFO; requirement: p50 and p99 within 1.3
#
# Raw and session run on twin streams (latency profile, one link), in
# alternating blocks, so that a change of the machine's load weighs on
# both alike.  Prints p50, p99 and the ratios session / raw.
# Usage: bench/bench-latency.sh [COUNT]   (round trips of each kind, 3000)
# Uses build/ (TBSIM and TBSTREAM may name other binaries).
set -u
T=${T:-120}
. "$(dirname "$0")/common.sh"
count=${1:-3000}
blocks=6
libdir=$(dirname "$TBSTREAM")/../lib

sim_start --adv-delay 100 >/dev/null
for prog in bench-latency pipe-rtt; do
	cc -O2 -Wall -Wextra -Werror -pthread -I"$top/include" \
		-o "$SIM_DIR/$prog" "$top/bench/$prog.c" -L"$libdir" \
		-Wl,-rpath,"$libdir" -ltbstream || bail "could not build $prog"
done
for name in lat latses latthr; do
	ts "$H1" up $name --profile latency >/dev/null &
	ts "$H2" up $name --profile latency >/dev/null ||
		bail "could not set up stream $name"
	wait
done
dev() {
	echo "$1/dev/tbstream$(attr "$1" "$2" index)"
}

echo "library: one message, read/write on the device against a session"
t "$SIM_DIR/bench-latency" "$(dev "$H1" lat)" "$(dev "$H2" lat)" \
	"$(dev "$H1" latses)" "$(dev "$H2" latses)" \
	"$(dev "$H1" latthr)" "$(dev "$H2" latthr)" "$count" 30 ||
	bail "bench-latency failed"

# cmd_block KIND SIZE N: N round trips through 'tbstream pipe' (raw or
# session); the far end echoes through a FIFO.  Raw bytes sent before the
# far end opened would be lost: the round trips start once it has.
cmd_block() {
	local stream=latses opt= echo
	[ "$1" = raw ] && stream=lat opt=--raw
	ts "$H2" pipe $stream $opt --keep 0<>"$SIM_DIR/fifo" \
		1>"$SIM_DIR/fifo" 2>/dev/null &
	echo=$!
	wait_open "$H2" $stream || bail "the echo did not open $stream"
	t "$SIM_DIR/pipe-rtt" "$2" "$3" "$SIM_DIR/$1-$2" -- \
		"$TBSTREAM" --sysroot "$H1" pipe $stream $opt --keep \
		2>/dev/null || bail "round trips through 'pipe $opt' failed"
	kill $echo 2>/dev/null
	wait $echo 2>/dev/null
}

pct() {
	sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 } END { print a[int((NR - 1) * p) + 1] }'
}

echo "command: through 'tbstream pipe', against 'tbstream pipe --raw'"
mkfifo "$SIM_DIR/fifo"
per=$((count / blocks / 3))
for size in 64 4096; do
	for i in $(seq $blocks); do
		cmd_block raw $size $per
		cmd_block session $size $per
	done
	for kind in raw session; do
		printf '%-8s %5d B  p50 %8.1f us  p99 %8.1f us\n' $kind $size \
			"$(pct "$SIM_DIR/$kind-$size" 0.5)" \
			"$(pct "$SIM_DIR/$kind-$size" 0.99)"
	done
	awk -v a="$(pct "$SIM_DIR/session-$size" 0.5)" \
		-v b="$(pct "$SIM_DIR/raw-$size" 0.5)" \
		-v c="$(pct "$SIM_DIR/session-$size" 0.99)" \
		-v d="$(pct "$SIM_DIR/raw-$size" 0.99)" -v s=$size \
		'BEGIN { printf "ratio    %5d B  p50 session/raw %.2f  p99 session/raw %.2f\n", s, a / b, c / d }'
done
