"""Data-parallel jobs ("ranks": 2): the daemon starts real `mpirun -np 2` on
loopback (Open MPI from Debian; as root with OMPI_ALLOW_RUN_AS_ROOT and its
confirmation in the environment, as tests/cli/test_dist.sh runs it). A 2-rank
job trains to the end with the metrics, events and checkpoints of a one-rank
job of the same spec, plus its ranks and hosts, is promoted and encodes; the
422s of bad ranks; a pause, a resume and a cancel leave no rank process (the
process table is read); kill -9 of a rank is a restart that resumes from the
latest checkpoint and ends with the uninterrupted run's final checkpoint byte
for byte; kill -9 of the daemon takes mpirun and the ranks with it, SIGTERM
stops them after a checkpoint, and the job resumes at the next start."""

import os
import signal
import time

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
N = 60  # steps of the jobs that finish
SPEC = dict(H.SMALL, steps=N, checkpoint_every=20, ranks=2)
REF = {}  # the uninterrupted 2-rank job: id, final checkpoint bytes


def setup_module():
    global D, W
    os.environ["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    os.environ["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    D = daemon()
    W = D.client()


def daemon(extra=()):
    return H.Daemon(["--workers", "1", "--max_ranks", "2", "--max_restarts", "3",
                     "--metrics_flush_ms", "250"] + list(extra)).start()


def rank_processes():
    """(pid, argv) of every mpirun running this dimd and every `dimd rank` of it."""
    exe = os.path.realpath(H.DIMD)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv:
            continue  # a zombie
        ours = (os.path.basename(argv[0]) == "mpirun" and exe in argv) or \
               (os.path.realpath(argv[0]) == exe and argv[1:2] == ["rank"])
        if ours:
            found.append((int(pid), argv))
    return found


def ranks_only():
    return [p for p, a in rank_processes() if a[1:2] == ["rank"]]


def wait_no_processes(what, timeout=20):
    deadline = time.time() + timeout * H.SCALE
    while time.time() < deadline:
        left = rank_processes()
        if not left:
            return
        time.sleep(0.1)
    raise H.Failure("%s: processes left: %s" % (what, [(p, " ".join(a)[:120]) for p, a in left]))


def wait_ranks(n, timeout=60):
    H.wait_until(lambda: len(ranks_only()) == n, timeout, "%d rank processes" % n)
    return ranks_only()


def summary(c, jid):
    return {m["key"]: m for m in expect(c.get("/v1/jobs/%d/metrics" % jid), 200).json["metrics"]}


def checkpoints(c, jid):
    return expect(c.get("/v1/jobs/%d/checkpoints" % jid), 200).json["checkpoints"]


def final_bytes(c, jid):
    cps = checkpoints(c, jid)
    check(cps and cps[-1]["step"] == N, "checkpoints %s do not end at %d" % (
        [x["step"] for x in cps], N))
    r = expect(c.get(cps[-1]["url"]), 200)
    eq(H.sha256(r.body), cps[-1]["sha256"], "sha256 of the final checkpoint")
    return r.body


def every_step_once(c, jid, n):
    for k in ("loss_local", "loss_total"):
        H.check_series(c.full_history(jid, k), n, k)


def test_two_rank_job_runs_like_a_one_rank_job():
    j2 = W.submit(dict(SPEC, name="two"))
    eq((j2["ranks"], j2["hosts"], j2["spec"]["ranks"]), (2, None, 2), "ranks and hosts queued")
    wait_ranks(2)
    j2 = W.wait_state(j2["id"], ("SUCCEEDED", "FAILED"), timeout=180)
    eq(j2["state"], "SUCCEEDED", "2-rank job (error %r)" % (j2["error"],))
    wait_no_processes("after the 2-rank job")
    eq((j2["step"], j2["total_steps"], j2["restarts"], j2["ranks"]), (N, N, 0, 2),
       "step, total_steps, restarts, ranks")
    host = os.uname().nodename
    eq(j2["hosts"], [host, host], "hosts")
    j1 = W.submit(dict(SPEC, name="one", ranks=1))
    eq(j1["ranks"], 1, "ranks of a one-rank job")
    j1 = W.wait_state(j1["id"], ("SUCCEEDED", "FAILED"), timeout=180)
    eq(j1["state"], "SUCCEEDED", "1-rank job")
    eq(j1["hosts"], None, "hosts of a job that ran in the daemon")
    # the same metric keys, a point per step, the same checkpoints
    s1, s2 = summary(W, j1["id"]), summary(W, j2["id"])
    eq(sorted(s2), sorted(s1), "metric keys of the 2-rank job vs the 1-rank job")
    for k in s2:
        if k.startswith("loss_"):
            eq(s2[k]["count"], N, "%s count" % k)
    every_step_once(W, j2["id"], N)
    check(s2["images_per_second"]["last"] > 0, "images_per_second %r" % s2["images_per_second"])
    c1, c2 = checkpoints(W, j1["id"]), checkpoints(W, j2["id"])
    eq([c["step"] for c in c2], [c["step"] for c in c1], "checkpoint steps")
    eq([sorted(c) for c in c2], [sorted(c) for c in c1], "checkpoint fields")
    eq([sorted(c["metrics"]) for c in c2], [sorted(c["metrics"]) for c in c1],
       "checkpoint metrics")
    eq([c["bytes"] for c in c2], [c["bytes"] for c in c1], "checkpoint sizes (one format)")
    # the same first loss, up to the order of float sums (N x B/N = 1 x B); later steps
    # drift (Adam turns ~1e-8 gradient differences into lr-sized moves at this lr:
    # tests/cli/test_dist.sh checks 30 steps at a small lr)
    h1, h2 = W.full_history(j1["id"], "loss_total"), W.full_history(j2["id"], "loss_total")
    print("# loss_total, steps 1-3, 1 rank vs 2 ranks: %s" % [
        (p[0], p[1], q[1]) for p, q in list(zip(h1, h2))[:3]])
    a, b = h1[0][1], h2[0][1]
    check(abs(a - b) <= 1e-6 * abs(a), "loss_total at step 1: 1 rank %r, 2 ranks %r" % (a, b))
    for (s, a, _), (_, b, _) in zip(h1, h2):
        check(abs(a - b) <= 0.05 * abs(a), "loss_total at step %d: 1 rank %r, 2 ranks %r"
              % (s, a, b))
    # the event stream: the same kinds, metric points for every step
    e1, e2 = W.events(j1["id"]).read_all(), W.events(j2["id"]).read_all()
    eq(sorted({e["event"] for e in e2}), sorted({e["event"] for e in e1}), "event kinds")
    eq([e["data"]["step"] for e in e2 if e["event"] == "checkpoint"], [20, 40, 60],
       "checkpoint events")
    steps = {p["step"] for e in e2 if e["event"] == "metrics" for p in e["data"]["points"]
             if p["key"] == "loss_total"}
    eq(steps, set(range(1, N + 1)), "loss_total steps in the events")
    eq(e2[-1]["event"], "state", "last event")
    eq(e2[-1]["data"]["state"], "SUCCEEDED", "last state event")
    REF["id"] = j2["id"]
    REF["final"] = final_bytes(W, j2["id"])
    # promoted, it encodes; `dimd encode` loads the checkpoint
    v = W.promote("ranks", j2["id"])
    png = H.fm_png(0)
    emb = W.embed("ranks", png)
    eq((len(emb), len(emb[0])), (1, SPEC["y_dim"]), "embedding shape of the promoted version")
    path = os.path.join(D.workdir, "two.dimdckpt")
    with open(path, "wb") as f:
        f.write(REF["final"])
    img = os.path.join(D.workdir, "img.png")
    with open(img, "wb") as f:
        f.write(png)
    out = H.encode_with_cli(path, img)
    eq(out["dim"], SPEC["y_dim"], "`dimd encode` of the 2-rank checkpoint")
    H.close(out["embedding"], emb[0], "embedding: daemon's promoted version vs dimd encode", 1e-4)
    check(v["version"] == "v1", "version %r" % v["version"])


def test_bad_ranks_get_422_with_paths():
    cases = [
        ({"ranks": 4}, ["$.ranks"], "max_ranks"),
        ({"ranks": 2, "batch": 9}, ["$.ranks"], "split"),
        ({"ranks": "2"}, ["$.ranks"], "integer"),
        ({"ranks": 0}, ["$.ranks"], "range"),
        ({"ranks": 1.5}, ["$.ranks"], "integer"),
        ({"ranks": 3, "batch": 9, "lr": "x"}, ["$.ranks", "$.lr"], None),
    ]
    for body, paths, word in cases:
        r = expect(W.post("/v1/jobs", dict(H.SMALL, **body)), 422, "validation_failed")
        got = sorted(set(e["path"] for e in r.json["errors"]))
        eq(got, sorted(paths), "paths of %r" % body)
        msg = " / ".join(e["message"] for e in r.json["errors"] if e["path"] == "$.ranks")
        check(word is None or word in msg, "message %r of %r does not say %r" % (msg, body, word))
    # 4 ranks with batch 9: the split, and the limit, both at $.ranks
    r = expect(W.post("/v1/jobs", dict(H.SMALL, ranks=4, batch=9)), 422, "validation_failed")
    msgs = " / ".join(e["message"] for e in r.json["errors"])
    check("split" in msgs and "max_ranks" in msgs, "messages %r" % msgs)
    schema = expect(W.get("/v1/job-schema"), 200).json["fields"]
    f = [x for x in schema if x["name"] == "ranks"]
    eq((len(f), f[0]["default"], f[0]["minimum"]), (1, 1, 1), "ranks in /v1/job-schema")


def test_pause_resume_cancel_leave_no_rank():
    j = W.submit(dict(H.SMALL, name="long", steps=100000, checkpoint_every=100000, ranks=2))
    jid = j["id"]
    W.wait_step(jid, 5, timeout=120)
    check(len(wait_ranks(2)) == 2, "two ranks while running")
    r = expect(W.post("/v1/jobs/%d/pause" % jid), 200).json
    j = W.wait_job(jid, lambda x: x["state"] == "PAUSED" and x["checkpoint_step"] is not None,
                   60, "paused with a checkpoint")
    wait_no_processes("after the pause")
    eq(j["checkpoint_step"], j["step"], "the pause checkpoint is of the last step")
    paused_at = j["step"]
    expect(W.post("/v1/jobs/%d/resume" % jid), 200)
    W.wait_step(jid, paused_at + 5, timeout=120)
    wait_ranks(2)
    r = expect(W.post("/v1/jobs/%d/cancel" % jid), 200).json
    eq(r["state"], "CANCELLED", "cancel")
    wait_no_processes("after the cancel")
    step = W.job(jid)["step"]
    time.sleep(1)
    eq(W.job(jid)["step"], step, "no writes after CANCELLED")
    every_step_once(W, jid, step)


def test_kill_9_of_a_rank_resumes_from_the_checkpoint():
    j = W.submit(dict(SPEC, name="rank-killed"))
    jid = j["id"]
    W.wait_step(jid, 25, timeout=120)
    victim = ranks_only()[-1]
    os.kill(victim, signal.SIGKILL)
    j = W.wait_job(jid, lambda x: x["restarts"] >= 1, 60, "restart counted")
    eq(j["restarts"], 1, "restarts after a rank died")
    check(j["checkpoint_step"] in (20, 40), "checkpoint_step %r" % j["checkpoint_step"])
    j = W.wait_state(jid, ("SUCCEEDED", "FAILED"), timeout=180)
    eq(j["state"], "SUCCEEDED", "state after the restart (error %r)" % (j["error"],))
    eq((j["restarts"], j["attempts"]), (1, 2), "restarts and attempts")
    wait_no_processes("after the resumed job")
    every_step_once(W, jid, N)
    # resumed from its checkpoint with the same ranks and threads: the uninterrupted run's bytes
    check(final_bytes(W, jid) == REF["final"],
          "final checkpoint differs from the uninterrupted 2-rank job's")
    check(victim not in ranks_only(), "the killed rank is back")


def test_kill_9_and_sigterm_of_the_daemon():
    d = daemon()
    c = d.client()
    j = c.submit(dict(SPEC, name="daemon-killed"))
    jid = j["id"]
    c.wait_step(jid, 25, timeout=120)
    check(len(wait_ranks(2)) == 2, "ranks before the kill")
    d.kill()
    wait_no_processes("after kill -9 of the daemon", timeout=10)
    d.start()
    j = c.wait_job(jid, lambda x: x["restarts"] >= 1 and x["state"] == "RUNNING" and
                   x["step"] >= 45, 120, "resumed past step 45")
    eq(j["restarts"], 1, "restarts after kill -9 of the daemon")
    # SIGTERM: the ranks stop at a step, its checkpoint is stored, the job is QUEUED
    eq(d.stop(), 0, "exit status of SIGTERM")
    wait_no_processes("after SIGTERM of the daemon", timeout=10)
    d.start()
    j = c.job(jid)
    check(j["checkpoint_step"] is not None and j["checkpoint_step"] >= 45,
          "checkpoint_step %r after SIGTERM" % j["checkpoint_step"])
    j = c.wait_state(jid, ("SUCCEEDED", "FAILED"), timeout=180)
    eq(j["state"], "SUCCEEDED", "state after the restarts (error %r)" % (j["error"],))
    eq(j["restarts"], 1, "restarts (SIGTERM is no crash)")
    every_step_once(c, jid, N)
    check(final_bytes(c, jid) == REF["final"],
          "final checkpoint differs from the uninterrupted 2-rank job's")
    d.stop()
    wait_no_processes("at the end")


def teardown_module():
    H.cleanup_all()
