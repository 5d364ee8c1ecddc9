#!/bin/bash
# tbstream recv against a hostile sender (tests/hostile-send.c): paths
# with "..", absolute paths, a file through a symbolic link that came over
# the cable, huge sizes, lengths and counts, names with '/' or NUL.  Each
# is refused with a message that says what was wrong, and nothing is
# written outside the receiving directory.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
TMP=$SIM_DIR/work
mkdir "$TMP"

# scenario NAME PATTERN: recv in a fresh directory against the attack.
scenario() {
	local sc=$1 pat=$2 in=$TMP/in-$1 out=$TMP/outside-$1 r
	mkdir "$in" "$out"
	ts "$H2" recv -s evil "$in" >/dev/null 2>"$TMP/r.err" &
	r=$!
	t "$HOSTILE" "$H1" evil "$sc" "$out" >"$TMP/h.out" 2>"$TMP/h.err"
	wait $r
	is "$sc: recv exits 1" $? 1
	sed 's/^/# recv: /' "$TMP/r.err"
	sed 's/^/# hostile: /' "$TMP/h.err"
	check "$sc: the message says what was wrong" grep -Eq "$pat" \
		"$TMP/r.err"
	check "$sc: nothing outside the directory" \
		test -z "$(ls -A "$out")" -a ! -e "$TMP/x" -a ! -e "$TMP/b"
	check "$sc: no file written inside it either" \
		test -z "$(find "$in" -type f)"
}

scenario dotdot "'\.' or '\.\.' path component"
scenario absolute "empty path component"
scenario slash "containing '/'"
scenario nul "NUL byte"
scenario symlink "symbolic link"
check "symlink: the sender was told the file was refused" \
	grep -q "refused 'link/x'" "$TMP/h.out"
check "symlink: the link itself stays inside" test -L "$TMP/in-symlink/link"
scenario huge-size "limit"
scenario huge-length "longer than its record"
scenario huge-data "outside the file"
scenario huge-count "limit"
check "/etc/x does not exist" test ! -e /etc/x
done_testing
