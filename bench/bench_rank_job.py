#!/usr/bin/python3
"""bench_rank_job.py - the cost of the daemon's data-parallel path: a 2-rank job of
`dimd serve` (mpirun starts `dimd rank`, rank 0 streams every step's losses and the
checkpoints to the worker over a socket, the worker stores them) against
`mpirun -np 2 dimd train` with the same model, batch, steps and threads.

Runs, interleaved (ROUNDS times each, for a fair share of a noisy shared machine):
  - `mpirun -np 2 --oversubscribe --bind-to none dimd train --steps N --probe none
    --threads 1 --json` (the launch the worker uses; images/s over the whole loop);
  - a job {"ranks": 2, "steps": N, "checkpoint_every": C, "probe": "none"} on a daemon
    with one worker of 2 threads (so 1 thread a rank): images/s from the wall times at
    which the worker stored steps 1 and N (every step's STEP message, and the
    checkpoints' transfers and stores, included), and the ranks' own step seconds
    (the images_per_second metric: dim_trainer_step only).
with the default model unless --args (JSON object of job keys, also given to the CLI as
flags) says otherwise. Reports the medians, the per-step wall time the path adds over the
ranks' step time, the bytes streamed per step (header + struct) and per checkpoint (header
+ step + the checkpoint), and the load average before and after each run.

usage: bench/bench_rank_job.py BUILD/dimd [--steps N] [--every C] [--rounds R] [--args JSON]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
HEADER = 16       # util/rankwire.h: type, 0, length
STEP_STRUCT = 64  # struct rankwire_step


def load():
    return os.getloadavg()[0]


def cli_run(dimd, steps, extra):
    flags = []
    for k, v in extra.items():
        flags += ["--" + k, str(v)]
    cmd = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", dimd, "train",
           "--steps", str(steps), "--probe", "none", "--threads", "1", "--json"] + flags
    env = dict(os.environ, **MPI_ENV)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode != 0:
        sys.exit("bench_rank_job: %s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                         p.stderr[-400:]))
    j = json.loads(p.stdout.strip().splitlines()[-1])
    return {"images_per_second": j["images_per_second"], "train_seconds": j["train_seconds"]}


class Daemon:
    def __init__(self, dimd):
        self.dir = tempfile.mkdtemp(prefix="bench-rank-")
        self.out = open(os.path.join(self.dir, "stdout"), "wb")
        self.proc = subprocess.Popen(
            [dimd, "serve", "--port", "0", "--state_dir", os.path.join(self.dir, "s"),
             "--workers", "1", "--threads_per_worker", "2", "--max_ranks", "2",
             "--metrics_flush_ms", "1000"],
            stdout=self.out, stderr=subprocess.DEVNULL, env=dict(os.environ, **MPI_ENV))
        for _ in range(300):
            text = open(os.path.join(self.dir, "stdout")).read()
            if "token file" in text:
                break
            time.sleep(0.05)
        self.url = text.split("listening on ")[1].split()[0].rstrip("/")
        self.token = open(os.path.join(self.dir, "s", "token")).read().strip()

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def job_run(d, steps, every, extra):
    spec = dict(extra, steps=steps, checkpoint_every=every, probe="none", ranks=2)
    jid = d.call("POST", "/v1/jobs", spec)["id"]
    while True:
        j = d.call("GET", "/v1/jobs/%d" % jid)
        if j["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.2)
    if j["state"] != "SUCCEEDED":
        sys.exit("bench_rank_job: job %d %s: %s" % (jid, j["state"], j["error"]))
    pts = d.call("GET", "/v1/jobs/%d/metrics/loss_total?limit=100000" % jid)["points"]
    ips = d.call("GET", "/v1/jobs/%d/metrics/images_per_second?limit=100000" % jid)["points"]
    cps = d.call("GET", "/v1/jobs/%d/checkpoints" % jid)["checkpoints"]
    batch = j["spec"]["batch"]
    wall = (pts[-1][2] - pts[0][2]) / 1000.0  # step 1 stored .. step N stored
    # the ranks' own step time: the images_per_second points are flush windows of
    # steps (dim_trainer_step only); their harmonic mean over the run
    rank_ips = statistics.harmonic_mean([p[1] for p in ips]) if ips else 0.0
    return {"job": jid, "images_per_second": (len(pts) - 1) * batch / wall,
            "ranks_step_images_per_second": rank_ips, "wall_seconds_steps_2_to_N": wall,
            "checkpoint_bytes": [c["bytes"] for c in cps], "batch": batch}


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    dimd = os.path.abspath(argv[0])
    opts = {"--steps": "40", "--every": "20", "--rounds": "2", "--args": "{}"}
    i = 1
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            sys.exit(__doc__)
        opts[argv[i]] = argv[i + 1]
        i += 2
    steps, every, rounds = int(opts["--steps"]), int(opts["--every"]), int(opts["--rounds"])
    extra = json.loads(opts["--args"])
    d = Daemon(dimd)
    cli, dmn = [], []
    try:
        for r in range(rounds):
            l0 = load()
            c = cli_run(dimd, steps, extra)
            c["load"] = [l0, load()]
            cli.append(c)
            print("round %d cli    %.1f img/s  load %.2f -> %.2f" % (
                r + 1, c["images_per_second"], *c["load"]), flush=True)
            l0 = load()
            j = job_run(d, steps, every, extra)
            j["load"] = [l0, load()]
            dmn.append(j)
            print("round %d daemon %.1f img/s (ranks' steps alone %.1f)  load %.2f -> %.2f" % (
                r + 1, j["images_per_second"], j["ranks_step_images_per_second"], *j["load"]),
                flush=True)
    finally:
        d.stop()
    mc = statistics.median(c["images_per_second"] for c in cli)
    md = statistics.median(j["images_per_second"] for j in dmn)
    mr = statistics.median(j["ranks_step_images_per_second"] for j in dmn)
    batch = dmn[0]["batch"]
    ck = dmn[0]["checkpoint_bytes"]
    out = {"steps": steps, "checkpoint_every": every, "rounds": rounds, "args": extra,
           "cli_images_per_second_median": mc, "daemon_images_per_second_median": md,
           "ratio_daemon_to_cli": md / mc,
           "daemon_wall_ms_per_step": 1000.0 * batch / md,
           "ranks_step_ms": 1000.0 * batch / mr if mr else None,
           "path_ms_per_step": 1000.0 * batch / md - (1000.0 * batch / mr if mr else 0),
           "bytes_per_step": HEADER + STEP_STRUCT,
           "bytes_per_checkpoint": [HEADER + 8 + b for b in ck],
           "cli": cli, "daemon": dmn}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
