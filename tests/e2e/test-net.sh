#!/bin/bash
# The network transport: the same commands over IP over Thunderbolt, each
# simulated host in a network namespace of its own, joined by a veth pair
# named thunderbolt0 (tests/e2e/net.sh), with a tbsim host root that says
# which interface belongs to the Thunderbolt bus.
#
# host1 without the stream driver, host2 with it: list and doctor say
# which transport the commands use; pipe (session and raw), send/recv,
# image and bench both ways and in either order, chosen automatically and
# announced;
# the faults (receiver killed, link down) never end in a success with
# wrong data, and the same commands resume; interfaces that were down are
# brought up, said, and down again afterwards; a busy name, a wrong name, a
# signal while waiting; nothing is sent to an address outside the link; a
# hostile host on the link is never connected to and never gets in.
# Then both hosts with the driver (the stream is chosen; the network when
# asked), and the driver on host1 only (the network again).
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/net.sh"

sim_start --network --driver host1:absent --adv-delay 0
net_start
capture_start
head -c 3000000 /dev/urandom >"$TMP/d1"
head -c 2000000 /dev/urandom >"$TMP/d2"
jget() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# --- what the hosts offer ---
n1 list --json >"$TMP/l1"
is "host1's list: the network towards host2" \
	"$(jget "$TMP/l1" 'j["hosts"][0]["transport"], j["hosts"][0]["interface"]')" \
	"('net', 'thunderbolt0')"
n2 list >"$TMP/l2"
check "host2's list names the transport and why" \
	grep -q "IP over Thunderbolt on thunderbolt0 (host1 has no stream driver)" "$TMP/l2"
is "and what host2 offers: both" "$(jget "$TMP/l1" 'j["hosts"][0]["offers"]')" \
	"['stream', 'net']"
check "host2's list: host1 offers IP over Thunderbolt only" \
	grep -q "; it offers IP over Thunderbolt\$" "$TMP/l2"
status 0 "doctor on host1: nothing fails (the network works)" n1 doctor
check "doctor says which transport" grep -Eq \
	"^ok +transport +host2 .*IP over Thunderbolt on 'thunderbolt0' \(this host has no stream driver\); it offers USB4STREAM and IP over Thunderbolt" \
	"$TMP/status.out"
check "the missing driver is a warning" grep -Eq \
	"^warn +driver .*meanwhile the commands use IP over Thunderbolt" \
	"$TMP/status.out"

# --- pipe ---
# pipes FIRST: the session pipe both ways at once, FIRST started first.
pipes() {
	local first=$1 a b
	shift
	if [ "$first" = 1 ]; then a=n1 b=n2; else a=n2 b=n1; fi
	[ "$a" = n1 ] && ia=d1 ib=d2 || ia=d2 ib=d1
	$a pipe "$@" <"$TMP/$ia" >"$TMP/o.$a" 2>"$TMP/e.$a" &
	local pa=$!
	sleep 0.3
	$b pipe "$@" <"$TMP/$ib" >"$TMP/o.$b" 2>"$TMP/e.$b"
	RB=$?
	wait $pa
	RA=$?
}
for first in 2 1; do
	pipes $first
	is "pipe, host$first first: both exit 0" "$RA $RB" "0 0"
	same "$TMP/d2" "$TMP/o.n1" "host2's data on host1"
	same "$TMP/d1" "$TMP/o.n2" "host1's data on host2"
done
check "the choice is announced on host1" \
	grep -q "^tbstream: transport: IP over Thunderbolt on 'thunderbolt0' (this host has no stream driver)" "$TMP/e.n1"
check "and on host2" \
	grep -q "transport: IP over Thunderbolt on 'thunderbolt0' (host1 has no stream driver)" "$TMP/e.n2"
check "no ConfigFS stream was made on host2" \
	test -z "$(ls "$C2")"

# raw: plain bytes one way
n2 pipe --raw --receive-only >"$TMP/raw.out" 2>"$TMP/raw.e2" &
p=$!
n1 pipe --raw --send-only -q <"$TMP/d1" 2>"$TMP/raw.e1"
r1=$?
wait $p
is "pipe --raw: both exit 0" "$r1 $?" "0 0"
same "$TMP/d1" "$TMP/raw.out" "pipe --raw: the bytes arrive"

# --- send / recv ---
src=$TMP/src/tree
mkdir -p "$src/sub" "$TMP/rx1" "$TMP/rx2"
head -c 4000000 /dev/urandom >"$src/big"
for i in $(seq 1 30); do echo "file $i" >"$src/sub/f$i"; done
ln -s big "$src/link"
truncate -s 8M "$src/sparse"
n1 recv -q --json "$TMP/rx1" >"$TMP/r.json" 2>"$TMP/r.err" &
p=$!
n2 send -q "$src" 2>"$TMP/s.err"
rs=$?
wait $p
is "send host2 -> recv host1 (recv first): both exit 0" "$rs $?" "0 0"
check "the tree arrived" diff -r --no-dereference "$src" "$TMP/rx1/tree"
n1 send -q "$src" 2>"$TMP/s.err" &
p=$!
sleep 0.3
n2 recv -q "$TMP/rx2" 2>"$TMP/r.err"
rr=$?
wait $p
is "send host1 -> recv host2 (send first): both exit 0" "$? $rr" "0 0"
check "the tree arrived" diff -r --no-dereference "$src" "$TMP/rx2/tree"

# --- image ---
truncate -s 24M "$TMP/disk"
dd if=/dev/urandom of="$TMP/disk" bs=64K count=40 conv=notrunc status=none
dd if=/dev/urandom of="$TMP/disk" bs=64K seek=300 count=8 conv=notrunc \
	status=none
n2 image send -q "$TMP/disk" 2>"$TMP/i.err" &
p=$!
n1 image recv -q "$TMP/copy.img" 2>"$TMP/i.err1"
ri=$?
wait $p
is "image send host2 -> recv host1: both exit 0" "$? $ri" "0 0"
same "$TMP/disk" "$TMP/copy.img" "the image arrived"
status 0 "image verify" t "$TBSTREAM" image verify "$TMP/copy.img"

# --- bench ---
n1 bench --sizes 64,64k --rounds 30 --bytes 2m --json >"$TMP/b1.json" \
	2>"$TMP/b1.err" &
p=$!
n2 bench --sizes 64,64k --rounds 30 --bytes 2m --json >"$TMP/b2.json" \
	2>"$TMP/b2.err"
rb=$?
wait $p
is "bench over the network: both exit 0" "$? $rb" "0 0"
is "and measure the network" \
	"$(jget "$TMP/b1.json" 'j["transport"], len(j["results"])')" "('net', 4)"
is "both print the same figures" \
	"$(jget "$TMP/b1.json" 'j["results"]')" "$(jget "$TMP/b2.json" 'j["results"]')"

# --- choices that cannot work ---
status 3 "--transport stream without the driver: exit 3" \
	n1 pipe --transport stream --timeout 3 </dev/null
has_msg "and why" "stream driver|thunderbolt_stream"
status 2 "--transport bogus: exit 2" n1 pipe --transport bogus
n1 pipe --timeout 20 </dev/null >/dev/null 2>&1 &
p=$!
sleep 0.5
status 5 "the same name twice on one host: exit 5" \
	n1 pipe --timeout 5 </dev/null
has_msg "says it is in use" "in use over 'thunderbolt0' by another process"
kill $p 2>/dev/null
wait $p 2>/dev/null
n2 pipe other --timeout 4 </dev/null >/dev/null 2>&1 &
p=$!
status 4 "different names: a time-out" n1 pipe mine --timeout 4 </dev/null
has_msg "naming the peer's" "announces stream 'other' on 'thunderbolt0', not 'mine'"
wait $p

# --- faults ---
# The link slowed (tbf on host2's end) so that a transfer is still running
# when the fault comes.
slow() { in2 tc qdisc replace dev thunderbolt0 root tbf rate "$1" burst 64k latency 50ms; }
fast() { in2 tc qdisc del dev thunderbolt0 root 2>/dev/null; }
head -c 12000000 /dev/urandom >"$src/huge"
rm -rf "$TMP/rx1"
mkdir "$TMP/rx1"
slow 40mbit
bg1 recv -q "$TMP/rx1" 2>"$TMP/k.err"
p=$!
bg2 send -q "$src" 2>"$TMP/k.serr"
ps=$!
# once "big" is in place, "huge" follows: the receiver dies inside it
wait_for 30 test -e "$TMP/rx1/tree/big"
kill -9 $p
wait $p 2>/dev/null
wait_limit $ps
rs=$?
check "receiver killed: the sender does not exit 0 (exit $rs)" test "$rs" -ne 0
fast
n1 recv -q --json "$TMP/rx1" >"$TMP/k.json" 2>"$TMP/k.err" &
p=$!
n2 send -q "$src" 2>"$TMP/k.serr"
rs=$?
wait $p
is "the same two commands again: both exit 0" "$rs $?" "0 0"
check "the tree is complete and identical" \
	diff -r --no-dereference "$src" "$TMP/rx1/tree"
check "files complete before were not sent again" \
	test "$(jget "$TMP/k.json" 'j["files_present"] + j["files_resumed"]')" -gt 0

# the link goes down during an image: neither side succeeds; up again, the
# image resumes
truncate -s 48M "$TMP/disk2"
dd if=/dev/urandom of="$TMP/disk2" bs=1M count=20 conv=notrunc status=none
rm -f "$TMP/copy2.img"*
slow 40mbit
bg1 image recv "$TMP/copy2.img" --sync-every 1 -q 2>"$TMP/ld.err1"
p=$!
bg2 image send "$TMP/disk2" -q 2>"$TMP/ld.err2"
ps=$!
# 4 MiB written (with a checkpoint every MiB): some of it is confirmed
blocks_over() { [ "$(stat -c %b "$1" 2>/dev/null || echo 0)" -gt "$2" ]; }
wait_for 30 blocks_over "$TMP/copy2.img" 8192
link_down "$NS2"
wait_limit $ps
rs=$?
wait_limit $p
rr=$?
check "link down: the sender fails (exit $rs)" test "$rs" -ne 0
check "link down: the receiver fails (exit $rr)" test "$rr" -ne 0
sed 's/^/# /' "$TMP/ld.err2"
fast
link_up "$NS2"
wait_for 10 ll_ready "$NS2"
n1 image recv "$TMP/copy2.img" --json -q >"$TMP/ld.json" 2>"$TMP/ld.err1" &
p=$!
n2 image send "$TMP/disk2" -q 2>"$TMP/ld.err2"
rs=$?
wait $p
is "link up again, the same commands: both exit 0" "$rs $?" "0 0"
same "$TMP/disk2" "$TMP/copy2.img" "the image is identical"
check "it resumed" test "$(jget "$TMP/ld.json" 'j.get("start", 0)')" -gt 0

# --- interfaces that were down ---
link_down "$NS1"
link_down "$NS2"
pipes 1
is "both ends down: the pipe works" "$RA $RB" "0 0"
same "$TMP/d2" "$TMP/o.n1" "and its data arrives"
check "host1 said it brought the interface up" \
	grep -q "brought 'thunderbolt0' up for this command" "$TMP/e.n1"
check "host2 too" grep -q "brought 'thunderbolt0' up" "$TMP/e.n2"
check_fails "host1's interface is down again" if_up "$NS1"
check_fails "host2's too" if_up "$NS2"
check "no address is left on either" \
	test -z "$(in1 ip -o addr show dev thunderbolt0)$(in2 ip -o addr show dev thunderbolt0)"
check "no route is left on either" \
	test -z "$(in1 ip -6 route show dev thunderbolt0)$(in2 ip -6 route show dev thunderbolt0)"
check "no marker is left" test -z "$(ls "$TBSTREAM_RUNDIR"/*.up 2>/dev/null)"

# a signal while waiting for the peer: the interface goes down again
bg1 pipe --timeout 30 </dev/null >/dev/null 2>"$TMP/sig.err"
p=$!
wait_for 10 if_up "$NS1"
sleep 0.3
kill -TERM $p
wait_limit $p
is "SIGTERM while waiting for the peer: exit 143" "$?" 143
check "says so" grep -q "interrupted by" "$TMP/sig.err"
check_fails "the interface is down again" if_up "$NS1"
link_up "$NS1"
link_up "$NS2"
wait_for 10 ll_ready "$NS1" && wait_for 10 ll_ready "$NS2"

# --- nothing outside the link ---
capture_stop
if command -v tcpdump >/dev/null; then
	allowed=" $(ll_of "$NS1") $(ll_of "$NS2") :: ::1 "
	bad=$( (tcpdump -r "$TMP/cap1" -n 2>/dev/null
		tcpdump -r "$TMP/cap2" -n 2>/dev/null) | awk -v ok="$allowed" '
		/ IP / { print "IPv4: " $0; next }
		/ IP6 / {
			for (i = 1; i <= NF; i++) if ($i == "IP6") break
			s = $(i + 1); d = $(i + 3); sub(/:$/, "", d)
			n = split(s, a, "."); if (n > 1) s = substr(s, 1, length(s) - length(a[n]) - 1)
			n = split(d, b, "."); if (n > 1) d = substr(d, 1, length(d) - length(b[n]) - 1)
			if (index(ok, " " s " ") == 0 || (index(ok, " " d " ") == 0 && d !~ /^ff02:/))
				print $0
		}')
	count=$( (tcpdump -r "$TMP/cap1" -n 2>/dev/null) | wc -l)
	check "traffic was captured ($count packets on host1)" test "$count" -gt 100
	is "every packet between the two link-local addresses or to ff02::/16" \
		"$bad" ""
	check "the announcements went to ff02::1 port 17272" \
		test -n "$(tcpdump -r "$TMP/cap1" -n 'udp dst port 17272' 2>/dev/null | grep 'ff02::1.17272')"
else
	skip "no tcpdump"
fi

# --- a hostile host on the link ---
# The host with the lower unique id connects; the hostile program poses as
# the other one.
roles
if [ "$ALLOC" = "$H2" ]; then
	conn=n2 lsn=n1 conn_ns=$NS2 lsn_ns=$NS1
else
	conn=n1 lsn=n2 conn_ns=$NS1 lsn_ns=$NS2
fi
conn_uid=$(uid_of "$ALLOC")
lsn_uid=$(uid_of "$FOLLOW")
in_ns "$lsn_ns" ip -6 addr add 2001:db8::1/64 dev thunderbolt0 nodad
for kind in hops1 global uid fine; do
	in_ns "$lsn_ns" timeout 20 "$NET_HOSTILE" announce $kind evil \
		"$lsn_uid" 3 >"$TMP/h.out" 2>"$TMP/h.err" &
	h=$!
	status 4 "announcement ($kind): the command times out" \
		$conn pipe evil --timeout 2 </dev/null
	wait $h
	case $kind in
	fine) check "a proper announcement is connected to (the control)" \
		test "$(cat "$TMP/h.out")" -ge 1 ;;
	*) is "announcement ($kind): never connected to" \
		"$(cat "$TMP/h.out")" 0 ;;
	esac
done
in_ns "$lsn_ns" ip -6 addr del 2001:db8::1/64 dev thunderbolt0
$lsn pipe evil --timeout 30 <"$TMP/d1" >"$TMP/h.rx" 2>"$TMP/h.lerr" &
p=$!
for kind in nonce garbage silent; do
	is "a bad CONNECT ($kind): the listener hangs up" \
		"$(in_ns "$conn_ns" timeout 20 "$NET_HOSTILE" connect $kind \
			evil "$conn_uid" 10)" closed
done
$conn pipe evil <"$TMP/d2" >"$TMP/h.tx" 2>"$TMP/h.cerr"
rc=$?
wait $p
is "then the real peer: both exit 0" "$rc $?" "0 0"
same "$TMP/d2" "$TMP/h.rx" "and the listener got the peer's data"
same "$TMP/d1" "$TMP/h.tx" "and the peer the listener's"
net_cleanup

# --- both hosts with the driver: the stream; the network when asked ---
sim_start --network --adv-delay 0
head -c 1000000 /dev/urandom >"$TMP/d1"
head -c 1000000 /dev/urandom >"$TMP/d2"
net_start
pipes 2
is "both with the driver: the pipe works" "$RA $RB" "0 0"
same "$TMP/d1" "$TMP/o.n2" "and its data arrives"
check "the stream was chosen, and said" \
	grep -q "transport: USB4STREAM (both hosts have the stream driver)" "$TMP/e.n1"
pipes 1 --transport net
is "--transport net on both: the pipe works" "$RA $RB" "0 0"
same "$TMP/d2" "$TMP/o.n1" "and its data arrives"
check "nothing announced when chosen by hand" \
	test -z "$(grep transport: "$TMP/e.n1" "$TMP/e.n2")"
net_cleanup

# --- the driver on host1 only: the network, chosen from the other side ---
sim_start --network --driver host2:absent --adv-delay 0
head -c 1000000 /dev/urandom >"$TMP/d1"
head -c 1000000 /dev/urandom >"$TMP/d2"
net_start
pipes 1
is "host2 without the driver: the pipe works" "$RA $RB" "0 0"
same "$TMP/d2" "$TMP/o.n1" "and its data arrives"
check "host1 chose the network, and why" \
	grep -q "transport: IP over Thunderbolt on 'thunderbolt0' (host2 has no stream driver)" "$TMP/e.n1"
net_cleanup
done_testing
