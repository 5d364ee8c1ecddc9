#!/bin/bash
# Round trip of one small message (64 B, 4 KiB), the session against the
# raw device, in the same run on a simulator: two twin streams with the
# latency profile on one link, raw round trips on one and session round
# trips on the other, in alternating blocks.  Prints p50 and p99 and the
# ratios session / raw (the requirement: within 1.5).
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
dev() {
	echo "$MNT/$1/dev/tbstream$(cat "$MNT"/$1/sys/kernel/config/thunderbolt/stream/*/$2/index)"
}
for name in lat latses; do
	ts "$MNT/host1" up $name --profile latency >/dev/null &
	ts "$MNT/host2" up $name --profile latency >/dev/null
	wait
done
"$SIM_DIR/bench-latency" "$(dev host1 lat)" "$(dev host2 lat)" \
	"$(dev host1 latses)" "$(dev host2 latses)" "$count"
