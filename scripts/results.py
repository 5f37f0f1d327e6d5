#!/usr/bin/python3
"""results.py - time-to-accuracy curves, docs/results.md: DIM(L) and DIM(G) trained
on Fashion-MNIST and on CIFAR-10 with the default recipe, each checkpointed at
several points of its training time and probed there with the converged linear
probe (`dimd eval`: conv, fc and Y taps), beside a freshly initialised encoder and
the raw pixels. `make results` runs it; every command it ran is in the file.

How a curve is made: a short calibration run measures the images/s of the model on
this machine; the run's steps are its minutes at that speed; the run is then
trained in segments that end at fixed fractions of those steps (each segment
resumes the previous checkpoint, which is bitwise the same as one uninterrupted
run), and the x axis is the training seconds the segments report (probing and
start-up are not counted).

Data: Fashion-MNIST's own test split. CIFAR-10: --cifar DIR is an image folder of
class folders; with train/ and test/ inside, those are the splits; with train/
only (the training images this project is given), `dimd` carves every 6th image
of each class as the validation split (core/data/dataset.h), and that is what is
reported.

usage: scripts/results.py PATH/TO/dimd [--cifar DIR] [--only fashion-mnist|cifar10]
           [--minutes-fmnist M] [--minutes-cifar M] [--fractions F,F,...]
           [--threads N] [--work DIR] [--out docs/results.md] [--write-only] [--reuse]
           [--note TEXT]
--write-only writes the file again from the logs of an earlier run in --work.
--reuse runs only what an earlier, interrupted run in --work did not finish: a
command whose log ends in its JSON line (and whose checkpoint, for a training
segment, exists) is read back instead of run again, so the hours of a full run
can be spread over several sittings (`make results REUSE=1`).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from report import commands_section, machine

MODELS = [  # (label, slug, flags): the paper's weights (docs/dim-algorithm.md, section 1)
    ("DIM(L)", "dim-l", ["--alpha", "0", "--beta", "1", "--gamma", "0.1"]),
    ("DIM(G)", "dim-g", ["--alpha", "1", "--beta", "0", "--gamma", "1"]),
]
TAPS = ("conv", "fc", "y")
REUSE = False  # --reuse

# The targets (linear probe, converged, training time only): data -> tap -> (minutes, %)
TARGETS = {
    "fashion-mnist": {"conv": (30, 90.0), "y": (30, 85.0)},
    "cifar10": {"conv": (60, 65.0), "y": (60, 55.0)},
}


def finished(log, out=None):
    """Whether an earlier run left log with its JSON line (and out, when named)."""
    try:
        with open(log) as f:
            done = any(l.startswith("{") for l in f.read().strip().splitlines()[-1:])
    except OSError:
        return False
    return done and (out is None or os.path.exists(out))


def run(cmd, log, write_only, out=None):
    """Runs cmd (or, with write_only or a finished log under --reuse, reads its earlier
    log); returns the last JSON line."""
    if write_only or (REUSE and finished(log, out)):
        if not write_only:
            print("= " + os.path.basename(log) + " (reused)", flush=True)
        with open(log) as f:
            text = f.read()
    else:
        print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        with open(log, "w") as f:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
            f.write(p.stdout)
        if p.returncode != 0:
            sys.exit("results.py: %s failed with status %d (log: %s)" % (
                " ".join(cmd[:2]), p.returncode, log))
        text = p.stdout
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit("results.py: no JSON line in %s" % log)


def cifar_spec(d):
    """The dataset argument for a CIFAR-10 image folder (see the module comment)."""
    if os.path.isdir(os.path.join(d, "test")):
        return d, "its test split"
    if os.path.isdir(os.path.join(d, "train")):
        return os.path.join(d, "train"), "a validation split carved from its training images " \
            "(every 6th image of each class by sorted name)"
    sys.exit("results.py: %s has no train/ folder" % d)


def curve(a, data, spec, minutes, label, slug, flags, commands):
    """Trains one model in segments and probes each checkpoint; returns its rows."""
    work = os.path.join(a.work, data, slug)
    os.makedirs(work, exist_ok=True)
    base = [a.dimd, "train", "--dataset", spec, "--threads", a.threads, "--probe", "none",
            "--json"]
    cal = base + ["--steps", "60"] + flags
    cj = run(cal, os.path.join(work, "calibrate.log"), a.write_only)
    batch = cj["hparams"]["batch"]
    total = max(len(a.fractions), int(minutes * 60 * cj["images_per_second"] / batch))
    commands.append(cal)
    rows, prev, seconds = [], None, 0.0
    for i, frac in enumerate(a.fractions):
        steps = max(1, int(round(total * frac)))
        ckpt = os.path.join(work, "step-%d.ckpt" % steps)
        seg = base + ["--steps", str(steps), "--out", ckpt]
        seg += ["--resume", prev] if prev else flags + horizon(flags, total)
        log = os.path.join(work, "train-%d.log" % steps)
        fresh_run = not a.write_only and not (REUSE and finished(log, ckpt))
        tj = run(seg, log, a.write_only, ckpt)
        seconds += tj["train_seconds"]
        ev = [a.dimd, "eval", "--checkpoint", ckpt, "--dataset", spec, "--threads", a.threads,
              "--json"] + (["--fresh"] if i == 0 and slug == MODELS[0][1] else ["--no_pixels"])
        ej = run(ev, os.path.join(work, "eval-%d.log" % steps), a.write_only)
        commands += [seg, ev]
        p = ej["probe"]
        rows.append({"label": label, "steps": steps, "minutes": seconds / 60.0,
                     "load": os.getloadavg()[1] if fresh_run else None,
                     "epochs": tj["epochs"], "ips": tj["images_per_second"],
                     "acc": {t: 100 * p["trained"][t] for t in TAPS},
                     "pixels": 100 * p["pixels"] if "pixels" in p else None,
                     "fresh": {t: 100 * p["fresh"][t] for t in TAPS} if "fresh" in p else None,
                     "probe_s": p["seconds"]})
        print("results.py: %s %s step %d (%.1f min): conv %.1f fc %.1f y %.1f" % (
            data, label, steps, seconds / 60, *[rows[-1]["acc"][t] for t in TAPS]), flush=True)
        prev = ckpt
    return rows, total


def horizon(flags, total):
    """A decaying schedule spans the whole run, not the first segment."""
    return [] if "--lr_horizon" in flags else ["--lr_horizon", str(total)]


def plot(path, title, curves, fresh, pixels):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharex=True)
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for ax, tap in zip(axes, TAPS):
        for (label, rows), c in zip(curves, colours):
            ax.plot([0] + [r["minutes"] for r in rows], [fresh[tap]] + [r["acc"][tap] for r in rows],
                    "o-", color=c, label=label, ms=4)
        ax.axhline(fresh[tap], color="grey", ls="--", lw=1, label="fresh encoder")
        ax.axhline(pixels, color="black", ls=":", lw=1, label="raw pixels")
        ax.set_title("%s: linear probe on %s" % (title, tap if tap != "y" else "Y"))
        ax.set_xlabel("training minutes")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dimd")
    ap.add_argument("--cifar", default="build/data/cifar10")
    ap.add_argument("--only", choices=["fashion-mnist", "cifar10"])
    ap.add_argument("--minutes-fmnist", type=float, default=30)
    ap.add_argument("--minutes-cifar", type=float, default=60)
    ap.add_argument("--fractions", default="0.1,0.2,0.333,0.667,1")
    ap.add_argument("--threads", default=str(os.cpu_count() or 1))
    ap.add_argument("--work", default="build/results")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--write-only", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="read back what an earlier run in --work finished")
    ap.add_argument("--note", default="", help="a paragraph added under the introduction")
    a = ap.parse_args()
    global REUSE
    REUSE = a.reuse
    a.fractions = [float(f) for f in a.fractions.split(",")]
    if sorted(a.fractions) != a.fractions or not 0 < a.fractions[0] or a.fractions[-1] != 1:
        sys.exit("results.py: --fractions must rise to 1 (got %s)" % a.fractions)
    sets = []
    if a.only in (None, "fashion-mnist"):
        sets.append(("fashion-mnist", "Fashion-MNIST", "fashion-mnist", "its test split",
                     a.minutes_fmnist))
    if a.only in (None, "cifar10"):
        spec, split = cifar_spec(a.cifar)
        sets.append(("cifar10", "CIFAR-10", spec, split, a.minutes_cifar))
    t0, commands, results = time.time(), [], []
    for data, title, spec, split, minutes in sets:
        curves, totals = [], []
        for label, slug, flags in MODELS:
            rows, total = curve(a, data, spec, minutes, label, slug, flags, commands)
            curves.append((label, rows))
            totals.append(total)
        first = curves[0][1][0]
        png = os.path.join(os.path.dirname(a.out) or ".", "results-%s.png" % data)
        plot(png, title, curves, first["fresh"], first["pixels"])
        results.append((data, title, split, minutes, curves, totals, first, png))
    write(a, results, commands, (time.time() - t0) / 60)


def write(a, results, commands, wall_min):
    out = ["# Results: time to accuracy", "",
           "Written by `make results` (scripts/results.py) on %s%s." % (
               time.strftime("%Y-%m-%d"),
               "" if a.write_only else ", in %.0f minutes of wall-clock time" % wall_min), "",
           "Machine: %s; %s threads." % (machine(), a.threads), "",
           "Each encoder is trained with the default recipe of new jobs (README, \"The default "
           "recipe\") and the paper's weights (DIM(L): alpha 0, beta 1, gamma 0.1; DIM(G): "
           "alpha 1, beta 0, gamma 1), checkpointed at fractions %s of its run, and each "
           "checkpoint is probed by `dimd eval`: the linear probe solved to convergence on all "
           "training images, its L2 weight chosen on a validation split of them. Minutes are "
           "training time only (the segments' own clocks). The fresh encoder (same architecture "
           "and seed, untrained) and the raw pixels are the flat lines. load is the machine's "
           "5-minute load average when each segment ended (2 cores: above 2, other work "
           "took time from the training, and its minutes run long)." % (
               ", ".join("%g" % f for f in a.fractions)), ""]
    if a.note:
        out += [a.note, ""]
    for data, title, split, minutes, curves, totals, first, png in results:
        out += ["## %s (%g minutes; accuracy on %s)" % (title, minutes, split), "",
                "![%s](%s)" % (title, os.path.basename(png)), "",
                "| model | minutes | steps | epochs | conv | fc | Y | images/s | probe s | load |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        f = first["fresh"]
        out.append("| fresh encoder | 0 | 0 | 0 | %.1f | %.1f | %.1f | | | |" % (
            f["conv"], f["fc"], f["y"]))
        out.append("| raw pixels | | | | %.1f | %.1f | %.1f | | | |" % ((first["pixels"],) * 3))
        for label, rows in curves:
            for r in rows:
                out.append("| %s | %.1f | %d | %.2f | %.1f | %.1f | %.1f | %.0f | %.0f | %s |" % (
                    label, r["minutes"], r["steps"], r["epochs"], r["acc"]["conv"],
                    r["acc"]["fc"], r["acc"]["y"], r["ips"], r["probe_s"],
                    "%.1f" % r["load"] if r.get("load") is not None else ""))
        out.append("")
        tg = TARGETS.get(data, {})
        if tg:
            out += ["Targets (issue 13; DIM(L), the accuracy at the checkpoint closest to the "
                    "target time, not after it):", "",
                    "| tap | target | reached | at minutes |", "|---|---|---|---|"]
            rows = curves[0][1]
            for tap, (mins, goal) in tg.items():
                at = [r for r in rows if r["minutes"] <= mins * 1.02] or rows[:1]
                r = at[-1]
                out.append("| %s | >= %.0f %% after %d min | %.1f %% | %.1f |" % (
                    tap if tap != "y" else "Y", goal, mins, r["acc"][tap], r["minutes"]))
            out.append("")
    out += commands_section(commands)
    with open(a.out, "w") as fh:
        fh.write("\n".join(out))
    print("results.py: wrote %s" % a.out)


if __name__ == "__main__":
    main()
