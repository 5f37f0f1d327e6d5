"""Backup and integrity: a backup taken mid-training, over HTTP (POST
/v1/backup) and with `dimd backup` while the daemon runs, restored into a new
state directory, passes `dimd check`; a daemon started on it resumes the job
from the backed-up checkpoint and ends with the same final checkpoint, byte
for byte, as the run that was never interrupted. `dimd check` fails, naming
the problem, on a checkpoint with one byte flipped on disk and on a damaged
b-tree page."""

import os
import shutil
import sqlite3
import subprocess
import time

import dimd_harness as H
from dimd_harness import check, eq, expect

N = 200          # steps of the job
EVERY = 40       # checkpoint_every
D = None         # the daemon the backups are taken from
JOB = None       # its job, once SUCCEEDED
REF_SHA = None   # the sha256 of its final checkpoint
BACKUPS = {}     # "route" / "cli" -> (path, copy_facts(...))
RESTORED = None  # a state directory restored from the route's backup, after its run


def dimd(*args):
    p = subprocess.run([H.DIMD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300 * H.SCALE)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def copy_facts(path, jid):
    """From a backup file: the job's newest checkpoint step, its state and
    step, and the newest event id."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        ck = db.execute("SELECT MAX(step) FROM checkpoints WHERE job_id = ?", (jid,)).fetchone()[0]
        state, step = db.execute("SELECT state, step FROM jobs WHERE id = ?", (jid,)).fetchone()
        last_event = db.execute("SELECT MAX(id) FROM events").fetchone()[0]
    finally:
        db.close()
    return {"checkpoint": ck, "state": state, "step": step, "last_event": last_event}


def last_checkpoint(c, jid):
    return expect(c.get("/v1/jobs/%d/checkpoints" % jid), 200).json["checkpoints"][-1]


def setup_module():
    global D, JOB
    D = H.Daemon(["--workers", "1", "--metrics_flush_ms", "250"]).start()
    c = D.client()
    job = c.submit(dict(H.SMALL, name="backed-up", steps=N, checkpoint_every=EVERY, keep_last=2,
                        keep_best=0))
    jid = job["id"]
    # between two checkpoints, so the restored job has steps to rewind
    c.wait_job(jid, lambda j: (j["checkpoint_step"] or 0) >= EVERY and
               j["step"] > j["checkpoint_step"], 180, "steps after the first checkpoint")
    # over HTTP, while the job trains
    r = c.request("POST", "/v1/backup")
    expect(r, 200)
    route = os.path.join(D.workdir, "route-backup.db")
    with open(route, "wb") as f:
        f.write(r.body)
    check(r.body[:16] == b"SQLite format 3\0", "the backup does not start as a SQLite file")
    eq(len(r.body), int(r.header("Content-Length")), "Content-Length")
    check(r.header("Content-Disposition").startswith('attachment; filename="dimd-backup-'),
          "Content-Disposition %r" % r.header("Content-Disposition"))
    eq(len(r.body) % 4096, 0, "backup size in whole pages")
    eq(int(r.header("X-Backup-Pages")), len(r.body) // 4096, "X-Backup-Pages")
    BACKUPS["route"] = (route, copy_facts(route, jid))
    # with the CLI, while the job still trains
    cli = os.path.join(D.workdir, "cli-backup.db")
    rc, out, err = dimd("backup", "--state_dir", D.state_dir, "--out", cli)
    eq(rc, 0, "dimd backup exit status (stderr %r)" % err)
    check(out.startswith("dimd backup: ") and " pages of 4096 bytes" in out,
          "dimd backup output %r" % out)
    eq(oct(os.stat(cli).st_mode & 0o777), oct(0o600), "mode of the backup file")
    BACKUPS["cli"] = (cli, copy_facts(cli, jid))
    JOB = c.wait_state(jid, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    global REF_SHA
    REF_SHA = last_checkpoint(c, jid)["sha256"]
    D.stop()


def test_backups_were_taken_mid_training():
    for which, (path, f) in sorted(BACKUPS.items()):
        eq(f["state"], "RUNNING", "%s backup: the job's state in the copy" % which)
        check(f["checkpoint"] is not None and EVERY <= f["checkpoint"] < N,
              "%s backup: checkpoint step %r in the copy (expected one before the end)" % (
                  which, f["checkpoint"]))
        check(f["checkpoint"] <= f["step"] < N, "%s backup: job step %d in the copy" % (
            which, f["step"]))
    eq(JOB["state"], "SUCCEEDED", "the job on the original daemon")
    eq(JOB["restarts"], 0, "restarts on the original daemon (the backups did not disturb it)")


def restore(path):
    """A new state directory holding the backup as its database, and the user's
    token file (the tokens are in the backup)."""
    state = os.path.join(D.workdir, "restored-%d" % int(time.time() * 1e6))
    os.mkdir(state, 0o700)
    shutil.copyfile(path, os.path.join(state, "dimd.db"))
    shutil.copyfile(D.token_file, os.path.join(state, "token"))
    return state


def test_check_passes_on_both_backups():
    for which, (path, f) in sorted(BACKUPS.items()):
        st = restore(path)
        rc, out, err = dimd("check", "--state_dir", st)
        eq(rc, 0, "%s backup: dimd check exit status (stdout %r, stderr %r)" % (which, out, err))
        check("1 jobs, " in out and ": 0 problems" in out and "problem:" not in out,
              "%s backup: dimd check output %r" % (which, out))
        shutil.rmtree(st)


def test_restored_backup_resumes_the_job_and_ends_the_same():
    global RESTORED
    path, f = BACKUPS["route"]
    ck = f["checkpoint"]
    RESTORED = restore(path)
    d = H.Daemon(["--workers", "1", "--metrics_flush_ms", "250"], state_dir=RESTORED,
                 workdir=os.path.join(D.workdir, "restored-run"))
    os.mkdir(d.workdir)
    d.start()
    c = d.client()
    eq(d.token, D.token, "the token file kept by the user")
    out = d.read_stdout()
    check("1 job(s) back in the queue" in out, "recovery line missing from %r" % H.short(out))
    jid = JOB["id"]
    done = c.wait_state(jid, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=300)
    eq(done["state"], "SUCCEEDED", "state after the restore (error %r)" % (done["error"],))
    eq(done["restarts"], 1, "restarts (the copy's RUNNING job was interrupted once)")
    eq(done["attempts"], 2, "attempts")
    eq((done["step"], done["total_steps"]), (N, N), "step and total_steps")
    H.check_series(c.full_history(jid, "loss_total"), N, "loss_total after the restore")
    s = c.events(jid)
    events = s.read_all()
    s.close()
    H.check_event_ids(events, "events")
    after = [e for e in events if e["id"] > f["last_event"]]
    check(after, "no events after the copy's last one")
    # it resumed from the backed-up checkpoint: rewound to it (when the copy had
    # steps after it), and its next checkpoint is the one after it
    rewinds = [e["data"]["step"] for e in after if e["event"] == "rewind"]
    eq(rewinds, [ck] if f["step"] > ck else [], "rewind events after the restore")
    cks = [e["data"]["step"] for e in after if e["event"] == "checkpoint"]
    eq(cks[:1], [min(ck + EVERY, N)], "first checkpoint after the restore")
    eq(cks[-1], N, "last checkpoint after the restore")
    eq(last_checkpoint(c, jid)["sha256"], REF_SHA,
       "final checkpoint after the restore vs the uninterrupted run")
    d.stop()


def flip_checkpoint_byte(db_path, step):
    """Flips one byte of the checkpoint at `step` in the database file itself
    (found by its bytes), below SQLite: it cannot tell."""
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    blob = db.execute("SELECT data FROM checkpoints WHERE step = ?", (step,)).fetchone()[0]
    db.close()
    with open(db_path, "rb") as f:
        raw = f.read()
    probe = blob[len(blob) // 2:len(blob) // 2 + 64]
    at = raw.find(probe)
    check(at > 0 and raw.find(probe, at + 1) < 0, "checkpoint bytes not found once in the file")
    with open(db_path, "r+b") as f:
        f.seek(at + 5)
        f.write(bytes([raw[at + 5] ^ 0x10]))


def test_check_names_a_flipped_checkpoint_byte():
    path, f = BACKUPS["cli"]
    st = restore(path)
    flip_checkpoint_byte(os.path.join(st, "dimd.db"), f["checkpoint"])
    rc, out, err = dimd("check", "--state_dir", st)
    eq(rc, 1, "dimd check exit status on a flipped byte (stdout %r)" % out)
    want = "problem: checkpoint of job %d at step %d: sha256 mismatch" % (JOB["id"],
                                                                        f["checkpoint"])
    check(want in out, "dimd check output %r lacks %r" % (out, want))
    check("integrity_check" not in out, "SQLite should not see a flipped blob byte: %r" % out)
    check(": 1 problem\n" in out, "summary %r" % out)


def test_check_names_a_damaged_btree_page():
    st = restore(BACKUPS["cli"][0])
    db_path = os.path.join(st, "dimd.db")
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'events_job'").fetchone()[0]
    db.close()
    with open(db_path, "r+b") as f:
        f.seek((root - 1) * 4096)
        f.write(b"\xee" * 16)
    rc, out, err = dimd("check", "--state_dir", st)
    eq(rc, 1, "dimd check exit status on a damaged page (stdout %r)" % out)
    check("problem: integrity_check: " in out and "Page %d: " % root in out,
          "dimd check output %r does not name page %d" % (out, root))


def test_check_passes_on_the_restored_state_after_its_run():
    rc, out, err = dimd("check", "--state_dir", RESTORED, "--json")
    eq(rc, 0, "dimd check --json exit status (stdout %r)" % out)
    r = H.strict_json(out.strip().splitlines()[-1])
    eq((r["command"], r["ok"], r["problems"], r["jobs"]), ("check", True, [], 1), "check --json")
    check(r["checkpoints"] >= 1 and r["checkpoint_bytes"] > 0, "checkpoints verified: %r" % r)
