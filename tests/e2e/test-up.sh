#!/bin/bash
# tbstream up and down on two simulated hosts, each its own process: both
# orders, with delays, idempotence, clean removal, holders, and the
# failures a user meets (peer never comes, no HopID left).
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 300 --node-delay 100
roles
cfg_snap

# up_both NAME FIRST SECOND DELAY: FIRST runs, DELAY s later SECOND.
up_both() {
	ts "$2" up "$1" --timeout 20 >"$TMP/a.out" 2>"$TMP/a.err" &
	local pid=$!
	sleep "$4"
	ts "$3" up "$1" --timeout 20 >"$TMP/b.out" 2>"$TMP/b.err"
	local b=$?
	wait $pid
	local a=$?
	cat "$TMP/a.err" "$TMP/b.err" | sed 's/^/# /'
	[ $a -eq 0 ] && [ $b -eq 0 ]
}

# matched NAME: the HopIDs of NAME mirror each other and are set.
matched() {
	local i1 o1 i2 o2
	i1=$(attr "$H1" "$1" in_hopid) o1=$(attr "$H1" "$1" out_hopid)
	i2=$(attr "$H2" "$1" in_hopid) o2=$(attr "$H2" "$1" out_hopid)
	echo "# $1: host1 in $i1 out $o1, host2 in $i2 out $o2"
	[ "$i1" -gt 0 ] && [ "$o1" -gt 0 ] && [ "$i1" = "$o2" ] &&
		[ "$o1" = "$i2" ]
}

check "up: allocator first, follower 1 s later" up_both a1 "$ALLOC" "$FOLLOW" 1
check "HopIDs mirrored" matched a1
check "allocator took HopID 9, not 8" test "$(attr "$ALLOC" a1 in_hopid)" = 9
check "host1 printed its device" test -e "$(cat "$TMP/a.out")"
check "up: follower first, allocator 2 s later" up_both f1 "$FOLLOW" "$ALLOC" 2
check "HopIDs mirrored" matched f1
check "up: both at once" up_both both "$H1" "$H2" 0
check "HopIDs mirrored" matched both
check "up: host2 first" up_both h2 "$H2" "$H1" 1
check "HopIDs mirrored" matched h2

dev=$(attr "$H1" a1 index)
check "device path is the one index names" \
	test "$(ts "$H1" up a1)" = "$H1/dev/tbstream$dev"
before=$(cfg "$H1")
status 0 "up again succeeds" ts "$H1" up a1
check "and changes nothing" test "$before" = "$(cfg "$H1")"
ts "$H1" up a1 --json >"$TMP/j" 2>/dev/null
check "up --json says it was not created" python3 -c '
import json, sys; j = json.load(open(sys.argv[1])); assert not j["created"]
assert j["name"] == "a1"' "$TMP/j"

# Ring size and throttling, on both roles.
ts "$ALLOC" up tu --ring-size 1024 --throttling 0 >/dev/null 2>&1 &
ts "$FOLLOW" up tu --profile latency >/dev/null 2>&1
wait
check "allocator's ring size set" test "$(attr "$ALLOC" tu ring_size)" = 1024
check "allocator's throttling set" test "$(attr "$ALLOC" tu throttling)" = 0
check "follower's profile set" test "$(attr "$FOLLOW" tu throttling)" = 0
check "tuned stream matched" matched tu

# A holder stops down; --force does not care.
dev=$(ts "$H2" up a1)
(exec 3<"$dev"; sleep 30) &
holder=$!
sleep 0.5
status 5 "down refuses while the device is held" ts "$H2" down a1
has_msg "and names the holder" "process $holder|sleep"
check "list shows the holder" sh -c \
	"'$TBSTREAM' --sysroot '$H2' list | grep -q 'open by'"
kill $holder
wait $holder 2>/dev/null
status 0 "down once the holder is gone" ts "$H2" down a1
(exec 3<"$(ts "$H2" up a1)"; sleep 30) &
holder=$!
sleep 0.5
status 0 "down --force removes a held stream" ts "$H2" down a1 --force
kill $holder
wait $holder 2>/dev/null

status 0 "down --all on host1" ts "$H1" down --all
status 0 "down --all on host2" ts "$H2" down --all
cfg_same
status 3 "down of a stream that is gone: exit 3" ts "$H1" down a1

# The peer never comes: the follower times out and cleans up.
status 4 "follower alone times out" ts "$FOLLOW" up lone --timeout 3
has_msg "and says to run up on the other host" "tbstream up lone"
check "and leaves ConfigFS as it was" \
	test "$(cfg "$FOLLOW")" = "$( [ "$FOLLOW" = "$H1" ] && echo "$empty1" \
		|| echo "$empty2")"

# A stream left on the follower after the allocator took it down holds
# the HopIDs the allocator chooses next: the follower finds that the peer
# no longer has it, removes it and takes them.
check "stream up for the stale case" up_both old "$ALLOC" "$FOLLOW" 0
ts "$ALLOC" down old
ts "$ALLOC" up new --timeout 5 >/dev/null
status 0 "the follower heals: it takes HopIDs a stale stream held" \
	ts "$FOLLOW" up new --timeout 5
check "the stale stream is gone" test ! -e \
	"$(ls -d "$FOLLOW"/sys/kernel/config/thunderbolt/stream/*/)old"
check "HopIDs mirrored" matched new
# ... unless a process has it open: then it names it.
ts "$ALLOC" down new
fdev=$FOLLOW/dev/tbstream$(attr "$FOLLOW" new index)
(exec 3<"$fdev"; sleep 30) &
holder=$!
sleep 0.5
ts "$ALLOC" up n2 --timeout 5 >/dev/null
status 4 "a stale stream held by a process is not removed" \
	ts "$FOLLOW" up n2 --timeout 3
has_msg "and the follower names it" "'new' \\(9/9\\)"
kill $holder
wait $holder 2>/dev/null
ts "$ALLOC" down n2
ts "$FOLLOW" down new

status 2 "name longer than 8 bytes refused" ts "$H1" up ninechars
done_testing
