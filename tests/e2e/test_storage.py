"""Storage faults on a small file system the test mounts itself (a tmpfs of
SIZE_MB; we run as root): the disk fills while a job trains -> the job is
PAUSED with error storage_full, submits get 507 insufficient_storage, /readyz
says why, /metrics has the free bytes; a restart on the full disk starts
read-mostly (reads, downloads and encodes work), deleting a job frees the
space and ends that mode, and the resumed job finishes with every step stored
once. min_free_bytes refuses a checkpoint (and then writes) before the disk is
full, and a promotion that would cross it; a backup whose copy would not fit
is refused before it writes. Every state the disk-full run goes through is printed with its time
("# t=...") for the record. Without root or mount(8) the tests are skipped
with the reason."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import dimd_harness as H
from dimd_harness import check, eq, expect

SIZE_MB = 400
MNT = None
SKIP = None
T0 = time.time()

# A SMALL job's checkpoint is ~61 MB (weights and Adam state); metrics flush often
# so a failed write shows up fast.
ARGS = ["--workers", "1", "--metrics_flush_ms", "250", "--index_max_images", "0"]


def setup_module():
    global MNT, SKIP
    MNT = tempfile.mkdtemp(prefix="dimd-storage-")
    if os.geteuid() != 0:
        SKIP = "not root: cannot mount a %d MB tmpfs for the state directory" % SIZE_MB
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % SIZE_MB, "tmpfs", MNT],
                       capture_output=True, text=True)
    if r.returncode != 0:
        SKIP = "mount -t tmpfs failed (%d): %s" % (r.returncode, r.stderr.strip())


def teardown_module():
    H.cleanup_all()  # daemons hold files in the mount
    if MNT and os.path.ismount(MNT):
        subprocess.run(["umount", MNT], check=False)
    if MNT:
        shutil.rmtree(MNT, ignore_errors=True)


def need_mount():
    if SKIP:
        raise H.Skip(SKIP)


def free_bytes():
    st = os.statvfs(MNT)
    return st.f_bavail * st.f_frsize


def note(what):
    """One line of the run's record: time since the module began, free bytes."""
    print("# t=%6.1fs free=%10d  %s" % (time.time() - T0, free_bytes(), what), flush=True)


def fill(leave):
    """Writes a filler file until `leave` bytes are free (or the disk is full)."""
    path = os.path.join(MNT, "filler.%d" % time.time_ns())
    todo = free_bytes() - leave
    block = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        try:
            while todo > 0:
                n = min(todo, len(block))
                f.write(block[:n])
                todo -= n
            f.flush()
        except OSError:
            pass
    return path


def prom(c, name):
    r = expect(c.get("/metrics"), 200)
    m = re.search(r"^%s (\S+)$" % re.escape(name), r.body.decode(), re.M)
    check(m, "/metrics has no %s" % name)
    return float(m.group(1))


def problem_507(r, what):
    expect(r, 507, "insufficient_storage")
    check("bytes free" in r.json["detail"], "%s: 507 detail names no free bytes: %r" % (
        what, r.json["detail"]))


def fresh(name):
    """An empty file system (the previous test's state and fillers go) and the
    state directory NAME on it."""
    need_mount()
    H.cleanup_all()  # a failed test's daemon would keep its deleted files allocated
    for f in os.listdir(MNT):
        p = os.path.join(MNT, f)
        shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    return os.path.join(MNT, name)


def settle():
    """Waits until the free bytes stop moving (a checkpoint's WAL copy reaches
    the database file after its commit)."""
    last = free_bytes()
    for _ in range(100):
        time.sleep(0.1)
        now = free_bytes()
        if now == last:
            return
        last = now


def test_a_failed_write_pauses_the_job_and_resume_finishes_it():
    # a fresh database: its WAL is small, so filling the disk makes the next
    # metrics write fail for real (SQLITE_FULL), not only the next checkpoint
    d = H.Daemon(ARGS + ["--min_free_bytes", "0"], state_dir=fresh("fail")).start()
    c = d.client()
    n = 300
    j = c.submit(dict(H.SMALL, name="d", steps=n, checkpoint_every=n))
    c.wait_step(j["id"], 10, 120)
    filler = fill(0)
    note("job D RUNNING at step %d, checkpoint only at the end; disk filled" % c.job(j["id"])["step"])
    j = c.wait_job(j["id"], lambda x: x["state"] != "RUNNING", 60, "D leaves RUNNING")
    note("job D %s at step %d: %s" % (j["state"], j["step"], j["error"]))
    eq(j["state"], "PAUSED", "D after a metrics write failed")
    eq(j["error"]["code"], "storage_full", "D's error.code")
    check("disk is full" in j["error"]["message"], "D's error names SQLite's failure: %r" % (
        j["error"]["message"]))
    check("gave back" in d.read_stderr(), "no reserve was given back: %s" % d.log_tail())
    problem_507(c.post("/v1/jobs", dict(H.SMALL, steps=10)), "submit after the failed write")
    expect(c.post("/v1/jobs/%d/resume" % j["id"]), 507, "insufficient_storage")
    os.unlink(filler)
    H.wait_until(lambda: c.get("/readyz", token=None).status == 200, 5, "/readyz 200")
    note("filler removed: /readyz 200")
    expect(c.post("/v1/jobs/%d/resume" % j["id"]), 200)
    j = c.wait_state(j["id"], ("SUCCEEDED", "FAILED", "PAUSED", "CANCELLED"), 300)
    note("job D %s at step %d after the resume" % (j["state"], j["step"]))
    eq(j["state"], "SUCCEEDED", "D after the resume (error %r)" % (j["error"],))
    H.check_series(c.full_history(j["id"], "loss_total"), n, "D's loss_total")
    d.stop()


def test_disk_full_pauses_the_job_then_a_restart_and_a_delete_recover():
    state = fresh("full")
    d = H.Daemon(ARGS + ["--min_free_bytes", "0"], state_dir=state).start()
    c = d.client()
    note("daemon up (reserve %d bytes)" % os.path.getsize(os.path.join(state, "reserve")))
    # A: two checkpoints kept, a model version to encode with later
    a = c.submit(dict(H.SMALL, name="a", steps=40, checkpoint_every=20, keep_last=2, keep_best=0))
    a = c.wait_state(a["id"], ("SUCCEEDED", "FAILED"), 180)
    eq(a["state"], "SUCCEEDED", "job A")
    c.promote("fm", a["id"])
    a_ckpts = expect(c.get("/v1/jobs/%d/checkpoints" % a["id"]), 200).json["checkpoints"]
    eq([x["step"] for x in a_ckpts], [20, 40], "job A's checkpoints")
    note("job A SUCCEEDED, 2 checkpoints of %d bytes, promoted to fm v1" % a_ckpts[0]["bytes"])
    # B trains; after its first checkpoint the disk fills to less than one checkpoint
    n = 120
    b = c.submit(dict(H.SMALL, name="b", steps=n, checkpoint_every=20, keep_last=1, keep_best=0))
    c.wait_job(b["id"], lambda j: j["checkpoint_step"] == 20, 180, "B's checkpoint at 20")
    settle()
    note("job B RUNNING, checkpoint at step 20 stored")
    fill(0)
    note("filler written: the disk is full")
    j = c.wait_job(b["id"], lambda j: j["state"] != "RUNNING", 120, "B leaves RUNNING")
    note("job B %s at step %d: %s" % (j["state"], j["step"], j["error"]))
    eq(j["state"], "PAUSED", "job B after the disk filled")
    eq((j["error"] or {}).get("code"), "storage_full", "B's error.code")
    eq(j["checkpoint_step"], 20, "B's checkpoint after the fault (the committed one is kept)")
    # writes refused with a reason, reads answered
    problem_507(c.post("/v1/jobs", dict(H.SMALL, steps=10)), "submit")
    r = c.get("/readyz", token=None)
    problem_507(r, "/readyz")
    note("submit -> 507, /readyz -> 507: %s" % r.json["detail"][:120])
    eq(prom(c, "dimd_storage_degraded"), 1.0, "dimd_storage_degraded")
    fb = prom(c, "dimd_storage_free_bytes")
    check(abs(fb - free_bytes()) <= 2 << 20, "dimd_storage_free_bytes %d vs statvfs %d" % (
        fb, free_bytes()))
    expect(c.post("/v1/jobs/%d/resume" % b["id"]), 507, "insufficient_storage")
    expect(c.get("/v1/jobs/%d" % a["id"]), 200)
    # restart on a full disk
    eq(d.stop(), 0, "exit status of SIGTERM while read-mostly")
    fill(0)
    note("daemon stopped; disk filled to %d bytes free" % free_bytes())
    t = time.time()
    d.start()
    note("daemon restarted on the full disk in %.2fs: %s" % (
        time.time() - t, [l for l in d.read_stdout().splitlines() if "storage" in l]))
    check("read-mostly" in d.read_stdout(), "start-up does not say read-mostly: %s" % d.read_stdout())
    c = d.client()
    problem_507(c.get("/readyz", token=None), "/readyz after the restart")
    eq(c.job(b["id"])["state"], "PAUSED", "B after the restart")
    cp = a_ckpts[0]
    body = expect(c.get(cp["url"]), 200).body
    eq(H.sha256(body), cp["sha256"], "A's checkpoint downloaded read-mostly")
    emb = c.embed("fm", H.fm_png(0))
    eq(len(emb[0]), H.SMALL["y_dim"], "an encode read-mostly")
    problem_507(c.post("/v1/jobs", dict(H.SMALL, steps=10)), "submit after the restart")
    note("read-mostly after the restart: GET, checkpoint download, encode 200; submit 507")
    before = free_bytes()
    expect(c.delete("/v1/jobs/%d" % a["id"]), 204)
    freed = free_bytes() - before
    note("DELETE job A -> 204, %d bytes given back to the file system" % freed)
    check(freed >= a_ckpts[0]["bytes"], "deleting A (2 x %d bytes) freed only %d" % (
        a_ckpts[0]["bytes"], freed))
    H.wait_until(lambda: c.get("/readyz", token=None).status == 200, 5, "/readyz 200 after the delete")
    note("/readyz 200: writes accepted again")
    eq(prom(c, "dimd_storage_degraded"), 0.0, "dimd_storage_degraded after the delete")
    expect(c.post("/v1/jobs/%d/resume" % b["id"]), 200)
    note("job B resumed")
    j = c.wait_state(b["id"], ("SUCCEEDED", "FAILED", "PAUSED", "CANCELLED"), 300)
    note("job B %s at step %d" % (j["state"], j["step"]))
    eq(j["state"], "SUCCEEDED", "B after the resume (error %r)" % (j["error"],))
    eq(j["error"], None, "B's error after it succeeded")
    for k in ("loss_total", "loss_local"):
        H.check_series(c.full_history(b["id"], k), n, "B's %s" % k)
    cps = expect(c.get("/v1/jobs/%d/checkpoints" % b["id"]), 200).json["checkpoints"]
    eq([x["step"] for x in cps], [n], "B's checkpoints (keep_last 1)")
    eq(H.sha256(expect(c.get(cps[0]["url"]), 200).body), cps[0]["sha256"], "B's final checkpoint")
    d.stop()


def test_min_free_bytes_pauses_before_the_disk_is_full():
    state = fresh("min")
    min_free = 250 << 20
    d = H.Daemon(ARGS + ["--min_free_bytes", str(min_free)], state_dir=state).start()
    c = d.client()
    expect(c.get("/readyz", token=None), 200)
    eq(prom(c, "dimd_storage_min_free_bytes"), float(min_free), "dimd_storage_min_free_bytes")
    # 400 MB: the first checkpoint (61 MB in the WAL, 61 MB in the database) fits above
    # 250 MB; the second (61 MB more in the database: the WAL is reused) does not
    j = c.submit(dict(H.SMALL, steps=100, checkpoint_every=20, keep_last=1, keep_best=0))
    j = c.wait_job(j["id"], lambda x: x["state"] != "RUNNING" and x["state"] != "QUEUED", 180,
                   "the job stops")
    eq(j["state"], "PAUSED", "the job once min_free_bytes is near")
    eq(j["error"]["code"], "storage_full", "error.code")
    check("min_free_bytes" in j["error"]["message"], "message %r" % j["error"]["message"])
    eq(j["checkpoint_step"], 20, "the checkpoint that fitted")
    check(free_bytes() >= min_free, "free %d fell below min_free_bytes %d" % (free_bytes(), min_free))
    expect(c.get("/readyz", token=None), 200)  # above min_free_bytes: small writes go on
    # a promotion whose version (~20 MB) would cross min_free_bytes is refused, and is no fault
    filler = fill(min_free + (10 << 20))
    r = expect(c.post("/v1/models", {"name": "m", "job_id": j["id"]}), 507, "insufficient_storage")
    check("was not stored" in r.json["detail"] and "min_free_bytes" in r.json["detail"],
          "promote's 507 detail: %r" % r.json["detail"])
    expect(c.get("/readyz", token=None), 200)
    expect(c.get("/v1/models/m"), 404, "model_not_found")
    os.unlink(filler)
    # below min_free_bytes (but far from full): writes get 507, then come back
    filler = fill(min_free - (20 << 20))
    check(free_bytes() > 100 << 20, "the disk is not nearly full: %d free" % free_bytes())
    H.wait_until(lambda: c.get("/readyz", token=None).status == 507, 5, "/readyz 507")
    problem_507(c.post("/v1/jobs", dict(H.SMALL, steps=10)), "submit below min_free_bytes")
    os.unlink(filler)
    H.wait_until(lambda: c.get("/readyz", token=None).status == 200, 5, "/readyz 200 again")
    c.submit(dict(H.SMALL, steps=1, checkpoint_every=1))
    d.stop()


def test_a_backup_that_would_not_fit_is_refused_before_it_writes():
    d = H.Daemon(ARGS + ["--min_free_bytes", "0"], state_dir=fresh("backup")).start()
    c = d.client()
    j = c.submit(dict(H.SMALL, steps=20, checkpoint_every=20))
    eq(c.wait_state(j["id"], ("SUCCEEDED", "FAILED"), 180)["state"], "SUCCEEDED", "the job")
    settle()
    size = os.path.getsize(os.path.join(d.state_dir, "dimd.db"))
    check(size > 50 << 20, "database of %d bytes (a checkpoint in it)" % size)
    # the copy needs the database's size above the 4 MiB floor: half of it is free
    filler = fill(size // 2)
    r = c.request("POST", "/v1/backup")
    problem_507(r, "backup")
    m = re.search(r"^the backup's copy of the database does not fit: .*needs about ([0-9]+) bytes",
                  r.json["detail"])
    check(m and int(m.group(1)) >= size, "507 detail %r" % r.json["detail"])
    note("POST /v1/backup refused: %s" % r.json["detail"])
    # refused before writing: no copy left beside the database, no fault, writes go on
    eq([f for f in os.listdir(d.state_dir) if ".backup-" in f], [], "temporary copies")
    expect(c.get("/readyz", token=None), 200)
    c.submit(dict(H.SMALL, steps=1, checkpoint_every=1000))
    os.unlink(filler)
    r = expect(c.request("POST", "/v1/backup"), 200)
    check(len(r.body) >= size, "backup of %d bytes for a %d-byte database" % (len(r.body), size))
    d.stop()
