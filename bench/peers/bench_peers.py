#!/usr/bin/python3
"""bench_peers.py - dimd side by side with PyTorch on this machine (`make bench-peers`).

One run, one machine state: dimd's side is build/bench/peers/dimd_side (a subprocess
holding the product's configuration, driven a command at a time) and PyTorch's is this
process (bench/peers/dim_torch.py, the same networks, losses and optimisers). In
rounds, each side in turn (the order flips every round), it times:
  - training: K steps of the default job (batch 64, D 512, DIM(L) JSD + prior), 2 threads
    each (torch.set_num_threads, dimd's compute pool of 2 with BLAS on one thread);
  - the encoder's batched forward pass at batch 64 and 256, inference (dimd's
    dim_model_encode; PyTorch in eval mode under no_grad, in whichever form was fastest
    at that batch in a calibration before the rounds: eager NCHW, eager channels-last,
    or TorchScript traced and frozen with optimize_for_inference);
  - one image's forward pass (p50 of 200).
Every figure is the median over rounds of that round's value, and each ratio the
median of the per-round ratios (dimd / PyTorch: above 1 means dimd is faster).
Then the served path, in rounds: bench_encode (the daemon with its default encode
settings, 64 HTTP clients posting PNGs, one load round) against PyTorch's best batched
forward at batch 256 timed right after it: the median ratio of served images/s to
PyTorch's forward images/s, and the daemon's single-image p50 over HTTP.
Before timing it checks the match: parameter counts equal (encoder, encoder + MI nets,
prior discriminator) or it exits 1; FLOPs per training step and per forward image
counted on both sides and printed.

usage: bench_peers.py [--build DIR] [--json PATH] [--rounds N] [--steps K]
                      [--http_rounds N] [--threads N]
"""
import argparse
import copy
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# PyTorch's CPU threads are OpenMP's (libgomp), whose default wait policy spins at every
# barrier: on this shared 2-core machine that cost PyTorch about 5x in training (25
# against 123 images/s at load average 7.7, one measurement). PyTorch is measured at its
# best, so the policy is PASSIVE unless the caller chose one. Read when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dim_torch  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def load_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    t = torch.frombuffer(bytearray(raw[16:16 + n * h * w]), dtype=torch.uint8)
    return t.view(n, 1, h, w)


class DimdSide:
    def __init__(self, exe, threads):
        self.p = subprocess.Popen([exe, "--threads", str(threads)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            sys.exit("bench_peers: dimd_side stopped (exit %s)" % self.p.wait())
        return json.loads(line)

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        if self.p.wait() != 0:
            sys.exit("bench_peers: dimd_side exited with %d" % self.p.returncode)


def torch_variants(enc):
    """Inference forms of a copy of the encoder (eval mode, no grad): name -> (fn(x) -> Y,
    the input's memory format)."""
    plain = dim_torch.YOnly(copy.deepcopy(enc)).eval()
    out = {"eager": (plain, torch.contiguous_format)}
    cl = dim_torch.YOnly(copy.deepcopy(enc)).eval().to(memory_format=torch.channels_last)
    out["eager-channels-last"] = (cl, torch.channels_last)
    with torch.no_grad():
        ex = torch.zeros(64, 1, 32, 32)
        tr = torch.jit.freeze(torch.jit.trace(plain, ex).eval())
        out["jit-frozen"] = (tr, torch.contiguous_format)
        try:
            opt = torch.jit.optimize_for_inference(torch.jit.trace(plain, ex).eval())
            out["jit-optimize-for-inference"] = (opt, torch.contiguous_format)
        except Exception as e:  # not every build has every pass; say so and go on
            print("  (torch.jit.optimize_for_inference unavailable: %s)" % e)
    return out


def torch_forward(fn, x, n):
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(n):
            y = fn(x)
        dt = time.perf_counter() - t0
    if not torch.isfinite(y).all():
        sys.exit("bench_peers: PyTorch forward gave a non-finite output")
    return dt


def torch_single(fn, xs, n):
    lat = []
    with torch.no_grad():
        for i in range(n):
            x = xs[i % xs.shape[0]:i % xs.shape[0] + 1]
            t0 = time.perf_counter()
            fn(x)
            lat.append(time.perf_counter() - t0)
    return statistics.median(lat)


def passes_for(seconds_per_pass, target, least=3):
    return max(least, int(target / max(seconds_per_pass, 1e-6) + 0.5))


def med(v):
    return statistics.median(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6, help="training steps per side per round")
    ap.add_argument("--http_rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="target seconds of each batched-forward measure")
    a = ap.parse_args()
    if a.rounds < 1 or a.steps < 1 or a.http_rounds < 0 or a.threads < 1:
        sys.exit("bench_peers: --rounds, --steps, --threads >= 1, --http_rounds >= 0")
    load0 = os.getloadavg()
    torch.set_num_threads(a.threads)
    dimd = DimdSide(os.path.join(a.build, "bench", "peers", "dimd_side"), a.threads)
    info = dimd.info

    images = load_images(FMNIST)
    tr = dim_torch.Trainer(images, batch=info["batch"], D=info["mi_dim"])
    counts = {
        "encoder": (info["encoder_params"], dim_torch.count_params(tr.model.enc)),
        "encoder_and_mi_nets": (info["main_params"], dim_torch.count_params(tr.model)),
        "prior_discriminator": (info["prior_params"], dim_torch.count_params(tr.prior)),
    }
    flops_step = (info["step_flops"], dim_torch.step_flops(tr))
    flops_fwd = (info["forward_flops_per_image"], dim_torch.forward_flops(tr.model.enc))
    print("bench-peers: dimd against PyTorch %s (Debian python3-torch, OMP_WAIT_POLICY %s), "
          "%d threads each, load average %.2f %.2f %.2f" % (
              (torch.__version__, os.environ["OMP_WAIT_POLICY"], a.threads) + load0))
    print("  the match (dimd / PyTorch):")
    for k, (d, p) in counts.items():
        print("    parameters, %-22s %10d / %10d  %s" % (k, d, p, "equal" if d == p else "DIFFER"))
    print("    GFLOP per training step       %10.3f / %10.3f  (matrix products, fwd + bwd)"
          % (flops_step[0] / 1e9, flops_step[1] / 1e9))
    print("    MFLOP per forward image       %10.2f / %10.2f"
          % (flops_fwd[0] / 1e6, flops_fwd[1] / 1e6))
    if any(d != p for d, p in counts.values()):
        sys.exit("bench_peers: parameter counts differ: the peer is not the same model")
    B = info["batch"]

    # inputs of the forward passes: the same real images on both sides
    xs = {64: dim_torch.to_input(images[:64]), 256: dim_torch.to_input(images[:256])}
    single_x = dim_torch.to_input(images[:200])

    # calibration: PyTorch's best inference form per batch size. Each form is timed in 3
    # turns interleaved with the others; its figure is its best turn (the least
    # interference from the machine's other work), and the fastest form is kept.
    variants = torch_variants(tr.model.enc)
    best, calib = {}, {}
    for bs in (64, 256):
        for fn, fmt in variants.values():  # warm-up (and the JIT's profiling runs)
            torch_forward(fn, xs[bs].contiguous(memory_format=fmt), 3)
        rate = {k: 0.0 for k in variants}
        for _ in range(3):
            for name, (fn, fmt) in variants.items():
                rate[name] = max(rate[name],
                                 bs * 3 / torch_forward(fn, xs[bs].contiguous(memory_format=fmt), 3))
        best[bs] = max(rate, key=rate.get)
        calib[bs] = {k: round(v, 1) for k, v in rate.items()}
        print("  PyTorch forward at batch %d, images/s by form (best of 3 turns): %s -> %s" % (
            bs, ", ".join("%s %.0f" % kv for kv in rate.items()), best[bs]))
    stimes = {k: 1e9 for k in variants}
    for _ in range(3):
        for name, (fn, fmt) in variants.items():
            stimes[name] = min(stimes[name], torch_single(fn, single_x, 30))
    best[1] = min(stimes, key=stimes.get)
    print("  PyTorch one image, p50 ms by form (best of 3 turns): %s -> %s" % (
        ", ".join("%s %.3f" % (k, 1e3 * v) for k, v in stimes.items()), best[1]))

    def dimd_fwd(bs, n):
        r = dimd.cmd("forward %d %d" % (bs, n))
        if not r["finite"]:
            sys.exit("bench_peers: dimd forward gave a non-finite output")
        return r["seconds"]

    def torch_fwd(bs, n):
        fn, fmt = variants[best[bs]]
        return torch_forward(fn, xs[bs].contiguous(memory_format=fmt), n)

    def torch_train(k):
        t0 = time.perf_counter()
        for _ in range(k):
            loss = tr.step()
        if loss != loss:
            sys.exit("bench_peers: PyTorch training loss is NaN")
        return time.perf_counter() - t0

    def torch_lat(k, at):
        fn, _ = variants[best[1]]
        out = []
        with torch.no_grad():
            for i in range(at, at + k):
                x = single_x[i % 200:i % 200 + 1]
                t0 = time.perf_counter()
                fn(x)
                out.append(time.perf_counter() - t0)
        return out

    # Work units, each side in turn: (name, images per unit, dimd's unit, PyTorch's unit).
    # A forward unit is as many passes as take about --seconds / CHUNKS.
    CHUNKS = 6
    npass = {}
    for bs in (64, 256):
        npass[("dimd", bs)] = passes_for(dimd_fwd(bs, 2) / 2, a.seconds / CHUNKS, 1)
        npass[("torch", bs)] = passes_for(torch_fwd(bs, 2) / 2, a.seconds / CHUNKS, 1)
    units = {
        "train": (a.steps, lambda: (B, dimd.cmd("train 1")["seconds"]),
                  lambda: (B, torch_train(1))),
        "fwd64": (CHUNKS, lambda: (64 * npass[("dimd", 64)], dimd_fwd(64, npass[("dimd", 64)])),
                  lambda: (64 * npass[("torch", 64)], torch_fwd(64, npass[("torch", 64)]))),
        "fwd256": (CHUNKS,
                   lambda: (256 * npass[("dimd", 256)], dimd_fwd(256, npass[("dimd", 256)])),
                   lambda: (256 * npass[("torch", 256)], torch_fwd(256, npass[("torch", 256)]))),
    }
    work = ["train", "fwd64", "fwd256", "single"]
    R = {w: {"dimd": [], "torch": []} for w in work}
    print("  %d rounds (+1 warm-up); in each, each side in turn (order flipping): %d training "
          "steps one at a time, %d units of batched forwards at 64 and at 256 (about %.1f s "
          "per side), 10 x 20 one-image forwards" % (a.rounds, a.steps, CHUNKS, a.seconds))
    for r in range(a.rounds + 1):
        got = {}
        for w in work:
            if w == "single":
                lat = {"dimd": [], "torch": []}
                for c in range(10):
                    for s in (("dimd", "torch") if (r + c) % 2 else ("torch", "dimd")):
                        lat[s] += (dimd.cmd("single 20")["seconds"] if s == "dimd"
                                   else torch_lat(20, 20 * c))
                for s in lat:
                    got[(w, s)] = 1e3 * statistics.median(lat[s])
                continue
            n, du, tu = units[w]
            tot = {"dimd": [0, 0.0], "torch": [0, 0.0]}
            for c in range(n):
                for s in (("dimd", "torch") if (r + c) % 2 else ("torch", "dimd")):
                    imgs, sec = du() if s == "dimd" else tu()
                    tot[s][0] += imgs
                    tot[s][1] += sec
            for s in tot:
                got[(w, s)] = tot[s][0] / tot[s][1]
        if r == 0:
            continue
        for (w, s), v in got.items():
            R[w][s].append(v)
        print("    round %d: train %.0f / %.0f images/s, forward 64 %.0f / %.0f, 256 %.0f / "
              "%.0f, one image %.3f / %.3f ms (dimd / PyTorch; load %.2f)" % (
                  r, got[("train", "dimd")], got[("train", "torch")], got[("fwd64", "dimd")],
                  got[("fwd64", "torch")], got[("fwd256", "dimd")], got[("fwd256", "torch")],
                  got[("single", "dimd")], got[("single", "torch")], os.getloadavg()[0]))
    dimd.close()

    res = {}
    for w in work:
        d, p = R[w]["dimd"], R[w]["torch"]
        # ratio: dimd's speed over PyTorch's (latency: PyTorch's time over dimd's); best:
        # each side's best round (the least interference it saw), ratio of the two
        lat = w == "single"
        ratios = [y / x for x, y in zip(d, p)] if lat else [x / y for x, y in zip(d, p)]
        bd, bp = (min(d), min(p)) if lat else (max(d), max(p))
        res[w] = {"dimd": med(d), "pytorch": med(p), "ratio": med(ratios),
                  "ratio_min": min(ratios), "ratio_max": max(ratios),
                  "dimd_best": bd, "pytorch_best": bp, "best_ratio": bp / bd if lat else bd / bp,
                  "dimd_rounds": [round(v, 3) for v in d],
                  "pytorch_rounds": [round(v, 3) for v in p]}

    # The served path: bench_encode (the daemon, one load round of 64 clients) between
    # two measures of PyTorch's batch-256 forward; each round's ratio is the served
    # images/s over the mean of the two around it, as bench_encode does with its limits.
    http = []
    enc_exe = os.path.join(a.build, "bench", "bench_encode")
    dimd_exe = os.path.join(a.build, "dimd")
    n256 = passes_for(256 / res["fwd256"]["pytorch"], 2.0)
    if a.http_rounds:
        torch_fwd(256, 1)  # warm again after the rounds' other work
    pt_prev = 256 * n256 / torch_fwd(256, n256) if a.http_rounds else 0
    for r in range(a.http_rounds):
        with tempfile.NamedTemporaryFile(suffix=".json") as jf:
            p = subprocess.run([enc_exe, dimd_exe, "--clients", "64", "--rounds", "1",
                                "--seconds", "3", "--requests", "100", "--json", jf.name],
                               stdout=subprocess.PIPE, text=True)
            if p.returncode != 0:
                sys.stdout.write(p.stdout)
                sys.exit("bench_peers: bench_encode failed (%d)" % p.returncode)
            with open(jf.name) as f:
                e = json.load(f)
        served = e["rounds"][0]["throughput_images_per_second"]
        pt_next = 256 * n256 / torch_fwd(256, n256)
        pt = 0.5 * (pt_prev + pt_next)
        http.append({"served": served, "pytorch_256_before": pt_prev,
                     "pytorch_256_after": pt_next, "ratio": served / pt,
                     "http_p50_ms": e["http_p50_ms"], "daemon_batch": e["batch"],
                     "mean_images_per_forward": e["rounds"][0]["mean_images_per_forward"],
                     "load": os.getloadavg()[0]})
        print("    served round %d: dimd over HTTP, 64 clients, %.0f images/s (%.1f per pass); "
              "PyTorch forward at 256 %.0f / %.0f images/s before / after: %.2f; HTTP one "
              "image p50 %.3f ms (load %.2f)" % (
                  r + 1, served, http[-1]["mean_images_per_forward"], pt_prev, pt_next,
                  served / pt, e["http_p50_ms"], http[-1]["load"]))
        pt_prev = pt_next
    if http:
        res["http"] = {"dimd_served": med([h["served"] for h in http]),
                       "pytorch_forward_256": med([0.5 * (h["pytorch_256_before"] +
                                                          h["pytorch_256_after"]) for h in http]),
                       "ratio": med([h["ratio"] for h in http]),
                       "http_p50_ms": med([h["http_p50_ms"] for h in http]),
                       "daemon_encode_batch_max": http[0]["daemon_batch"], "rounds": http}
    load1 = os.getloadavg()

    print("  medians of %d rounds; ratio: median of the per-round ratios dimd / PyTorch (> 1: "
          "dimd faster) and their range; best: each side's best round, their ratio" % a.rounds)
    print("    %-30s %9s %9s %7s %13s %9s %9s %7s" % ("", "dimd", "PyTorch", "ratio", "(range)",
                                                   "best", "best", "ratio"))
    rows = [("training, images/s", "train", "%9.1f"), ("forward batch 64, images/s", "fwd64",
            "%9.1f"), ("forward batch 256, images/s", "fwd256", "%9.1f"),
            ("one image, p50 ms", "single", "%9.3f")]
    for label, w, f in rows:
        x = res[w]
        print(("    %-30s " + f + " " + f + " %6.2fx %5.2f..%-6.2f " + f + " " + f + " %6.2fx") % (
            label, x["dimd"], x["pytorch"], x["ratio"], x["ratio_min"], x["ratio_max"],
            x["dimd_best"], x["pytorch_best"], x["best_ratio"]))
    if http:
        h = res["http"]
        print("    %-30s %9.1f %9.1f %6.2fx  (served / PyTorch's forward at 256 around it; "
              "the daemon batches up to %d)" % ("served over HTTP, 64 clients", h["dimd_served"],
                                                 h["pytorch_forward_256"], h["ratio"],
                                                 h["daemon_encode_batch_max"]))
        print("    %-30s %9.3f" % ("one image over HTTP, p50 ms", h["http_p50_ms"]))
    print("  PyTorch's forms: batch 64 %s, 256 %s, one image %s; load average %.2f %.2f %.2f "
          "after" % ((best[64], best[256], best[1]) + load1))
    if a.json:
        out = {"pytorch_version": torch.__version__,
               "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "threads": a.threads, "batch": B,
               "mi_dim": info["mi_dim"], "rounds": a.rounds, "steps_per_round": a.steps,
               "load_average_before": list(load0), "load_average_after": list(load1),
               "params": {k: {"dimd": d, "pytorch": p} for k, (d, p) in counts.items()},
               "gflop_per_step": {"dimd": flops_step[0] / 1e9, "pytorch": flops_step[1] / 1e9},
               "mflop_per_forward_image": {"dimd": flops_fwd[0] / 1e6,
                                           "pytorch": flops_fwd[1] / 1e6},
               "pytorch_forms": {"64": best[64], "256": best[256], "1": best[1],
                                 "calibration_images_per_second": calib,
                                 "single_ms": {k: 1e3 * v for k, v in stimes.items()}},
               "train_images_per_second": res["train"],
               "forward_64_images_per_second": res["fwd64"],
               "forward_256_images_per_second": res["fwd256"],
               "single_image_p50_ms": res["single"]}
        if http:
            out["served_http"] = res["http"]
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        print("  written %s" % a.json)


if __name__ == "__main__":
    main()
