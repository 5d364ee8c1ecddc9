#!/bin/bash
# The tbstream command on fake system roots (plain files, no simulator):
# help, usage errors, exit statuses, and list's output.
set -u
: "${TBSTREAM:?TBSTREAM must name the tbstream binary}"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# status EXPECTED DESC CMD...: the command exits with EXPECTED
status() {
	local want=$1 desc=$2 got
	shift 2
	timeout 20 "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $got, expected $want)"
		sed 's/^/#   /' "$tmp/err"
	fi
}
grep_ok() { if grep -q -- "$2" "$3"; then ok "$1"; else not_ok "$1"; sed 's/^/#   /' "$3"; fi; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
put() { mkdir -p "$(dirname "$1")"; echo "$2" >"$1"; }

ts=$TBSTREAM
for c in "" list up down pipe send recv image "image send" "image recv" \
	"image verify" bench cam "cam send" "cam recv" forward disk \
	"disk share" "disk attach" reconcile doctor; do
	# shellcheck disable=SC2086
	status 0 "help of '${c:-tbstream}'" $ts $c --help
	grep_ok "help of '${c:-tbstream}' has a usage line" Usage "$tmp/out"
	grep_ok "and lists --help" "--help" "$tmp/out"
done
status 0 "--version" $ts --version
status 2 "no command is a usage error" $ts
status 2 "unknown command is a usage error" $ts frobnicate
status 2 "unknown option is a usage error" $ts list --frob
status 2 "up without NAME" $ts up
status 2 "up with a bad time-out" $ts up x --timeout soon
status 2 "up with an unknown profile" $ts up x --profile fast
grep_ok "and names the value and the option" "'fast' for --profile" "$tmp/err"
status 2 "pipe with a bad time-out" $ts pipe --timeout=soon
grep_ok "and names the value and the option" "'soon' for --timeout" "$tmp/err"
status 2 "send-only without raw" $ts pipe --send-only
status 2 "doctor with an argument" $ts doctor extra
status 2 "doctor with an unknown option" $ts doctor --frob

root=$tmp/empty
mkdir -p "$root"
status 3 "list without a bus: exit 3" $ts --sysroot "$root" list
grep_ok "says there is no bus" "no Thunderbolt/USB4 bus" "$tmp/err"

root=$tmp/nodriver
mkdir -p "$root/sys/bus/thunderbolt/devices"
status 3 "up without the driver: exit 3" $ts --sysroot "$root" up x
grep_ok "says to load the driver" "modprobe thunderbolt_stream" "$tmp/err"
status 0 "list without the driver still lists" $ts --sysroot "$root" list
grep_ok "and says why there are no streams" "not loaded" "$tmp/out"

# doctor on fake roots: a kernel too old, and the module in lib/modules
# but not loaded, each with one line per check and its exit status.
root=$tmp/old
put "$root/proc/sys/kernel/osrelease" 6.12.3-amd64
mkdir -p "$root/sys/bus/thunderbolt/devices" "$root/lib/modules/6.12.3-amd64"
put "$root/lib/modules/6.12.3-amd64/modules.dep" \
	"kernel/drivers/thunderbolt/thunderbolt.ko:"
status 3 "doctor on a kernel before 7.2: exit 3" $ts --sysroot "$root" doctor
grep_ok "says the kernel is too old" "^FAIL  kernel  *Linux 6.12.3-amd64 is older than 7.2" "$tmp/out"
grep_ok "and that it has no module" "^FAIL  driver  *this kernel (6.12.3-amd64) has no thunderbolt_stream module" "$tmp/out"
if grep -Evq '^(ok|info|warn|FAIL) +[a-z]+ +[^ ]' "$tmp/out"; then
	not_ok "doctor prints one line per check"
else
	ok "doctor prints one line per check"
fi
root=$tmp/unloaded
put "$root/proc/sys/kernel/osrelease" 7.3.1
mkdir -p "$root/sys/bus/thunderbolt/devices" "$root/lib/modules/7.3.1"
put "$root/lib/modules/7.3.1/modules.dep" \
	"kernel/drivers/thunderbolt/thunderbolt_stream.ko: kernel/drivers/thunderbolt/thunderbolt.ko"
status 3 "doctor with the module not loaded: exit 3" \
	$ts --sysroot "$root" doctor --json
if python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
c = {x["check"]: x for x in j["checks"]}
assert not j["ok"] and j["exit_status"] == 3
assert c["kernel"]["status"] == "ok"
assert c["driver"]["status"] == "fail" and c["driver"]["code"] < 0
assert "modprobe thunderbolt_stream" in c["driver"]["message"]
' "$tmp/out"; then
	ok "doctor --json: the kernel is fine, the module is not loaded"
else
	not_ok "doctor --json: the kernel is fine, the module is not loaded"
fi

root=$tmp/alone
mkdir -p "$root/sys/bus/thunderbolt/devices" \
	"$root/sys/kernel/config/thunderbolt/stream"
put "$root/sys/bus/thunderbolt/devices/0-0/unique_id" aaaa
status 3 "up without a peer: exit 3 after the time-out" \
	$ts --sysroot "$root" up x --timeout 1
grep_ok "says there is no peer" "no peer" "$tmp/err"
status 3 "down of a stream that does not exist: exit 3" \
	$ts --sysroot "$root" down x
grep_ok "names the stream" "'x'" "$tmp/err"

# A fake root with one peer (stream at service .1) and one stream.
root=$tmp/one
d=$root/sys/bus/thunderbolt/devices
c=$root/sys/kernel/config/thunderbolt/stream
put "$d/0-0/unique_id" aaaa
put "$d/0-1/unique_id" bbbb
put "$d/0-1/device_name" 'peer "b"'
put "$d/0-1.0/key" network
put "$d/0-1.1/key" stream
for a in index:3 in_hopid:9 out_hopid:9 ring_size:256 throttling:8192; do
	put "$c/0-1.1/s/${a%%:*}" "${a#*:}"
done
status 0 "list" $ts --sysroot "$root" list
grep_ok "list shows the peer" "Route 1" "$tmp/out"
grep_ok "list shows the stream" "Stream s: $root/dev/tbstream3" "$tmp/out"
status 0 "list --json" $ts --sysroot "$root" list --json
if python3 - "$tmp/out" "$root" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
p = j["peers"][0]
s = p["streams"][0]
assert j["host_unique_id"] == "aaaa"
assert p["unique_id"] == "bbbb" and p["device_name"] == 'peer "b"'
assert p["service"] == "0-1.1" and p["network"] is True
assert s["name"] == "s" and s["index"] == 3 and s["in_hopid"] == 9
assert s["device"] == sys.argv[2] + "/dev/tbstream3" and s["open"] is False
assert j["not_connected"] == []
PY
then ok "list --json is valid and complete"; else not_ok "list --json is valid and complete"; fi
# A peer's name that would drive the terminal reaches it escaped, in
# every part of the output of list and doctor.
printf 'evil\033[2J\r\342\200\256x\n' >"$d/0-1/device_name"
for c in list doctor; do
	status 0 "$c with a hostile peer name" $ts --sysroot "$root" $c
	if grep -q "$(printf '\033')" "$tmp/out" ||
		grep -q "$(printf '\r')" "$tmp/out"; then
		not_ok "and no control byte of it reaches the terminal"
	else
		ok "and no control byte of it reaches the terminal"
	fi
	grep_ok "and its bidirectional override is spelled out" \
		'\\xe2\\x80\\xae' "$tmp/out"
done
put "$d/0-1/device_name" 'peer "b"'
TBSTREAM_SYSROOT=$root status 0 "TBSTREAM_SYSROOT is honoured" $ts list
grep_ok "the same peer through the environment" "Route 1" "$tmp/out"
status 3 "--peer that matches nothing: exit 3" \
	$ts --sysroot "$root" up s --peer nope --timeout 1

echo "1..$n"
[ "$failed" -eq 0 ]
