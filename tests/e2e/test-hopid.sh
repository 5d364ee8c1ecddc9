#!/bin/bash
# HopIDs run out: 9 and up first, 8 only as the last resort, then a clear
# "no free HopID".
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --max-hopid 10
TMP=$SIM_DIR/work
mkdir "$TMP"
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
status 5 "s4: no HopID left, exit 5" ts "$ALLOC" up s4 --timeout 5
has_msg "and says so" "no free HopID"
check "s4 was not left behind" test ! -e \
	"$(ls -d "$ALLOC"/sys/kernel/config/thunderbolt/stream/*/)s4"
done_testing
