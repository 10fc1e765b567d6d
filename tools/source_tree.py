"""The sources the length checks cover, and the allow-list both of them read.

Covered: every *.cc, *.h, *.hip and *.cu under the repository root, except tests (any `tests/`
folder, `*_test.cc`, `property_tests/*props.cc`) and `fuzz/`, where a long table-driven case reads
better whole. The tree is walked, not listed, so a new file is covered the day it is added. Build
outputs (`build*/`, `out/`), hidden folders and `shared/` are not sources and are skipped.

An allow-list names what may stay over a limit, one entry a line, `KEY  reason` (`#` starts a
comment). Every entry must carry a reason, name something that exists, and still be over the limit:
otherwise the check fails, so the list cannot rot into a list of things long since fixed.
"""
import fnmatch
import os

SOURCE_SUFFIXES = (".cc", ".h", ".hip", ".cu")
SKIPPED_FOLDERS = {"tests", "fuzz", "out", "shared", "__pycache__"}
SKIPPED_FILES = ("*_test.cc", "property_tests/*props.cc")


def covered(relpath):
    """Whether a path relative to the root is a source the length checks cover."""
    parts = relpath.split("/")
    if any(p in SKIPPED_FOLDERS or p.startswith(".") or p.startswith("build") for p in parts[:-1]):
        return False
    if not relpath.endswith(SOURCE_SUFFIXES):
        return False
    return not any(fnmatch.fnmatch(relpath, pattern) for pattern in SKIPPED_FILES)


def source_files(root):
    """Covered sources under root, as sorted '/'-separated paths relative to it."""
    found = []
    for folder, subfolders, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        subfolders[:] = [d for d in subfolders if covered(rel_folder + d + "/x.cc")]
        found += [rel_folder + f for f in files if covered(rel_folder + f)]
    return sorted(found)


def read_allow_list(path):
    """{key: reason} of an allow-list, and the problems found reading it (no reason, twice)."""
    allowed, problems = {}, []
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            key, reason = (line.split(None, 1) + [""])[:2]
            if not reason.strip():
                problems.append(f"{path}:{number}: '{key}' has no reason: say why it may stay long")
            elif key in allowed:
                problems.append(f"{path}:{number}: '{key}' is listed twice")
            allowed[key] = reason.strip()
    return allowed, problems


def judge(lengths, limit, allowed, allow_path, what):
    """Problems of a tree: items over the limit and not allowed, and allowed entries that name
    nothing or are no longer over it. lengths: {key: lines} of every item measured."""
    problems = []
    for key, lines in sorted(lengths.items()):
        if lines > limit and key not in allowed:
            problems.append(f"{key}: {what} is {lines} lines (limit {limit}): split it, or add "
                            f"'{key}  <reason>' to {allow_path}")
    for key in sorted(allowed):
        if key not in lengths:
            problems.append(f"{allow_path}: '{key}' names no {what} that exists: delete the line")
        elif lengths[key] <= limit:
            problems.append(f"{allow_path}: '{key}' is {lengths[key]} lines now, within the limit "
                            f"of {limit}: delete the line")
    return problems


def tree_options(args, default_limit):
    """(root, allow_path, limit) from `--tree ROOT --allow LIST [--max-lines N]`, or None when the
    arguments are not exactly that (the caller prints its usage)."""
    opts = dict(zip(args[0::2], args[1::2]))
    if (len(args) % 2 or set(opts) - {"--tree", "--allow", "--max-lines"}
            or not {"--tree", "--allow"} <= set(opts)):
        return None
    return opts["--tree"], opts["--allow"], int(opts.get("--max-lines", default_limit))
