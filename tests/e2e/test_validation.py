"""Bad input: a table of bad job submissions (each answered with the right status,
problem code and JSON paths), several bad fields reported at once, bad query
parameters, unknown routes and methods; the daemon keeps serving afterwards."""

import json

import dimd_harness as H
from dimd_harness import check, eq, expect

D = None
W = None
JOB = None  # a finished tiny job (for the query-parameter checks)


def setup_module():
    global D, W, JOB
    D = H.Daemon(["--workers", "1", "--max_body_bytes", "4096"]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, batch=4, steps=3, checkpoint_every=3))
    JOB = W.wait_state(j["id"], "SUCCEEDED", timeout=120)


def post_raw(body, content_type="application/json", headers=None):
    return W.request("POST", "/v1/jobs", body=body, content_type=content_type, headers=headers)


def expect_problem(r, status, code, paths=None, any_path=None):
    expect(r, status, code)
    detail = r.json["detail"]
    check(detail and "\n" not in detail, "detail %r is not one line" % detail)
    if status == 422:
        got = [e["path"] for e in r.json["errors"]]
        if paths is not None:
            eq(sorted(set(got)), sorted(set(paths)), "errors paths")
        if any_path is not None:
            check(set(got) & set(any_path) and set(got) <= set(any_path),
                  "errors paths %s, expected some of %s" % (got, any_path))
        for e in r.json["errors"]:
            check(e["message"], "empty message for %s" % e["path"])


# (name, body, expected status, code, paths)
BAD_BODIES = [
    ("lr_as_string", {"lr": "0.001"}, 422, "validation_failed", ["$.lr"]),
    ("steps_as_1.5", {"steps": 1.5}, 422, "validation_failed", ["$.steps"]),
    ("random_flip_as_1", {"random_flip": 1}, 422, "validation_failed", ["$.random_flip"]),
    ("negative_lr", {"lr": -0.001}, 422, "validation_failed", ["$.lr"]),
    ("lr_above_1", {"lr": 2}, 422, "validation_failed", ["$.lr"]),
    ("batch_0", {"batch": 0}, 422, "validation_failed", ["$.batch"]),
    ("batch_1", {"batch": 1}, 422, "validation_failed", ["$.batch"]),
    ("batch_100000", {"batch": 100000}, 422, "validation_failed", ["$.batch"]),
    ("batch_as_string", {"batch": "8"}, 422, "validation_failed", ["$.batch"]),
    ("unknown_estimator", {"estimator": "mine"}, 422, "validation_failed", ["$.estimator"]),
    ("unknown_preset", {"preset": "basic16x16"}, 422, "validation_failed", ["$.preset"]),
    ("channels_2", {"channels": 2}, 422, "validation_failed", ["$.channels"]),
    ("seed_2^53", {"seed": 9007199254740992}, 422, "validation_failed", ["$.seed"]),
    ("seed_negative", {"seed": -1}, 422, "validation_failed", ["$.seed"]),
    ("unknown_dataset", {"dataset": "imagenet"}, 422, "validation_failed", ["$.dataset"]),
    ("dataset_dotdot_etc", {"dataset": "../etc"}, 422, "validation_failed", ["$.dataset"]),
    ("dataset_absolute_etc", {"dataset": "/etc"}, 422, "validation_failed", ["$.dataset"]),
    ("dataset_escape", {"dataset": "fashion-mnist/../.."}, 422, "validation_failed", ["$.dataset"]),
    ("dataset_server_path", {"dataset": "/usr/share/datasets/fashion-mnist"}, 422,
     "validation_failed", ["$.dataset"]),
    ("dataset_as_number", {"dataset": 5}, 422, "validation_failed", ["$.dataset"]),
    ("unknown_field", {"learning_rate": 0.1}, 422, "validation_failed", ["$.learning_rate"]),
    ("epochs_0", {"epochs": 0}, 422, "validation_failed", ["$.epochs"]),
    ("steps_0", {"steps": 0}, 422, "validation_failed", ["$.steps"]),
    ("checkpoint_every_0", {"checkpoint_every": 0}, 422, "validation_failed", ["$.checkpoint_every"]),
    ("probe_unknown", {"probe": "svm"}, 422, "validation_failed", ["$.probe"]),
    ("probe_images_10", {"probe_images": 10}, 422, "validation_failed", ["$.probe_images"]),
    ("probe_epochs_0", {"probe_epochs": 0}, 422, "validation_failed", ["$.probe_epochs"]),
    ("random_crop_17", {"random_crop": 17}, 422, "validation_failed", ["$.random_crop"]),
    ("keep_last_0", {"keep_last": 0}, 422, "validation_failed", ["$.keep_last"]),
    ("best_metric_unknown", {"best_metric": "accuracy"}, 422, "validation_failed", ["$.best_metric"]),
    ("best_metric_pixels", {"best_metric": "probe_pixels", "probe": "linear"}, 422,
     "validation_failed", ["$.best_metric"]),
    ("best_metric_not_written", {"best_metric": "probe_y", "probe": "none"}, 422, "validation_failed",
     ["$.best_metric"]),
    ("name_too_long", {"name": "n" * 200}, 422, "validation_failed", ["$.name"]),
]


def _bad_body_test(body, status, code, paths):
    def t():
        r = W.post("/v1/jobs", body)
        expect_problem(r, status, code, paths=paths)
    return t


for _name, _body, _status, _code, _paths in BAD_BODIES:
    _t = _bad_body_test(_body, _status, _code, _paths)
    _t.__name__ = "test_bad_job_" + _name
    _t.__module__ = __name__
    globals()[_t.__name__] = _t
del _t


def test_bad_job_steps_and_epochs_both():
    r = W.post("/v1/jobs", {"steps": 10, "epochs": 1})
    expect_problem(r, 422, "validation_failed", any_path=["$.steps", "$.epochs", "$"])


def test_bad_job_malformed_json():
    expect_problem(post_raw(b'{"steps": 10'), 400, "malformed_json")


def test_bad_job_trailing_garbage():
    expect_problem(post_raw(b'{"steps": 10} x'), 400, "malformed_json")


def test_bad_job_nan_literal():
    expect_problem(post_raw(b'{"lr": NaN}'), 400, "malformed_json")


def test_bad_job_not_utf8():
    expect_problem(post_raw(b'{"name": "\xff\xfe"}'), 400, "malformed_json")


def test_bad_job_non_object_json():
    for body in (b"[1, 2]", b"42", b'"steps"', b"null"):
        expect_problem(post_raw(body), 422, "validation_failed", paths=["$"])


def test_bad_job_empty_body():
    expect_problem(post_raw(b""), 400, "malformed_json")


def test_bad_job_oversized_body():
    body = json.dumps({"name": "x" * 4950, "steps": 1}).encode()
    check(len(body) > 4096, "body of %d bytes" % len(body))
    r = post_raw(body)
    expect_problem(r, 413, "body_too_large")
    check("max_body_bytes" in r.json["detail"], "detail does not name max_body_bytes: %r" % r.json["detail"])


def test_bad_job_wrong_content_type():
    expect_problem(post_raw(b'{"steps": 1}', content_type="text/plain"), 415, "unsupported_media_type")
    expect_problem(post_raw(b'{"steps": 1}', content_type="application/x-www-form-urlencoded"), 415,
                   "unsupported_media_type")


def test_bad_job_no_content_type():
    expect_problem(post_raw(b'{"steps": 1}', content_type=None), 415, "unsupported_media_type")


def test_bad_idempotency_key():
    r = W.post("/v1/jobs", dict(H.SMALL, steps=1), headers={"Idempotency-Key": "k" * 129})
    expect_problem(r, 400, "invalid_parameter")


def test_several_bad_fields_all_reported():
    body = {"lr": "fast", "batch": 0, "estimator": "foo", "steps": 1.5, "bogus": 1,
            "dataset": "../etc", "random_flip": "yes", "gamma": -1}
    r = W.post("/v1/jobs", body)
    expect_problem(r, 422, "validation_failed",
                   paths=["$.lr", "$.batch", "$.estimator", "$.steps", "$.bogus", "$.dataset",
                          "$.random_flip", "$.gamma"])
    eq(len(r.json["errors"]), 8, "one error per bad field")


def test_bad_token_body():
    expect_problem(W.post("/v1/tokens", {"name": "x", "scope": "admin"}), 422, "validation_failed",
                   paths=["$.scope"])
    expect_problem(W.post("/v1/tokens", {"scope": "read"}), 422, "validation_failed", paths=["$.name"])
    expect_problem(W.post("/v1/tokens", {"name": "x", "scope": "read", "ttl": 5}), 422,
                   "validation_failed", paths=["$.ttl"])
    expect_problem(W.request("POST", "/v1/tokens", body=b"{", content_type="application/json"), 400,
                   "malformed_json")
    expect_problem(W.request("POST", "/v1/tokens", body=b'{"name":"x","scope":"read"}',
                             content_type="text/plain"), 415, "unsupported_media_type")


def test_daemon_still_serves_after_the_table():
    expect(W.get("/healthz", token=None), 200)
    expect(W.get("/readyz", token=None), 200)
    r = W.request("POST", "/v1/jobs", body=json.dumps(dict(H.SMALL, steps=100000)),
                  content_type="application/json; charset=utf-8")
    expect(r, 201)
    eq(r.json["state"], "QUEUED", "state of a new job")
    expect(W.post("/v1/jobs/%d/cancel" % r.json["id"]), 200)
    # none of the refused submissions made a job
    jobs = expect(W.get("/v1/jobs?limit=500"), 200).json["jobs"]
    eq(len(jobs), 2, "jobs after the table (the setup job and the good one)")


BAD_QUERIES = [
    ("/v1/jobs?limit=0", "limit"),
    ("/v1/jobs?limit=abc", "limit"),
    ("/v1/jobs?limit=501", "limit"),
    ("/v1/jobs?limit=-1", "limit"),
    ("/v1/jobs?state=BOGUS", "state"),
    ("/v1/jobs?state=QUEUED,BOGUS", "state"),
    ("/v1/jobs?cursor=not-a-cursor", "cursor"),
    ("/v1/jobs/{id}/metrics/loss_total?max_points=1", "max_points"),
    ("/v1/jobs/{id}/metrics/loss_total?max_points=-1", "max_points"),
    ("/v1/jobs/{id}/metrics/loss_total?format=xml", "format"),
    ("/v1/jobs/{id}/metrics/loss_total?after_step=-1", "after_step"),
    ("/v1/jobs/{id}/metrics/loss_total?after_step=x", "after_step"),
    ("/v1/jobs/{id}/metrics/loss_total?limit=0", "limit"),
    ("/v1/jobs/{id}/metrics/loss_total?limit=abc", "limit"),
    ("/v1/jobs/{id}/metrics/loss_total?limit=100001", "limit"),
    ("/v1/jobs/{id}/events?last_event_id=abc", "last_event_id"),
]


def test_bad_query_parameters():
    bad = []
    for q, param in BAD_QUERIES:
        path = q.replace("{id}", str(JOB["id"]))
        r = W.get(path)
        if r.status != 400 or r.code != "invalid_parameter":
            bad.append("%s -> %d %s" % (path, r.status, r.code))
        elif param not in r.json["detail"]:
            bad.append("%s: detail %r does not name %s" % (path, r.json["detail"], param))
    check(not bad, "; ".join(bad))


def test_good_query_parameters_accepted():
    jid = JOB["id"]
    for q in ("/v1/jobs?limit=1", "/v1/jobs?limit=500", "/v1/jobs?state=SUCCEEDED,CANCELLED",
              "/v1/jobs/%d/metrics/loss_total?max_points=2" % jid,
              "/v1/jobs/%d/metrics/loss_total?max_points=0&after_step=0&limit=1&format=json" % jid,
              "/v1/jobs/%d/metrics/loss_total?limit=100000" % jid):
        expect(W.get(q), 200)


def test_unknown_route_is_404_not_found():
    for path in ("/v1/nope", "/v1/jobs/%d/bogus" % JOB["id"], "/v2/jobs", "/v1/jobs/"):
        expect(W.get(path), 404, "not_found")


def test_wrong_method_is_405_with_allow():
    for method, path, allowed in (("PUT", "/v1/jobs", {"GET", "POST"}),
                                  ("DELETE", "/healthz", {"GET"}),
                                  ("PATCH", "/v1/jobs/%d" % JOB["id"], {"GET", "DELETE"}),
                                  ("GET", "/v1/jobs/%d/cancel" % JOB["id"], {"POST"})):
        r = W.request(method, path)
        expect(r, 405, "method_not_allowed")
        allow = {m.strip() for m in (r.header("Allow") or "").split(",") if m.strip()}
        check(allowed <= allow, "%s %s: Allow %r lacks %s" % (method, path, r.header("Allow"), allowed))


def test_unknown_job_is_404_job_not_found():
    for path in ("/v1/jobs/987654", "/v1/jobs/987654/metrics", "/v1/jobs/987654/checkpoints",
                 "/v1/jobs/987654/metrics/loss_total", "/v1/jobs/987654/events",
                 "/v1/jobs/987654/checkpoints/latest"):
        expect(W.get(path), 404, "job_not_found")
    for path in ("/v1/jobs/987654/cancel", "/v1/jobs/987654/pause", "/v1/jobs/987654/resume"):
        expect(W.post(path), 404, "job_not_found")
    expect(W.delete("/v1/jobs/987654"), 404, "job_not_found")
    expect(W.delete("/v1/tokens/987654"), 404, "token_not_found")


def test_non_numeric_ids_are_client_errors():
    for path in ("/v1/jobs/abc", "/v1/jobs/-1", "/v1/jobs/1.5", "/v1/jobs/99999999999999999999999",
                 "/v1/jobs/%d/checkpoints/abc" % JOB["id"]):
        r = W.get(path)
        check((r.status, r.code) in ((400, "invalid_parameter"), (404, "job_not_found"),
                                     (404, "checkpoint_not_found"), (404, "not_found")),
              "GET %s -> %d %s" % (path, r.status, r.code))


def test_daemon_alive_at_the_end():
    check(D.alive(), "the daemon exited")
    expect(W.get("/healthz", token=None), 200)
