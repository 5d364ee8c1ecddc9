# What the benchmark scripts share, sourced after tests/lib.sh and
# tests/e2e/common.sh: time, rates, and 'tbstream pipe' as the baseline.
# shellcheck shell=bash

now() { date +%s.%N; }
# mbps BYTES START END: MiB/s
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / 1048576 / (e - s) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# piped BYTES [STREAM]: BYTES of zeros through tbstream pipe from host2 to
# host1 (verified), MiB/s from the start to the receiver's end.
piped() {
	local start r name=${2:-bench}
	ts "$H1" pipe "$name" </dev/null >/dev/null &
	r=$!
	start=$(now)
	head -c "$1" /dev/zero | ts "$H2" pipe "$name" >/dev/null ||
		bail "sending pipe failed"
	wait $r || bail "receiving pipe failed"
	mbps "$1" "$start" "$(now)"
}
