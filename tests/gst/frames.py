#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compares the frames two gst-launch-1.0 pipelines saw.

Each side runs "gst-launch-1.0 -v ... identity silent=false ! multifilesink
location=DIR/%05d": the -v log has one "last-message = chain" line per
buffer (times, offsets, flags, size) and DIR one file per buffer.

  frames.py same SENT_LOG SENT_DIR RECV_LOG RECV_DIR
      every buffer arrived, in order, with equal times, offsets, flags
      (but the discontinuity and memory-tag flags), size and bytes; and
      the caps of the
      last "caps =" line of each log are equal
  frames.py subset SENT_LOG SENT_DIR RECV_LOG RECV_DIR [MIN]
      every received buffer equals the sent buffer of the same time (no
      damaged buffer), at least MIN arrived, in increasing time
  frames.py count LOG
      prints the number of buffers in LOG
  frames.py first LOG
      prints "key" or "delta" and the time (ns) of the first buffer

Exit status 0 when the comparison holds, 1 with the differences on
standard output otherwise.
"""
import hashlib
import os
import re
import sys

CHAIN = re.compile(
    r'last-message = chain\s+\*+ \([^)]*\) \((\d+) bytes, dts: ([^,]+), '
    r'pts: ([^,]+), duration: ([^,]+), offset: ([^,]+), '
    r'offset_end: ([^,]+), flags: ([0-9a-f]+)')
CAPS = re.compile(r'GstPad:(?:src|sink)\: caps = (.*)$')

DISCONT = 0x40
DELTA = 0x2000
TAG_MEMORY = 0x4000  # GStreamer's own book-keeping, not the stream's
IGNORED = DISCONT | TAG_MEMORY


def ns(text):
    if text in ('none', '99:99:99.999999999'):
        return None
    h, m, s = text.split(':')
    sec, frac = s.split('.')
    return ((int(h) * 60 + int(m)) * 60 + int(sec)) * 10**9 + int(frac)


def frames(log, folder):
    out = []
    with open(log, errors='replace') as f:
        for line in f:
            m = CHAIN.search(line)
            if not m:
                continue
            size, dts, pts, dur, off, end, flags = m.groups()
            out.append({'size': int(size), 'dts': ns(dts), 'pts': ns(pts),
                        'duration': ns(dur), 'offset': off,
                        'offset_end': end, 'flags': int(flags, 16)})
    for i, fr in enumerate(out):
        path = os.path.join(folder, '%05d' % i) if folder else None
        if path and os.path.exists(path):
            with open(path, 'rb') as f:
                data = f.read()
            fr['hash'] = hashlib.sha256(data).hexdigest()
            fr['file_size'] = len(data)
        else:
            fr['hash'] = None
    return out


def last_caps(log, wants):
    """The last caps printed for a pad of an element of one of @wants."""
    caps = None
    with open(log, errors='replace') as f:
        for line in f:
            m = CAPS.search(line)
            if m and any(w in line for w in wants):
                caps = m.group(1).strip()
    return caps


def same(sent_log, sent_dir, recv_log, recv_dir):
    a, b = frames(sent_log, sent_dir), frames(recv_log, recv_dir)
    bad = []
    if len(a) != len(b) or not a:
        bad.append('sent %d buffers, received %d' % (len(a), len(b)))
    for i, (x, y) in enumerate(zip(a, b)):
        for k in ('size', 'dts', 'pts', 'duration', 'offset', 'offset_end',
                  'hash'):
            if x[k] != y[k]:
                bad.append('buffer %d: %s %s sent, %s received' %
                           (i, k, x[k], y[k]))
        if (x['flags'] & ~IGNORED) != (y['flags'] & ~IGNORED):
            bad.append('buffer %d: flags %x sent, %x received' %
                       (i, x['flags'], y['flags']))
    # The identity before the sink and after the source has the same caps
    # (a second chance when threads mixed the lines of -v).
    ca = last_caps(sent_log, ('GstTbStreamSink', 'GstIdentity'))
    cb = last_caps(recv_log, ('GstTbStreamSrc', 'GstIdentity'))
    if not ca or ca != cb:
        bad.append('caps differ: %s sent, %s received' % (ca, cb))
    return bad, '%d buffers equal, caps %s' % (len(b), cb)


def subset(sent_log, sent_dir, recv_log, recv_dir, least):
    a, b = frames(sent_log, sent_dir), frames(recv_log, recv_dir)
    by_pts = {x['pts']: x for x in a}
    bad = []
    last = -1
    for i, y in enumerate(b):
        x = by_pts.get(y['pts'])
        if x is None:
            bad.append('received buffer %d (pts %s) was never sent' %
                       (i, y['pts']))
            continue
        if x['hash'] != y['hash'] or x['size'] != y['size']:
            bad.append('received buffer %d (pts %s) differs from the one '
                       'sent' % (i, y['pts']))
        if y['pts'] is not None and y['pts'] <= last:
            bad.append('received buffer %d is out of order' % i)
        last = y['pts'] if y['pts'] is not None else last
    if len(b) < least:
        bad.append('only %d buffers received, expected at least %d' %
                   (len(b), least))
    return bad, '%d of %d sent buffers received, each equal to the one sent' \
        % (len(b), len(a))


def main(argv):
    if argv[1] == 'count':
        print(len(frames(argv[2], None)))
        return 0
    if argv[1] == 'first':
        got = frames(argv[2], None)
        if not got:
            print('none')
            return 1
        print('delta' if got[0]['flags'] & DELTA else 'key', got[0]['pts'])
        return 0
    if argv[1] == 'same':
        bad, good = same(*argv[2:6])
    else:
        bad, good = subset(*argv[2:6], int(argv[6]) if len(argv) > 6 else 1)
    for line in bad[:20]:
        print(line)
    if not bad:
        print(good)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
