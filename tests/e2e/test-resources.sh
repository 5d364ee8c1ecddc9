#!/bin/bash
# Scarce resources and other topologies: HopIDs run out (9 and up first,
# 8 only as the last resort, then those of streams the peer does not have
# and nobody uses, then a clear "no free HopID"); DMA rings run
# out; the stream service is not service 0 when the peer also offers IP
# over Thunderbolt.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --max-hopid 10
roles
for s in s1 s2; do
	ts "$FOLLOW" up $s --timeout 10 >/dev/null 2>&1 &
	status 0 "allocator sets up $s" ts "$ALLOC" up $s --timeout 10 -j
	wait
done
check "s1 took 9" test "$(attr "$ALLOC" s1 in_hopid)" = 9
check "s2 took 10" test "$(attr "$ALLOC" s2 in_hopid)" = 10
status 0 "s3 falls back to HopID 8" ts "$ALLOC" up s3 --timeout 5 -j
check "s3 took 8" test "$(attr "$ALLOC" s3 in_hopid)" = 8
# The peer never took s3 over and no process uses it: its HopIDs are
# taken back for s4; s1 and s2, which the peer has, stay.
status 0 "s4 takes back the HopIDs of s3, which the peer lacks" \
	ts "$ALLOC" up s4 --timeout 5 -j
check "s4 took 8" test "$(attr "$ALLOC" s4 in_hopid)" = 8
check "s3 is gone" test ! -e \
	"$(ls -d "$ALLOC"/sys/kernel/config/thunderbolt/stream/*/)s3"
check "s1 and s2 stay" test "$(attr "$ALLOC" s1 in_hopid)/$(attr \
	"$ALLOC" s2 in_hopid)" = 9/10
# With s4 open by a process, nothing is free.
(exec 3<"$(ts "$ALLOC" up s4)"; sleep 30) &
holder=$!
check "s4 is open" wait_open "$ALLOC" s4
status 5 "s5: no HopID left, exit 5" ts "$ALLOC" up s5 --timeout 5
has_msg "and says so" "no free HopID"
check "s5 was not left behind" test ! -e \
	"$(ls -d "$ALLOC"/sys/kernel/config/thunderbolt/stream/*/)s5"
kill $holder
wait $holder 2>/dev/null

# DMA rings: one kept for control, so --rings 2 leaves one for streams.
sim_start --rings 2
roles
for s in r1 r2; do
	up_pair "$FOLLOW" "$ALLOC" $s
done
(exec 3<"$(ts "$ALLOC" up r1)"; sleep 30) &
holder=$!
check "r1 is open" wait_open "$ALLOC" r1
status 5 "opening r2 without a free DMA ring: exit 5" \
	ts "$ALLOC" pipe r2 --raw --receive-only --timeout 2
has_msg "and says so" "no free DMA ring"
kill $holder
wait $holder 2>/dev/null

# The peer offers network as service 0 and the stream service as 1.
sim_start --network
ts "$H1" up net >/dev/null 2>&1 &
status 0 "up with the stream service at index 1" ts "$H2" up net
wait
check "host1 configured service 0-503.1" \
	test -d "$H1/sys/kernel/config/thunderbolt/stream/0-503.1/net"
check "host2 configured service 0-1.1" \
	test -d "$H2/sys/kernel/config/thunderbolt/stream/0-1.1/net"
"$TBSTREAM" --sysroot "$H1" list --json >"$TMP/j"
check "list says the peer also offers IP over Thunderbolt" python3 -c '
import json, sys; j = json.load(open(sys.argv[1]))
assert j["peers"][0]["network"] is True' "$TMP/j"

# Three hosts in a chain: host2 has two peers and must be told which.
sim_start --hosts 3
H3=$MNT/host3
status 2 "up with two peers and no --peer: exit 2" ts "$H2" up x --timeout 2
has_msg "and says to choose with --peer" "--peer"
ts "$H3" up x --timeout 20 >/dev/null 2>&1 &
status 0 "up --peer by device name" ts "$H2" up x --peer host3 --timeout 20
wait
ts "$H1" up x --timeout 20 >/dev/null 2>&1 &
uid1=$(cat "$H1/sys/bus/thunderbolt/devices/0-0/unique_id")
status 0 "up --peer by unique id, same name towards another peer" \
	ts "$H2" up x --peer "$uid1" --timeout 20
wait
"$TBSTREAM" --sysroot "$H2" list --json >"$TMP/j"
check "list shows both peers with a stream x each" python3 -c '
import json, sys; j = json.load(open(sys.argv[1]))
assert len(j["peers"]) == 2
assert all([s["name"] for s in p["streams"]] == ["x"] for p in j["peers"])
' "$TMP/j"
status 2 "down x is ambiguous without --peer" ts "$H2" down x
status 0 "down x --peer host3" ts "$H2" down x --peer host3
status 0 "then down x is the one left" ts "$H2" down x
done_testing
