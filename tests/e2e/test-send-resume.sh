#!/bin/bash
# tbstream send / recv interrupted by an unplug, in the middle of a large
# file and in the middle of many small files, and by a receiver killed in
# the middle of a large file: the same two commands run again complete the
# transfer, and their JSON summaries show that what the receiver had
# confirmed (or verified on disk) was not sent again.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
cmp_tree() { python3 "$TOP_SRCDIR/tests/e2e/tree-compare.py" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

# run_pair SRC DST [UNPLUG_AFTER]: receiver, then sender; unplugs the
# cable UNPLUG_AFTER seconds after the sender started.  Sets RS, RR.
run_pair() {
	local src=$1 dst=$2 cut=${3:-} r u
	ts "$H2" recv --json "$dst" >"$TMP/r.json" 2>"$TMP/r.err" &
	r=$!
	sleep 0.5
	if [ -n "$cut" ]; then
		(sleep "$cut"; echo unplug >"$CTL") &
		u=$!
	fi
	ts "$H1" send --json "$src" >"$TMP/s.json" 2>"$TMP/s.err"
	RS=$?
	wait $r
	RR=$?
	[ -n "$cut" ] && wait $u
	sed 's/^/# send: /' "$TMP/s.err"
	sed 's/^/# recv: /' "$TMP/r.err"
}

replug() {
	echo plug >"$CTL"
	sleep 1
	for h in "$H1" "$H2"; do
		t "$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
	done
}

echo "rate 4000000" >"$CTL"

# 1. A large file, cut in the middle.
mkdir -p "$TMP/a/big" "$TMP/da"
head -c 24000000 /dev/urandom >"$TMP/a/big/file"
run_pair "$TMP/a/big" "$TMP/da" 3
check "unplugged in the middle of a large file: send fails" test $RS -ne 0
check "recv fails" test $RR -ne 0
check "the sender says the cable or peer went away" \
	grep -Eiq 'unplug|vanish|gone|no such device|reset|closed|answer' \
	"$TMP/s.err"
check "a partial file and its journal are kept beside the target" \
	test -n "$(find "$TMP/da" -name '.tbs-*.state')"
check "no file carries the real name yet" test ! -e "$TMP/da/big/file"
replug
run_pair "$TMP/a/big" "$TMP/da"
is "the same commands again: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "the file arrived exactly" cmp -s "$TMP/a/big/file" "$TMP/da/big/file"
is "the file was resumed" "$(json "$TMP/s.json" files_resumed)" 1
resumed=$(json "$TMP/s.json" bytes_resumed)
sent=$(json "$TMP/s.json" bytes_data)
diag "second run: $resumed bytes kept from the first, $sent sent"
check "the verified part was not sent again" \
	test "$resumed" -gt 0 -a $((resumed + sent)) -eq 24000000
check "no temporary file is left" test -z "$(find "$TMP/da" -name '.tbs-*')"

# 2. Many small files, cut in the middle (after the receiver's first
# commit, which comes at the latest 2 s after a file was written).
mkdir -p "$TMP/b/many" "$TMP/db"
for i in $(seq 1 1200); do
	head -c 8000 /dev/urandom >"$TMP/b/many/f$i"
done
echo "rate 2000000" >"$CTL"
run_pair "$TMP/b/many" "$TMP/db" 3.5
check "unplugged in the middle of many small files: send fails" \
	test $RS -ne 0
before=$(find "$TMP/db/many" -name 'f*' | wc -l)
diag "$before files were in place after the cut"
check "some files were in place" test "$before" -gt 0
replug
run_pair "$TMP/b/many" "$TMP/db"
is "the same commands again: send exits 0" "$RS" 0
is "recv exits 0" "$RR" 0
check "every file arrived exactly" cmp_tree "$TMP/b" "$TMP/db"
present=$(json "$TMP/s.json" files_present)
sent=$(json "$TMP/s.json" bytes_data)
diag "second run: $present files found complete, $sent bytes sent"
check "the files in place were not sent again" \
	test "$present" -ge "$before" -a "$sent" -le $(((1200 - before) * 8000))
# 3. The receiver killed (as by a crash) in the middle of a large file:
# its journal, written every 5 s, lets the next run continue.
echo "rate 4000000" >"$CTL"
mkdir -p "$TMP/c/big" "$TMP/dc"
head -c 40000000 /dev/urandom >"$TMP/c/big/file"
"$TBSTREAM" --sysroot "$H2" recv -q "$TMP/dc" 2>/dev/null &
k=$!
sleep 0.5
ts "$H1" send -q "$TMP/c/big" 2>"$TMP/s.err" &
s=$!
sleep 7
kill -9 $k
wait $k 2>/dev/null
wait $s
check "the receiver killed: send fails" test $? -ne 0
sed 's/^/# send: /' "$TMP/s.err"
check "a journal was left beside the partial file" \
	test -n "$(find "$TMP/dc" -name '.tbs-*.state')"
replug
run_pair "$TMP/c/big" "$TMP/dc"
is "the same commands again: send exits 0" "$RS" 0
check "the file arrived exactly" cmp -s "$TMP/c/big/file" "$TMP/dc/big/file"
resumed=$(json "$TMP/s.json" bytes_resumed)
diag "second run: $resumed bytes kept from the killed run"
check "the part the journal vouched for was not sent again" \
	test "$resumed" -gt 0
echo "rate 0" >"$CTL"
done_testing
