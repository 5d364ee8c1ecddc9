#!/bin/bash
# The chaos benchmark (bench/chaos), shortened: a few rounds of a random
# job killed with a random signal at a random moment on a random host,
# each followed by a normal transfer that must succeed on its first try.
# One test case per round; the seed is fixed, so the jobs, signals and
# hosts are the same each run (the moments depend on timing).
set -u
. "$TOP_SRCDIR/tests/lib.sh"

[ -e /dev/fuse ] || { skip "no /dev/fuse"; done_testing; exit 0; }
out=$(mktemp "${TMPDIR:-/tmp}/tbstream-chaos.XXXXXX")
trap 'rm -f "$out"' EXIT
TBSIM=$TBSIM TBSTREAM=$TBSTREAM timeout -k 5 400 \
	"$TOP_SRCDIR/bench/chaos" "${CHAOS_ROUNDS:-5}" "${CHAOS_SEED:-3}" \
	>"$out" 2>&1
st=$?
while IFS= read -r line; do
	case $line in
	"round "*": ok: "*) ok "${line#round }" ;;
	"round "*) not_ok "${line#round }" ;;
	*) diag "$line" ;;
	esac
done <"$out"
is "bench/chaos exit status" "$st" 0
done_testing
