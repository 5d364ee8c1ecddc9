# Helpers for the tests of tbstream forward and tbstream disk, sourced
# after tests/lib.sh and tests/e2e/common.sh.  Every process started here
# is stopped on every exit path, before the simulator is unmounted.
# shellcheck shell=bash

BG_PIDS=
SSHD_PID=
LOOPS=
MNTD=

fwd_cleanup() {
	local p
	[ -n "$MNTD" ] && umount "$MNTD" 2>/dev/null
	for p in $LOOPS; do losetup -d "$p" 2>/dev/null; done
	for p in $BG_PIDS $SSHD_PID; do
		kill "$p" 2>/dev/null
	done
	for p in $BG_PIDS $SSHD_PID; do
		wait "$p" 2>/dev/null
	done
	BG_PIDS= SSHD_PID=
	sim_cleanup
}

# fwd_start [tbsim options]: sim_start, a work directory $TMP, and the
# clean-up of everything started in the background.
fwd_start() {
	sim_start "$@"
	trap fwd_cleanup EXIT
}

# bg CMD...: run CMD in the background under a time limit; $! is its pid.
bg() {
	timeout -k 3 "${BG_LIMIT:-600}" "$@" &
	BG_PIDS="$BG_PIDS $!"
}

# kill_bg PID: SIGKILL to the command bg started as PID (not to the
# timeout(1) around it), then wait.
kill_bg() {
	pkill -KILL -P "$1"
	wait "$1" 2>/dev/null
}

# stop_bg PID: SIGTERM, then wait; sets $ST to its exit status.
stop_bg() {
	kill "$1" 2>/dev/null
	wait "$1"
	ST=$?
}

# http_start DIR: python's http.server serving DIR on 127.0.0.1:$HP.
http_start() {
	HP=$(free_port)
	(cd "$1" && exec timeout 600 python3 -m http.server \
		--bind 127.0.0.1 "$HP" >/dev/null 2>&1) &
	BG_PIDS="$BG_PIDS $!"
	wait_for 30 curl -s -o /dev/null "http://127.0.0.1:$HP/" ||
		bail "http.server did not start"
}

# fetch_all PORT N PREFIX: curl fetches f1..fN of $TMP/www through
# 127.0.0.1:PORT, N at once, into $TMP/got/PREFIXi; sets CURL_ST and BAD
# (how many bodies differ).
fetch_all() {
	local args=() i
	for i in $(seq "$2"); do
		args+=(-o "$TMP/got/$3$i" "http://127.0.0.1:$1/f$i")
	done
	t curl -s --fail --parallel --parallel-immediate --parallel-max "$2" \
		--max-time 50 "${args[@]}" 2>/dev/null
	CURL_ST=$?
	BAD=0
	for i in $(seq "$2"); do
		cmp -s "$TMP/www/f$i" "$TMP/got/$3$i" || BAD=$((BAD + 1))
	done
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# fwd HOST LOG ARGS...: tbstream forward in the background, -v, its log
# in LOG; sets $FWD_PID.
fwd() {
	local host=$1 log=$2
	shift 2
	bg "$TBSTREAM" --sysroot "$host" forward -v "$@" >"$log" 2>&1
	FWD_PID=$!
}

# link_up LOG [N]: until LOG says the link is up (N times), 30 s.
link_up() {
	local n=${2:-1} i
	for i in $(seq 300); do
		[ "$(grep -c 'link up' "$1")" -ge "$n" ] && return 0
		sleep 0.1
	done
	echo "# no link in $1:"
	sed 's/^/#   /' "$1"
	return 1
}

# sshd_start PORT: an sshd on 127.0.0.1:PORT with its own host key and
# a client key ($TMP/ssh/id) allowed to log in as the current user.
sshd_start() {
	local d=$TMP/ssh
	mkdir -p "$d"
	[ -d /run/sshd ] || mkdir -m 0755 /run/sshd 2>/dev/null || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$d/host" || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$d/id" || return 1
	cp "$d/id.pub" "$d/authorized_keys"
	cat >"$d/sshd_config" <<-EOF
		ListenAddress 127.0.0.1:$1
		HostKey $d/host
		AuthorizedKeysFile $d/authorized_keys
		PidFile $d/sshd.pid
		StrictModes no
		UsePAM no
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		Subsystem sftp internal-sftp
	EOF
	timeout -k 3 "${BG_LIMIT:-600}" /usr/sbin/sshd -D -e \
		-f "$d/sshd_config" 2>"$d/log" &
	SSHD_PID=$!
	wait_for 10 grep -q "Server listening" "$d/log"
}

# ssh_opts PORT: the client options for the test key.
ssh_opts() {
	echo "-F /dev/null -i $TMP/ssh/id -o StrictHostKeyChecking=no" \
		"-o UserKnownHostsFile=/dev/null -o BatchMode=yes" \
		"-o LogLevel=ERROR -o ConnectTimeout=20"
}
