#!/usr/bin/python3
# check-run.py DIR WORKLOAD MEMS SIZES ITERATIONS FAILURES_PER_CELL
# A run directory is complete and consistent: one cell file per
# memory x size with every iteration, stats that match the figures,
# results.csv agreeing with the cells, summary.txt and meta.json.
import csv
import json
import os
import platform
import statistics
import sys

d, wl, mems, sizes, n, nfail = sys.argv[1], sys.argv[2], sys.argv[3].split(","), \
    sys.argv[4].split(","), int(sys.argv[5]), int(sys.argv[6])


def fail(msg):
    print(f"FAIL: {d}: {msg}")
    sys.exit(1)


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


names = sorted(f for f in os.listdir(d) if f.startswith("cell-"))
want = sorted(f"cell-{m}-{s}.json" for m in mems for s in sizes)
if names != want:
    fail(f"cell files {names}, expected {want}")
cells = {}
for name in names:
    c = json.load(open(os.path.join(d, name)))
    its, st = c["iterations"], c["stats"]
    if c["workload"] != wl or len(its) != n:
        fail(f"{name}: workload {c['workload']}, {len(its)} iterations")
    if [it["iteration"] for it in its] != list(range(1, n + 1)):
        fail(f"{name}: iterations numbered {[it['iteration'] for it in its]}")
    figs = [it["figure"] for it in its if it["ok"]]
    bad = [it for it in its if not it["ok"]]
    if len(bad) != nfail or any("error" not in it for it in bad):
        fail(f"{name}: {len(bad)} failed iterations (expected {nfail}, each with an error)")
    if any(not f > 0 for f in figs):
        fail(f"{name}: figures {figs}")
    if (st["n"], st["success"], st["failure"]) != (len(figs), len(figs), nfail):
        fail(f"{name}: stats counts {st}")
    if figs:
        exp = dict(median=statistics.median(figs), mean=statistics.fmean(figs),
                   stddev=statistics.stdev(figs) if len(figs) > 1 else 0.0,
                   min=min(figs), max=max(figs))
        for k, v in exp.items():
            if not close(st[k], v):
                fail(f"{name}: {k} {st[k]}, computed {v}")
    cells[(c["memory"], c["size"])] = c
rows = list(csv.DictReader(open(os.path.join(d, "results.csv"))))
if len(rows) != len(cells):
    fail(f"results.csv has {len(rows)} rows for {len(cells)} cells")
for r in rows:
    c = cells[(r["memory"], r["size"])]
    if int(r["n"]) != c["stats"]["n"] or int(r["failure"]) != nfail:
        fail(f"results.csv row {r} disagrees with the cell")
    if c["stats"]["n"] and abs(float(r["median"]) - c["stats"]["median"]) > 1e-5 * c["stats"]["median"]:
        fail(f"results.csv median {r['median']} vs {c['stats']['median']}")
summary = open(os.path.join(d, "summary.txt")).read()
if f"{len(cells)}/{len(cells)} cells, {nfail * len(cells)} failed iterations" not in summary:
    fail(f"summary.txt does not end as expected:\n{summary}")
meta = json.load(open(os.path.join(d, "meta.json")))
for k in ("command", "vmm_version", "started", "finished", "host"):
    if not meta.get(k):
        fail(f"meta.json lacks {k}")
if meta["host"]["kernel"] != platform.release() or not meta["vmm_version"].startswith("vmm "):
    fail(f"meta.json host kernel / vmm version: {meta['host']['kernel']} / {meta['vmm_version']}")
if "run" not in meta["command"] or meta["iterations"] != n or meta["workload"] != wl:
    fail(f"meta.json command {meta['command']}")
print(f"{d}: {len(cells)} cells of {n} iterations consistent")
