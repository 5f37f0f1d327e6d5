#!/usr/bin/python3
"""bench_serve.py - the daemon's training speed against the CLI's, same workload.

Runs, interleaved for a fair share of a noisy machine, ROUNDS times each:
  - `dimd train --steps N --probe none --json` (the CLI; its images/s counts
    training steps only);
  - the same job submitted to `dimd serve` (probe none, one checkpoint at the
    end); its images/s is total images over the sum of its flush windows'
    training time, from the images_per_second metric history.
Also reports the time from submit to RUNNING (started_at - created_at, and as
seen by a client polling the job) and writes everything as JSON.

usage: bench/bench_serve.py BUILD/dimd [--steps N] [--rounds R] [--json PATH]
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class Daemon:
    def __init__(self, dimd, state):
        self.proc = subprocess.Popen([dimd, "serve", "--state_dir", state, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = None
        for line in self.proc.stdout:
            m = re.match(r"dimd: listening on (\S+)", line)
            if m:
                self.url = m.group(1).rstrip("/")
            if line.startswith("dimd: token file"):
                break
        if not self.url:
            raise SystemExit("bench_serve: the daemon did not start")
        with open(os.path.join(state, "token")) as f:
            self.token = f.read().strip()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def run_cli(dimd, steps):
    out = subprocess.run([dimd, "train", "--steps", str(steps), "--probe", "none", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def run_daemon(d, steps):
    t0 = time.time()
    job = d.call("POST", "/v1/jobs", {"steps": steps, "probe": "none",
                                      "checkpoint_every": steps})
    jid = job["id"]
    seen_running = None
    while True:
        job = d.call("GET", f"/v1/jobs/{jid}")
        if seen_running is None and job["state"] != "QUEUED":
            seen_running = time.time() - t0
        if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.02 if seen_running is None else 0.5)
    if job["state"] != "SUCCEEDED":
        raise SystemExit(f"bench_serve: job {jid} ended {job['state']}: {job['error']}")
    hist = d.call("GET", f"/v1/jobs/{jid}/metrics/images_per_second")["points"]
    batch = job["spec"]["batch"]
    prev, seconds = 0, 0.0
    for step, ips, _ in hist:  # each window: (step - prev) steps at ips images/s
        seconds += (step - prev) * batch / ips
        prev = step
    ips = steps * batch / seconds
    start_lag = parse_time(job["started_at"]) - parse_time(job["created_at"])
    return ips, start_lag, seen_running


def main():
    args = sys.argv[1:]
    if not args:
        raise SystemExit(__doc__)
    dimd, steps, rounds, out = args[0], 150, 3, None
    i = 1
    while i < len(args):
        if args[i] == "--steps":
            steps = int(args[i + 1])
        elif args[i] == "--rounds":
            rounds = int(args[i + 1])
        elif args[i] == "--json":
            out = args[i + 1]
        else:
            raise SystemExit(f"bench_serve: unknown argument {args[i]}")
        i += 2
    with tempfile.TemporaryDirectory() as state:
        d = Daemon(dimd, state)
        cli, dae, lag, polled = [], [], [], []
        try:
            for r in range(rounds):
                cli.append(run_cli(dimd, steps))
                ips, start_lag, seen = run_daemon(d, steps)
                dae.append(ips)
                lag.append(start_lag)
                polled.append(seen)
                print(f"round {r + 1}: CLI {cli[-1]:.1f} img/s, daemon {ips:.1f} img/s, "
                      f"ratio {ips / cli[-1]:.3f}; submit->RUNNING {start_lag * 1000:.0f} ms "
                      f"(client saw it after {seen * 1000:.0f} ms)", flush=True)
        finally:
            d.stop()
    ratios = [a / b for a, b in zip(dae, cli)]
    res = {
        "workload": f"dimd train defaults (basic32x32, D=512, batch 64), {steps} steps, "
                    "Fashion-MNIST, probe none",
        "rounds": rounds,
        "cli_images_per_second": cli,
        "daemon_images_per_second": dae,
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(dae) / statistics.median(cli),
        "submit_to_running_ms": [x * 1000 for x in lag],
        "submit_to_running_polled_ms": [x * 1000 for x in polled],
    }
    print(f"daemon/CLI images/s: median ratio {res['ratio_median']:.3f} "
          f"(ratio of medians {res['ratio_of_medians']:.3f}); target >= 0.95")
    print(f"submit -> RUNNING: median {statistics.median(res['submit_to_running_ms']):.1f} ms "
          f"(server clock), {statistics.median(res['submit_to_running_polled_ms']):.0f} ms "
          "seen by a polling client")
    if out:
        with open(out, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
