#!/bin/bash
# The recovery initramfs, really: Debian's mkinitramfs (initramfs-tools)
# builds an image with contrib/initramfs-tools and the static tbstream;
# lsinitramfs lists the binary; the image, unpacked by unmkinitramfs and
# entered with chroot, sends a disk image with its own tbstream and
# busybox shell to the other simulated host, where it verifies.
#
# The machine may have no kernel: mkinitramfs-ns.sh runs mkinitramfs for
# a made-up version, 0.0.0-tbstream-test, in a private mount namespace
# where that version has what mkinitramfs needs.  The configuration
# (initramfs.conf, the hook, the init-premount script) comes from a
# directory of the test (mkinitramfs -d), not from /etc.  The modules the hook asks for
# (configfs, thunderbolt, thunderbolt_stream) do not exist for that
# version and are left out, as on a kernel that has them built in.
#
# Inside the chroot, /sys and /dev are the simulated host1's, bind-mounted,
# so the binary runs with its default system root, as at boot.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

need mkinitramfs lsinitramfs unmkinitramfs mkfs.ext4 unshare
if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
	skip "needs root and mount namespaces"
	done_testing
	exit
fi
if readelf -d "$TBSTREAM" | grep -q NEEDED; then
	skip "tbstream is not static (meson -Dstatic_tool=true)"
	done_testing
	exit
fi

sim_start --adv-delay 200 --node-delay 50
W=$TMP
mkdir -p "$W/conf/hooks" "$W/conf/scripts/init-premount" "$W/conf/conf.d"
V=0.0.0-tbstream-test
cp "$TOP_SRCDIR/contrib/initramfs-tools/hooks/tbstream" "$W/conf/hooks/"
cp "$TOP_SRCDIR/contrib/initramfs-tools/scripts/init-premount/tbstream" \
	"$W/conf/scripts/init-premount/"
initramfs_conf "$W/conf"

# --- mkinitramfs -------------------------------------------------------------

TBSTREAM_STATIC=$TBSTREAM t unshare -m sh \
	"$TOP_SRCDIR/tests/e2e/mkinitramfs-ns.sh" "$W" "$V" "$W/initrd.img" \
	-d "$W/conf" >"$W/mk.out" 2>&1
r=$?
sed 's/^/#   /' "$W/mk.out"
check "mkinitramfs with the tbstream hook" test $r -eq 0 -a -s "$W/initrd.img"
check "and without a word from the hook" \
	sh -c "! grep -q '^W: tbstream' '$W/mk.out'"
check "the machine's /usr/lib/modules is untouched" \
	test ! -e "/usr/lib/modules/$V"
diag "image: $(stat -c %s "$W/initrd.img") bytes"

t lsinitramfs "$W/initrd.img" >"$W/ls" 2>&1
check "lsinitramfs lists the static tbstream" \
	grep -Eqx '(usr/)?sbin/tbstream' "$W/ls"
check "and the init-premount script" \
	grep -qx 'scripts/init-premount/tbstream' "$W/ls"
check "and a shell" grep -Eqx '(usr/)?bin/sh' "$W/ls"

t unmkinitramfs "$W/initrd.img" "$W/unpacked" >/dev/null 2>&1
ROOT=$W/unpacked
[ -d "$ROOT/main" ] && ROOT=$ROOT/main
bin=$ROOT/usr/sbin/tbstream
[ -e "$bin" ] || bin=$ROOT/sbin/tbstream
check "unmkinitramfs: the binary is the one built" cmp -s "$bin" "$TBSTREAM"

# --- a backup from inside the image ------------------------------------------

# The patient's disk: a small ext4 file system with files, in the image.
mkdir -p "$W/fs/etc"
head -c 3000000 /dev/urandom >"$W/fs/data"
echo patient >"$W/fs/etc/hostname"
t mkfs.ext4 -q -F -d "$W/fs" "$ROOT/disk.img" 16M >/dev/null
mkdir -p "$ROOT/sys" "$ROOT/dev" "$ROOT/proc"

cat >"$W/chroot.sh" <<'EOF'
set -e
ROOT=$1 H=$2
mount --bind "$H/sys" "$ROOT/sys"
mount --bind "$H/dev" "$ROOT/dev"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /bin/sh -c \
	'tbstream --version && exec tbstream image send /disk.img --timeout 60'
EOF

ts "$H2" image recv "$W/backup.img" --timeout 60 >"$W/recv.out" 2>&1 &
p=$!
PATH=/usr/sbin:/usr/bin:/sbin:/bin t unshare -m sh "$W/chroot.sh" "$ROOT" \
	"$H1" >"$W/send.out" 2>&1
s=$?
wait $p
r=$?
sed 's/^/#   send: /' "$W/send.out"
sed 's/^/#   recv: /' "$W/recv.out"
check "the busybox shell in the image runs its tbstream" \
	grep -q '^tbstream ' "$W/send.out"
check "image send from the chroot: exit 0" test $s -eq 0
check "image recv on the other host: exit 0" test $r -eq 0
status 0 "the backup verifies on the other host" \
	ts "$H2" image verify "$W/backup.img"
check "and is the disk, byte for byte" cmp -s "$W/backup.img" "$ROOT/disk.img"
check "no mount of the test is left" \
	sh -c "! grep -q '$W' /proc/mounts"
done_testing
