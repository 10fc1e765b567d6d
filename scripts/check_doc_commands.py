#!/usr/bin/env python3
"""Runs every command that README.md and docs/ show, as written, and checks its exit code.

Usage: scripts/check_doc_commands.py [--ci] [--list]
  --list   print the commands found and what would be done with each, run nothing
  --ci     skip commands an earlier .ci/run stage already ran (`make test`, the `ctest -L ...`
           subsets of it, and docs/properties.md's separate build-props build of the same
           property tests), each with a printed reason

Commands are the lines of fenced code blocks in README.md, BENCHMARKS.md, docs/*.md and
examples/**/README.md that start with make, build/bin/, ctest, cmake, scripts/, tools/, bench/,
python3 or bash (continuation lines joined). A command runs from the repository root through
bash, as written, except for what a reader must fill in, which is filled in and printed:
  <TOKEN>, <token>, a token shown elided (rcsim1_...)  -> the REPLAY= token of a failing run
  <case>                                               -> every file of examples/cases/
  [optional arguments]                                 -> dropped
Expected exit code: 0, or N where the line's comment says "fails: exit N". GPU-only commands
(rcsim diff, the cuda/hip-amd presets, bench/, tools/ that need torch) are skipped with a reason.
"""
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIXES = ("make ", "build/bin/", "ctest ", "cmake ", "scripts/", "tools/", "bench/", "python3 ",
            "bash ")
GPU_ONLY = [(re.compile(r"rcsim diff\b"), "rcsim diff needs a GPU backend build"),
            (re.compile(r"--preset (cuda|hip-amd)\b|make (cuda|hip-amd)\b|build-(cuda|hip|gpu)"
                        r"|RCSIM_HOST_ONLY=OFF"),
             "a GPU toolkit build"),
            (re.compile(r"^(bash |python3 )?(bench|tools)/"), "a GPU benchmark or the PyTorch peer"),
            (re.compile(r"gpu_testbed_run|gpu_python_tests|pack_gpu_carry|\$OUT\b|--backend gpu"),
             "runs on the GPU machine (its results go to the device tool's $OUT)")]
COVERED_BY_CI = [(re.compile(r"^make test\b"), "stage 'make test' ran it"),
                 (re.compile(r"^ctest --preset default -L \w+"), "a subset of stage 'make test'"),
                 (re.compile(r"^ctest --test-dir build -L \w+"), "a subset of stage 'make test'"),
                 (re.compile(r"^(cmake -S \. -B|cmake --build|ctest --test-dir) build-props\b"),
                  "the property suites: the same tests of the same configuration ran in stage "
                  "'make test'")]


def doc_files():
    files = ["README.md", "BENCHMARKS.md"] + sorted(glob.glob("docs/*.md"))
    files += sorted(glob.glob("examples/**/README.md", recursive=True))
    return [f for f in files if os.path.exists(os.path.join(ROOT, f))]


def commands():
    for f in doc_files():
        in_block, pending = False, ""
        for number, line in enumerate(open(os.path.join(ROOT, f)), 1):
            if line.startswith("```"):
                in_block, pending = not in_block, ""
                continue
            text = line.strip()
            if not in_block or not (pending or text.startswith(PREFIXES)):
                continue
            pending = f"{pending} {text}".strip() if pending else text
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            yield f"{f}:{number}", pending
            pending = ""


def failing_token():
    out = subprocess.run(["build/bin/rcsim", "run", "--seed", "3", "--mutant", "slot-off-by-one",
                          "--faults", "none"], cwd=ROOT, capture_output=True, text=True).stdout
    match = re.search(r"^REPLAY=(\S+)$", out, re.M)
    if not match:
        sys.exit("check_doc_commands: could not get a replay token from a failing run")
    return match.group(1)


def expand(command, token):
    """The runnable commands for one documented command, and notes on what was filled in."""
    comment = ""
    if " #" in command:
        command, comment = command.split(" #", 1)
    command = command.strip()
    notes = []
    expected = 0
    m = re.search(r"fails: exit (\d+)", comment)
    if m:
        expected = int(m.group(1))
    if re.search(r"\[[^\]]*\]", command):
        command = re.sub(r"\s*\[[^\]]*\]", "", command)
        notes.append("optional [arguments] dropped")
    if re.search(r"<token>|<TOKEN>|rcsim1_\S*\.\.\.\S*", command):
        command = re.sub(r"<token>|<TOKEN>|rcsim1_\S*\.\.\.\S*", token, command)
        notes.append("token of a failing run filled in")
        expected = 1  # the token's run fails its correctness check (exit 1)
    if "<case>" in command:
        cases = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "examples/cases/*.json")))
        notes.append(f"<case> = each of {', '.join(cases)}")
        return [command.replace("<case>", c) for c in cases], expected, notes
    return [command], expected, notes


def untracked():
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    return set(out.split())


def main():
    ci = "--ci" in sys.argv
    listing = "--list" in sys.argv
    os.chdir(ROOT)
    before = untracked()
    token = None if listing else failing_token()
    ran = skipped = failed = 0
    for where, documented in commands():
        reason = next((why for pat, why in GPU_ONLY if pat.search(documented)), None)
        if reason is None and ci:
            reason = next((why for pat, why in COVERED_BY_CI if pat.search(documented)), None)
        if reason:
            print(f"SKIP {where}: {documented}\n     ({reason})")
            skipped += 1
            continue
        runs, expected, notes = expand(documented, token or "<token>")
        for command in runs:
            print(f"RUN  {where}: {command}" + (f"\n     ({'; '.join(notes)})" if notes else ""),
                  flush=True)
            if listing:
                continue
            start = time.monotonic()
            proc = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True)
            seconds = time.monotonic() - start
            ran += 1
            ok = proc.returncode == expected
            print(f"     exit {proc.returncode} (expected {expected}) in {seconds:.1f}s: "
                  f"{'ok' if ok else 'FAILED'}", flush=True)
            if not ok:
                failed += 1
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
                print("     | " + "\n     | ".join(tail))
    # The documented commands write their outputs (out.json, shard reports) where the reader runs
    # them; remove what they left in the work tree so a clean clone stays clean.
    for path in sorted(untracked() - before):
        print(f"removing {path} (written by a documented command)")
        os.remove(os.path.join(ROOT, path))
    print(f"doc commands: {ran} ran, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
