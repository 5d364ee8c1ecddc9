# Helpers for the tbstream end-to-end tests, sourced after tests/lib.sh.
# shellcheck shell=bash

# ts HOST ARGS...: tbstream on HOST ($H1 or $H2), under a time limit.
ts() {
	local host=$1
	shift
	t "$TBSTREAM" --sysroot "$host" "$@"
}

# up_pair A B NAME [OPTIONS...]: 'tbstream up NAME' on host A in the
# background and at once on host B, their output dropped; fails when
# either fails.
up_pair() {
	local a=$1 b=$2 pid st
	shift 2
	ts "$a" up "$@" >/dev/null 2>&1 &
	pid=$!
	ts "$b" up "$@" >/dev/null 2>&1
	st=$?
	wait $pid && [ $st -eq 0 ]
}

# cmp_tree A B: the two trees hold the same entries, contents, modes and
# times (tree-compare.py names the differences).
# send_to PID SEND_ARGS...: once the receiver PID (started in the
# background, its output in $TMP/r.json and r.err) is waiting, sends from
# host1 with SEND_ARGS; sets RS and RR to both exit statuses and shows
# both error outputs.
send_to() {
	local r=$1
	shift
	sleep 0.3
	ts "$H1" send --json "$@" >"$TMP/s.json" 2>"$TMP/s.err"
	RS=$?
	wait "$r"
	RR=$?
	sed 's/^/# send: /' "$TMP/s.err"
	sed 's/^/# recv: /' "$TMP/r.err"
}

cmp_tree() { python3 "$TOP_SRCDIR/tests/e2e/tree-compare.py" "$@"; }

# json FILE KEY: one field of a JSON summary.
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

uid_of() {
	cat "$1/sys/bus/thunderbolt/devices/0-0/unique_id"
}

# Sets $ALLOC and $FOLLOW to the host that allocates and the one that
# follows (the lower unique id allocates).
roles() {
	if [[ $(uid_of "$H1" | tr A-F a-f) < $(uid_of "$H2" | tr A-F a-f) ]]
	then
		ALLOC=$H1 FOLLOW=$H2
	else
		ALLOC=$H2 FOLLOW=$H1
	fi
}

# cfg HOST: the ConfigFS tree of HOST with the contents of its attributes.
cfg() {
	local root=$1/sys/kernel/config/thunderbolt/stream f
	(cd "$root" && find . | sort | while read -r f; do
		if [ -f "$f" ]; then echo "$f=$(cat "$f")"; else echo "$f"; fi
	done)
}

# cfg_snap: remembers both hosts' ConfigFS trees (as $empty1, $empty2).
cfg_snap() {
	empty1=$(cfg "$H1") empty2=$(cfg "$H2")
}

# cfg_same [PREFIX]: two test cases, ok when each host's ConfigFS tree is
# as cfg_snap found it.
cfg_same() {
	check "${1:+$1: }host1's ConfigFS as before" \
		test "$empty1" = "$(cfg "$H1")"
	check "${1:+$1: }host2's ConfigFS as before" \
		test "$empty2" = "$(cfg "$H2")"
}

# attr HOST NAME ATTR: one attribute of stream NAME on HOST.
attr() {
	cat "$1"/sys/kernel/config/thunderbolt/stream/*/"$2/$3"
}

# wait_open HOST NAME: until some process has stream NAME open (10 s).
wait_open() {
	local i
	for i in $(seq 100); do
		"$TBSTREAM" --sysroot "$1" list --json 2>/dev/null |
			python3 -c '
import json, sys
j = json.load(sys.stdin)
ss = [s for p in j["peers"] for s in p["streams"]]
sys.exit(0 if any(s["name"] == sys.argv[1] and s["open"] for s in ss)
	 else 1)' "$2" && return 0
		sleep 0.1
	done
	return 1
}

# same FILE1 FILE2 DESC: ok when the files are byte for byte equal.
same() {
	if cmp -s "$1" "$2"; then
		ok "$3"
	else
		not_ok "$3 ($(stat -c %s "$1" 2>/dev/null || echo none) vs" \
			"$(stat -c %s "$2" 2>/dev/null || echo none) bytes)"
		cmp -l "$1" "$2" 2>&1 | head -5 | sed 's/^/#   /'
	fi
}

# status WANT DESC CMD...: ok when CMD exits with WANT; shows its stderr.
status() {
	local want=$1 desc=$2 got
	shift 2
	"$@" >"$TMP/status.out" 2>"$TMP/status.err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $got, expected $want)"
	fi
	sed 's/^/# /' "$TMP/status.err"
}

# has_msg DESC PATTERN: ok when the last status' stderr matches PATTERN.
has_msg() {
	if grep -Eq -- "$2" "$TMP/status.err"; then
		ok "$1"
	else
		not_ok "$1"
	fi
}

# bench_sane FILE SIZES...: the JSON of 'tbstream bench' on one side has a
# raw and a session result per size, in order, every figure positive and
# p50 <= p90 <= p99, the session's with its ratio to the raw device's
# (structure and sanity, never timing).
bench_sane() {
	python3 - "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
sizes = [int(s) for s in sys.argv[2:]]
res = j["results"]
assert j["role"] in ("leader", "follower"), j["role"]
assert j["stream"] and j["device"] and j["peer_unique_id"]
assert isinstance(j["ring_size"], int) and isinstance(j["throttling"], int)
assert [(r["size"], r["kind"]) for r in res] == \
	[(s, k) for s in sizes for k in ("raw", "session")], res
for r in res:
	for f in ("rtt_p50_us", "rtt_p90_us", "rtt_p99_us", "mb_per_s",
		  "mb_per_s_both"):
		assert isinstance(r[f], (int, float)) and r[f] > 0, (r, f)
	assert r["rtt_p50_us"] <= r["rtt_p90_us"] <= r["rtt_p99_us"], r
	assert r["round_trips"] >= 20 and r["bytes"] >= r["size"], r
	# the session's p50 over the raw device's, block by block
	assert ("rtt_p50_vs_raw" in r) == (r["kind"] == "session"), r
	if r["kind"] == "session":
		assert r["rtt_p50_vs_raw"] > 0, r
PY
}

# initramfs_conf DIR: a small initramfs-tools configuration in DIR for
# mkinitramfs -d (only the modules listed, busybox, gzip).
initramfs_conf() {
	mkdir -p "$1/hooks" "$1/scripts" "$1/conf.d"
	cat >"$1/initramfs.conf" <<EOF
MODULES=list
BUSYBOX=y
COMPRESS=gzip
KEYMAP=n
RUNSIZE=10%
FSTYPE=auto
EOF
	: >"$1/modules"
}
