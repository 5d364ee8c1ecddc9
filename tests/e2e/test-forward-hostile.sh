#!/bin/bash
# tbstream forward against a hostile peer (tests/hostile-forward.c), which
# speaks the session and the forward messages but breaks every rule: the
# real forward refuses each attempt with a reason, never connects where
# the peer says, escapes the peer's text in its log, and keeps running;
# a correct peer is served again afterwards.
set -u
. "$TOP_SRCDIR/tests/lib.sh"
. "$TOP_SRCDIR/tests/e2e/common.sh"
. "$TOP_SRCDIR/tests/e2e/forward-lib.sh"

fwd_start
LOG=$TMP/fwd.log
fwd "$H2" "$LOG" hos --exec "head -c 5 >>'$TMP/got'" --max-connections 3
f=$FWD_PID

# hostile SCENARIO WANT [ARG]: one session of the hostile peer; passes when
# the forward aborted it with WANT in the reason and still runs.
hostile() {
	local sc=$1 want=$2
	t "$HOSTILE_FWD" "$H1" "${HOS:-hos}" "$sc" ${3:+"$3"} >"$TMP/h.out" 2>&1
	local st=$?
	if [ $st -eq 0 ] && grep -q -- "$want" "$TMP/h.out" &&
		kill -0 "${HOSPID:-$f}" 2>/dev/null; then
		ok "$sc: refused ($want), forward still runs"
	else
		not_ok "$sc: exit $st"
		sed 's/^/#   /' "$TMP/h.out"
	fi
}

# A correct exchange first: the OPEN names another destination in its
# text, the bytes still go to this side's own command.
t "$HOSTILE_FWD" "$H1" hos data >"$TMP/h.out" 2>&1
check "a correct connection: served, closed by CLOSE" \
	grep -q "got CLOSE 1" "$TMP/h.out"
is "the bytes went to the command of this side's command line" \
	"$(cat "$TMP/got" 2>/dev/null)" "xxxxx"
check "the peer's text only appears in the log" \
	grep -q 'from unix:/etc/evil 10.0.0.1:22: closed' "$LOG"

hostile dup-open "OPEN of connection 1, an id used before"
hostile over-limit "OPEN beyond the limit of 3 connections" 3
# A command that never reads: the bytes stay in this side's buffer, and
# the peer gets no credit back.
fwd "$H2" "$TMP/credit.log" hoc --exec "exec sleep 100"
HOS=hoc HOSPID=$FWD_PID hostile credit "beyond its credit"
hostile unopened "DATA for connection 7, which was never opened"
hostile before-hello "OPEN before HELLO"
hostile huge "a message larger than"
hostile inflate "CREDIT on connection 1 beyond its window"

t "$HOSTILE_FWD" "$H1" hos escape >"$TMP/h.out" 2>&1
check "terminal escapes in the peer's text are escaped in the log" \
	grep -qF 'from \x1b]0;owned\x07\x1b[31mEVIL\x0d\n: closed' "$LOG"
is "no control character from the peer reaches the log" \
	"$(tr -d '\n' <"$LOG" | tr -dc '\000-\037\177' | wc -c)" 0
check "the log names every refusal" \
	test "$(grep -c "broke the forward protocol" "$LOG")" -ge 6

# The listening side: a hostile connecting peer.
lp=$(free_port)
fwd "$H2" "$TMP/l.log" hosl --listen "$lp"
l=$FWD_PID
"$HOSTILE_FWD" "$H1" hosl refuse-escape >"$TMP/h.out" 2>&1 &
hp=$!
link_up "$TMP/l.log"
t curl -s --max-time 30 -o /dev/null "http://127.0.0.1:$lp/"
st=$?
kill $hp 2>/dev/null
wait $hp
check "a refusal closes the client's connection at once (curl $st)" \
	test $st -ne 0 -a $st -ne 28 -a $st -ne 124
check "the peer's refusal text is escaped in the log" \
	grep -qF 'refused by the peer: \x1b[2J\x1b[31mno\x07 such\nhost' \
	"$TMP/l.log"
"$HOSTILE_FWD" "$H1" hosl early-data >"$TMP/h.out" 2>&1 &
hp=$!
link_up "$TMP/l.log" 2
t curl -s --max-time 30 -o /dev/null "http://127.0.0.1:$lp/"
wait $hp
check "DATA before ACCEPT is refused" \
	grep -q "DATA on connection 1 before ACCEPT" "$TMP/h.out"
check "the listening forward still runs" kill -0 "$l"

# After the connecting side closed a connection, nothing more may come for
# it, even while the listening side still writes to its client (one that
# does not read, on a UNIX socket that takes less than the window).  Each
# case on a stream of its own, so that the next does not meet the end of
# the last session.
stop_bg "$l"
n=0
for sc in close-twice reset-after-close; do
	n=$((n + 1))
	fwd "$H2" "$TMP/u$n.log" "hosu$n" --listen "unix:$TMP/hosu$n.sock"
	u=$FWD_PID
	timeout 60 "$HOSTILE_FWD" "$H1" "hosu$n" "$sc" >"$TMP/h.out" 2>&1 &
	hp=$!
	link_up "$TMP/u$n.log"
	# a client that sends nothing and reads nothing until told to end
	timeout 60 python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.shutdown(socket.SHUT_WR)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)' "$TMP/hosu$n.sock" "$TMP/done$n" &
	cp=$!
	wait $hp
	st=$?
	touch "$TMP/done$n"
	wait $cp
	check "$sc: refused (exit $st)" sh -c "[ $st -eq 0 ] && grep -q \
		'on connection 1 after the peer ended it' '$TMP/h.out'"
	[ $st -eq 0 ] || sed 's/^/#   /' "$TMP/h.out"
	check "$sc: the listening forward still runs" kill -0 "$u"
	stop_bg "$u"
done

# After all that, a correct peer is served again.
lp2=$(free_port)
fwd "$H1" "$TMP/ok.log" hos --listen "$lp2"
link_up "$TMP/ok.log"
timeout 30 python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"hello")
s.shutdown(socket.SHUT_WR)
s.recv(1)' "$lp2"
is "a correct peer is served again" "$(tail -c 5 "$TMP/got")" "hello"
done_testing
