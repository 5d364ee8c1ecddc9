#!/bin/sh
# Throughput of one simulated stream, one direction, with 1 MiB dd blocks,
# against a baseline measured in the same run: the same dd pair through a
# pipe.  Also tbsim's peak memory after each size moved, which must stay
# bounded by the rings, not grow with the data.
#
#	bench/sim-throughput.sh [GiB (default 4)] [ring_size (default 256)]
#
# Needs root (FUSE).  Prints one line per measurement and a JSON summary.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TBSTREAM_BUILDDIR:-$top/build}
TBSIM=$build/sim/tbsim
gib=${1:-4}
ring=${2:-256}
count=$((gib * 1024))

work=$(mktemp -d /tmp/tbsim-bench.XXXXXX)
mnt=$work/mnt
mkdir "$mnt"
trap 'timeout 15 "$TBSIM" --stop "$mnt" >/dev/null 2>&1; rm -rf "$work"' EXIT
"$TBSIM" --watch-pid $$ --adv-delay 50 --node-delay 0 "$mnt"
pid=$(pgrep -f "tbsim --watch-pid $$ " | head -1)
c1=$mnt/host1/sys/kernel/config/thunderbolt/stream
c2=$mnt/host2/sys/kernel/config/thunderbolt/stream
mkdir "$c2/0-1.0" "$c2/0-1.0/b" "$c1/0-503.0"
echo "$ring" >"$c2/0-1.0/b/ring_size"
echo -1 >"$c2/0-1.0/b/in_hopid"
echo -1 >"$c2/0-1.0/b/out_hopid"
sleep 0.2
mkdir "$c1/0-503.0/b"
echo "$ring" >"$c1/0-503.0/b/ring_size"
d1=$mnt/host1/dev/tbstream$(cat "$c1/0-503.0/b/index")
d2=$mnt/host2/dev/tbstream$(cat "$c2/0-1.0/b/index")

rate() { # seconds bytes
	awk -v s="$1" -v b="$2" 'BEGIN { printf "%.2f", b / s / 1e9 }'
}
now() { date +%s.%N; }
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$pid/status"; }

# baseline: the same dd pair through a pipe
t0=$(now)
dd if=/dev/zero bs=1M count="$count" status=none |
	dd of=/dev/null bs=1M iflag=fullblock status=none
t1=$(now)
base=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

mem0=$(hwm)
timeout 300 dd if="$d2" of=/dev/null bs=1M status=none &
reader=$!
sleep 0.2
t0=$(now)
timeout 300 dd if=/dev/zero of="$d1" bs=1M count="$count" status=none
wait $reader
t1=$(now)
sim=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
mem1=$(hwm)

bytes=$((count * 1048576))
echo "pipe baseline (dd | dd, 1 MiB):   $(rate "$base" $bytes) GB/s"
echo "tbsim stream (dd > dev, 1 MiB):   $(rate "$sim" $bytes) GB/s" \
	"(ring_size $ring, $gib GiB)"
echo "ratio tbsim / pipe:               $(awk -v a="$base" -v b="$sim" 'BEGIN { printf "%.2f", a / b }')"
echo "tbsim peak RSS: ${mem0} KiB before, ${mem1} KiB after $gib GiB"
printf '{"bytes": %s, "ring_size": %s, "pipe_GBps": %s, "tbsim_GBps": %s, "tbsim_rss_kib_before": %s, "tbsim_rss_kib_after": %s}\n' \
	"$bytes" "$ring" "$(rate "$base" $bytes)" "$(rate "$sim" $bytes)" \
	"$mem0" "$mem1"
