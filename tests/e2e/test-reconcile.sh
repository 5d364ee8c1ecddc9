#!/bin/bash
# tbstream reconcile: persistent streams from a streams file, on two
# simulated hosts.  Both hosts bring their configured streams up in either
# order; a plug, a reboot of either peer (its ConfigFS emptied while the
# cable is out) and a resume (a host whose streams were lost while the
# link stayed) each end with usable streams that carry a verified
# transfer; a held device is never touched; the file's mistakes are
# reported with their line and change nothing.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

sim_start --adv-delay 200 --node-delay 50
roles
cfg_snap
CONF=$TMP/streams.conf
head -c 300000 /dev/urandom >"$TMP/data"

# rc HOST ARGS...: reconcile on HOST with the test's streams file.
rc() {
	local host=$1
	shift
	ts "$host" reconcile --config "$CONF" "$@"
}

# rc_both: reconcile on both hosts at once, as a plug starts them.
rc_both() {
	rc "$H1" "$@" >"$TMP/r1" 2>"$TMP/e1" &
	local p=$!
	rc "$H2" "$@" >"$TMP/r2" 2>"$TMP/e2"
	local b=$?
	wait $p
	local a=$?
	sed 's/^/# host1: /' "$TMP/r1" "$TMP/e1"
	sed 's/^/# host2: /' "$TMP/r2" "$TMP/e2"
	[ $a -eq 0 ] && [ $b -eq 0 ]
}

# matched NAME: HopIDs set and mirrored on the two hosts.
matched() {
	local i1 o1 i2 o2
	i1=$(attr "$H1" "$1" in_hopid) o1=$(attr "$H1" "$1" out_hopid)
	i2=$(attr "$H2" "$1" in_hopid) o2=$(attr "$H2" "$1" out_hopid)
	[ "$i1" -gt 0 ] && [ "$o1" -gt 0 ] && [ "$i1" = "$o2" ] &&
		[ "$o1" = "$i2" ]
}

# xfer NAME: a verified pipe from host1 to host2 over stream NAME, which
# stays configured afterwards.
xfer() {
	local p a b
	ts "$H2" pipe "$1" </dev/null >"$TMP/out" 2>"$TMP/xe2" &
	p=$!
	ts "$H1" pipe "$1" <"$TMP/data" >/dev/null 2>"$TMP/xe1"
	a=$?
	wait $p
	b=$?
	sed 's/^/# /' "$TMP/xe1" "$TMP/xe2"
	[ $a -eq 0 ] && [ $b -eq 0 ] && cmp -s "$TMP/data" "$TMP/out" &&
		[ -d "$C1/0-503.0/$1" ] && [ -d "$C2/0-1.0/$1" ]
}

# field FILE NAME KEY: a field of stream NAME in reconcile's --json.
field() {
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
s = [s for s in j["streams"] if s["name"] == sys.argv[2]]
print(s[0].get(sys.argv[3], "") if s else "")' "$@"
}

linked() {
	wait_for 10 test -e "$H1/sys/bus/thunderbolt/devices/0-503.0" &&
		wait_for 10 test -e "$H2/sys/bus/thunderbolt/devices/0-1.0"
}

# --- the file -------------------------------------------------------------

status 0 "no streams file: nothing to do, exit 0" \
	ts "$H1" reconcile --config "$TMP/none"
check "says the file does not exist" grep -q "does not exist" "$TMP/status.out"
check "and changes nothing" test "$(cfg "$H1")" = "$empty1"

bad() {
	printf '%b' "$2" >"$TMP/bad.conf"
	status 2 "$1: exit 2" ts "$H1" reconcile --config "$TMP/bad.conf"
	has_msg "$1: names the file and line $3" "bad.conf:$3: "
}
bad "one field" '# c\n\nhost2\n' 3
bad "four fields" '* a default extra\n' 1
bad "unknown profile" '* a fastest\n' 1
bad "name of 9 bytes" '* ninechars\n' 1
bad "the same stream twice" '* a\nhost2 b\n*\ta latency\n' 3
bad "a control character" '* a\x01b\n' 1
check "bad files changed nothing" test "$(cfg "$H1")" = "$empty1"
status 2 "an argument: usage error" rc "$H1" extra
status 2 "a zero time-out: usage error" rc "$H1" --timeout 0
status 0 "--help" rc "$H1" --help

# --- first bring-up: both hosts at once -------------------------------------

h2name=$(cat "$H1/sys/bus/thunderbolt/devices/0-503/device_name")
cat >"$CONF" <<EOF
# persistent streams of the test fabric
*       backup   throughput   # every peer
*       cam      latency
nobody  spare
EOF

rc "$H1" --dry-run --json >"$TMP/dry.json"
is "--dry-run says it would create" "$(field "$TMP/dry.json" backup state)" \
	would-create
is "--dry-run: a peer not connected is absent" \
	"$(field "$TMP/dry.json" spare state)" absent
check "--dry-run changed nothing" test "$(cfg "$H1")" = "$empty1"

check "reconcile on both hosts at once" rc_both
check "backup: HopIDs mirrored" matched backup
check "cam: HopIDs mirrored" matched cam
is "throughput profile applied on host1" "$(attr "$H1" backup ring_size)" 4096
is "latency profile applied on host2" "$(attr "$H2" cam throttling)" 0
check "no stream towards the absent peer" \
	test ! -e "$C1/0-503.0/spare" -a ! -e "$C2/0-1.0/spare"
check "a transfer over backup" xfer backup
check "a transfer over cam" xfer cam

before1=$(cfg "$H1") before2=$(cfg "$H2")
rc "$H1" --json >"$TMP/again.json"
is "again: the stream is up" "$(field "$TMP/again.json" backup state)" up
is "again: its device" "$(field "$TMP/again.json" backup device)" \
	"$H1/dev/tbstream$(attr "$H1" backup index)"
check "again: nothing changed" test "$before1" = "$(cfg "$H1")"
status 0 "--peer by service, human output" rc "$H2" --peer 0-1.0
check "lists the streams towards it" grep -q "^backup .* up " \
	"$TMP/status.out"
rc "$H1" --peer nobody-here --json >"$TMP/none.json"
is "--peer of another host: nothing reported" \
	"$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["streams"]))' \
		"$TMP/none.json")" 0

# A stream that is not in the file is not reconcile's business.
up_pair "$H1" "$H2" extra --timeout 10
rc "$H1" >/dev/null 2>&1
check "a stream not in the file is left alone" test -d "$C1/0-503.0/extra"
ts "$H1" down extra
ts "$H2" down extra

# --- plug -------------------------------------------------------------------

echo unplug >"$CTL"
wait_for 10 test ! -e "$H1/sys/bus/thunderbolt/devices/0-503"
rc "$H1" --json >"$TMP/unplugged.json"
is "unplugged: the peer is absent" \
	"$(field "$TMP/unplugged.json" backup state)" absent
check "unplugged: the configuration stays" test -d "$C1/0-503.0/backup"
echo plug >"$CTL"
check "plugged back" linked
check "plug: reconcile on both hosts" rc_both
check "plug: a transfer over backup" xfer backup

# --- a reboot of each host --------------------------------------------------

# reboot HOST: what the other host sees of a reboot: the cable's peer
# goes, comes back, and has lost its ConfigFS.
reboot() {
	local c=$1/sys/kernel/config/thunderbolt/stream
	echo unplug >"$CTL"
	wait_for 10 test ! -e "$1/sys/bus/thunderbolt/devices/0-1" -a \
		! -e "$1/sys/bus/thunderbolt/devices/0-503"
	rmdir "$c"/*/* "$c"/*
	echo plug >"$CTL"
	linked
}

for who in ALLOC FOLLOW; do
	host=${!who}
	reboot "$host"
	check "$who rebooted: its streams are gone" \
		test "$(cfg "$host")" = "$( [ "$host" = "$H1" ] &&
			echo "$empty1" || echo "$empty2")"
	status 0 "$who rebooted: reconcile there" rc "$host"
	other=$H1
	[ "$host" = "$H1" ] && other=$H2
	status 0 "$who rebooted: reconcile on the other host" rc "$other"
	check "$who rebooted: backup mirrored again" matched backup
	check "$who rebooted: a transfer over backup" xfer backup
	check "$who rebooted: a transfer over cam" xfer cam
done

# --- resume: one host lost its streams while the link stayed ----------------

for who in ALLOC FOLLOW; do
	host=${!who}
	ts "$host" down --all
	check "resume of $who: reconcile brings it back" rc_both
	check "resume of $who: backup mirrored" matched backup
	check "resume of $who: a transfer" xfer backup
done

# --- a held device is never touched -----------------------------------------

dev=$(ts "$H1" up backup)
(exec 3<"$dev"; exec sleep 30) &
holder=$!
wait_open "$H1" backup
sed -i 's/backup   throughput/backup   latency/' "$CONF"
before=$(cfg "$H1")
rc "$H1" --json >"$TMP/held.json"
is "held: reported as held" "$(field "$TMP/held.json" backup state)" held
is "held: names the holder" "$(field "$TMP/held.json" backup holder)" "$holder"
check "held: nothing changed" test "$before" = "$(cfg "$H1")"
kill $holder
wait $holder 2>/dev/null
rc "$H1" --dry-run --json >"$TMP/retune.json"
is "released, --dry-run: would retune" \
	"$(field "$TMP/retune.json" backup state)" would-retune
rc "$H1" --json >"$TMP/retune.json"
is "released: retuned to the new profile" \
	"$(field "$TMP/retune.json" backup state)" retuned
is "released: ring size of the latency profile" \
	"$(attr "$H1" backup ring_size)" 128
check "retuned: a transfer" xfer backup

# --- runs at once on one host take turns ------------------------------------

ts "$H1" down --all
ts "$H2" down --all
rc "$H1" >"$TMP/t1" 2>&1 &
p1=$!
rc "$H1" >"$TMP/t2" 2>&1 &
p2=$!
rc "$H2" >/dev/null 2>&1
r3=$?
wait $p1
r1=$?
wait $p2
r2=$?
sed 's/^/# /' "$TMP/t1" "$TMP/t2"
check "two runs on host1 and one on host2 at once all succeed" \
	test "$r1$r2$r3" = 000
check "and the streams are mirrored" matched backup
check "and carry a transfer" xfer backup

# --- failures ---------------------------------------------------------------

ts "$H1" down --all
ts "$H2" down --all
printf '* lone\n' >"$CONF"
status 4 "the follower alone: time-out, exit 4" rc "$FOLLOW" --timeout 2
has_msg "and says to run it on the other host" "tbstream up lone"
check "and leaves ConfigFS as it was" \
	test "$(cfg "$FOLLOW")" = "$( [ "$FOLLOW" = "$H1" ] && echo "$empty1" \
		|| echo "$empty2")"
rc "$FOLLOW" --timeout 1 --json >"$TMP/fail.json" 2>/dev/null
is "--json: the failure and its reason" \
	"$(field "$TMP/fail.json" lone state)" failed
check "--json: the error is given" test -n "$(field "$TMP/fail.json" lone error)"
diag "peer announces itself as '$h2name'"

# --- several peers: host2 between host1 and host3 ---------------------------

sim_start --hosts 3 --adv-delay 200 --node-delay 50
H3=$MNT/host3
C3=$H3/sys/kernel/config/thunderbolt/stream
# Each host its own file: cam only between host2 and host3.
printf '*  ssh\n' >"$TMP/host1.conf"
printf '*  ssh\nhost3  cam  latency\n' >"$TMP/host2.conf"
printf '*  ssh\nhost2  cam  latency\n' >"$TMP/host3.conf"
rc() {
	local host=$1
	shift
	ts "$host" reconcile --config "$TMP/${host##*/}.conf" "$@"
}
wait_for 10 test -e "$H2/sys/bus/thunderbolt/devices/0-3.0"
# hop DIR: "in/out" of the stream in ConfigFS directory DIR.
hop() {
	echo "$(cat "$1/in_hopid")/$(cat "$1/out_hopid")"
}
mirror() {
	local a b
	a=$(hop "$1") b=$(hop "$2")
	[ "${a#*/}/${a%/*}" = "$b" ] && [ "$a" != 0/0 ]
}
rc "$H2" --peer 0-3.0 >"$TMP/o2" 2>&1 &
p=$!
rc "$H3" >"$TMP/o3" 2>&1
r3=$?
wait $p
r2=$?
sed 's/^/# /' "$TMP/o2" "$TMP/o3"
check "--peer of the udev instance: host2 and host3 succeed" test "$r2$r3" = 00
check "ssh and cam towards host3, mirrored" sh -c "
	$(declare -f hop mirror); mirror '$C2/0-3.0/ssh' '$C3/0-1.0/ssh' &&
	mirror '$C2/0-3.0/cam' '$C3/0-1.0/cam'"
check "nothing towards host1 yet" test ! -e "$C2/0-1.0"
rc "$H2" >"$TMP/o2" 2>&1 &
p=$!
rc "$H1" >"$TMP/o1" 2>&1
r1=$?
wait $p
r2=$?
check "then every peer: host1 and host2 succeed" test "$r1$r2" = 00
check "ssh towards host1, mirrored" sh -c "
	$(declare -f hop mirror); mirror '$C2/0-1.0/ssh' '$C1/0-503.0/ssh'"
check "cam only towards host3, as the file says" \
	test ! -e "$C2/0-1.0/cam" -a ! -e "$C1/0-503.0/cam"
done_testing
