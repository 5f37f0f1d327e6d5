"""Models: promote a job's checkpoints to named, immutable versions (latest, a
step, best); list, get, version aliases, the inference-only checkpoint download
(sha256 = ETag = checkpoint_sha256, If-None-Match), pin/unpin, delete (pinned:
409), numbers never reused, a deleted job leaves its versions (job_id null),
bad promotions (422 with every path)."""

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
JOB = None      # a SUCCEEDED 60-step job with checkpoints at 30 and 60
CKPTS = None    # its checkpoints by step
INDEX_MAX = 100  # --index_max_images: promotions stay fast (the index is 100 images)


def setup_module():
    global D, W, JOB, CKPTS
    D = H.Daemon(["--workers", "1", "--index_max_images", str(INDEX_MAX)]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, steps=60, checkpoint_every=30, name="models-src"))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=120)
    r = expect(W.get("/v1/jobs/%d/checkpoints" % JOB["id"]), 200)
    CKPTS = {c["step"]: c for c in r.json["checkpoints"]}
    eq(sorted(CKPTS), [30, 60], "checkpoint steps of the source job")


def version(name, v, **kw):
    return expect(W.get("/v1/models/%s/versions/%s" % (name, v), **kw), 200).json


def check_version(v, name, number, step, pinned=False):
    """The members a version of the source job must have."""
    eq(v["name"], name, "name")
    eq(v["version"], "v%d" % number, "version")
    eq(v["number"], number, "number")
    eq(v["job_id"], JOB["id"], "job_id")
    eq(v["step"], step, "step")
    eq(v["source_checkpoint_sha256"], CKPTS[step]["sha256"], "source_checkpoint_sha256")
    check(v["checkpoint_sha256"] != v["source_checkpoint_sha256"],
          "the version's checkpoint is the job's (with optimiser state), not an inference-only copy")
    check(v["bytes"] < CKPTS[step]["bytes"],
          "inference-only checkpoint of %d bytes is not smaller than the job's %d" % (
              v["bytes"], CKPTS[step]["bytes"]))
    eq(v["pinned"], pinned, "pinned")
    eq(v["preset"], "basic32x32", "preset")
    eq(v["input"], {"channels": 1, "height": 32, "width": 32}, "input")
    eq(v["y_dim"], 16, "y_dim")
    # basic32x32: conv 256 x 4 x 4, fc 1024, Y y_dim, local map 128 channels (8 x 8)
    eq(v["taps"], {"conv": 4096, "fc": 1024, "y": 16, "local": 128}, "taps")
    eq(v["dataset"], "fashion-mnist", "dataset")
    eq(v["classes"], ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"], "classes")
    eq(v["index_images"], INDEX_MAX, "index_images")
    for k, x in CKPTS[step]["metrics"].items():
        eq(v["metrics"].get(k), x, "metrics.%s (the source checkpoint's)" % k)
    base = "/v1/models/%s" % name
    eq(v["links"], {"self": "%s/versions/v%d" % (base, number),
                    "encode": "%s/encode?version=v%d" % (base, number),
                    "neighbors": "%s/neighbors?version=v%d" % (base, number),
                    "checkpoint": "%s/versions/v%d/checkpoint" % (base, number)}, "links")


def test_promote_latest_is_v1():
    r = expect(W.post("/v1/models", {"name": "fm", "job_id": JOB["id"], "checkpoint": "latest"}),
               201)
    eq(r.header("Location"), "/v1/models/fm/versions/v1", "Location")
    check_version(r.json, "fm", 1, 60)
    eq(version("fm", "v1"), r.json, "GET of the new version")


def test_promote_default_step_and_best():
    v2 = W.promote("fm", JOB["id"])  # checkpoint defaults to latest
    check_version(v2, "fm", 2, 60)
    eq(v2["checkpoint_sha256"], version("fm", "v1")["checkpoint_sha256"],
       "two versions of the same checkpoint: same inference-only bytes")
    v3 = W.promote("fm", JOB["id"], checkpoint=30)
    check_version(v3, "fm", 3, 30)
    check(v3["checkpoint_sha256"] != v2["checkpoint_sha256"], "step 30 and 60 give the same bytes")
    # best: the lowest loss_total (probe none) among the retained checkpoints
    best = min(CKPTS.values(), key=lambda c: c["metrics"]["loss_total"])["step"]
    v4 = W.promote("fm", JOB["id"], checkpoint="best", pinned=True)
    check_version(v4, "fm", 4, best, pinned=True)


def test_version_aliases():
    v1 = version("fm", "v1")
    eq(version("fm", "1"), v1, "version '1'")
    eq(version("fm", "latest")["number"], 4, "latest")
    for bad in ("v9", "9", "v0", "x", "v1x", "-1"):
        r = expect(W.get("/v1/models/fm/versions/%s" % bad), 404)
        eq(r.code, "version_not_found", "code for version %r" % bad)
    expect(W.get("/v1/models/nope/versions/v1"), 404, "model_not_found")
    expect(W.get("/v1/models/nope"), 404, "model_not_found")
    expect(W.get("/v1/models/Not_A_Name!"), 404, "model_not_found")


def test_list_and_get():
    r = expect(W.get("/v1/models"), 200)
    models = {m["name"]: m for m in r.json["models"]}
    eq(sorted(models), ["fm"], "models listed")
    eq(models["fm"]["versions"], 4, "version count")
    eq(models["fm"]["latest"], version("fm", "v4"), "latest of the listing")
    r = expect(W.get("/v1/models/fm"), 200)
    eq(r.json["name"], "fm", "name")
    eq([v["version"] for v in r.json["versions"]], ["v1", "v2", "v3", "v4"], "versions, oldest first")
    for v in r.json["versions"]:
        eq(v, version("fm", v["version"]), "GET /v1/models/fm entry %s" % v["version"])


def test_checkpoint_download_etag_and_cli_load():
    v = version("fm", "v1")
    r = expect(W.get(v["links"]["checkpoint"]), 200)
    eq(len(r.body), v["bytes"], "bytes")
    eq(H.sha256(r.body), v["checkpoint_sha256"], "sha256 of the download")
    eq(r.header("ETag"), '"%s"' % v["checkpoint_sha256"], "ETag")
    check(r.body.startswith(b"DIMDCKPT"), "not a dimd checkpoint: %r" % r.body[:8])
    r2 = W.get(v["links"]["checkpoint"], headers={"If-None-Match": r.header("ETag")})
    expect(r2, 304)
    eq(r2.header("ETag"), r.header("ETag"), "ETag of the 304")
    r3 = W.get(v["links"]["checkpoint"], headers={"If-None-Match": '"%s"' % ("0" * 64)})
    expect(r3, 200)
    eq(r3.body, r.body, "download after a stale If-None-Match")
    # `dimd encode --checkpoint` loads it (its embeddings are compared in test_encode)
    path = D.workdir + "/fm-v1.dimdckpt"
    with open(path, "wb") as f:
        f.write(r.body)
    png = D.workdir + "/one.png"
    with open(png, "wb") as f:
        f.write(H.fm_png(0))
    out = H.encode_with_cli(path, png)
    eq(out["dim"], 16, "dim of `dimd encode` with the version's checkpoint")
    expect(W.get("/v1/models/fm/versions/v99/checkpoint"), 404, "version_not_found")


def test_pin_unpin_delete():
    r = expect(W.post("/v1/models/fm/versions/v1/pin"), 200)
    eq(r.json["pinned"], True, "pinned after pin")
    eq(expect(W.post("/v1/models/fm/versions/v1/pin"), 200).json["pinned"], True, "pin twice")
    eq(version("fm", "v1")["pinned"], True, "GET after pin")
    expect(W.delete("/v1/models/fm/versions/v1"), 409, "version_pinned")
    eq(version("fm", "v1")["pinned"], True, "still there after the refused delete")
    r = expect(W.post("/v1/models/fm/versions/1/unpin"), 200)
    eq(r.json["pinned"], False, "pinned after unpin")
    eq(r.json["version"], "v1", "unpin by number")
    expect(W.post("/v1/models/fm/versions/v1/unpin"), 200)
    expect(W.delete("/v1/models/fm/versions/v1"), 204)
    expect(W.get("/v1/models/fm/versions/v1"), 404, "version_not_found")
    expect(W.delete("/v1/models/fm/versions/v1"), 404, "version_not_found")
    expect(W.post("/v1/models/fm/versions/v1/pin"), 404, "version_not_found")
    eq([v["version"] for v in expect(W.get("/v1/models/fm"), 200).json["versions"]],
       ["v2", "v3", "v4"], "versions after deleting v1")
    # v4 was created pinned
    expect(W.delete("/v1/models/fm/versions/latest"), 409, "version_pinned")


def test_numbers_are_never_reused():
    expect(W.post("/v1/models/fm/versions/v4/unpin"), 200)
    expect(W.delete("/v1/models/fm/versions/v4"), 204)
    eq(version("fm", "latest")["number"], 3, "latest after deleting the newest")
    v = W.promote("fm", JOB["id"], checkpoint=60)
    eq(v["version"], "v5", "the version after a deleted v4")
    # a model whose versions are all deleted stays listed with no latest
    W.promote("tmp", JOB["id"])
    expect(W.delete("/v1/models/tmp/versions/v1"), 204)
    models = {m["name"]: m for m in expect(W.get("/v1/models"), 200).json["models"]}
    eq(models["tmp"]["versions"], 0, "versions of an emptied model")
    eq(models["tmp"]["latest"], None, "latest of an emptied model")
    eq(expect(W.get("/v1/models/tmp"), 200).json["versions"], [], "versions of an emptied model")
    expect(W.get("/v1/models/tmp/versions/latest"), 404, "version_not_found")
    eq(W.promote("tmp", JOB["id"])["version"], "v2", "next version of an emptied model")


def test_bad_promotions():
    jid = JOB["id"]
    before = expect(W.get("/v1/models"), 200).json
    cases = [
        ({"name": "fm", "job_id": 987654}, ["$.job_id"], "no job 987654"),
        ({"name": "Bad Name!", "job_id": jid}, ["$.name"], None),
        ({"name": "-leading-dash", "job_id": jid}, ["$.name"], None),
        ({"name": "x" * 64, "job_id": jid}, ["$.name"], None),
        ({"name": "", "job_id": jid}, ["$.name"], None),
        ({"name": "fm", "job_id": jid, "checkpoint": 7}, ["$.checkpoint"], "step 7"),
        ({"name": "fm", "job_id": jid, "checkpoint": "newest"}, ["$.checkpoint"], None),
        ({"name": "fm", "job_id": jid, "checkpoint": -1}, ["$.checkpoint"], None),
        ({"name": "fm", "job_id": jid, "colour": "red"}, ["$.colour"], None),
        ({"name": "fm", "job_id": "1"}, ["$.job_id"], None),
        ({"name": "fm", "job_id": jid, "pinned": "yes"}, ["$.pinned"], None),
        ({"job_id": jid}, ["$.name"], None),
        ({"name": "fm"}, ["$.job_id"], None),
        ({"name": "Bad!", "job_id": "x", "colour": 1}, ["$.name", "$.job_id", "$.colour"], None),
        ([1, 2], ["$"], None),
    ]
    bad = []
    for body, paths, needle in cases:
        r = W.post("/v1/models", body)
        if r.status != 422 or r.code != "validation_failed":
            bad.append("%s -> %d %s" % (H.short(body, 60), r.status, r.code))
            continue
        got = sorted(e["path"] for e in r.json["errors"])
        if got != sorted(paths):
            bad.append("%s -> paths %s, expected %s" % (H.short(body, 60), got, sorted(paths)))
        if needle and not any(needle in e["message"] for e in r.json["errors"]):
            bad.append("%s -> messages %s do not say %r" % (H.short(body, 60), r.json["errors"],
                                                           needle))
    check(not bad, "; ".join(bad))
    expect(W.request("POST", "/v1/models", body=b"{", content_type="application/json"), 400,
           "malformed_json")
    expect(W.request("POST", "/v1/models", body=b"name=fm", content_type="text/plain"), 415,
           "unsupported_media_type")
    # a job without any checkpoint yet
    q = W.submit(dict(H.SMALL, steps=100000))
    expect(W.post("/v1/jobs/%d/cancel" % q["id"]), 200)
    r = expect(W.post("/v1/models", {"name": "fm", "job_id": q["id"]}), 422, "validation_failed")
    eq([e["path"] for e in r.json["errors"]], ["$.checkpoint"], "paths for a job without checkpoints")
    eq(expect(W.get("/v1/models"), 200).json, before, "models after the refused promotions")


def test_deleting_the_job_keeps_its_versions():
    before = version("fm", "v2")
    ckpt = expect(W.get(before["links"]["checkpoint"]), 200).body
    emb = W.embed("fm", H.fm_png(3), {"version": "v2"})
    expect(W.delete("/v1/jobs/%d" % JOB["id"]), 204)
    expect(W.get("/v1/jobs/%d/checkpoints" % JOB["id"]), 404, "job_not_found")
    after = version("fm", "v2")
    eq(after["job_id"], None, "job_id once the job is deleted")
    eq(dict(after, job_id=before["job_id"]), before, "the version otherwise")
    eq(expect(W.get(after["links"]["checkpoint"]), 200).body, ckpt, "checkpoint bytes")
    eq(W.embed("fm", H.fm_png(3), {"version": "v2"}), emb, "embedding after the job's delete")
    r = expect(W.post("/v1/models", {"name": "fm", "job_id": JOB["id"]}), 422, "validation_failed")
    eq([e["path"] for e in r.json["errors"]], ["$.job_id"], "paths for a deleted job")
