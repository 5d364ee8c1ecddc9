#!/bin/bash
# Two processes on one host bring up the same stream at the same moment
# while the peer waits: one wins and moves the data, the other exits 5
# (busy) with a message that says so, never 1 or 4, and never removes the
# winner's stream.  Many rounds, on the allocating and on the following
# host, the second process started at once or a little later (during the
# first one's bring-up, between its bring-up and its open, after its
# open).  The winner cannot end before the loser did: its standard input
# stays open until then, so no round depends on timing for its verdict.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

ROUNDS=${RACE_ROUNDS:-12}
sim_start --adv-delay 100 --node-delay 20
roles
mkfifo "$TMP/in-a" "$TMP/in-b"
jitters=(0 0 0.02 0.05 0.1 0.2 0.3 0.5)

# sender LETTER: 'tbstream pipe race' on $S, fed from fifo in-LETTER,
# whose only writer is the test's descriptor 3 or 4 (closed for senders).
sender() {
	ts "$S" pipe race <"$TMP/in-$1" >/dev/null 2>"$TMP/$1.err"
}

# round N: one race on $S, the peer $P waiting; sets R_OK, R_WHY.
round() {
	local j=${jitters[$(($1 % ${#jitters[@]}))]} pa pb pr first ra rb rr
	ts "$P" pipe race </dev/null >"$TMP/out" 2>"$TMP/peer.err" &
	pr=$!
	exec 3<>"$TMP/in-a" 4<>"$TMP/in-b"
	sender a 3>&- 4>&- &
	pa=$!
	sleep "$j"
	sender b 3>&- 4>&- &
	pb=$!
	# The first to end is the loser (or a failure): only then may the
	# winner see the end of its input.
	wait -n -p first $pa $pb
	echo a >&3
	echo b >&4
	exec 3>&- 4>&-
	wait $pa
	ra=$?
	wait $pb
	rb=$?
	wait $pr
	rr=$?
	R_OK=false
	R_WHY="exit $ra and $rb (second $j s later), the peer $rr"
	if [ $ra -eq 0 ] && [ $rb -eq 5 ]; then
		winner=a loser=b
	elif [ $ra -eq 5 ] && [ $rb -eq 0 ]; then
		winner=b loser=a
	else
		return
	fi
	R_WHY="$R_WHY; the peer got '$(head -c 20 "$TMP/out")'"
	[ $rr -eq 0 ] && [ "$(cat "$TMP/out")" = $winner ] || return
	R_WHY="the loser's message: $(tail -1 "$TMP/$loser.err")"
	grep -Eq "busy|another process|in use by process" "$TMP/$loser.err" ||
		return
	R_OK=true
}

# race SENDER PEER DESC: $ROUNDS rounds; the stream removed in between.
race() {
	local i bad=0
	S=$1 P=$2
	for i in $(seq "$ROUNDS"); do
		round "$i"
		if ! $R_OK; then
			bad=$((bad + 1))
			diag "round $i: $R_WHY"
			sed 's/^/#   /' "$TMP/a.err" "$TMP/b.err" "$TMP/peer.err"
		fi
		t "$TBSTREAM" --sysroot "$S" down race >/dev/null 2>&1
		t "$TBSTREAM" --sysroot "$P" down race >/dev/null 2>&1
	done
	is "$3: one wins, the other exits 5 ($ROUNDS rounds)" "$bad" 0
}

race "$ALLOC" "$FOLLOW" "two senders on the allocating host"
race "$FOLLOW" "$ALLOC" "two senders on the following host"
check "no stream left on host1" test -z "$(ls "$C1"/*/ 2>/dev/null)"
check "no stream left on host2" test -z "$(ls "$C2"/*/ 2>/dev/null)"
done_testing
