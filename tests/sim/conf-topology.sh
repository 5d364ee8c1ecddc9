#!/bin/sh
# Conformance of tbsim's sysfs topology (contract section 1), the control
# file, and the options for other machines and kernels (section 3a).
. "$TOP_SRCDIR/tests/lib.sh"

sim_start --adv-delay 200 --node-delay 0
B1=$H1/sys/bus/thunderbolt/devices
B2=$H2/sys/bus/thunderbolt/devices

check "domain0 is listed" test -d "$B1/domain0"
check "the host's own router 0-0 has a unique_id" test -s "$B1/0-0/unique_id"
check "the two hosts have different unique_ids" \
	test "$(cat "$B1/0-0/unique_id")" != "$(cat "$B2/0-0/unique_id")"
check "host1 sees its peer at route 503" test -d "$B1/0-503"
check "host2 sees the same link at route 1" test -d "$B2/0-1"
is "the XDomain's unique_id is the remote host's" \
	"$(cat "$B1/0-503/unique_id")" "$(cat "$B2/0-0/unique_id")"
is "... in both directions" \
	"$(cat "$B2/0-1/unique_id")" "$(cat "$B1/0-0/unique_id")"
is "device_name is what the remote host announces" \
	"$(cat "$B1/0-503/device_name")" host2
for a in vendor_name device vendor rx_speed tx_speed rx_lanes tx_lanes; do
	check "the XDomain has $a" test -s "$B1/0-503/$a"
done
is "link speed reads like the kernel's" "$(cat "$B1/0-503/rx_speed")" \
	"40.0 Gb/s"
is "the service 0-503.0 is USB4STREAM (key)" "$(cat "$B1/0-503.0/key")" stream
for a in prtcid prtcvers prtcrevs prtcstns; do
	check "the service has $a" test -s "$B1/0-503.0/$a"
done
is "modalias names protocol 1, version 1, revision 0" \
	"$(cat "$B1/0-503.0/modalias")" \
	"tbtsvc:kstreamp00000001v00000001r00000000"
check_fails "sysfs attributes are read-only" write_attr "$B1/0-503/unique_id" x

echo unplug >"$CTL"
check "unplug removes the XDomain" test ! -e "$B1/0-503"
check "... and its services" test ! -e "$B1/0-503.0"
check "... on the other host too" test ! -e "$B2/0-1"
echo plug >"$CTL"
check "the XDomain is back after the property exchange" \
	wait_for 5 test -d "$B1/0-503" -a -d "$B2/0-1"
check "... with its service" test -f "$B1/0-503.0/key"

# the control file
for bad in "bogus" "unplug host1" "corrupt host9 1" "drop host1 x" \
	"rate -5" "plug host1 host2 0" "stall host1"; do
	check_fails "control rejects '$bad'" write_attr "$CTL" "$bad"
done
check_fails "a write with one bad line fails" \
	sh -c "printf 'unplug\nbogus\n' > '$CTL'"
check "... and changes nothing" test -d "$B1/0-503"
check "comments and blank lines are accepted" \
	sh -c "printf '# note\n\nrate 0\n' > '$CTL'"
check "reading control lists hosts" grep -q "^host name=host1 " "$CTL"
check "reading control lists cables" grep -q "^cable id=0 a=host1 b=host2 plugged=1" "$CTL"
sim_cleanup

# more hosts and cables
sim_start --hosts 3 --adv-delay 0 --node-delay 0
check "three hosts in a chain: host2 has two peers" \
	test "$(grep -l stream "$H2"/sys/bus/thunderbolt/devices/*/key | wc -l)" = 2
check "host3 exists and sees host2" \
	grep -qx host2 "$MNT"/host3/sys/bus/thunderbolt/devices/0-1/device_name
echo "unplug host2 host3" >"$CTL"
check "unplug A B pulls only that cable" \
	test -d "$H1/sys/bus/thunderbolt/devices/0-503" -a \
	! -e "$MNT/host3/sys/bus/thunderbolt/devices/0-1"
sim_cleanup
sim_start --cable host1:host2 --cable host1:host2 --adv-delay 0
B1=$H1/sys/bus/thunderbolt/devices
check "two cables between two hosts: two XDomains (0-503 and 0-3)" \
	test -d "$B1/0-503" -a -d "$B1/0-3"
is "... with the same peer" "$(cat "$B1/0-503/unique_id")" \
	"$(cat "$B1/0-3/unique_id")"
echo "unplug host1 host2 2" >"$CTL"
check "the second cable can be pulled alone" \
	test -d "$B1/0-503" -a ! -e "$B1/0-3"
sim_cleanup

# IP over Thunderbolt alongside
sim_start --network --adv-delay 0
is "with --network, service .0 is the network one" \
	"$(cat "$H1/sys/bus/thunderbolt/devices/0-503.0/key")" network
is "... and the stream service is .1" \
	"$(cat "$H1/sys/bus/thunderbolt/devices/0-503.1/key")" stream
mkdir "$C1/0-503.0"
mkdir "$C1/0-503.0/x"
wait_for 5 test -e "$H1/dev/tbstream0"
is "a stream under the network service never attaches" \
	"$(sio "$H1/dev/tbstream0" rn | head -1)" "open ENXIO"
sim_cleanup

# newer kernels: EIO on CRC errors, EPIPE and POLLHUP after the peer closed
sim_start --new-kernel --adv-delay 50 --node-delay 0
sim_pair nk
check "newer kernels have busy_poll" test -f "$S1/busy_poll"
echo "corrupt host2 1" >"$CTL"
out=$(sio "$D2" r sleep:300 read:100000 read:100000 &
	sleep 0.1; sio "$D1" w write:8192 sleep:500 >/dev/null; wait)
is "a frame with a CRC error fails the read with EIO" \
	"$(echo "$out" | sed -n 2p)" "read EIO"
is "... and the read after it goes on" "$(echo "$out" | sed -n 3p)" "read 4096"
out=$(sio "$D1" w sleep:400 write:10 poll:100 &
	sleep 0.1; sio "$D2" r close >/dev/null; wait)
is "a write after the peer closed fails with EPIPE" \
	"$(echo "$out" | sed -n 2p)" "write EPIPE"
is "poll reports POLLHUP after the peer closed" \
	"$(echo "$out" | sed -n 3p)" "poll IN OUT HUP"
sim_cleanup

# credit wedges on some controllers
sim_start --wedge --adv-delay 50 --node-delay 0
sim_pair wg
sio "$D1" w write:40000 write:40000 >/dev/null
sleep 0.6
check "more than 16 frames toward a closed peer wedge the link" \
	grep -q "wedged=1" "$CTL"
out=$(sio "$D2" r sleep:300 nonblock read:10 & sleep 0.1; sio "$D1" w write:10 sleep:400 >/dev/null; wait)
is "a wedged link carries nothing, even to an open peer" \
	"$(echo "$out" | tail -1)" "read EAGAIN"
echo unplug >"$CTL"
echo plug >"$CTL"
check "unplugging clears the wedge" wait_for 5 grep -q "wedged=0" "$CTL"
done_testing
