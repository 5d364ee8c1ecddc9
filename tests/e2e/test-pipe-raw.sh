#!/bin/bash
# tbstream pipe --raw against dd and cat on the other host, both ways, and
# an unplug in the middle of a transfer.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start
head -c 3000000 /dev/urandom >"$TMP/data"
cfg_snap

# host1 receives with pipe --raw; host2 sends with dd.
ts "$H1" pipe --raw </dev/null >"$TMP/got1" 2>"$TMP/p1.err" &
p1=$!
dev2=$(ts "$H2" up pipe)
check "host2 has a device for the pipe" test -e "$dev2"
check "host1's pipe opened its end" wait_open "$H1" pipe
check "dd sends to the raw device" t dd if="$TMP/data" of="$dev2" bs=1M \
	conv=notrunc status=none
wait $p1
st=$?
sed 's/^/# /' "$TMP/p1.err"
check "pipe --raw ended with the sender's close" test $st -eq 0
same "$TMP/data" "$TMP/got1" "pipe --raw received dd's bytes exactly"
check "host1 took down the stream it brought up" \
	test "$empty1" = "$(cfg "$H1")"
ts "$H2" down pipe

# up_both NAME: the stream NAME up on both hosts.
up_both() {
	ts "$H1" up "$1" >/dev/null &
	ts "$H2" up "$1" >/dev/null
	wait $!
}

# host2 receives with cat; host1 sends with pipe --raw --send-only.  Raw
# bytes need the receiver open first.
check "stream up on both hosts" up_both back
dev2=$(ts "$H2" up back)
t cat "$dev2" >"$TMP/got2" &
c2=$!
check "cat has the device open" wait_open "$H2" back
status 0 "pipe --raw --send-only sends standard input" \
	ts "$H1" pipe back --raw --send-only <"$TMP/data"
wait $c2
same "$TMP/data" "$TMP/got2" "cat on host2 received it exactly"
ts "$H1" down back
ts "$H2" down back

# Unplug in the middle: the pipe fails and says so.
check "stream up on both hosts" up_both cut
t "$TBSTREAM" --sysroot "$H2" pipe cut --raw --receive-only \
	>"$TMP/got3" 2>/dev/null &
r=$!
check "receiver open" wait_open "$H2" cut
echo "rate 2000000" >"$MNT/control"
head -c 20000000 /dev/zero >"$TMP/big"
ts "$H1" pipe cut --raw --send-only <"$TMP/big" 2>"$TMP/cut.err" &
s=$!
sleep 1
echo unplug >"$MNT/control"
wait $s
st=$?
sed 's/^/# /' "$TMP/cut.err"
check "sender fails after the unplug" test $st -ne 0
check "and says the cable was unplugged" grep -q unplugged "$TMP/cut.err"
wait $r
echo plug >"$MNT/control"
echo "rate 0" >"$MNT/control"
done_testing
