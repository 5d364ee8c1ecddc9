#!/bin/sh
# Conformance of tbsim's ConfigFS with the contract, section 2: one test
# per statement, as plain file operations.
. "$TOP_SRCDIR/tests/lib.sh"

sim_start --adv-delay 150 --node-delay 300

is "stream root exists and is empty" "$(ls "$C1")" ""

for bad in foo 0-503 0-503. 0-zz.0 x-1.0 0-503.0.1 -1.0 0-.0; do
	is "mkdir service '$bad' fails with EINVAL" \
		"$(errno_of mkdir "$C1/$bad")" EINVAL
done
check "mkdir service 0-503.0 works" mkdir "$C1/0-503.0"
is "a second mkdir of it fails with EEXIST" \
	"$(errno_of mkdir "$C1/0-503.0")" EEXIST
is "a stream name of 9 bytes fails with ENAMETOOLONG" \
	"$(errno_of mkdir "$C1/0-503.0/ninechars")" ENAMETOOLONG
check "a stream name of 8 bytes works" mkdir "$C1/0-503.0/eightchr"
S=$C1/0-503.0/eightchr
is "the stream directory is filled with its attributes at once" \
	"$(ls "$S" | sort | tr '\n' ' ')" \
	"in_hopid index out_hopid ring_size throttling "
is "in_hopid defaults to 0" "$(cat "$S/in_hopid")" 0
is "out_hopid defaults to 0" "$(cat "$S/out_hopid")" 0
is "ring_size defaults to 256" "$(cat "$S/ring_size")" 256
is "throttling defaults to 8192" "$(cat "$S/throttling")" 8192
is "index is the device number" "$(cat "$S/index")" 0
check_fails "index is read-only" write_attr "$S/index" 5
check "the device node is not there at once (it comes from udev)" \
	test ! -e "$H1/dev/tbstream0"
check "the device node appears shortly after" \
	wait_for 5 test -e "$H1/dev/tbstream0"

# ring_size and throttling ranges
for v in 31 4097 0 -1 abc; do
	is "ring_size $v fails with EINVAL" \
		"$(errno_of write_attr "$S/ring_size" "$v")" EINVAL
done
check "ring_size 32 is accepted" write_attr "$S/ring_size" 32
check "ring_size 4096 is accepted" write_attr "$S/ring_size" 4096
is "ring_size reads back" "$(cat "$S/ring_size")" 4096
for v in -1 16776961 x; do
	is "throttling $v fails with EINVAL" \
		"$(errno_of write_attr "$S/throttling" "$v")" EINVAL
done
check "throttling 0 is accepted" write_attr "$S/throttling" 0
check "throttling 16776960 is accepted" write_attr "$S/throttling" 16776960

# HopIDs
check "in_hopid -1 allocates" write_attr "$S/in_hopid" -1
v=$(cat "$S/in_hopid")
check "the allocated in_hopid is at least 8 ($v)" test "$v" -ge 8
check "out_hopid 12 takes exactly 12" write_attr "$S/out_hopid" 12
is "out_hopid reads back 12" "$(cat "$S/out_hopid")" 12
mkdir "$C1/0-503.0/other"
O=$C1/0-503.0/other
is "out_hopid 12 on another stream fails with EBUSY" \
	"$(errno_of write_attr "$O/out_hopid" 12)" EBUSY
for v in 7 1 20 -2 x; do
	is "in_hopid $v fails with EINVAL (8..19)" \
		"$(errno_of write_attr "$O/in_hopid" "$v")" EINVAL
done
check "out_hopid 19 (the highest) is accepted" write_attr "$O/out_hopid" 19
check "out_hopid 0 releases" write_attr "$S/out_hopid" 0
is "released HopID reads 0" "$(cat "$S/out_hopid")" 0
check "a released HopID can be taken by another stream" \
	write_attr "$O/out_hopid" 12
i=8
while [ $i -le 19 ]; do
	mkdir "$C1/0-503.0/h$i"
	write_attr "$C1/0-503.0/h$i/in_hopid" -1 2>/dev/null
	i=$((i + 1))
done
is "in_hopid -1 fails when every HopID is taken" \
	"$(errno_of write_attr "$C1/0-503.0/h19/in_hopid" -1)" ENOSPC
i=8
while [ $i -le 19 ]; do rmdir "$C1/0-503.0/h$i"; i=$((i + 1)); done
is "rmdir of a service with streams fails with ENOTEMPTY" \
	"$(errno_of rmdir "$C1/0-503.0")" ENOTEMPTY
check "rmdir of the streams works" rmdir "$S" "$O"
check "the device nodes go with them" test ! -e "$H1/dev/tbstream0"
check "then rmdir of the service works" rmdir "$C1/0-503.0"

# device numbers: lowest free, per host
mkdir -p "$C1/0-503.0/pad" "$C1/0-503.0/a" "$C2/0-1.0/a"
is "X is the lowest free number on host1" \
	"$(cat "$C1/0-503.0/a/index")" 1
is "the same stream has another X on host2" \
	"$(cat "$C2/0-1.0/a/index")" 0
rmdir "$C1/0-503.0/pad"
mkdir "$C1/0-503.0/b"
is "a freed number is reused" "$(cat "$C1/0-503.0/b/index")" 0
rmdir "$C1/0-503.0/a" "$C1/0-503.0/b" "$C2/0-1.0/a"

# advertisement
write_attr "$C2/0-1.0/adv/in_hopid" -1 2>/dev/null
mkdir "$C2/0-1.0/adv"
mkdir "$C1/0-503.0/adv" # before the peer has HopIDs: keeps 0/0
write_attr "$C2/0-1.0/adv/in_hopid" 9
write_attr "$C2/0-1.0/adv/out_hopid" 11
sleep 0.5
is "a stream made before the advertisement keeps in_hopid 0" \
	"$(cat "$C1/0-503.0/adv/in_hopid")" 0
is "... and out_hopid 0, even after it arrived" \
	"$(cat "$C1/0-503.0/adv/out_hopid")" 0
rmdir "$C1/0-503.0/adv"
mkdir "$C1/0-503.0/adv"
is "made again, it takes the peer's out_hopid as its in_hopid" \
	"$(cat "$C1/0-503.0/adv/in_hopid")" 11
is "... and the peer's in_hopid as its out_hopid" \
	"$(cat "$C1/0-503.0/adv/out_hopid")" 9
mkdir "$C1/0-503.0/othernm"
is "a stream of another name takes nothing" \
	"$(cat "$C1/0-503.0/othernm/in_hopid")" 0
rmdir "$C1/0-503.0/othernm" "$C1/0-503.0/adv"
write_attr "$C2/0-1.0/adv/in_hopid" 0
sleep 0.5
mkdir "$C1/0-503.0/adv"
is "a stream whose HopIDs were released is not advertised" \
	"$(cat "$C1/0-503.0/adv/out_hopid")" 0
rmdir "$C1/0-503.0/adv" "$C2/0-1.0/adv"
mkdir "$C2/0-1.0/fresh"
write_attr "$C2/0-1.0/fresh/in_hopid" -1
write_attr "$C2/0-1.0/fresh/out_hopid" -1
mkdir "$C1/0-503.0/fresh"
is "the advertisement takes time to cross the cable" \
	"$(cat "$C1/0-503.0/fresh/in_hopid")" 0
rmdir "$C1/0-503.0/fresh"
sleep 0.5
mkdir "$C1/0-503.0/fresh"
check "after the delay it has arrived" \
	test "$(cat "$C1/0-503.0/fresh/in_hopid")" != 0
rmdir "$C1/0-503.0/fresh" "$C2/0-1.0/fresh"

# a service directory made before the peer is connected
echo unplug >"$CTL"
check "unplugging removes the XDomain" \
	test ! -e "$H1/sys/bus/thunderbolt/devices/0-503"
mkdir "$C2/0-1.0/early"
write_attr "$C2/0-1.0/early/in_hopid" -1
write_attr "$C2/0-1.0/early/out_hopid" -1
mkdir "$C1/0-503.0/early"
wait_for 5 test -e "$H1/dev/tbstream$(cat "$C1/0-503.0/early/index")"
is "a stream made with no peer has no HopIDs" \
	"$(cat "$C1/0-503.0/early/in_hopid")" 0
is "and is not attached (non-blocking open: ENXIO)" \
	"$(sio "$H1/dev/tbstream$(cat "$C1/0-503.0/early/index")" rn | head -1)" \
	"open ENXIO"
rmdir "$C1/0-503.0/early"
mkdir "$C1/0-503.0/early"
echo plug >"$CTL"
check "the peer's service appears after the plug" \
	wait_for 5 test -e "$H1/sys/bus/thunderbolt/devices/0-503.0"
is "the stream attached when it appeared and took the advertisement" \
	"$(cat "$C1/0-503.0/early/in_hopid")" \
	"$(cat "$C2/0-1.0/early/out_hopid")"
check "configuration outlived the unplug on the other host" \
	test "$(cat "$C2/0-1.0/early/in_hopid")" != 0
rmdir "$C1/0-503.0/early" "$C2/0-1.0/early"

# both sides allocating on their own: numbers need not match
mkdir "$C2/0-1.0/pad"
write_attr "$C2/0-1.0/pad/in_hopid" -1
write_attr "$C2/0-1.0/pad/out_hopid" -1
mkdir "$C1/0-503.0/both" "$C2/0-1.0/both"
for h in "$C1/0-503.0/both" "$C2/0-1.0/both"; do
	write_attr "$h/in_hopid" -1
	write_attr "$h/out_hopid" -1
done
check "-1 on both hosts can give HopIDs that do not match" \
	test "$(cat "$C1/0-503.0/both/out_hopid")" != \
	"$(cat "$C2/0-1.0/both/in_hopid")"
Db1=$H1/dev/tbstream$(cat "$C1/0-503.0/both/index")
Db2=$H2/dev/tbstream$(cat "$C2/0-1.0/both/index")
wait_for 5 test -e "$Db1" -a -e "$Db2"
out=$(sio "$Db2" rn sleep:300 read:100 & sleep 0.1; sio "$Db1" w write:100 >/dev/null; wait)
is "... and then no data flows" "$(echo "$out" | tail -1)" "read EAGAIN"
rmdir "$C1/0-503.0/both" "$C2/0-1.0/both" "$C2/0-1.0/pad"

# attributes refuse changes while the device is open
sim_pair busy
sio "$D1" r sleep:1500 >/dev/null &
holder=$!
sleep 0.4
for a in in_hopid out_hopid ring_size throttling; do
	is "writing $a while the device is open fails with EBUSY" \
		"$(errno_of write_attr "$S1/$a" 64)" EBUSY
done
wait $holder
sleep 0.7 # the last close flushes for up to half a second
check "after the last close, attributes can be written again" \
	write_attr "$S1/ring_size" 64
rmdir "$S1"
mkdir "$S1"
is "a stream made again starts from the default ring_size" \
	"$(cat "$S1/ring_size")" 256
done_testing
