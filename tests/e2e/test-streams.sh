#!/bin/bash
# Several streams at once between the same two hosts, each with its own
# profile: a bulk transfer on one (throughput profile) while messages go
# over another (latency profile), in both orders of bring-up.  Every run
# ends with exact data, each stream with its own ring size, throttling
# and HopIDs, and the ConfigFS as before.  Timing is never a verdict:
# bench/bench-streams.sh measures the message latency under bulk load.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200
cfg_snap
MSG_ECHO=$TOP_BUILDDIR/examples/msg-echo
head -c 16000000 /dev/urandom >"$TMP/bulk"

# The bulk data: the file again and again, until told to stop (the
# sender), or without end (what the receiver's data must begin with).
until_stop() {
	while [ ! -e "$TMP/stop" ]; do cat "$TMP/bulk" || return; done
}
endless() {
	while :; do cat "$TMP/bulk" || return; done
}

# bulk_start FROM TO: FROM sends on stream 'bulk' at full rate, to TO,
# until bulk_end; TO compares what arrives as it arrives.
bulk_start() {
	rm -f "$TMP/stop"
	{
		ts "$2" pipe bulk --profile throughput </dev/null 2>"$TMP/rx.err"
		echo $? >"$TMP/rx.rc"
	} | cmp - <(endless) >"$TMP/cmp.out" 2>&1 &
	BULK_RX=$!
	{
		until_stop | ts "$1" pipe bulk --profile throughput >/dev/null \
			2>"$TMP/tx.err"
		echo $? >"$TMP/tx.rc"
	} &
	BULK_TX=$!
}

# bulk_end DESC: both bulk pipes exit 0, and what arrived is whole copies
# of the file, at least one, byte for byte.
bulk_end() {
	local n size
	touch "$TMP/stop"
	wait $BULK_TX
	wait $BULK_RX
	sed 's/^/# bulk: /' "$TMP/tx.err" "$TMP/rx.err" "$TMP/cmp.out"
	is "$1: the bulk pipes exit 0" "$(cat "$TMP/tx.rc" "$TMP/rx.rc" | tr -d '\n')" 00
	n=$(sed -n 's/.*EOF on - after byte \([0-9]*\).*/\1/p' "$TMP/cmp.out")
	size=$(stat -c %s "$TMP/bulk")
	check "$1: whole copies of the file arrived, exactly" \
		test -n "$n" -a "${n:-0}" -gt 0 -a $((${n:-1} % size)) -eq 0
	diag "$1: $((${n:-0} / 1000000)) MB of bulk data"
}

# profiles: while both run, each stream has its own profile on both hosts.
profiles() {
	local h
	for h in "$H1" "$H2"; do
		[ "$(attr "$h" bulk ring_size)" = 4096 ] &&
			[ "$(attr "$h" bulk throttling)" = 16384 ] &&
			[ "$(attr "$h" ctl ring_size)" = 128 ] &&
			[ "$(attr "$h" ctl throttling)" = 0 ] || return 1
	done
}

# bench_profile JSON...: each bench report names ring 128, throttling 0
bench_profile() {
	python3 -c 'import json, sys
for f in sys.argv[1:]:
    j = json.load(open(f))
    if (j["ring_size"], j["throttling"]) != (128, 0):
        sys.exit(1)' "$@"
}

bulk_profile() {
	local h
	for h in "$H1" "$H2"; do
		[ "$(attr "$h" bulk ring_size)" = 4096 ] &&
			[ "$(attr "$h" bulk throttling)" = 16384 ] || return 1
	done
}

hops_differ() {
	[ "$(attr "$1" bulk in_hopid)" != "$(attr "$1" ctl in_hopid)" ] &&
		[ "$(attr "$1" bulk out_hopid)" != "$(attr "$1" ctl out_hopid)" ]
}

# 1. tbstream bench on stream 'ctl' while the bulk pipe runs.
bulk_start "$H2" "$H1"
wait_open "$H1" bulk && wait_open "$H2" bulk || bail "no bulk stream"
ts "$H1" bench ctl --profile latency --sizes 64,4k --rounds 200 \
	--bytes 64k --json >"$TMP/b1" 2>"$TMP/b1.err" &
a=$!
ts "$H2" bench ctl --profile latency --sizes 64,4k --rounds 200 \
	--bytes 64k --json >"$TMP/b2" 2>"$TMP/b2.err" &
b=$!
wait $a
ra=$?
wait $b
rb=$?
sed 's/^/# bench: /' "$TMP/b1.err" "$TMP/b2.err"
is "bench on 'ctl' during the bulk transfer: both exit 0" "$ra$rb" 00
check "its figures are sane" bench_sane "$TMP/b1" 64 4096
# (bench may end at any moment: its own report says which profile its
# stream had; the bulk stream is still up)
check "bench's stream had the latency profile on both hosts" \
	bench_profile "$TMP/b1" "$TMP/b2"
check "the bulk stream meanwhile has the throughput profile on both hosts" \
	bulk_profile
bulk_end "bulk host2 to host1 with bench on 'ctl'"
check "host1's ConfigFS as before" test "$empty1" = "$(cfg "$H1")"
check "host2's ConfigFS as before" test "$empty2" = "$(cfg "$H2")"

# 2. The message stream first, then the bulk one, the other way: request
# and reply messages from 1 byte to 40 MiB, each checked byte for byte.
ts "$H1" up ctl --profile latency >/dev/null &
ts "$H2" up ctl --profile latency >/dev/null || bail "no stream 'ctl'"
wait
D1=$H1/dev/tbstream$(attr "$H1" ctl index)
D2=$H2/dev/tbstream$(attr "$H2" ctl index)
t "$MSG_ECHO" server "$D2" >/dev/null 2>"$TMP/srv.err" &
srv=$!
bulk_start "$H1" "$H2"
wait_open "$H1" bulk && wait_open "$H2" bulk || bail "no bulk stream"
check "both streams up at once, each with its own profile on both hosts" \
	profiles
check "host1: the two streams have their own HopIDs" hops_differ "$H1"
check "host2: the same" hops_differ "$H2"
t "$MSG_ECHO" client "$D1" >"$TMP/cli.out" 2>"$TMP/cli.err"
rc=$?
wait $srv
rs=$?
sed 's/^/# msg-echo: /' "$TMP/cli.err" "$TMP/srv.err"
is "messages on 'ctl' during the bulk transfer: client and server exit 0" \
	"$rc$rs" 00
is "every size came back whole" "$(grep -c 'echoed whole' "$TMP/cli.out")" 6
bulk_end "bulk host1 to host2 with messages on 'ctl'"
ts "$H1" down ctl
ts "$H2" down ctl
cfg_same
done_testing
