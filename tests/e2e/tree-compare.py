#!/usr/bin/env python3
# Compares two file trees on what tbstream send/recv must keep: kind,
# content, size, permissions, modification time (to the nanosecond),
# symbolic link targets, hard-link groups, holes, and (with --owner)
# ownership.  Prints each difference; exits 1 if there is any.
import os
import stat
import sys


def data_ranges(path, size):
    ranges = []
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < size:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            ranges.append((d, h))
            pos = h
    finally:
        os.close(fd)
    return ranges


def scan(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(top)):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, os.fsencode(top))
            out[rel] = (p, os.lstat(p))
    return out


def hole_bytes(path, size):
    return size - sum(h - d for d, h in data_ranges(path, size))


def compare(a, b, owner):
    ta, tb = scan(a), scan(b)
    bad = []
    for rel in sorted(set(ta) | set(tb)):
        if rel not in ta or rel not in tb:
            bad.append("%r only in %s" % (rel, a if rel in ta else b))
            continue
        (pa, sa), (pb, sb) = ta[rel], tb[rel]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            bad.append("%r: kind differs" % rel)
            continue
        if stat.S_ISLNK(sa.st_mode):
            if os.readlink(pa) != os.readlink(pb):
                bad.append("%r: link target differs" % rel)
            if sa.st_mtime_ns != sb.st_mtime_ns:
                bad.append("%r: link time differs" % rel)
            continue
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            bad.append("%r: mode %o vs %o" % (rel, stat.S_IMODE(sa.st_mode),
                                              stat.S_IMODE(sb.st_mode)))
        if sa.st_mtime_ns != sb.st_mtime_ns:
            bad.append("%r: mtime %d vs %d" % (rel, sa.st_mtime_ns,
                                               sb.st_mtime_ns))
        if owner and (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            bad.append("%r: owner differs" % rel)
        if stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                bad.append("%r: size differs" % rel)
            elif open(pa, "rb").read() != open(pb, "rb").read():
                bad.append("%r: content differs" % rel)
            elif hole_bytes(pa, sa.st_size) > 0 and \
                    hole_bytes(pb, sb.st_size) < hole_bytes(pa, sa.st_size) // 2:
                bad.append("%r: holes not kept" % rel)
    # hard links: the same groups of names on both sides
    def groups(t):
        g = {}
        for rel, (p, s) in t.items():
            if stat.S_ISREG(s.st_mode) and s.st_nlink > 1:
                g.setdefault((s.st_dev, s.st_ino), set()).add(rel)
        return sorted(sorted(v) for v in g.values())
    if groups(ta) != groups(tb):
        bad.append("hard links differ: %r vs %r" % (groups(ta), groups(tb)))
    return bad


if __name__ == "__main__":
    args = [x for x in sys.argv[1:] if not x.startswith("--")]
    bad = compare(args[0], args[1], "--owner" in sys.argv)
    for line in bad[:20]:
        print("#   " + line)
    sys.exit(1 if bad else 0)
