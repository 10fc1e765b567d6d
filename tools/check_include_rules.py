#!/usr/bin/env python3
"""Fails when an #include breaks a folder rule of docs/architecture.md.

Every source under the project's folders is mapped to its folder; each quoted include
("folder/file.h") must name a file in a folder that the including folder may use. Leaves (tests,
property tests, benchmarks, fuzzers, examples, the mutant suite, the shared test support) may
include any production header; production code may never include a leaf. Device-side folders
must stay free of host libraries (spdlog, gtest, RapidCheck, fmt, nlohmann). Also fails when a
quoted include names a file that does not exist (a rule that checks nothing is a defect).

Usage: check_include_rules.py [SOURCE_DIR]   (exit 0: clean; 1: violations, one per line)
       check_include_rules.py --self-test     (proves the check bites on a planted tree)
"""
import os
import re
import sys

# Production folders and what each may include (besides itself). "X/**" = X and its subfolders.
# Most specific folder wins. Keep in step with docs/architecture.md.
RULES = {
    "kernels/common": [],                                   # the ground floor
    "core": ["kernels/common"],
    "core/io": ["core", "kernels/common"],
    "core/dispatch": ["core", "kernels/common"],
    "kernels/cpu": ["core", "kernels/common"],
    "kernels/hip": ["core", "kernels/common"],
    "fakes/mocks": ["core", "kernels/common"],
    "fakes/faults": ["core", "kernels/common"],
    "fault_injection/plan": ["core", "kernels/common", "fakes/faults"],
    # kernels/hip: the host-compiler-clean GPU backend API, for gpu_sim_device.cc (--backend gpu).
    "fault_injection/sim": ["core", "core/dispatch", "kernels/common", "kernels/cpu", "kernels/hip",
                            "fakes/faults", "fault_injection/plan", "fault_injection/sim/**"],
    "fault_injection/sim/checkers": ["core", "core/dispatch", "kernels/common", "fakes/faults",
                                     "fault_injection/sim"],
    "fault_injection/cli": ["core", "core/dispatch", "core/io", "kernels/common", "kernels/cpu",
                            "kernels/hip", "fakes/faults", "fault_injection/plan",
                            "fault_injection/sim", "harness/gpu"],
    "harness/gpu": ["core", "kernels/common", "kernels/cpu", "kernels/hip"],
    "fidelity": ["core", "kernels/common", "kernels/cpu", "fault_injection/sim"],
    "python/bindings": ["core", "core/dispatch", "kernels/common", "kernels/cpu", "kernels/hip",
                        "fakes/faults", "fault_injection/plan"],
}
# Leaves: any folder named tests/ (and below), plus these roots.
LEAF_ROOTS = ["property_tests", "bench", "fuzz", "examples", "fault_injection/mutants",
              "test_support"]
# Folders whose code runs on the device (or is shared with it): no host-only libraries.
DEVICE_FOLDERS = ["kernels/common"]
DEVICE_FILES_RE = re.compile(r"kernels/hip/.*\.hip$|kernels/hip/device_common\.h$")
HOST_LIBS_RE = re.compile(r"^\s*#\s*include\s+<(spdlog|gtest|gmock|rapidcheck|fmt|nlohmann)/")
SCANNED_ROOTS = ["core", "kernels", "fakes", "fault_injection", "harness", "fidelity",
                 "python"] + LEAF_ROOTS
SOURCE_RE = re.compile(r"\.(h|hpp|cc|cpp|hip|cu|cuh)$")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def is_leaf(folder):
    parts = folder.split("/")
    return "tests" in parts or any(folder == r or folder.startswith(r + "/") for r in LEAF_ROOTS)


def rule_for(folder):
    best = None
    for key in RULES:
        if folder == key or folder.startswith(key + "/"):
            if best is None or len(key) > len(best):
                best = key
    return best


def allowed(rule_key, target_folder):
    if target_folder == rule_key:
        return True
    for entry in RULES[rule_key]:
        if entry.endswith("/**"):
            base = entry[:-3]
            if target_folder == base or target_folder.startswith(base + "/"):
                return True
        elif target_folder == entry:
            return True
    return False


def check(root):
    problems = []
    files = 0
    for top in SCANNED_ROOTS:
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not SOURCE_RE.search(name):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                folder = os.path.dirname(rel)
                files += 1
                leaf = is_leaf(folder)
                key = None if leaf else rule_for(folder)
                if not leaf and key is None:
                    problems.append(f"{rel}: folder {folder} has no include rule")
                    continue
                device = (not leaf and any(folder == d for d in DEVICE_FOLDERS)) or \
                    DEVICE_FILES_RE.search(rel)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        if device and HOST_LIBS_RE.match(line):
                            problems.append(f"{rel}:{lineno}: device code includes a host "
                                            f"library: {line.strip()}")
                        m = INCLUDE_RE.match(line)
                        if not m or "/" not in m.group(1):
                            continue
                        target = m.group(1)
                        if not os.path.exists(os.path.join(root, target)):
                            problems.append(f"{rel}:{lineno}: includes missing file {target}")
                            continue
                        tfolder = os.path.dirname(target)
                        if leaf:
                            continue
                        if is_leaf(tfolder):
                            problems.append(f"{rel}:{lineno}: production code includes the "
                                            f"test/leaf file {target}")
                        elif not allowed(key, tfolder):
                            problems.append(f"{rel}:{lineno}: {folder} may not include "
                                            f"{tfolder} ({target}); see docs/architecture.md")
    return files, problems


def self_test():
    """Plants one violation of each kind in a temporary tree; each must be reported."""
    import tempfile
    planted = {
        "fault_injection/plan/fault_plan.h": "",
        "fakes/faults/tests/support.h": "",
        "fakes/faults/bad_upward.h": '#include "fault_injection/plan/fault_plan.h"\n',
        "core/bad_test_include.h": '#include "fakes/faults/tests/support.h"\n',
        "kernels/common/bad_host_lib.h": "#include <spdlog/spdlog.h>\n",
        "kernels/cpu/bad_missing.h": '#include "kernels/cpu/nowhere.h"\n',
        "fakes/faults/tests/ok_leaf.cc": '#include "fault_injection/plan/fault_plan.h"\n',
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in planted.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write(text)
        _, problems = check(tmp)
    expected = ["fakes/faults/bad_upward.h", "core/bad_test_include.h",
                "kernels/common/bad_host_lib.h", "kernels/cpu/bad_missing.h"]
    ok = len(problems) == len(expected) and all(
        any(p.startswith(e) for p in problems) for e in expected)
    for p in problems:
        print("self-test found:", p)
    print(f"check_include_rules --self-test: {'PASS' if ok else 'FAIL'} "
          f"({len(problems)} of {len(expected)} planted violations reported)")
    return 0 if ok else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), ".."))
    files, problems = check(root)
    for p in problems:
        print(p)
    print(f"check_include_rules: {files} files, {len(problems)} violations")
    if files == 0:
        print("check_include_rules: no sources found (wrong SOURCE_DIR?)")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
