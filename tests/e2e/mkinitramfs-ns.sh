# Runs mkinitramfs for a made-up kernel version on a machine that may
# have no kernel, inside the private mount namespace it is started in
# (unshare -m sh mkinitramfs-ns.sh WORKDIR VERSION OUTPUT [ARGS...]):
# mkinitramfs needs, for that version, a modules directory (it runs depmod
# there) and the kernel's config (to check that the kernel can unpack its
# compression).  An overlay on /usr/lib holds an empty modules directory
# and a tmpfs on /boot a config of one line, CONFIG_RD_GZIP=y; nothing
# outside the namespace changes.  ARGS go to mkinitramfs (-d CONFDIR).
set -e
W=$1 V=$2 OUT=$3
shift 3
mkdir -p "$W/ov"
mount -t tmpfs tmpfs "$W/ov"
mkdir "$W/ov/up" "$W/ov/work"
mount -t overlay overlay \
	-o "lowerdir=/usr/lib,upperdir=$W/ov/up,workdir=$W/ov/work" /usr/lib
mkdir -p "/usr/lib/modules/$V"
for f in modules.order modules.builtin modules.builtin.modinfo; do
	: >"/usr/lib/modules/$V/$f"
done
mount -t tmpfs tmpfs /boot
echo CONFIG_RD_GZIP=y >"/boot/config-$V"
mkinitramfs "$@" -o "$OUT" "$V"
