#!/bin/bash
# tbstream send / recv against the tar pipeline over the raw device, in the
# same run and on the same simulated stream:
#
#	baseline:  tar c -C SRC . | dd of=/dev/tbstreamX bs=1M     (host1)
#	           dd if=/dev/tbstreamY bs=1M | tar x -C DST       (host2)
#	measured:  tbstream send SRC                               (host1)
#	           tbstream recv DST                               (host2)
#
# on one large file and on 20 000 small files.  Each pair runs three
# times, interleaved; the best time of each counts.  The tar pipeline is
# also timed with a sync of the receiving file system at its end, which
# makes its files as durable as recv's.  The result is a ratio of throughputs (goal:
# 0.95 on the large file, 0.90 on the small files), while send/recv also
# hash every file, confirm it, fsync it and rename it into place.
#
#	bench/bench-send.sh [LARGE_MiB (default 512)] [SMALL_FILES (20000)]
#
# Needs FUSE (root).  Prints one line per measurement and a JSON summary.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TBSTREAM_BUILDDIR:-$top/build}
TBSIM=$build/sim/tbsim
TBSTREAM=$build/src/tbstream
large_mib=${1:-512}
nsmall=${2:-20000}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/tbsend-bench.XXXXXX")
mnt=$work/mnt
mkdir "$mnt"
cleanup() {
	timeout 15 "$TBSIM" --stop "$mnt" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
timeout 20 "$TBSIM" --watch-pid $$ --lifetime 3600 --adv-delay 50 \
	--node-delay 0 "$mnt" || exit 1
H1=$mnt/host1 H2=$mnt/host2
now() { date +%s.%N; }
ts() { timeout 600 "$TBSTREAM" --sysroot "$@"; }

# The same stream for every run, up once on both hosts.
ts "$H2" up bench >/dev/null &
ts "$H1" up bench >/dev/null || exit 1
wait
dev() {
	"$TBSTREAM" --sysroot "$1" list --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
print([s["device"] for p in j["peers"] for s in p["streams"]
       if s["name"] == "bench"][0])'
}
D1=$(dev "$H1") D2=$(dev "$H2")
[ -e "$D1" ] || D1=$H1$D1
[ -e "$D2" ] || D2=$H2$D2

# tar_pair SRC DST: seconds for the tar pipeline over the raw device.
tar_pair() {
	local t0 t1 r
	rm -rf "$2" && mkdir "$2"
	timeout 600 sh -c 'dd if="$1" bs=1M status=none | tar x -C "$2"' \
		sh "$D2" "$2" &
	r=$!
	sleep 0.3
	t0=$(now)
	timeout 600 sh -c 'tar c -C "$1" . | dd of="$2" bs=1M status=none' \
		sh "$1" "$D1"
	wait $r
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

# sync_pair SRC DST: the same, and then sync on the receiving side, so
# that the received files are as durable as recv makes them.
sync_pair() {
	local t0 t1 r
	rm -rf "$2" && mkdir "$2"
	timeout 600 sh -c 'dd if="$1" bs=1M status=none | tar x -C "$2" &&
		sync -f "$2"' sh "$D2" "$2" &
	r=$!
	sleep 0.3
	t0=$(now)
	timeout 600 sh -c 'tar c -C "$1" . | dd of="$2" bs=1M status=none' \
		sh "$1" "$D1"
	wait $r
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

# send_pair SRC DST: seconds for tbstream send / recv.
send_pair() {
	local t0 t1 r s
	rm -rf "$2" && mkdir "$2"
	ts "$H2" recv -q -s bench "$2" &
	r=$!
	sleep 0.3
	t0=$(now)
	ts "$H1" send -q -s bench "$1"/*
	s=$?
	wait $r || s=1
	t1=$(now)
	[ $s -eq 0 ] || { echo "send/recv failed" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

best() { printf '%s\n' "$@" | sort -g | head -1; }
ratio() { awk -v t="$1" -v s="$2" 'BEGIN { printf "%.3f", t / s }'; }
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }

measure() { # NAME SRC BYTES
	local name=$1 src=$2 bytes=$3 t=() y=() s=() i
	for i in 1 2 3; do
		t+=("$(tar_pair "$src" "$work/dst-tar")")
		y+=("$(sync_pair "$src" "$work/dst-tar")")
		s+=("$(send_pair "$src" "$work/dst-send")")
	done
	t=$(best "${t[@]}") y=$(best "${y[@]}") s=$(best "${s[@]}")
	diff -r "$src" "$work/dst-send" >/dev/null ||
		{ echo "$name: received tree differs" >&2; exit 1; }
	echo "$name: tar pipeline $t s ($(mbs "$bytes" "$t") MB/s)," \
		"tar + sync $y s ($(mbs "$bytes" "$y") MB/s)," \
		"send/recv $s s ($(mbs "$bytes" "$s") MB/s)," \
		"ratio $(ratio "$t" "$s") (vs tar + sync $(ratio "$y" "$s"))" >&2
	eval "${name}_ratio=$(ratio "$t" "$s")"
	eval "${name}_sync_ratio=$(ratio "$y" "$s")"
}

mkdir -p "$work/large" "$work/small/tree"
head -c $((large_mib << 20)) /dev/urandom >"$work/large/file"
python3 - "$work/small/tree" "$nsmall" <<'PY'
import os, random, sys
top, n = sys.argv[1], int(sys.argv[2])
r = random.Random(1)
for i in range(n):
    d = os.path.join(top, "d%03d" % (i // 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(r.randint(1, 8192)))
PY
small_bytes=$(du -sb "$work/small/tree" | cut -f1)

measure large "$work/large" $((large_mib << 20))
measure small "$work/small" "$small_bytes"
printf '{"large_mib":%d,"small_files":%d,"large_ratio":%s,"small_ratio":%s,"large_ratio_vs_sync":%s,"small_ratio_vs_sync":%s,"goal_large":0.95,"goal_small":0.90}\n' \
	"$large_mib" "$nsmall" "$large_ratio" "$small_ratio" \
	"$large_sync_ratio" "$small_sync_ratio"
