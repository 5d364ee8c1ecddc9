#!/bin/bash
# tbstream bench on two simulated hosts: both orders, the JSON figures
# (structure and sanity, never timing), the table, the profile options,
# the leader's plan, usage errors, and a peer killed in the middle.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
cfg_snap
SMALL="--sizes 64,4k,64k --rounds 30 --bytes 256k"

# both FIRST SECOND [OPTS...]: bench on FIRST, then on SECOND, at once.
both() {
	local first=$1 second=$2 a
	shift 2
	ts "$first" bench "$@" >"$TMP/o1" 2>"$TMP/e1" &
	a=$!
	sleep 0.5
	ts "$second" bench "$@" >"$TMP/o2" 2>"$TMP/e2"
	RB=$?
	wait $a
	RA=$?
	sed 's/^/# first: /' "$TMP/e1"
	sed 's/^/# second: /' "$TMP/e2"
}

# same_figures A B: both sides print the leader's figures, one leads.
same_figures() {
	python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert sorted((a["role"], b["role"])) == ["follower", "leader"]
assert a["results"] == b["results"]
PY
}

both "$H1" "$H2" $SMALL --json
is "host1 first: host1 exits 0" "$RA" 0
is "host2 exits 0" "$RB" 0
check "host1's JSON: a raw and a session result per size, all sane" \
	bench_sane "$TMP/o1" 64 4096 65536
check "host2's JSON: the same" bench_sane "$TMP/o2" 64 4096 65536
check "one leads, one follows, both print the same figures" \
	same_figures "$TMP/o1" "$TMP/o2"
cfg_same

both "$H2" "$H1" $SMALL --json
is "host2 first: host2 exits 0" "$RA" 0
is "host1 exits 0" "$RB" 0
check "host2's JSON is sane" bench_sane "$TMP/o1" 64 4096 65536
check "host1's JSON is sane" bench_sane "$TMP/o2" 64 4096 65536
check "and the figures are the same on both" \
	same_figures "$TMP/o1" "$TMP/o2"

# The table, and 1 MiB messages (larger than a record, so a message of
# several records each way).
both "$H1" "$H2" --sizes 1m --rounds 20 --bytes 2m
is "a 1 MiB bench: both exit 0" "$RA$RB" 00
check "the table has a round-trip line for 1 MiB" \
	grep -Eq '^ +1 MiB( +[0-9]+\.[0-9]){6} +[0-9]+\.[0-9]{2}$' "$TMP/o1"
check "and a throughput line" \
	grep -Eq '^ +1 MiB( +[0-9]+\.[0-9]){4}$' "$TMP/o1"
check "the table names raw device and session" \
	grep -q 'raw device.*session' "$TMP/o2"

# The stream's profile: ring size and throttling on both hosts.
both "$H1" "$H2" --sizes 64 --rounds 20 --bytes 4k --ring-size 64 \
	--throttling 0 --keep --json
is "--ring-size 64 --throttling 0: both exit 0" "$RA$RB" 00
is "host1's ring size is 64" "$(attr "$H1" bench ring_size)" 64
is "host2's ring size is 64" "$(attr "$H2" bench ring_size)" 64
is "host1's throttling is off" "$(attr "$H1" bench throttling)" 0
is "and the JSON says so" \
	"$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ring_size"], j["throttling"])' "$TMP/o2")" \
	"64 0"
ts "$H1" down bench
ts "$H2" down bench
both "$H2" "$H1" --sizes 64 --rounds 20 --bytes 4k --profile latency --json
is "--profile latency: both exit 0" "$RA$RB" 00
is "the latency profile's ring and throttling" \
	"$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ring_size"], j["throttling"])' "$TMP/o1")" \
	"128 0"

# The leader's plan applies; the follower says its own does not.
roles
ts "$ALLOC" bench --sizes 4k --rounds 20 --bytes 8k --json >"$TMP/o1" \
	2>"$TMP/e1" &
a=$!
ts "$FOLLOW" bench --sizes 64,128 --rounds 25 --json >"$TMP/o2" 2>"$TMP/e2"
RB=$?
wait $a
RA=$?
is "different plans: both exit 0" "$RA$RB" 00
check "the leader's sizes were measured on both" \
	bench_sane "$TMP/o2" 4096
check "the follower says the peer's plan applies" \
	grep -q "the peer leads" "$TMP/e2"

# Usage errors, before anything is set up.
status() {
	local want=$1 desc=$2
	shift 2
	"$@" >/dev/null 2>"$TMP/err"
	is "$desc" "$?" "$want"
}
status 2 "--sizes 0: exit 2" ts "$H1" bench --sizes 0
status 2 "a size above 16 MiB: exit 2" ts "$H1" bench --sizes 17m
status 2 "nine sizes: exit 2" ts "$H1" bench --sizes 1,2,3,4,5,6,7,8,9
status 2 "--rounds x: exit 2" ts "$H1" bench --rounds x
status 2 "two stream names: exit 2" ts "$H1" bench a b
check "bench --help exits 0 and names --json" \
	sh -c "'$TBSTREAM' bench --help | grep -q -- --json"

# A peer killed in the middle: the other side fails with a message, in
# time, and takes its stream down.
ts "$H1" bench --sizes 4k --rounds 200000 >/dev/null 2>"$TMP/e1" &
a=$!
# (not through ts: its time limit would stand between $! and tbstream)
"$TBSTREAM" --sysroot "$H2" bench --sizes 4k --rounds 200000 >/dev/null \
	2>"$TMP/e2" &
b=$!
sleep 3
kill -KILL $b
wait $b
wait $a
RA=$?
sed 's/^/# survivor: /' "$TMP/e1"
check "peer killed: the survivor exits non-zero" test "$RA" -ne 0
check "with a message" test -s "$TMP/e1"
check "host1's ConfigFS as before" test "$empty1" = "$(cfg "$H1")"
ts "$H2" down bench >/dev/null 2>&1
done_testing
