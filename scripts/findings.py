#!/usr/bin/python3
"""findings.py - the findings table of docs/findings.md: DIM(L) with JSD, NCE and
DV and DIM(G), each trained on Fashion-MNIST with the same budget, and a freshly
initialised encoder, all measured with the same `dimd measure` budget (probes,
SVM, NDM, MINE, reconstruction); then the paper's qualitative findings checked
on these numbers. `make findings` runs it; every command it ran is in the file.

usage: scripts/findings.py PATH/TO/dimd [--epochs E] [--seed N] [--threads N]
                          [--work DIR] [--out docs/findings.md] [--measure-flags "..."]
                          [--note TEXT] [--write-only]
--write-only writes the file again from the logs of an earlier run in --work.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from report import commands_section, machine

MODELS = [  # (row, slug, training flags): the paper's weights (docs/dim-algorithm.md, section 1)
    ("DIM(L) JSD", "dim-l-jsd", ["--estimator", "jsd", "--alpha", "0", "--beta", "1", "--gamma", "0.1"]),
    ("DIM(L) NCE", "dim-l-nce", ["--estimator", "nce", "--alpha", "0", "--beta", "1", "--gamma", "0.1"]),
    ("DIM(L) DV", "dim-l-dv", ["--estimator", "dv", "--alpha", "0", "--beta", "1", "--gamma", "0.1"]),
    ("DIM(G) JSD", "dim-g-jsd", ["--estimator", "jsd", "--alpha", "1", "--beta", "0", "--gamma", "1"]),
]


def run(cmd, log):
    """Runs cmd, teeing its output into log; returns (stdout text, seconds)."""
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
        f.write(p.stdout)
    if p.returncode != 0:
        sys.exit("findings.py: %s failed with status %d (log: %s)" % (cmd[1], p.returncode, log))
    return p.stdout, time.time() - t0


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit("findings.py: no JSON line in the output")


def fmt(v, pct=False, digits=3):
    if v is None:
        return "n/a"
    return ("%.1f" % (100 * v)) if pct else ("%.*f" % (digits, v))


def commands_for(a, i, slug, flags):
    ckpt = os.path.join(a.work, slug + ".ckpt")
    train = [a.dimd, "train", "--epochs", a.epochs, "--seed", a.seed, "--threads", a.threads,
             "--probe", "none", "--out", ckpt, "--json"] + flags
    # the first model also measures the freshly initialised encoder (same architecture,
    # same measure budget and seeds): the baseline every DIM row must beat
    measure = [a.dimd, "measure", "--checkpoint", ckpt, "--seed", a.seed, "--threads", a.threads,
               "--grid", os.path.join(a.work, slug + "-grid.png"), "--json"]
    measure += shlex.split(a.measure_flags) + (["--fresh"] if i == 0 else [])
    return train, measure


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dimd")
    ap.add_argument("--epochs", default="2")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--threads", default=str(os.cpu_count() or 1))
    ap.add_argument("--work", default="build/findings")
    ap.add_argument("--out", default="docs/findings.md")
    ap.add_argument("--measure-flags", default="", help="extra `dimd measure` budget flags")
    ap.add_argument("--note", default="", help="a paragraph added under the table")
    ap.add_argument("--write-only", action="store_true",
                    help="no training: write the table from the logs of an earlier run in --work")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    rows, commands = [], []
    for i, (label, slug, flags) in enumerate(MODELS):
        train, measure = commands_for(a, i, slug, flags)
        logs = [os.path.join(a.work, slug + x) for x in ("-train.log", "-measure.log")]
        if a.write_only:
            outs = []
            for log in logs:
                with open(log) as f:
                    outs.append(f.read())
        else:
            outs = [run(train, logs[0])[0], run(measure, logs[1])[0]]
        tj, mj = last_json(outs[0]), last_json(outs[1])
        commands += [train, measure]
        rows.append({"label": label, "r": mj["trained"], "train_s": tj["train_seconds"],
                     "measure_s": mj["trained"]["seconds"]["total"], "steps": tj["steps"],
                     "ips": tj["images_per_second"]})
        if i == 0:
            rows.append({"label": "fresh encoder", "r": mj["fresh"], "train_s": 0.0,
                         "measure_s": mj["fresh"]["seconds"]["total"], "steps": 0, "ips": None})
        print("findings.py: %s: %d steps in %.0f s, measured in %.0f s" % (
            label, tj["steps"], tj["train_seconds"], mj["trained"]["seconds"]["total"]), flush=True)
    budgets = subprocess.run([a.dimd, "measure", "--help"], stdout=subprocess.PIPE, text=True).stdout
    budgets = budgets[budgets.find("Budgets:"):].strip() if "Budgets:" in budgets else ""
    write(a, rows, commands, budgets)


def check_findings(rows):
    by = {r["label"]: r["r"] for r in rows}
    local = [by[k] for k in ("DIM(L) JSD", "DIM(L) NCE", "DIM(L) DV")]
    glob, fresh = by["DIM(G) JSD"], by["fresh encoder"]
    out = []

    def verdict(ok):
        return "**holds**" if ok else "**does not hold**"

    ly = [r["linear"]["y"] for r in local]
    out.append("- Local MI gives better classification than global (linear probe on Y): "
               "DIM(L) %s vs DIM(G) %s: %s." % (
                   " / ".join(fmt(v, True) for v in ly), fmt(glob["linear"]["y"], True),
                   verdict(min(ly) > glob["linear"]["y"])))
    lc = [r["linear"]["conv"] for r in local]
    out.append("- The same on the conv tap: DIM(L) %s vs DIM(G) %s: %s." % (
        " / ".join(fmt(v, True) for v in lc), fmt(glob["linear"]["conv"], True),
        verdict(min(lc) > glob["linear"]["conv"])))
    lm = [r["mine"] for r in local]
    out.append("- Global MI keeps more pixel information, by MINE's estimate of I(X; Y): "
               "DIM(G) %s nats vs DIM(L) %s: %s." % (
                   fmt(glob["mine"]), " / ".join(fmt(v) for v in lm), verdict(glob["mine"] > max(lm))))
    ls = [r["ssim"] for r in local]
    out.append("- Global MI reconstructs better (SSIM of test images from Y): DIM(G) %s vs "
               "DIM(L) %s: %s." % (fmt(glob["ssim"]), " / ".join(fmt(v) for v in ls),
                                   verdict(glob["ssim"] > max(ls))))
    out.append("- Every trained encoder beats the freshly initialised one on the linear probe "
               "of Y (fresh %s): %s." % (
                   fmt(fresh["linear"]["y"], True),
                   verdict(all(r["linear"]["y"] > fresh["linear"]["y"] for r in local + [glob]))))
    return out


def write(a, rows, commands, budgets):
    total_s = sum(r["train_s"] + r["measure_s"] for r in rows)
    lines = ["# Findings: DIM(L) vs DIM(G) on Fashion-MNIST", "",
             "Written by `make findings` (scripts/findings.py) on %s. Training and measuring took "
             "%.0f minutes in all (the last two columns)." % (time.strftime("%Y-%m-%d"), total_s / 60),
             "",
             "Machine: %s." % machine(), "",
             "Every encoder is basic32x32 (Fashion-MNIST padded to 32x32), D = 512, Y = 64, batch 64, "
             "Adam 1e-4, seed %s, trained for %s epoch(s); the fresh encoder is the same "
             "architecture, freshly initialised with the same seed. All rows are measured with the "
             "same `dimd measure` budget and seeds. Accuracies are %% of the test images "
             "(linear and MLP probes and a linear SVM, mean +- std over its seeds, trained on evenly "
             "spaced training images); NDM and MINE are nats; SSIM and MS-SSIM compare test images "
             "with their reconstructions from Y by an MLP decoder." % (a.seed, a.epochs), "",
             "| model | linear conv | linear fc | linear Y | MLP Y | SVM Y | NDM | NDM (sigmoid) "
             "| MINE I(X;Y) | SSIM | MS-SSIM | recon MSE | train s | measure s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = row["r"]
        svm = "%s +- %s" % (fmt(r["svm"]["mean"]["y"], True), fmt(r["svm"]["std"]["y"], True))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f |" % (
            row["label"], fmt(r["linear"]["conv"], True), fmt(r["linear"]["fc"], True),
            fmt(r["linear"]["y"], True), fmt(r["mlp"]["y"], True), svm, fmt(r["ndm"]),
            fmt(r["ndm_sigmoid"]), fmt(r["mine"]), fmt(r["ssim"]), fmt(r["ms_ssim"]),
            fmt(r["recon_mse"], digits=4), row["train_s"], row["measure_s"]))
    lines += ["", "Training ran at %s images/s (DIM(L) JSD, NCE, DV, DIM(G)); train s is the "
              "training loop, measure s is `dimd measure` for that encoder (encoding the images "
              "and every measure)." % " / ".join("%.0f" % r["ips"] for r in rows if r["ips"])]
    if a.note:
        lines += ["", a.note]
    if budgets:
        lines += ["", "The measure budget (`dimd measure` defaults%s):" % (
            ", with " + a.measure_flags if a.measure_flags else ""), "", "```", budgets, "```"]
    lines += ["", "## The paper's findings on this data", ""] + check_findings(rows)
    lines += [""] + commands_section(commands)
    with open(a.out, "w") as f:
        f.write("\n".join(lines))
    print("findings.py: wrote %s" % a.out)


if __name__ == "__main__":
    main()
