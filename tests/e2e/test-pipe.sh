#!/bin/bash
# tbstream pipe (verified) on two simulated hosts: data both ways at once
# in either order, one way only, and faults (corruption, loss, stall,
# unplug, a killed peer, a peer that never comes).  Every run ends with
# exit 0 and byte-exact data, or a non-zero exit and a message: never
# exit 0 with wrong data.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
roles
cfg_snap
head -c 4000000 /dev/urandom >"$TMP/d1"
head -c 3000000 /dev/urandom >"$TMP/d2"

# duplex FIRST SECOND DELAY [OPTS]: FIRST sends d1, SECOND d2, at once.
duplex() {
	local first=$1 second=$2 delay=$3 a b
	shift 3
	ts "$first" pipe "$@" <"$TMP/d1" >"$TMP/o1" 2>"$TMP/e1" &
	a=$!
	sleep "$delay"
	ts "$second" pipe "$@" <"$TMP/d2" >"$TMP/o2" 2>"$TMP/e2"
	b=$?
	wait $a
	a=$?
	sed 's/^/# first: /' "$TMP/e1"
	sed 's/^/# second: /' "$TMP/e2"
	RA=$a RB=$b
}

# verdict DESC: exit 0 with exact data both ways, or non-zero with a
# message on each side that failed.
verdict() {
	if [ $RA -eq 0 ] && [ $RB -eq 0 ]; then
		if cmp -s "$TMP/d1" "$TMP/o2" && cmp -s "$TMP/d2" "$TMP/o1"
		then
			ok "$1: exact data both ways"
		else
			not_ok "$1: exit 0 with wrong data"
		fi
	elif { [ $RA -eq 0 ] || [ -s "$TMP/e1" ]; } &&
		{ [ $RB -eq 0 ] || [ -s "$TMP/e2" ]; }; then
		ok "$1: failed with a message (exit $RA, $RB)"
	else
		not_ok "$1: failed without a message (exit $RA, $RB)"
	fi
}

exact() {
	[ $RA -eq 0 ] && [ $RB -eq 0 ] && cmp -s "$TMP/d1" "$TMP/o2" &&
		cmp -s "$TMP/d2" "$TMP/o1"
}

duplex "$H1" "$H2" 1
check "both ways at once, host1 first: exit 0, exact data" exact
cfg_same
duplex "$H2" "$H1" 2 p2
check "both ways at once, host2 first 2 s ahead: exact data" exact
duplex "$ALLOC" "$FOLLOW" 0 p3
check "allocator and follower at the same moment: exact data" exact

# One way: the other side's standard input is empty.  The receiver is
# the allocator, so that it opens its end without waiting for the sender.
ts "$ALLOC" pipe one </dev/null >"$TMP/o2" 2>"$TMP/e2" &
r=$!
check "the receiver has the stream open" wait_open "$ALLOC" one
status 5 "a second pipe on the same stream is refused" \
	ts "$ALLOC" pipe one --timeout 2 </dev/null
has_msg "and names the process that has it" "in use by process [0-9]+"
status 0 "one way: the sender exits 0" ts "$FOLLOW" pipe one <"$TMP/d1"
wait $r
check "the receiver exits 0" test $? -eq 0
same "$TMP/d1" "$TMP/o2" "the receiver got the bytes exactly"

# The receiver cannot write its output: both sides fail and say why.
ts "$H2" pipe full </dev/null >/dev/full 2>"$TMP/e2" &
r=$!
status 1 "the sender fails when the receiver's output is full" \
	ts "$H1" pipe full <"$TMP/d1"
has_msg "and says what happened on the other host" \
	"No space left on device.*other host|other host.*No space left"
wait $r
check "the receiver fails too" test $? -eq 1
check "and says its output is full" grep -q "No space left" "$TMP/e2"

# Faults that the protocol repairs or reports.
for f in "corrupt host2 3" "corrupt host1 5" "drop host2 2" "drop host1 4" \
	"stall host2 1500"; do
	echo "$f" >"$CTL"
	duplex "$H1" "$H2" 0.5 flt
	verdict "$f"
	set -- $f
	check "the simulator applied '$f'" \
		grep -Eq "^host name=$2 .*corrupt_pending=0 drop_pending=0" "$CTL"
done

# Unplug in the middle of a transfer.
echo "rate 4000000" >"$CTL"
head -c 12000000 /dev/urandom >"$TMP/d1"
(sleep 1.5; echo unplug >"$CTL") &
duplex "$H1" "$H2" 0.3 cut
verdict "unplug in the middle"
check "an unplug does not end with exit 0" test $RA -ne 0 -o $RB -ne 0
check "the message says what happened" \
	grep -Eiq 'unplug|vanish|gone|no such device|reset|closed' \
	"$TMP/e1" "$TMP/e2"
wait
echo plug >"$CTL"
sleep 1
for h in "$H1" "$H2"; do
	"$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
done

# A killed peer (killed within 2 s, so it needs no time limit of its own).
"$TBSTREAM" --sysroot "$H2" pipe kil </dev/null >"$TMP/o2" 2>/dev/null &
k=$!
sleep 0.5
ts "$H1" pipe kil <"$TMP/d1" >/dev/null 2>"$TMP/e1" &
s=$!
sleep 2
kill -9 $k
wait $k 2>/dev/null
wait $s
st=$?
sed 's/^/# /' "$TMP/e1"
check "the sender fails when the peer is killed" test $st -ne 0
check "and says so" test -s "$TMP/e1"
echo "rate 0" >"$CTL"
for h in "$H1" "$H2"; do
	"$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
done

# Interrupted: the stream the command set up is taken down again.
# Standard input stays open (20 s) so that neither pipe ends by itself.
"$TBSTREAM" --sysroot "$H1" pipe sig < <(exec sleep 20 2>/dev/null) >/dev/null 2>"$TMP/e1" &
p=$!
"$TBSTREAM" --sysroot "$H2" pipe sig < <(exec sleep 20 2>/dev/null) >/dev/null 2>/dev/null &
q=$!
check "pipe sig is open" wait_open "$H1" sig
kill -INT $p
wait $p
st=$?
kill -TERM $q
wait $q
check "SIGINT ends the pipe with status 130" test $st -eq 130
check "and it says so" grep -q "interrupted" "$TMP/e1"
cfg_same

# A peer that never comes, on either role.
status 4 "allocator alone: exit 4" ts "$ALLOC" pipe lone --timeout 3 \
	</dev/null
has_msg "and says the peer did not answer" "peer"
status 4 "follower alone: exit 4" ts "$FOLLOW" pipe lone --timeout 3 \
	</dev/null
has_msg "and says to start it on the other host" "other host"
cfg_same

# A controller whose link wedges when frames go to a peer not yet open:
# the handshake sends only a few small frames until the peer answers.
sim_start --wedge --adv-delay 200
head -c 3000000 /dev/urandom >"$TMP/d1"
head -c 2000000 /dev/urandom >"$TMP/d2"
duplex "$H1" "$H2" 3 wdg
check "a peer 3 s late does not wedge the link: exact data" exact
check "the simulator saw no wedge" grep -q "wedged=0" "$CTL"
done_testing
