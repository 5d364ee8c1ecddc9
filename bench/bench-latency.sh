#!/bin/bash
# Round trip of one small message (64 B, 4 KiB), the session against the
# raw device, in the same run over the same stream of a simulator: prints
# p50 and p99 and the ratio session / raw (the requirement: within 1.5).
# Usage: bench/bench-latency.sh [COUNT]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${TBSTREAM_BUILDDIR:-$top/build}
count=${1:-3000}
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" "$top" >/dev/null
ninja -C "$builddir" >/dev/null
SIM_DIR=$(mktemp -d)
MNT=$SIM_DIR/mnt
mkdir "$MNT"
cleanup() {
	"$builddir/sim/tbsim" --stop "$MNT" >/dev/null 2>&1 || true
	rm -rf "$SIM_DIR"
}
trap cleanup EXIT INT TERM
cc -O2 -Wall -Wextra -Werror -pthread -I"$top/include" \
	-o "$SIM_DIR/bench-latency" "$top/bench/bench-latency.c" \
	-L"$builddir/lib" -Wl,-rpath,"$builddir/lib" -ltbstream
"$builddir/sim/tbsim" --watch-pid $$ --adv-delay 100 "$MNT"
ts() { "$builddir/src/tbstream" --sysroot "$@"; }
ts "$MNT/host1" up lat --profile latency >/dev/null &
ts "$MNT/host2" up lat --profile latency >/dev/null
wait
d1=$MNT/host1/dev/tbstream$(cat "$MNT"/host1/sys/kernel/config/thunderbolt/stream/*/lat/index)
d2=$MNT/host2/dev/tbstream$(cat "$MNT"/host2/sys/kernel/config/thunderbolt/stream/*/lat/index)
"$SIM_DIR/bench-latency" "$d1" "$d2" "$count"
