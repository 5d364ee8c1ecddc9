#!/bin/bash
# tbstream recv's new files: written without a name (O_TMPFILE) and linked
# to their name once durable, named either way linkat(2) allows (from the
# descriptor, or through /proc/self/fd), or, forced as where the file
# system has no unnamed files, under a temporary name and renamed.  Each
# way: modes (read-only, none, set-id, under a umask of 077, in a
# directory with a default ACL) and contents arrive exactly; a name that
# appears at the receiver while its file is on the way is not replaced;
# a low limit of open files (prlimit) still lets everything arrive; and a
# receiver killed while unnamed files wait leaves nothing behind.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root (set-id modes, owners)"
	done_testing
	exit 0
fi
need setfacl getfacl prlimit
sim_start --adv-delay 100

# xfer SRC DST [RECV_ARGS...]: the receiver (under $WRAP, a command
# prefix, and with $UMASK) first, then the sender; sets RS, RR.
WRAP= UMASK=022
xfer() {
	local src=$1 dst=$2
	shift 2
	(umask "$UMASK" && exec $WRAP timeout -k 3 "$T" "$TBSTREAM" \
		--sysroot "$H2" recv --json "$@" "$dst") \
		>"$TMP/r.json" 2>"$TMP/r.err" &
	send_to "$!" "$src"
}

# unnamed_in DIR: a process holds an unnamed file made in DIR
unnamed_in() {
	find /proc/[0-9]*/fd -lname "$1/#* (deleted)" 2>/dev/null | grep -q .
}
# named_in DIR: a temporary file is in DIR
named_in() { [ -n "$(find "$1" -name '.tbs-*.part')" ]; }
leftovers() { find "$1" -name '.tbs-*' ! -name '.tbs-dir'; }

# The tree: modes that a creation gives as they are, and modes it cannot
# (set-id bits, and anything under a umask of 077); hard links; small
# and empty files.
src=$TMP/src/t
mkdir -p "$src/modes" "$src/many" "$src/acl"
for m in 644 444 750 600 000 4755 2711 1777 640; do
	echo "mode $m" >"$src/modes/m$m"
	chmod "$m" "$src/modes/m$m"
done
for i in $(seq 1 200); do head -c 3000 /dev/urandom >"$src/many/f$i"; done
for i in $(seq 1 50); do : >"$src/many/e$i"; done
ln "$src/many/f1" "$src/modes/hard"
echo "in a directory with a default ACL" >"$src/acl/f"
chmod 640 "$src/acl/f"

for how in auto proc 0; do
	if [ $how = auto ]; then
		unset TBSTREAM_RECV_UNNAMED
	else
		export TBSTREAM_RECV_UNNAMED=$how
	fi
	# ---- 1. Everything arrives exactly ----
	d=$TMP/d-$how
	mkdir -p "$d/t/acl"
	setfacl -d -m u:daemon:rwx "$d/t/acl" # there before: kept, not sent
	xfer "$src" "$d"
	is "$how: send exits 0" "$RS" 0
	is "$how: recv exits 0" "$RR" 0
	# (t and t/acl were there: they keep their own mode and times)
	check "$how: contents, modes and times arrived" \
		cmp_tree "$src/modes" "$d/t/modes"
	check "$how: many small and empty files too" \
		cmp_tree "$src/many" "$d/t/many"
	check "$how: a file in a directory with a default ACL arrived" \
		cmp -s "$src/acl/f" "$d/t/acl/f"
	is "$how: a file in a directory with a default ACL: its own mode" \
		"$(stat -c %a "$d/t/acl/f")" 640
	is "$how: and no inherited ACL" \
		"$(getfacl -c -n "$d/t/acl/f" | grep -c ':[0-9]')" 0
	is "$how: hard links arrived as links" \
		"$(stat -c %i "$d/t/modes/hard")" "$(stat -c %i "$d/t/many/f1")"
	is "$how: nothing of the receiver's is left" "$(leftovers "$d")" ""
	UMASK=077 xfer "$src" "$d-umask"
	is "$how: under umask 077: recv exits 0" "$RR" 0
	check "$how: every mode is the sender's" cmp_tree "$TMP/src" "$d-umask"

	# ---- 2. A name that appears while its file is on the way ----
	# Slowed to 1 MB/s, the 3 MB file is on the way for 3 s after the
	# receiver made its file (unnamed, or its temporary name); the local
	# file is made then, only if the name is free (set -C).
	r=$TMP/race-$how
	mkdir -p "$r/src/t" "$r/dst"
	head -c 3000000 /dev/urandom >"$r/src/t/big"
	echo small >"$r/src/t/small"
	echo "rate 1000000" >"$CTL"
	xfer "$r/src/t" "$r/dst" &
	x=$!
	if [ $how = 0 ]; then
		check "$how: the file is written under a temporary name" \
			wait_for 20 named_in "$r/dst/t"
	else
		check "$how: the file is written unnamed" \
			wait_for 20 unnamed_in "$r/dst/t"
		is "$how: under no temporary name" \
			"$(find "$r/dst" -name '.tbs-*.part')" ""
	fi
	check "$how: a local file takes the name meanwhile" \
		sh -c "set -C; echo local >'$r/dst/t/big'"
	wait $x
	xfer_rs=$(json "$TMP/s.json" failed 2>/dev/null)
	echo "rate 0" >"$CTL"
	check "$how: the receiver says it was not replaced" \
		grep -q "exists; not replaced" "$TMP/r.err"
	is "$how: the local file is kept" "$(cat "$r/dst/t/big")" local
	is "$how: the other file arrived" "$(cat "$r/dst/t/small")" small
	is "$how: the sender counts one failure" "$xfer_rs" 1
	is "$how: nothing of the receiver's is left" "$(leftovers "$r/dst")" ""
done
unset TBSTREAM_RECV_UNNAMED

# ---- 3. Few open files allowed ----
# 600: a few dozen unnamed files per batch, then temporary names within a
# record of many empty files; 64: no room, temporary names only; 64 but
# a hard limit of 8192: recv raises its own.
l=$TMP/lim
mkdir -p "$l/src/t/a" "$l/src/t/b"
for i in $(seq 1 1500); do : >"$l/src/t/a/e$i"; done
for i in $(seq 1 300); do head -c 1000 /dev/urandom >"$l/src/t/b/f$i"; done
for lim in 600:600 64:64 64:8192; do
	WRAP="prlimit --nofile=$lim --"
	xfer "$l/src/t" "$l/dst-${lim/:/-}"
	WRAP=
	is "open files limited to $lim: recv exits 0" "$RR" 0
	check "everything arrived" cmp_tree "$l/src" "$l/dst-${lim/:/-}"
	is "nothing of the receiver's is left" \
		"$(leftovers "$l/dst-${lim/:/-}")" ""
done

# ---- 4. The receiver killed while unnamed files wait ----
k=$TMP/kill
mkdir -p "$k/src/t" "$k/dst"
head -c 3000000 /dev/urandom >"$k/src/t/big"
echo "rate 1000000" >"$CTL"
"$TBSTREAM" --sysroot "$H2" recv -q "$k/dst" 2>/dev/null &
kr=$!
sleep 0.3
ts "$H1" send -q "$k/src/t" 2>"$TMP/s.err" &
ks=$!
check "the file is being written unnamed" wait_for 20 unnamed_in "$k/dst/t"
kill -9 $kr
wait $kr 2>/dev/null
wait $ks
check "the receiver killed: send fails" test $? -ne 0
echo "rate 0" >"$CTL"
check "nothing took the name" test ! -e "$k/dst/t/big"
is "and nothing is left of the file" "$(leftovers "$k/dst")" ""
done_testing
