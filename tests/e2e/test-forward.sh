#!/bin/bash
# tbstream forward with real clients and servers, both forward ends as
# separate processes on two simulated hosts: ssh and scp to an sshd,
# curl against python's http.server (100 connections at once, every body
# checked, one connection paused meanwhile), half-close through a
# command, a refused connect, UNIX and IPv6 sockets, a connection limit,
# JSON events, and a clean end on SIGTERM.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/forward-lib.sh"

need ssh scp sshd curl ss
fwd_start

# --- ssh and scp to an sshd on this host's loopback -------------------------
sp=$(free_port)
lp=$(free_port)
if sshd_start "$sp"; then
	fwd "$H2" "$TMP/ssh.c" ssh --connect "127.0.0.1:$sp"
	c=$FWD_PID
	fwd "$H1" "$TMP/ssh.l" ssh --listen "$lp"
	l=$FWD_PID
	check "ssh: the link comes up" link_up "$TMP/ssh.l"
	link_up "$TMP/ssh.c" >/dev/null
	# shellcheck disable=SC2046
	got=$(t ssh $(ssh_opts) -p "$lp" "$(id -un)@127.0.0.1" \
		'echo "hello from $(hostname)"' 2>"$TMP/ssh.err")
	is "ssh runs a command through forward" "$got" "hello from $(hostname)"
	sed 's/^/# /' "$TMP/ssh.err"
	head -c 3000000 /dev/urandom >"$TMP/up.bin"
	# shellcheck disable=SC2046
	t scp $(ssh_opts) -P "$lp" "$TMP/up.bin" \
		"$(id -un)@127.0.0.1:$TMP/up.copy" 2>"$TMP/scp.err"
	same "$TMP/up.bin" "$TMP/up.copy" "scp to the far side: same bytes"
	# shellcheck disable=SC2046
	t scp $(ssh_opts) -P "$lp" "$(id -un)@127.0.0.1:$TMP/up.copy" \
		"$TMP/down.copy" 2>>"$TMP/scp.err"
	same "$TMP/up.bin" "$TMP/down.copy" "scp back: same bytes"
	# a session with input and output at once, then its exit status
	# shellcheck disable=SC2046
	got=$(head -c 500000 "$TMP/up.bin" | t ssh $(ssh_opts) -p "$lp" \
		"$(id -un)@127.0.0.1" 'sha256sum; exit 7')
	st=$?
	is "ssh: stdin through and the remote exit status back" \
		"$st ${got%% *}" \
		"7 $(head -c 500000 "$TMP/up.bin" | sha256sum | cut -d' ' -f1)"
	stop_bg "$l"
	is "SIGTERM: the listening side exits 0" "$ST" 0
	stop_bg "$c"
	is "SIGTERM: the connecting side exits 0" "$ST" 0
	check "ssh: one log line per connection" \
		grep -q "connection 1 from 127.0.0.1:[0-9]*: closed" "$TMP/ssh.l"
	check "the streams this command set up are down again" \
		sh -c "! ls '$C1'/*/ssh '$C2'/*/ssh 2>/dev/null"
else
	skip "sshd could not start: $(cat "$TMP/ssh/log" 2>/dev/null)"
fi

# --- HTTP: 100 connections at once, one paused meanwhile --------------------
mkdir "$TMP/www" "$TMP/got"
for i in $(seq 100); do
	head -c $((1000 + i * 997)) /dev/urandom >"$TMP/www/f$i"
done
head -c $((48 << 20)) /dev/urandom >"$TMP/www/big"
http_start "$TMP/www"
hp=$HP
lp=$(free_port)
fwd "$H2" "$TMP/http.c" http --connect "127.0.0.1:$hp"
c=$FWD_PID
fwd "$H1" "$TMP/http.l" http --listen "127.0.0.1:$lp" --json
l=$FWD_PID
check "http: the link comes up" link_up "$TMP/http.c"
wait_for 30 grep -q '"event":"up"' "$TMP/http.l"

# The paused client: curl blocks opening a FIFO nobody reads, after the
# response began, so it stops reading its socket.
mkfifo "$TMP/pause"
curl -s --max-time 300 -o "$TMP/pause" "http://127.0.0.1:$lp/big" &
paused=$!
check "a client is paused with bytes waiting in its socket" \
	wait_for 30 sh -c "ss -tnH state established '( dport = :$lp )' |
		awk '\$1 > 0 { f = 1 } END { exit !f }'"
fetch_all "$lp" 100 f
is "100 connections at once: curl succeeded" "$CURL_ST" 0
is "100 connections at once: every body is right" "$BAD" 0
check "the paused connection held up none of them (it still waits)" \
	kill -0 "$paused"
timeout 120 cat "$TMP/pause" >"$TMP/big.out"
wait "$paused"
check "the paused client then got its body: curl succeeded" test $? -eq 0
same "$TMP/www/big" "$TMP/big.out" "the paused connection's body is right"
check "--json: every event is one JSON object" python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    j = json.loads(line)
    assert j["event"] and j["message"]
    n += j["event"] == "close"
sys.exit(0 if n >= 101 else 1)' "$TMP/http.l"
stop_bg "$l"

# --- a connection limit: the listening side waits for free slots ------------
fwd "$H1" "$TMP/lim.l" http --listen "127.0.0.1:$lp"
l=$FWD_PID
stop_bg "$c"
fwd "$H2" "$TMP/lim.c" http --connect "127.0.0.1:$hp" --max-connections 2
c=$FWD_PID
link_up "$TMP/lim.l"
fetch_all "$lp" 20 l
is "20 clients, the peer takes 2 at a time: all served, right bodies" \
	"$CURL_ST $BAD" "0 0"
stop_bg "$l"
stop_bg "$c"

# --- half-close through a command; a refused connect ------------------------
lp=$(free_port)
fwd "$H2" "$TMP/ex.c" ex --exec 'sha256sum; echo done'
c=$FWD_PID
fwd "$H1" "$TMP/ex.l" ex --listen "$lp"
l=$FWD_PID
link_up "$TMP/ex.l"
head -c 20000000 /dev/urandom >"$TMP/in.bin"
half_close() {
	timeout 60 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "rb") as f:
    s.sendall(f.read())
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())' "$1" "$2"
}
got=$(half_close "$lp" "$TMP/in.bin")
is "half-close: the command saw the end of its input, the answer came back" \
	"$got" "$(sha256sum <"$TMP/in.bin")
done"
stop_bg "$c"
np=$(free_port)
fwd "$H2" "$TMP/ex.c2" ex --connect "127.0.0.1:$np"
c=$FWD_PID
link_up "$TMP/ex.l" 2
t curl -s --max-time 50 -o /dev/null "http://127.0.0.1:$lp/"
st=$?
check "refused on the far side: the client's connection ends at once" \
	test $st -ne 0 -a $st -ne 28 -a $st -ne 124
check "and the listening side logs why" \
	grep -q "refused by the peer: could not connect to 127.0.0.1:$np: Connection refused" \
	"$TMP/ex.l"
stop_bg "$l"
stop_bg "$c"

# --- UNIX socket on one side, IPv6 on the other -----------------------------
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
	2>/dev/null; then
	hp6=$(free_port)
	(cd "$TMP/www" && exec timeout 600 python3 -m http.server \
		--bind ::1 "$hp6" >/dev/null 2>&1) &
	BG_PIDS="$BG_PIDS $!"
	wait_for 30 curl -sf -o /dev/null "http://[::1]:$hp6/f1" ||
		diag "http.server on [::1]:$hp6 did not answer"
	fwd "$H2" "$TMP/v6.c" v6 --connect "[::1]:$hp6"
	c=$FWD_PID
	fwd "$H1" "$TMP/v6.l" v6 --listen "unix:$TMP/http.sock"
	l=$FWD_PID
	link_up "$TMP/v6.l"
	t curl -s --fail --unix-socket "$TMP/http.sock" -o "$TMP/got/v6" \
		"http://x/f77"
	same "$TMP/www/f77" "$TMP/got/v6" "UNIX socket to IPv6: right body"
	cmp -s "$TMP/www/f77" "$TMP/got/v6" ||
		sed 's/^/# /' "$TMP/v6.l" "$TMP/v6.c"
	stop_bg "$l"
	check "the UNIX socket is removed at the end" \
		test ! -e "$TMP/http.sock"
	stop_bg "$c"
else
	skip "no IPv6 on the loopback"
	skip "no IPv6 on the loopback"
fi

# --- idle connections hold no buffer ------------------------------------------
# With the largest window, 8 connections that exchanged a line and now
# wait: the bytes were written out at once, so neither side keeps a
# window's buffer for them (8 x 64 MiB of address space if it did).
W=$((64 << 20))
ip=$(free_port)
fwd "$H2" "$TMP/idle.c" idle --exec cat --window $W
c=$FWD_PID
fwd "$H1" "$TMP/idle.l" idle --listen "$ip" --window $W
l=$FWD_PID
check "the link comes up" link_up "$TMP/idle.l"
vm() { sed -n 's/^VmSize:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
pl=$(pgrep -P "$l")
pc=$(pgrep -P "$c")
l0=$(vm "$pl")
c0=$(vm "$pc")
rm -f "$TMP/idle.done"
timeout 60 python3 -c 'import os, socket, sys, time
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1])))
      for i in range(8)]
for s in cs:
    s.sendall(b"ping\n")
for s in cs:
    assert s.recv(16) == b"ping\n"
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)' "$ip" "$TMP/idle.ready" "$TMP/idle.done" &
cp=$!
check "8 connections exchanged a line" wait_for 30 test -e "$TMP/idle.ready"
dl=$(($(vm "$pl") - l0))
dc=$(($(vm "$pc") - c0))
touch "$TMP/idle.done"
wait $cp
# a window's buffer per connection would be 8 x 65536 kB
check "the listening side holds no window per idle connection (+$dl kB)" \
	test "$dl" -lt $((4 * 65536))
check "the connecting side neither (+$dc kB)" test "$dc" -lt $((4 * 65536))
stop_bg "$l"
stop_bg "$c"

# --- no descriptor left: the listener pauses instead of spinning --------------
# Once the link is up, the listening side's descriptor limit is put below
# those it holds: it cannot accept the client that waits; it says so (-v)
# once per pause, not in a busy loop, and serves the client once it can.
ep=$(free_port)
fwd "$H2" "$TMP/nofd.c" nofd --connect "127.0.0.1:$hp"
c=$FWD_PID
fwd "$H1" "$TMP/nofd.l" nofd --listen "$ep"
l=$FWD_PID
check "the link comes up" link_up "$TMP/nofd.l"
p=$(pgrep -P "$l")
soft=$(prlimit --pid "$p" --nofile --noheadings --output SOFT)
prlimit --pid "$p" --nofile=3:
t0=$(date +%s%N)
curl -s --max-time 60 -o "$TMP/got/nofd" "http://127.0.0.1:$ep/f5" &
cu=$!
sleep 1 # what it does meanwhile is counted against the time it took
prlimit --pid "$p" --nofile="$soft":
ms=$((($(date +%s%N) - t0) / 1000000))
n=$(grep -c "could not accept a connection: Too many open files" \
	"$TMP/nofd.l")
check "no descriptor: it says it cannot accept ($n times)" test "$n" -ge 1
# one try per 100 ms pause; a loop would make it thousands
check "and does not try again in a loop ($n times in $ms ms)" \
	test "$n" -le $((ms / 50 + 10))
wait "$cu"
same "$TMP/www/f5" "$TMP/got/nofd" \
	"with descriptors again, the client that waited is served"
stop_bg "$l"
stop_bg "$c"
done_testing
