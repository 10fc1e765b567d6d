#!/usr/bin/env python3
"""Which kernel entries of one PTX file are identical to those of reference builds.

Why: a kernel change that only some template instances take can be shown to leave the others
exactly as they were measured: each `.entry` body of NEW is compared with the same entry of each
reference file, after removing what differs between compilations of the same code (the anonymous
namespace's per-file hash in symbol names, and nvcc's call-sequence counters in comments).

Usage: python3 tools/compare_ptx_entries.py NEW.ptx REF1.ptx [REF2.ptx ...]
  PTX from `nvcc -x cu -ptx` with the build's flags (BENCHMARKS.md, sixteenth pass, shows them).
Prints, per reference, how many of NEW's entries it matches (first match wins), and every entry
that matches none; exits 1 if any entry matches none.
"""
import hashlib
import re
import sys

ENTRY = re.compile(r"(?:\.visible |\.weak )?\.entry (\S+)\(")


def normalised(text):
    text = re.sub(r"// callseq \d+(, \d+)?", "", text)
    return re.sub(r"\d*_GLOBAL__N__[0-9a-f]+_\d+_\w+?_hip_[0-9a-f]{8}", "ANON", text)


def entries(path):
    with open(path) as f:
        text = normalised(f.read())
    out = {}
    for m in ENTRY.finditer(text):
        end = text.find("\n}\n", m.start())
        out[m.group(1)] = hashlib.sha1(text[m.start():end].encode()).hexdigest()
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    new = entries(argv[1])
    refs = [(path, entries(path)) for path in argv[2:]]
    matched = {path: 0 for path, _ in refs}
    unmatched = []
    for name, digest in new.items():
        hit = next((path for path, ref in refs if ref.get(name) == digest), None)
        if hit is None:
            unmatched.append(name)
        else:
            matched[hit] += 1
    print(f"{len(new)} entries in {argv[1]}")
    for path, count in matched.items():
        print(f"  {count} identical to {path}")
    for name in unmatched:
        print(f"  NO MATCH: {name}")
    return 1 if unmatched else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
