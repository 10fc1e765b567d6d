#!/usr/bin/env python3
"""Fails when a C++ function body is longer than a limit (style: host functions short).

Usage: check_function_length.py MAX_LINES FILE...  report every longer function, exit 1 if any
       check_function_length.py --self-test        plant one function of MAX+1 lines and one of
                                                   MAX; fail unless only the first is reported

A function is a brace block opened at namespace or class level after a parenthesised header that
is not a control statement; its length runs from the header's first line to the closing brace.
Comments, string literals and preprocessor lines are blanked first, so braces inside them do not
count. Lambdas and nested blocks count towards the function that contains them. A heuristic for
this code base's clang-format style, not a C++ parser.
"""
import os
import re
import sys
import tempfile


def blank(src):
    """Comments and string/char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i) + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"' and src[max(0, i - 1)] == "R" and src.find("(", i) > i:
            delim = src[i + 1:src.find("(", i)]
            j = src.find(")" + delim + '"', i) + len(delim) + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and src[i - 1].isalnum())):
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", src[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    return re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), text)


def functions(text):
    """(lines, first_line, name) of every function in the blanked text."""
    stack, found, line, stmt, stmt_line = [], [], 1, "", 1
    for ch in text:
        if ch == "{":
            head = stmt.strip()
            kind = "block"
            if re.match(r"(namespace|extern)\b", head) or (head == "" and not stack):
                kind = "scope"
            elif re.search(r"\b(class|struct|enum|union)\b", head) and "(" not in head:
                kind = "scope"
            elif (all(k == "scope" for k, _, _ in stack) and ")" in head
                  and not re.match(r"(if|for|while|switch|catch|do|else)\b", head)
                  and "=" not in head.split("(")[0]):
                kind = "function"
            stack.append((kind, stmt_line, head))
            stmt, stmt_line = "", line
        elif ch == "}":
            if stack:
                kind, first, head = stack.pop()
                if kind == "function":
                    words = head.split("(")[0].split()
                    found.append((line - first + 1, first, words[-1] if words else head))
            stmt, stmt_line = "", line
        elif ch == ";":
            stmt, stmt_line = "", line
        else:
            if ch == "\n":
                line += 1
            if not stmt.strip() and not ch.isspace():
                stmt_line = line
            stmt += ch
    return found


def check(limit, paths):
    long_ones = []
    for path in paths:
        with open(path) as f:
            for lines, first, name in functions(blank(f.read())):
                if lines > limit:
                    long_ones.append(f"{path}:{first}: {name} is {lines} lines (limit {limit})")
    return long_ones


def self_test():
    limit = 10
    def body(name, lines):  # a function of exactly `lines` lines, with a brace in a string
        inner = [f'  int v{i} = 0;  // {{' if i == 0 else f'  (void)"}}";'
                 for i in range(lines - 2)]
        return f"int {name}() {{\n" + "\n".join(inner) + "\n}\n"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "planted.cc")
        with open(path, "w") as f:
            f.write("namespace x {\n" + body("too_long", limit + 1) + body("just_fits", limit)
                    + "}\n")
        found = check(limit, [path])
    ok = len(found) == 1 and "too_long is 11 lines" in found[0]
    print("\n".join(found) or "nothing reported")
    print("self-test " + ("passed" if ok else "FAILED: expected only too_long (11 lines)"))
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    long_ones = check(int(sys.argv[1]), sys.argv[2:])
    print("\n".join(long_ones) if long_ones else f"no function over {sys.argv[1]} lines in "
          f"{len(sys.argv) - 2} files")
    return 1 if long_ones else 0


if __name__ == "__main__":
    sys.exit(main())
