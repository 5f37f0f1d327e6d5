"""Service routes: the route table against openapi.yaml, /healthz, /readyz,
/v1/version, /v1/openapi.yaml, /v1/datasets, /v1/job-schema and /metrics."""

import http.client
import os
import re
import subprocess

import dimd_harness as H
from dimd_harness import Failure, check, eq, expect

D = None
W = None


def setup_module():
    global D, W
    D = H.Daemon(["--workers", "1"]).start()
    W = D.client()


def dimd_routes():
    p = subprocess.run([H.DIMD, "routes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    check(p.returncode == 0, "dimd routes exited %d: %s" % (p.returncode, H.short(p.stderr.decode())))
    table = {}
    for line in p.stdout.decode().splitlines():
        parts = line.split()
        check(len(parts) == 3, "dimd routes: line %r is not METHOD PATH SCOPE" % line)
        m, path, scope = parts
        check(scope in ("none", "read", "write"), "dimd routes: scope %r in %r" % (scope, line))
        check((m, path) not in table, "dimd routes: %s %s listed twice" % (m, path))
        table[(m, path)] = scope
    check(table, "dimd routes printed nothing")
    return table


def test_route_table_equals_openapi_paths():
    served = dimd_routes()
    documented = H.contract().routes()
    only_served = sorted("%s %s" % k for k in set(served) - set(documented))
    only_doc = sorted("%s %s" % k for k in set(documented) - set(served))
    check(not only_served and not only_doc,
          "served but not in openapi.yaml: %s; in openapi.yaml but not served: %s" % (
              only_served, only_doc))
    wrong = ["%s %s: served %s, documented %s" % (k[0], k[1], served[k], documented[k])
             for k in served if served[k] != documented[k]]
    check(not wrong, "scopes differ: %s" % wrong)


def test_listens_on_loopback_and_prints_token_file():
    check(D.host == "127.0.0.1", "listening on %s, expected 127.0.0.1 by default" % D.url)
    eq(D.token_file, D.state_dir + "/token", "token file path")


def test_healthz():
    r = expect(W.get("/healthz", token=None), 200)
    eq(r.json, {"status": "ok"}, "/healthz body")


def test_readyz():
    r = expect(W.get("/readyz", token=None), 200)
    eq(r.json["status"], "ready", "status")
    eq(r.json["workers"], 1, "workers (started with --workers 1)")
    eq(r.json["queue_depth"], 0, "queue_depth")


def test_version():
    r = expect(W.get("/v1/version", token=None), 200)
    p = subprocess.run([H.DIMD, "version"], stdout=subprocess.PIPE, timeout=30)
    m = re.fullmatch(r"dimd (\S+)\n", p.stdout.decode())
    check(m, "dimd version printed %r" % p.stdout)
    eq(r.json["version"], m.group(1), "version vs `dimd version`")
    eq(r.json["api"], "v1", "api")
    check(r.json["schema_version"] >= 1, "schema_version %r" % r.json["schema_version"])


def test_openapi_document_served_byte_for_byte():
    r = expect(W.get("/v1/openapi.yaml", token=None), 200)
    raw = H.contract().raw
    if r.body != raw:
        i = next((k for k in range(min(len(r.body), len(raw))) if r.body[k] != raw[k]),
                 min(len(r.body), len(raw)))
        raise Failure("served document (%d bytes) differs from openapi.yaml (%d bytes) at byte %d "
                      "(rebuild dimd after editing openapi.yaml)" % (len(r.body), len(raw), i))


def test_datasets_lists_fashion_mnist_only():
    r = expect(W.get("/v1/datasets"), 200)
    names = [(d["name"], d["kind"]) for d in r.json["datasets"]]
    eq(names, [("fashion-mnist", "builtin")], "datasets without --data_roots")


def test_job_schema_lists_every_job_key_with_defaults():
    r = expect(W.get("/v1/job-schema"), 200)
    js = H.contract().schema("JobSubmit")["properties"]
    fields = {f["name"]: f for f in r.json["fields"]}
    eq(len(fields), len(r.json["fields"]), "field names unique")
    eq(sorted(fields), sorted(js), "job-schema field names vs openapi.yaml JobSubmit")
    problems = []
    for name, f in fields.items():
        want = js[name]
        if f["type"] != want["type"]:
            problems.append("%s type %s vs %s" % (name, f["type"], want["type"]))
        for k in ("default", "minimum", "maximum", "enum"):
            w = want.get(k)
            if k == "enum" and w is not None:
                w = [e for e in w if e is not None]
                if name == "best_metric":
                    continue  # the daemon checks it against the job's own metrics
            if k in want and f.get(k) != w:
                problems.append("%s %s %r vs openapi %r" % (name, k, f.get(k), w))
        if not f["help"]:
            problems.append("%s: empty help" % name)
    check(not problems, "; ".join(problems))


PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?$')
PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def scrape():
    r = expect(W.get("/metrics"), 200)
    ctype = r.header("Content-Type")
    check("version=0.0.4" in ctype, "Content-Type %r lacks version=0.0.4" % ctype)
    samples = []
    types = {}
    for line in r.body.decode().splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.match(r"# TYPE (\S+) (\S+)$", line)
            if m:
                types[m.group(1)] = m.group(2)
            continue
        m = PROM_LINE.match(line)
        check(m, "/metrics: unparsable line %r" % line)
        labels = {}
        if m.group(2):
            pos = 0
            text = m.group(2)
            while pos < len(text):
                lm = PROM_LABEL.match(text, pos)
                check(lm, "/metrics: bad labels in %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            value = float(m.group(3))
        except ValueError:
            raise Failure("/metrics: bad value in %r" % line)
        samples.append((m.group(1), labels, value))
    return samples, types


def find(samples, name, **labels):
    return [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]


def test_prometheus_metrics():
    for _ in range(2):
        expect(W.get("/healthz", token=None), 200)
    before, _ = scrape()
    for _ in range(3):
        expect(W.get("/healthz", token=None), 200)
    expect(W.get("/v1/jobs/987654"), 404)
    samples, types = scrape()
    for s in H.JOB_STATES:
        v = find(samples, "dimd_jobs", state=s)
        eq(len(v), 1, 'samples of dimd_jobs{state="%s"}' % s)
    eq(find(samples, "dimd_queue_depth"), [0.0], "dimd_queue_depth")
    eq(len(find(samples, "dimd_training_steps_total")), 1, "dimd_training_steps_total samples")
    h0 = find(before, "dimd_http_requests_total", route="/healthz", method="GET", status="200")
    h1 = find(samples, "dimd_http_requests_total", route="/healthz", method="GET", status="200")
    check(h0 and h1, 'no dimd_http_requests_total{route="/healthz",method="GET",status="200"}')
    eq(h1[0] - h0[0], 3.0, "GET /healthz 200 counted between two scrapes")
    nf = find(samples, "dimd_http_requests_total", route="/v1/jobs/{id}", method="GET", status="404")
    check(nf and nf[0] >= 1, "GET /v1/jobs/987654 (404) not counted under route /v1/jobs/{id}")
    raw_routes = [l.get("route") for n, l, v in samples if l.get("route", "").find("987654") >= 0]
    check(not raw_routes, "a route label holds a raw path: %s" % raw_routes)
    buckets = [(l, v) for n, l, v in samples if n == "dimd_http_request_duration_seconds_bucket"
               and l.get("route") == "/healthz"]
    check(buckets, "no dimd_http_request_duration_seconds_bucket for /healthz")
    inf = [v for l, v in buckets if l.get("le") == "+Inf"]
    check(inf, 'no le="+Inf" bucket for /healthz')
    cnt = find(samples, "dimd_http_request_duration_seconds_count", route="/healthz")
    check(cnt and cnt[0] == inf[0], "histogram _count %r != +Inf bucket %r" % (cnt, inf))
    check(find(samples, "dimd_http_request_duration_seconds_sum", route="/healthz"),
          "no histogram _sum for /healthz")
    les = sorted(float(l["le"]) for l, v in buckets if l.get("le") != "+Inf")
    vals = [v for l, v in sorted(((l, v) for l, v in buckets if l.get("le") != "+Inf"),
                                 key=lambda lv: float(lv[0]["le"]))]
    check(all(a <= b for a, b in zip(vals, vals[1:])), "histogram buckets not cumulative: %s" % vals)
    check(les, "histogram has no finite buckets")
    eq(types.get("dimd_http_requests_total"), "counter", "TYPE of dimd_http_requests_total")
    eq(types.get("dimd_http_request_duration_seconds"), "histogram",
       "TYPE of dimd_http_request_duration_seconds")
    eq(types.get("dimd_jobs"), "gauge", "TYPE of dimd_jobs")
    eq(types.get("dimd_encode_forward_seconds_total"), "counter",
       "TYPE of dimd_encode_forward_seconds_total")
    eq(find(samples, "dimd_encode_forward_seconds_total"), [0.0], "forward seconds before any encode")


def thread_nices(pid):
    """{tid: nice} of a process's threads, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        out[int(tid)] = int(fields[16])  # field 19 of stat; fields[0] is field 3
    return out


def test_connection_threads_run_at_http_thread_nice():
    # the polling and handler threads stay after the request (they serve every connection)
    conn = http.client.HTTPConnection("127.0.0.1", D.port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        eq(conn.getresponse().read()[:1], b"{", "healthz body")
        nices = thread_nices(D.proc.pid)
        eq(nices.get(D.proc.pid), 0, "the main thread's nice")
        check(5 in nices.values(), "no thread at nice 5 (the default http_thread_nice): %s" %
              sorted(nices.values()))
        check(set(nices.values()) <= {0, 5}, "nices %s" % sorted(set(nices.values())))
    finally:
        conn.close()
    # http_thread_nice 0 leaves every thread as it was
    d0 = H.Daemon(["--workers", "1", "--http_thread_nice", "0"]).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", d0.port, timeout=30)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        eq(set(thread_nices(d0.proc.pid).values()), {0}, "nices with http_thread_nice 0")
        conn.close()
    finally:
        d0.stop()
    r = subprocess.run([H.DIMD, "serve", "--http_thread_nice", "20"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    eq(r.returncode, 2, "exit status for http_thread_nice 20")
    check(b"http_thread_nice" in r.stderr, "the error names the setting: %r" % r.stderr[:300])


def test_prometheus_jobs_by_state_follow_a_job():
    job = W.submit(dict(H.SMALL, steps=100000, checkpoint_every=100000))
    r = expect(W.post("/v1/jobs/%d/cancel" % job["id"]), 200)
    eq(r.json["state"], "CANCELLED", "state after cancel")
    samples, _ = scrape()
    eq(find(samples, "dimd_jobs", state="CANCELLED"), [1.0], 'dimd_jobs{state="CANCELLED"}')
    for s in ("QUEUED", "RUNNING", "PAUSED", "SUCCEEDED", "FAILED"):
        eq(find(samples, "dimd_jobs", state=s), [0.0], 'dimd_jobs{state="%s"}' % s)
