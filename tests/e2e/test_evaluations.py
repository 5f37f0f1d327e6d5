"""Evaluation jobs: POST /v1/jobs {"kind": "evaluate"} measures a model version
on a worker (probes, SVM, NDM, MINE, reconstruction); progress as eval_progress,
results as the job's last metric points and stored with the version (GET
.../evaluations, the grid PNG); the linear probe and the SVM solved to
convergence (their fits), every classifier also on the raw pixels; validation
of the body with JSON paths (svm_epochs and svm_seeds are gone); "latest"
resolved at submission; cancel; the results outlive the job."""

import struct
import zlib

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
JOB = None
# a budget that measures every figure in seconds on tiny data (the converged
# linear probe and SVM cost grows with the images and the tap's width: keep
# max_train small)
SMALL_EVAL = {"kind": "evaluate", "model": "ev", "max_train": 200, "max_test": 100,
              "probe_epochs": 2, "ndm_steps": 40, "mine_steps": 40, "recon_epochs": 2,
              "grid_pairs": 4}
ROWS = ("conv", "fc", "y", "pixels")
FIT_STOPS = ("converged", "iteration cap", "no progress")
FIGURES = {"linear": ["linear"], "mlp": ["mlp"], "svm": ["svm"], "ndm": ["ndm", "ndm_sigmoid"],
           "mine": ["mine"], "recon": ["recon_mse", "ssim", "ms_ssim", "ms_ssim_scales"]}


def setup_module():
    global D, W, JOB
    D = H.Daemon(["--workers", "1", "--index_max_images", "20"]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, steps=40, checkpoint_every=20, name="ev-src"))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=120)
    W.promote("ev", JOB["id"])


def png_size(data):
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:8])
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def check_rows(res, m):
    """res[m] holds a test accuracy in [0, 1] for every tap and the pixels."""
    eq(sorted(k for k in res[m] if k != "fit"), sorted(ROWS), "%s rows" % m)
    for t in ROWS:
        v = res[m][t]
        check(isinstance(v, float) and 0.0 <= v <= 1.0, "%s.%s = %r" % (m, t, v))


def check_fits(res, m, converged):
    """res[m].fit: one solve per row; with converged, each stopped on the
    gradient norm (||grad|| <= 1e-4), not on the iteration cap."""
    fit = res[m]["fit"]
    eq(sorted(fit), sorted(ROWS), "%s.fit rows" % m)
    for t in ROWS:
        f = fit[t]
        check(isinstance(f, dict), "%s.fit.%s = %r" % (m, t, f))
        eq(sorted(f), sorted(["lambda", "val_accuracy", "iterations", "path_iterations", "gnorm",
                              "stop", "seconds"]), "%s.fit.%s members" % (m, t))
        check(f["stop"] in FIT_STOPS, "%s.fit.%s.stop %r" % (m, t, f["stop"]))
        check(f["lambda"] > 0 and 0.0 <= f["val_accuracy"] <= 1.0,
              "%s.fit.%s lambda %r, val_accuracy %r" % (m, t, f["lambda"], f["val_accuracy"]))
        check(1 <= f["iterations"] <= f["path_iterations"],
              "%s.fit.%s iterations %r of %r on the path" % (m, t, f["iterations"],
                                                             f["path_iterations"]))
        check(f["gnorm"] >= 0 and f["seconds"] >= 0, "%s.fit.%s %r" % (m, t, f))
        if converged:
            eq(f["stop"], "converged", "%s.fit.%s.stop (gnorm %r)" % (m, t, f["gnorm"]))
            check(f["gnorm"] <= 1e-4, "%s.fit.%s.gnorm %r > 1e-4" % (m, t, f["gnorm"]))


def test_every_measure_end_to_end():
    j = W.submit(dict(SMALL_EVAL, measures="all", name="ev-all"))
    eq(j["spec"]["version"], "v1", "version resolved at submission")
    eq(j["spec"]["measures"], ["linear", "mlp", "svm", "ndm", "mine", "recon"], "measures")
    done = W.wait_state(j["id"], "SUCCEEDED", timeout=300)
    eq((done["step"], done["total_steps"]), (1000, 1000), "progress steps")
    lt = done["latest"]
    eq(lt["eval_progress"], 1.0, "final progress")
    for m in ("linear", "mlp", "svm"):
        for t in ROWS:
            k = "eval_%s_%s" % (m, t)
            check(k in lt and 0.0 <= lt[k] <= 1.0, "%s = %r" % (k, lt.get(k)))
    for k in ("eval_ndm", "eval_mine", "eval_ssim", "eval_recon_mse"):
        check(isinstance(lt[k], float), "%s = %r" % (k, lt[k]))
    prog = W.full_history(j["id"], "eval_progress")
    vals = [p[1] for p in prog]
    check(vals == sorted(vals) and vals[-1] == 1.0, "eval_progress not increasing to 1: %r" % vals)
    r = expect(W.get("/v1/models/ev/versions/v1/evaluations"), 200).json
    mine = [e for e in r["evaluations"] if e["job_id"] == j["id"]]
    eq(len(mine), 1, "evaluations stored by the job")
    res = mine[0]["results"]
    eq((res["n_train"], res["n_test"]), (SMALL_EVAL["max_train"], SMALL_EVAL["max_test"]), "images used")
    eq(res["failed"], [], "failed measures")
    for m, keys in FIGURES.items():
        for k in keys:
            check(k in res, "results lack %s" % k)
    for m in ("linear", "mlp", "svm"):
        check_rows(res, m)
        for t in ROWS:
            eq(res[m][t], lt["eval_%s_%s" % (m, t)], "eval_%s_%s metric and stored result" % (m, t))
    check("fit" not in res["mlp"], "the MLP probe is trained, not solved: %r" % res["mlp"])
    check("mean" not in res["svm"] and "std" not in res["svm"], "svm spread: %r" % res["svm"])
    check_fits(res, "linear", converged=True)
    check_fits(res, "svm", converged=False)
    eq(res["mine"], lt["eval_mine"], "eval_mine metric and stored result")
    check(-1.0 <= res["ssim"] <= 1.0, "ssim %r" % res["ssim"])
    check(all(res["seconds"][m] >= 0 for m in FIGURES), "seconds %r" % res["seconds"])
    grid = expect(W.get(mine[0]["links"]["grid"]), 200)
    eq(grid.header("Content-Type"), "image/png", "grid type")
    w, h = png_size(grid.body)
    check(w >= 4 * 28 and h >= 2 * 28, "grid of 4 pairs is %dx%d" % (w, h))


def test_subset_latest_and_no_grid():
    W.promote("ev", JOB["id"], checkpoint=20)  # v2
    j = W.submit(dict(SMALL_EVAL, measures=["ndm", "linear"], version="latest"))
    eq(j["spec"]["version"], "v2", "latest at submission")
    eq(j["spec"]["measures"], ["linear", "ndm"], "measures in their order")
    done = W.wait_state(j["id"], "SUCCEEDED", timeout=300)
    eq(sorted(done["latest"]), sorted(["eval_progress", "eval_linear_conv", "eval_linear_fc",
                                       "eval_linear_y", "eval_linear_pixels", "eval_ndm",
                                       "eval_ndm_sigmoid"]),
       "metric keys of a linear+ndm evaluation")
    ev = expect(W.get("/v1/models/ev/versions/v2/evaluations"), 200).json["evaluations"]
    eq(len(ev), 1, "v2's evaluations")
    check_rows(ev[0]["results"], "linear")
    check_fits(ev[0]["results"], "linear", converged=True)
    check("mlp" not in ev[0]["results"] and "svm" not in ev[0]["results"],
          "classifiers that did not run: %r" % ev[0]["results"])
    # the pixel row does not depend on the encoder: v1's (the same images,
    # seed and solver) is the same number
    v1 = expect(W.get("/v1/models/ev/versions/v1/evaluations"), 200).json["evaluations"]
    check(v1 and "linear" in v1[0]["results"], "no linear probe of v1 to compare with")
    eq(ev[0]["results"]["linear"]["pixels"], v1[0]["results"]["linear"]["pixels"],
       "linear probe on the pixels, v2 vs v1")
    eq(ev[0]["results"]["linear"]["fit"]["pixels"]["lambda"],
       v1[0]["results"]["linear"]["fit"]["pixels"]["lambda"], "pixel probe's lambda, v2 vs v1")
    eq(ev[0]["links"]["grid"], None, "no grid without recon")
    check("mine" not in ev[0]["results"] and "ssim" not in ev[0]["results"],
          "figures of measures that did not run: %r" % ev[0]["results"])
    expect(W.get("/v1/models/ev/versions/v2/evaluations/%d/grid" % ev[0]["id"]), 404,
           "evaluation_not_found")
    expect(W.get("/v1/models/ev/versions/v2/evaluations/999/grid"), 404, "evaluation_not_found")
    expect(W.get("/v1/models/ev/versions/v2/evaluations/x/grid"), 404, "evaluation_not_found")
    expect(W.get("/v1/models/ev/versions/v9/evaluations"), 404, "version_not_found")
    # a metric an evaluation does not write
    expect(W.get("/v1/jobs/%d/metrics/eval_mine" % j["id"]), 404, "metric_not_found")
    expect(W.get("/v1/jobs/%d/metrics/loss_total" % j["id"]), 404, "metric_not_found")


def test_job_list_filters_by_kind_model_and_version():
    every = expect(W.get("/v1/jobs?limit=500"), 200).json["jobs"]
    kinds = {j["id"]: j["spec"].get("kind", "train") for j in every}
    check("train" in kinds.values() and "evaluate" in kinds.values(), "kinds: %r" % kinds)
    for kind in ("train", "evaluate"):
        got = [j["id"] for j in expect(W.get("/v1/jobs?limit=500&kind=" + kind), 200).json["jobs"]]
        eq(got, [i for i in sorted(kinds, reverse=True) if kinds[i] == kind], "kind=" + kind)
    v2 = [j["id"] for j in every if j["spec"].get("version") == "v2"]
    check(v2, "no evaluation of v2 to find")
    for q in ("kind=evaluate&model=ev&version=v2", "model=ev&version=2"):
        got = [j["id"] for j in expect(W.get("/v1/jobs?" + q), 200).json["jobs"]]
        eq(got, v2, q)
    got = expect(W.get("/v1/jobs?model=ev&state=SUCCEEDED&limit=1"), 200).json
    eq(len(got["jobs"]), 1, "one page of ev's finished evaluations")
    check(got["next_cursor"] is not None, "more of ev's evaluations after the first")
    eq(expect(W.get("/v1/jobs?model=nope"), 200).json["jobs"], [], "a model without evaluations")
    eq(expect(W.get("/v1/jobs?kind=train&model=ev"), 200).json["jobs"], [], "training jobs of a model")
    for q in ("kind=bogus", "kind=", "model=Bad%20Name", "version=v2", "model=ev&version=x",
              "model=ev&version=0", "model=ev&version=latest"):
        r = expect(W.get("/v1/jobs?" + q), 400, "invalid_parameter")
        check(q.split("=")[-2].split("&")[-1] in r.json["detail"], "%s: %s" % (q, r.json["detail"]))


def test_bad_evaluation_bodies():
    cases = [
        ({"kind": "evaluate"}, ["$.model"]),
        ({"kind": "evaluate", "model": "nope"}, ["$.model"]),
        ({"kind": "evaluate", "model": "ev", "version": "v99"}, ["$.version"]),
        ({"kind": "evaluate", "model": "ev", "version": "first"}, ["$.version"]),
        ({"kind": "evaluate", "model": "ev", "measures": ["linear", "knn"]}, ["$.measures[1]"]),
        ({"kind": "evaluate", "model": "ev", "measures": []}, ["$.measures"]),
        ({"kind": "evaluate", "model": "ev", "measures": "svm,,ndm"}, ["$.measures"]),
        ({"kind": "evaluate", "model": "ev", "lr": 0.1, "probe_epochs": 0},
         ["$.lr", "$.probe_epochs"]),
        # the SVM is solved to convergence: no epochs, no seeds to average over
        ({"kind": "evaluate", "model": "ev", "svm_seeds": 2}, ["$.svm_seeds"]),
        ({"kind": "evaluate", "model": "ev", "svm_epochs": 5, "svm_seeds": 3},
         ["$.svm_epochs", "$.svm_seeds"]),
        ({"kind": "evaluate", "model": "Bad Name", "max_train": "10"}, ["$.model", "$.max_train"]),
        ({"kind": "evaluate", "model": "ev", "grid_pairs": 65}, ["$.grid_pairs"]),
        ({"kind": "serve"}, ["$.kind"]),
        ({"kind": 3, "steps": 10}, ["$.kind"]),
    ]
    for body, paths in cases:
        r = expect(W.post("/v1/jobs", body), 422, "validation_failed")
        got = sorted(e["path"] for e in r.json["errors"])
        eq(got, sorted(paths), "error paths for %r" % body)
        for e in r.json["errors"]:
            check(e["message"], "empty message for %r" % body)
            if e["path"] in ("$.svm_seeds", "$.svm_epochs", "$.lr"):
                check("unknown field" in e["message"], "%s: %r" % (e["path"], e["message"]))
    # a training body may say kind train
    j = W.submit(dict(H.SMALL, kind="train", steps=5, name="kind-train"))
    eq(j["spec"]["kind"], "train", "a training job's kind")
    W.wait_state(j["id"], "SUCCEEDED", timeout=120)


def test_job_schema_lists_evaluation_fields():
    s = expect(W.get("/v1/job-schema"), 200).json
    names = [f["name"] for f in s["evaluate_fields"]]
    for k in SMALL_EVAL:
        check(k in names, "evaluate_fields lack %s" % k)
    for k in ("name", "version", "measures", "seed"):
        check(k in names, "evaluate_fields lack %s" % k)
    for k in ("svm_epochs", "svm_seeds"):
        check(k not in names, "evaluate_fields still list %s" % k)
    f = {f["name"]: f for f in s["evaluate_fields"]}
    eq(f["max_train"]["default"], 0, "max_train default (0: every training image)")
    check("MLP" in f["probe_epochs"]["help"], "probe_epochs help: %r" % f["probe_epochs"]["help"])
    meas = [f for f in s["evaluate_fields"] if f["name"] == "measures"][0]
    eq(meas["enum"], ["linear", "mlp", "svm", "ndm", "mine", "recon"], "measures enum")
    # openapi.yaml's EvaluateSubmit documents the same keys, defaults and bounds
    props = H.contract().schema("EvaluateSubmit")["properties"]
    eq(sorted(props), sorted(names), "EvaluateSubmit keys vs evaluate_fields")
    for f in s["evaluate_fields"]:
        p = props[f["name"]]
        if f["type"] == "integer":
            for k in ("default", "minimum", "maximum"):
                if k in p or k in f:
                    eq(p.get(k), f.get(k), "EvaluateSubmit.%s.%s" % (f["name"], k))


def test_cancel_and_delete_keep_results():
    slow = W.submit(dict(SMALL_EVAL, measures=["mine"], mine_steps=1000000, max_train=0))
    W.wait_state(slow["id"], "RUNNING", timeout=60)
    expect(W.post("/v1/jobs/%d/cancel" % slow["id"]), 200)
    W.wait_state(slow["id"], "CANCELLED", timeout=60)
    ev = expect(W.get("/v1/models/ev/versions/v1/evaluations"), 200).json["evaluations"]
    check(all(e["job_id"] != slow["id"] for e in ev), "a cancelled evaluation stored results")
    # the worker is free again: a quick evaluation runs and is kept after its job is deleted
    j = W.submit(dict(SMALL_EVAL, measures=["linear"], version=1))
    W.wait_state(j["id"], "SUCCEEDED", timeout=300)
    expect(W.delete("/v1/jobs/%d" % j["id"]), 204)
    ev = expect(W.get("/v1/models/ev/versions/v1/evaluations"), 200).json["evaluations"]
    eq(ev[-1]["job_id"], None, "job_id of an evaluation whose job was deleted")
    check("linear" in ev[-1]["results"], "the results outlive the job")
