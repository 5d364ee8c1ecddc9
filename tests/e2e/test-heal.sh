#!/bin/bash
# Self-healing: streams that killed processes left behind never make the
# next transfer fail.  Stale streams as a kill -9 leaves them (made by hand
# here, so that each case is exact), then real kill -9 of either side in
# the middle of a transfer and during the bring-up; each time the next
# transfer, under the same or another name and in either order, succeeds
# on its first try.  Streams that the peer still has, and streams a
# process holds, are left alone.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
roles
head -c 300000 /dev/urandom >"$TMP/d1"
head -c 200000 /dev/urandom >"$TMP/d2"

# normal NAME FIRST SECOND: a verified pipe both ways, FIRST started
# first; ok when both exit 0 with exact data.
normal() {
	local name=$1 first=$2 second=$3 a b
	ts "$first" pipe "$name" <"$TMP/d1" >"$TMP/o1" 2>"$TMP/e1" &
	a=$!
	sleep 0.3
	ts "$second" pipe "$name" <"$TMP/d2" >"$TMP/o2" 2>"$TMP/e2"
	b=$?
	wait $a
	a=$?
	sed 's/^/# first: /' "$TMP/e1"
	sed 's/^/# second: /' "$TMP/e2"
	[ $a -eq 0 ] && [ $b -eq 0 ] && cmp -s "$TMP/d1" "$TMP/o2" &&
		cmp -s "$TMP/d2" "$TMP/o1"
}

# stale HOST NAME IN OUT: a stream as a killed process leaves it.
stale() {
	local d
	d=$(ls -d "$1"/sys/kernel/config/thunderbolt/stream)/$(svc_of "$1")
	mkdir -p "$d/$2" && echo "$3" >"$d/$2/in_hopid" &&
		echo "$4" >"$d/$2/out_hopid"
}

# svc_of HOST: the ConfigFS service directory towards the peer.
svc_of() {
	if [ "$1" = "$H1" ]; then echo 0-503.0; else echo 0-1.0; fi
}

there() {
	test -d "$1/sys/kernel/config/thunderbolt/stream/$(svc_of "$1")/$2"
}

absent() {
	! there "$@"
}

clean_all() {
	local h
	for h in "$H1" "$H2"; do
		"$TBSTREAM" --sysroot "$h" down --all --force >/dev/null 2>&1
	done
}

# 1. On the follower, a stream the allocator no longer has holds the
# HopIDs the allocator chooses next (9/9): healed, removed.
stale "$FOLLOW" old 9 9
check "follower's stale stream holding 9/9: the next transfer succeeds" \
	normal new "$ALLOC" "$FOLLOW"
check "and the stale stream is gone" absent "$FOLLOW" old
clean_all

# 2. The same name, as a killed run leaves it on the follower when the
# allocator took its side down: the allocator takes its HopIDs again.
stale "$FOLLOW" same 12 13
check "follower's stale stream of the same name: the transfer succeeds" \
	normal same "$FOLLOW" "$ALLOC"
is "and it was reused, with its HopIDs" \
	"$(attr "$FOLLOW" same in_hopid)/$(attr "$FOLLOW" same out_hopid)" 12/13
clean_all

# 3. A stream both hosts still have and nobody uses is kept (HopIDs and
# tuning) while the follower heals around it.
up_pair "$ALLOC" "$FOLLOW" keep --ring-size 512
k_in=$(attr "$FOLLOW" keep in_hopid)
stale "$FOLLOW" gone 10 10
check "a stale stream beside one the peer has: the transfer succeeds" \
	normal other "$ALLOC" "$FOLLOW"
check "the stale one is gone" absent "$FOLLOW" gone
is "the one the peer has stays, with its HopIDs" \
	"$(attr "$FOLLOW" keep in_hopid)" "$k_in"
is "and its ring size" "$(attr "$FOLLOW" keep ring_size)" 512
clean_all

# 4. A stale stream on the allocator, advertised to the follower: the
# next transfer under the same name reuses it, under another name works
# beside it.
stale "$ALLOC" pa 9 9
check "allocator's stale stream: another name succeeds" \
	normal pb "$FOLLOW" "$ALLOC"
check "allocator's stale stream: the same name succeeds" \
	normal pa "$FOLLOW" "$ALLOC"
clean_all

# 5. kill -9 in the middle of a transfer, of either side; the survivor
# fails by itself; then the next transfers succeed at once.
echo "rate 1000000" >"$CTL"
head -c 8000000 /dev/urandom >"$TMP/big"
for victim in "$FOLLOW" "$ALLOC"; do
	other=$H1
	[ "$victim" = "$H1" ] && other=$H2
	role=follower
	[ "$victim" = "$ALLOC" ] && role=allocator
	"$TBSTREAM" --sysroot "$victim" pipe k9 <"$TMP/big" >/dev/null \
		2>/dev/null &
	v=$!
	ts "$other" pipe k9 <"$TMP/big" >/dev/null 2>"$TMP/es" &
	s=$!
	check "$role: both open" wait_open "$victim" k9
	sleep 1
	kill -9 $v
	wait $v 2>/dev/null
	wait $s
	check "$role killed: the survivor fails by itself" test $? -ne 0
	echo "rate 0" >"$CTL"
	check "$role killed: another name, allocator first, succeeds" \
		normal n1 "$ALLOC" "$FOLLOW"
	check "$role killed: the same name, follower first, succeeds" \
		normal k9 "$FOLLOW" "$ALLOC"
	echo "rate 1000000" >"$CTL"
done
echo "rate 0" >"$CTL"
clean_all

# 6. kill -9 of the follower while it waits for the advertisement.
"$TBSTREAM" --sysroot "$FOLLOW" pipe early </dev/null >/dev/null 2>&1 &
v=$!
check "follower bringing 'early' up" wait_for 10 there "$FOLLOW" early
kill -9 $v
wait $v 2>/dev/null
check "killed during bring-up: the same name succeeds" \
	normal early "$ALLOC" "$FOLLOW"
clean_all

done_testing
