#!/bin/bash
# tbstream forward and tbstream disk against baselines measured in the
# same run, on the same simulator, printed as ratios:
#
#  1. one connection's throughput through forward (a client sends, a
#     command on the far side reads everything and answers) against
#     'tbstream pipe' moving as many bytes on the same stream; link-bound
#     (the simulator's rate set below what the processors manage, as on a
#     cable) and processor-bound (no rate);
#  2. the round trip of a 64-byte request and its reply through forward
#     against the same exchange with the same echo server over loopback
#     TCP (median and 99th percentile of 2000), and for reference one
#     message through the session against the raw device;
#  3. nbdcopy of a 256 MiB image from 'disk attach' (nbdkit behind
#     'disk share') against dd of the same file through 'tbstream pipe'.
#
# Usage: bench/bench-forward.sh [MIB]   (MIB: the unlimited run, 1024)
# Uses build/ (TBSIM and TBSTREAM may name other binaries).
set -u
T=${T:-600}
. "$(dirname "$0")/common.sh"
. "$top/tests/e2e/forward-lib.sh"
size_mib=${1:-1024}

# forwarded BYTES: one connection through forward: the client sends
# BYTES and half-closes; the far side's command reads them all and
# answers; MiB/s from connect to answer.
forwarded() {
	python3 - "$LP" "$1" <<-'EOF'
		import socket, sys, time
		port, n = int(sys.argv[1]), int(sys.argv[2])
		buf = bytes(1 << 20)
		t0 = time.monotonic()
		s = socket.create_connection(("127.0.0.1", port))
		while n > 0:
		    k = min(n, len(buf))
		    s.sendall(memoryview(buf)[:k])
		    n -= k
		s.shutdown(socket.SHUT_WR)
		assert s.recv(16).startswith(b"done")
		print("%.1f" % (int(sys.argv[2]) / 1048576 / (time.monotonic() - t0)))
	EOF
}

throughput() {
	local r p f
	p=$(piped "$2" bpipe)
	f=$(forwarded "$2")
	printf '%-30s %10s %10s %7s\n' "$1" "$p" "$f" "$(ratio "$f" "$p")"
	PIPE=$p FWD=$f
}

# rtt PORT: median and p99 of 2000 round trips of 64 bytes, in us.
rtt() {
	python3 - "$1" <<-'EOF'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
		s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		msg, ts = b"x" * 64, []
		for i in range(2200):
		    t0 = time.perf_counter()
		    s.sendall(msg)
		    got = 0
		    while got < 64:
		        got += len(s.recv(64 - got))
		    if i >= 200:
		        ts.append(time.perf_counter() - t0)
		ts.sort()
		print("%.0f %.0f" % (ts[len(ts) // 2] * 1e6, ts[len(ts) * 99 // 100] * 1e6))
	EOF
}

# An echo server for the round trips, on loopback TCP.
echo_server() {
	python3 - "$1" <<-'EOF' &
		import socket, sys, threading
		ls = socket.socket()
		ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		ls.bind(("127.0.0.1", int(sys.argv[1])))
		ls.listen(16)
		def serve(c):
		    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		    while True:
		        b = c.recv(65536)
		        if not b:
		            return
		        c.sendall(b)
		while True:
		    c, _ = ls.accept()
		    threading.Thread(target=serve, args=(c,), daemon=True).start()
	EOF
	BG_PIDS="$BG_PIDS $!"
}

fwd_start --adv-delay 100
echo "tbstream forward and disk: MiB/s, and round trips in microseconds"
echo

# --- 1. throughput -------------------------------------------------------------
LP=$(free_port)
fwd "$H2" "$TMP/c.log" bfwd --exec 'cat >/dev/null; echo done'
fwd "$H1" "$TMP/l.log" bfwd --listen "$LP"
link_up "$TMP/l.log" || bail "no link"
printf '%-30s %10s %10s %7s\n' "one connection" "pipe" "forward" "ratio"
throughput "unlimited ($size_mib MiB)" $((size_mib << 20))
limit=$(echo "$PIPE $FWD" | awk '{ m = $1 < $2 ? $1 : $2; print int(m / 2) }')
[ "$limit" -ge 1 ] || limit=1
echo "rate $((limit << 20))" >"$CTL"
throughput "link-bound ($limit MiB/s)" $(((limit << 20) * 10))
echo "rate 0" >"$CTL"
echo

# --- 2. round trips --------------------------------------------------------------
EP=$(free_port)
RP=$(free_port)
echo_server "$EP"
wait_for 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $EP))" ||
	bail "no echo server"
fwd "$H2" "$TMP/rc.log" brtt --connect "127.0.0.1:$EP" --profile latency
fwd "$H1" "$TMP/rl.log" brtt --listen "$RP" --profile latency
link_up "$TMP/rl.log" || bail "no link"
read -r tm tp <<<"$(rtt "$EP")"
read -r fm fp <<<"$(rtt "$RP")"
printf '%-30s %10s %10s %7s\n' "64-byte round trip (us)" "tcp" "forward" "ratio"
printf '%-30s %10s %10s %7s\n' "median" "$tm" "$fm" "$(ratio "$fm" "$tm")"
printf '%-30s %10s %10s %7s\n' "99th percentile" "$tp" "$fp" "$(ratio "$fp" "$tp")"
# For reference, on another stream of the same simulator: one message's
# round trip through the session against the raw device (what forward
# adds to the session is two loopback hops and its event loop).
libdir=$(cd "$(dirname "$TBSTREAM")/../lib" && pwd)
if cc -O2 -pthread -I"$top/include" -o "$TMP/bench-latency" \
	"$top/bench/bench-latency.c" -L"$libdir" -Wl,-rpath,"$libdir" \
	-ltbstream 2>/dev/null; then
	for name in blat blses; do
		ts "$H1" up $name --profile latency >/dev/null &
		up1=$!
		ts "$H2" up $name --profile latency >/dev/null
		wait $up1
	done
	d() { echo "$1/dev/tbstream$(cat "$2"/*/"$3"/index)"; }
	t "$TMP/bench-latency" "$(d "$H1" "$C1" blat)" "$(d "$H2" "$C2" blat)" \
		"$(d "$H1" "$C1" blses)" "$(d "$H2" "$C2" blses)" 2000 |
		grep "   64 B" | sed 's/^/reference: /'
fi
echo

# --- 3. nbdcopy against dd through pipe ---------------------------------------------
if command -v nbdcopy >/dev/null && command -v nbdkit >/dev/null; then
	head -c $((256 << 20)) /dev/urandom >"$TMP/disk.img"
	bg "$TBSTREAM" --sysroot "$H2" disk share "$TMP/disk.img" \
		>"$TMP/s.log" 2>&1
	bg "$TBSTREAM" --sysroot "$H1" disk attach --socket "$TMP/nbd.sock" \
		>"$TMP/a.log" 2>&1
	link_up "$TMP/a.log" || bail "no link"
	nbd() {
		local start
		start=$(now)
		t nbdcopy "nbd+unix:///?socket=$TMP/nbd.sock" null: ||
			bail "nbdcopy failed"
		mbps $((256 << 20)) "$start" "$(now)"
	}
	ddpipe() {
		local start r
		ts "$H1" pipe bdd </dev/null | dd of=/dev/null bs=1M \
			status=none &
		r=$!
		start=$(now)
		dd if="$TMP/disk.img" bs=1M status=none |
			ts "$H2" pipe bdd >/dev/null || bail "pipe failed"
		wait $r
		mbps $((256 << 20)) "$start" "$(now)"
	}
	printf '%-30s %10s %10s %7s\n' "256 MiB image" "dd|pipe" "nbdcopy" "ratio"
	d=$(ddpipe)
	n=$(nbd)
	printf '%-30s %10s %10s %7s\n' "unlimited" "$d" "$n" "$(ratio "$n" "$d")"
	limit=$(echo "$d $n" | awk '{ m = $1 < $2 ? $1 : $2; print int(m / 2) }')
	[ "$limit" -ge 1 ] || limit=1
	echo "rate $((limit << 20))" >"$CTL"
	d=$(ddpipe)
	n=$(nbd)
	printf '%-30s %10s %10s %7s\n' "link-bound ($limit MiB/s)" "$d" "$n" \
		"$(ratio "$n" "$d")"
	echo "rate 0" >"$CTL"
else
	echo "nbdcopy or nbdkit missing: scripts/setup installs them"
fi
