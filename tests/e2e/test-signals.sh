#!/bin/bash
# Every command that uses a stream takes down what it brought up when
# SIGINT, SIGTERM or SIGHUP ends it, and exits with 128 + the signal:
# while it brings the stream up (the follower waiting for the peer's
# advertisement), while it waits for the peer in the handshake (the
# allocator), and in the middle of a transfer, where the peer then fails
# with a message and takes its stream down too.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
mkdir "$TMP/in"
roles
cfg_snap
head -c 6000000 /dev/urandom >"$TMP/data"

# run_bg HOST NAME KIND ERR: starts tbstream (no time limit: every case
# ends it) for job KIND on stream NAME in the background, its messages in
# ERR; sets PID.
run_bg() {
	local host=$1 name=$2 kind=$3 err=$4
	case $kind in
	pipe) exec "$TBSTREAM" --sysroot "$host" pipe "$name" \
		< <(exec sleep 60 2>/dev/null) >/dev/null ;;
	send) exec "$TBSTREAM" --sysroot "$host" send -q -s "$name" "$TMP/data" ;;
	recv) exec "$TBSTREAM" --sysroot "$host" recv -q -s "$name" --overwrite \
		"$TMP/in" ;;
	isend) exec "$TBSTREAM" --sysroot "$host" image send -q -s "$name" \
		"$TMP/data" ;;
	irecv) exec "$TBSTREAM" --sysroot "$host" image recv -q -s "$name" -f \
		"$TMP/in/img" ;;
	up) exec "$TBSTREAM" --sysroot "$host" up "$name" >/dev/null ;;
	esac 2>"$err" &
	PID=$!
}

# stream_there HOST NAME: the stream's directory exists on HOST.
stream_there() {
	ls -d "$1"/sys/kernel/config/thunderbolt/stream/*/"$2" >/dev/null 2>&1
}

# ended PID SIG DESC: PID exits with 128 + SIG's number within 15 s and
# says it was interrupted.
ended() {
	local pid=$1 sig=$2 desc=$3 n
	n=$(kill -l "$sig")
	kill -s "$sig" "$pid"
	t_wait "$pid"
	is "$desc: SIG$sig gives exit $((128 + n))" "$ST" $((128 + n))
}

# t_wait PID: sets ST to its exit status, or to 999 after 15 s (then it is
# killed).
t_wait() {
	local i
	for i in $(seq 150); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1"
		wait "$1"
		ST=999
		return
	fi
	wait "$1"
	ST=$?
}

clean() {
	cfg_same "$1"
}

# 1. The follower alone, while it waits for the advertisement.
sigs=(INT TERM HUP)
i=0
for kind in up pipe send recv isend irecv; do
	sig=${sigs[$((i % 3))]}
	i=$((i + 1))
	name=f$kind
	run_bg "$FOLLOW" "$name" "$kind" "$TMP/err.$name"
	check "follower $kind: bringing the stream up" \
		wait_for 10 stream_there "$FOLLOW" "$name"
	sleep 0.3
	ended $PID "$sig" "follower $kind, bringing up"
	check "follower $kind: says it was interrupted" \
		grep -q interrupted "$TMP/err.$name"
	clean "follower $kind"
done

# 2. The allocator alone, in the handshake with a peer that never comes.
for kind in pipe send recv isend irecv; do
	sig=${sigs[$((i % 3))]}
	i=$((i + 1))
	name=a$kind
	run_bg "$ALLOC" "$name" "$kind" "$TMP/err.$name"
	check "allocator $kind: waiting for the peer" \
		wait_open "$ALLOC" "$name"
	ended $PID "$sig" "allocator $kind, waiting"
	check "allocator $kind: says the stream is down again" \
		grep -q "down again" "$TMP/err.$name"
	clean "allocator $kind"
done

# 3. In the middle of a transfer (the link slowed down so that it lasts);
# the interrupted side's peer fails with a message.
echo "rate 2000000" >"$CTL"
for pair in "send recv" "irecv isend" "pipe pipe"; do
	set -- $pair
	sig=${sigs[$((i % 3))]}
	i=$((i + 1))
	run_bg "$H1" "m$1" "$1" "$TMP/err.m$1"
	a=$PID
	if [ "$2" = pipe ]; then
		"$TBSTREAM" --sysroot "$H2" pipe "m$1" <"$TMP/data" \
			>/dev/null 2>"$TMP/err.peer" &
		PID=$!
	else
		run_bg "$H2" "m$1" "$2" "$TMP/err.peer"
	fi
	b=$PID
	check "$1 against $2: both open" wait_open "$H1" "m$1"
	sleep 1
	ended $a "$sig" "$1 against $2, mid-transfer"
	t_wait $b
	check "$1 against $2: the peer fails (exit $ST)" \
		test "$ST" -ne 0 -a "$ST" -ne 999
	sed 's/^/# peer: /' "$TMP/err.peer"
	clean "$1 against $2"
	rm -rf "$TMP/in"/*
done
echo "rate 0" >"$CTL"

done_testing
