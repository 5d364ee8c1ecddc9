#!/bin/bash
# tbstream disk share / attach with the NBD clients users have (nbdinfo,
# nbdcopy, nbdsh from libnbd, qemu-img) against a 256 MiB image shared by
# nbdkit on the other simulated host: reads and writes with equal hashes,
# a random-access write pattern checked against the file, a read-only
# share, a device mounted read-write refused, corruption repaired and a
# killed sharing side, and --nbd where the kernel has no nbd module.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/forward-lib.sh"

need nbdkit nbdinfo nbdcopy nbdsh qemu-img
fwd_start
MIB=256
SOCK=$TMP/nbd.sock
U="nbd+unix:///?socket=$SOCK"
head -c $((MIB << 20)) /dev/urandom >"$TMP/disk.img"
head -c $((MIB << 20)) /dev/urandom >"$TMP/new.img"
sum() { sha256sum "$1" | cut -d' ' -f1; }
# nbdsh runs the python3 of the PATH: Debian's has the nbd module.
NBDSH="env PATH=/usr/bin:/bin:$PATH nbdsh"
# written_right COPY: every 64 KiB block of COPY (written in any order by
# a copy that failed) is either not written (zeros) or right.
written_right() {
	python3 - "$TMP/disk.img" "$1" <<-'EOF'
		import sys
		a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
		zero = bytes(65536)
		while True:
		    x, y = a.read(65536), b.read(65536)
		    if not y:
		        break
		    if y != x[:len(y)] and y != zero[:len(y)]:
		        sys.exit(1)
	EOF
}

# --- usage --------------------------------------------------------------------
status 3 "share of a missing file: exit 3" \
	ts "$H2" disk share "$TMP/none.img"
status 2 "share of a directory: exit 2" ts "$H2" disk share "$TMP"
status 2 "attach with an argument: exit 2" ts "$H1" disk attach x
status 2 "--read-only is for share" ts "$H1" disk attach --read-only

# --- a writable share ---------------------------------------------------------
start_share() {
	bg "$TBSTREAM" --sysroot "$H2" disk share -v "$@" >"$TMP/s.log" 2>&1
	S=$!
}
start_share "$TMP/disk.img"
bg "$TBSTREAM" --sysroot "$H1" disk attach --socket "$SOCK" -v \
	>"$TMP/a.log" 2>&1
A=$!
check "the link comes up" link_up "$TMP/a.log"
is "attach prints the export's URI" "$(head -1 "$TMP/a.log")" "$U"
is "nbdinfo: the size of the image" "$(t nbdinfo --size "$U")" \
	$((MIB << 20))
check "nbdinfo: writable" sh -c "nbdinfo --json '$U' |
	python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)[\"exports\"][0][\"is_read_only\"])'"
t nbdcopy "$U" "$TMP/read.img"
is "nbdcopy from the export: same hash" "$(sum "$TMP/read.img")" \
	"$(sum "$TMP/disk.img")"
t nbdcopy "$TMP/new.img" "$U"
is "nbdcopy to the export: the shared file has its hash" \
	"$(sum "$TMP/disk.img")" "$(sum "$TMP/new.img")"
t qemu-img convert -f raw -O raw "$U" "$TMP/q.img"
is "qemu-img convert from the export: same hash" "$(sum "$TMP/q.img")" \
	"$(sum "$TMP/new.img")"
head -c $((MIB << 20)) /dev/urandom >"$TMP/q2.img"
t qemu-img convert -n -f raw -O raw "$TMP/q2.img" "$U"
is "qemu-img convert to the export: the shared file has its hash" \
	"$(sum "$TMP/disk.img")" "$(sum "$TMP/q2.img")"

# Random-access writes and reads from nbdsh, mirrored into a copy.
cp "$TMP/disk.img" "$TMP/expect.img"
EXPECT=$TMP/expect.img t $NBDSH -u "$U" -c '
import os, random
rnd = random.Random(20261201)
f = os.open(os.environ["EXPECT"], os.O_RDWR)
size = h.get_size()
for i in range(400):
    n = rnd.randint(1, 200000)
    off = rnd.randrange(0, size - n)
    buf = rnd.randbytes(n)
    h.pwrite(buf, off)
    os.pwrite(f, buf, off)
    if i % 7 == 0:
        off = rnd.randrange(0, size - 65536)
        assert h.pread(65536, off) == os.pread(f, 65536, off), off
h.flush()
os.close(f)
' 2>"$TMP/nbdsh.err"
st=$?
check "nbdsh: 400 writes at random offsets, reads between them agree" \
	test $st -eq 0
sed 's/^/# /' "$TMP/nbdsh.err" | tail -5
check "the shared file holds exactly the writes of nbdsh" \
	test $st -eq 0 -a "$(sum "$TMP/expect.img")" = "$(sum "$TMP/disk.img")"
check "and they changed it" \
	test "$(sum "$TMP/q2.img")" != "$(sum "$TMP/disk.img")"

# --- faults: corruption is repaired; a killed sharing side comes back ---------
echo "corrupt host1 4" >"$CTL"
echo "corrupt host2 4" >"$CTL"
t nbdcopy "$U" "$TMP/read2.img" 2>&1 | sed 's/^/# /'
is "nbdcopy through corrupted frames: same hash" \
	"$(sum "$TMP/read2.img")" "$(sum "$TMP/disk.img")"
check "frames were corrupted" test "$(sim_stat host1 disk corrupted)" -gt 0
rm -f "$TMP/read2.img"
echo "rate 60000000" >"$CTL"
nbdcopy "$U" "$TMP/read3.img" 2>/dev/null &
cp_pid=$!
sleep 1
kill_bg "$S"
wait $cp_pid
st=$?
n=$(stat -c %s "$TMP/read3.img" 2>/dev/null || echo 0)
diag "nbdcopy exit $st after the sharing side was killed, $n bytes"
check "sharing side killed during nbdcopy: no block it wrote is wrong" \
	written_right "$TMP/read3.img"
echo "rate 0" >"$CTL"
start_share "$TMP/disk.img"
link_up "$TMP/a.log" 2
is "and the export works again once the share is back" \
	"$(t nbdinfo --size "$U")" $((MIB << 20))
stop_bg "$S"
is "SIGTERM: share exits 0" "$ST" 0
stop_bg "$A"
is "SIGTERM: attach exits 0" "$ST" 0
check "the socket is removed" test ! -e "$SOCK"

# --- read-only ----------------------------------------------------------------
start_share --read-only "$TMP/disk.img"
bg "$TBSTREAM" --sysroot "$H1" disk attach --socket "$SOCK" >"$TMP/a.log" \
	2>&1
A=$!
link_up "$TMP/a.log"
before=$(sum "$TMP/disk.img")
check "nbdinfo: read-only" sh -c "nbdinfo --json '$U' |
	python3 -c 'import json, sys; sys.exit(not json.load(sys.stdin)[\"exports\"][0][\"is_read_only\"])'"
t $NBDSH -u "$U" -c 'h.pwrite(b"x" * 4096, 0)' 2>"$TMP/ro.err"
st=$?
sed 's/^/# /' "$TMP/ro.err" | tail -2
check "a write to a read-only share fails, as read-only" \
	sh -c "[ $st -ne 0 ] && grep -Eqi 'read-only|EPERM|not permitted' '$TMP/ro.err'"
t nbdcopy "$U" "$TMP/read4.img"
is "and reads work" "$(sum "$TMP/read4.img")" "$before"
is "the file is unchanged" "$(sum "$TMP/disk.img")" "$before"
stop_bg "$S"
stop_bg "$A"
rm -f "$TMP"/read*.img "$TMP"/q*.img "$TMP/new.img" "$TMP/expect.img"

# --- a device mounted read-write is refused unless --read-only -------------------
if [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null &&
	truncate -s 32M "$TMP/fs.img" && L=$(losetup -f --show "$TMP/fs.img"); then
	LOOPS=$L
	mkfs.ext4 -q -F "$L" && MNTD=$TMP/m && mkdir "$MNTD" && mount "$L" "$MNTD"
	echo data >"$MNTD/file"
	status 5 "share of a device mounted read-write: exit 5" \
		ts "$H2" disk share "$L"
	has_msg "and the message says it is mounted, and what to do" \
		"mounted or in use here.*--read-only"
	start_share --read-only "$L"
	bg "$TBSTREAM" --sysroot "$H1" disk attach --socket "$SOCK" \
		>"$TMP/a.log" 2>&1
	A=$!
	link_up "$TMP/a.log"
	is "with --read-only it is shared: nbdinfo sees its size" \
		"$(t nbdinfo --size "$U")" $((32 << 20))
	stop_bg "$S"
	stop_bg "$A"
	umount "$MNTD"
	MNTD=
	start_share "$L"
	check "unmounted, it is shared writable, held exclusively" \
		wait_for 20 grep -q "sharing '$L'" "$TMP/s.log"
	check "so it cannot be mounted here meanwhile" \
		sh -c "! mount '$L' '$TMP/m' 2>/dev/null"
	stop_bg "$S"
else
	skip "loop devices or mkfs.ext4 unavailable (needs root)"
fi

# --- --nbd: the kernel's block device ----------------------------------------------
if [ ! -e /dev/nbd0 ] && [ ! -e /sys/module/nbd ] &&
	! modprobe -n nbd 2>/dev/null; then
	status 3 "--nbd without the kernel's nbd module: exit 3" \
		ts "$H1" disk attach --socket "$SOCK" --nbd /dev/nbd0
	has_msg "and the message says how to get it" \
		"nbd module.*modprobe nbd"
elif [ "$(id -u)" -eq 0 ] && command -v nbd-client >/dev/null; then
	start_share "$TMP/disk.img"
	bg "$TBSTREAM" --sysroot "$H1" disk attach --socket "$SOCK" \
		--nbd /dev/nbd0 >"$TMP/a.log" 2>&1
	A=$!
	check "--nbd: /dev/nbd0 is connected" \
		wait_for 30 test -e /sys/block/nbd0/pid
	t dd if=/dev/nbd0 of="$TMP/dev.img" bs=1M status=none
	is "--nbd: the block device reads as the image" \
		"$(sum "$TMP/dev.img")" "$(sum "$TMP/disk.img")"
	stop_bg "$A"
	stop_bg "$S"
	check "--nbd: disconnected at the end" test ! -e /sys/block/nbd0/pid
else
	skip "--nbd needs root and nbd-client"
fi

# --- nbd-client starts with no signal blocked or ignored ------------------------
# A stand-in nbd-client on the PATH notes its signal state ($1: -unix to
# connect, -d to disconnect); a block device nobody connected stands for
# the nbd one.  It reads its own state after exec: a shell that forks a
# reader blocks every signal around the fork, which the reader could see.
if [ "$(id -u)" -eq 0 ] && [ -b /dev/loop0 ] && [ ! -e /sys/block/loop0/pid ]
then
	mkdir "$TMP/fake"
	cat >"$TMP/fake/nbd-client" <<-EOF
		#!/bin/sh
		exec grep '^Sig' /proc/self/status >"$TMP/nbdc\$1"
	EOF
	chmod +x "$TMP/fake/nbd-client"
	start_share "$TMP/disk.img"
	bg env PATH="$TMP/fake:$PATH" "$TBSTREAM" --sysroot "$H1" disk attach \
		--socket "$TMP/fake.sock" --nbd /dev/loop0 >"$TMP/f.log" 2>&1
	A=$!
	check "nbd-client is started once the link is up" \
		wait_for 30 test -s "$TMP/nbdc-unix"
	stop_bg "$A"
	stop_bg "$S"
	for f in -unix -d; do
		blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "$TMP/nbdc$f")
		ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' "$TMP/nbdc$f")
		check "nbd-client $f: no signal blocked ($blk)" \
			test "$((0x${blk:-ffff}))" -eq 0
		# SIGHUP 1, SIGINT 2, SIGPIPE 13, SIGTERM 15, SIGCHLD 17
		check "nbd-client $f: HUP, INT, PIPE, TERM, CHLD not ignored ($ign)" \
			test $((0x${ign:-ffff} & 0x15003)) -eq 0
	done
else
	skip "a stand-in nbd-client needs root and a free /dev/loop0"
fi
done_testing
