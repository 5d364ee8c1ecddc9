# Two network namespaces for the network transport's tests, sourced after
# tests/lib.sh and sim_start.
# shellcheck shell=bash
#
# Each simulated host gets a network namespace of its own, held by a small
# process of this test, and the two are joined by a veth pair named like
# IP over Thunderbolt (thunderbolt0 on both sides).  No namespace is
# named, so nothing is mounted: a namespace ends with the last process in
# it.  The holders watch the test's process and end within a second of
# it, whatever ended it (even SIGKILL); net_cleanup ends them at once.
# Nothing in the namespaces reaches anything outside them: they have their
# loopback interface and the veth end, and no route elsewhere.
#
#	net_start		NS1, NS2: the holders' process ids
#	in1 / in2 CMD...	CMD in host1's / host2's namespace
#	n1 / n2 ARGS...		tbstream there, on $H1 / $H2, time-limited
#	bg1 / bg2 ARGS...	the same in the background, $! its own pid (for
#				signals); end it with wait_limit
#	link_up / link_down NS	the veth end of a namespace
#	ll_ready NS		its link-local address is usable
#	if_up NS		its veth end is up

NS1= NS2= NS_HOLDERS=

net_cleanup() {
	local p
	for p in $NS_HOLDERS; do kill "$p" 2>/dev/null; done
	for p in $NS_HOLDERS; do wait "$p" 2>/dev/null; done
	NS_HOLDERS= NS1= NS2=
}

# A process in a new network namespace that lives as long as this test.
ns_holder() {
	unshare --net -- bash -c \
		'trap "exit 0" TERM; for i in $(seq 1800); do
			kill -0 '"$$"' 2>/dev/null || exit 0; sleep 0.5; done' &
	NS_HOLDERS="$NS_HOLDERS $!"
}

# ns_entered PID: PID's network namespace is not this test's.
ns_entered() {
	local theirs
	theirs=$(readlink /proc/"$1"/ns/net) || return 1
	[ "$theirs" != "$(readlink /proc/$$/ns/net)" ]
}

in1() { nsenter --net=/proc/"$NS1"/ns/net -- "$@"; }
in2() { nsenter --net=/proc/"$NS2"/ns/net -- "$@"; }
n1() { t nsenter --net=/proc/"$NS1"/ns/net -- "$TBSTREAM" --sysroot "$H1" "$@"; }
n2() { t nsenter --net=/proc/"$NS2"/ns/net -- "$TBSTREAM" --sysroot "$H2" "$@"; }
bg1() { (exec nsenter --net=/proc/"$NS1"/ns/net -- "$TBSTREAM" --sysroot "$H1" "$@") & }
bg2() { (exec nsenter --net=/proc/"$NS2"/ns/net -- "$TBSTREAM" --sysroot "$H2" "$@") & }

# wait_limit PID: its exit status, waiting at most $T seconds (then it is
# killed and the status is 124).
wait_limit() {
	local i
	for i in $(seq $((T * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}

in_ns() { nsenter --net=/proc/"$1"/ns/net -- "${@:2}"; }

if_up() { [ -n "$(in_ns "$1" ip link show up dev thunderbolt0)" ]; }
link_up() { in_ns "$1" ip link set thunderbolt0 up; }
link_down() { in_ns "$1" ip link set thunderbolt0 down; }
ll_ready() {
	in_ns "$1" ip -6 -o addr show dev thunderbolt0 scope link |
		grep -v tentative | grep -q fe80
}
ll_of() {
	in_ns "$1" ip -6 -o addr show dev thunderbolt0 scope link |
		sed -n 's/.* inet6 \(fe80[^/]*\)\/.*/\1/p'
}

# net_start [down]: the namespaces and the veth pair, up unless "down".
net_start() {
	if [ "$(id -u)" -ne 0 ] || ! command -v nsenter >/dev/null ||
		! unshare --net true 2>/dev/null; then
		skip "network namespaces need root"
		done_testing
		exit 0
	fi
	trap 'capture_stop; net_cleanup; sim_cleanup' EXIT
	ns_holder
	NS1=${NS_HOLDERS##* }
	ns_holder
	NS2=${NS_HOLDERS##* }
	wait_for 5 ns_entered "$NS1" && wait_for 5 ns_entered "$NS2" ||
		bail "the holders did not enter their namespaces"
	ip link add thunderbolt0 netns "$NS1" type veth peer name thunderbolt0 \
		netns "$NS2" || bail "no veth pair"
	in1 ip link set lo up
	in2 ip link set lo up
	if [ "${1:-}" != down ]; then
		link_up "$NS1"
		link_up "$NS2"
		wait_for 10 ll_ready "$NS1" && wait_for 10 ll_ready "$NS2" ||
			bail "no link-local addresses"
	fi
}

# capture_start: every packet in both namespaces, on every interface.
CAPS=
capture_start() {
	command -v tcpdump >/dev/null || return 0
	# (exec: $! is then timeout itself, which passes capture_stop's
	# signal on to tcpdump, rather than a subshell that would leave it)
	(exec nsenter --net=/proc/"$NS1"/ns/net -- timeout 600 tcpdump -Z root \
		-i any -n -U -w "$TMP/cap1" >/dev/null 2>&1) &
	CAPS="$CAPS $!"
	(exec nsenter --net=/proc/"$NS2"/ns/net -- timeout 600 tcpdump -Z root \
		-i any -n -U -w "$TMP/cap2" >/dev/null 2>&1) &
	CAPS="$CAPS $!"
	wait_for 5 test -s "$TMP/cap1" -a -s "$TMP/cap2"
}

capture_stop() {
	local p
	for p in $CAPS; do kill -TERM "$p" 2>/dev/null; done
	for p in $CAPS; do wait "$p" 2>/dev/null; done
	CAPS=
}
