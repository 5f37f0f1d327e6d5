"""Sweeps: validation (every problem at once, with paths), a grid sweep to
SUCCEEDED (trials are ordinary jobs with sweep_id and trial; each trial's
metric is the mean of its loss over the last tenth of its steps; the best and
the leaderboard; idempotency; promote the best), an ASHA sweep killed with
kill -9 while trials wait at a rung and stopped with SIGTERM later, which ends
where an uninterrupted one would (no trial created twice, no decision taken
twice, stopped trials cut at their rung), pause/resume/cancel of a whole sweep,
and the sweep's Server-Sent Events."""

import math
import signal
import time

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
BASE = {"dataset": "fashion-mnist", "batch": 8, "mi_dim": 16, "y_dim": 16, "probe": "none",
        "checkpoint_every": 1000}
GRID = None


def setup_module():
    global D, W
    D = H.Daemon(["--workers", "2", "--metrics_flush_ms", "100"]).start()
    W = D.client()


def sweep(client, sid):
    return expect(client.get("/v1/sweeps/%d" % sid), 200).json


def wait_sweep(client, sid, pred, timeout, what):
    deadline = time.time() + timeout * H.SCALE
    s = None
    while time.time() < deadline:
        s = sweep(client, sid)
        if pred(s):
            return s
        time.sleep(0.1)
    raise H.Failure("sweep %d: %s not reached (state %s, counts %s)" % (
        sid, what, s and s["state"], s and s["counts"]))


def board(client, sid):
    return expect(client.get("/v1/sweeps/%d/leaderboard" % sid), 200).json


def trial_jobs(client, sid):
    jobs = expect(client.get("/v1/jobs?limit=500"), 200).json["jobs"]
    return [j for j in jobs if j["spec"].get("sweep_id") == sid]


def test_bad_sweeps_get_every_problem_with_its_path():
    r = expect(W.post("/v1/sweeps", {
        "base": dict(BASE, steps=5), "space": {"lr": [0.001, "fast"], "dataset": ["x"],
                                                "gamma": {"min": 0.5, "max": 0.1}},
        "algorithm": "grid", "budget": {}, "asha": {"reduction_factor": 3}, "colour": 1}),
        422, "validation_failed")
    paths = sorted(e["path"] for e in r.json["errors"])
    for p in ("$.base.steps", "$.budget", "$.space.lr[1]", "$.space.dataset", "$.space.gamma",
              "$.asha", "$.colour"):
        check(p in paths, "no error at %s in %s" % (p, paths))
    r = expect(W.post("/v1/sweeps", {"base": BASE, "space": {"lr": {"min": 1e-4, "max": 1e-2}},
                                     "algorithm": "grid", "budget": {"steps": 4}}), 422)
    paths = [e["path"] for e in r.json["errors"]]
    check("$.algorithm" in paths, "grid over a range accepted: %s" % paths)
    r = expect(W.post("/v1/sweeps", {"base": dict(BASE, probe="linear"), "space": {"lr": [1e-3]},
                                     "budget": {"steps": 4}, "validation_images": 0}), 422)
    eq([e["path"] for e in r.json["errors"]], ["$.validation_images"], "probe metric without a "
                                                                       "validation split")
    r = expect(W.post("/v1/sweeps", {"base": BASE, "space": {"batch": {"min": 4, "max": 64}},
                                     "trials": 2, "budget": {"steps": 4}}), 422)
    eq([e["path"] for e in r.json["errors"]], ["$.space.batch"], "a float range on an integer")
    # a job body may not pretend to be a trial
    r = expect(W.post("/v1/jobs", dict(BASE, steps=3, sweep_id=1, trial=0)), 422)
    check("$.sweep_id" in [e["path"] for e in r.json["errors"]], "POST /v1/jobs took sweep_id")
    expect(W.get("/v1/sweeps/999"), 404, "sweep_not_found")
    expect(W.get("/v1/sweeps/abc"), 404, "sweep_not_found")


def test_grid_sweep_runs_every_point_as_a_job_and_finds_the_best():
    global GRID
    body = {"name": "grid", "base": BASE, "space": {"lr": [1e-4, 2e-3], "gamma": [0.0, 0.1]},
            "algorithm": "grid", "metric": "loss_total", "budget": {"steps": 10}, "parallel": 2}
    r = expect(W.post("/v1/sweeps", body, headers={"Idempotency-Key": "grid-1"}), 201)
    s = r.json
    eq(r.header("Location"), "/v1/sweeps/%d" % s["id"], "Location")
    eq(s["spec"]["trials"], 4, "trials default to the grid's size")
    eq(s["spec"]["direction"], "min", "a loss is minimised")
    again = expect(W.post("/v1/sweeps", body, headers={"Idempotency-Key": "grid-1"}), 200)
    eq(again.json["id"], s["id"], "replayed sweep")
    eq(again.header("Idempotent-Replayed"), "true", "Idempotent-Replayed")
    expect(W.post("/v1/sweeps", dict(body, seed=2), headers={"Idempotency-Key": "grid-1"}), 409,
           "idempotency_key_reused")
    GRID = wait_sweep(W, s["id"], lambda x: x["state"] == "SUCCEEDED", 180, "SUCCEEDED")
    eq(GRID["counts"]["SUCCEEDED"], 4, "trials SUCCEEDED")
    jobs = trial_jobs(W, s["id"])
    eq(sorted(j["spec"]["trial"] for j in jobs), [0, 1, 2, 3], "one job per trial")
    b = board(W, s["id"])
    seen = set()
    for t in b["trials"]:
        job = W.job(t["job_id"])
        eq(job["spec"]["sweep_id"], s["id"], "trial %d's job sweep_id" % t["trial"])
        eq(job["spec"]["trial"], t["trial"], "trial number in the spec")
        eq(job["spec"]["steps"], 10, "the budget")
        eq(job["spec"]["best_metric"], "loss_total", "the metric is the job's best_metric")
        for k, v in t["params"].items():
            check(math.isclose(job["spec"][k], v, rel_tol=1e-6), "trial %d %s: %r vs %r" % (
                t["trial"], k, job["spec"][k], v))
        seen.add((t["params"]["lr"], t["params"]["gamma"]))
        # the metric: the mean of loss_total over the last tenth of the steps (here: step 10)
        pts = W.full_history(t["job_id"], "loss_total")
        last = [p[1] for p in pts if p[0] > 9]
        want = sum(last) / len(last)
        check(math.isclose(t["metric"], want, rel_tol=1e-9), "trial %d metric %r, history gives %r"
              % (t["trial"], t["metric"], want))
        eq(t["rung"], 0, "grid trials have one rung")
        eq(t["state"], "SUCCEEDED", "trial state")
    eq(len(seen), 4, "distinct grid points")
    metrics = [t["metric"] for t in b["trials"]]
    eq(metrics, sorted(metrics), "leaderboard ordered by the loss")
    eq(GRID["best"]["trial"], b["trials"][0]["trial"], "best trial = first on the board")
    # promote the best trial in one call
    r = expect(W.post("/v1/sweeps/%d/promote" % s["id"], {"name": "grid-best"}), 201)
    eq(r.json["job_id"], GRID["best"]["job_id"], "promoted job")
    lst = expect(W.get("/v1/sweeps?state=SUCCEEDED"), 200).json
    check(s["id"] in [x["id"] for x in lst["sweeps"]], "listed by state")


def test_grid_sweep_events_replay_in_order():
    es = W.sweep_events(GRID["id"])
    evs = es.read_all()
    H.check_event_ids(evs, "sweep events")
    kinds = [e["event"] for e in evs]
    eq(kinds[0], "state", "first event")
    eq(kinds.count("trial_started"), 4, "trial_started events")
    eq(kinds.count("rung_result"), 4, "rung_result events")
    check("best" in kinds, "no best event")
    eq(evs[-1]["data"]["state"], "SUCCEEDED", "last event")
    for e in evs:
        eq(e["data"]["type"], e["event"], "data.type")
    # Last-Event-ID resumes after the given event
    tail = W.sweep_events(GRID["id"], last_event_id=evs[2]["id"]).read_all()
    eq([e["id"] for e in tail], [e["id"] for e in evs[3:]], "resumed stream")


def test_probe_metric_is_scored_on_a_validation_split():
    base = dict(BASE, probe="linear", probe_images=100)
    r = expect(W.post("/v1/sweeps", {"base": base, "space": {"lr": [0.001]}, "algorithm": "grid",
                                     "budget": {"steps": 3}, "validation_images": 150}), 201)
    s = r.json
    eq(s["spec"]["metric"], "probe_y", "the default metric of a probing base")
    eq(s["spec"]["direction"], "max", "a probe is maximised")
    s = wait_sweep(W, s["id"], lambda x: x["state"] != "RUNNING", 120, "the end")
    eq(s["state"], "SUCCEEDED", "probe sweep")
    t = s["best"]
    job = W.job(t["job_id"])
    eq(job["spec"]["validation_images"], 150, "the trial's validation split")
    eq(job["spec"]["best_metric"], "probe_y", "the trial's best_metric")
    pts = W.full_history(t["job_id"], "probe_y")
    eq([p[0] for p in pts], [3], "probe_y at the last step")
    eq(t["metric"], pts[0][1], "the trial's metric is its probe_y")
    # 150 images: accuracies are multiples of 1/150
    check(abs(t["metric"] * 150 - round(t["metric"] * 150)) < 1e-6,
          "probe_y %r is not a fraction of 150 validation images" % t["metric"])


def test_pause_resume_and_cancel_a_whole_sweep():
    body = {"base": BASE, "space": {"lr": {"min": 1e-4, "max": 1e-2, "scale": "log"}},
            "algorithm": "random", "seed": 5, "trials": 3, "budget": {"steps": 100000},
            "parallel": 2}
    s = expect(W.post("/v1/sweeps", body), 201).json
    sid = s["id"]
    wait_sweep(W, sid, lambda x: x["counts"]["RUNNING"] == 2, 60, "2 trials running")
    p = expect(W.post("/v1/sweeps/%d/pause" % sid), 200).json
    eq(p["state"], "PAUSED", "paused sweep")
    for j in trial_jobs(W, sid):
        j = W.wait_state(j["id"], "PAUSED", 60)
        eq(j["error"]["code"], "sweep_paused", "paused trial's code")
    time.sleep(1.5)
    eq(sweep(W, sid)["trials_created"], 2, "no trial starts while paused")
    expect(W.post("/v1/sweeps/%d/pause" % sid), 409, "invalid_transition")
    expect(W.post("/v1/sweeps/%d/resume" % sid), 200)
    wait_sweep(W, sid, lambda x: x["counts"]["RUNNING"] == 2, 60, "running again")
    c = expect(W.post("/v1/sweeps/%d/cancel" % sid), 200).json
    eq(c["state"], "CANCELLED", "cancelled sweep")
    for j in trial_jobs(W, sid):
        eq(W.wait_state(j["id"], "CANCELLED", 60)["state"], "CANCELLED", "trial job")
    expect(W.post("/v1/sweeps/%d/resume" % sid), 409, "invalid_transition")
    eq(sweep(W, sid)["trials_created"], 2, "no trial after the cancel")
    expect(W.post("/v1/sweeps/%d/promote" % sid, {"name": "nothing"}), 409, "invalid_transition")


def _asha_checks(client, sid, trials, rung_steps, eta):
    s = sweep(client, sid)
    eq(s["state"], "SUCCEEDED", "ASHA sweep")
    jobs = trial_jobs(client, sid)
    eq(sorted(j["spec"]["trial"] for j in jobs), list(range(trials)),
       "one job per trial (no trial created twice)")
    evs = client.sweep_events(sid).read_all()
    H.check_event_ids(evs, "ASHA sweep events")
    decisions = [(e["data"]["trial"], e["data"]["rung"]) for e in evs if e["event"] == "decision"]
    eq(len(decisions), len(set(decisions)), "decisions per (trial, rung)")
    results = [(e["data"]["trial"], e["data"]["rung"]) for e in evs if e["event"] == "rung_result"]
    eq(len(results), len(set(results)), "results per (trial, rung)")
    starts = [e["data"]["trial"] for e in evs if e["event"] == "trial_started"]
    eq(sorted(starts), list(range(trials)), "trial_started events")
    b = board(client, sid)
    top = len(rung_steps) - 1
    for t in b["trials"]:
        job = client.job(t["job_id"])
        pts = client.full_history(t["job_id"], "loss_total")
        H.check_series(pts, job["step"], "trial %d's loss_total" % t["trial"])
        if t["state"] == "STOPPED":
            eq(job["state"], "CANCELLED", "stopped trial's job")
            eq(job["error"]["code"], "sweep_stopped", "stopped trial's code")
            eq(job["step"], rung_steps[t["stopped_at_rung"]], "stopped trial cut at its rung")
            check((t["trial"], t["stopped_at_rung"]) in decisions, "stop decision event")
        elif t["state"] == "SUCCEEDED":
            eq(t["rung"], top, "a finished trial's rung")
            eq(job["step"], rung_steps[-1], "a finished trial ran the budget")
        else:
            check(t["state"] == "FAILED", "trial %d state %s" % (t["trial"], t["state"]))
    # rung 0 is complete: of n results, at most n // eta + (some promoted early) continue
    at0 = [t for t in b["trials"] if t["rung"] is not None]
    eq(len(at0), trials - len([t for t in b["trials"] if t["state"] == "FAILED" and
                               t["rung"] is None]), "every trial reached rung 0 or failed")
    prom0 = [d for d in evs if d["event"] == "decision" and d["data"]["rung"] == 0 and
             d["data"]["decision"] == "promote"]
    check(1 <= len(prom0) < trials, "rung 0 promoted %d of %d" % (len(prom0), trials))
    check(s["best"]["rung"] == top, "best trial reached the top rung")
    return evs


def test_asha_survives_kill_9_at_a_rung_and_sigterm():
    d = H.Daemon(["--workers", "2", "--metrics_flush_ms", "100", "--max_restarts", "5"]).start()
    try:
        w = d.client()
        body = {"name": "asha", "base": BASE,
                "space": {"lr": [1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.3]},
                "algorithm": "asha", "seed": 7, "trials": 6, "metric": "loss_total",
                "budget": {"steps": 18}, "asha": {"min_resource": 2, "reduction_factor": 3},
                "parallel": 2}
        s = expect(w.post("/v1/sweeps", body), 201).json
        sid = s["id"]
        eq(s["spec"]["asha"], {"min_resource": 2, "reduction_factor": 3}, "asha spec")
        # kill -9 while a trial waits at a rung for its decision
        wait_sweep(w, sid, lambda x: x["counts"]["WAITING"] >= 1, 120, "a trial at a rung")
        d.kill()
        d.start()
        w = d.client()
        # then SIGTERM once another decision was taken
        n0 = sweep(w, sid)["last_event_id"]
        wait_sweep(w, sid, lambda x: x["last_event_id"] > n0 + 2 or x["state"] != "RUNNING", 120,
                   "more events")
        eq(d.stop(), 0, "exit status after SIGTERM")
        d.start()
        w = d.client()
        wait_sweep(w, sid, lambda x: x["state"] != "RUNNING", 240, "the end")
        _asha_checks(w, sid, 6, [2, 6, 18], 3)
        stopped = [t for t in board(w, sid)["trials"] if t["state"] == "STOPPED"]
        check(stopped, "ASHA stopped no trial")
    finally:
        d.cleanup()
