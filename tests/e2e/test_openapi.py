"""openapi.yaml on its own: well-formed references, a working example for every
request and response body (each validates against its own schema), the
validator itself, and the job schema consistent with the Hyperparameters one."""

import re

import dimd_harness as H
from dimd_harness import Failure, check, eq

C = None


def setup_module():
    global C
    C = H.contract()


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, path + "/" + str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + "/" + str(i))


def _media_examples(media):
    """(label, value) of a media type object's example(s)."""
    out = []
    if "example" in media:
        out.append(("example", media["example"]))
    for name, ex in (media.get("examples") or {}).items():
        ex = C.resolve(ex)
        check("value" in ex, "examples/%s has no value" % name)
        out.append(("examples/" + name, ex["value"]))
    return out


def _bodies():
    """Every (where, media type, media object) of requests and responses."""
    for (method, tmpl), op in C.ops.items():
        rb = op.get("requestBody")
        if rb:
            rb = C.resolve(rb)
            for mt, media in rb.get("content", {}).items():
                yield "%s %s request" % (method, tmpl), mt, media
        for status, resp in op.get("responses", {}).items():
            resp = C.resolve(resp)
            for mt, media in (resp.get("content") or {}).items():
                yield "%s %s %s" % (method, tmpl, status), mt, media


def test_document_is_openapi_303_and_refs_resolve():
    eq(C.doc.get("openapi"), "3.0.3", "openapi version")
    check(C.doc["info"]["version"], "info.version")
    bad = []
    for path, node in _walk(C.doc):
        if "$ref" in node and isinstance(node["$ref"], str):
            try:
                C.resolve(node)
            except Exception as e:
                bad.append("%s -> %s (%s)" % (path, node["$ref"], e))
    check(not bad, "unresolvable $refs: %s" % "; ".join(bad[:5]))
    schemes = C.doc["components"]["securitySchemes"]
    eq(schemes["bearerAuth"]["type"], "http", "bearerAuth type")
    eq(schemes["bearerAuth"]["scheme"], "bearer", "bearerAuth scheme")


def test_every_body_has_an_example_that_validates():
    n = 0
    problems = []
    for where, mt, media in _bodies():
        exs = _media_examples(media)
        if not exs:
            problems.append("%s %s: no example" % (where, mt))
            continue
        schema = media.get("schema")
        if schema is None:
            problems.append("%s %s: no schema" % (where, mt))
            continue
        for label, value in exs:
            n += 1
            errs = C.validate(schema, value)
            if errs:
                problems.append("%s %s %s: %s" % (where, mt, label, "; ".join(errs[:2])))
    check(not problems, "%d problems: %s" % (len(problems), " || ".join(problems[:6])))
    check(n >= 60, "only %d body examples checked" % n)


def test_every_schema_example_validates():
    n = 0
    problems = []

    def visit(schema, where):
        nonlocal n
        if not isinstance(schema, dict) or "$ref" in schema:
            return
        if "example" in schema:
            n += 1
            errs = C.validate(schema, schema["example"])
            if errs:
                problems.append("%s: %s" % (where, "; ".join(errs[:2])))
        for k in ("properties",):
            for name, sub in (schema.get(k) or {}).items():
                visit(sub, where + "." + name)
        for k in ("items", "additionalProperties"):
            if isinstance(schema.get(k), dict):
                visit(schema[k], where + "/" + k)
        for k in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(schema.get(k) or []):
                visit(sub, "%s/%s/%d" % (where, k, i))

    for name, schema in C.doc["components"]["schemas"].items():
        visit(schema, name)
    for name, p in C.doc["components"].get("parameters", {}).items():
        if "example" in p:
            n += 1
            errs = C.validate(p["schema"], p["example"])
            if errs:
                problems.append("parameter %s: %s" % (name, "; ".join(errs)))
    check(not problems, " || ".join(problems[:6]))
    check(n >= 30, "only %d schema examples" % n)
    missing = [k for k, s in C.doc["components"]["schemas"].items() if "example" not in s]
    check(not missing, "component schemas without an example: %s" % missing)


def test_problem_examples_are_consistent():
    codes = set(C.schema("ProblemCode")["enum"])
    problems = []
    for where, mt, media in _bodies():
        if mt != "application/problem+json":
            continue
        status = where.rsplit(" ", 1)[1]
        for label, value in _media_examples(media):
            if value.get("code") not in codes:
                problems.append("%s %s: code %r unknown" % (where, label, value.get("code")))
            if str(value.get("status")) != status:
                problems.append("%s %s: status %r" % (where, label, value.get("status")))
            if value.get("type") != "urn:dimd:problem:%s" % value.get("code"):
                problems.append("%s %s: type %r" % (where, label, value.get("type")))
    check(not problems, " || ".join(problems[:6]))


def test_operations_declare_scope_security_and_errors():
    problems = []
    for (method, tmpl), op in C.ops.items():
        w = "%s %s" % (method, tmpl)
        scope = op.get("x-scope")
        resp = op.get("responses", {})
        if scope not in ("none", "read", "write"):
            problems.append("%s: x-scope %r" % (w, scope))
            continue
        if scope == "none":
            if op.get("security") != []:
                problems.append("%s: scope none needs security: []" % w)
        else:
            if op.get("security") == []:
                problems.append("%s: scope %s but security: []" % (w, scope))
            for s in ("401", "403"):
                if s not in resp:
                    problems.append("%s: no %s response" % (w, s))
            sec = op.get("security", C.doc.get("security"))
            names = {k for alt in sec for k in alt}
            want = {"bearerAuth", "accessToken"} if method == "GET" else {"bearerAuth"}
            if names != want:
                problems.append("%s: security schemes %s, expected %s" % (w, sorted(names), sorted(want)))
        for st in ("403", "500"):
            if st not in resp:
                problems.append("%s: no %s" % (w, st))
        if "503" not in resp:
            problems.append("%s: no 503 (shutting_down)" % w)
        if method == "POST" and "413" not in resp:
            problems.append("%s: no 413 (body_too_large)" % w)
        if "{id}" in tmpl and "404" not in resp:
            problems.append("%s: no 404" % w)
        if "requestBody" in op:
            for s in ("400", "413", "415", "422"):
                if s not in resp:
                    problems.append("%s: has a body but no %s" % (w, s))
        if not any(s.startswith("2") for s in resp):
            problems.append("%s: no success response" % w)
    check(not problems, " || ".join(problems[:8]))
    check(len(C.ops) >= 22, "only %d operations" % len(C.ops))


def test_job_submit_hyperparameters_match_hyperparameters_schema():
    hp = C.schema("Hyperparameters")["properties"]
    js = C.schema("JobSubmit")
    eq(js.get("additionalProperties"), False, "JobSubmit additionalProperties")
    props = js["properties"]
    for name, h in hp.items():
        check(name in props, "JobSubmit lacks hyperparameter %s" % name)
        for k in ("type", "minimum", "maximum", "enum", "default"):
            if name == "channels" and k == "default":
                continue  # the job's default is the dataset's channel count
            got = props[name].get(k)
            if k == "enum" and got is not None:
                got = [e for e in got if e is not None]  # null: the default
            eq(got, h.get(k), "JobSubmit.%s.%s" % (name, k))
    spec = C.schema("JobSpec")
    # sweep_id and trial: written by POST /v1/sweeps on its trials only (POST /v1/jobs refuses them)
    eq(set(spec["properties"]) - {"sweep_id", "trial"}, set(props), "JobSpec keys vs JobSubmit keys")
    check({"sweep_id", "trial"} <= set(spec["properties"]), "JobSpec lacks sweep_id, trial")
    eq(set(spec["required"]), set(props), "JobSpec required keys")
    for name, p in props.items():
        check(p.get("description"), "JobSubmit.%s has no description" % name)
        check(p.get("type"), "JobSubmit.%s has no type" % name)
        check(p.get("nullable") is True, "JobSubmit.%s: null (the default) not allowed" % name)
        if "enum" in p:
            check(None in p["enum"], "JobSubmit.%s: nullable enum without null" % name)


def test_validator_rejects_what_it_must():
    """The validator the other tests rely on: known-bad values fail, good pass."""
    job = C.resolve({"$ref": "#/components/examples/JobRunning"})["value"]
    js = {"$ref": "#/components/schemas/Job"}
    eq(C.validate(js, job), [], "example job")
    cases = []
    bad = dict(job, extra=1)
    cases.append(("extra member", bad))
    bad = dict(job)
    del bad["spec"]
    cases.append(("missing member", bad))
    cases.append(("wrong state", dict(job, state="DONE")))
    cases.append(("bool as integer", dict(job, step=True)))
    cases.append(("float as integer", dict(job, step=1.5)))
    cases.append(("negative", dict(job, restarts=-1)))
    cases.append(("null not nullable", dict(job, step=None)))
    cases.append(("bad time", dict(job, created_at="yesterday")))
    cases.append(("bad nested", dict(job, spec=dict(job["spec"], lr=2))))
    cases.append(("bad nested enum", dict(job, spec=dict(job["spec"], channels=2))))
    cases.append(("bad error object", dict(job, error={"code": "x"})))
    for what, v in cases:
        check(C.validate(js, v), "validator accepted a job with %s" % what)
    eq(C.validate(js, dict(job, error={"code": "x", "message": "y"}, started_at=None)), [],
       "nullable members")
    mv = {"$ref": "#/components/schemas/MetricValue"}
    for good in (0.5, 3, "NaN", "Infinity", "-Infinity"):
        eq(C.validate(mv, good), [], "MetricValue %r" % (good,))
    for badv in ("nan", None, True, [1]):
        check(C.validate(mv, badv), "MetricValue accepted %r" % (badv,))
    mp = {"$ref": "#/components/schemas/MetricPoint"}
    check(C.validate(mp, [1, 2]), "MetricPoint accepted 2 items")
    check(C.validate({"$ref": "#/components/schemas/TokenCreated"},
                     {"id": 1, "name": "a", "scope": "admin", "created_at": "2026-11-28T01:00:00.000Z",
                      "token": "dimd_" + "0" * 48}), "scope admin accepted")
    try:
        H.strict_json(b'{"a": NaN}')
        raise Failure("strict_json accepted NaN")
    except ValueError:
        pass
    try:
        H.strict_json(b'{"a": 1, "a": 2}')
        raise Failure("strict_json accepted a duplicate key")
    except ValueError:
        pass


def test_model_and_encode_schemas_are_closed():
    """The version object, the encode and neighbours outputs and the encode
    request refuse unknown members and wrong shapes."""
    v1 = C.resolve({"$ref": "#/components/examples/ModelVersionV1"})["value"]
    mv = {"$ref": "#/components/schemas/ModelVersion"}
    eq(C.validate(mv, v1), [], "example version")
    eq(C.validate(mv, dict(v1, job_id=None)), [], "a version whose job was deleted")
    for what, v in (("extra member", dict(v1, extra=1)),
                    ("extra input member", dict(v1, input=dict(v1["input"], depth=1))),
                    ("extra tap", dict(v1, taps=dict(v1["taps"], pool=3))),
                    ("extra link", dict(v1, links=dict(v1["links"], up="/"))),
                    ("version without v", dict(v1, version="1")),
                    ("bad sha256", dict(v1, checkpoint_sha256="ABC")),
                    ("channels 2", dict(v1, input=dict(v1["input"], channels=2)))):
        check(C.validate(mv, v), "ModelVersion accepted %s" % what)
    summary = {"$ref": "#/components/schemas/ModelSummary"}
    eq(C.validate(summary, {"name": "shoes", "versions": 1, "latest": v1}), [], "summary")
    eq(C.validate(summary, {"name": "shoes", "versions": 0, "latest": None}), [], "empty summary")
    check(C.validate(summary, {"name": "shoes", "versions": 1, "latest": dict(v1, x=1)}),
          "ModelSummary accepted a latest with an extra member")
    er = C.schema("EncodeResult")["example"]
    ers = {"$ref": "#/components/schemas/EncodeResult"}
    eq(C.validate(ers, er), [], "encode example")
    check(C.validate(ers, dict(er, extra=1)), "EncodeResult accepted an extra member")
    check(C.validate(ers, dict(er, tap="pool")), "EncodeResult accepted tap pool")
    check(C.validate(ers, dict(er, embeddings=[["0.5"]])), "EncodeResult accepted a string")
    nr = C.schema("NeighborsResult")["example"]
    nrs = {"$ref": "#/components/schemas/NeighborsResult"}
    eq(C.validate(nrs, nr), [], "neighbors example")
    check(C.validate(nrs, dict(nr, extra=1)), "NeighborsResult accepted an extra member")
    check(C.validate(nrs, dict(nr, neighbors=[dict(nr["neighbors"][0], distance=1)])),
          "Neighbor accepted an extra member")
    req = {"$ref": "#/components/schemas/EncodeRequest"}
    eq(C.validate(req, {"images": ["aGk="]}), [], "images request")
    eq(C.validate(req, {"tensors": [{"shape": [1, 1, 1], "data": [0.5]}]}), [], "tensors request")
    for what, v in (("both keys", {"images": ["aGk="], "tensors": []}), ("neither key", {}),
                    ("an unknown key", {"images": ["aGk="], "x": 1}),
                    ("a value above 1", {"tensors": [{"shape": [1, 1, 1], "data": [1.5]}]}),
                    ("a 2-d shape", {"tensors": [{"shape": [1, 1], "data": [0.5]}]})):
        check(C.validate(req, v), "EncodeRequest accepted %s" % what)
    pr = {"$ref": "#/components/schemas/ModelPromote"}
    eq(C.validate(pr, {"name": "a", "job_id": 1, "checkpoint": "best"}), [], "promote best")
    eq(C.validate(pr, {"name": "a", "job_id": 1, "checkpoint": 300}), [], "promote a step")
    for what, v in (("checkpoint newest", {"name": "a", "job_id": 1, "checkpoint": "newest"}),
                    ("an upper-case name", {"name": "A", "job_id": 1}),
                    ("no job_id", {"name": "a"}),
                    ("an unknown key", {"name": "a", "job_id": 1, "x": 1})):
        check(C.validate(pr, v), "ModelPromote accepted %s" % what)


def test_routes_match_the_route_table_of_the_design():
    """The document's operations are the design's route table (scope included)."""
    want = {
        ("GET", "/healthz"): "none", ("GET", "/readyz"): "none", ("GET", "/v1/version"): "none",
        ("GET", "/v1/openapi.yaml"): "none", ("GET", "/metrics"): "read",
        ("GET", "/v1/datasets"): "read", ("GET", "/v1/job-schema"): "read",
        ("POST", "/v1/jobs"): "write", ("GET", "/v1/jobs"): "read",
        ("GET", "/v1/jobs/{id}"): "read", ("DELETE", "/v1/jobs/{id}"): "write",
        ("POST", "/v1/jobs/{id}/cancel"): "write", ("POST", "/v1/jobs/{id}/pause"): "write",
        ("POST", "/v1/jobs/{id}/resume"): "write", ("GET", "/v1/jobs/{id}/metrics"): "read",
        ("GET", "/v1/jobs/{id}/metrics/{key}"): "read", ("GET", "/v1/jobs/{id}/events"): "read",
        ("GET", "/v1/jobs/{id}/checkpoints"): "read",
        ("GET", "/v1/jobs/{id}/checkpoints/{step}"): "read",
        ("GET", "/v1/tokens"): "write", ("POST", "/v1/tokens"): "write",
        ("DELETE", "/v1/tokens/{id}"): "write",
        # models, encode, neighbours (issue 4)
        ("POST", "/v1/models"): "write", ("GET", "/v1/models"): "read",
        ("GET", "/v1/models/{name}"): "read",
        ("GET", "/v1/models/{name}/versions/{version}"): "read",
        ("DELETE", "/v1/models/{name}/versions/{version}"): "write",
        ("POST", "/v1/models/{name}/versions/{version}/pin"): "write",
        ("POST", "/v1/models/{name}/versions/{version}/unpin"): "write",
        ("GET", "/v1/models/{name}/versions/{version}/checkpoint"): "read",
        ("POST", "/v1/models/{name}/encode"): "read",
        ("POST", "/v1/models/{name}/neighbors"): "read",
    }
    got = C.routes()
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    check(not missing, "openapi.yaml lacks %s" % missing)
    # Routes added since the design are allowed only with a scope.
    for k in extra:
        check(got[k] in ("none", "read", "write"), "%s has no x-scope" % (k,))
    wrong = ["%s %s: %s" % (k[0], k[1], got[k]) for k in want if got.get(k) != want[k]]
    check(not wrong, "scopes differ from the design: %s" % wrong)


def test_yaml_has_no_duplicate_keys():
    import yaml

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = set()
        for k, _ in node.value:
            key = loader.construct_object(k, deep=deep)
            if key in keys:
                raise Failure("duplicate key %r at line %d" % (key, k.start_mark.line + 1))
            keys.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(C.raw, Loader=Strict)


def test_yaml_text_has_no_tabs_and_ends_with_newline():
    text = C.raw.decode("utf-8")
    check("\t" not in text, "openapi.yaml contains a tab")
    check(text.endswith("\n"), "openapi.yaml does not end with a newline")
    check(re.search(r"^    Hyperparameters:$", text, re.M), "Hyperparameters schema missing")
