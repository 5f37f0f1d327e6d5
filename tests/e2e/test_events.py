"""Server-Sent Events: the live stream of a job (state, metrics, checkpoint
events with increasing ids, every event's data valid against its schema),
reconnects with Last-Event-ID and ?last_event_id= (no gap, no duplicate),
the events agree with the stored metrics and checkpoints, heartbeats."""

import time

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
E = None
N = 120
LIVE = None  # events read live, across a reconnect
FULL = None  # a full read after the job ended


def setup_module():
    global D, W, E
    D = H.Daemon(["--workers", "1", "--sse_heartbeat_s", "1", "--metrics_flush_ms", "300"]).start()
    W = D.client()
    E = W.submit(dict(H.SMALL, steps=N, checkpoint_every=40))


def key(e):
    return (e["id"], e["event"], e["raw"])


def test_live_stream_with_a_reconnect_in_the_middle():
    global LIVE
    s = W.events(E["id"])
    check(s.status == 200, "events: %s" % s.error)
    first = []
    while True:
        e = s.next()
        check(e is not None, "stream ended before 3 metrics events: %s" % [x["event"] for x in first])
        first.append(e)
        if sum(1 for x in first if x["event"] == "metrics") >= 3:
            break
    s.close()
    job = W.job(E["id"])
    check(job["state"] == "RUNNING" and job["step"] < N,
          "the job is no longer running mid-stream (state %s step %d); the reconnect is not "
          "in the middle" % (job["state"], job["step"]))
    s2 = W.events(E["id"], last_event_id=first[-1]["id"], timeout=120)
    check(s2.status == 200, "events after Last-Event-ID: %s" % s2.error)
    rest = s2.read_all()
    s2.close()
    check(rest, "nothing after the reconnect")
    check(rest[0]["id"] > first[-1]["id"], "first event after the reconnect has id %d <= %d" % (
        rest[0]["id"], first[-1]["id"]))
    LIVE = first + rest
    H.check_event_ids(LIVE, "live events")
    eq(W.job(E["id"])["state"], "SUCCEEDED", "state once the stream ended")


def test_full_read_equals_the_live_read():
    global FULL
    check(LIVE is not None, "no live read")
    s = W.events(E["id"])
    FULL = s.read_all()
    s.close()
    check(FULL, "empty full read")
    H.check_event_ids(FULL, "full read")
    eq([key(e) for e in FULL], [key(e) for e in LIVE], "full read vs live read with a reconnect")


def test_stream_shows_states_metrics_and_checkpoints():
    check(FULL, "no full read")
    states = [(e["data"]["previous"], e["data"]["state"]) for e in FULL if e["event"] == "state"]
    check(("QUEUED", "RUNNING") in states, "no QUEUED -> RUNNING state event: %s" % states)
    eq(states[-1], ("RUNNING", "SUCCEEDED"), "last state event")
    eq(FULL[-1]["event"], "state", "the last event is the terminal state")
    i_run = next(i for i, e in enumerate(FULL) if e["event"] == "state" and e["data"]["state"] == "RUNNING")
    check(all(e["event"] == "state" for e in FULL[:i_run]), "events before RUNNING")
    for e in FULL:
        if e["event"] == "state":
            eq(e["data"]["error"], None, "error in state event %d" % e["id"])
    eq([e for e in FULL if e["event"] == "rewind"], [], "rewind events in an undisturbed run")
    cps = [e["data"] for e in FULL if e["event"] == "checkpoint"]
    eq([c["step"] for c in cps], [40, 80, 120], "checkpoint events")
    listed = {c["step"]: c for c in expect(W.get("/v1/jobs/%d/checkpoints" % E["id"]), 200).json["checkpoints"]}
    for c in cps:
        eq(c["sha256"], listed[c["step"]]["sha256"], "sha256 of checkpoint event %d" % c["step"])
        eq(c["bytes"], listed[c["step"]]["bytes"], "bytes of checkpoint event %d" % c["step"])


def test_metrics_events_carry_exactly_the_stored_points():
    check(FULL, "no full read")
    series = {}
    for e in FULL:
        if e["event"] == "metrics":
            for p in e["data"]["points"]:
                series.setdefault(p["key"], []).append([p["step"], p["value"], p["wall_ms"]])
    check("loss_total" in series, "no loss_total in metrics events")
    bad = []
    for k, pts in sorted(series.items()):
        stored = W.full_history(E["id"], k)
        if pts != stored:
            diff = next((i for i, (a, b) in enumerate(zip(pts, stored)) if a != b), min(len(pts), len(stored)))
            bad.append("%s: %d points from events vs %d stored, first difference at #%d: %s vs %s" % (
                k, len(pts), len(stored), diff, pts[diff] if diff < len(pts) else None,
                stored[diff] if diff < len(stored) else None))
    check(not bad, "; ".join(bad))
    H.check_series(series["loss_total"], N, "loss_total from events")
    eq(sorted(series), sorted(m["key"] for m in expect(W.get("/v1/jobs/%d/metrics" % E["id"]), 200).json["metrics"]),
       "metric keys in events vs summary")


def test_resume_with_last_event_id_query_and_header():
    check(FULL and len(FULL) > 6, "no full read")
    for cut in (0, len(FULL) // 3, len(FULL) // 2, len(FULL) - 2):
        after = FULL[cut]["id"]
        want = [key(e) for e in FULL[cut + 1:]]
        s = W.events(E["id"], last_event_id=after)
        got = [key(e) for e in s.read_all()]
        s.close()
        eq(got, want, "events after Last-Event-ID %d" % after)
        s = W.events(E["id"], query={"last_event_id": after})
        got = [key(e) for e in s.read_all()]
        s.close()
        eq(got, want, "events after ?last_event_id=%d" % after)
    s = W.events(E["id"], last_event_id=FULL[-1]["id"])
    eq(s.read_all(), [], "events after the last one of a finished job")
    s.close()


def test_events_of_an_unknown_job():
    s = W.events(987654)
    eq(s.status, 404, "status")
    eq(s.error.code, "job_not_found", "code")


def test_heartbeat_comments():
    job = W.submit(dict(H.SMALL, steps=100000, checkpoint_every=100000))
    s = None
    try:
        # a paused job is silent: only heartbeats flow
        expect(W.post("/v1/jobs/%d/pause" % job["id"]), 200)
        W.wait_state(job["id"], "PAUSED", timeout=60)
        time.sleep(1.0)  # a running job's pause checkpoint lands before silence
        s = W.events(job["id"], timeout=10)
        check(s.status == 200, "events: %s" % s.error)
        t0 = time.time()
        arrivals = []
        deadline = t0 + 3.6 * H.SCALE
        while True:
            e = s.next(deadline=deadline)
            if e is None or e == H.DEADLINE:
                break
            arrivals.append((time.time(), e["event"]))
        beats = [t for t, line in s.comments if line.strip() == ": heartbeat"]
        check(len(beats) >= 2, "%d heartbeat comments in %.1fs with sse_heartbeat_s 1 (comments %s)" % (
            len(beats), time.time() - t0, [line for _, line in s.comments][:5]))
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        check(all(0.5 <= g <= 2.5 * H.SCALE for g in gaps), "heartbeat gaps %s" % gaps)
        late = [ev for t, ev in arrivals if t > beats[0]]
        eq(late, [], "events of a paused job after the first heartbeat")
    finally:
        if s is not None:
            s.close()
        W.post("/v1/jobs/%d/cancel" % job["id"])
