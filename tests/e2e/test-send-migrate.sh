#!/bin/bash
# tbstream send / recv for moving a tree to another machine: extended
# attributes, ACLs and a file capability arrive (compared with getfattr,
# getfacl and getcap), owners by name through the receiver's own
# /etc/passwd (or by number with --numeric-ids); recv --delete removes
# exactly what the sender no longer has, never outside the directory,
# never through a link or onto another mount, and nothing at all after a
# transfer that was not complete; -n changes nothing; --checksum finds a
# change that size and time do not show; a file that grows or shrinks
# while it is sent is reported, not received; into exFAT, which keeps no
# owners, attributes nor ACLs, everything arrives, what is not kept is
# said once per kind, and recv exits 1.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root (owners, capabilities, mounts)"
	done_testing
	exit 0
fi
need getfattr setfattr getfacl setfacl getcap setcap unshare
sim_start --adv-delay 100

# xfer SEND_ARGS -- RECV_ARGS: the receiver first (in a mount namespace
# of its own when $RECV_NS names a script to run there); sets RS, RR.
xfer() {
	local sargs=() rargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
	shift
	rargs=("$@")
	if [ -n "${RECV_NS:-}" ]; then
		t unshare -m sh "$RECV_NS" "$TBSTREAM" --sysroot "$H2" recv \
			--json "${rargs[@]}" >"$TMP/r.json" 2>"$TMP/r.err" &
	else
		ts "$H2" recv --json "${rargs[@]}" >"$TMP/r.json" \
			2>"$TMP/r.err" &
	fi
	send_to "$!" "${sargs[@]}"
}

# ---- 1. Everything a file carries ----

src=$TMP/src/home
mkdir -p "$src/docs/shared" "$src/bin"
echo notes >"$src/docs/notes"
echo shared >"$src/docs/shared/f"
cp /bin/true "$src/bin/ping"
echo daemon >"$src/docs/owned"
echo nobody-known >"$src/docs/numbered"
setfattr -n user.origin -v "laptop" "$src/docs/notes"
setfattr -n user.empty "$src/docs/notes"
setfattr -n user.dir -v "yes" "$src/docs"
setfattr -n trusted.secret -v "root only" "$src/docs/notes"
setfacl -m u:daemon:rw,g:daemon:r "$src/docs/notes"
setfacl -d -m u:daemon:rwx "$src/docs/shared"
setfacl -m u:daemon:rwx "$src/docs/shared"
setcap cap_net_raw+ep "$src/bin/ping"
chown daemon:daemon "$src/docs/owned"
chown 4242:4343 "$src/docs/numbered"
touch -d '2001-01-01' "$src/docs/shared" "$src/docs"

# The receiver's own users and groups: "daemon" is 4001 there.
sed 's/^daemon:x:1:1:/daemon:x:4001:4001:/' /etc/passwd >"$TMP/passwd"
sed 's/^daemon:x:1:/daemon:x:4001:/' /etc/group >"$TMP/group"
cat >"$TMP/ns.sh" <<EOF
mount --bind "$TMP/passwd" /etc/passwd &&
mount --bind "$TMP/group" /etc/group && exec "\$@"
EOF
numeric_acl() { # the ACLs with daemon's id mapped 1 -> 4001 (owners
	# are compared below)
	(cd "$1" && getfacl -R -p -n . 2>/dev/null |
		grep -v -e '^$' -e '^# owner:' -e '^# group:' |
		sed 's/:1:/:4001:/') | sort
}

RECV_NS=$TMP/ns.sh xfer "$src" -- --all-xattrs "$TMP/d1"
RECV_NS=
is "as root with --all-xattrs: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "content, modes and times arrived" cmp_tree "$TMP/src" "$TMP/d1"
# (system.posix_acl_* are the ACLs, compared by getfacl below)
xa() { (cd "$1" && getfattr -d -m '^(user|trusted|security)\.' notes); }
check "extended attributes arrived (getfattr)" test \
	"$(xa "$src/docs")" = "$(xa "$TMP/d1/home/docs")"
check "a directory's attribute arrived" test \
	"$(getfattr --only-values -n user.dir "$TMP/d1/home/docs")" = yes
numeric_acl "$TMP/src" >"$TMP/acl.src"
numeric_acl "$TMP/d1" >"$TMP/acl.dst"
check "ACLs arrived, named users mapped by name (getfacl)" \
	cmp -s "$TMP/acl.src" "$TMP/acl.dst"
diff "$TMP/acl.src" "$TMP/acl.dst" | sed 's/^/# /'
check "the default ACL of a directory arrived" \
	grep -q "default:user:4001:rwx" <(getfacl -n "$TMP/d1/home/docs/shared")
check "a file made in it did not keep an inherited ACL" \
	test "$(getfacl -c -n "$TMP/d1/home/docs/shared/f" | grep -c user:)" = 1
check "the file capability arrived (getcap)" test \
	"$(getcap "$src/bin/ping" | sed 's/^.* //')" = \
	"$(getcap "$TMP/d1/home/bin/ping" | sed 's/^.* //')"
is "an owner known by name here took this host's id" \
	"$(stat -c %u:%g "$TMP/d1/home/docs/owned")" 4001:4001
is "an id without a name kept its number" \
	"$(stat -c %u:%g "$TMP/d1/home/docs/numbered")" 4242:4343

RECV_NS=$TMP/ns.sh xfer "$src" -- --numeric-ids "$TMP/d2"
RECV_NS=
is "--numeric-ids: recv exits 0" "$RR" 0
is "owners by number" "$(stat -c %u:%g "$TMP/d2/home/docs/owned")" 1:1
check "without --all-xattrs: no capability" \
	test -z "$(getcap "$TMP/d2/home/bin/ping")"
check "nor trusted.* attributes" \
	test -z "$(getfattr -h -m trusted. -d "$TMP/d2/home/docs/notes" 2>/dev/null)"
is "said once, not per file" \
	"$(grep -c 'root with --all-xattrs' "$TMP/r.err")" 1
check "user attributes still arrived" test \
	"$(getfattr --only-values -n user.origin "$TMP/d2/home/docs/notes")" = laptop

# ---- 2. Mirror ----

m=$TMP/m
mkdir -p "$m/src/tree/a/b" "$m/dst/tree/a/b" "$m/outside/o"
echo keep >"$m/src/tree/a/keep"
echo sub >"$m/src/tree/a/b/sub"
cp -a "$m/src/tree" "$m/dst/"
echo gone >"$m/dst/tree/a/gone"
mkdir -p "$m/dst/tree/olddir/deep"
echo x >"$m/dst/tree/olddir/deep/x"
echo precious >"$m/outside/o/file"
ln -s ../../outside/o "$m/dst/tree/a/b/link-out"
ln -s "$m/outside" "$m/dst/tree/abs-link"
echo sibling >"$m/dst/sibling"
snapshot() { (cd "$1" && find . -printf '%p %y %i %s %T@\n' | sort); }
before=$(snapshot "$m/dst")

xfer -n "$m/src/tree" -- --delete "$m/dst"
is "-n with --delete: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "-n changes nothing" test "$before" = "$(snapshot "$m/dst")"
check "and says what it would remove" grep -q "would remove 'tree/a/gone'" \
	"$TMP/r.err"
check "the sender is told too" grep -q "would remove 'tree/olddir'" \
	"$TMP/s.err"

# a dry run into a directory that is not there, asked by either side
xfer -n "$m/src/tree" -- "$m/none1"
xfer "$m/src/tree" -- -n "$m/none2"
is "-n into a directory that is not there: recv exits 0" "$RR" 0
check "it says what it would create" grep -q "would create 'tree/a/keep'" \
	"$TMP/r.err"
check "and creates nothing, whichever side asked" \
	test ! -e "$m/none1" -a ! -e "$m/none2"

xfer "$m/src/tree" -- --delete -v "$m/dst"
is "--delete: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "the target is now exactly the source" cmp_tree "$m/src/tree" \
	"$m/dst/tree"
check "what the links pointed to is untouched" \
	test "$(cat "$m/outside/o/file")" = precious
check "nothing beside the target was touched" \
	test "$(cat "$m/dst/sibling")" = sibling
# a directory counts once, with everything in it
is "the sender counts what was removed" "$(json "$TMP/s.json" removed)" 4

# send --mirror asks; a receiver without --delete refuses
echo extra >"$m/dst/tree/extra"
xfer --mirror "$m/src/tree" -- "$m/dst"
is "send --mirror to a receiver without --delete: send exits 1" "$RS" 1
check "the receiver says why" grep -q -- "--delete" "$TMP/r.err"
check "nothing was removed" test -e "$m/dst/tree/extra"

# a transfer that is not complete removes nothing
echo changed >"$m/src/tree/a/keep"
xfer --mirror "$m/src/tree" -- --delete "$m/dst"
is "a refused file and --delete: recv exits 1" "$RR" 1
check "it says nothing was removed" grep -q "nothing was removed" \
	"$TMP/r.err"
check "the extra file is still there" test -e "$m/dst/tree/extra"

# a mount point inside the target is not removed through
mkdir "$m/dst/tree/mnt"
mount -t tmpfs -o size=1m tmpfs "$m/dst/tree/mnt"
echo inside >"$m/dst/tree/mnt/f"
xfer "$m/src/tree" -- --delete --overwrite "$m/dst"
is "a mount point in the way: recv exits 1" "$RR" 1
check "what is mounted there is kept" test -e "$m/dst/tree/mnt/f"
check "the other extra file was removed" test ! -e "$m/dst/tree/extra"
umount "$m/dst/tree/mnt"

# ---- 3. --checksum ----

c=$TMP/c
mkdir -p "$c/src/t" "$c/dst"
echo "version 1" >"$c/src/t/f"
xfer "$c/src/t" -- "$c/dst"
echo "version 2" >"$c/src/t/f"
touch -d "@$(stat -c %Y "$c/dst/t/f")" "$c/src/t/f"
touch -r "$c/dst/t/f" "$c/src/t/f"
xfer "$c/src/t" -- "$c/dst"
is "same size and time: taken as unchanged" "$(json "$TMP/s.json" files_present)" 1
xfer --checksum "$c/src/t" -- "$c/dst"
is "--checksum: the change is found, and not replaced" "$RR" 1
xfer --checksum "$c/src/t" -- --overwrite "$c/dst"
is "with --overwrite it is" "$(cat "$c/dst/t/f")" "version 2"

# what the sender cannot send (nested deeper than the protocol allows):
# both sides end in failure
mkdir -p "$c/deep/$(printf 'a/%.0s' $(seq 300))"
xfer "$c/deep" -- "$c/dst"
is "an entry the sender cannot send: send exits 1" "$RS" 1
is "recv exits 1 too" "$RR" 1
check "the receiver says the sender could not send it" \
	grep -q "the sender could not send 1 entry" "$TMP/r.err"

# ---- 4. A file that grows or shrinks while it is sent ----

# The change is made once the receiver has begun to write the file: the
# sender reads at most its window (4 MiB) ahead of what arrived, so it is
# still reading a file of 32 MB then, whatever the timing.
g=$TMP/g
mkdir -p "$g/src/t" "$g/dst"
head -c 32000000 /dev/urandom >"$g/src/t/big"
echo "rate 4000000" >"$CTL"
begun() { [ -n "$(find "$g/dst" -name '.tbs-*.part' -size +0c)" ]; }
changing() { # what to do to the file while it is sent
	ts "$H2" recv --json "$g/dst" >"$TMP/r.json" 2>"$TMP/r.err" &
	local r=$!
	sleep 0.3
	ts "$H1" send --json "$g/src/t" >"$TMP/s.json" 2>"$TMP/s.err" &
	local s=$!
	wait_for 20 begun || diag "the receiver did not begin to write"
	"$@"
	wait $s
	RS=$?
	wait $r
	RR=$?
	sed 's/^/# send: /' "$TMP/s.err"
	sed 's/^/# recv: /' "$TMP/r.err"
}
changing sh -c "head -c 1000 /dev/urandom >>'$g/src/t/big'"
is "a file that grew while it was read: send exits 1" "$RS" 1
is "recv exits 1" "$RR" 1
check "the sender says it changed as it was read" \
	grep -q "changed while it was being read" "$TMP/s.err"
check "the receiver says so too" grep -q "changed while" "$TMP/r.err"
check "nothing took its name" test ! -e "$g/dst/t/big"
changing truncate -s 1000 "$g/src/t/big"
is "a file that shrank: send exits 1" "$RS" 1
is "recv exits 1" "$RR" 1
check "nothing took its name" test ! -e "$g/dst/t/big"
echo "rate 0" >"$CTL"
xfer "$g/src/t" -- "$g/dst"
is "sent again, unchanged: send exits 0" "$RS" 0
check "it arrives" cmp -s "$g/src/t/big" "$g/dst/t/big"
check "no partial file is left" test -z "$(find "$g/dst" -name '.tbs-*')"

# ---- 5. A file system that keeps no owners, attributes nor ACLs ----

# exFAT on a loop device, through FUSE (the kernel need not have a FAT
# driver); unmounted and detached on every way out.
FAT=$TMP/fat FAT_LOOP=
fat_cleanup() {
	if is_mounted "$FAT"; then
		timeout -k 2 20 umount "$FAT" 2>/dev/null ||
			timeout -k 2 20 umount -l "$FAT"
	fi
	[ -n "$FAT_LOOP" ] && timeout -k 2 20 losetup -d "$FAT_LOOP"
	FAT_LOOP=
}
trap 'fat_cleanup; sim_cleanup' EXIT
fat_mount() { # sets FAT_WHY when it cannot
	local c
	for c in mkfs.exfat mount.exfat-fuse losetup; do
		command -v "$c" >/dev/null ||
			{ FAT_WHY="no $c (exfatprogs, exfat-fuse)"; return 1; }
	done
	mkdir "$FAT" && truncate -s 64M "$TMP/fat.img" &&
		t mkfs.exfat "$TMP/fat.img" >/dev/null ||
		{ FAT_WHY="mkfs.exfat failed"; return 1; }
	FAT_LOOP=$(t losetup -f --show "$TMP/fat.img") ||
		{ FAT_LOOP=; FAT_WHY="no loop device"; return 1; }
	t mount.exfat-fuse "$FAT_LOOP" "$FAT" >/dev/null 2>&1 &&
		is_mounted "$FAT" ||
		{ FAT_WHY="exFAT could not be mounted through FUSE"; return 1; }
}
f=$TMP/f
mkdir -p "$f/src/t/a" "$f/src/t/b"
for i in 1 2 3; do
	echo "file $i" >"$f/src/t/a/$i"
	echo "file $i" >"$f/src/t/b/$i"
	setfattr -n user.n -v "$i" "$f/src/t/a/$i" "$f/src/t/b/$i"
	setfacl -m u:daemon:rw "$f/src/t/a/$i" "$f/src/t/b/$i"
	chown daemon:daemon "$f/src/t/a/$i" "$f/src/t/b/$i"
done
if fat_mount; then
	xfer "$f/src/t" -- "$FAT"
	is "into exFAT: send exits 0 (everything was received)" "$RS" 0
	is "recv exits 1: not everything was kept" "$RR" 1
	check "every file arrived" t diff -r "$f/src/t" "$FAT/t"
	for k in "extended attributes (user.\*)" ACLs owners; do
		is "what it does not keep, said once: $k" \
			"$(grep -c "does not keep $k" "$TMP/r.err")" 1
	done
	check "the verdict names them all" grep -q \
		"did not keep their extended attributes (user.\*), ACLs, owners" \
		"$TMP/r.err"
	check "no entry was refused" test -z "$(grep refused "$TMP/r.err")"
	check "no partial file is left" \
		test -z "$(t find "$FAT" -name '.tbs-*')"
	# Its rename cannot refuse to replace: what exists is still kept
	# without --overwrite, and replaced with it.
	echo "changed at the source" >"$f/src/t/a/2"
	xfer "$f/src/t" -- "$FAT"
	is "into exFAT, a file that differs: recv exits 1" "$RR" 1
	check "and says what to do" grep -q -- "--overwrite" "$TMP/r.err"
	is "the file on exFAT was kept" "$(cat "$FAT/t/a/2")" "file 2"
	xfer "$f/src/t" -- --overwrite "$FAT"
	is "with --overwrite it is replaced" "$(cat "$FAT/t/a/2")" \
		"changed at the source"
	check "and no partial file is left" \
		test -z "$(t find "$FAT" -name '.tbs-*')"
	fat_cleanup
	check_fails "unmounted" is_mounted "$FAT"
else
	skip "exFAT: $FAT_WHY"
fi
done_testing
