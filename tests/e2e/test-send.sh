#!/bin/bash
# tbstream send / recv on two simulated hosts: a generated tree with every
# kind of entry arrives with its content, metadata and holes, whichever
# side starts first; a second run sends nothing again; existing files are
# kept without --overwrite and replaced with it; bad use fails clearly.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
cfg_snap
cmp_tree() { python3 "$TOP_SRCDIR/tests/e2e/tree-compare.py" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# The tree: regular files (one of a few MB), empty files and directories,
# symbolic links (relative, absolute, dangling), hard links, a sparse file,
# odd names, modes and times.
make_tree() {
	local d=$1/tree
	mkdir -p "$d/sub/deeper" "$d/empty dir" "$d/ro"
	head -c 5000000 /dev/urandom >"$d/big"
	head -c 70000 /dev/urandom >"$d/sub/medium"
	for i in $(seq 1 40); do echo "file $i" >"$d/sub/deeper/f$i"; done
	: >"$d/empty"
	: >"$d/sub/also empty"
	echo spaces >"$d/name with  spaces"
	echo newline >"$d/new"$'\n'"line"
	echo latin1 >"$d/caf"$'\xe9'
	echo utf8 >"$d/café ✓"
	ln -s big "$d/rel-link"
	ln -s /etc/passwd "$d/abs-link"
	ln -s "does not exist" "$d/dangling"
	ln "$d/big" "$d/big-hardlink"
	ln "$d/sub/medium" "$d/sub/deeper/medium-hardlink"
	truncate -s 20M "$d/sparse"
	printf 'middle' | dd of="$d/sparse" bs=1 seek=7000000 conv=notrunc \
		status=none
	printf 'end' | dd of="$d/sparse" bs=1 seek=20971000 conv=notrunc \
		status=none
	echo exec >"$d/script"
	chmod 750 "$d/script"
	chmod 600 "$d/sub/medium"
	echo ro >"$d/ro/file"
	chmod 444 "$d/ro/file"
	chmod 555 "$d/ro"
	chmod 711 "$d/sub/deeper"
	touch -h -d '2001-02-03 04:05:06.123456789' "$d/rel-link"
	touch -d '1999-12-31 23:59:59.5' "$d/empty"
	touch -d '2020-01-01' "$d/empty dir" "$d/sub/deeper/f1"
}
make_tree "$TMP/src"
mkdir "$TMP/dst"

# xfer FIRST DELAY SEND_ARGS -- RECV_ARGS: both commands, FIRST started
# DELAY seconds ahead; sets RS, RR (exit statuses).
xfer() {
	local first=$1 delay=$2 sargs=() rargs=() a
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do sargs+=("$1"); shift; done
	shift
	rargs=("$@")
	if [ "$first" = send ]; then
		ts "$H1" send --json "${sargs[@]}" >"$TMP/s.json" \
			2>"$TMP/s.err" &
		a=$!
		sleep "$delay"
		ts "$H2" recv --json "${rargs[@]}" >"$TMP/r.json" \
			2>"$TMP/r.err"
		RR=$?
		wait $a
		RS=$?
	else
		ts "$H2" recv --json "${rargs[@]}" >"$TMP/r.json" \
			2>"$TMP/r.err" &
		a=$!
		sleep "$delay"
		ts "$H1" send --json "${sargs[@]}" >"$TMP/s.json" \
			2>"$TMP/s.err"
		RS=$?
		wait $a
		RR=$?
	fi
	sed 's/^/# send: /' "$TMP/s.err"
	sed 's/^/# recv: /' "$TMP/r.err"
}

xfer send 1 "$TMP/src/tree" -- "$TMP/dst"
is "sender started first: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "the tree arrived: content, modes, times, links, holes, names" \
	cmp_tree "$TMP/src" "$TMP/dst"
is "the sender counted every file confirmed" \
	"$(json "$TMP/s.json" files_done)" "$(json "$TMP/s.json" files)"
is "the receiver saw 5 directories" "$(json "$TMP/r.json" dirs)" 5
is "hard links arrived as links" "$(json "$TMP/r.json" hardlinks)" 2
check "no temporary file is left" \
	test -z "$(find "$TMP/dst" -name '.tbs-*')"
cfg_same

# Again, the receiver first: everything is there, nothing is sent.
xfer recv 1 "$TMP/src/tree" -- "$TMP/dst"
is "receiver started first, same tree again: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
is "no file byte went over the cable" "$(json "$TMP/s.json" bytes_data)" 0
is "every file was found complete" \
	"$(json "$TMP/s.json" files_present)" "$(json "$TMP/s.json" files)"

# A changed file is not replaced without --overwrite ...
echo changed >"$TMP/src/tree/sub/deeper/f2"
cp -p "$TMP/dst/tree/sub/deeper/f2" "$TMP/f2.before"
xfer recv 0.5 "$TMP/src/tree" -- "$TMP/dst"
is "a file that differs: send exits 1" "$RS" 1
is "recv exits 1" "$RR" 1
check "the receiver says what to do" grep -q -- "--overwrite" "$TMP/r.err"
check "the sender names the file" grep -q "f2" "$TMP/s.err"
check "the receiver's file was kept" cmp -s "$TMP/f2.before" \
	"$TMP/dst/tree/sub/deeper/f2"
# ... and is with it.
xfer send 0.5 "$TMP/src/tree" -- --overwrite "$TMP/dst"
is "--overwrite: send exits 0" "$RS" 0
is "only the changed file was sent" "$(json "$TMP/s.json" bytes_data)" 8
check "the trees are the same again" cmp_tree "$TMP/src" "$TMP/dst"

# Two paths, a single file, -s and -q.
echo single >"$TMP/single"
mkdir "$TMP/dst2"
xfer send 0.5 -q -s other "$TMP/single" "$TMP/src/tree/sub" -- \
	-q -s other "$TMP/dst2"
is "two paths on stream 'other': send exits 0" "$RS" 0
check "each path arrived by its last component" \
	test -f "$TMP/dst2/single" -a -f "$TMP/dst2/sub/deeper/f1"
check "-q prints nothing on success" test ! -s "$TMP/s.err" -a ! -s "$TMP/r.err"

# Two paths that would arrive at the same place.
mkdir "$TMP/other"
echo other >"$TMP/other/single"
xfer send 0.5 "$TMP/single" "$TMP/other/single" -- "$TMP/dst2"
is "two paths ending in the same name: send exits 1" "$RS" 1
check "and says why" grep -q "would both arrive" "$TMP/s.err"
check "the first one was not replaced" \
	test "$(cat "$TMP/dst2/single")" = single

# Special files: left out with a warning, or made by a root receiver
# that asks for them.
mkdir -p "$TMP/spec/s"
mkfifo "$TMP/spec/s/fifo"
echo data >"$TMP/spec/s/file"
xfer send 0.5 "$TMP/spec/s" -- "$TMP/dst-spec"
is "a FIFO without --specials: send exits 0" "$RS" 0
check "with a warning naming it" grep -q "fifo.*--specials" "$TMP/s.err"
check "the FIFO was left out, the file arrived" \
	test ! -e "$TMP/dst-spec/s/fifo" -a -f "$TMP/dst-spec/s/file"
if [ "$(id -u)" = 0 ]; then
	rm -rf "$TMP/dst-spec"
	xfer send 0.5 --specials "$TMP/spec/s" -- --specials "$TMP/dst-spec"
	is "--specials on both sides, as root: send exits 0" "$RS" 0
	check "the FIFO was made" test -p "$TMP/dst-spec/s/fifo"
	rm -rf "$TMP/dst-spec"
	xfer send 0.5 --specials "$TMP/spec/s" -- "$TMP/dst-spec"
	is "a FIFO sent to a receiver without --specials: send exits 1" \
		"$RS" 1
	check "the receiver says how to accept it" \
		grep -q "as root with --specials" "$TMP/r.err"
else
	skip "not root: FIFOs are made only by a root receiver"
fi

# Two senders on one stream at the same moment: one sends, the other is
# told the stream is busy (exit 5), whichever comes first.  The stream is
# up before: when the two bring it up as well, the one that created it may
# be the one told it is busy, and it cannot take down a stream that the
# other holds open.
mkdir -p "$TMP/dst-two"
ts "$H1" up two >/dev/null &
ts "$H2" up two >/dev/null
wait
ts "$H1" send -s two "$TMP/single" >/dev/null 2>"$TMP/a.err" &
a=$!
ts "$H1" send -s two "$TMP/single" >/dev/null 2>"$TMP/b.err" &
b=$!
sleep 1
ts "$H2" recv -s two "$TMP/dst-two" >/dev/null 2>"$TMP/r.err"
rr=$?
wait $a
ra=$?
wait $b
rb=$?
sed 's/^/# /' "$TMP/a.err" "$TMP/b.err" "$TMP/r.err"
is "two senders at once: the exit statuses" \
	"$(printf '%s\n' "$ra" "$rb" | sort | tr '\n' ' ')" "0 5 "
is "and the receiver got what one of them sent" "$rr" 0
ts "$H1" down two
ts "$H2" down two

# A tree deeper than the directories the sender holds open while it lists
# (the deepest are then reached by their whole path), with a link, further
# names (hashed while listed) and an attribute at every level; sent once
# by a path relative to the working directory, then again compared by
# hash: nothing differs.
deep=$TMP/deep/top
p=$deep
for i in $(seq 1 40); do
	mkdir -p "$p"
	echo "level $i" >"$p/f"
	ln -s f "$p/s"
	ln "$p/f" "$p/h"
	setfattr -n user.level -v "$i" "$p/f" 2>/dev/null
	p=$p/l$i
done
mkdir -p "$TMP/dst-deep"
here=$PWD
cd "$TMP/deep"
ts "$H2" recv --json "$TMP/dst-deep" >"$TMP/r.json" 2>"$TMP/r.err" &
send_to "$!" top
cd "$here"
is "a tree 40 deep, sent by a relative path: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "it arrives the same" cmp_tree "$deep" "$TMP/dst-deep/top"
is "with the attribute of its deepest file" \
	"$(getfattr --only-values -n user.level \
		"$TMP/dst-deep/top$(printf '/l%d' $(seq 1 39))/f" 2>/dev/null)" \
	"$(getfattr --only-values -n user.level \
		"$deep$(printf '/l%d' $(seq 1 39))/f" 2>/dev/null)"
ts "$H2" recv --json "$TMP/dst-deep" >"$TMP/r.json" 2>"$TMP/r.err" &
send_to "$!" --checksum "$deep"
is "sent again, compared by hash: send exits 0" "$RS" 0
is "nothing is sent again" "$(json "$TMP/s.json" files_present)" 40

# Usage errors and a missing path fail before anything is set up.
status 2 "send without a path: exit 2" ts "$H1" send
status 2 "a bad stream name: exit 2" ts "$H1" send -s toolongname "$TMP/single"
status 1 "a missing path: exit 1" ts "$H1" send "$TMP/nope"
has_msg "and names it" "nope"
status 2 "recv with two directories: exit 2" ts "$H2" recv a b
status 4 "a receiver alone: exit 4" ts "$H2" recv -t 3 "$TMP/dst3"
cfg_same
done_testing
