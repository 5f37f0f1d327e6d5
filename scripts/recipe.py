#!/usr/bin/python3
"""recipe.py - the experiments behind the default training recipe, docs/recipe.md.

Each configuration trains DIM(L) (JSD, alpha 0, beta 1) on Fashion-MNIST for the
same number of images (one epoch, 60,000; three for the longer runs) and is
measured the same way: `dimd measure --measures linear --max_train 10000`, the
converged linear probe on conv, fc and Y, fitted on 10,000 evenly spaced training
images and scored on the 10,000 test images. Accuracy per image seen ranks what a
setting does to learning; the images/s each run reached ranks what it costs (the
machine is shared, so those are noisier than the accuracies, which are seeded and
exact). `make recipe` runs it; every command it ran is in the file.

usage: scripts/recipe.py PATH/TO/dimd [--work DIR] [--out docs/recipe.md]
                         [--only NAME,...] [--write-only] [--note TEXT]
--write-only writes the file again from the logs of an earlier run in --work.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

from report import commands_section

# (name, what it tries, flags, epochs). The first row is the paper's (and dimd's old) recipe.
CONFIGS = [
    ("A-base", "the paper's settings: Adam 1e-4, betas (0.5, 0.999), constant",
     ["--lr", "1e-4"], 1),
    ("B-lr5e-4", "lr 5e-4", ["--lr", "5e-4"], 1),
    ("C-lr1e-3", "lr 1e-3", ["--lr", "1e-3"], 1),
    ("S1-5e-4cos", "lr 5e-4, cosine to 1 %, 50 warm-up steps",
     ["--lr", "5e-4", "--lr_schedule", "cosine", "--lr_warmup", "50"], 1),
    ("S2-1e-3cos", "lr 1e-3, cosine to 1 %, 100 warm-up steps",
     ["--lr", "1e-3", "--lr_schedule", "cosine", "--lr_warmup", "100"], 1),
    ("G-gamma0", "no prior matching (gamma 0)", ["--lr", "1e-4", "--gamma", "0"], 1),
    ("A3-base", "the paper's settings, 3 epochs", ["--lr", "1e-4"], 3),
    ("B3-lr5e-4", "lr 5e-4, 3 epochs", ["--lr", "5e-4"], 3),
    ("S3-5e-4cos", "lr 5e-4, cosine to 1 %, 100 warm-up steps, 3 epochs",
     ["--lr", "5e-4", "--lr_schedule", "cosine", "--lr_warmup", "100"], 3),
    ("E-d128", "MI width D 128 (default 512)", ["--lr", "1e-4", "--mi_dim", "128"], 1),
    ("I-lr5e-4-g0", "lr 5e-4, gamma 0", ["--lr", "5e-4", "--gamma", "0"], 1),
    ("B-seed2", "lr 5e-4, seed 2 (how much B's figures move with the seed)",
     ["--lr", "5e-4", "--seed", "2"], 1),
    ("A-seed2", "the paper's settings, seed 2", ["--lr", "1e-4", "--seed", "2"], 1),
    ("H-b32", "lr 5e-4, batch 32", ["--lr", "5e-4", "--batch", "32"], 1),
    ("H-b128", "lr 5e-4, batch 128", ["--lr", "5e-4", "--batch", "128"], 1),
    ("E-d2048", "lr 5e-4, MI width D 2048 (the paper's)", ["--lr", "5e-4", "--mi_dim", "2048"], 1),
    ("N-nce", "lr 5e-4, InfoNCE", ["--lr", "5e-4", "--estimator", "nce"], 1),
]
IMAGES_PER_EPOCH = 60000  # Fashion-MNIST's training split
STEPS_PER_EPOCH = IMAGES_PER_EPOCH // 64  # at the default batch of 64


def steps_for(flags, epochs):
    """Steps of `epochs` epochs at the run's batch (default 64)."""
    batch = int(flags[flags.index("--batch") + 1]) if "--batch" in flags else 64
    return epochs * (IMAGES_PER_EPOCH // batch)


def run(cmd, log):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("recipe.py: %s failed with status %d (log: %s)" % (cmd[1], p.returncode, log))
    return time.time() - t0


def parse(work, name):
    """(accuracies, images/s, train seconds, final losses) from a run's logs."""
    with open(os.path.join(work, name + ".measure")) as f:
        j = json.loads([l for l in f if l.startswith("{")][-1])
    lin = j["trained"]["linear"]
    acc = {t: 100 * lin[t] for t in ("conv", "fc", "y", "pixels")}
    ips, losses = None, ""
    with open(os.path.join(work, name + ".train")) as f:
        steps = [l for l in f if l.startswith("step ")]
    if steps:
        m = re.search(r"\| ([\d.]+) img/s", steps[-1])
        ips = float(m.group(1)) if m else None
        losses = steps[-1].split("|")[0].split(" ", 4)[-1].strip()
    secs = None
    tt = os.path.join(work, name + ".ttime")
    if os.path.exists(tt):
        with open(tt) as f:
            secs = float(f.read().split()[-1])
    return acc, ips, secs, losses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dimd")
    ap.add_argument("--work", default="build/recipe")
    ap.add_argument("--out", default="docs/recipe.md")
    ap.add_argument("--threads", default=str(os.cpu_count() or 1))
    ap.add_argument("--only", default="")
    ap.add_argument("--write-only", action="store_true")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    only = set(a.only.split(",")) - {""}
    rows, commands = [], []
    for name, what, flags, epochs in CONFIGS:
        if only and name not in only:
            continue
        ckpt = os.path.join(a.work, name + ".ckpt")
        train = [a.dimd, "train", "--threads", a.threads, "--probe", "none", "--log_every", "100",
                 "--out", ckpt, "--steps", str(steps_for(flags, epochs))] + flags
        measure = [a.dimd, "measure", "--checkpoint", ckpt, "--measures", "linear",
                   "--max_train", "10000", "--threads", a.threads, "--json"]
        if not a.write_only:
            secs = run(train, os.path.join(a.work, name + ".train"))
            with open(os.path.join(a.work, name + ".ttime"), "w") as f:
                f.write("%.2f\n" % secs)
            run(measure, os.path.join(a.work, name + ".measure"))
        if not os.path.exists(os.path.join(a.work, name + ".measure")):
            continue
        commands += [train, measure]
        rows.append((name, what, epochs) + parse(a.work, name))
    write(a, rows, commands)


def write(a, rows, commands):
    base = rows[0][3] if rows and rows[0][0] == "A-base" else None
    out = ["# The training recipe: experiments", "",
           "Written by `make recipe` (scripts/recipe.py) on %s. DIM(L) with JSD on Fashion-MNIST, "
           "batch 64 (%d steps per epoch) and seed 1 unless a row says otherwise; each run measured by the converged "
           "linear probe (`dimd measure --measures linear --max_train 10000`: fitted on 10,000 "
           "training images, scored on the 10,000 test images). The raw pixels under the same "
           "probe: %.1f %%." % (time.strftime("%Y-%m-%d"), STEPS_PER_EPOCH,
                                rows[0][3]["pixels"] if rows else float("nan")), "",
           "| run | setting | epochs | conv | fc | Y | Y vs A-base (1 epoch) | images/s | train s | last losses |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name, what, epochs, acc, ips, secs, losses in rows:
        d = "%+.1f" % (acc["y"] - base["y"]) if base else ""
        out.append("| %s | %s | %d | %.2f | %.2f | %.2f | %s | %s | %s | %s |" % (
            name, what, epochs, acc["conv"], acc["fc"], acc["y"], d,
            "%.0f" % ips if ips else "", "%.0f" % secs if secs else "", losses))
    if a.note:
        out += ["", a.note]
    out += [""] + commands_section(commands)
    with open(a.out, "w") as fh:
        fh.write("\n".join(out))
    print("recipe.py: wrote %s" % a.out)


if __name__ == "__main__":
    main()
