"""dimd_harness.py - what the API tests share: the real daemon on a free port
with a temporary state directory, an HTTP client that checks every response
against openapi.yaml, a Server-Sent Events reader, a minimal OpenAPI 3.0 schema
validator, image bodies (PNG writer, PNG bomb, multipart, float32 tensors,
Fashion-MNIST images) and waiting helpers.

Standard library plus PyYAML only (Debian: python3, python3-yaml).
"""

import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import zlib

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
OPENAPI_PATH = os.path.join(REPO, "openapi.yaml")

# Set by the runner (run_tests.py): the dimd binary under test.
DIMD = os.environ.get("DIMD", os.path.join(REPO, "build", "dimd"))
# Deadlines are multiplied by this (sanitizer builds are 2-3x slower).
SCALE = float(os.environ.get("DIMD_TEST_TIMEOUT_SCALE", "1"))

JOB_STATES = ["QUEUED", "RUNNING", "PAUSED", "SUCCEEDED", "FAILED", "CANCELLED"]
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
LOSS_KEYS = ["loss_local", "loss_global", "loss_prior_enc", "loss_prior_disc", "loss_total"]

# A small, fast model (a step takes ~25 ms on 2 cores).
SMALL = {"dataset": "fashion-mnist", "batch": 8, "mi_dim": 16, "y_dim": 16, "probe": "none"}


def set_binary(path):
    global DIMD, SCALE
    DIMD = os.path.abspath(path)
    if "DIMD_TEST_TIMEOUT_SCALE" not in os.environ and "san" in os.path.basename(
            os.path.dirname(DIMD)):
        SCALE = 3.0


class Failure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that cannot run on this machine (e.g. it cannot mount a
    file system); the runner prints "skip NAME: reason" and counts it apart."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


def short(x, n=300):
    s = x if isinstance(x, str) else repr(x)
    s = s.replace("\n", "|")
    return s if len(s) <= n else s[:n] + "..."


# ---------------------------------------------------------------- strict JSON

def _no_constants(name):
    raise ValueError("non-JSON constant %s" % name)


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def strict_json(data):
    """Parses JSON as a conforming client would: no NaN/Infinity literals, no
    duplicate keys. Raises ValueError."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)


# ---------------------------------------------------------------- validator

def _same(a, b):
    """Equality for enum/const checks that does not confuse True with 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _is_type(v, t):
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    raise ValueError("unknown schema type %r" % t)


class OpenAPI:
    """openapi.yaml: its operations, and validation of values against its schemas."""

    def __init__(self, path=OPENAPI_PATH):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.doc = yaml.safe_load(self.raw)
        self.ops = {}  # (METHOD, template) -> operation
        self._patterns = []  # (regex, template)
        for tmpl, item in self.doc["paths"].items():
            for m, op in item.items():
                if m in ("get", "post", "put", "delete", "patch", "head", "options"):
                    self.ops[(m.upper(), tmpl)] = op
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tmpl)) + "$"
            self._patterns.append((re.compile(rx), tmpl))

    # -- lookups
    def resolve(self, obj):
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("external $ref %s" % ref)
            node = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                node = node[part]
            obj = node
            seen += 1
            if seen > 50:
                raise ValueError("$ref loop at %s" % ref)
        return obj

    def schema(self, name):
        return self.doc["components"]["schemas"][name]

    def template_for(self, path):
        path = path.split("?", 1)[0]
        for rx, tmpl in self._patterns:
            if rx.match(path):
                return tmpl
        return None

    def operation(self, method, path):
        tmpl = self.template_for(path)
        if tmpl is None:
            return None, None
        return tmpl, self.ops.get((method.upper(), tmpl))

    def routes(self):
        """{(METHOD, template): scope} from the document's x-scope."""
        return {k: op.get("x-scope") for k, op in self.ops.items()}

    # -- schema validation
    def validate(self, schema, value, where="$"):
        errs = []
        self._v(schema, value, where, errs)
        return errs

    def _v(self, s, v, p, errs):
        s = self.resolve(s)
        if not isinstance(s, dict):
            errs.append("%s: bad schema %r" % (p, s))
            return
        comp = [k for k in ("oneOf", "anyOf", "allOf") if k in s]
        if v is None:
            if s.get("nullable"):
                return
            if not comp:
                if "type" in s or "enum" in s or "properties" in s:
                    errs.append("%s: null where %s is required" % (p, s.get("type", "a value")))
                return
        if "type" in s and v is not None:
            if not _is_type(v, s["type"]):
                errs.append("%s: expected %s, got %s" % (p, s["type"], short(json.dumps(v), 80)))
                return
        if "enum" in s and not any(_same(v, e) for e in s["enum"]):
            errs.append("%s: %s is not one of %s" % (p, short(json.dumps(v), 80), s["enum"]))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in s:
                if v < s["minimum"] or (s.get("exclusiveMinimum") and v == s["minimum"]):
                    errs.append("%s: %r is below the minimum %r" % (p, v, s["minimum"]))
            if "maximum" in s:
                if v > s["maximum"] or (s.get("exclusiveMaximum") and v == s["maximum"]):
                    errs.append("%s: %r is above the maximum %r" % (p, v, s["maximum"]))
        if isinstance(v, str):
            if "minLength" in s and len(v) < s["minLength"]:
                errs.append("%s: string shorter than %d" % (p, s["minLength"]))
            if "maxLength" in s and len(v) > s["maxLength"]:
                errs.append("%s: string longer than %d" % (p, s["maxLength"]))
            if "pattern" in s and not re.search(s["pattern"], v):
                errs.append("%s: %s does not match %s" % (p, short(v, 80), s["pattern"]))
        if isinstance(v, list):
            if "minItems" in s and len(v) < s["minItems"]:
                errs.append("%s: %d items, at least %d required" % (p, len(v), s["minItems"]))
            if "maxItems" in s and len(v) > s["maxItems"]:
                errs.append("%s: %d items, at most %d allowed" % (p, len(v), s["maxItems"]))
            if "items" in s:
                for i, item in enumerate(v):
                    self._v(s["items"], item, "%s[%d]" % (p, i), errs)
                    if len(errs) > 20:
                        return
        if isinstance(v, dict):
            props = s.get("properties", {})
            for r in s.get("required", []):
                if r not in v:
                    errs.append("%s: required member %r is missing" % (p, r))
            addl = s.get("additionalProperties", True)
            for k, item in v.items():
                sub = "%s.%s" % (p, k)
                if k in props:
                    self._v(props[k], item, sub, errs)
                elif addl is False:
                    errs.append("%s: member not allowed by the schema" % sub)
                elif isinstance(addl, dict):
                    self._v(addl, item, sub, errs)
        if "allOf" in s:
            for sub in s["allOf"]:
                self._v(sub, v, p, errs)
        for key in ("oneOf", "anyOf"):
            if key in s:
                matches = 0
                sub_errs = []
                for sub in s[key]:
                    e = []
                    self._v(sub, v, p, e)
                    if e:
                        sub_errs.extend(e)
                    else:
                        matches += 1
                if matches == 0:
                    errs.append("%s: matches no schema of %s (%s)" % (p, key, "; ".join(sub_errs[:3])))
                elif key == "oneOf" and matches > 1:
                    errs.append("%s: matches %d schemas of oneOf" % (p, matches))

    # -- responses
    def check_response(self, method, path, status, headers, body):
        """Raises Failure unless the response is documented for the route,
        method and status, with the documented Content-Type, body schema and
        required headers. Undocumented routes (404/405 tests) must answer a
        Problem document."""
        tmpl, op = self.operation(method, path)
        where = "%s %s -> %d" % (method, path, status)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if op is None:
            check(status >= 400, "%s: %s is no route of openapi.yaml but answered %d" % (
                where, method + " " + path, status))
            check(ctype == "application/problem+json",
                  "%s: Content-Type %r, expected application/problem+json" % (where, ctype))
            self._check_json(self.schema("Problem"), body, where)
            return
        responses = op.get("responses", {})
        resp = responses.get(str(status))
        check(resp is not None, "%s: status %d is not documented for %s %s (documented: %s)" % (
            where, status, method, tmpl, ", ".join(sorted(responses))))
        resp = self.resolve(resp)
        declared = resp.get("headers") or {}
        encoding = headers.get("Content-Encoding")
        if encoding is not None:
            check("Content-Encoding" in declared,
                  "%s: Content-Encoding %r where none is documented" % (where, encoding))
            check(encoding == "gzip", "%s: Content-Encoding %r" % (where, encoding))
            body = gzip.decompress(body)  # the schema is the decoded body's
        for hname, h in declared.items():
            h = self.resolve(h)
            if h.get("required"):
                hv = headers.get(hname)
                check(hv is not None, "%s: required header %s missing" % (where, hname))
                hs = self.resolve(h.get("schema", {}))
                if hs.get("type") == "integer":
                    check(re.fullmatch(r"[0-9]+", hv.strip()) is not None,
                          "%s: header %s=%r is not an integer" % (where, hname, hv))
                else:
                    e = self.validate(hs, hv, "header " + hname)
                    check(not e, "%s: %s" % (where, "; ".join(e[:3])))
        content = resp.get("content")
        if not content:
            check(len(body) == 0, "%s: %d body bytes where none are documented" % (where, len(body)))
            return
        check(ctype in content, "%s: Content-Type %r is not one of %s" % (
            where, headers.get("Content-Type"), ", ".join(content)))
        media = content[ctype]
        schema = media.get("schema", {})
        if ctype.endswith("json"):
            self._check_json(schema, body, where)
        elif ctype.startswith("text/") or ctype == "application/yaml":
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Failure("%s: body is not UTF-8 text: %s" % (where, e))

    def _check_json(self, schema, body, where):
        try:
            value = strict_json(body)
        except ValueError as e:
            raise Failure("%s: body is not strict JSON (%s): %s" % (where, e, short(body)))
        errs = self.validate(schema, value)
        check(not errs, "%s: body does not match the schema: %s; body %s" % (
            where, "; ".join(errs[:4]), short(body)))


_CONTRACT = None


def contract():
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = OpenAPI()
    return _CONTRACT


# ---------------------------------------------------------------- daemon

_DAEMONS = []


class Daemon:
    """One `dimd serve` process. start() waits for its "listening on" and
    "token file" lines; its stdout and stderr go to files in the work directory."""

    def __init__(self, args=(), state_dir=None, workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="dimd-api-")
        self.state_dir = state_dir or os.path.join(self.workdir, "state")
        self.args = list(args)
        self.proc = None
        self.port = None
        self.url = None
        self.token = None
        self.token_file = None
        self.runs = 0
        _DAEMONS.append(self)

    @property
    def stdout_path(self):
        return os.path.join(self.workdir, "stdout.%d" % self.runs)

    @property
    def stderr_path(self):
        return os.path.join(self.workdir, "stderr.%d" % self.runs)

    def command(self):
        return [DIMD, "serve", "--state_dir", self.state_dir, "--port", "0"] + self.args

    def spawn(self):
        self.runs += 1
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, cwd=self.workdir)
        out.close()
        err.close()
        return self.proc

    def start(self, timeout=30):
        self.spawn()
        deadline = time.time() + timeout * SCALE
        listen = token = None
        while time.time() < deadline:
            text = self.read_stdout()
            m = re.search(r"^dimd: listening on (http://[^\s]+)$", text, re.M)
            if m:
                listen = m.group(1)
            m = re.search(r"^dimd: token file (.+)$", text, re.M)
            if m:
                token = m.group(1).strip()
            if listen and token:
                break
            if self.proc.poll() is not None:
                raise Failure("dimd serve exited with status %d before listening; stderr: %s" % (
                    self.proc.returncode, short(self.read_stderr(), 600)))
            time.sleep(0.02)
        else:
            self.kill()
            raise Failure("dimd serve printed no 'listening on' and 'token file' lines in %ds; "
                          "stdout: %s stderr: %s" % (timeout * SCALE, short(self.read_stdout()),
                                                     short(self.read_stderr())))
        u = urllib.parse.urlparse(listen)
        self.url = listen
        self.host = u.hostname
        self.port = u.port
        check(self.port and self.port > 0, "no port in %r" % listen)
        self.token_file = token
        with open(token) as f:
            lines = f.read().splitlines()
        check(len(lines) == 1 and lines[0], "token file %s: expected one line, got %r" % (token, lines))
        self.token = lines[0]
        return self

    def read_stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def read_stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout * SCALE)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL and reap (kill -9)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (SIGKILL and None after timeout)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        return rc

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self, token="write"):
        return Client(self, token)

    def log_tail(self, n=15):
        lines = self.read_stderr().splitlines()
        return lines[-n:]


def cleanup_all():
    while _DAEMONS:
        _DAEMONS.pop().cleanup()


def daemon_tails():
    out = []
    for d in _DAEMONS:
        for line in d.log_tail():
            out.append("[%s] %s" % (os.path.basename(d.workdir), line))
    return out


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.body = body
        self._json = None

    @property
    def json(self):
        if self._json is None:
            self._json = strict_json(self.body)
        return self._json

    def header(self, name):
        return self.headers.get(name)

    @property
    def code(self):
        """The problem code of an error response."""
        try:
            return self.json.get("code")
        except Exception:
            return None

    def __repr__(self):
        return "%s %s -> %d %s" % (self.method, self.path, self.status, short(self.body, 200))


def expect(r, status, code=None):
    """Raises unless r has the status (an int or a tuple) and problem code."""
    ok = r.status in status if isinstance(status, tuple) else r.status == status
    check(ok, "%s %s: expected status %s, got %d: %s" % (r.method, r.path, status, r.status,
                                                          short(r.body)))
    if code is not None:
        check(r.code == code, "%s %s: expected code %s, got %r: %s" % (r.method, r.path, code,
                                                                     r.code, short(r.body)))
    return r


class Client:
    """HTTP/1.1 to one daemon. token: "write" (the token file's), None, or a
    token text. Every response is checked against openapi.yaml unless
    validate=False is passed."""

    def __init__(self, daemon, token="write"):
        self.daemon = daemon
        self.token = token
        self.timeout = 60 * SCALE

    def _token(self, token):
        t = self.token if token is ... else token
        if t == "write":
            return self.daemon.token
        return t

    def connection(self):
        return http.client.HTTPConnection(self.daemon.host, self.daemon.port, timeout=self.timeout)

    def request(self, method, path, body=None, json_body=..., headers=None, token=...,
                validate=True, content_type=...):
        hdrs = {}
        tok = self._token(token)
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        if json_body is not ...:
            body = json.dumps(json_body).encode()
            if content_type is ...:
                content_type = "application/json"
        if content_type is not ... and content_type is not None:
            hdrs["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode()
        hdrs.update(headers or {})
        conn = self.connection()
        try:
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) before reading the whole body
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            rh = resp.headers
        finally:
            conn.close()
        r = Response(method, path, status, rh, data)
        if validate:
            contract().check_response(method, path, status, rh, data)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=..., **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- jobs
    def submit(self, spec, **kw):
        r = self.post("/v1/jobs", spec, **kw)
        expect(r, 201)
        return r.json

    def job(self, job_id):
        return expect(self.get("/v1/jobs/%d" % job_id), 200).json

    def wait_job(self, job_id, pred, timeout, what="condition"):
        """Polls the job until pred(job) holds; returns it."""
        deadline = time.time() + timeout * SCALE
        job = None
        while time.time() < deadline:
            job = self.job(job_id)
            if pred(job):
                return job
            if job["state"] in TERMINAL and not pred(job):
                break
            time.sleep(0.05)
        raise Failure("job %d: %s not reached (state %s, step %s/%s, error %r)" % (
            job_id, what, job and job["state"], job and job["step"], job and job["total_steps"],
            job and job["error"]))

    def wait_state(self, job_id, states, timeout=120):
        if isinstance(states, str):
            states = (states,)
        return self.wait_job(job_id, lambda j: j["state"] in states, timeout,
                             "state %s" % "/".join(states))

    def wait_step(self, job_id, step, timeout=120):
        return self.wait_job(job_id, lambda j: j["step"] >= step, timeout, "step >= %d" % step)

    def history(self, job_id, key, **params):
        q = urllib.parse.urlencode(params)
        r = expect(self.get("/v1/jobs/%d/metrics/%s%s" % (job_id, key, "?" + q if q else "")), 200)
        return r.json

    def full_history(self, job_id, key):
        h = self.history(job_id, key, limit=100000)
        check(h["next_after_step"] is None,
              "history of %s with limit 100000 has next_after_step %r" % (key, h["next_after_step"]))
        return h["points"]

    def events(self, job_id, last_event_id=None, query=None, token=..., timeout=None):
        return SSE(self, job_id, last_event_id, query, token, timeout)

    def sweep_events(self, sweep_id, last_event_id=None, timeout=None):
        """A sweep's Server-Sent Events (GET /v1/sweeps/{id}/events)."""
        return SSE(self, sweep_id, last_event_id, None, ..., timeout, resource="sweeps")

    # -- models
    def promote(self, name, job_id, checkpoint=..., **extra):
        """POST /v1/models; returns the new version object (expects 201)."""
        body = {"name": name, "job_id": job_id}
        if checkpoint is not ...:
            body["checkpoint"] = checkpoint
        body.update(extra)
        r = expect(self.post("/v1/models", body), 201)
        eq(r.header("Location"), r.json["links"]["self"], "Location of the new version")
        return r.json

    def encode(self, name, body, content_type, query=None, headers=None, route="encode", **kw):
        """POST /v1/models/NAME/encode (or neighbors) with a raw body."""
        path = "/v1/models/%s/%s" % (name, route)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.request("POST", path, body=body, content_type=content_type, headers=headers,
                            **kw)

    def embed(self, name, png, query=None):
        """The embeddings (list of rows) of one PNG body through encode (expects 200)."""
        r = expect(self.encode(name, png, "image/png", query), 200)
        return r.json["embeddings"]


# ---------------------------------------------------------------- SSE

DEADLINE = "deadline"


class SSE:
    """A Server-Sent Events stream of one job, parsed event by event; each
    event's data is checked against its schema in openapi.yaml."""

    def __init__(self, client, job_id, last_event_id=None, query=None, token=..., timeout=None,
                 resource="jobs"):
        self.client = client
        path = "/v1/%s/%d/events" % (resource, job_id)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        self.path = path
        hdrs = {"Accept": "text/event-stream"}
        tok = client._token(token)
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        if last_event_id is not None:
            hdrs["Last-Event-ID"] = str(last_event_id)
        self.conn = http.client.HTTPConnection(client.daemon.host, client.daemon.port,
                                               timeout=(timeout or 60) * SCALE)
        self.conn.request("GET", path, headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.comments = []
        self.retry = None
        self.ended = False
        c = contract()
        if self.status != 200:
            body = self.resp.read()
            c.check_response("GET", path, self.status, self.resp.headers, body)
            self.conn.close()
            self.ended = True
            self.error = Response("GET", path, self.status, self.resp.headers, body)
            return
        self.error = None
        ctype = (self.resp.headers.get("Content-Type") or "").split(";")[0].strip()
        check(ctype == "text/event-stream",
              "GET %s: Content-Type %r, expected text/event-stream" % (path, ctype))
        op = c.ops[("GET", "/v1/%s/{id}/events" % resource)]
        self.schemas = {k: {"$ref": v} for k, v in op["x-event-schemas"].items()}

    def next(self, deadline=None):
        """The next event as {"id": int, "event": str, "data": obj}, or None at
        the end of the stream. Comment lines are collected in self.comments.
        With a deadline (time.time() value): returns DEADLINE once it has
        passed (the stream is then unusable)."""
        if self.ended:
            return None
        ev = {}
        data = []
        while True:
            if deadline is not None:
                left = deadline - time.time()
                if left <= 0:
                    return DEADLINE
                self.set_timeout(left)
            try:
                raw = self.resp.readline()
            except (socket.timeout, TimeoutError):
                if deadline is not None and time.time() >= deadline - 0.05:
                    return DEADLINE
                raise Failure("GET %s: no event within the timeout" % self.path)
            if not raw:
                self.ended = True
                check(not ev and not data, "GET %s: stream ended inside an event" % self.path)
                return None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if not data:
                    # no data: nothing is dispatched (e.g. a lone "retry:" block)
                    if "retry" in ev:
                        self.retry = ev["retry"]
                    check(set(ev) <= {"retry"}, "GET %s: block without data: %r" % (self.path, ev))
                    ev = {}
                    continue
                break
            if line.startswith(":"):
                self.comments.append((time.time(), line))
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            else:
                ev[field] = value
        check("id" in ev and re.fullmatch(r"[0-9]+", ev["id"]),
              "GET %s: event without a numeric id: %r" % (self.path, ev))
        check("event" in ev, "GET %s: event %s without a type" % (self.path, ev.get("id")))
        check(len(data) == 1, "GET %s: event %s has %d data lines, expected 1" % (
            self.path, ev["id"], len(data)))
        typ = ev["event"]
        check(typ in self.schemas, "GET %s: unknown event type %r" % (self.path, typ))
        try:
            obj = strict_json(data[0])
        except ValueError as e:
            raise Failure("GET %s: event %s data is not strict JSON (%s): %s" % (
                self.path, ev["id"], e, short(data[0])))
        errs = contract().validate(self.schemas[typ], obj, "event %s %s" % (ev["id"], typ))
        check(not errs, "GET %s: %s" % (self.path, "; ".join(errs[:3])))
        return {"id": int(ev["id"]), "event": typ, "data": obj, "raw": data[0]}

    def set_timeout(self, seconds):
        """Timeout of the next reads (a timeout ends the stream's usefulness)."""
        raw = getattr(self.resp.fp, "raw", None)
        sock = getattr(raw, "_sock", None) or self.conn.sock
        if sock is not None:
            sock.settimeout(seconds)

    def read_all(self, limit=1000000):
        out = []
        while len(out) < limit:
            e = self.next()
            if e is None:
                break
            out.append(e)
        return out

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def check_event_ids(events, what):
    ids = [e["id"] for e in events]
    for a, b in zip(ids, ids[1:]):
        check(b > a, "%s: event ids not increasing: %d then %d" % (what, a, b))


# ---------------------------------------------------------------- series checks

def check_series(points, n, what):
    """points ([step, value, wall]) are exactly steps 1..n in order."""
    steps = [p[0] for p in points]
    for p in points:
        check(isinstance(p[0], int) and not isinstance(p[0], bool), "%s: step %r is no integer" % (what, p[0]))
        check(isinstance(p[2], int) and not isinstance(p[2], bool), "%s: wall time %r is no integer" % (what, p[2]))
    for a, b in zip(steps, steps[1:]):
        check(b > a, "%s: steps not strictly increasing: %d then %d" % (what, a, b))
    if steps != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(steps))
        extra = sorted(set(steps) - set(range(1, n + 1)))
        raise Failure("%s: %d points, expected steps 1..%d (missing %s, extra %s)" % (
            what, len(steps), n, short(missing, 80), short(extra, 80)))


def loss_keys(summary):
    return [m["key"] for m in summary["metrics"] if m["key"].startswith("loss_")]


# ---------------------------------------------------------------- files

def sha256(data):
    return hashlib.sha256(data).hexdigest()


def png_bytes(width, height, pixels, channels=1):
    """An 8-bit PNG (grey when channels == 1, RGB when 3); pixels is a
    function (x, y) -> int or (r, g, b)."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            v = pixels(x, y)
            if channels == 1:
                rows.append(int(v) & 255)
            else:
                rows.extend(int(c) & 255 for c in v)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))

    color = 0 if channels == 1 else 2
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows)))
            + chunk(b"IEND", b""))


def png_raw(raw, width, height, channels=1):
    """An 8-bit PNG of row-major interleaved pixel bytes (grey or RGB)."""
    stride = width * channels
    return png_bytes(width, height, lambda x, y: raw[y * stride + x] if channels == 1 else
                     tuple(raw[y * stride + x * 3: y * stride + x * 3 + 3]), channels)


def png_bomb(width, height):
    """A valid grey PNG of width x height zero pixels, a decompression bomb:
    about height * width / 1030 bytes (30000 x 30000: ~880 KB for 900 MB of
    pixels). The zlib stream is built from one flushed piece of 100 rows
    repeated (zero rows compress to the same bytes once the window is zeros),
    so it costs milliseconds instead of compressing 900 MB."""
    row = width + 1  # filter byte + pixels, all zero
    per = 100
    check(height % per == 0, "png_bomb: height must be a multiple of %d" % per)
    c = zlib.compressobj(9)
    chunk = bytes(row * per)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    check(piece == again, "png_bomb: zlib pieces differ")
    total = row * height
    adler = ((total % 65521) << 16) | 1  # Adler-32 of zeros: a = 1, b = n mod 65521
    # the final empty fixed-Huffman block (BFINAL 1, type 01, end-of-block) and the Adler-32
    idat = first + piece * (height // per - 1) + b"\x03\x00" + struct.pack(">I", adler)

    def chunk_of(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk_of(b"IHDR", ihdr) + chunk_of(b"IDAT", idat) +
            chunk_of(b"IEND", b""))


def multipart(parts, boundary="dimd-test-boundary-7c1f"):
    """A multipart/form-data body: parts are (field name, data bytes, part
    Content-Type or None). Returns (body, Content-Type header)."""
    out = bytearray()
    for i, (name, data, ctype) in enumerate(parts):
        out += b"--" + boundary.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"; filename="img%d"\r\n' % (name, i)).encode()
        if ctype:
            out += ("Content-Type: %s\r\n" % ctype).encode()
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return bytes(out), "multipart/form-data; boundary=" + boundary


def f32le(values):
    return struct.pack("<%df" % len(values), *values)


def from_f32le(data):
    check(len(data) % 4 == 0, "%d bytes is no whole number of float32" % len(data))
    return list(struct.unpack("<%df" % (len(data) // 4), data))


def max_diff(a, b, what):
    """Largest |a[i] - b[i]| of two equally long vectors."""
    check(len(a) == len(b), "%s: lengths %d and %d differ" % (what, len(a), len(b)))
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def close(a, b, what, tol=1e-5):
    """Raises unless the vectors agree to tol (absolute, or relative for large values)."""
    check(len(a) == len(b), "%s: lengths %d and %d differ" % (what, len(a), len(b)))
    for i, (x, y) in enumerate(zip(a, b)):
        if abs(x - y) > tol * max(1.0, abs(x), abs(y)):
            raise Failure("%s: element %d differs: %r vs %r (tolerance %g)" % (what, i, x, y, tol))


FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_FM = {}


def fashion_mnist(split="train"):
    """(n, pixel bytes (n x 28 x 28), label bytes) of a Fashion-MNIST split, read
    from the Debian package's gzipped IDX files (cached)."""
    if split not in _FM:
        pre = "train" if split == "train" else "t10k"
        with gzip.open(os.path.join(FASHION_MNIST, pre + "-images-idx3-ubyte.gz")) as f:
            img = f.read()
        with gzip.open(os.path.join(FASHION_MNIST, pre + "-labels-idx1-ubyte.gz")) as f:
            lab = f.read()
        magic, n, h, w = struct.unpack(">IIII", img[:16])
        check(magic == 2051 and h == 28 and w == 28, "bad IDX image header %r" % (img[:16],))
        lmagic, ln = struct.unpack(">II", lab[:8])
        check(lmagic == 2049 and ln == n, "bad IDX label header")
        _FM[split] = (n, img[16:], lab[8:])
    return _FM[split]


def fm_image(i, split="train"):
    """Image i of a Fashion-MNIST split: (784 pixel bytes, label)."""
    n, px, lab = fashion_mnist(split)
    check(0 <= i < n, "no image %d in %s" % (i, split))
    return px[i * 784:(i + 1) * 784], lab[i]


def fm_png(i, split="train"):
    return png_raw(fm_image(i, split)[0], 28, 28)


def write_png(path, width, height, pixels, channels=1):
    with open(path, "wb") as f:
        f.write(png_bytes(width, height, pixels, channels))


def encode_with_cli(ckpt_path, image_path, tap=None):
    """Runs `dimd encode --checkpoint FILE [--tap TAP] IMAGE`; returns its JSON line."""
    p = subprocess.run([DIMD, "encode", "--checkpoint", ckpt_path] +
                       (["--tap", tap] if tap else []) + [image_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120 * SCALE)
    check(p.returncode == 0, "dimd encode exited %d: %s" % (p.returncode,
                                                            short(p.stderr.decode("utf-8", "replace"))))
    lines = p.stdout.decode().splitlines()
    check(len(lines) == 1, "dimd encode printed %d lines, expected 1" % len(lines))
    try:
        obj = json.loads(lines[0])
    except ValueError:
        raise Failure("dimd encode printed no JSON: %s" % short(lines[0]))
    emb = obj.get("embedding")
    check(isinstance(emb, list) and emb and all(isinstance(x, (int, float)) for x in emb),
          "dimd encode: no numeric embedding in %s" % short(lines[0]))
    check(obj.get("dim") == len(emb), "dimd encode: dim %r but %d numbers" % (obj.get("dim"), len(emb)))
    return obj


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.time() + timeout * SCALE
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise Failure("timed out after %.0fs waiting for %s" % (timeout * SCALE, what))
