"""What the dashboard needs from the API, tested over HTTP (the pages themselves
are tested in a real browser by tests/browser/): its files at / and /ui/{file}
(byte-identical to web/, ETag and 304, nothing outside web/ served); GET
/v1/whoami; the job's `latest` values and `last_event_id`; history ranges with
to_step; and a model version's PCA projection, checked against embeddings from
the encode route and a PCA computed here."""

import base64
import gzip
import json
import math
import os

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
JOB = None
PROJ_MAX = 60  # --projection_max_images: the test encodes the same images itself
WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")


def setup_module():
    global D, W, JOB
    D = H.Daemon(["--workers", "1", "--index_max_images", "50",
                  "--projection_max_images", str(PROJ_MAX)]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, steps=40, checkpoint_every=20, name="dash"))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=120)


def test_index_and_files_are_the_web_folder_byte_for_byte():
    r = expect(W.get("/", token=None), 200)
    check(r.header("Content-Type").startswith("text/html"), "type of /: %r" % r.header("Content-Type"))
    with open(os.path.join(WEB, "index.html"), "rb") as f:
        eq(r.body, f.read(), "GET / and web/index.html")
    served = 0
    for name in sorted(os.listdir(WEB)):
        ext = os.path.splitext(name)[1]
        if ext not in (".html", ".css", ".js", ".svg", ".png"):
            continue
        r = expect(W.get("/ui/" + name, token=None), 200)
        with open(os.path.join(WEB, name), "rb") as f:
            eq(r.body, f.read(), "/ui/%s and web/%s" % (name, name))
        want = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                ".svg": "image/svg+xml", ".png": "image/png"}[ext]
        check(r.header("Content-Type").startswith(want), "type of %s: %r" % (name, r.header("Content-Type")))
        served += 1
    check(served >= 3, "only %d web files served" % served)
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        r = expect(W.get("/ui/" + name, token=None), 200)
        path = os.path.join(WEB, "node_modules", "uplot", "dist", name)
        with open(path, "rb") as f:
            eq(r.body, f.read(), "/ui/%s and %s" % (name, path))


def test_etag_revalidation():
    r = expect(W.get("/ui/app.js", token=None), 200)
    tag = r.header("ETag")
    check(tag and tag.startswith('"') and len(tag) == 18, "ETag %r" % tag)
    eq(r.header("Cache-Control"), "no-cache", "Cache-Control of a dashboard file")
    expect(W.get("/ui/app.js", token=None, headers={"If-None-Match": tag}), 304)
    r2 = expect(W.get("/ui/app.js", token=None, headers={"If-None-Match": '"0000000000000000"'}), 200)
    eq(r2.body, r.body, "body after a stale ETag")
    other = expect(W.get("/", token=None), 200).header("ETag")
    check(other != tag, "index.html and app.js share ETag %r" % tag)
    # API answers keep no-store
    eq(expect(W.get("/v1/jobs"), 200).header("Cache-Control"), "no-store", "Cache-Control of the API")


def test_gzip_for_clients_that_accept_it():
    gz = {"Accept-Encoding": "gzip, deflate, br"}
    first_plain = first_gz = 0
    for name, path in (("index.html", "index.html"), ("app.js", "app.js"), ("app.css", "app.css"),
                       ("uPlot.iife.min.js", "node_modules/uplot/dist/uPlot.iife.min.js")):
        with open(os.path.join(WEB, path), "rb") as f:
            want = f.read()
        plain = expect(W.get("/ui/" + name, token=None), 200)
        r = expect(W.get("/ui/" + name, token=None, headers=gz), 200)
        eq(r.header("Content-Encoding"), "gzip", "Content-Encoding of %s" % name)
        eq(r.header("Vary"), "Accept-Encoding", "Vary of %s" % name)
        eq(plain.header("Vary"), "Accept-Encoding", "Vary of %s uncompressed" % name)
        check(plain.header("Content-Encoding") is None, "%s compressed without Accept-Encoding" % name)
        eq(gzip.decompress(r.body), want, "gunzipped /ui/%s and %s" % (name, path))
        check(len(r.body) < len(want), "%s: %d compressed bytes, %d plain" % (name, len(r.body), len(want)))
        # two representations, two ETags; each revalidates only itself
        tag, tag_gz = plain.header("ETag"), r.header("ETag")
        eq(tag_gz, tag[:-1] + '-gz"', "gzip ETag of %s" % name)
        expect(W.get("/ui/" + name, token=None, headers=dict(gz, **{"If-None-Match": tag_gz})), 304)
        again = expect(W.get("/ui/" + name, token=None, headers={"If-None-Match": tag_gz}), 200)
        eq(again.body, want, "%s without gzip after the gzip ETag" % name)
        if name != "uPlot.iife.min.js":
            first_plain += len(want)
            first_gz += len(r.body)
    print("# index.html, app.js, app.css: %d bytes, %d gzipped" % (first_plain, first_gz))
    # q=0 refuses gzip; "*" accepts it; case does not matter
    r = expect(W.get("/ui/app.js", token=None, headers={"Accept-Encoding": "gzip;q=0, identity"}), 200)
    check(r.header("Content-Encoding") is None, "gzip;q=0 got %r" % r.header("Content-Encoding"))
    r = expect(W.get("/ui/app.js", token=None, headers={"Accept-Encoding": "*"}), 200)
    eq(r.header("Content-Encoding"), "gzip", "Content-Encoding for Accept-Encoding *")
    r = expect(W.get("/", token=None, headers={"Accept-Encoding": "GZip;q=0.5"}), 200)
    eq(r.header("Content-Encoding"), "gzip", "Content-Encoding for GZip;q=0.5")
    r = expect(W.get("/ui/app.js", token=None, headers={"Accept-Encoding": "br, deflate"}), 200)
    check(r.header("Content-Encoding") is None, "br, deflate got %r" % r.header("Content-Encoding"))
    # API answers are not compressed
    r = expect(W.get("/v1/jobs", headers=gz), 200)
    check(r.header("Content-Encoding") is None, "API answer compressed")


def test_nothing_outside_web_is_served():
    for name in ("package.json", "package-lock.json", "README.md", ".gitignore", "nope.js",
                 "index.htm", "..%2fopenapi.yaml", ".app.js", "node_modules"):
        r = W.get("/ui/" + name, token=None)
        check(r.status == 404, "/ui/%s: %d" % (name, r.status))
        if r.status == 404 and "%2f" not in name:
            eq(r.code, "file_not_found", "code for /ui/%s" % name)
    expect(W.get("/ui/../openapi.yaml", token=None), 404)
    expect(W.get("/ui/", token=None), 404)


def test_whoami():
    me = expect(W.get("/v1/whoami"), 200).json
    eq(me["scope"], "write", "scope of the token file's token")
    r = expect(W.post("/v1/tokens", {"name": "dash-read", "scope": "read"}), 201)
    me = expect(W.get("/v1/whoami", token=r.json["token"]), 200).json
    eq((me["id"], me["name"], me["scope"]), (r.json["id"], "dash-read", "read"), "read token")
    expect(W.get("/v1/whoami?access_token=" + r.json["token"], token=None), 200)
    expect(W.get("/v1/whoami", token=None), 401, "unauthorized")
    expect(W.get("/v1/whoami", token="dimd_" + "1" * 48), 401, "unauthorized")


def test_latest_values_and_last_event_id():
    job = W.job(JOB["id"])
    summary = expect(W.get("/v1/jobs/%d/metrics" % JOB["id"]), 200).json["metrics"]
    eq(sorted(job["latest"]), sorted(m["key"] for m in summary), "keys of latest")
    for m in summary:
        eq(job["latest"][m["key"]], m["last"], "latest %s" % m["key"])
    events = W.events(JOB["id"]).read_all()
    check(events, "no events")
    eq(job["last_event_id"], events[-1]["id"], "last_event_id and the last streamed event")
    listed = [j for j in expect(W.get("/v1/jobs"), 200).json["jobs"] if j["id"] == JOB["id"]][0]
    eq(listed["latest"], job["latest"], "latest in the list and in the job")
    # a new job: no values yet; its submission is its first event (ids are global)
    q = W.submit(dict(H.SMALL, steps=100000, name="dash-new"))
    eq(q["latest"], {}, "latest of a new job")
    check(q["last_event_id"] > job["last_event_id"], "last_event_id of a new job: %d after %d" % (
        q["last_event_id"], job["last_event_id"]))
    expect(W.post("/v1/jobs/%d/cancel" % q["id"]), 200)
    after = W.wait_state(q["id"], "CANCELLED")
    check(after["last_event_id"] > q["last_event_id"], "cancelling adds events")
    eq(after["last_event_id"], W.events(q["id"]).read_all()[-1]["id"], "last event of the cancelled job")


def test_history_range_with_to_step():
    r = expect(W.get("/v1/jobs/%d/metrics/loss_total?after_step=10&to_step=20" % JOB["id"]), 200)
    eq([p[0] for p in r.json["points"]], list(range(11, 21)), "steps of (10, 20]")
    eq(r.json["next_after_step"], None, "no page beyond the range")
    r = expect(W.get("/v1/jobs/%d/metrics/loss_total?after_step=10&to_step=20&limit=4" % JOB["id"]), 200)
    eq([p[0] for p in r.json["points"]], [11, 12, 13, 14], "first page of (10, 20]")
    eq(r.json["next_after_step"], 14, "cursor inside the range")
    r = expect(W.get("/v1/jobs/%d/metrics/loss_total?to_step=30&max_points=4" % JOB["id"]), 200)
    check(r.json["downsampled"], "30 points to 4 is downsampled")
    check(all(p[0] <= 30 for p in r.json["points"]) and r.json["points"][-1][0] == 30,
          "downsampled range ends at to_step: %r" % r.json["points"])
    expect(W.get("/v1/jobs/%d/metrics/loss_total?after_step=20&to_step=19" % JOB["id"]), 400,
           "invalid_parameter")
    expect(W.get("/v1/jobs/%d/metrics/loss_total?to_step=-1" % JOB["id"]), 400, "invalid_parameter")
    r = expect(W.get("/v1/jobs/%d/metrics/loss_total?after_step=20&to_step=20&format=csv" % JOB["id"]), 200)
    eq(r.body.decode().count("\n"), 1, "CSV of an empty range: the header only")


def pca2(rows):
    """Mean, first two principal axes (power iteration with deflation, in double)
    and explained variance ratios of rows."""
    n, d = len(rows), len(rows[0])
    mean = [sum(r[j] for r in rows) / n for j in range(d)]
    c = [[0.0] * d for _ in range(d)]
    for r in rows:
        x = [r[j] - mean[j] for j in range(d)]
        for a in range(d):
            xa = x[a]
            row = c[a]
            for b in range(d):
                row[b] += xa * x[b] / (n - 1)
    total = sum(c[a][a] for a in range(d))
    axes, lams = [], []
    for _ in range(2):
        v = [1.0 / math.sqrt(d) + 0.01 * j for j in range(d)]
        lam = 0.0
        for _ in range(3000):
            w = [sum(c[a][b] * v[b] for b in range(d)) for a in range(d)]
            for u in axes:  # deflate
                dot = sum(w[j] * u[j] for j in range(d))
                w = [w[j] - dot * u[j] for j in range(d)]
            norm = math.sqrt(sum(x * x for x in w))
            v2 = [x / norm for x in w]
            done = abs(norm - lam) < 1e-12 * total
            v, lam = v2, norm
            if done:
                break
        axes.append(v)
        lams.append(lam)
    return mean, axes, [l / total for l in lams]


def test_projection_matches_a_pca_of_encoded_test_images():
    v = W.promote("dash", JOB["id"])
    r = expect(W.get("/v1/models/dash/versions/v1/projection"), 200)
    p = r.json
    eq((p["model"], p["version"], p["number"], p["split"]), ("dash", "v1", 1, "test"), "names")
    n_test = H.fashion_mnist("test")[0]
    eq((p["n"], p["dataset_images"], len(p["points"])), (PROJ_MAX, n_test, PROJ_MAX), "sizes")
    eq(p["y_dim"], v["y_dim"], "y_dim")
    eq(p["classes"], v["classes"], "class names of the projection and of the version")
    eq(len(p["classes"]), 10, "Fashion-MNIST's classes")
    idx = [(i * n_test) // PROJ_MAX for i in range(PROJ_MAX)]
    eq([pt[3] for pt in p["points"]], idx, "test indices (evenly spaced)")
    eq([pt[2] for pt in p["points"]], [H.fm_image(i, "test")[1] for i in idx], "labels")
    # the same images through the encode route, PCA here
    body = json.dumps({"images": [base64.b64encode(H.fm_png(i, "test")).decode() for i in idx]})
    ys = expect(W.encode("dash", body.encode(), "application/json"), 200).json["embeddings"]
    mean, axes, ratio = pca2(ys)
    for k in range(2):
        check(abs(p["explained_variance"][k] - ratio[k]) < 1e-3,
              "explained variance %d: %r vs %r here" % (k, p["explained_variance"][k], ratio[k]))
        want = [sum((y[j] - mean[j]) * axes[k][j] for j in range(len(y))) for y in ys]
        got = [pt[k] for pt in p["points"]]
        sign = 1 if sum(a * b for a, b in zip(want, got)) >= 0 else -1
        scale = max(abs(x) for x in want)
        worst = max(abs(g - sign * w) for g, w in zip(got, want))
        check(worst < 2e-3 * scale, "axis %d: worst |diff| %.3g of scale %.3g" % (k, worst, scale))
    check(p["explained_variance"][0] >= p["explained_variance"][1] > 0, "explained variance order")
    # stored: the second answer is the same bytes
    eq(expect(W.get("/v1/models/dash/versions/1/projection"), 200).body, r.body, "second answer")
    expect(W.get("/v1/models/dash/versions/v7/projection"), 404, "version_not_found")
    expect(W.get("/v1/models/nope/versions/v1/projection"), 404, "model_not_found")
    # a version's deletion takes its projection along; a new version makes its own
    W.promote("dash", JOB["id"], checkpoint=20)
    p2 = expect(W.get("/v1/models/dash/versions/v2/projection"), 200).json
    eq(p2["version"], "v2", "second version's projection")
    check(p2["points"] != p["points"], "step 20 and step 40 project the same")
    expect(W.delete("/v1/models/dash/versions/v2"), 204)
    expect(W.get("/v1/models/dash/versions/v2/projection"), 404, "version_not_found")
