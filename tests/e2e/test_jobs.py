"""Jobs: a few hundred Fashion-MNIST steps to SUCCEEDED with metrics and
checkpoints (downloaded, verified, loaded by `dimd encode`), metric history
paging, downsampling and CSV, a probing job, cancel, pause/resume, delete,
terminal states, listing with filters and cursors, idempotency (replay, reuse,
expiry after idempotency_ttl_s and the purge), a full queue."""

import json
import math
import os
import time

import dimd_harness as H
from dimd_harness import Failure, check, eq, expect

D = None
W = None
A = None        # 201 answer for the 300-step job
A_DONE = None   # that job once SUCCEEDED
A_LOCATION = None
B = None        # the probing job
STEPS_A = 300


def setup_module():
    global D, W, A, B, A_LOCATION
    D = H.Daemon(["--workers", "1"]).start()
    W = D.client()
    r = expect(W.post("/v1/jobs", dict(H.SMALL, name="small-300", steps=STEPS_A,
                                       checkpoint_every=100)), 201)
    A = r.json
    A_LOCATION = r.header("Location")
    B = W.submit(dict(H.SMALL, name="probe", steps=20, checkpoint_every=20, probe="linear",
                      probe_images=200, probe_epochs=2))


def loss_key_set():
    # alpha 0 (no global term), gamma 0.1 (prior matching): the model's terms
    return {"loss_local", "loss_prior_enc", "loss_prior_disc", "loss_total"}


def test_submit_answers_201_with_the_queued_job():
    eq(A_LOCATION, "/v1/jobs/%d" % A["id"], "Location")
    eq(A["state"], "QUEUED", "state")
    eq(A["name"], "small-300", "name")
    eq(A["step"], 0, "step")
    eq(A["attempts"], 0, "attempts")
    eq(A["restarts"], 0, "restarts")
    eq(A["started_at"], None, "started_at")
    eq(A["finished_at"], None, "finished_at")
    eq(A["checkpoint_step"], None, "checkpoint_step")
    eq(A["error"], None, "error")
    s = A["spec"]
    want = {"name": "small-300", "dataset": "fashion-mnist", "steps": STEPS_A, "epochs": None,
            "checkpoint_every": 100, "batch": 8, "mi_dim": 16, "y_dim": 16, "probe": "none",
            "best_metric": "loss_total", "lr": 0.0005, "estimator": "jsd", "preset": "basic32x32",
            "keep_last": 3, "keep_best": 1, "random_flip": False, "random_crop": 0, "seed": 1}
    for k, v in want.items():
        eq(s[k], v, "spec.%s" % k)
    i = A["id"]
    eq(A["links"], {"self": "/v1/jobs/%d" % i, "metrics": "/v1/jobs/%d/metrics" % i,
                    "events": "/v1/jobs/%d/events" % i,
                    "checkpoints": "/v1/jobs/%d/checkpoints" % i}, "links")


def test_defaults_resolved_in_the_spec():
    r = expect(W.post("/v1/jobs", {}), 201)
    job = r.json
    try:
        s = job["spec"]
        props = H.contract().schema("JobSubmit")["properties"]
        for k, p in props.items():
            if "default" in p:
                eq(s[k], p["default"], "default of %s" % k)
        eq(s["steps"], None, "steps when only defaults")
        eq(s["epochs"], 1, "epochs when neither steps nor epochs is given")
        eq(s["best_metric"], "probe_y", "best_metric when probing")
        eq(s["name"], None, "name when none is given")
        eq(job["name"], None, "job name when none is given")
        # a queued job has no metrics yet: empty, not 404, for a key it will write
        eq(W.get("/v1/jobs/%d/metrics" % job["id"]).json["metrics"], [], "metrics of a queued job")
        h = W.history(job["id"], "loss_total")
        eq((h["points"], h["next_after_step"]), ([], None), "loss_total of a queued job")
    finally:
        r = W.post("/v1/jobs/%d/cancel" % job["id"])
        expect(r, 200)


def test_resolved_spec_resubmits_to_the_same_spec():
    """null means the default, so a job's resolved spec is a valid job body."""
    r = expect(W.post("/v1/jobs", A["spec"]), 201)
    try:
        eq(r.json["spec"], A["spec"], "spec of the resubmitted spec")
    finally:
        expect(W.post("/v1/jobs/%d/cancel" % r.json["id"]), 200)
    r = expect(W.post("/v1/jobs", dict(H.SMALL, steps=None, epochs=None, lr=None, name=None)), 201)
    try:
        eq((r.json["spec"]["steps"], r.json["spec"]["epochs"], r.json["spec"]["lr"]), (None, 1, 0.0005),
           "nulls resolved to defaults")
    finally:
        expect(W.post("/v1/jobs/%d/cancel" % r.json["id"]), 200)


def test_get_job_while_it_runs():
    job = W.wait_state(A["id"], ("RUNNING", "SUCCEEDED"), timeout=120)
    eq(job["id"], A["id"], "id")
    eq(job["spec"], A["spec"], "spec as stored")
    eq(job["created_at"], A["created_at"], "created_at")
    check(job["started_at"] is not None, "started_at unset while %s" % job["state"])
    job = W.wait_job(A["id"], lambda j: j["total_steps"] > 0, 60, "total_steps set")
    eq(job["total_steps"], STEPS_A, "total_steps")
    eq(job["attempts"], 1, "attempts")


def test_job_runs_to_succeeded():
    global A_DONE
    A_DONE = W.wait_state(A["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    j = A_DONE
    eq(j["state"], "SUCCEEDED", "state (error %r)" % (j["error"],))
    eq(j["step"], STEPS_A, "step")
    eq(j["total_steps"], STEPS_A, "total_steps")
    eq(j["checkpoint_step"], STEPS_A, "checkpoint_step")
    eq(j["attempts"], 1, "attempts")
    eq(j["restarts"], 0, "restarts")
    eq(j["error"], None, "error")
    check(j["finished_at"] is not None and j["finished_at"] >= j["started_at"] >= j["created_at"],
          "times: created %s started %s finished %s" % (j["created_at"], j["started_at"],
                                                        j["finished_at"]))
    check(j["images_per_second"] > 0, "images_per_second %r" % j["images_per_second"])


def need_a():
    if A_DONE is None or A_DONE["state"] != "SUCCEEDED":
        raise Failure("the 300-step job did not succeed")


def summary(job_id):
    return {m["key"]: m for m in expect(W.get("/v1/jobs/%d/metrics" % job_id), 200).json["metrics"]}


def test_metrics_summary_and_loss_series():
    need_a()
    r = expect(W.get("/v1/jobs/%d/metrics" % A["id"]), 200).json
    eq(r["job_id"], A["id"], "job_id")
    keys = [m["key"] for m in r["metrics"]]
    eq(keys, sorted(keys), "summary keys in alphabetical order")
    sm = {m["key"]: m for m in r["metrics"]}
    eq({k for k in sm if k.startswith("loss_")}, loss_key_set(), "loss keys")
    for k in sorted(loss_key_set()):
        m = sm[k]
        eq((m["count"], m["first_step"], m["last_step"]), (STEPS_A, 1, STEPS_A), "%s count/first/last" % k)
        pts = W.full_history(A["id"], k)
        H.check_series(pts, STEPS_A, k)
        vals = [p[1] for p in pts]
        check(all(isinstance(v, float) or isinstance(v, int) for v in vals),
              "%s has non-finite values in a healthy run" % k)
        eq(m["last"], vals[-1], "%s summary last" % k)
        eq(m["min"], min(vals), "%s summary min" % k)
        eq(m["max"], max(vals), "%s summary max" % k)
    ips = sm.get("images_per_second")
    check(ips is not None, "no images_per_second metric")
    check(ips["count"] >= 1 and ips["min"] > 0, "images_per_second summary %r" % ips)
    pts = W.full_history(A["id"], "images_per_second")
    eq(len(pts), ips["count"], "images_per_second points")
    steps = [p[0] for p in pts]
    check(all(b > a for a, b in zip(steps, steps[1:])), "images_per_second steps not increasing")
    check(steps[-1] <= STEPS_A, "images_per_second step %d beyond the run" % steps[-1])
    wall = [p[2] for p in W.full_history(A["id"], "loss_total")]
    check(all(b >= a for a, b in zip(wall, wall[1:])), "wall_time_ms decreases")
    now_ms = time.time() * 1000
    check(abs(wall[-1] - now_ms) < 3600e3, "wall_time_ms %d is not ms since the epoch" % wall[-1])


def test_history_paging_reconstructs_the_series():
    need_a()
    full = W.full_history(A["id"], "loss_total")
    for limit in (37, 100, 299, 300, 1000):
        got = []
        after = 0
        pages = 0
        while True:
            h = W.history(A["id"], "loss_total", after_step=after, limit=limit)
            eq(h["downsampled"], False, "downsampled without max_points")
            check(len(h["points"]) <= limit, "page of %d points with limit %d" % (len(h["points"]), limit))
            got.extend(h["points"])
            pages += 1
            check(pages <= 400, "paging does not end")
            if h["next_after_step"] is None:
                break
            check(h["points"], "empty page with next_after_step %r" % h["next_after_step"])
            eq(h["next_after_step"], h["points"][-1][0], "next_after_step is the page's last step")
            after = h["next_after_step"]
        eq(got, full, "series paged with limit %d" % limit)
        check(pages <= math.ceil(STEPS_A / limit) + 1, "%d pages with limit %d" % (pages, limit))
    h = W.history(A["id"], "loss_total", after_step=250)
    eq([p[0] for p in h["points"]], list(range(251, STEPS_A + 1)), "after_step=250")
    eq(h["next_after_step"], None, "next_after_step at the end")
    h = W.history(A["id"], "loss_total", after_step=STEPS_A)
    eq(h["points"], [], "after the last step")


def test_history_downsampling():
    need_a()
    full = W.full_history(A["id"], "loss_total")
    index = {p[0]: p for p in full}
    for mp in (2, 10, 50):
        h = W.history(A["id"], "loss_total", max_points=mp)
        pts = h["points"]
        eq(h["downsampled"], True, "downsampled with max_points %d" % mp)
        check(len(pts) <= mp + 2, "max_points %d gave %d points" % (mp, len(pts)))
        check(len(pts) >= min(mp, 2), "max_points %d gave %d points" % (mp, len(pts)))
        eq(pts[0], full[0], "first point kept (max_points %d)" % mp)
        eq(pts[-1], full[-1], "last point kept (max_points %d)" % mp)
        steps = [p[0] for p in pts]
        check(all(b > a for a, b in zip(steps, steps[1:])), "downsampled steps not increasing")
        for p in pts:
            eq(index.get(p[0]), p, "downsampled point at step %d" % p[0])
        vals = [p[1] for p in full]
        got_vals = [p[1] for p in pts]
        check(min(vals) in got_vals, "global minimum dropped (max_points %d)" % mp)
        check(max(vals) in got_vals, "global maximum dropped (max_points %d)" % mp)
    h = W.history(A["id"], "loss_total", max_points=1000)
    eq(h["downsampled"], False, "max_points above the count")
    eq(h["points"], full, "max_points above the count keeps every point")
    # downsampling within a page
    h = W.history(A["id"], "loss_total", after_step=100, limit=100, max_points=10)
    pts = h["points"]
    eq(pts[0], index[101], "first point of the page")
    eq(pts[-1], index[200], "last point of the page")
    eq(h["next_after_step"], 200, "next_after_step of a downsampled page")


def csv_rows(body):
    text = body.decode("utf-8")
    lines = text.splitlines()
    check(lines, "empty CSV")
    eq(lines[0], "step,value,wall_time_ms", "CSV header")
    rows = []
    for line in lines[1:]:
        parts = line.split(",")
        eq(len(parts), 3, "CSV columns in %r" % line)
        rows.append([int(parts[0]), float(parts[1]), int(parts[2])])
    return rows


def same_points(csv, js, what):
    eq(len(csv), len(js), "%s: CSV rows vs JSON points" % what)
    for c, j in zip(csv, js):
        check(c[0] == j[0] and c[2] == j[2] and math.isclose(c[1], float(j[1]), rel_tol=1e-6,
                                                              abs_tol=1e-12),
              "%s: CSV row %s vs JSON point %s" % (what, c, j))


def test_history_csv_matches_json():
    need_a()
    for params in ({}, {"after_step": 40, "limit": 25}, {"max_points": 20}):
        q = "&".join("%s=%s" % kv for kv in params.items())
        r = expect(W.get("/v1/jobs/%d/metrics/loss_total?format=csv%s" % (A["id"], "&" + q if q else "")), 200)
        ctype = r.header("Content-Type").split(";")[0].strip()
        eq(ctype, "text/csv", "CSV Content-Type")
        js = W.history(A["id"], "loss_total", **params)["points"]
        same_points(csv_rows(r.body), js, "CSV %s" % params)


def test_metric_not_found():
    need_a()
    # loss_global: alpha 0, so this job has no global term
    for key in ("loss_global", "no_such_metric", "Loss_total", "loss-total", "x" * 64):
        expect(W.get("/v1/jobs/%d/metrics/%s" % (A["id"], key)), 404, "metric_not_found")


def checkpoints(job_id):
    r = expect(W.get("/v1/jobs/%d/checkpoints" % job_id), 200).json
    eq(r["job_id"], job_id, "job_id")
    return r["checkpoints"]


def download(job_id, step, **kw):
    return W.get("/v1/jobs/%d/checkpoints/%s" % (job_id, step), **kw)


def test_checkpoints_listed():
    need_a()
    cps = checkpoints(A["id"])
    eq([c["step"] for c in cps], [100, 200, 300], "checkpoint steps")
    keys = set(summary(A["id"]))
    for c in cps:
        eq(c["url"], "/v1/jobs/%d/checkpoints/%d" % (A["id"], c["step"]), "url")
        check("loss_total" in c["metrics"], "checkpoint %d metrics lack loss_total: %s" % (
            c["step"], c["metrics"]))
        check(set(c["metrics"]) <= keys, "checkpoint metrics %s not among the job's keys" % list(c["metrics"]))


def test_checkpoint_download_sha256_etag_304():
    need_a()
    for c in checkpoints(A["id"]):
        r = expect(download(A["id"], c["step"]), 200)
        eq(len(r.body), c["bytes"], "bytes of checkpoint %d" % c["step"])
        eq(H.sha256(r.body), c["sha256"], "sha256 of checkpoint %d" % c["step"])
        eq(r.header("ETag"), '"%s"' % c["sha256"], "ETag")
        eq(r.header("Content-Disposition"),
           'attachment; filename="job-%d-step-%d.dimdckpt"' % (A["id"], c["step"]), "Content-Disposition")
        check(r.body[:8] == b"DIMDCKPT", "checkpoint magic %r" % r.body[:8])
        r2 = expect(download(A["id"], c["step"], headers={"If-None-Match": r.header("ETag")}), 304)
        eq(r2.body, b"", "304 body")
        eq(r2.header("ETag"), r.header("ETag"), "ETag of the 304")
        r3 = expect(download(A["id"], c["step"], headers={"If-None-Match": '"%s"' % ("0" * 64)}), 200)
        eq(H.sha256(r3.body), c["sha256"], "download with a stale If-None-Match")
    latest = expect(download(A["id"], "latest"), 200)
    eq(H.sha256(latest.body), checkpoints(A["id"])[-1]["sha256"], "latest is step 300")
    expect(download(A["id"], 150), 404, "checkpoint_not_found")


def test_checkpoint_loads_with_dimd_encode():
    need_a()
    tmp = D.workdir
    r = expect(download(A["id"], "latest"), 200)
    ckpt = os.path.join(tmp, "a.dimdckpt")
    with open(ckpt, "wb") as f:
        f.write(r.body)
    png = os.path.join(tmp, "img.png")
    H.write_png(png, 28, 28, lambda x, y: (x * 9 + y * 3) % 256)
    out = H.encode_with_cli(ckpt, png)
    eq(out["dim"], 16, "embedding width (y_dim 16)")
    eq(out.get("file"), png, "file in the encode output")


def test_probe_job_records_probe_metrics_at_checkpoints():
    j = W.wait_state(B["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    eq(j["state"], "SUCCEEDED", "probe job state (error %r)" % (j["error"],))
    eq(j["spec"]["best_metric"], "probe_y", "best_metric of a probing job")
    sm = summary(B["id"])
    # probe_pixels: the same (converged) probe on the raw pixels, the baseline
    for k in ("probe_conv", "probe_fc", "probe_y", "probe_pixels"):
        check(k in sm, "no %s metric; keys %s" % (k, sorted(sm)))
        m = sm[k]
        eq((m["count"], m["first_step"], m["last_step"]), (1, 20, 20), "%s count/first/last" % k)
        check(0 <= m["last"] <= 1, "%s = %r is no accuracy" % (k, m["last"]))
    cps = checkpoints(B["id"])
    eq([c["step"] for c in cps], [20], "checkpoints of the probe job")
    check("probe_y" in cps[0]["metrics"], "checkpoint metrics lack probe_y: %s" % cps[0]["metrics"])
    eq(cps[0]["metrics"]["probe_y"], sm["probe_y"]["last"], "probe_y in the checkpoint vs the metric")
    check("probe_pixels" in cps[0]["metrics"], "checkpoint metrics lack probe_pixels: %s" % cps[0]["metrics"])
    eq(cps[0]["metrics"]["probe_pixels"], sm["probe_pixels"]["last"],
       "probe_pixels in the checkpoint vs the metric")
    # a job that does not probe has no pixel baseline either
    expect(W.get("/v1/jobs/%d/metrics/probe_pixels" % A["id"]), 404, "metric_not_found")


def test_epochs_give_total_steps():
    job = W.submit(dict(H.SMALL, epochs=0.004, checkpoint_every=1000))
    eq(job["spec"]["steps"], None, "spec.steps with epochs")
    eq(job["spec"]["epochs"], 0.004, "spec.epochs")
    j = W.wait_state(job["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=180)
    eq(j["state"], "SUCCEEDED", "state (error %r)" % (j["error"],))
    eq(j["total_steps"], 30, "total_steps of 0.004 epochs of 60000 images at batch 8")
    eq(j["step"], 30, "step")


def test_cancel_queued_and_running_jobs():
    long = W.submit(dict(H.SMALL, name="long", steps=100000, checkpoint_every=100000))
    W.wait_job(long["id"], lambda j: j["state"] == "RUNNING" and j["step"] >= 1, 120, "running")
    q = W.submit(dict(H.SMALL, name="queued", steps=5))
    eq(W.job(q["id"])["state"], "QUEUED", "second job with one busy worker")
    r = expect(W.post("/v1/jobs/%d/cancel" % q["id"]), 200).json
    eq(r["state"], "CANCELLED", "cancelled queued job")
    eq(r["started_at"], None, "started_at of a job that never ran")
    check(r["finished_at"] is not None, "finished_at unset")
    expect(W.delete("/v1/jobs/%d" % long["id"]), 409, "job_not_terminal")
    r = expect(W.post("/v1/jobs/%d/cancel" % long["id"]), 200).json
    eq(r["state"], "CANCELLED", "cancelled running job")
    step = r["step"]
    time.sleep(1.5)
    j = W.job(long["id"])
    eq(j["state"], "CANCELLED", "state a while after cancel")
    eq(j["step"], step, "step a while after cancel (no writes after CANCELLED)")
    n = summary(long["id"])["loss_total"]["count"] if step else 0
    eq(n, step, "loss_total points of the cancelled job")
    r = expect(W.post("/v1/jobs/%d/cancel" % long["id"]), 409, "invalid_transition")
    check("CANCELLED" in r.json["detail"], "detail does not name the state: %r" % r.json["detail"])
    # the worker is free again: a new job runs
    k = W.submit(dict(H.SMALL, steps=3, checkpoint_every=3))
    eq(W.wait_state(k["id"], ("SUCCEEDED", "FAILED"), timeout=120)["state"], "SUCCEEDED",
       "job after a cancel")
    global CANCELLED_Q
    CANCELLED_Q = q


CANCELLED_Q = None


def test_pause_queued_job_then_resume_and_cancel():
    long = W.submit(dict(H.SMALL, steps=100000, checkpoint_every=100000))
    W.wait_state(long["id"], "RUNNING", timeout=120)
    q = W.submit(dict(H.SMALL, steps=5))
    r = expect(W.post("/v1/jobs/%d/pause" % q["id"]), 200).json
    eq(r["state"], "PAUSED", "paused queued job")
    expect(W.delete("/v1/jobs/%d" % q["id"]), 409, "job_not_terminal")
    expect(W.post("/v1/jobs/%d/pause" % q["id"]), 409, "invalid_transition")
    r = expect(W.post("/v1/jobs/%d/resume" % q["id"]), 200).json
    eq(r["state"], "QUEUED", "resumed job")
    expect(W.post("/v1/jobs/%d/resume" % q["id"]), 409, "invalid_transition")
    eq(expect(W.post("/v1/jobs/%d/cancel" % q["id"]), 200).json["state"], "CANCELLED", "cancel")
    expect(W.post("/v1/jobs/%d/cancel" % long["id"]), 200)


def test_pause_running_job_then_resume_to_the_full_step_count():
    n = 100
    p = W.submit(dict(H.SMALL, name="pausable", steps=n, checkpoint_every=1000, keep_last=1,
                      keep_best=0))
    W.wait_step(p["id"], 20, timeout=120)
    r = expect(W.post("/v1/jobs/%d/pause" % p["id"]), 200).json
    eq(r["state"], "PAUSED", "state after pause")
    j = W.wait_job(p["id"], lambda j: j["checkpoint_step"] is not None, 60, "pause checkpoint")
    time.sleep(1.0)
    j2 = W.job(p["id"])
    eq(j2["state"], "PAUSED", "state a while after pause")
    eq(j2["step"], j["step"], "step while paused")
    check(j2["step"] < n, "the job finished before the pause took (step %d)" % j2["step"])
    eq(j2["checkpoint_step"], j2["step"], "the pause checkpoint is at the paused step")
    eq([c["step"] for c in checkpoints(p["id"])], [j2["step"]], "checkpoints while paused")
    r = expect(W.post("/v1/jobs/%d/resume" % p["id"]), 200).json
    eq(r["state"], "QUEUED", "state after resume")
    done = W.wait_state(p["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=180)
    eq(done["state"], "SUCCEEDED", "state (error %r)" % (done["error"],))
    eq((done["step"], done["total_steps"]), (n, n), "step and total_steps")
    eq(done["attempts"], 2, "attempts (before and after the pause)")
    eq(done["restarts"], 0, "restarts")
    for k in sorted(loss_key_set()):
        H.check_series(W.full_history(p["id"], k), n, k)
    eq([c["step"] for c in checkpoints(p["id"])], [n], "checkpoints with keep_last 1, keep_best 0")


def test_terminal_states_never_change():
    need_a()
    for action in ("cancel", "pause", "resume"):
        r = expect(W.post("/v1/jobs/%d/%s" % (A["id"], action)), 409, "invalid_transition")
        check("SUCCEEDED" in r.json["detail"], "detail does not name the state: %r" % r.json["detail"])
    j = W.job(A["id"])
    eq(j["state"], "SUCCEEDED", "state")
    eq(j["finished_at"], A_DONE["finished_at"], "finished_at")


def test_delete_terminal_job():
    check(CANCELLED_Q is not None, "no cancelled job from the cancel test")
    jid = CANCELLED_Q["id"]
    r = expect(W.delete("/v1/jobs/%d" % jid), 204)
    eq(r.body, b"", "204 body")
    expect(W.get("/v1/jobs/%d" % jid), 404, "job_not_found")
    expect(W.get("/v1/jobs/%d/metrics" % jid), 404, "job_not_found")
    expect(W.get("/v1/jobs/%d/checkpoints" % jid), 404, "job_not_found")
    expect(W.delete("/v1/jobs/%d" % jid), 404, "job_not_found")
    ids = [j["id"] for j in expect(W.get("/v1/jobs?limit=500"), 200).json["jobs"]]
    check(jid not in ids, "deleted job still listed")


def list_all(query):
    r = expect(W.get("/v1/jobs?limit=500" + query), 200).json
    eq(r["next_cursor"], None, "next_cursor of a complete list")
    return r["jobs"]


def page_through(query, limit):
    ids = []
    cursor = None
    pages = 0
    while True:
        q = "/v1/jobs?limit=%d%s" % (limit, query)
        if cursor is not None:
            q += "&cursor=" + cursor
        r = expect(W.get(q), 200).json
        check(len(r["jobs"]) <= limit, "page of %d with limit %d" % (len(r["jobs"]), limit))
        ids.extend(j["id"] for j in r["jobs"])
        pages += 1
        check(pages <= 1000, "pagination does not end")
        check(r["next_cursor"] is None or r["next_cursor"] != cursor,
              "next_cursor %r repeated (the page held %s)" % (cursor, [j["id"] for j in r["jobs"]]))
        cursor = r["next_cursor"]
        if cursor is None:
            break
        check(r["jobs"], "empty page with a next_cursor")
        check(len(ids) == len(set(ids)), "job ids repeated across pages: %s (next_cursor %r)" % (
            ids, cursor))
    return ids


def test_list_with_state_filter_and_cursor_pagination():
    jobs = list_all("")
    ids = [j["id"] for j in jobs]
    check(len(ids) >= 8, "only %d jobs listed" % len(ids))
    check(all(b < a for a, b in zip(ids, ids[1:])), "not newest first: %s" % ids)
    by_state = {}
    for j in jobs:
        by_state.setdefault(j["state"], []).append(j["id"])
    check(by_state.get("SUCCEEDED") and by_state.get("CANCELLED"), "states %s" % sorted(by_state))
    for st in H.JOB_STATES:
        got = [j["id"] for j in list_all("&state=" + st)]
        eq(got, by_state.get(st, []), "state=%s" % st)
    got = [j["id"] for j in list_all("&state=CANCELLED,SUCCEEDED")]
    eq(got, [i for i in ids if i in by_state["CANCELLED"] + by_state["SUCCEEDED"]],
       "state=CANCELLED,SUCCEEDED")
    eq(page_through("", 1), ids, "limit=1 pages")
    eq(page_through("", 3), ids, "limit=3 pages")
    eq(page_through("&state=SUCCEEDED", 1), by_state["SUCCEEDED"], "limit=1 pages of SUCCEEDED")
    r = expect(W.get("/v1/jobs"), 200).json
    eq([j["id"] for j in r["jobs"]], ids[:50], "default limit 50")


def test_idempotency_key_replay_and_reuse():
    body = json.dumps(dict(H.SMALL, name="idem", steps=2)).encode()
    before = len(list_all(""))
    r1 = W.request("POST", "/v1/jobs", body=body, content_type="application/json",
                   headers={"Idempotency-Key": "idem-key-1"})
    expect(r1, 201)
    check(r1.header("Idempotent-Replayed") in (None, "false"),
          "Idempotent-Replayed on the first submission: %r" % r1.header("Idempotent-Replayed"))
    r2 = W.request("POST", "/v1/jobs", body=body, content_type="application/json",
                   headers={"Idempotency-Key": "idem-key-1"})
    expect(r2, 200)
    eq(r2.header("Idempotent-Replayed"), "true", "Idempotent-Replayed")
    eq(r2.json["id"], r1.json["id"], "replayed job id")
    eq(r2.json["spec"], r1.json["spec"], "replayed spec")
    eq(len(list_all("")), before + 1, "jobs after a replay")
    other = json.dumps(dict(H.SMALL, name="idem", steps=3)).encode()
    r3 = W.request("POST", "/v1/jobs", body=other, content_type="application/json",
                   headers={"Idempotency-Key": "idem-key-1"})
    expect(r3, 409, "idempotency_key_reused")
    r4 = W.request("POST", "/v1/jobs", body=body, content_type="application/json",
                   headers={"Idempotency-Key": "idem-key-2"})
    expect(r4, 201)
    check(r4.json["id"] != r1.json["id"], "another key made no new job")
    # replay still works after the job ran
    W.wait_state(r1.json["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=120)
    r5 = W.request("POST", "/v1/jobs", body=body, content_type="application/json",
                   headers={"Idempotency-Key": "idem-key-1"})
    expect(r5, 200)
    eq(r5.json["id"], r1.json["id"], "replay after the job finished")
    check(r5.json["state"] != "QUEUED", "replay shows the job's current state")
    W.wait_state(r4.json["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=120)


def idempotency_keys(c):
    text = expect(c.get("/metrics"), 200).body.decode()
    vals = [l.split()[1] for l in text.splitlines() if l.startswith("dimd_idempotency_keys ")]
    eq(len(vals), 1, "dimd_idempotency_keys samples")
    return int(float(vals[0]))


def test_idempotency_key_expires_after_idempotency_ttl_s():
    ttl = 4
    q = H.Daemon(["--idempotency_ttl_s", str(ttl), "--workers", "1"]).start()
    c = q.client()
    body = dict(H.SMALL, name="ttl", steps=2)
    key = {"Idempotency-Key": "ttl-key"}
    t0 = time.time()
    r1 = expect(c.post("/v1/jobs", body, headers=key), 201)
    # within the window: the original job, and 409 for another body
    r2 = expect(c.post("/v1/jobs", body, headers=key), 200)
    eq(r2.header("Idempotent-Replayed"), "true", "Idempotent-Replayed within the window")
    eq(r2.json["id"], r1.json["id"], "job replayed within the window")
    expect(c.post("/v1/jobs", dict(body, steps=3), headers=key), 409, "idempotency_key_reused")
    check(time.time() - t0 < ttl, "the requests within the window took %.1f s" % (time.time() - t0))
    eq(idempotency_keys(c), 1, "dimd_idempotency_keys")
    # after it: a new job, which the key now names
    time.sleep(max(0.0, t0 + ttl + 0.5 - time.time()))
    r3 = expect(c.post("/v1/jobs", body, headers=key), 201)
    check(r3.json["id"] > r1.json["id"], "the key after expiry made no new job")
    r4 = expect(c.post("/v1/jobs", body, headers=key), 200)
    eq(r4.json["id"], r3.json["id"], "the key now names the new job")
    # unused, the key is purged (the timer runs every idempotency_ttl_s below a minute)
    deadline = time.time() + (3 * ttl + 10) * H.SCALE
    while idempotency_keys(c) != 0 and time.time() < deadline:
        time.sleep(0.5)
    eq(idempotency_keys(c), 0, "dimd_idempotency_keys after the purge")
    eq(c.job(r1.json["id"])["id"], r1.json["id"], "the purge leaves the jobs")
    q.kill()


def test_queue_full_is_429_with_retry_after():
    q = H.Daemon(["--queue_max", "2", "--workers", "1"]).start()
    c = q.client()
    spec = dict(H.SMALL, steps=100000, checkpoint_every=100000)
    j1 = c.submit(spec)
    c.wait_state(j1["id"], "RUNNING", timeout=120)
    j2 = c.submit(spec)
    j3 = c.submit(spec)
    r = c.post("/v1/jobs", spec)
    expect(r, 429, "queue_full")
    ra = r.header("Retry-After")
    check(ra is not None and ra.strip().isdigit() and int(ra) >= 1, "Retry-After %r" % ra)
    eq(expect(c.get("/readyz", token=None), 200).json["queue_depth"], 2, "readyz queue_depth")
    queued = expect(c.get("/v1/jobs?state=QUEUED"), 200).json["jobs"]
    eq(sorted(j["id"] for j in queued), sorted([j2["id"], j3["id"]]), "QUEUED jobs")
    eq(len(expect(c.get("/v1/jobs"), 200).json["jobs"]), 3, "jobs (the refused one not stored)")
    expect(c.post("/v1/jobs/%d/cancel" % j2["id"]), 200)
    j4 = c.submit(spec)
    check(j4["id"] not in (j1["id"], j2["id"], j3["id"]), "new job id")
    for j in (j1, j3, j4):
        expect(c.post("/v1/jobs/%d/cancel" % j["id"]), 200)
    q.kill()
