#!/usr/bin/env python3
"""Fails when a source file is longer than a limit (issue 17: one idea per file; a file past ~600
lines almost always holds more than one).

Usage: check_file_length.py --tree ROOT --allow LIST [--max-lines 600]
           every covered source under ROOT (source_tree.py says which); exit 1 on a file over the
           limit that LIST does not allow, and on a LIST entry that has no reason, names no file,
           or names one that is no longer over the limit
       check_file_length.py --self-test
           plant long, fitting, excluded and allowed files and broken allow-lists; fail unless
           each is judged as it must be

LIST holds `path  reason` lines, path relative to ROOT. A file's length is its number of lines,
as `wc -l` counts them for a file that ends in a newline.
"""
import os
import sys
import tempfile

from source_tree import judge, read_allow_list, source_files, tree_options


def file_lengths(root):
    """{path: lines} over the covered sources."""
    lengths = {}
    for rel in source_files(root):
        with open(os.path.join(root, rel)) as f:
            lengths[rel] = len(f.read().splitlines())
    return lengths


def check_tree(root, limit, allow_path):
    allowed, problems = read_allow_list(allow_path)
    lengths = file_lengths(root)
    return lengths, problems + judge(lengths, limit, allowed, allow_path, "file")


def self_test():
    limit = 10
    def write(path, lines):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("".join(f"int v{i} = {i};\n" for i in range(lines)))
    failures = []
    def expect(label, problems, wanted):  # wanted: substrings, one per problem, in order
        ok = len(problems) == len(wanted) and all(w in p for w, p in zip(wanted, problems))
        print(f"{'ok  ' if ok else 'FAIL'} {label}: " + ("; ".join(problems) or "no problem"))
        if not ok:
            failures.append(f"{label}: expected {wanted}")
    with tempfile.TemporaryDirectory() as d:
        root = os.path.join(d, "tree")
        write(os.path.join(root, "core/long.cc"), limit + 1)
        write(os.path.join(root, "core/fits.h"), limit)
        write(os.path.join(root, "kernels/hip/long.hip"), limit + 5)
        for excluded in ("core/tests/t.cc", "core/a_test.cc", "property_tests/x_props.cc",
                         "fuzz/f.cc", "build-asan/gen.cc", ".git/x.cc", "docs/long.md"):
            write(os.path.join(root, excluded), 50)
        allow = os.path.join(d, "allow.txt")
        def run(text):
            with open(allow, "w") as f:
                f.write(text)
            return check_tree(root, limit, allow)[1]
        expect("new long files", run(""), ["core/long.cc: file is 11 lines",
                                           "kernels/hip/long.hip: file is 15 lines"])
        expect("all allowed", run("core/long.cc  why\n# note\nkernels/hip/long.hip\twhy\n"), [])
        expect("no reason", run("core/long.cc\nkernels/hip/long.hip  why\n"),
               ["'core/long.cc' has no reason"])
        expect("stale: fits now", run("core/long.cc  why\nkernels/hip/long.hip  why\n"
                                      "core/fits.h  why\n"), ["'core/fits.h' is 10 lines now"])
        expect("stale: gone", run("core/long.cc  why\nkernels/hip/long.hip  why\n"
                                  "core/gone.cc  why\n"), ["'core/gone.cc' names no file"])
    print("self-test " + ("passed" if not failures else "FAILED: " + "; ".join(failures)))
    return 0 if not failures else 1


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        return self_test()
    options = tree_options(args, 600)
    if options is None:
        print(__doc__)
        return 2
    root, allow, limit = options
    lengths, problems = check_tree(root, limit, allow)
    print("\n".join(problems) if problems else
          f"no file over {limit} lines but the allowed ones, of {len(lengths)} sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
