# Sourced by the benchmark scripts that run on the simulator: the
# binaries of build/ (TBSIM and TBSTREAM may name others), the test
# fixtures (sim_start, ts, wait_open, attr, ...), a clock, rates and
# 'tbstream pipe' as a baseline.
# shellcheck shell=bash
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TBSIM=${TBSIM:-$top/build/sim/tbsim}
TBSTREAM=${TBSTREAM:-$top/build/src/tbstream}
T=${T:-300}
TOP_SRCDIR=$top
. "$top/tests/lib.sh"
. "$top/tests/e2e/common.sh"

now() { date +%s.%N; }
# mbps BYTES START END: MiB/s
mbps() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / 1048576 / (e - s) }'; }
# mbs BYTES START END: MB/s (10^6 bytes a second)
mbs() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / 1e6 / (e - s) }'; }
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
