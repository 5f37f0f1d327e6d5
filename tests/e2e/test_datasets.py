"""Datasets under --data_roots: listed as ROOT/DIR, usable by jobs, and nothing
outside the root can be named (.., nested paths, symlinks leaving the root)."""

import os

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
ROOT = None
ROOTNAME = "images"


def shape_png(path, kind, i):
    """A 32x32 grey image: a filled square or circle of varying size and place."""
    r = 5 + i % 6
    cx = 10 + (i * 7) % 12
    cy = 10 + (i * 5) % 12

    def px(x, y):
        if kind == "square":
            inside = abs(x - cx) <= r and abs(y - cy) <= r
        else:
            inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
        return 220 if inside else 20 + (x + y) % 7
    H.write_png(path, 32, 32, px)


def setup_module():
    global D, W, ROOT
    D = H.Daemon(["--workers", "1"])
    ROOT = os.path.join(D.workdir, ROOTNAME)
    for kind in ("circle", "square"):
        d = os.path.join(ROOT, "shapes", kind)
        os.makedirs(d)
        for i in range(12):
            shape_png(os.path.join(d, "%02d.png" % i), kind, i)
    outside = os.path.join(D.workdir, "outside")
    for kind in ("a", "b"):
        os.makedirs(os.path.join(outside, kind))
        for i in range(12):
            shape_png(os.path.join(outside, kind, "%02d.png" % i), "circle", i)
    os.symlink(outside, os.path.join(ROOT, "escape"))
    with open(os.path.join(ROOT, "notes.txt"), "w") as f:
        f.write("not a dataset\n")
    D.args += ["--data_roots", ROOT]
    D.start()
    W = D.client()


def test_datasets_list_builtin_and_root_folders():
    r = expect(W.get("/v1/datasets"), 200)
    got = {(d["name"], d["kind"]) for d in r.json["datasets"]}
    check(("fashion-mnist", "builtin") in got, "fashion-mnist not listed: %s" % sorted(got))
    check((ROOTNAME + "/shapes", "folder") in got, "%s/shapes not listed: %s" % (ROOTNAME, sorted(got)))
    names = {n for n, _ in got}
    check(ROOTNAME + "/notes.txt" not in names, "a file is listed as a dataset")
    check(ROOTNAME + "/escape" not in names, "a symlink leaving the root is listed")
    eq(len(got), 2, "datasets listed: %s" % sorted(got))


def test_job_on_a_root_folder_runs_to_succeeded():
    job = W.submit({"dataset": ROOTNAME + "/shapes", "steps": 20, "batch": 8,
                    "preset": "basic32x32", "channels": 1, "mi_dim": 16, "y_dim": 16,
                    "probe": "none", "checkpoint_every": 10})
    eq(job["spec"]["dataset"], ROOTNAME + "/shapes", "spec.dataset")
    j = W.wait_state(job["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=180)
    eq(j["state"], "SUCCEEDED", "state (error %r)" % (j["error"],))
    eq((j["step"], j["total_steps"]), (20, 20), "steps")
    H.check_series(W.full_history(job["id"], "loss_total"), 20, "loss_total")
    cps = expect(W.get("/v1/jobs/%d/checkpoints" % job["id"]), 200).json["checkpoints"]
    eq([c["step"] for c in cps], [10, 20], "checkpoints")
    # a version of it names the folder's classes: its subfolders, by label
    v = W.promote("shapes", job["id"])
    eq((v["dataset"], v["classes"]), (ROOTNAME + "/shapes", ["circle", "square"]), "classes")


def test_names_outside_the_root_are_refused():
    bad = []
    for name in (ROOTNAME + "/escape", ROOTNAME + "/../" + ROOTNAME + "/shapes",
                 ROOTNAME + "/shapes/circle", ROOTNAME + "/shapes/..", ROOTNAME, ROOTNAME + "/",
                 ROOTNAME + "/notes.txt", ROOT + "/shapes", "./" + ROOTNAME + "/shapes",
                 ROOTNAME + "//shapes", ROOTNAME + "/nope"):
        r = W.post("/v1/jobs", dict(H.SMALL, dataset=name, steps=1))
        if r.status != 422 or r.code != "validation_failed" or \
                [e["path"] for e in r.json["errors"]] != ["$.dataset"]:
            bad.append("%r -> %d %s" % (name, r.status, r.code))
            if r.status == 201:
                W.post("/v1/jobs/%d/cancel" % r.json["id"])
    check(not bad, "; ".join(bad))
