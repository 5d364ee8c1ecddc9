#!/bin/bash
# Driver detection: each way the chain can be broken, made by tbsim on
# host1 (a kernel before 7.2, the module not loaded, ConfigFS not mounted
# or built without CONFIG_USB4_CONFIGFS, the peer without the driver, IP
# over Thunderbolt holding HopID 8, no DMA ring left), found and explained
# by 'tbstream doctor' (one line per check, --json, exit status), by
# 'tbstream list' and by the command that needs the stream.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

# doctor_has ARGS... PATTERN: doctor on host1 shows a line matching it
doc() {
	ts "$H1" doctor >"$TMP/doc" 2>&1
	DOC_ST=$?
	sed 's/^/# /' "$TMP/doc"
}

has() {
	if grep -Eq -- "$2" "$TMP/doc"; then ok "$1"; else not_ok "$1"; fi
}

# one_line_per_check: every line is "STATUS CHECK message"
one_line_per_check() {
	! grep -Evq '^(ok|info|warn|FAIL) +[a-z]+ +[^ ]' "$TMP/doc"
}

start() {
	sim_start --adv-delay 100 "$@"
}

# A working pair: every check passes.
start
doc
is "all well: exit 0" "$DOC_ST" 0
check "one line per check" one_line_per_check
has "the kernel is recent enough" '^ok +kernel +Linux 7\.2'
has "the driver is loaded" '^ok +driver'
has "the peer is found" '^ok +peer +.*host2'
check "no failure" sh -c "! grep -q '^FAIL' '$TMP/doc'"
ts "$H1" doctor --json >"$TMP/j"
check "--json is valid, ok, with a status per check" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] and j["exit_status"] == 0
names = [c["check"] for c in j["checks"]]
for n in ("kernel", "bus", "driver", "configfs", "peer", "network", "rings"):
    assert n in names, n
assert all(c["status"] in ("ok", "info", "warn", "fail") for c in j["checks"])
' "$TMP/j"

# A kernel from before the driver.
start --kernel host1:7.1.4
doc
is "kernel 7.1: exit 3" "$DOC_ST" 3
has "says the kernel is too old" '^FAIL +kernel +Linux 7\.1\.4 is older than 7\.2'
has "and that it has no module" '^FAIL +driver +.*has no thunderbolt_stream module'
status 3 "up says so too: exit 3" ts "$H1" up x --timeout 2
has_msg "with the kernel's release" "7\\.1\\.4 is older than 7\\.2"
ts "$H1" list >"$TMP/l" 2>&1
check "list explains it" grep -q "Linux 7.1.4 is older than 7.2" "$TMP/l"

# The module there but not loaded.
start --driver host1:unloaded
doc
is "module not loaded: exit 3" "$DOC_ST" 3
has "says to load it" "^FAIL +driver +.*modprobe thunderbolt_stream"
status 3 "pipe says so: exit 3" ts "$H1" pipe x --timeout 2 </dev/null
has_msg "with what to do" "modprobe thunderbolt_stream"
# ... and the peer sees a host without the stream service.
ts "$H2" doctor >"$TMP/doc" 2>&1
st=$?
sed 's/^/# /' "$TMP/doc"
is "the peer's doctor: exit 3" "$st" 3
has "names host1 as not offering the stream service" \
	'^FAIL +peer +host1 \(0-1\) is connected but does not offer the stream service'
status 3 "the peer's send says so" ts "$H2" send -q "$TMP" --timeout 2
has_msg "naming the host" "host1 .* does not offer the stream service"

# ConfigFS not mounted.
start --configfs host1:unmounted
doc
is "ConfigFS not mounted: exit 3" "$DOC_ST" 3
has "says to mount it" "^FAIL +configfs +ConfigFS is not mounted: .*mount -t configfs"
head -c 65536 /dev/zero >"$TMP/img"
status 3 "image send says so: exit 3" ts "$H1" image send "$TMP/img" \
	--timeout 2
has_msg "with the mount command" "mount -t configfs"

# A kernel built without CONFIG_USB4_CONFIGFS.
start --configfs host1:no-usb4
doc
is "CONFIG_USB4_CONFIGFS off: exit 3" "$DOC_ST" 3
has "says so" "^FAIL +configfs +.*CONFIG_USB4_CONFIGFS"
ts "$H1" list >"$TMP/l" 2>&1
check "list explains it" grep -q "CONFIG_USB4_CONFIGFS" "$TMP/l"

# IP over Thunderbolt up on both hosts: it holds HopID 8.
start --network --netif up --max-hopid 9
roles
doc
is "IP over Thunderbolt up: exit 0" "$DOC_ST" 0
has "says it holds HopID 8" "^info +network +IP over Thunderbolt \(thunderbolt0\) is up and holds HopID 8"
up_pair "$H2" "$H1" s1
# s1 took 9, the highest; 8 is the network's: nothing is left.
status 5 "no HopID left: exit 5" ts "$ALLOC" up s2 --timeout 3
has_msg "names IP over Thunderbolt as the holder of 8" \
	"HopID 8 is IP over Thunderbolt's \\(thunderbolt0\\)"

# A stream holding HopID 8 while IP over Thunderbolt is down.
start --network --max-hopid 8
up_pair "$H2" "$H1" n8
doc
has "warns that the stream holds 8, which thunderbolt0 needs" \
	"^warn +network +stream 'n8' holds HopID 8, which IP over Thunderbolt \(thunderbolt0, down\) needs"
ts "$H1" list >"$TMP/l" 2>&1
check "list warns too" grep -q "Warning: stream 'n8' holds HopID 8" "$TMP/l"

# No DMA ring left (one kept for control: --rings 2 leaves one).
start --rings 2
for s in r1 r2; do
	up_pair "$H2" "$H1" $s
done
(exec 3<"$(ts "$H1" up r1)"; sleep 30) &
holder=$!
check "r1 is open" wait_open "$H1" r1
doc
has "rings: the open stream is counted" "^info +rings +1 stream open here"
status 5 "opening r2: exit 5" ts "$H1" pipe r2 --raw --receive-only --timeout 2
has_msg "explains the DMA rings and what to do" "no free DMA ring.*close other streams"
kill $holder
wait $holder 2>/dev/null

# A stream without HopIDs is flagged.
start
mkdir -p "$H1/sys/kernel/config/thunderbolt/stream/0-503.0/bare"
doc
has "a stream without HopIDs is flagged" "^warn +streams +stream 'bare' .* has no HopIDs"

done_testing
