# Shell test library: TAP output, time limits, and a tbsim fixture.
#
# Source it from a test run by meson (which sets TOP_SRCDIR, TOP_BUILDDIR,
# TBSIM, TBSTREAM, SYSIO).  Every command that can block goes through t(),
# which kills it after $T seconds.  sim_start mounts a fresh simulator in
# a temporary directory; it is unmounted on every exit path: normal exit,
# failure, signal, and (through tbsim --watch-pid) even SIGKILL of the test.

T=${T:-20}
tap_n=0
tap_failed=0
SIM_DIR=
MNT=

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# check DESC CMD...: one test case, passing when CMD succeeds; what CMD
# prints goes to standard error, never into the TAP stream
check() {
	desc=$1
	shift
	if "$@" >&2; then ok "$desc"; else not_ok "$desc"; fi
}

# check_fails DESC CMD...: passing when CMD fails (CMD's output goes to
# standard error, as check's, out of the TAP stream)
check_fails() {
	desc=$1
	shift
	if "$@" >&2; then not_ok "$desc"; else ok "$desc"; fi
}

# is DESC GOT WANT
is() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "#   got '$2', want '$3'"
	fi
}

skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $*"
}

diag() {
	echo "# $*"
}

done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

bail() {
	echo "Bail out! $*"
	exit 1
}

# need CMD...: skips the whole test when a command is missing (all of
# them come with scripts/setup)
need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || {
			skip "$c is not installed (scripts/setup installs it)"
			done_testing
			exit 0
		}
	done
}

# t CMD...: run CMD with a time limit of $T seconds
t() {
	timeout -k 3 "$T" "$@"
}

# is_mounted DIR: in the mount table, even when the file system behind it
# died (mountpoint(1) says no for a dead FUSE mount)
is_mounted() {
	awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

sim_cleanup() {
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		timeout -k 2 15 "$TBSIM" --stop "$MNT" >/dev/null 2>&1 ||
			umount -l "$MNT" 2>/dev/null ||
			fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	[ -n "$SIM_DIR" ] && rm -rf "$SIM_DIR"
	SIM_DIR=
	MNT=
}

# sim_start [tbsim options]: mount a simulator; sets MNT, H1, H2, CTL, and
# TMP, an empty work directory that goes with it
sim_start() {
	[ -e /dev/fuse ] || { skip "no /dev/fuse"; done_testing; exit 0; }
	sim_cleanup
	SIM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tbsim-test.XXXXXX")
	MNT=$SIM_DIR/mnt
	mkdir "$MNT"
	trap sim_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	timeout -k 2 20 "$TBSIM" --watch-pid $$ --lifetime 1800 "$@" "$MNT" ||
		bail "tbsim did not start"
	# the HELLO budget of each device is kept here, per simulator
	export TBSTREAM_RUNDIR=$SIM_DIR/run
	H1=$MNT/host1
	H2=$MNT/host2
	CTL=$MNT/control
	C1=$H1/sys/kernel/config/thunderbolt/stream
	C2=$H2/sys/kernel/config/thunderbolt/stream
	TMP=$SIM_DIR/work
	mkdir "$TMP"
}

# sim_stat HOST NAME FIELD: a counter of a stream from the control file
sim_stat() {
	sed -n "s/^stream host=$1 .* name=$2 .*\<$3=\([^ ]*\).*/\1/p" "$CTL"
}

# wait_for SECONDS CMD...: poll until CMD succeeds
wait_for() {
	_limit=$(($1 * 10))
	shift
	while [ "$_limit" -gt 0 ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.1
		_limit=$((_limit - 1))
	done
	return 1
}

# sim_pair NAME [ATTR=VALUE...]: the stream NAME on both hosts of the
# default fabric, host2 allocating and host1 taking the advertisement
# (created again until it has arrived).  Sets S1, S2 (ConfigFS dirs) and
# D1, D2 (devices).  ATTR=VALUE pairs are written on both sides before
# any open (ring_size, throttling).
sim_pair() {
	_name=$1
	shift
	mkdir -p "$C2/0-1.0" "$C1/0-503.0"
	S1=$C1/0-503.0/$_name
	S2=$C2/0-1.0/$_name
	mkdir "$S2" || return 1
	for _kv in "$@"; do
		echo "${_kv#*=}" >"$S2/${_kv%%=*}" || return 1
	done
	echo -1 >"$S2/in_hopid" && echo -1 >"$S2/out_hopid" || return 1
	_i=0
	while :; do
		mkdir "$S1" || return 1
		[ "$(cat "$S1/in_hopid")" != 0 ] && break
		rmdir "$S1"
		_i=$((_i + 1))
		[ $_i -gt 100 ] && return 1
		sleep 0.05
	done
	for _kv in "$@"; do
		echo "${_kv#*=}" >"$S1/${_kv%%=*}" || return 1
	done
	D1=$H1/dev/tbstream$(cat "$S1/index")
	D2=$H2/dev/tbstream$(cat "$S2/index")
	wait_for 5 test -e "$D1" -a -e "$D2"
}

# sio PATH MODE OPS...: sysio under a time limit
sio() {
	t "$SYSIO" "$@"
}

# errno_of CMD...: run CMD, print the errno name its stderr reports
errno_of() {
	_msg=$("$@" 2>&1 >/dev/null) && { echo OK; return; }
	case $_msg in
	*"Invalid argument"*) echo EINVAL ;;
	*"File name too long"*) echo ENAMETOOLONG ;;
	*"Device or resource busy"*) echo EBUSY ;;
	*"Directory not empty"*) echo ENOTEMPTY ;;
	*"Permission denied"*) echo EACCES ;;
	*"Operation not permitted"*) echo EPERM ;;
	*"No space left"*) echo ENOSPC ;;
	*"No such file"*) echo ENOENT ;;
	*"File exists"*) echo EEXIST ;;
	*) echo "other: $_msg" ;;
	esac
}

# write_attr FILE VALUE: echo VALUE > FILE, as a user would (bash's echo
# reports the errno of a failed write; dash's says "I/O error" for all)
write_attr() {
	bash -c 'echo "$1" > "$2"' bash "$2" "$1"
}
