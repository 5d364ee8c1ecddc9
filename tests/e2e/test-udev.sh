#!/bin/bash
# The udev rules (contrib/udev/60-tbstream.rules) and tbstream-udev-name.
#
# The helper runs against simulated hosts and against a fake root whose
# peer announces a hostile name.  Then udevadm, Debian's own, processes
# the rules for a stream device and for a peer's stream service: in a
# private mount namespace whose /sys holds the device's sysfs directory
# and, bind-mounted, the simulator's ConfigFS and Thunderbolt bus; whose
# /dev, /run and udev directories are fresh tmpfs; and whose /etc/group
# has the group "tbstream".  udevadm runs the helper as udev would, sets
# the node's owner and mode and makes the links there, where the test
# checks them; nothing outside the namespace is touched.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

RULES=$TOP_SRCDIR/contrib/udev/60-tbstream.rules

sim_start --adv-delay 200 --node-delay 50

# name HOST tbstreamX: the helper's output, as udev would import it.
name() {
	local host=$1
	shift
	t "$UDEV_NAME" --sysroot "$host" "$@"
}

ts "$H1" up backup --timeout 20 >"$TMP/d1" 2>&1 &
ts "$H2" up backup --timeout 20 >"$TMP/d2" 2>&1
wait
up_pair "$H1" "$H2" cam --timeout 20
uid1=$(uid_of "$H1") uid2=$(uid_of "$H2")
x1=$(attr "$H1" backup index) x2=$(attr "$H2" backup index)
c1=$(attr "$H1" cam index)

name "$H1" "tbstream$x1" >"$TMP/n1"
is "host1: the stream's properties" "$(cat "$TMP/n1")" \
"TBSTREAM_NAME=backup
TBSTREAM_SERVICE=0-503.0
TBSTREAM_PEER=host2
TBSTREAM_PEER_UID=$uid2"
is "host2: the same stream, named from its side" \
	"$(name "$H2" "/dev/tbstream$x2" | sed -n '1p;3p;4p')" \
"TBSTREAM_NAME=backup
TBSTREAM_PEER=host1
TBSTREAM_PEER_UID=$uid1"
is "another device, another stream" \
	"$(name "$H1" "tbstream$c1" | head -1)" "TBSTREAM_NAME=cam"
name "$H1" tbstream77 >"$TMP/none"
is "no stream with that index: exit 1" "$?" 1
check "and no property" test ! -s "$TMP/none"
for bad in "" tbstream tbstreamx tbstream1x video0 "tbstream-1"; do
	name "$H1" "$bad" >/dev/null 2>&1
	is "bad device name '$bad': exit 2" "$?" 2
done
echo unplug >"$CTL"
wait_for 10 test ! -e "$H1/sys/bus/thunderbolt/devices/0-503"
is "unplugged: name and service, no peer" \
	"$(name "$H1" "tbstream$x1")" \
"TBSTREAM_NAME=backup
TBSTREAM_SERVICE=0-503.0"
echo plug >"$CTL"
wait_for 10 test -e "$H1/sys/bus/thunderbolt/devices/0-503.0"

# A fake root: a peer announcing a hostile name, a stream named by hand.
F=$TMP/fake
dev=$F/sys/bus/thunderbolt/devices
mkdir -p "$dev/0-0" "$dev/0-1" "$dev/0-1.0" \
	"$F/sys/kernel/config/thunderbolt/stream/0-1.0/a b"
echo 11111111-2222-3333-4444-555555555555 >"$dev/0-0/unique_id"
echo "aaaa/../x" >"$dev/0-1/unique_id"
printf '../e vil\033[31m\n' >"$dev/0-1/device_name"
echo stream >"$dev/0-1.0/key"
s=$F/sys/kernel/config/thunderbolt/stream/0-1.0/a\ b
echo 4 >"$s/index"
for a in in_hopid out_hopid; do echo 9 >"$s/$a"; done
echo 256 >"$s/ring_size"
echo 8192 >"$s/throttling"
name "$F" tbstream4 >"$TMP/hostile"
is "hostile names: every unsafe byte escaped" "$(cat "$TMP/hostile")" \
'TBSTREAM_NAME=a\x20b
TBSTREAM_SERVICE=0-1.0
TBSTREAM_PEER=\x2e.\x2fe\x20vil\x1b\x5b31m
TBSTREAM_PEER_UID=aaaa\x2f..\x2fx'
check "no value holds a '/' or starts with '.'" \
	sh -c "! cut -d= -f2- '$TMP/hostile' | grep -q '^\\.\\|/'"

# --- udevadm, in a private mount namespace -----------------------------------

if ! command -v udevadm >/dev/null || ! unshare -m true 2>/dev/null; then
	skip "udevadm or mount namespaces missing"
	done_testing
	exit
fi

# ns_udev SYSPATH: the namespace described above; udevadm test on the
# device SYSPATH of the fake /sys; leaves the namespace's /dev listing in
# $TMP/dev.ls and udevadm's output in $TMP/udev.out.
cat >"$TMP/ns.sh" <<'EOF'
set -e
H=$1 SYSPATH=$2 OUT=$3 HELPER=$4 RULES=$5 X=$6
mount -t tmpfs tmpfs /sys
mkdir -p /sys/devices/virtual/tbstream/tbstream$X /sys/class/tbstream \
	/sys/kernel/config /sys/bus/thunderbolt \
	/sys/devices/domain0/0-0/0-503/0-503.0
d=/sys/devices/virtual/tbstream/tbstream$X
printf 'MAJOR=240\nMINOR=%s\nDEVNAME=tbstream%s\n' $X $X >$d/uevent
echo 240:$X >$d/dev
ln -s ../../../../class/tbstream $d/subsystem
s=/sys/devices/domain0/0-0/0-503/0-503.0
printf 'DEVTYPE=thunderbolt_service\n' >$s/uevent
echo stream >$s/key
ln -s ../../../../../bus/thunderbolt $s/subsystem
mount --bind "$H/sys/kernel/config" /sys/kernel/config
mount --bind "$H/sys/bus/thunderbolt" /sys/bus/thunderbolt
mount -t tmpfs tmpfs /dev
mknod /dev/null c 1 3
mknod /dev/tbstream$X c 240 $X
mount -t tmpfs tmpfs /run
for r in /etc/udev/rules.d /usr/lib/udev; do
	[ -d $r ] && mount -t tmpfs tmpfs $r
done
mkdir -p /usr/lib/udev/rules.d
cp "$RULES" /usr/lib/udev/rules.d/
# The built helper finds its library relative to where it was built.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$HELPER" >/usr/lib/udev/tbstream-udev-name
chmod 755 /usr/lib/udev/tbstream-udev-name
cp /etc/group /run/group
grep -q '^tbstream:' /run/group || echo 'tbstream:x:4242:' >>/run/group
mount --bind /run/group /etc/group
SYSTEMD_DEVICE_VERIFY_SYSFS=0 udevadm test --action=add "$SYSPATH" \
	>"$OUT/udev.out" 2>&1 || echo "udevadm test failed: $?" >>"$OUT/udev.out"
(cd /dev && find . -exec stat -c '%n %F %a %G %N' {} +) | sort >"$OUT/dev.ls"
EOF

ns_udev() {
	t unshare -m sh "$TMP/ns.sh" "$H1" "$1" "$TMP" "$UDEV_NAME" "$RULES" \
		"$x1"
	local r=$?
	grep -E 'tbstream|udevadm test failed' "$TMP/udev.out" | sed 's/^/#   /'
	return $r
}

check "udevadm test: a stream device" \
	ns_udev "/sys/devices/virtual/tbstream/tbstream$x1"
sed 's/^/# /' "$TMP/dev.ls"
check "the node: group tbstream, mode 0660" \
	grep -q "^./tbstream$x1 character special file 660 tbstream " \
	"$TMP/dev.ls"
check "/dev/tbstream/by-name/host2/backup points to it" grep -q \
	"^./tbstream/by-name/host2/backup .* -> '../../../tbstream$x1'" \
	"$TMP/dev.ls"
check "/dev/tbstream/by-id/UID/backup points to it" grep -q \
	"^./tbstream/by-id/$uid2/backup .* -> '../../../tbstream$x1'" \
	"$TMP/dev.ls"
check "the helper's properties are the device's" \
	grep -q "^TBSTREAM_PEER_UID=$uid2\$" "$TMP/udev.out"

check "udevadm test: a peer's stream service appears" \
	ns_udev /sys/devices/domain0/0-0/0-503/0-503.0
check "it asks systemd for tbstream-reconcile@0-503.0.service" \
	grep -q "^SYSTEMD_WANTS=tbstream-reconcile@0-503.0.service\$" \
	"$TMP/udev.out"
check "tagged for systemd" grep -q "^TAGS=.*:systemd:" "$TMP/udev.out"
check "and runs a change event for the stream devices" grep -q \
	"run: '/usr/bin/udevadm trigger --action=change --sysname-match=tbstream\[0-9\]\*'" \
	"$TMP/udev.out"
check "but no permission or link of a stream device" \
	sh -c "! grep -q '^DEVLINKS=' '$TMP/udev.out'"
done_testing
