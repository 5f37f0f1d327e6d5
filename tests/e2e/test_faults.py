"""Faults: kill -9 twice at different moments of a run (the job finishes with
every step exactly once and valid checkpoints), the restart limit, SIGTERM
(checkpoint, exit 0, continue after a restart) and a database from a newer
version (refused)."""

import os
import signal
import sqlite3
import time

import dimd_harness as H
from dimd_harness import check, eq, expect

LOSSES = {"loss_local", "loss_prior_enc", "loss_prior_disc", "loss_total"}


def final_checks(c, job, n, restarts, workdir):
    eq(job["state"], "SUCCEEDED", "state (error %r)" % (job["error"],))
    eq((job["step"], job["total_steps"]), (n, n), "step and total_steps")
    eq(job["restarts"], restarts, "restarts")
    sm = {m["key"]: m for m in expect(c.get("/v1/jobs/%d/metrics" % job["id"]), 200).json["metrics"]}
    eq({k for k in sm if k.startswith("loss_")}, LOSSES, "loss keys")
    for k in sorted(LOSSES):
        H.check_series(c.full_history(job["id"], k), n, k)
        eq(sm[k]["count"], n, "%s count" % k)
    cps = expect(c.get("/v1/jobs/%d/checkpoints" % job["id"]), 200).json["checkpoints"]
    check(cps and cps[-1]["step"] == n, "checkpoints %s do not end at step %d" % (
        [x["step"] for x in cps], n))
    png = os.path.join(workdir, "probe.png")
    H.write_png(png, 28, 28, lambda x, y: (x * y) % 256)
    for cp in cps:
        r = expect(c.get(cp["url"]), 200)
        eq(H.sha256(r.body), cp["sha256"], "sha256 of checkpoint %d" % cp["step"])
        path = os.path.join(workdir, "ck-%d.dimdckpt" % cp["step"])
        with open(path, "wb") as f:
            f.write(r.body)
        out = H.encode_with_cli(path, png)
        eq(out["dim"], job["spec"]["y_dim"], "embedding width of checkpoint %d" % cp["step"])
    return cps


def replay_series(events, key):
    """loss series rebuilt from metrics events, applying rewinds."""
    pts = []
    for e in events:
        if e["event"] == "rewind":
            pts = [p for p in pts if p[0] <= e["data"]["step"]]
        elif e["event"] == "metrics":
            pts.extend([p["step"], p["value"], p["wall_ms"]] for p in e["data"]["points"]
                       if p["key"] == key)
    return pts


def test_kill_9_twice_then_the_job_finishes_exactly():
    n = 300
    d = H.Daemon(["--workers", "1", "--max_restarts", "5", "--metrics_flush_ms", "250"]).start()
    c = d.client()
    token = d.token
    # a warm-up and a cosine decay over the run: the resumed attempts take the same rates
    sched = dict(lr=0.0005, lr_schedule="cosine", lr_warmup=60, lr_final=0.01)
    job = c.submit(dict(H.SMALL, name="kill-9", steps=n, checkpoint_every=50, **sched))
    jid = job["id"]
    # 1: between checkpoints
    c.wait_step(jid, 61, timeout=180)
    d.kill()
    d.start()
    eq(d.token, token, "token file after a restart")
    j = c.wait_job(jid, lambda j: j["restarts"] >= 1, 30, "restarts counted")
    eq(j["restarts"], 1, "restarts after the first kill -9")
    check(j["state"] in ("QUEUED", "RUNNING"), "state after restart: %s" % j["state"])
    check(j["checkpoint_step"] is not None and j["checkpoint_step"] >= 50,
          "checkpoint_step %r after the first kill" % j["checkpoint_step"])
    # 2: just after a checkpoint event
    j = c.wait_job(jid, lambda j: (j["checkpoint_step"] or 0) >= 100, 180, "checkpoint at 100")
    seen = j["checkpoint_step"]
    s = c.events(jid, timeout=120)
    killed_at = None
    while True:
        e = s.next()
        check(e is not None, "stream ended before a new checkpoint")
        if e["event"] == "checkpoint" and e["data"]["step"] > seen:
            d.kill()
            killed_at = e["data"]["step"]
            break
    s.close()
    check(killed_at < n, "the job reached the end before the second kill")
    d.start()
    j = c.wait_job(jid, lambda j: j["restarts"] >= 2, 30, "restarts counted")
    eq(j["restarts"], 2, "restarts after the second kill -9")
    eq(j["checkpoint_step"], killed_at, "checkpoint_step after a kill right after checkpoint %d" % killed_at)
    done = c.wait_state(jid, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    final_checks(c, done, n, 2, d.workdir)
    eq(done["attempts"], 3, "attempts")
    s = c.events(jid)
    events = s.read_all()
    s.close()
    H.check_event_ids(events, "events")
    rewinds = [e["data"]["step"] for e in events if e["event"] == "rewind"]
    check(rewinds and rewinds[0] >= 50 and rewinds[0] % 50 == 0,
          "rewind events %s (expected one to the checkpoint before the first kill)" % rewinds)
    states = [e["data"]["state"] for e in events if e["event"] == "state"]
    eq(states[-1], "SUCCEEDED", "last state event")
    replay = replay_series(events, "loss_total")
    stored = c.full_history(jid, "loss_total")
    eq([(p[0], p[2]) for p in replay], [(p[0], p[2]) for p in stored],
       "loss_total steps and wall times rebuilt from events (with rewinds) vs stored")
    diff = [(a, b) for a, b in zip(replay, stored) if a[1] != b[1]]
    check(not diff, "%d loss_total values from events differ from the stored history, e.g. %s vs %s" % (
        len(diff), diff[0][0] if diff else None, diff[0][1] if diff else None))
    lrs = c.full_history(jid, "lr")
    eq([p[0] for p in lrs], list(range(1, n + 1)), "lr points: one per step across the kills")
    check(lrs[0][1] < lrs[59][1] and lrs[-1][1] < lrs[60][1] / 20,
          "lr: warm-up to step 60, then decay (%r, %r, %r, %r)" % (
              lrs[0][1], lrs[59][1], lrs[60][1], lrs[-1][1]))
    eq([p[1] for p in replay_series(events, "lr")], [p[1] for p in lrs],
       "lr values rebuilt from events (with rewinds) vs stored")
    # nothing lost: the same job run without interruption ends with the same bytes
    # (resume is bitwise exact for a given thread count)
    again = c.submit(dict(H.SMALL, name="uninterrupted", steps=n, checkpoint_every=50, **sched))
    again = c.wait_state(again["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    eq(again["state"], "SUCCEEDED", "the uninterrupted run")
    last = lambda jid_: expect(c.get("/v1/jobs/%d/checkpoints" % jid_), 200).json["checkpoints"][-1]
    eq(last(jid)["sha256"], last(again["id"])["sha256"],
       "final checkpoint after two kill -9 vs an uninterrupted run")
    d.stop()


def test_restart_limit_fails_the_job():
    d = H.Daemon(["--workers", "1", "--max_restarts", "0", "--metrics_flush_ms", "250"]).start()
    c = d.client()
    job = c.submit(dict(H.SMALL, steps=100000, checkpoint_every=20))
    c.wait_step(job["id"], 10, timeout=180)
    d.kill()
    d.start()
    j = c.wait_state(job["id"], ("FAILED", "SUCCEEDED", "CANCELLED"), timeout=60)
    eq(j["state"], "FAILED", "state after a restart with max_restarts 0")
    check(j["error"] is not None, "no error on a FAILED job")
    eq(j["error"]["code"], "restart_limit", "error.code")
    check(j["error"]["message"], "empty error message")
    check(j["finished_at"] is not None, "finished_at unset")
    time.sleep(0.5)
    eq(c.job(job["id"])["state"], "FAILED", "state stays FAILED")
    expect(c.post("/v1/jobs/%d/resume" % job["id"]), 409, "invalid_transition")
    s = c.events(job["id"])
    events = s.read_all()
    s.close()
    last = [e["data"] for e in events if e["event"] == "state"][-1]
    eq(last["state"], "FAILED", "last state event")
    eq((last["error"] or {}).get("code"), "restart_limit", "error in the FAILED state event")
    d.stop()


SIGTERM_DIR = None


def test_sigterm_checkpoints_exits_0_and_the_job_continues():
    global SIGTERM_DIR
    n = 200
    d = H.Daemon(["--workers", "1", "--metrics_flush_ms", "250"]).start()
    c = d.client()
    job = c.submit(dict(H.SMALL, name="sigterm", steps=n, checkpoint_every=1000))
    jid = job["id"]
    c.wait_step(jid, 40, timeout=180)
    t0 = time.time()
    d.signal(signal.SIGTERM)
    rc = d.wait(60)
    if rc is None:
        d.kill()
    eq(rc, 0, "exit status after SIGTERM")
    took = time.time() - t0
    check(took < 30 * H.SCALE, "SIGTERM took %.1fs" % took)
    SIGTERM_DIR = d.state_dir
    d.start()
    j = c.job(jid)
    eq(j["restarts"], 0, "restarts after SIGTERM")
    check(j["checkpoint_step"] is not None and 40 <= j["checkpoint_step"] < n,
          "checkpoint_step %r after SIGTERM" % j["checkpoint_step"])
    stop_step = j["checkpoint_step"]
    done = c.wait_state(jid, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    cps = final_checks(c, done, n, 0, d.workdir)
    eq([x["step"] for x in cps], [stop_step, n], "checkpoints: the SIGTERM one and the last")
    eq(done["attempts"], 2, "attempts")
    s = c.events(jid)
    events = s.read_all()
    s.close()
    eq([e for e in events if e["event"] == "rewind"], [], "rewind events after a clean stop")
    trans = [(e["data"]["previous"], e["data"]["state"]) for e in events if e["event"] == "state"]
    check(("RUNNING", "QUEUED") in trans, "no RUNNING -> QUEUED event at the stop: %s" % trans)
    i = next(k for k, e in enumerate(events) if e["event"] == "state" and
             e["data"]["state"] == "QUEUED" and e["data"]["previous"] == "RUNNING")
    before = [e for e in events[:i] if e["event"] == "checkpoint"]
    check(before and before[-1]["data"]["step"] == stop_step,
          "the checkpoint before the stop is not at step %d" % stop_step)
    rc = d.stop()
    eq(rc, 0, "exit status of the second SIGTERM")


def test_newer_database_is_refused():
    check(SIGTERM_DIR is not None, "no stopped state directory from the SIGTERM test")
    db = os.path.join(SIGTERM_DIR, "dimd.db")
    check(os.path.exists(db), "no %s" % db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version=99")
    con.commit()
    con.close()
    d = H.Daemon(["--workers", "1"], state_dir=SIGTERM_DIR)
    d.spawn()
    rc = d.wait(30)
    if rc is None:
        d.kill()
    check(rc is not None and rc != 0, "exit status %r with a newer database" % rc)
    out = d.read_stdout() + d.read_stderr()
    check("99" in out, "the message does not name version 99: %s" % H.short(out))
    check("listening on" not in out, "the daemon listened with a newer database")
