#!/usr/bin/python3
# synth-run.py DIR WORKLOAD HIGHER_IS_BETTER SIZE=FIG,FIG,... [SIZE=...]
# A run directory with the given figures (memory 64M, one cell per size),
# for compare's tests: the statistics on figures known in advance.
import json
import os
import sys

d, wl, hib = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
os.makedirs(d)
with open(os.path.join(d, "meta.json"), "w") as f:
    json.dump({"label": os.path.basename(d), "workload": wl, "started": "synthetic"}, f)
for arg in sys.argv[4:]:
    size, figs = arg.split("=")
    its = [{"iteration": i, "ok": v != "x", **({"figure": float(v)} if v != "x" else
                                                 {"error": "synthetic failure"})}
           for i, v in enumerate(figs.split(","), 1)]
    cell = {"workload": wl, "unit": "MB/s", "higher_is_better": hib, "memory": "64M",
            "size": size, "cpus": 1, "memory_bytes": 64 << 20,
            "size_bytes": int(size[:-1]) << 20, "iterations": its, "stats": {}}
    with open(os.path.join(d, f"cell-64M-{size}.json"), "w") as f:
        json.dump(cell, f)
