#!/bin/bash
# tbstream send / recv against the tools a user would otherwise take, in
# the same run, on the same simulated stream and the same disk:
#
#	tar:    tar c -C SRC . | dd of=/dev/tbstreamX bs=1M    (host1)
#	        dd if=/dev/tbstreamY bs=1M | tar x -C DST      (host2)
#	sync:   the same, then sync -f DST (as durable as recv's files)
#	send:   tbstream send SRC                              (host1)
#	        tbstream recv DST                              (host2)
#
# 1. one large file, and 20 000 files of 4 KiB in 100 directories: the
#    ratio of tar's time to send/recv's (goals: large 0.95; small files
#    at least 0.7 of plain tar x, and never slower than tar x; sync);
# 2. the same small files sent again, unchanged, against rsync -a on the
#    same unchanged tree (goal: within 1.5 times rsync's time);
# 3. EMPTY empty files (default 1 000 000) in 1000 directories, and a
#    tenth of them: the peak memory of each side (goal: it does not grow
#    with the number of files).
#
# Each timed pair runs BENCH_RUNS times (default 3), interleaved; the best
# time counts, and the median is printed beside it.  Works in
# ${TMPDIR:-/var/tmp}, which must be on a disk, not in memory.
#
# The trees are received into a file system of their own: an ext4 image
# made for the run in the work directory (so on the same disk),
# loop-mounted with direct I/O.  Both sides then sync only what they
# wrote: on a shared machine, other programs' writes would otherwise fall
# into whichever sync came first, and a journal-less ext4 slows down the
# creation of files right after as many were removed (the inodes it just
# freed are skipped one by one).  BENCH_TARGET=tmpdir receives into the
# work directory instead, as it is.
#
#	bench/bench-send.sh [LARGE_MiB (512)] [SMALL_FILES (20000)] [EMPTY]
#
# Needs FUSE (root) and rsync.  Prints one line per measurement and a JSON
# summary.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${TBSTREAM_BUILDDIR:-$top/build}
TBSIM=$build/sim/tbsim
TBSTREAM=$build/src/tbstream
large_mib=${1:-512}
nsmall=${2:-20000}
nempty=${3:-1000000}
runs=${BENCH_RUNS:-3}
target=${BENCH_TARGET:-image}
command -v rsync >/dev/null || { echo "bench-send: needs rsync" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/tbsend-bench.XXXXXX")
mnt=$work/mnt
mkdir "$mnt"
loopdev=
cleanup() {
	timeout 15 "$TBSIM" --stop "$mnt" >/dev/null 2>&1
	if [ -n "$loopdev" ]; then
		timeout 60 umount "$work/target" 2>/dev/null ||
			timeout 60 umount -l "$work/target"
		timeout 30 losetup -d "$loopdev"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# where the trees are received (see above)
dst=$work
if [ "$target" = image ]; then
	mkdir "$work/target"
	if truncate -s $(((large_mib + 4096) << 20)) "$work/target.img" &&
		timeout 120 mkfs.ext4 -q -F "$work/target.img" &&
		loopdev=$(timeout 30 losetup --direct-io=on -f --show \
			"$work/target.img") &&
		timeout 30 mount "$loopdev" "$work/target"; then
		dst=$work/target
	else
		echo "bench-send: no ext4 image could be mounted; receiving" \
			"into $work as it is" >&2
		target=tmpdir
	fi
fi
timeout 20 "$TBSIM" --watch-pid $$ --lifetime 7200 --adv-delay 50 \
	--node-delay 0 "$mnt" || exit 1
export TBSTREAM_RUNDIR=$work/run
H1=$mnt/host1 H2=$mnt/host2
now() { date +%s.%N; }
ts() { timeout 3600 "$TBSTREAM" --sysroot "$@"; }

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

since() { awk -v a="$1" -v b="$(now)" 'BEGIN { print b - a }'; }

# tar_pair SRC DST [sync]: seconds for the tar pipeline over the raw
# device, with a sync of the receiving file system at its end if asked.
tar_pair() {
	local t0 r
	rm -rf "$2" && mkdir "$2" && sync -f "$work" "$2"
	timeout 600 sh -c 'dd if="$1" bs=1M status=none | tar x -C "$2" &&
		if [ "$3" = sync ]; then sync -f "$2"; fi' \
		sh "$D2" "$2" "${3:-}" &
	r=$!
	sleep 0.3
	t0=$(now)
	timeout 600 sh -c 'tar c -C "$1" . | dd of="$2" bs=1M status=none' \
		sh "$1" "$D1"
	wait $r
	since "$t0"
}

# send_pair SRC DST [fresh]: seconds for tbstream send / recv (into an
# empty DST when asked, else into what is there).
send_pair() {
	local t0 r s
	if [ "${3:-}" = fresh ]; then
		rm -rf "$2" && mkdir "$2" && sync -f "$work" "$2"
	fi
	ts "$H2" recv -q -s bench "$2" &
	r=$!
	sleep 0.3
	t0=$(now)
	ts "$H1" send -q -s bench "$1"/*
	s=$?
	wait $r || s=1
	[ $s -eq 0 ] || { echo "send/recv failed" >&2; exit 1; }
	since "$t0"
}

rsync_again() { # SRC DST: seconds for rsync -a on a tree already there
	local t0
	t0=$(now)
	rsync -a "$1"/ "$2"/ || { echo "rsync failed" >&2; exit 1; }
	since "$t0"
}

best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v t="$1" -v s="$2" 'BEGIN { printf "%.3f", t / s }'; }
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }

measure() { # NAME SRC BYTES
	local name=$1 src=$2 bytes=$3 t=() y=() s=() i tm ym sm
	for ((i = 0; i < runs; i++)); do
		t+=("$(tar_pair "$src" "$dst/dst-tar")")
		y+=("$(tar_pair "$src" "$dst/dst-tar" sync)")
		s+=("$(send_pair "$src" "$dst/dst-send" fresh)")
	done
	tm=$(median "${t[@]}") ym=$(median "${y[@]}") sm=$(median "${s[@]}")
	t=$(best "${t[@]}") y=$(best "${y[@]}") s=$(best "${s[@]}")
	python3 "$top/tests/e2e/tree-compare.py" "$src" "$dst/dst-send" \
		>/dev/null || { echo "$name: received tree differs" >&2; exit 1; }
	echo "$name: tar pipeline $t s ($(mbs "$bytes" "$t") MB/s)," \
		"tar + sync $y s ($(mbs "$bytes" "$y") MB/s)," \
		"send/recv $s s ($(mbs "$bytes" "$s") MB/s)," \
		"ratio $(ratio "$t" "$s") (vs tar + sync $(ratio "$y" "$s"));" \
		"medians $tm, $ym, $sm s: ratio $(ratio "$tm" "$sm")" \
		"(vs tar + sync $(ratio "$ym" "$sm"))" >&2
	eval "${name}_ratio=$(ratio "$t" "$s")"
	eval "${name}_sync_ratio=$(ratio "$y" "$s")"
}

# The unchanged tree again: send/recv against rsync -a, both on a copy
# that is there already.
resync() { # SRC
	local src=$1 r=() s=() i
	rm -rf "$dst/dst-rsync"
	rsync -a "$src"/ "$dst/dst-rsync"/
	for ((i = 0; i < runs; i++)); do
		r+=("$(rsync_again "$src" "$dst/dst-rsync")")
		s+=("$(send_pair "$src" "$dst/dst-send")")
	done
	r=$(best "${r[@]}") s=$(best "${s[@]}")
	echo "resync: rsync -a $r s, send/recv $s s," \
		"send/recv takes $(ratio "$s" "$r") times rsync's time" >&2
	resync_ratio=$(ratio "$s" "$r")
}

# peak KiB of memory of a command, on stderr's last line
peak() {
	python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(
	resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r)' "$@"
}

# empty N: N empty files in 1000 directories; sets E_SECS, E_SEND, E_RECV
empty() {
	local n=$1 src=$work/empty/$1 r t0 s
	python3 - "$src/tree" "$n" <<'PY'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 1000)
for i in range(n):
    d = os.path.join(top, "d%04d" % (i // per))
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "e%07d" % i), "wb").close()
PY
	rm -rf "$work/dst-empty" && mkdir "$work/dst-empty"
	sync -f "$work"
	peak "$work/recv.kib" timeout 3600 "$TBSTREAM" --sysroot "$H2" recv \
		-q -s bench "$work/dst-empty" &
	r=$!
	sleep 0.3
	t0=$(now)
	peak "$work/send.kib" timeout 3600 "$TBSTREAM" --sysroot "$H1" send \
		-q -s bench "$src/tree"
	s=$?
	wait $r || s=1
	[ $s -eq 0 ] || { echo "empty files: send/recv failed" >&2; exit 1; }
	E_SECS=$(since "$t0")
	E_SEND=$(cat "$work/send.kib") E_RECV=$(cat "$work/recv.kib")
	rm -rf "$src" "$work/dst-empty"
}

mkdir -p "$work/large" "$work/small/tree"
head -c $((large_mib << 20)) /dev/urandom >"$work/large/file"
python3 - "$work/small/tree" "$nsmall" <<'PY'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
for i in range(n):
    d = os.path.join(top, "d%03d" % (i // per))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
small_bytes=$((nsmall * 4096))

measure large "$work/large" $((large_mib << 20))
measure small "$work/small" "$small_bytes"
resync "$work/small"
rm -rf "$work/large" "$work/small" "$dst"/dst-*

empty $((nempty / 10))
small_n=$((nempty / 10)) small_send=$E_SEND small_recv=$E_RECV
empty "$nempty"
growth=$(awk -v a="$small_send" -v b="$small_recv" -v c="$E_SEND" \
	-v d="$E_RECV" 'BEGIN { x = c / a; y = d / b; printf "%.2f", (x > y ? x : y) }')
echo "empty files: $nempty in $E_SECS s; peak memory send $((E_SEND / 1024))" \
	"MiB, recv $((E_RECV / 1024)) MiB (with $small_n files:" \
	"$((small_send / 1024)) MiB, $((small_recv / 1024)) MiB): grows" \
	"$growth times for 10 times the files" >&2

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end;" \
	"received into: $target" >&2
printf '{"target":"%s","runs":%d,"large_mib":%d,"small_files":%d,"large_ratio":%s,"small_ratio":%s,"large_ratio_vs_sync":%s,"small_ratio_vs_sync":%s,"resync_vs_rsync":%s,"empty_files":%d,"empty_seconds":%s,"empty_send_kib":%d,"empty_recv_kib":%d,"empty_memory_growth_10x":%s,"goal_large":0.95,"goal_small":0.7,"goal_small_vs_sync":1.0,"goal_resync_vs_rsync":1.5}\n' \
	"$target" "$runs" "$large_mib" "$nsmall" "$large_ratio" "$small_ratio" \
	"$large_sync_ratio" "$small_sync_ratio" "$resync_ratio" "$nempty" \
	"$E_SECS" "$E_SEND" "$E_RECV" "$growth"
