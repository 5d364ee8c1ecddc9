#!/bin/sh
# Conformance of tbsim's /dev/tbstreamX with the contract, section 3 and
# its hazards: one test per statement, through sysio, dd and cat in
# separate processes.
. "$TOP_SRCDIR/tests/lib.sh"

sim_start --adv-delay 100 --node-delay 20 --rings 4
W=$TMP
sim_pair s ring_size=32

# open
mkdir "$C1/0-503.0/nohop"
wait_for 5 test -e "$H1/dev/tbstream$(cat "$C1/0-503.0/nohop/index")"
is "open without HopIDs fails with EINVAL" \
	"$(sio "$H1/dev/tbstream$(cat "$C1/0-503.0/nohop/index")" r | head -1)" \
	"open EINVAL"
rmdir "$C1/0-503.0/nohop"
is "open works when attached and configured" "$(sio "$D1" rn)" "open OK"
is "not seekable" "$(sio "$D1" rn seek | tail -1)" "seek ESPIPE"
check "no ioctls" test "$(sio "$D1" rn ioctl | tail -1)" != "ioctl OK"
check "no mmap" test "$(sio "$D1" rn mmap | tail -1)" != "mmap OK"

# read and write semantics
out=$(sio "$D2" r sleep:400 read:4096 read:1000 nonblock read:1000 read:10 &
	sleep 0.2
	sio "$D1" w write:100 write:100 write:100 write:5000 sleep:800 >/dev/null
	wait)
is "read returns what is there, across frame edges" \
	"$(echo "$out" | sed -n 2p)" "read 4096"
is "a frame larger than the buffer comes over several reads" \
	"$(echo "$out" | sed -n 3p)" "read 1000"
is "... and the rest of it after that" \
	"$(echo "$out" | sed -n 4p)" "read 204"
is "with O_NONBLOCK, a read with nothing waiting fails with EAGAIN" \
	"$(echo "$out" | sed -n 5p)" "read EAGAIN"
before=$(sim_stat host1 s tx_frames)
out=$(sio "$D2" r readall:10000 & sleep 0.2; sio "$D1" w write:10000; wait)
after=$(sim_stat host1 s tx_frames)
is "a write of 10000 bytes is cut into 3 frames of at most 4096" \
	$((after - before)) 3
is "the peer's close gives end of file after the data before it" \
	"$(echo "$out" | grep readall)" "readall 10000"

# short writes: 32 entries in the tx ring, 32 in the peer's rx ring
out=$(sio "$D2" r sleep:1500 &
	sleep 0.2
	sio "$D1" wn write:1048576 write:1048576 write:1048576; wait)
is "a write returns short when the tx ring fills" \
	"$(echo "$out" | grep write | sed -n 1p)" "write 131072"
is "the next write fills the tx ring (the peer's rx ring is full)" \
	"$(echo "$out" | grep write | sed -n 2p)" "write 131072"
is "with no free entry and O_NONBLOCK: EAGAIN" \
	"$(echo "$out" | grep write | sed -n 3p)" "write EAGAIN"
sleep 0.8
out=$(sio "$D2" r sleep:2500 &
	sleep 0.2
	T=1 sio "$D1" w writeall:1048576; echo "status $?"; wait)
is "a blocking write with no free entry blocks (killed by timeout)" \
	"$(echo "$out" | grep status)" "status 124"
sleep 0.3

# poll
out=$(sio "$D2" r poll:200)
is "poll: POLLOUT when an entry is free, no POLLIN on an empty stream" \
	"$(echo "$out" | tail -1)" "poll OUT"
out=$(sio "$D2" r sleep:300 pollin:2000 &
	sleep 0.1
	sio "$D1" w write:10 sleep:500 >/dev/null; wait)
is "poll: POLLIN when data is waiting" "$(echo "$out" | tail -1)" "poll IN"

# sticky end of file
out=$(sio "$D2" r sleep:400 read:100 read:100 read:100 sleep:800 read:100 &
	sleep 0.1
	sio "$D1" w write:50 close sleep:500 >/dev/null
	sio "$D1" w write:50 sleep:600 >/dev/null; wait)
is "data, then end of file" "$(echo "$out" | sed -n 2,3p | tr '\n' ,)" \
	"read 50,read 0,"
is "end of file sticks" "$(echo "$out" | sed -n 4p)" "read 0"
is "even when the peer opens again and sends" "$(echo "$out" | sed -n 5p)" \
	"read 0"
sleep 0.6
out=$(sio "$D2" r sleep:400 read:100 & sleep 0.1; sio "$D1" w write:60 sleep:500 >/dev/null; wait)
is "after closing and opening again, data flows" "$(echo "$out" | tail -1)" \
	"read 60"
sleep 0.6

# hazard 1: frames sent before the reader opened are lost
before=$(sim_stat host1 s unopened)
sio "$D1" w write:1000 >/dev/null
sleep 0.6
is "frames sent while the peer is not open do not arrive" \
	"$(sio "$D2" rn read:2000 | tail -1)" "read EAGAIN"
check "the simulator counts them" \
	test "$(sim_stat host1 s unopened)" -gt "$before"

# hazard 2: close loses what the peer has not taken within the flush bound
out=$(sio "$D2" r sleep:1500 nonblock readall:1000000 &
	sleep 0.2
	sio "$D1" w writeall:262144 close >/dev/null; wait)
is "close loses the tail the peer did not take in time" \
	"$(echo "$out" | tail -1)" "readall 131072"
sleep 0.6

# hazard 3: corruption is delivered as data
head -c 100000 /dev/urandom >"$W/r.bin"
echo "corrupt host2 1" >"$CTL"
t dd if="$D2" of="$W/r.copy" bs=64k status=none &
sleep 0.2
t dd if="$W/r.bin" of="$D1" bs=64k status=none
wait
check "a corrupted frame is handed to the reader as data" \
	test "$(stat -c %s "$W/r.copy")" = 100000
check_fails "... with its bytes changed" cmp -s "$W/r.bin" "$W/r.copy"
is "the simulator counts it" "$(sim_stat host2 s corrupted)" 1

# faults of the control file: drop and stall
echo "drop host2 2" >"$CTL"
t dd if="$D2" of="$W/d.copy" bs=64k status=none &
sleep 0.2
t dd if="$W/r.bin" of="$D1" bs=4k status=none
wait
is "drop loses whole frames" "$(stat -c %s "$W/d.copy")" $((100000 - 8192))
echo "stall host2 700" >"$CTL"
out=$(sio "$D2" r sleep:200 pollin:300 pollin:3000 &
	sleep 0.1
	sio "$D1" w write:10 sleep:1200 >/dev/null; wait)
is "stall holds frames toward a host" \
	"$(echo "$out" | sed -n 2,3p | tr '\n' ,)" "poll -,poll IN,"
sleep 0.6

# hazard 9: two readers steal from each other
seq 1 200000 >"$W/seq"
t cat "$D2" >"$W/r1" &
p1=$!
t cat "$D2" >"$W/r2" &
p2=$!
sleep 0.3
t dd if="$W/seq" of="$D1" bs=4k status=none
sleep 0.6
echo unplug >"$CTL" # ends the reader that did not get the CLOSE
wait $p1 $p2
total=$(($(stat -c %s "$W/r1") + $(stat -c %s "$W/r2")))
is "two readers together got every byte" $total "$(stat -c %s "$W/seq")"
check "each reader got only part" \
	test -s "$W/r1" -a -s "$W/r2"

# hazard 7: unplug
is "after an unplug, open works only once the peer is back (ENXIO)" \
	"$(sio "$D2" rn | head -1)" "open ENXIO"
echo plug >"$CTL"
wait_for 5 sh -c "'$SYSIO' '$D2' rn | grep -q 'open OK'"
out=$(sio "$D2" rw sleep:600 read:10 write:10 poll:100 &
	sleep 0.2
	echo unplug >"$CTL"; wait)
is "unplug: read fails with ENXIO" "$(echo "$out" | sed -n 2p)" "read ENXIO"
is "unplug: write fails with ENXIO" "$(echo "$out" | sed -n 3p)" "write ENXIO"
is "unplug: poll gives POLLHUP|POLLERR" "$(echo "$out" | sed -n 4p)" \
	"poll HUP ERR"
check "the configuration stays" test "$(cat "$S1/in_hopid")" != 0
echo plug >"$CTL"
check "and attaches again on re-plug" \
	wait_for 5 sh -c "'$SYSIO' '$D1' rn | grep -q 'open OK'"
out=$(sio "$D2" r sleep:400 read:100 & sleep 0.1; sio "$D1" w write:77 sleep:500 >/dev/null; wait)
is "data flows again after re-plug" "$(echo "$out" | tail -1)" "read 77"

# a blocking open waits for the peer, forever without a time limit
echo unplug >"$CTL"
T=1 sio "$D1" r >/dev/null
is "a blocking open with no peer does not return (killed by timeout)" $? 124
out=$(sio "$D1" r & sleep 0.3; echo plug >"$CTL"; wait)
is "a blocking open returns once the peer is connected" "$out" "open OK"
sleep 0.6

# removal of the stream directory
out=$(sio "$D2" rw sleep:400 read:10 write:10 poll:100 &
	sleep 0.2
	rmdir "$S2"; wait)
is "after rmdir, readers see end of file" "$(echo "$out" | sed -n 2p)" "read 0"
is "after rmdir, writers get ENXIO" "$(echo "$out" | sed -n 3p)" "write ENXIO"
is "after rmdir, poll gives POLLHUP|POLLERR" "$(echo "$out" | sed -n 4p)" \
	"poll HUP ERR"
rmdir "$S1"

# DMA rings: 4 on each host, one kept for control
sim_pair r1 && sim_pair r2 && sim_pair r3 && sim_pair r4
D=$H1/dev/tbstream
out=$(sio "$H1/dev/tbstream$(cat "$C1/0-503.0/r1/index")" r sleep:800 &
	sio "$H1/dev/tbstream$(cat "$C1/0-503.0/r2/index")" r sleep:800 &
	sio "$H1/dev/tbstream$(cat "$C1/0-503.0/r3/index")" r sleep:800 &
	sleep 0.3
	sio "$H1/dev/tbstream$(cat "$C1/0-503.0/r4/index")" r sleep:100
	sio "$H1/dev/tbstream$(cat "$C1/0-503.0/r1/index")" r
	wait)
is "an open with no free DMA ring fails with ENOMEM" \
	"$(echo "$out" | grep -c ENOMEM)" 1
is "a later open of an open stream shares its rings" \
	"$(echo "$out" | grep -c 'open OK')" 4
done_testing
