#!/usr/bin/python3
# synth-run.py DIR WORKLOAD HIGHER_IS_BETTER SIZE=FIG,FIG,... [SIZE=...] [-- DIR ...]
# Run directories with the given figures (memory 64M, one cell per size;
# "x" is a failed iteration), for compare's tests: statistics on figures
# known in advance.  Several runs are separated by "--".
import json
import os
import sys


def make(d, wl, hib, cells):
    os.makedirs(d)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"label": os.path.basename(d), "workload": wl, "started": "synthetic"}, f)
    for arg in cells:
        size, figs = arg.split("=")
        its = [{"iteration": i, "ok": v != "x",
                **({"figure": float(v)} if v != "x" else {"error": "synthetic failure"})}
               for i, v in enumerate(figs.split(","), 1)]
        cell = {"workload": wl, "unit": "MB/s", "higher_is_better": hib == "1",
                "memory": "64M", "size": size, "cpus": 1, "memory_bytes": 64 << 20,
                "size_bytes": int(size[:-1]) << 20, "iterations": its, "stats": {}}
        with open(os.path.join(d, f"cell-64M-{size}.json"), "w") as f:
            json.dump(cell, f)


args = sys.argv[1:]
while args:
    n = args.index("--") if "--" in args else len(args)
    make(args[0], args[1], args[2], args[3:n])
    args = args[n + 1:]
