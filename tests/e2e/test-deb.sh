#!/bin/bash
# The Debian packages: dpkg-buildpackage -b builds tbstream, libtbstream0,
# libtbstream-dev and gstreamer1.0-tbstream from a copy of the tree
# (without the test suite: nocheck); lintian finds no error; apt installs them on this machine;
# the installed tbstream and tbsim, and nothing from the build, then run
# --version, the reconcile of the shipped streams file, the udev helper,
# systemd-analyze verify of the installed units, mkinitramfs with the
# installed initramfs hook (tbstream runs in the image), and one verified
# transfer of a directory tree between two simulated hosts.  The
# packages are purged again and the machine is left as it was found: no
# file, no group, no enabled unit.  Runs once, in the normal build.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

T=${T:-60}
PKGS="tbstream libtbstream0 libtbstream-dev gstreamer1.0-tbstream"
need dpkg-buildpackage dh lintian apt-get
if [ "$(id -u)" -ne 0 ]; then
	skip "installing packages needs root"
	done_testing
	exit
fi
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed
	then
		skip "$p is installed already: the test would not leave it so"
		done_testing
		exit
	fi
done
for f in /usr/bin/tbstream /usr/bin/tbsim; do
	if [ -e $f ]; then
		skip "$f exists already: the test would remove it"
		done_testing
		exit
	fi
done

W=$(mktemp -d "${TMPDIR:-/tmp}/tbstream-deb.XXXXXX")
had_group=no
getent group tbstream >/dev/null && had_group=yes
installed=no
apt_opts=(-y -qq -o DPkg::Lock::Timeout=300)

deb_cleanup() {
	if [ $installed = yes ]; then
		# shellcheck disable=SC2086
		timeout 300 apt-get purge "${apt_opts[@]}" $PKGS >/dev/null 2>&1
		installed=no
	fi
	[ $had_group = no ] && getent group tbstream >/dev/null &&
		groupdel tbstream
	sim_cleanup
	rm -rf "$W"
}
trap deb_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ------------------------------------------------------------------

mkdir "$W/src"
tar -C "$TOP_SRCDIR" --exclude='./build*' --exclude=./.git \
	--exclude='./obj-*' -cf - . | tar -C "$W/src" -xf -
start=$(date +%s.%N)
(cd "$W/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	timeout 900 dpkg-buildpackage -b -us -uc) >"$W/build.log" 2>&1
r=$?
end=$(date +%s.%N)
diag "dpkg-buildpackage: $(python3 -c "print(round($end - $start, 1))") s"
if [ $r -ne 0 ]; then
	tail -30 "$W/build.log" | sed 's/^/#   /'
	bail "dpkg-buildpackage -b -us -uc failed ($r)"
fi
ok "dpkg-buildpackage -b -us -uc"
for p in $PKGS; do
	check "$p built" test -f "$W/${p}_0.1.0_$(dpkg --print-architecture).deb"
done
deb() {
	echo "$W/${1}_0.1.0_$(dpkg --print-architecture).deb"
}
dpkg-deb -c "$(deb tbstream)" | awk '{ print $6 }' | sed 's,^\.,,' \
	>"$W/contents"
for f in /usr/bin/tbstream /usr/bin/tbsim /lib/udev/tbstream-udev-name \
	/lib/udev/rules.d/60-tbstream.rules /etc/tbstream/streams.conf \
	/lib/systemd/system/tbstream-reconcile.service \
	/lib/systemd/system/tbstream-reconcile@.service \
	/lib/systemd/system/tbstream-forward@.service \
	/usr/lib/sysusers.d/tbstream.conf \
	/usr/share/initramfs-tools/hooks/tbstream \
	/usr/share/initramfs-tools/scripts/init-premount/tbstream \
	/usr/share/man/man5/tbstream.conf.5.gz; do
	check "tbstream holds $f" grep -qx "$f" "$W/contents"
done
check "libtbstream0 holds the library under its soname" sh -c \
	"dpkg-deb -c '$(deb libtbstream0)' | grep -q 'libtbstream\\.so\\.0 -> '"
check "gstreamer1.0-tbstream holds the plugin in GStreamer's directory" sh -c \
	"dpkg-deb -c '$(deb gstreamer1.0-tbstream)' | grep -q 'usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/gstreamer-1.0/libgsttbstream\\.so$'"
check "and tbstream-cam" sh -c \
	"dpkg-deb -c '$(deb gstreamer1.0-tbstream)' | grep -q 'usr/libexec/tbstream/tbstream-cam$'"
check "libtbstream-dev holds the header and tbstream.pc" sh -c \
	"dpkg-deb -c '$(deb libtbstream-dev)' | grep -q include/tbstream.h &&
	 dpkg-deb -c '$(deb libtbstream-dev)' | grep -q pkgconfig/tbstream.pc"

(cd "$W" && timeout 300 lintian --tag-display-limit 0 \
	tbstream_0.1.0_*.changes) >"$W/lintian.out" 2>&1
grep -v 'root privileges' "$W/lintian.out" | sed 's/^/#   /'
check "lintian: no error" sh -c "! grep -q '^E: ' '$W/lintian.out'"

# --- install, use, purge --------------------------------------------------

if timeout 300 apt-get install "${apt_opts[@]}" --no-install-recommends \
	"$(deb libtbstream0)" "$(deb tbstream)" "$(deb libtbstream-dev)" \
	"$(deb gstreamer1.0-tbstream)" >"$W/install.log" 2>&1; then
	installed=yes
	ok "apt-get install of the four packages"
else
	sed 's/^/#   /' "$W/install.log"
	bail "apt-get install failed"
fi
is "the installed tbstream --version" "$(t /usr/bin/tbstream --version)" \
	"tbstream 0.1.0"
check "it uses the installed library" sh -c \
	"ldd /usr/bin/tbstream | grep -q '=> /.*lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libtbstream.so.0 '"
check "and nothing from the build (no RUNPATH)" sh -c \
	"! readelf -d /usr/bin/tbstream | grep -q RUNPATH"
check "the group tbstream exists" getent group tbstream
check "the boot unit is enabled" \
	test -L /etc/systemd/system/multi-user.target.wants/tbstream-reconcile.service
check "pkg-config finds the library" pkg-config --exists tbstream
quiet() {
	"$@" >/dev/null 2>&1
}
if command -v gst-inspect-1.0 >/dev/null; then
	check "GStreamer finds the installed elements" quiet t env \
		-u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0 \
		GST_REGISTRY_1_0="$W/registry.bin" gst-inspect-1.0 tbstreamsrc
	check "the installed tbstream cam runs the installed tbstream-cam" \
		quiet t env -u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0 \
		GST_REGISTRY_1_0="$W/registry.bin" /usr/bin/tbstream cam --list
else
	skip "gst-inspect-1.0 missing (gstreamer1.0-tools)"
fi
(cd /lib/systemd/system && t systemd-analyze verify --man=no \
	tbstream-reconcile.service tbstream-reconcile-resume.service \
	tbstream-reconcile@0-1.0.service tbstream-forward@ssh.service \
	tbstream-cam@front.service) >"$W/verify.out" 2>&1
r=$?
sed 's/^/#   /' "$W/verify.out"
check "systemd-analyze verify: the installed units are clean" \
	test $r -eq 0 -a ! -s "$W/verify.out"

# The recovery initramfs from the installed hook alone: mkinitramfs (with
# a configuration of the test, in a private mount namespace: see
# mkinitramfs-ns.sh) puts the installed tbstream and its libraries into
# the image, where it runs.
if command -v mkinitramfs >/dev/null && unshare -m true 2>/dev/null; then
	initramfs_conf "$W/itconf"
	t unshare -m sh "$TOP_SRCDIR/tests/e2e/mkinitramfs-ns.sh" "$W" \
		0.0.0-tbstream-deb "$W/initrd.img" -d "$W/itconf" \
		>"$W/mk.out" 2>&1
	r=$?
	sed 's/^/#   /' "$W/mk.out"
	check "mkinitramfs with the installed hook, without a word from it" \
		test $r -eq 0 -a -s "$W/initrd.img" -a \
		-z "$(grep '^W: tbstream' "$W/mk.out")"
	t lsinitramfs "$W/initrd.img" >"$W/itls" 2>&1
	check "the image holds tbstream" grep -Eqx '(usr/)?sbin/tbstream' \
		"$W/itls"
	check "and libtbstream" grep -q '/libtbstream\.so\.0' "$W/itls"
	check "and the init-premount script" \
		grep -qx 'scripts/init-premount/tbstream' "$W/itls"
	t unmkinitramfs "$W/initrd.img" "$W/itroot" >/dev/null 2>&1
	root=$W/itroot
	[ -d "$root/main" ] && root=$root/main
	is "tbstream runs inside the image" \
		"$(PATH=/usr/sbin:/usr/bin:/sbin:/bin t chroot "$root" \
			/bin/sh -c 'tbstream --version' 2>&1)" "tbstream 0.1.0"
else
	skip "mkinitramfs or mount namespaces missing (initramfs-tools)"
fi

TBSIM=/usr/bin/tbsim
TBSTREAM=/usr/bin/tbstream
sim_start --adv-delay 200 --node-delay 50
trap deb_cleanup EXIT
TMP=$W
status 0 "the shipped streams file: nothing to reconcile" \
	ts "$H1" reconcile
mkdir -p "$W/tree/sub"
head -c 200000 /dev/urandom >"$W/tree/a"
echo hello >"$W/tree/sub/b"
ln -s a "$W/tree/link"
mkdir "$W/dst"
ts "$H2" recv "$W/dst" >"$W/recv.out" 2>&1 &
p=$!
ts "$H1" send "$W/tree" >"$W/send.out" 2>&1
s=$?
wait $p
r=$?
sed 's/^/#   /' "$W/send.out" "$W/recv.out"
check "installed tbstream: send and recv exit 0" test "$s$r" = 00
check "the tree arrived as sent" diff -r --no-dereference "$W/tree" \
	"$W/dst/tree"
up_pair "$H1" "$H2" u
x=$(attr "$H1" u index)
is "the installed udev helper names a stream" \
	"$(t /lib/udev/tbstream-udev-name --sysroot "$H1" "tbstream$x" |
		sed -n 1p\;3p)" "TBSTREAM_NAME=u
TBSTREAM_PEER=host2"
sim_cleanup

# shellcheck disable=SC2086
timeout 300 apt-get purge "${apt_opts[@]}" $PKGS >"$W/purge.log" 2>&1
r=$?
installed=no
check "apt-get purge" test $r -eq 0
for f in /usr/bin/tbstream /usr/bin/tbsim /etc/tbstream \
	/lib/udev/rules.d/60-tbstream.rules /lib/udev/tbstream-udev-name \
	/usr/include/tbstream.h /usr/share/initramfs-tools/hooks/tbstream \
	/etc/systemd/system/multi-user.target.wants/tbstream-reconcile.service
do
	check "purged: $f is gone" test ! -e "$f" -a ! -L "$f"
done
if [ $had_group = no ]; then
	groupdel tbstream 2>/dev/null
	check_fails "the group is gone again" getent group tbstream
fi
done_testing
