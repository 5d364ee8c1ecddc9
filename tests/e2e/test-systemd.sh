#!/bin/bash
# The systemd units of contrib/systemd: systemd-analyze verify (Debian's
# systemd; no running systemd needed) finds every unit and template
# instance clean, and finds a broken copy broken; the sandbox's exposure
# as systemd-analyze security rates it; then the command lines of the
# reconcile units, as systemd would run them for the instances the udev
# rule starts (tbstream-reconcile@SERVICE.service), bring the configured
# streams up on two simulated hosts, also under the unit's capability
# bounding set, with no new privileges and a read-only root.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"

need systemd-analyze

sim_start --adv-delay 200 --node-delay 50
U=$TMP/units
mkdir -p "$U"
bindir=$(dirname "$TBSTREAM")
for f in "$TOP_SRCDIR"/contrib/systemd/*.service.in; do
	sed "s#@bindir@#$bindir#g" "$f" >"$U/$(basename "$f" .in)"
done

# verify UNIT...: clean means exit 0 and not a word of warning.
verify() {
	(cd "$U" && SYSTEMD_UNIT_PATH=$U: t systemd-analyze verify --man=no \
		"$@") >"$TMP/verify.out" 2>&1
	local r=$?
	sed 's/^/#   /' "$TMP/verify.out"
	[ $r -eq 0 ] && [ ! -s "$TMP/verify.out" ]
}

for f in "$U"/*.service; do
	check "verify $(basename "$f")" verify "$f"
done
for i in tbstream-reconcile@0-503.0.service tbstream-forward@ssh.service \
	tbstream-cam@front.service; do
	check "verify the instance $i" verify "$i"
done
sed 's/^ExecStart=/ExecStrat=/' "$U/tbstream-reconcile.service" \
	>"$TMP/broken.service"
check_fails "verify finds a broken unit broken" verify "$TMP/broken.service"

for u in tbstream-reconcile.service tbstream-forward@ssh.service \
	tbstream-cam@front.service; do
	(cd "$U" && SYSTEMD_UNIT_PATH=$U: t systemd-analyze security \
		--offline=true --no-pager "$u") >"$TMP/sec" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' \
		"$TMP/sec")
	diag "$u: exposure $level (systemd-analyze security, 0 best, 10 worst)"
	check "$u: exposure rated OK (below 4)" \
		python3 -c "import sys; sys.exit(not 0 < float('$level') < 4)"
done

# The command lines the templates promise to the jobs that fill them.
check "forward@: tbstream forward with the instance's options" grep -qx \
	"ExecStart=$bindir/tbstream forward \$FORWARD_OPTS" \
	"$U/tbstream-forward@.service"
check "forward@: options from /etc/tbstream/forward/INSTANCE.env" grep -qx \
	"EnvironmentFile=/etc/tbstream/forward/%i.env" \
	"$U/tbstream-forward@.service"
check "cam@: tbstream cam send with the instance's options" grep -qx \
	"ExecStart=$bindir/tbstream cam send \$CAM_OPTS" \
	"$U/tbstream-cam@.service"
for cmd in forward "cam send"; do
	# shellcheck disable=SC2086
	if "$TBSTREAM" $cmd --help >/dev/null 2>&1; then
		ok "tbstream $cmd exists for its template"
	else
		skip "tbstream $cmd is not in this build yet"
	fi
done

# exec_start UNIT INSTANCE: the unit's ExecStart= words, %I and %i
# replaced, as systemd would execute them.
exec_start() {
	sed -n 's/^ExecStart=//p' "$U/$1" | sed "s/%[Ii]/$2/g"
}

CONF=$TMP/streams.conf
printf '*  backup  throughput\n*  cam  latency\n' >"$CONF"
export TBSTREAM_CONFIG=$CONF
# udev starts tbstream-reconcile@0-503.0 on host1, @0-1.0 on host2.
read -r -a c1 <<<"$(exec_start tbstream-reconcile@.service 0-503.0)"
read -r -a c2 <<<"$(exec_start tbstream-reconcile@.service 0-1.0)"
is "the instance's command line" "${c1[*]}" \
	"$bindir/tbstream reconcile --peer 0-503.0"
# on_both WRAPPER: the two instances' command lines at once, each on its
# host, through WRAPPER (t, or the sandbox below); both must exit 0.
on_both() {
	local p r1 r2
	TBSTREAM_SYSROOT=$H1 "$1" "${c1[@]}" >"$TMP/o1" 2>&1 &
	p=$!
	TBSTREAM_SYSROOT=$H2 "$1" "${c2[@]}" >"$TMP/o2" 2>&1
	r2=$?
	wait $p
	r1=$?
	sed 's/^/# /' "$TMP/o1" "$TMP/o2"
	[ "$r1$r2" = 00 ]
}
mirrored() {
	test "$(attr "$H1" "$1" in_hopid)/$(attr "$H1" "$1" out_hopid)" = \
		"$(attr "$H2" "$1" out_hopid)/$(attr "$H2" "$1" in_hopid)"
}
check "reconcile@ on both hosts: exit 0" on_both t
for n in backup cam; do
	check "$n: HopIDs mirrored" mirrored $n
done
read -r -a c <<<"$(exec_start tbstream-reconcile.service x)"
TBSTREAM_SYSROOT=$H1 t "${c[@]}" --json >"$TMP/boot.json"
check "the boot unit's command: both streams up" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert [s["state"] for s in j["streams"]] == ["up", "up"], j' "$TMP/boot.json"
# The sandbox, as far as it can be had without a running systemd: the
# unit's CapabilityBoundingSet= and NoNewPrivileges= (setpriv), and the
# read-only root of ProtectSystem=strict (a private mount namespace whose
# / is remounted read-only; /sys, /dev, /proc and the simulator's mount
# stay writable, as under systemd).  The streams must still come up.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' \
	"$U/tbstream-reconcile@.service" | tr 'A-Z' 'a-z' |
	sed 's/cap_/+/g; s/ /,/g')
cat >"$TMP/sandbox.sh" <<'EOF'
set -e
caps=$1
shift
mount -o remount,bind,ro /
exec setpriv --nnp --bounding-set "-all,$caps" -- "$@"
EOF
sandbox() {
	t unshare -m sh "$TMP/sandbox.sh" "$caps" "$@"
}
check_fails "in the sandbox the root is read-only" \
	sandbox sh -c ": >/var/tmp/tbstream-sandbox-probe"
rm -f /var/tmp/tbstream-sandbox-probe
# CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19
is "in the sandbox only the unit's capabilities are bounded" \
	"$(sandbox sh -c 'grep ^CapBnd /proc/self/status' | awk '{print $2}')" \
	"$(printf '%016x' $(((1 << 19) | (1 << 1) | (1 << 2))))"
ts "$H1" down --all
ts "$H2" down --all
check "sandboxed reconcile@ on both hosts: exit 0" on_both sandbox
check "sandboxed: backup mirrored" mirrored backup
done_testing
