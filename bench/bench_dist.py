#!/usr/bin/python3
"""bench_dist.py - data-parallel training on this machine: 2 ranks x 1 thread against
1 rank x 2 threads, the same global batch and run.

Runs, interleaved (ROUNDS times each, for a fair share of a noisy shared machine):
  - `dimd train --threads 2 --steps N --probe none --json` (one process);
  - `mpirun -np 2 ... dimd train --threads 1 --steps N --probe none --json` (two ranks on
    loopback, shared memory);
with the default model (basic32x32, batch 64, mi_dim 512, DIM(L) JSD + prior) unless
--args says otherwise. Reports each run's images/s (training steps only), the ratio of the
medians (2 ranks / 1 rank; target >= 0.9), the 2-rank run's time per step inside MPI
calls (waiting for the slower rank included) per kind of collective, the payload bytes
moved per step, and the load average before and after (the machine is shared: another
job on one core slows whichever configuration it lands on). Writes everything as JSON.

usage: bench/bench_dist.py BUILD/dimd [--steps N] [--rounds R] [--args "FLAGS"] [--json PATH]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
MPIRUN = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
          "--mca", "btl", "self,vader", "--mca", "mpi_yield_when_idle", "1"]


def run_json(cmd):
    env = dict(os.environ, **MPI_ENV)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if p.returncode != 0:
        sys.exit("bench_dist: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr[-400:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    dimd, steps, rounds, extra, out = os.path.abspath(argv[0]), 30, 2, [], None
    i = 1
    while i < len(argv):
        if argv[i] == "--steps":
            steps = int(argv[i + 1])
        elif argv[i] == "--rounds":
            rounds = int(argv[i + 1])
        elif argv[i] == "--args":
            extra = argv[i + 1].split()
        elif argv[i] == "--json":
            out = argv[i + 1]
        else:
            sys.exit("bench_dist: unknown argument %s" % argv[i])
        i += 2
    if not shutil.which("mpirun"):
        sys.exit("bench_dist: mpirun is missing (scripts/install-deps.sh installs openmpi-bin)")
    train = [dimd, "train", "--steps", str(steps), "--probe", "none", "--json",
             "--log_every", str(steps)] + extra
    load0 = os.getloadavg()
    one, two = [], []
    for r in range(rounds):
        one.append(run_json(train + ["--threads", "2"]))
        two.append(run_json(MPIRUN + train + ["--threads", "1"]))
        print("round %d: 1 rank x 2 threads %.1f img/s, 2 ranks x 1 thread %.1f img/s "
              "(communication %.1f ms/step)" % (
                  r + 1, one[-1]["images_per_second"], two[-1]["images_per_second"],
                  1e3 * two[-1]["communication"]["seconds_per_step"]), flush=True)
    load1 = os.getloadavg()
    ips1 = statistics.median(j["images_per_second"] for j in one)
    ips2 = statistics.median(j["images_per_second"] for j in two)
    comm = two[len(two) // 2]["communication"]
    step_ms = 1e3 * two[0]["hparams"]["batch"] / ips2
    kinds = ["sum_f32", "sum_f64", "gather", "other"]
    print("model: %s batch %d mi_dim %d, %d steps x %d rounds" % (
        one[0]["hparams"]["preset"], one[0]["hparams"]["batch"], one[0]["hparams"]["mi_dim"],
        steps, rounds))
    print("1 rank x 2 threads: %.1f img/s; 2 ranks x 1 thread: %.1f img/s; ratio %.3f "
          "(target >= 0.9)" % (ips1, ips2, ips2 / ips1))
    print("2 ranks: %.1f ms/step, of which %.1f ms in MPI calls (%.0f %%)" % (
        step_ms, 1e3 * comm["seconds_per_step"], 100 * 1e3 * comm["seconds_per_step"] / step_ms))
    for k in kinds:
        c = comm[k]
        print("  %-8s %5.1f calls  %10.0f bytes  %6.2f ms per step" % (
            k, c["calls_per_step"], c["bytes_per_step"], 1e3 * c["seconds_per_step"]))
    print("load average: %.2f before, %.2f after (1 min; 2 cores)" % (load0[0], load1[0]))
    if out:
        with open(out, "w") as f:
            json.dump({"steps": steps, "rounds": rounds, "args": extra,
                       "one_rank_two_threads": [j["images_per_second"] for j in one],
                       "two_ranks_one_thread": [j["images_per_second"] for j in two],
                       "ratio": ips2 / ips1, "step_ms": step_ms, "communication": comm,
                       "load_before": load0, "load_after": load1}, f, indent=1)


if __name__ == "__main__":
    main()
