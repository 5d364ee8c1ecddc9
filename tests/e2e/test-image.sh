#!/bin/bash
# tbstream image on two simulated hosts: an image with data, runs of zeros
# and holes goes across and back identical, in either order, compressed or
# not, file to file and (as root) through loop devices; an interrupted
# transfer resumes from the last confirmed block; a corrupted frame is
# repaired or reported, never written; devices in use or too small are
# refused.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
LOOPS=
MNTD=
image_cleanup() {
	local l
	[ -n "$MNTD" ] && umount "$MNTD" 2>/dev/null
	for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done
	sim_cleanup
}
trap image_cleanup EXIT

# mkimage FILE MIB: random data, explicit zeros, holes and text.
mkimage() {
	truncate -s "$2"M "$1"
	dd if=/dev/urandom of="$1" bs=64K count=8 conv=notrunc status=none
	dd if=/dev/zero of="$1" bs=64K seek=8 count=8 conv=notrunc status=none
	dd if=/dev/urandom of="$1" bs=4K seek=700 count=30 conv=notrunc \
		status=none
	seq 1 200000 | dd of="$1" bs=4K seek=1000 conv=notrunc status=none
	printf 'tail' | dd of="$1" bs=1 seek=$(($2 * 1048576 - 4)) \
		conv=notrunc status=none
}

# pair FIRST-ARGS -- SECOND-ARGS: "image ..." on host1 and host2, host1's
# command started first; sets R1, R2 and leaves output in $TMP/{1,2}.*
pair() {
	local a=() b=() p
	while [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	ts "$H1" image "${a[@]}" --json >"$TMP/1.json" 2>"$TMP/1.err" &
	p=$!
	sleep "${DELAY:-0.3}"
	ts "$H2" image "${b[@]}" --json >"$TMP/2.json" 2>"$TMP/2.err"
	R2=$?
	wait $p
	R1=$?
	sed 's/^/# host1: /' "$TMP/1.err"
	sed 's/^/# host2: /' "$TMP/2.err"
}

# jget FILE KEY: a field of a --json summary
jget() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$1" "$2" 2>/dev/null
}

down_all() {
	for h in "$H1" "$H2"; do
		"$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
	done
}

mkimage "$TMP/src.img" 8
SIZE=$(stat -c %s "$TMP/src.img")

# File to file, the receiver first.
pair recv "$TMP/a.img" -- send "$TMP/src.img"
check "file to file, receiver first: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/src.img" "$TMP/a.img" "the image is byte for byte the source"
is "the receiver's hash equals the sender's" "$(jget "$TMP/1.json" hash)" \
	"$(jget "$TMP/2.json" hash)"
check "only data crossed: zeros were described" \
	test "$(jget "$TMP/2.json" zero_bytes)" -gt $((SIZE / 2))
check "the image is sparse" \
	test $(($(stat -c %b "$TMP/a.img") * 512)) -lt $((SIZE / 2))
check "a sidecar describes it" grep -q '"size": '"$SIZE" "$TMP/a.img.tbsimage"
check "no journal is left" test ! -e "$TMP/a.img.tbsimage.part"
status 0 "image verify accepts it" t "$TBSTREAM" image verify "$TMP/a.img"

# And back, the sender first.
pair send "$TMP/a.img" -- recv "$TMP/back.img"
check "and back, sender first: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/src.img" "$TMP/back.img" "it comes back identical"

# Compressed.
pair recv "$TMP/z.img" -- send --compress "$TMP/src.img"
check "--compress: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/src.img" "$TMP/z.img" "--compress: identical"
check "--compress: fewer bytes on the stream than data" \
	test "$(jget "$TMP/2.json" wire_bytes)" -lt \
	"$(jget "$TMP/2.json" data_bytes)"

# An existing file is not overwritten by accident.
pair recv "$TMP/a.img" -- send "$TMP/src.img"
check "an existing image is refused" test $R1 -ne 0 -a $R2 -ne 0
check "the receiver says why" grep -q 'exists' "$TMP/1.err"
check "and the sender says what the receiver said" \
	grep -q 'receiver: .*exists' "$TMP/2.err"
down_all

# Nor an empty one: its mode may be what the user chose for the image.
install -m 600 /dev/null "$TMP/e.img"
ino=$(stat -c %i "$TMP/e.img")
pair recv "$TMP/e.img" -- send "$TMP/src.img"
check "an existing empty file is refused" test $R1 -ne 0 -a $R2 -ne 0
is "and left as it was" "$(stat -c '%i %a %s' "$TMP/e.img")" "$ino 600 0"
down_all
pair recv --force "$TMP/e.img" -- send "$TMP/src.img"
check "--force replaces it: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/src.img" "$TMP/e.img" "--force: the image is the source"
down_all

# Damage is found by verify.
cp --sparse=always "$TMP/a.img" "$TMP/bad.img"
cp "$TMP/a.img.tbsimage" "$TMP/bad.img.tbsimage"
# flip every bit of byte 5000 (writing a fixed byte changes nothing when the
# random data already had it there)
byte=$(od -An -tu1 -j5000 -N1 "$TMP/bad.img" | tr -d ' ')
printf "\\$(printf %o $((255 - byte)))" |
	dd of="$TMP/bad.img" bs=1 seek=5000 conv=notrunc status=none
status 1 "image verify finds one changed byte" \
	t "$TBSTREAM" image verify "$TMP/bad.img"
has_msg "and says the image is damaged" "damaged"

# Corrupted frames: repaired (exact image) or reported, never written.
for f in "corrupt host1 3" "corrupt host2 3"; do
	echo "$f" >"$CTL"
	rm -f "$TMP"/c.img*
	pair recv "$TMP/c.img" -- send "$TMP/src.img"
	if [ $R1 -eq 0 ] && [ $R2 -eq 0 ]; then
		same "$TMP/src.img" "$TMP/c.img" "$f: repaired, exact image"
	else
		check "$f: reported" test -s "$TMP/1.err" -o -s "$TMP/2.err"
	fi
	set -- $f
	check "the simulator applied '$f'" \
		grep -Eq "^host name=$2 .*corrupt_pending=0" "$CTL"
	down_all
done

# A receiver killed mid-transfer: the same commands again resume.
rm -f "$TMP"/k.img*
head -c $((6 * 1048576)) /dev/urandom >"$TMP/k.src"
echo "rate 2000000" >"$CTL"
"$TBSTREAM" --sysroot "$H1" image recv "$TMP/k.img" --sync-every 1 -q \
	2>/dev/null &
k=$!
sleep 0.3
ts "$H2" image send "$TMP/k.src" -q 2>"$TMP/2.err" &
s=$!
sleep 2
kill -9 $k
wait $k 2>/dev/null
wait $s
check "the sender fails when the receiver is killed" test $? -ne 0
echo "rate 0" >"$CTL"
down_all
sleep 1
pair recv "$TMP/k.img" --sync-every 1 -- send "$TMP/k.src"
check "after a killed receiver, the same commands: both exit 0" \
	test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/k.src" "$TMP/k.img" "the resumed image is exact"
check "it resumed where the killed receiver had confirmed" \
	test "$(jget "$TMP/2.json" start)" -gt 0
down_all

# Interruption: unplug mid-transfer, plug, the same commands again.
head -c $((6 * 1048576)) /dev/urandom >"$TMP/r.img"
truncate -s 8M "$TMP/r.img"
echo "rate 2000000" >"$CTL"
(sleep 2; echo unplug >"$CTL") &
pair recv "$TMP/res.img" --sync-every 1 -- send "$TMP/r.img"
wait
check "an unplug fails both sides" test $R1 -ne 0 -a $R2 -ne 0
check "a journal is kept" test -s "$TMP/res.img.tbsimage.part"
C1=$(jget "$TMP/1.json" confirmed)
check "the receiver had confirmed blocks ($C1)" test "${C1:-0}" -gt 0
echo plug >"$CTL"
echo "rate 0" >"$CTL"
sleep 1
down_all
pair recv "$TMP/res.img" --sync-every 1 -- send "$TMP/r.img"
check "the same commands again: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
same "$TMP/r.img" "$TMP/res.img" "the resumed image is exact"
S=$(jget "$TMP/2.json" start)
is "the transfer resumed at the confirmed block" "$S" "$C1"
check "confirmed blocks were not sent again" test \
	$(($(jget "$TMP/2.json" data_bytes) + \
	$(jget "$TMP/2.json" zero_bytes))) -eq $((8388608 - ${S:-0}))
check "no journal is left" test ! -e "$TMP/res.img.tbsimage.part"

# A resume whose blocks before the journal's offset differ from the source
# (changed after the interruption) starts again from 0.
rm -f "$TMP"/res.img*
echo "rate 2000000" >"$CTL"
(sleep 2; echo unplug >"$CTL") &
pair recv "$TMP/res.img" --sync-every 1 -- send "$TMP/r.img"
wait
echo plug >"$CTL"
echo "rate 0" >"$CTL"
# (the byte at offset 10 turned into another: random data may hold 'Y')
b=$(od -An -tu1 -j10 -N1 "$TMP/res.img" | tr -d ' ')
printf "\\$(printf %o $(((${b:-0} + 1) % 256)))" |
	dd of="$TMP/res.img" bs=1 seek=10 conv=notrunc status=none
sleep 1
down_all
pair recv "$TMP/res.img" --sync-every 1 -- send "$TMP/r.img"
check "changed blocks before the resume point: both exit 0" \
	test $R1 -eq 0 -a $R2 -eq 0
is "the transfer started again from 0" "$(jget "$TMP/2.json" start)" 0
same "$TMP/r.img" "$TMP/res.img" "and the image is exact"
down_all

# Block devices, as root with loop devices.  loop VAR FILE attaches FILE
# and sets VAR, in this shell, so that the clean-up knows every device.
loop() {
	local l
	l=$(losetup -f --show "$2") || return 1
	LOOPS="$LOOPS $l"
	printf -v "$1" %s "$l"
}
devices() {
	loop L1 "$TMP/src.img"
	truncate -s 8M "$TMP/blank.img"
	dd if=/dev/urandom of="$TMP/blank.img" bs=1M count=8 conv=notrunc \
		status=none
	loop L2 "$TMP/blank.img"
	pair send "$L1" -- recv "$TMP/dev.img"
	check "a loop device to a file: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
	same "$TMP/src.img" "$TMP/dev.img" "the device's image is exact"
	pair recv "$L2" -- send "$TMP/dev.img"
	check "restore onto a loop device: both exit 0" test $R1 -eq 0 -a $R2 -eq 0
	cmp -s "$TMP/src.img" "$L2"
	check "the device holds the image, zeros written over old data" \
		test $? -eq 0
	truncate -s 1M "$TMP/small.img"
	loop L3 "$TMP/small.img"
	pair recv "$L3" -- send "$TMP/src.img"
	check "a device smaller than the image is refused" test $R1 -ne 0 -a $R2 -ne 0
	check "and the message says it does not fit" grep -q 'does not fit' \
		"$TMP/1.err" "$TMP/2.err"
	down_all
	if command -v mkfs.ext4 >/dev/null && mkfs.ext4 -q -F "$L3" 2>/dev/null &&
		MNTD=$TMP/m && mkdir "$MNTD" && mount "$L3" "$MNTD" 2>/dev/null; then
		status 5 "sending a device mounted read-write is refused" \
			ts "$H1" image send "$L3" --timeout 3
		has_msg "and the message says where it is mounted" "mounted read-write"
		pair recv "$L3" -- send "$TMP/src.img"
		check "restoring onto a mounted device is refused" \
			test $R1 -ne 0 -a $R2 -ne 0
		check "and the message says it is mounted" grep -q 'is mounted on' \
			"$TMP/1.err"
		umount "$MNTD"
		MNTD=
	else
		skip "could not make and mount a file system on a loop device"
	fi
}
if [ "$(id -u)" -eq 0 ] && losetup -f >/dev/null 2>&1; then
	devices
	for l in $LOOPS; do t losetup -d "$l"; done
	LOOPS=
	check "no loop device is left attached to the test's images" test -z \
		"$(losetup -j "$TMP/src.img"; losetup -j "$TMP/blank.img"; losetup -j "$TMP/small.img")"
else
	skip "loop devices unavailable (needs root and /dev/loop*)"
fi

# Last, as the simulator keeps corrupting afterwards: a link that corrupts
# every copy.  The transfer fails with a message, and nothing corrupted
# reaches the image: every block there is the source's, or still a hole.
rm -f "$TMP"/c.img*
head -c $((6 * 1048576)) /dev/urandom >"$TMP/c.src"
echo "rate 2000000" >"$CTL"
(sleep 1.5; echo "corrupt host1 100000" >"$CTL") &
pair recv "$TMP/c.img" -- send "$TMP/c.src"
wait
check "corruption beyond repair fails both sides" test $R1 -ne 0 -a $R2 -ne 0
check "with a message" grep -Eiq 'corrupt|retr|repair' "$TMP/1.err" \
	"$TMP/2.err"
check "no sidecar claims the image complete" test ! -e "$TMP/c.img.tbsimage"
blocks_ok() {
	python3 - "$1" "$2" <<'PY'
import sys
a, b = open(sys.argv[1], 'rb'), open(sys.argv[2], 'rb')
z = bytes(4096)
while True:
    x, y = a.read(4096), b.read(4096)
    if not y:
        sys.exit(0)
    if y != x[:len(y)] and y != z[:len(y)]:
        sys.exit(1)
PY
}
check "every block written is the source's" blocks_ok "$TMP/c.src" \
	"$TMP/c.img"
check "and some were written before the link went bad" \
	test "$(jget "$TMP/1.json" data_bytes)" -gt 0

done_testing
