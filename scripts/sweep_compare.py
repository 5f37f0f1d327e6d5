#!/usr/bin/python3
"""sweep_compare.py - ASHA against the exhaustive grid on one search space,
docs/sweeps.md (`make sweep-compare`).

The space: 8 learning rates from clearly too low (1e-6) to clearly too high (1.0)
times 2 prior weights (gamma 0 and 0.1): 16 configurations of DIM(L) on
Fashion-MNIST, each ranked by the converged linear probe on Y (probe_y) scored
on a validation split carved from the training split (never the test split).
The grid runs all 16 for the full budget; ASHA runs the same 16 points (its
seeded grid order) with rungs at budget/9, budget/3 and the budget (reduction
factor 3; with --steps, min_resource is floor(budget/9) steps, so 30 steps give rungs at
3, 9, 27 and 30). Both run with `dimd sweep` (the same JSON as POST /v1/sweeps) in
fresh state directories; the report gives each sweep's wall time, total
training steps (every trial's last step: a stopped trial counts up to its
rung), best configuration and its metric, and ASHA's gap to the grid's best.

usage: scripts/sweep_compare.py PATH/TO/dimd [--epochs E | --steps N] [--workers W]
           [--threads T] [--validation-images N] [--probe-images N] [--work DIR]
           [--out docs/sweeps.md]
A tiny run to see it work: --steps 30 --validation-images 300 --probe-images 300
--out build/sweep-compare.md (a few minutes).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

from report import commands_section, machine

LRS = [1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1, 1.0]
GAMMAS = [0.0, 0.1]


def body(algo, a):
    budget = {"steps": a.steps} if a.steps else {"epochs": a.epochs}
    b = {"name": "compare-" + algo,
         "base": {"dataset": "fashion-mnist", "probe": "linear",
                  "probe_images": a.probe_images, "keep_last": 1, "keep_best": 1},
         "space": {"lr": LRS, "gamma": GAMMAS},
         "algorithm": algo, "seed": 1, "metric": "probe_y", "budget": budget,
         "validation_images": a.validation_images, "parallel": a.workers}
    if algo == "asha":
        b["asha"] = {"reduction_factor": 3,
                     "min_resource": (max(1, a.steps // 9) if a.steps else a.epochs / 9)}
    return b


def run(dimd, algo, a, commands):
    path = os.path.join(a.work, algo + ".json")
    with open(path, "w") as f:
        json.dump(body(algo, a), f, indent=1)
    state = os.path.join(a.work, algo + "-state")
    cmd = [dimd, "sweep", path, "--state_dir", state, "--workers", str(a.workers),
           "--threads_per_worker", str(a.threads), "--json"]
    commands.append(cmd)
    print("# " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(os.path.join(a.work, algo + ".log"), "w") as log:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    seconds = time.time() - t0
    if p.returncode != 0:
        sys.exit("dimd sweep %s: exit status %d (log in %s)" % (algo, p.returncode, a.work))
    board = json.loads(p.stdout)
    trials = board["trials"]
    steps = sum(t["step"] for t in trials)
    best = board["best"]
    return {"algo": algo, "seconds": seconds, "steps": steps, "best": best, "trials": trials,
            "counts": board["counts"]}


def fmt_params(p):
    return "lr %g, gamma %g" % (p["lr"], p["gamma"])


def report(a, g, s, commands):
    gap = (g["best"]["metric"] - s["best"]["metric"]) * 100
    ratio = s["steps"] / g["steps"] if g["steps"] else float("nan")
    budget = "%d steps" % a.steps if a.steps else "%g epoch%s" % (a.epochs, "" if a.epochs == 1 else "s")
    lines = ["# Sweeps: ASHA against the exhaustive grid", "",
             "Written by `make sweep-compare` (scripts/sweep_compare.py) on %s." % machine(), "",
             "16 configurations of DIM(L) on Fashion-MNIST: lr in %s times gamma in %s, each "
             "trained for %s per trial and ranked by the converged linear probe on Y "
             "(`probe_y`) scored on %d training images held out of training and of the "
             "probe's fit (%d images); ASHA: rungs at budget/9, budget/3 and the budget, "
             "reduction factor 3, the same 16 points. %d workers x %d threads." % (
                 LRS, GAMMAS, budget, a.validation_images, a.probe_images, a.workers,
                 a.threads), "",
             "| sweep | wall time | training steps | best | probe_y |",
             "|---|---|---|---|---|"]
    for r in (g, s):
        lines.append("| %s | %.0f s | %d | %s | %.4f |" % (
            r["algo"], r["seconds"], r["steps"], fmt_params(r["best"]["params"]),
            r["best"]["metric"]))
    lines += ["", "ASHA's best is %.2f points %s the grid's, at %.2f of its training steps "
              "(%s: within 0.5 points at no more than 1/3 of the steps)." % (
                  abs(gap), "below" if gap > 0 else "above or equal to", ratio,
                  "met" if gap <= 0.5 and ratio <= 1 / 3 else "NOT met"), ""]
    for r in (g, s):
        lines += ["## %s" % r["algo"], "", "| trial | state | rung | probe_y | steps | params |",
                  "|---|---|---|---|---|---|"]
        for t in r["trials"]:
            m = t["metric"]
            lines.append("| %d | %s | %s | %s | %d | %s |" % (
                t["trial"], t["state"], "-" if t["rung"] is None else t["rung"],
                "-" if m is None else ("%.4f" % m if isinstance(m, float) else m), t["step"],
                fmt_params(t["params"])))
        lines.append("")
    lines += commands_section(commands)
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dimd")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--validation-images", type=int, default=5000)
    ap.add_argument("--probe-images", type=int, default=10000)
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default="docs/sweeps.md")
    a = ap.parse_args()
    a.work = a.work or tempfile.mkdtemp(prefix="dimd-sweep-compare-")
    os.makedirs(a.work, exist_ok=True)
    commands = []
    g = run(os.path.abspath(a.dimd), "grid", a, commands)
    s = run(os.path.abspath(a.dimd), "asha", a, commands)
    text = report(a, g, s, commands)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
