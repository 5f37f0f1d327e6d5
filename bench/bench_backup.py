#!/usr/bin/python3
"""bench_backup.py - what a backup and a check cost, and what a backup costs a
training job.

1. A state directory with one trained job (the default hyperparameters, STEPS
   steps, a checkpoint every 100): its size; `dimd backup` (while the daemon
   runs), `POST /v1/backup` (the copy, and with the download) and `dimd check`,
   3 times each.
2. A small job training (a step every ~50 ms, a 61 MB checkpoint every 300
   steps, the newest 3 kept) while ROUNDS backups run, `dimd backup` and the
   route in turn, 4 s apart: the slowest step in each backup and the 3 s after
   it, against the steps away from backups and checkpoints (step intervals
   from the wall times of its loss_total points).

usage: bench/bench_backup.py BUILD/dimd [--steps N] [--rounds R] [--json PATH]
Uses tests/e2e/dimd_harness.py (the daemon on a free port, a temporary state).
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import dimd_harness as H  # noqa: E402


def arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def dimd(*a):
    t = time.time()
    p = subprocess.run([H.DIMD] + list(a), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise SystemExit("dimd %s: status %d: %s" % (a[0], p.returncode, p.stderr.decode()))
    return json.loads(p.stdout.decode().strip().splitlines()[-1]), time.time() - t


def spread(v):
    return {"min": min(v), "median": statistics.median(v), "max": max(v)}


def trained_state(steps):
    d = H.Daemon(["--workers", "1"]).start()
    c = d.client()
    j = c.submit({"dataset": "fashion-mnist", "steps": steps, "checkpoint_every": 100,
                  "probe": "none"})
    j = c.wait_state(j["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=1800)
    if j["state"] != "SUCCEEDED":
        raise SystemExit("the job ended %s: %r" % (j["state"], j["error"]))
    cps = c.get("/v1/jobs/%d/checkpoints" % j["id"]).json["checkpoints"]
    out = {"steps": steps, "checkpoints": [[x["step"], x["bytes"]] for x in cps],
           "db_bytes": os.path.getsize(os.path.join(d.state_dir, "dimd.db"))}
    cli, route, check = [], [], []
    for i in range(3):
        path = os.path.join(d.workdir, "b.db")
        r, wall = dimd("backup", "--state_dir", d.state_dir, "--out", path, "--json")
        os.unlink(path)
        cli.append({"seconds": r["seconds"], "wall": wall, "bytes": r["bytes"],
                    "pages": r["pages"], "steps": r["steps"]})
        t = time.time()
        resp = c.request("POST", "/v1/backup")
        route.append({"seconds": float(resp.header("X-Backup-Seconds")),
                      "with_download": time.time() - t, "bytes": len(resp.body)})
        r, wall = dimd("check", "--state_dir", d.state_dir, "--json")
        if not r["ok"]:
            raise SystemExit("dimd check found problems: %r" % r["problems"])
        check.append({"seconds": r["seconds"], "wall": wall,
                      "checkpoint_bytes": r["checkpoint_bytes"]})
    d.stop()
    out.update(backup_cli=cli, backup_route=route, check=check)
    print("state: %d bytes, checkpoints %s" % (out["db_bytes"], out["checkpoints"]))
    print("dimd backup: %s s" % spread([x["seconds"] for x in cli]))
    print("POST /v1/backup: copy %s s, with the download %s s" % (
        spread([x["seconds"] for x in route]), spread([x["with_download"] for x in route])))
    print("dimd check: %s s" % spread([x["seconds"] for x in check]))
    return out


def step_intervals(rounds):
    every = 300
    d = H.Daemon(["--workers", "1", "--metrics_flush_ms", "1000"]).start()
    c = d.client()
    j = c.submit(dict(H.SMALL, steps=100000, checkpoint_every=every, keep_last=3, keep_best=0))
    c.wait_step(j["id"], 3 * every + 20, timeout=900)
    windows = []
    for i in range(rounds):
        time.sleep(4)
        kind = ("cli", "route")[i % 2]
        t = time.time()
        if kind == "cli":
            path = os.path.join(d.workdir, "w.db")
            dimd("backup", "--state_dir", d.state_dir, "--out", path, "--json")
            os.unlink(path)
        else:
            H.expect(c.request("POST", "/v1/backup"), 200)
        windows.append((t * 1000, time.time() * 1000, kind))
    time.sleep(4)
    H.expect(c.post("/v1/jobs/%d/cancel" % j["id"]), 200)
    hist = c.full_history(j["id"], "loss_total")
    db_bytes = os.path.getsize(os.path.join(d.state_dir, "dimd.db"))
    d.stop()
    iv = [(hist[i][0], hist[i][2], hist[i][2] - hist[i - 1][2]) for i in range(1, len(hist))]
    t0 = windows[0][0] - 4000
    at_ckpt = lambda s: s % every <= 1
    base = [x for s, w, x in iv if w >= t0 and not at_ckpt(s) and
            not any(a - 500 <= w <= b + 3000 for a, b, k in windows)]
    ckpt = [x for s, w, x in iv if w >= t0 and at_ckpt(s)]
    per = []
    for a, b, k in windows:
        v = [(x, s) for s, w, x in iv if a <= w <= b + 3000]
        worst = max(v) if v else (None, None)
        per.append({"kind": k, "ms": round(b - a), "steps": len(v), "slowest_step_ms": worst[0],
                    "at_checkpoint": worst[1] is not None and at_ckpt(worst[1])})
        print("%-5s backup %5d ms: slowest step in it and the 3 s after %s ms%s" % (
            k, b - a, worst[0], " (a checkpoint step)" if per[-1]["at_checkpoint"] else ""))
    print("away from backups and checkpoints: %d steps, median %.0f ms, max %d ms" % (
        len(base), statistics.median(base), max(base)))
    print("checkpoint steps: %s ms" % ckpt)
    return {"db_bytes": db_bytes, "baseline_ms": {"n": len(base), "median": statistics.median(base),
                                                  "max": max(base)},
            "checkpoint_steps_ms": ckpt, "backups": per}


def main():
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    H.set_binary(sys.argv[1])
    try:
        out = {"trained": trained_state(int(arg("--steps", "300"))),
               "during_training": step_intervals(int(arg("--rounds", "12")))}
    finally:
        H.cleanup_all()
    path = arg("--json", None)
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
