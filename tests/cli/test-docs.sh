#!/bin/bash
# The documentation against the command: every man page in docs/ is
# installed, renders without a warning (groff -ww) and is named in the
# SEE ALSO of tbstream(1); every long option that 'tbstream COMMAND
# --help' lists is in that command's man page (or tbstream(1)) and is
# offered by the bash completion.
set -u
: "${TBSTREAM:?TBSTREAM must name the tbstream binary}"
: "${TOP_SRCDIR:?}"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
docs=$TOP_SRCDIR/docs

for page in "$docs"/*.[1-8]; do
	p=${page##*/}
	if grep -q "'$p'" "$docs/meson.build"; then
		ok "$p is installed"
	else
		not_ok "$p is installed (docs/meson.build)"
	fi
	if ! command -v groff >/dev/null; then
		skip "groff missing (groff-base)"
		continue
	fi
	out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
	if [ -z "$out" ]; then
		ok "$p renders without a warning"
	else
		not_ok "$p renders without a warning"
		echo "$out" | sed 's/^/#   /'
	fi
done

# tbstream(1) leads to every other page (SEE ALSO).
seealso=$(sed -n '/^\.SH SEE ALSO/,$p' "$docs/tbstream.1" | sed 's/\\-/-/g')
for page in "$docs"/*.[1-8]; do
	p=${page##*/}
	[ "$p" = tbstream.1 ] && continue
	if grep -qF "${p%.*} (${p##*.})" <<<"$seealso"; then
		ok "tbstream(1) sees also ${p%.*}(${p##*.})"
	else
		not_ok "tbstream(1) sees also ${p%.*}(${p##*.})"
	fi
done

# completions CUR [WORDS...]: what the completion offers for the word CUR
# after 'tbstream WORDS'
completions() {
	bash -c '. "$1"; shift; cur=$1; shift
		COMP_WORDS=(tbstream "$@" "$cur"); COMP_CWORD=$(($# + 1))
		_tbstream; printf "%s\n" "${COMPREPLY[@]}"' sh \
		"$docs/tbstream.bash-completion" "$@"
}

cmds=$(completions "")
for c in list up down pipe send recv image bench cam forward disk reconcile \
	doctor; do
	if grep -qx "$c" <<<"$cmds"; then
		ok "completion offers '$c'"
	else
		not_ok "completion offers '$c'"
	fi
	case $c in
	recv) page=$docs/tbstream-send.1 ;;
	*) page=$docs/tbstream-$c.1 ;;
	esac
	[ -f "$page" ] || page=$docs/tbstream.1
	opts=$(timeout 10 "$TBSTREAM" "$c" --help | grep -o -- '--[a-z][a-z0-9-]*' |
		sort -u)
	comp=$(completions -- "$c")
	nodoc= nocomp=
	for o in $opts; do
		# troff writes a hyphen as \-
		grep -qF -- "${o//-/\\-}" "$page" "$docs/tbstream.1" ||
			nodoc="$nodoc $o"
		grep -qx -- "$o" <<<"$comp" || nocomp="$nocomp $o"
	done
	if [ -z "$nodoc" ]; then
		ok "$c: every option of --help is in ${page##*/}"
	else
		not_ok "$c: options missing in ${page##*/}:$nodoc"
	fi
	if [ -z "$nocomp" ]; then
		ok "$c: the completion offers every option"
	else
		not_ok "$c: the completion lacks$nocomp"
	fi
done
echo "1..$n"
[ "$failed" -eq 0 ]
