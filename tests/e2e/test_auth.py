"""Auth: every route of the route table (models, encode and neighbours
included) with no token, a read token and the write token; ?access_token=;
the token file; token lifecycle; the Host allow-list."""

import os
import stat
import time

import dimd_harness as H
from dimd_harness import check, eq, expect
from test_service import dimd_routes

D = None
W = None
READ = None        # text of a read token made through POST /v1/tokens
JOB = None         # a SUCCEEDED job with metrics and a checkpoint
VICTIM = None      # a CANCELLED job, deleted by DELETE /v1/jobs/{id}
SPARE = None       # a token deleted by DELETE /v1/tokens/{id}
TABLE = None
EVAL_ID = None     # an evaluation of model "auth" v1 (with a grid image)
SWEEP = None       # a SUCCEEDED sweep of one trial
SWEEP_BODY = {"base": dict(H.SMALL, batch=4), "space": {"lr": [0.001]}, "algorithm": "grid",
              "budget": {"steps": 2}}


PNG = None         # an image for the encode and neighbors routes


def setup_module():
    global D, W, READ, JOB, VICTIM, SPARE, TABLE, PNG
    D = H.Daemon(["--workers", "1", "--index_max_images", "10"]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, batch=4, steps=4, checkpoint_every=2))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=120)
    # model "auth" v1 for the model routes; v2 is deleted by DELETE .../versions/{version}
    W.promote("auth", JOB["id"])
    W.promote("auth", JOB["id"])
    # an evaluation of v1 with a grid image, for .../evaluations/{id}/grid
    e = W.submit({"kind": "evaluate", "model": "auth", "version": "v1", "measures": ["recon"],
                  "max_train": 50, "max_test": 20, "recon_epochs": 1, "grid_pairs": 2})
    W.wait_state(e["id"], "SUCCEEDED", timeout=120)
    global EVAL_ID
    EVAL_ID = expect(W.get("/v1/models/auth/versions/v1/evaluations"), 200).json["evaluations"][0]["id"]
    PNG = H.fm_png(0)
    global SWEEP
    SWEEP = expect(W.post("/v1/sweeps", SWEEP_BODY), 201).json
    deadline = time.time() + 120 * H.SCALE
    while SWEEP["state"] != "SUCCEEDED" and time.time() < deadline:
        time.sleep(0.1)
        SWEEP = expect(W.get("/v1/sweeps/%d" % SWEEP["id"]), 200).json
    eq(SWEEP["state"], "SUCCEEDED", "the sweep of the auth tests")
    v = W.submit(dict(H.SMALL, steps=100000))
    VICTIM = expect(W.post("/v1/jobs/%d/cancel" % v["id"]), 200).json
    r = expect(W.post("/v1/tokens", {"name": "ci", "scope": "read"}), 201)
    READ = r.json["token"]
    eq(r.json["scope"], "read", "scope of the new token")
    SPARE = expect(W.post("/v1/tokens", {"name": "spare", "scope": "write"}), 201).json
    TABLE = dimd_routes()


def concrete(method, tmpl):
    """A real path for a route template, and the request's body arguments."""
    jid = JOB["id"]
    if tmpl == "/v1/jobs/{id}" and method == "DELETE":
        jid = VICTIM["id"]
    path = (tmpl.replace("{key}", "loss_total").replace("{step}", str(JOB["checkpoint_step"]))
            .replace("{file}", "app.js"))
    if tmpl.startswith("/v1/tokens/"):
        path = path.replace("{id}", str(SPARE["id"]))
    elif tmpl.startswith("/v1/sweeps/"):
        path = path.replace("{id}", str(SWEEP["id"]))
    elif "/evaluations/" in tmpl:
        path = path.replace("{id}", str(EVAL_ID))
    else:
        path = path.replace("{id}", str(jid))
    version = "v2" if method == "DELETE" else "v1"
    path = path.replace("{name}", "auth").replace("{version}", version)
    kw = {}
    if method == "POST" and tmpl == "/v1/jobs":
        kw["json_body"] = dict(H.SMALL, steps=100000, name="auth-probe")
    elif method == "POST" and tmpl == "/v1/sweeps":
        kw["json_body"] = SWEEP_BODY
    elif method == "POST" and tmpl == "/v1/sweeps/{id}/promote":
        kw["json_body"] = {"name": "auth-sweep"}
    elif method == "POST" and tmpl == "/v1/tokens":
        kw["json_body"] = {"name": "made-by-auth-test", "scope": "read"}
    elif method == "POST" and tmpl == "/v1/models":
        kw["json_body"] = {"name": "auth-probe", "job_id": JOB["id"]}
    elif method == "POST" and tmpl.endswith(("/encode", "/neighbors")):
        kw.update(body=PNG, content_type="image/png")
    return path, kw


def ordered_routes():
    # DELETEs last, so that the other routes still find what they name.
    return sorted(TABLE.items(), key=lambda kv: (kv[0][0] == "DELETE", kv[0][1], kv[0][0]))


def test_token_file_is_0600_with_one_token():
    st = os.stat(D.token_file)
    eq(stat.S_IMODE(st.st_mode), 0o600, "mode of %s" % D.token_file)
    check(D.token.startswith("dimd_"), "token text %r" % D.token[:8])


def test_every_route_without_a_token():
    bad = []
    for (method, tmpl), scope in ordered_routes():
        path, kw = concrete(method, tmpl)
        r = W.request(method, path, token=None, **kw)
        if scope == "none":
            if r.status != 200:
                bad.append("%s %s: %d without a token (scope none)" % (method, path, r.status))
        elif r.status != 401 or r.code != "unauthorized":
            bad.append("%s %s: %d %s" % (method, path, r.status, r.code))
        elif not (r.header("WWW-Authenticate") or "").startswith("Bearer"):
            bad.append("%s %s: WWW-Authenticate %r" % (method, path, r.header("WWW-Authenticate")))
    check(not bad, "; ".join(bad))


def test_every_route_with_an_unknown_token():
    bad = []
    for (method, tmpl), scope in ordered_routes():
        if scope == "none":
            continue
        path, kw = concrete(method, tmpl)
        r = W.request(method, path, token="dimd_" + "0" * 48, **kw)
        if r.status != 401 or r.code != "unauthorized":
            bad.append("%s %s: %d %s" % (method, path, r.status, r.code))
    check(not bad, "; ".join(bad))


def test_every_route_with_a_read_token():
    bad = []
    for (method, tmpl), scope in ordered_routes():
        path, kw = concrete(method, tmpl)
        r = W.request(method, path, token=READ, **kw)
        if scope in ("none", "read"):
            if not 200 <= r.status < 300:
                bad.append("%s %s: %d %s (read route)" % (method, path, r.status, r.code))
        elif r.status != 403 or r.code != "insufficient_scope":
            bad.append("%s %s: %d %s (write route)" % (method, path, r.status, r.code))
    check(not bad, "; ".join(bad))
    # nothing a read token asked for happened
    eq(W.job(VICTIM["id"])["state"], "CANCELLED", "the victim job after read-token calls")
    eq(W.get("/v1/models/auth/versions/v2").status, 200, "the victim version after read-token calls")
    expect(W.get("/v1/models/auth-probe"), 404, "model_not_found")


def test_every_route_with_the_write_token():
    bad = []
    for (method, tmpl), scope in ordered_routes():
        path, kw = concrete(method, tmpl)
        r = W.request(method, path, **kw)
        if r.status in (401, 403) or r.status >= 500:
            bad.append("%s %s: %d %s" % (method, path, r.status, r.code))
        if method == "POST" and tmpl == "/v1/jobs" and r.status == 201:
            expect(W.post("/v1/jobs/%d/cancel" % r.json["id"]), 200)
    check(not bad, "; ".join(bad))
    expect(W.get("/v1/jobs/%d" % VICTIM["id"]), 404, "job_not_found")
    expect(W.get("/v1/models/auth/versions/v2"), 404, "version_not_found")
    eq(W.get("/v1/models/auth-probe/versions/v1").status, 200, "the model made by POST /v1/models")


def test_access_token_query_parameter():
    r = expect(W.get("/v1/jobs?access_token=" + READ, token=None), 200)
    check(r.json["jobs"], "no jobs listed")
    r = expect(W.get("/v1/jobs/%d/events?access_token=%s" % (JOB["id"], READ), token=None), 200)
    check(b"event: state" in r.body, "events through ?access_token= carry no state event")
    expect(W.get("/v1/jobs?access_token=" + D.token, token=None), 200)
    expect(W.get("/v1/tokens?access_token=" + READ, token=None), 403, "insufficient_scope")
    expect(W.get("/v1/jobs?access_token=dimd_" + "1" * 48, token=None), 401, "unauthorized")
    # GET routes only: a POST with ?access_token= and no header is unauthenticated
    r = W.request("POST", "/v1/jobs?access_token=" + D.token, json_body=dict(H.SMALL, steps=1),
                  token=None)
    expect(r, 401, "unauthorized")


def test_malformed_authorization_headers():
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer" + D.token, D.token,
                  "Bearer " + D.token + "x", "Bearer " + D.token[:-1]):
        r = W.request("GET", "/v1/jobs", token=None, headers={"Authorization": value})
        check(r.status == 401 and r.code == "unauthorized",
              "Authorization %r -> %d %s" % (value[:20], r.status, r.code))


def test_token_list_and_revocation():
    r = expect(W.get("/v1/tokens"), 200)
    toks = {t["name"]: t for t in r.json["tokens"]}
    check("ci" in toks and toks["ci"]["scope"] == "read", "token 'ci' not listed as read: %s" % toks)
    writes = [t for t in r.json["tokens"] if t["scope"] == "write"]
    check(writes, "no write token listed (the first token)")
    check(D.token.encode() not in r.body and READ.encode() not in r.body, "token text listed")
    made = expect(W.post("/v1/tokens", {"name": "short-lived", "scope": "write"}), 201).json
    expect(W.get("/v1/jobs", token=made["token"]), 200)
    expect(W.delete("/v1/tokens/%d" % made["id"]), 204)
    expect(W.get("/v1/jobs", token=made["token"]), 401, "unauthorized")
    expect(W.delete("/v1/tokens/%d" % made["id"]), 404, "token_not_found")
    ids = [t["id"] for t in expect(W.get("/v1/tokens"), 200).json["tokens"]]
    check(made["id"] not in ids, "deleted token still listed")


def test_host_allow_list():
    host_port = "%s:%d" % ("127.0.0.1", D.port)
    for host in (host_port, "localhost:%d" % D.port, "localhost", "[::1]:%d" % D.port):
        expect(W.request("GET", "/v1/jobs", headers={"Host": host}), 200)
    for path, tok in (("/healthz", None), ("/v1/jobs", "write"), ("/v1/version", None)):
        r = W.request("GET", path, headers={"Host": "evil.example"}, token=tok)
        expect(r, 403, "host_not_allowed")
    r = W.request("GET", "/v1/jobs", headers={"Host": "evil.example:%d" % D.port})
    expect(r, 403, "host_not_allowed")
    r = W.request("POST", "/v1/jobs", json_body=dict(H.SMALL, steps=1),
                  headers={"Host": "127.0.0.1.evil.example"})
    expect(r, 403, "host_not_allowed")
    # checked before auth: no token and a bad host is still 403 host_not_allowed
    r = W.request("GET", "/v1/jobs", headers={"Host": "evil.example"}, token=None)
    expect(r, 403, "host_not_allowed")
