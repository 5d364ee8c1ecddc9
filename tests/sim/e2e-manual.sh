#!/bin/sh
# The kernel's own manual workflow (contract section 4), run with the
# unmodified tools on two simulated hosts, data checked byte for byte.
. "$TOP_SRCDIR/tests/lib.sh"

sim_start --adv-delay 100 --node-delay 20
W=$TMP

# receiving host (host2 sees its peer at 0-1) allocates
check "receiver: mkdir service and stream" \
	mkdir "$C2/0-1.0" "$C2/0-1.0/backup"
check "receiver: echo -1 > in_hopid" sh -c "echo -1 > $C2/0-1.0/backup/in_hopid"
check "receiver: echo -1 > out_hopid" sh -c "echo -1 > $C2/0-1.0/backup/out_hopid"
sleep 0.3 # the advertisement crosses the cable
# sending host (sees its peer at 0-503) takes the HopIDs by using the name
check "sender: mkdir service and stream" \
	mkdir "$C1/0-503.0" "$C1/0-503.0/backup"
is "sender's in_hopid mirrors receiver's out_hopid" \
	"$(cat "$C1/0-503.0/backup/in_hopid")" \
	"$(cat "$C2/0-1.0/backup/out_hopid")"
is "sender's out_hopid mirrors receiver's in_hopid" \
	"$(cat "$C1/0-503.0/backup/out_hopid")" \
	"$(cat "$C2/0-1.0/backup/in_hopid")"
D1=$H1/dev/tbstream$(cat "$C1/0-503.0/backup/index")
D2=$H2/dev/tbstream$(cat "$C2/0-1.0/backup/index")
check "device nodes appear" wait_for 5 test -e "$D1" -a -e "$D2"

# a disk image with dd, reader first as the driver's documentation says
head -c 12345678 /dev/urandom >"$W/disk.img"
t dd if="$D2" of="$W/disk.copy" bs=256k status=none &
reader=$!
sleep 0.3
check "dd of=/dev/tbstreamX on the sender" \
	t dd if="$W/disk.img" of="$D1" bs=256k status=none
check "dd if=/dev/tbstreamX on the receiver ends at the sender's close" \
	wait $reader
check "image arrives byte for byte" cmp "$W/disk.img" "$W/disk.copy"

# a tree with tar and gzip
mkdir -p "$W/tree/a/b" "$W/out"
head -c 300000 /dev/urandom >"$W/tree/a/b/random"
seq 1 100000 >"$W/tree/a/numbers"
ln -s b/random "$W/tree/a/link"
(cd "$W/out" && t sh -c "gunzip < '$D2' | tar xf -") &
reader=$!
sleep 0.3
check "tar cf - dir | gzip > /dev/tbstreamX" \
	t sh -c "cd '$W' && tar cf - tree | gzip > '$D1'"
check "gunzip < /dev/tbstreamX | tar xf -" wait $reader
check "tree arrives identical" diff -r "$W/tree" "$W/out/tree"
is "symbolic link kept" "$(readlink "$W/out/tree/a/link")" "b/random"

# the other direction on the same stream, with cat
seq 1 50000 >"$W/back.txt"
t cat "$D1" >"$W/back.copy" &
reader=$!
sleep 0.3
check "cat file > /dev/tbstreamX, other direction" \
	t sh -c "cat '$W/back.txt' > '$D2'"
check "reader ends" wait $reader
check "reverse direction arrives intact" cmp "$W/back.txt" "$W/back.copy"

# clean-up as the kernel's example does
check "rmdir -p on the sender" \
	sh -c "cd '$C1' && rmdir -p 0-503.0/backup"
check "rmdir -p on the receiver" \
	sh -c "cd '$C2' && rmdir -p 0-1.0/backup"
is "ConfigFS empty again on host1" "$(ls "$C1")" ""
is "ConfigFS empty again on host2" "$(ls "$C2")" ""
check "device nodes gone" test ! -e "$D1" -a ! -e "$D2"
done_testing
