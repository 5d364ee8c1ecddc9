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

# Text from outside never drives the terminal: the peer's ABORT message,
# a local file name in the sender's messages, the peer's ERROR in image.
noesc() { ! grep -q $'\e' "$1" && ! grep -q $'\a' "$1"; }
mkdir "$TMP/in-abort"
ts "$H2" recv -s evil "$TMP/in-abort" >/dev/null 2>"$TMP/r.err" &
r=$!
t "$HOSTILE" "$H1" evil abort "$TMP" >/dev/null 2>&1
wait $r
sed 's/^/# recv: /' "$TMP/r.err"
check "abort: the peer's message is shown" grep -q 'pwned' "$TMP/r.err"
check "abort: with its control bytes spelled out" noesc "$TMP/r.err"
check "abort: on one line" test "$(grep -c 'verified OK' "$TMP/r.err")" = 1 -a \
	"$(grep -vc '^tbstream: transport: ' "$TMP/r.err")" = 1

evil=$'\e]0;evil\a\e[2Jname'
mkdir -p "$TMP/src/t" "$TMP/in-names"
echo data >"$TMP/src/t/ok"
mkfifo "$TMP/src/t/$evil"
ts "$H2" recv -s names "$TMP/in-names" >/dev/null 2>"$TMP/r.err" &
r=$!
ts "$H1" send -s names "$TMP/src/t" >/dev/null 2>"$TMP/s.err"
wait $r
sed 's/^/# send: /' "$TMP/s.err"
check "names: the sender names the file it left out" grep -q 'evil' \
	"$TMP/s.err"
check "names: with its control bytes spelled out" noesc "$TMP/s.err"

printf 'precious' >"$TMP/$evil.img"
printf 'image' >"$TMP/src.img"
ts "$H2" image recv -s img "$TMP/$evil.img" >/dev/null 2>"$TMP/r.err" &
r=$!
ts "$H1" image send -s img "$TMP/src.img" >/dev/null 2>"$TMP/s.err"
wait $r
sed 's/^/# image send: /' "$TMP/s.err"
check "image: the receiver's refusal reaches the sender" grep -q 'exists' \
	"$TMP/s.err"
check "image: the sender shows it escaped" noesc "$TMP/s.err"
check "image: and the receiver its own" noesc "$TMP/r.err"
done_testing
