#!/bin/bash
# The camera use case measured: frames of a camera's size and rate over
# one simulated stream, through tbstreamsink/tbstreamsrc and, in the same
# run over the same stream, through filesink/filesrc on the raw device
# (the way it is done by hand).  The link rate is set like a real cable
# (1.25 GB/s, 8 us one way).  Prints frames sent, received and dropped,
# and the latency each frame adds (arrival minus send time; one clock, as
# both hosts run on this machine): p50 and p99, and their ratio to the
# raw device's.
#   1080p30 MJPEG for SECONDS (default 60): no frame may be dropped.
#   4K raw video (3840x2160 RGB, ~750 MB/s) at 30 fps for 10 s.
# Usage: bench/bench-cam.sh [SECONDS]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${TBSTREAM_BUILDDIR:-$top/build}
secs=${1:-60}
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
cc -O2 -Wall -Wextra -Werror -o "$SIM_DIR/bench-cam" \
	"$top/bench/bench-cam.c" \
	$(pkg-config --cflags --libs gstreamer-app-1.0 gstreamer-1.0)
export GST_PLUGIN_PATH_1_0=$builddir/gst
export GST_REGISTRY_1_0=$SIM_DIR/registry.bin
export TBSTREAM_RUNDIR=$SIM_DIR/run
"$builddir/sim/tbsim" --watch-pid $$ --adv-delay 100 "$MNT"
echo "rate 1250000000" >"$MNT/control"
echo "latency 8" >"$MNT/control"
ts() { "$builddir/src/tbstream" --sysroot "$@"; }
ts "$MNT/host1" up cam >/dev/null &
ts "$MNT/host2" up cam >/dev/null
wait
cfg=sys/kernel/config/thunderbolt/stream
d1=$MNT/host1/dev/tbstream$(cat "$MNT"/host1/$cfg/*/cam/index)
d2=$MNT/host2/dev/tbstream$(cat "$MNT"/host2/$cfg/*/cam/index)
B=$SIM_DIR/bench-cam

# run MODE FORMAT SECONDS: the receiver first (frames sent into a closed
# device are lost), then the sender.
run() {
	local mode=$1 fmt=$2 s=$3 w1 w2 rpid
	if [ "$mode" = raw ]; then w1=$d1 w2=$d2; else w1=$MNT/host1 w2=$MNT/host2; fi
	"$B" recv "$mode" "$w2" "$SIM_DIR/$mode-$fmt.lat" \
		>"$SIM_DIR/$mode-$fmt.recv" &
	rpid=$!
	sleep 1
	"$B" send "$mode" "$w1" "$fmt" "$s" >"$SIM_DIR/$mode-$fmt.send"
	wait $rpid
}

# report FORMAT: one line per way, then the ratios.
report() {
	python3 - "$SIM_DIR" "$1" <<'PY'
import sys
d, fmt = sys.argv[1], sys.argv[2]
res = {}
for mode in ('raw', 'tbs'):
    lat = sorted(int(l.split()[1]) for l in open('%s/%s-%s.lat' % (d, mode, fmt)))
    sent = open('%s/%s-%s.send' % (d, mode, fmt)).read().split()
    got = len(lat)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 if lat else float('nan')
    res[mode] = (p(0.5), p(0.99))
    print('  %-28s sent %s, received %d, dropped %s; added latency p50 %.2f ms, p99 %.2f ms; %s bytes a frame'
          % ('filesink/filesrc (raw device)' if mode == 'raw' else 'tbstreamsink/tbstreamsrc',
             sent[1], got, sent[3], res[mode][0], res[mode][1], sent[5]))
print('  ratio tbstream / raw device: p50 %.2f, p99 %.2f'
      % (res['tbs'][0] / res['raw'][0], res['tbs'][1] / res['raw'][1]))
PY
}

echo "1080p30 MJPEG, $secs s, link 1.25 GB/s:"
run raw mjpeg1080 "$secs"
run tbs mjpeg1080 "$secs"
report mjpeg1080
echo "4K raw RGB (~750 MB/s), 10 s, link 1.25 GB/s:"
run raw raw4k 10
run tbs raw4k 10
report raw4k
