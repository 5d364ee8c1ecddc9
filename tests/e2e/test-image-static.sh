#!/bin/sh
# The static tbstream (meson -Dstatic_tool=true) needs no shared library,
# so it runs in a recovery initramfs; the same end-to-end test
# (test-image.sh) then runs with it.
set -u
. "$TOP_SRCDIR/tests/lib.sh"

if readelf -l "$TBSTREAM" | grep -q INTERP; then
	not_ok "tbstream has no program interpreter"
else
	ok "tbstream has no program interpreter"
fi
if readelf -d "$TBSTREAM" | grep -q NEEDED; then
	not_ok "tbstream needs no shared library"
else
	ok "tbstream needs no shared library"
fi
check "it runs" sh -c "\"$TBSTREAM\" --version >/dev/null"
strip -o "$TOP_BUILDDIR/tbstream.stripped" "$TBSTREAM" &&
	diag "size: $(stat -c %s "$TBSTREAM") bytes," \
		"$(stat -c %s "$TOP_BUILDDIR/tbstream.stripped") stripped"
rm -f "$TOP_BUILDDIR/tbstream.stripped"
for f in hooks/tbstream scripts/init-premount/tbstream; do
	check "the initramfs-tools $f is valid sh" \
		sh -n "$TOP_SRCDIR/contrib/initramfs-tools/$f"
done
done_testing
