#!/bin/bash
# The session's defences, end to end with real processes on two simulated
# hosts: a peer killed while this side still waits for standard input,
# retried commands toward a host where nothing runs on a link that wedges,
# and frames of an earlier run read first by a reopened end.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200 --wedge --stale
head -c 2000000 /dev/urandom >"$TMP/d1"
head -c 1000000 /dev/urandom >"$TMP/d2"

# The peer's direction ended and was confirmed; then the peer is killed
# while this side still waits for standard input that never ends (a
# terminal, a FIFO, tail -f).  It must fail with a message, not hang.
mkfifo "$TMP/fifo"
sleep 120 >"$TMP/fifo" &
holder=$!
"$TBSTREAM" --sysroot "$H2" pipe hang </dev/null >/dev/null 2>&1 &
k=$!
timeout -k 2 30 "$TBSTREAM" --sysroot "$H1" pipe hang <"$TMP/fifo" \
	>/dev/null 2>"$TMP/e1" &
p=$!
check "pipe hang is open on host1" wait_open "$H1" hang
sleep 1
kill -9 $k
wait $k 2>/dev/null
wait $p
st=$?
kill $holder 2>/dev/null
wait $holder 2>/dev/null
sed 's/^/# /' "$TMP/e1"
check "killed peer, stdin still open: exits on its own (status $st)" \
	test $st -ne 0 -a $st -ne 124 -a $st -ne 137
check "and says what happened" test -s "$TMP/e1"
for h in "$H1" "$H2"; do
	"$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
done

# Three retries toward a host where the stream is up but nothing runs:
# the HELLOs that went unanswered count across the retries, so the link
# (which wedges after 16 frames toward a closed end) stays usable.
up_pair "$H1" "$H2" wdg
for i in 1 2 3; do
	ts "$H1" pipe wdg --timeout 5 </dev/null >/dev/null 2>"$TMP/e1"
	diag "try $i: exit $?"
	sed 's/^/# /' "$TMP/e1"
done
check "three retries: the last one says it only listened" \
	grep -q "only listened" "$TMP/e1"
unopened=$(sim_stat host1 wdg unopened)
diag "frames sent toward the closed end: $unopened"
check "three retries sent at most 6 HELLOs and 3 CLOSEs toward it" \
	test "${unopened:-99}" -le 9
# both_ways DESC: pipe wdg on host2, then on host1; exact data both ways
both_ways() {
	local a b q
	ts "$H2" pipe wdg <"$TMP/d2" >"$TMP/o2" 2>"$TMP/e2" &
	q=$!
	sleep 0.5
	ts "$H1" pipe wdg <"$TMP/d1" >"$TMP/o1" 2>"$TMP/e1"
	a=$?
	wait $q
	b=$?
	sed 's/^/# /' "$TMP/e1" "$TMP/e2"
	if [ $a -eq 0 ] && [ $b -eq 0 ] && cmp -s "$TMP/d1" "$TMP/o2" &&
		cmp -s "$TMP/d2" "$TMP/o1"; then
		ok "$1"
	else
		not_ok "$1 (exit $a, $b)"
	fi
}
both_ways "then both hosts together: exact data both ways"
check "the simulator saw no wedge" grep -q "wedged=0" "$CTL"

# A reopened end first reads what an earlier run sent toward it while it
# was closed (here: the HELLOs of host1's earlier tries, kept by --stale):
# the session recognises them and talks to the live peer only.
check "frames of earlier runs were kept for host2" \
	test "$(sim_stat host1 wdg unopened)" -gt 0
ts "$H1" pipe wdg --timeout 3 </dev/null >/dev/null 2>/dev/null
both_ways "stale HELLOs read first: exact data both ways"
done_testing
