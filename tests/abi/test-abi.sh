#!/bin/sh
# The library's ABI.  libtbstream exports exactly the functions that
# include/tbstream.h declares, each under a TBSTREAM_ symbol version, and
# nothing of its internals; abidiff finds nothing that would break a
# program built against the baseline lib/libtbstream.abi (functions may be
# added, option structs may grow at their end).  Two self-checks show that
# the comparison catches a removed function and a changed struct.
. "$TOP_SRCDIR/tests/lib.sh"

lib=$TOP_BUILDDIR/lib/libtbstream.so.0
hdr=$TOP_SRCDIR/include/tbstream.h
base=$TOP_SRCDIR/lib/libtbstream.abi
supp=$TOP_SRCDIR/lib/libtbstream.abignore
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tbstream-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ -f "$lib" ] || bail "no shared library at $lib"

# Function names declared at the start of a line in the header.
sed -n 's/^[a-z][^(#*]*[ *]\(tbs_[a-z0-9_]*\)(.*/\1/p' "$hdr" | sort -u \
	>"$tmp/header"
nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//' |
	grep -v '^TBSTREAM_' | sort -u >"$tmp/exported"
is "the header declares functions" \
	"$(test -s "$tmp/header" && echo yes)" yes
if diff "$tmp/header" "$tmp/exported" >"$tmp/diff"; then
	ok "exported symbols are the header's functions ($(wc -l <"$tmp/exported"))"
else
	not_ok "exported symbols are the header's functions"
	sed 's/^/#   /' "$tmp/diff"
	diag "< declared but not exported (lib/libtbstream.sym), > exported but not declared"
fi
objdump -T "$lib" | awk '$NF ~ /^tbs_/ && $(NF-1) !~ /^TBSTREAM_[0-9.]+$/ { print $NF }' \
	>"$tmp/unversioned"
is "every exported function has a TBSTREAM_ version" \
	"$(cat "$tmp/unversioned")" ""

if ! command -v abidiff >/dev/null 2>&1; then
	skip "abidiff is missing (apt-get install abigail-tools)"
	done_testing
	exit
fi
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
	skip "the library has no debug information for abidiff"
	done_testing
	exit
fi
"$TOP_SRCDIR/scripts/abi-dump" "$lib" "$tmp/now.abi" ||
	bail "abidw could not read $lib"

abidiff --no-added-syms --suppressions "$supp" "$base" "$tmp/now.abi" \
	>"$tmp/report" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
	ok "ABI compatible with the baseline lib/libtbstream.abi"
else
	not_ok "ABI compatible with the baseline lib/libtbstream.abi (abidiff: $rc)"
	sed 's/^/#   /' "$tmp/report"
fi
added=$(abidiff --added-fns --suppressions "$supp" "$base" "$tmp/now.abi" |
	sed -n "s/^  \[A\] 'function \(.*\)'.*/\1/p" | paste -sd ';' -)
[ -z "$added" ] || diag "added since the baseline: $added"

# Self-check: a function gone from the library is an incompatible change.
sed "/<elf-symbol name='tbs_version'/d" "$tmp/now.abi" >"$tmp/gone.abi"
abidiff --no-added-syms --suppressions "$supp" "$base" "$tmp/gone.abi" \
	>/dev/null 2>&1
rc=$?
is "abidiff reports a removed function as incompatible" \
	"$((rc & 8))" 8

# Self-check: two members of struct tbs_stream swapped is an ABI change.
awk '/class-decl name=.tbs_stream. / { s = 1 }
     s && /name=.in_hopid./ { sub(/in_hopid/, "out_hopid"); print; next }
     s && /name=.out_hopid./ { sub(/out_hopid/, "in_hopid"); s = 0 }
     { print }' "$tmp/now.abi" >"$tmp/swap.abi"
abidiff --no-added-syms --suppressions "$supp" "$base" "$tmp/swap.abi" \
	>/dev/null 2>&1
rc=$?
is "abidiff reports a changed struct layout" "$((rc & 4))" 4

done_testing
