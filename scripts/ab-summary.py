#!/usr/bin/python3
"""Summary of a side-by-side benchmark (bench-pg-ab.sh, bench-core-ab.sh).

Reads RESULTS, one line per measurement: build|case|value, build "base" or
"new", several rounds per case. Prints per case the median of each build and
new/base ("-" when a build has a 0 or no value: the case failed there, or that
revision does not have it). With --depth-ratios
(cases named <case>/depth:<n>/...), also each build's ratio of the 1M-order
median to the 10k one.
  ab-summary.py RESULTS TITLE [--depth-ratios]
"""
import statistics
import sys

path, title = sys.argv[1], sys.argv[2]
depth_ratios = "--depth-ratios" in sys.argv[3:]
rows = [line.rstrip("\n").split("|") for line in open(path) if line.strip()]
names = list(dict.fromkeys(r[1] for r in rows))


def med(build, name):
    """Median of a build's values for a case; 0 when that build has none (it lacks the case)."""
    values = [float(r[2]) for r in rows if r[0] == build and r[1] == name]
    return statistics.median(values) if values else 0.0


width = max([len(title)] + [len(n) for n in names])
print(f"{title:{width}} {'base':>10} {'new':>10} {'new/base':>9}")
for n in names:
    b, w = med("base", n), med("new", n)
    ratio = f"{w / b:9.2f}" if b > 0 and w > 0 else f"{'-':>9}"  # 0: failed or missing in a build
    digits = 0 if max(b, w) >= 1000 else 1
    print(f"{n:{width}} {b:10.{digits}f} {w:10.{digits}f} {ratio}")
if depth_ratios:
    print()
    for n in names:
        deep = n.replace("/depth:10000/", "/depth:1000000/")
        if deep == n or deep not in names:
            continue
        case = n.split("/")[0]
        ratios = [f"{b} {med(b, deep) / med(b, n):.3f}" if med(b, n) > 0 and med(b, deep) > 0 else f"{b} -"
                  for b in ("base", "new")]
        print(f"depth ratio 1M/10k of medians, {case:12} " + "   ".join(ratios))
