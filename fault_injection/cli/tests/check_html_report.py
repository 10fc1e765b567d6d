#!/usr/bin/env python3
"""Checks that `rcsim report --html` drew what the campaign report says.

Usage: check_html_report.py REPORT.json REPORT.html
Every cell of the policy x fault-kind matrix, every per-policy cost cell and every coverage cell
carries its numbers as data-* attributes; each must equal the JSON's value, every JSON cell must be
drawn exactly once, and the page must be self-contained (no script, no external reference).
"""
import json
import sys
from html.parser import HTMLParser


class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells = []
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and any(k.startswith("data-") for k in a):
            self.cells.append(a)
        if tag in ("script", "link", "img", "iframe") or any(
                (v or "").startswith(("http:", "https:", "//")) for k, v in attrs if k in ("src", "href")):
            self.external.append(tag)


def main():
    report = json.load(open(sys.argv[1]))
    parser = Cells()
    parser.feed(open(sys.argv[2]).read())
    errors = []
    if parser.external:
        errors.append(f"not self-contained: {parser.external}")
    matrix = {(c["data-policy"], c["data-kind"]): c for c in parser.cells if "data-kind" in c and "data-policy" in c}
    want = {(p, k): cell for p, row in report["outcome_matrix"].items() for k, cell in row.items()}
    if set(matrix) != set(want):
        errors.append(f"matrix cells drawn {len(matrix)}, in JSON {len(want)}")
    for key, cell in want.items():
        drawn = matrix.get(key, {})
        for field in ("runs", "passed", "hazards", "failed", "injections"):
            if str(cell[field]) != drawn.get(f"data-{field}"):
                errors.append(f"matrix {key} {field}: JSON {cell[field]}, drawn {drawn.get(f'data-{field}')}")
    costs = [c for c in parser.cells if "data-cost" in c]
    for c in costs:
        value = report["by_policy"][c["data-policy"]][c["data-cost"]]
        if str(value) != c["data-value"]:
            errors.append(f"cost {c['data-policy']} {c['data-cost']}: JSON {value}, drawn {c['data-value']}")
    if len(costs) != 8 * len(report["by_policy"]):
        errors.append(f"{len(costs)} cost cells drawn")
    coverage = [c for c in parser.cells if "data-site" in c]
    for c in coverage:
        value = report["faults_by_site_kind"].get(f"{c['data-site']}:{c['data-kind']}", 0)
        if str(value) != c["data-injections"]:
            errors.append(f"coverage {c['data-site']}:{c['data-kind']}: JSON {value}, drawn {c['data-injections']}")
    drawn_sites = {f"{c['data-site']}:{c['data-kind']}" for c in coverage}
    for key in report["faults_by_site_kind"]:
        if key not in drawn_sites:
            errors.append(f"coverage {key} not drawn")
    nonzero = sum(1 for cell in want.values() if cell["runs"] > 0)
    if nonzero == 0:
        errors.append("the matrix is empty: nothing was checked")
    for e in errors:
        print("FAIL", e)
    print(f"html report: {len(matrix)} matrix cells ({nonzero} with runs), {len(costs)} cost cells, "
          f"{len(coverage)} coverage cells checked against the JSON")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
