"""One probe, one number: the converged linear probe of a training job's
checkpoint (its probe_* metrics), an evaluation job on the version promoted
from that checkpoint, and `dimd measure` on the downloaded checkpoint fit the
same training images (an evenly spaced subset of the same size) and report the
same accuracies, pixel baseline included. Same thread count on both sides (one
compute thread): across thread counts the encoder's float32 products round
differently and a test image or two in 10,000 can flip."""

import json
import os
import subprocess
import tempfile

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
JOB = None
IMAGES = 600  # training images every probe fits on
ROWS = ("conv", "fc", "y", "pixels")


def setup_module():
    global D, W, JOB
    D = H.Daemon(["--workers", "1", "--threads_per_worker", "1", "--index_max_images", "20"]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, name="agree", steps=30, checkpoint_every=30, probe="linear",
                      probe_images=IMAGES))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=300)


def job_probe():
    cps = expect(W.get("/v1/jobs/%d/checkpoints" % JOB["id"]), 200).json["checkpoints"]
    eq([c["step"] for c in cps], [30], "checkpoint steps")
    m = cps[0]["metrics"]
    for r in ROWS:
        check(0.0 <= m["probe_" + r] <= 1.0, "probe_%s = %r" % (r, m.get("probe_" + r)))
    return {r: m["probe_" + r] for r in ROWS}


def test_job_writes_the_pixel_baseline():
    got = job_probe()
    hist = W.full_history(JOB["id"], "probe_pixels")
    eq([p[1] for p in hist], [got["pixels"]], "probe_pixels points")


def test_evaluation_job_reports_the_job_probe():
    want = job_probe()
    W.promote("agree", JOB["id"], checkpoint=30)
    j = W.submit({"kind": "evaluate", "model": "agree", "version": "v1", "measures": ["linear"],
                  "max_train": IMAGES})
    done = W.wait_state(j["id"], "SUCCEEDED", timeout=300)
    for r in ROWS:
        eq(done["latest"]["eval_linear_" + r], want[r], "eval_linear_%s vs probe_%s" % (r, r))
    ev = expect(W.get("/v1/models/agree/versions/v1/evaluations"), 200).json["evaluations"]
    fit = ev[-1]["results"]["linear"]["fit"]
    for r in ROWS:
        eq(fit[r]["stop"], "converged", "%s solve" % r)
        check(fit[r]["gnorm"] <= 1e-4, "%s gradient norm %r" % (r, fit[r]["gnorm"]))


def test_measure_cli_reports_the_job_probe():
    want = job_probe()
    body = expect(W.get("/v1/jobs/%d/checkpoints/30" % JOB["id"]), 200).body
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "agree.ckpt")
        with open(path, "wb") as f:
            f.write(body)
        p = subprocess.run([H.DIMD, "measure", "--checkpoint", path, "--measures", "linear",
                            "--max_train", str(IMAGES), "--threads", "1", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300 * H.SCALE)
    check(p.returncode == 0, "dimd measure exited %d: %s" % (p.returncode, H.short(p.stderr)))
    out = json.loads(p.stdout.decode().splitlines()[-1])
    lin = out["trained"]["linear"]
    for r in ROWS:
        eq(lin[r], want[r], "dimd measure linear %s vs the job's probe_%s" % (r, r))
