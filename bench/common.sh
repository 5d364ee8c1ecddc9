# Sourced by the benchmark scripts that run on the simulator: the
# binaries of build/ (TBSIM and TBSTREAM may name others), the test
# fixtures (sim_start, ts, wait_open, attr, ...) and a clock.
# shellcheck shell=bash
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TBSIM=${TBSIM:-$top/build/sim/tbsim}
TBSTREAM=${TBSTREAM:-$top/build/src/tbstream}
T=${T:-300}
TOP_SRCDIR=$top
. "$top/tests/lib.sh"
. "$top/tests/e2e/common.sh"

now() { date +%s.%N; }
