#!/usr/bin/env python3
"""Sums the TAP results of every test program in meson test logs.

Every test program speaks TAP; each "ok"/"not ok" line is one test case.
A program that failed or timed out without reporting a failing case counts
as one failed case, so a crash can never hide.  Prints one line:
"N passed, N failed, N skipped".
"""
import json
import re
import sys

line_re = re.compile(r'^(not ok|ok)\b(.*)$')


def count(entry):
    passed = failed = skipped = 0
    for line in (entry.get('stdout') or '').splitlines():
        m = line_re.match(line)
        if not m:
            continue
        directive = m.group(2).lower()
        if '# skip' in directive:
            skipped += 1
        elif m.group(1) == 'ok' or '# todo' in directive:
            passed += 1
        else:
            failed += 1
    if entry.get('result') not in ('OK', 'SKIP', 'EXPECTEDFAIL') and failed == 0:
        failed = 1
    if entry.get('result') == 'SKIP' and passed + failed + skipped == 0:
        skipped = 1
    return passed, failed, skipped


def main(paths):
    totals = [0, 0, 0]
    entries = []
    for path in paths:
        try:
            with open(path) as f:
                entries += [json.loads(l) for l in f if l.strip()]
        except OSError as e:
            print(f'summary: {e}', file=sys.stderr)
            print('0 passed, 1 failed')
            return 1
    for e in entries:
        for i, n in enumerate(count(e)):
            totals[i] += n
    print(f'{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped')
    return 1 if totals[1] or not totals[0] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
