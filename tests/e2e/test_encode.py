"""Encode and neighbours against a model promoted from a short Fashion-MNIST
job: the same PNG through every input format (raw image/png, multipart,
JSON base64, JSON tensor, raw float32 with X-Tensor-Shape) gives the embedding
`dimd encode --checkpoint` gives with the version's downloaded checkpoint; JSON
and binary output agree; every tap has its documented width and matches the
CLI; a JPEG too; bad inputs each get their status and code while the daemon
keeps serving; nearest neighbours find a training image; and 16 concurrent
clients encode while a job trains, with no error and batched forward passes.

The JPEG below is Fashion-MNIST training image 1 (28 x 28 grey) encoded at
quality 90 by tests/support/fixtures.c (fixtures_encode_jpeg, libjpeg): Python's
standard library cannot write JPEG, so its 800 bytes are kept here as base64.
"""

import base64
import http.client
import json
import os
import re
import threading
import time

import dimd_harness as H
from dimd_harness import Failure, check, eq, expect

JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4R"
    "DgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/wAALCAAcABwBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcY"
    "GRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKj"
    "pKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/APln"
    "/gnr+zPof7QPjzxFqHiuyk1Lwz4atYpJbJJmiW4uZmYQo5Uhtm2OZsKRkoBnGQf0Ev8AWvhf4DmvvCNj8Gr7WrHR"
    "rw200Oi+A7O+0+K6NnHdMA8jjMn2co7MRnAGSSQDLJ4I+E/7SE+s+HfEXwsuNJ1PS7e1a5h8Q+GotH1G3tpjKIWg"
    "lhYuI8wSgKGCgrjbzX44/FbwFc/Cz4meKfB93IJ59D1O408zAYEojkKrIPZgAw9iK9f/AGUf2zPEf7L/ANs03TND"
    "0LVtG1S9iub/APtCGQXBCjaAssbggAFiAQwBYnHNfqv4p/Z9+F3jzX9T13XfBGm63qmpOGu7y6mug8+0BE3BJlUY"
    "SOMcKPujOTzXmHx61bQP2JPg1qvi34YeCtC0vVLq6tNNaGf7TNBIC8rDeDNu+UNIQFZRl8nOMV+TnxZ+J2r/ABl+"
    "Ies+M9ditIdW1WRJJ47CIxQqVjWMBVJJHyoOpJJyScmuR9a/olt4htAVVXOWAXp7Yr5V/wCCmUAl/Zh1E/8APLV7"
    "CcfXdIh/9CFfkJRX7Zn4/wCt6XAVXS9KnMSKoaZbjJ4XriYV84/twfGrVfHHwE1nTLzTNLtYGu7Q77VZg4IlJ4Ly"
    "sPbpX5tV/9k=")

D = None
W = None
V1 = None        # the version object of fm v1
CKPT = None      # its checkpoint, downloaded to a file
PNG = None       # Fashion-MNIST training image 0 as a PNG
PNG_PATH = None
REF = None       # its Y embedding from the daemon (equal to the CLI's, see the first test)
INDEX_MAX = 600  # --index_max_images: every 100th training image is in the index
MAX_IMAGES = 4   # --encode_max_images
MAX_BODY = 2 * 1024 * 1024  # --encode_max_body_bytes (the 30000 x 30000 PNG bomb is ~880 KB)


def setup_module():
    global D, W, V1, CKPT, PNG, PNG_PATH, REF
    D = H.Daemon(["--workers", "1", "--index_max_images", str(INDEX_MAX), "--encode_max_images",
                  str(MAX_IMAGES), "--encode_max_body_bytes", str(MAX_BODY)]).start()
    W = D.client()
    j = W.submit(dict(H.SMALL, steps=60, checkpoint_every=30, name="encode-src"))
    W.wait_state(j["id"], "SUCCEEDED", timeout=120)
    V1 = W.promote("fm", j["id"], checkpoint="latest")
    r = expect(W.get(V1["links"]["checkpoint"]), 200)
    eq(H.sha256(r.body), V1["checkpoint_sha256"], "sha256 of the version's checkpoint")
    eq(r.header("ETag"), '"%s"' % V1["checkpoint_sha256"], "ETag of the version's checkpoint")
    CKPT = os.path.join(D.workdir, "fm-v1.dimdckpt")
    with open(CKPT, "wb") as f:
        f.write(r.body)
    PNG = H.fm_png(0)
    PNG_PATH = os.path.join(D.workdir, "train0.png")
    with open(PNG_PATH, "wb") as f:
        f.write(PNG)
    REF = W.embed("fm", PNG)[0]


def write(name, data):
    path = os.path.join(D.workdir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def encode(body, ctype, query=None, headers=None, route="encode"):
    return W.encode("fm", body, ctype, query, headers, route=route)


def embeddings(body, ctype, query=None, headers=None):
    r = expect(encode(body, ctype, query, headers), 200)
    eq(r.json["count"], len(r.json["embeddings"]), "count")
    for row in r.json["embeddings"]:
        eq(len(row), r.json["dim"], "numbers per embedding")
    return r.json["embeddings"]


def still_serving(what):
    """The daemon answers a good request with the reference embedding."""
    check(D.alive(), "dimd died after %s" % what)
    r = encode(PNG, "image/png")
    check(r.status == 200, "after %s a good encode got %d %s" % (what, r.status, H.short(r.body)))
    H.close(r.json["embeddings"][0], REF, "embedding after %s" % what)


def tensor_of(png_pixels):
    """Fashion-MNIST pixel bytes as the JSON tensor [1, 28, 28] of pixels / 255."""
    return {"shape": [1, 28, 28], "data": [p / 255 for p in png_pixels]}


# ---------------------------------------------------------------- formats

def test_png_body_matches_the_cli_on_the_downloaded_checkpoint():
    r = expect(encode(PNG, "image/png"), 200)
    j = r.json
    eq((j["model"], j["version"], j["checkpoint_sha256"], j["tap"], j["dim"], j["count"]),
       ("fm", "v1", V1["checkpoint_sha256"], "y", V1["taps"]["y"], 1), "encode metadata")
    cli = H.encode_with_cli(CKPT, PNG_PATH)
    eq(cli["dim"], V1["taps"]["y"], "CLI dim")
    H.close(j["embeddings"][0], cli["embedding"], "daemon vs `dimd encode`")
    H.close(REF, cli["embedding"], "reference vs `dimd encode`")
    # version=v1, 1 and latest name the same version
    for v in ("v1", "1", "latest"):
        H.close(W.embed("fm", PNG, {"version": v})[0], REF, "version=%s" % v)


def test_every_input_format_gives_the_same_embedding():
    px, _ = H.fm_image(0)
    floats = [p / 255 for p in px]
    bodies = []
    for part_type in ("image/png", "application/octet-stream", None):
        bodies.append(("multipart part %s" % part_type,) +
                      H.multipart([("image", PNG, part_type)]))
    bodies.append(("json images",
                   json.dumps({"images": [base64.b64encode(PNG).decode()]}).encode(),
                   "application/json"))
    bodies.append(("json tensor", json.dumps({"tensors": [tensor_of(px)]}).encode(),
                   "application/json"))
    got = {}
    for what, body, ctype in bodies:
        rows = embeddings(body, ctype)
        eq(len(rows), 1, "%s: embeddings" % what)
        got[what] = rows[0]
    for shape in ("1,1,28,28", "1,28,28"):
        rows = embeddings(H.f32le(floats), "application/octet-stream",
                          headers={"X-Tensor-Shape": shape})
        eq(len(rows), 1, "float32 %s: embeddings" % shape)
        got["float32 " + shape] = rows[0]
    for what, emb in got.items():
        H.close(emb, REF, "%s vs image/png" % what)


def test_several_images_keep_their_order():
    b_png = H.fm_png(1)
    ref_b = W.embed("fm", b_png)[0]
    check(H.max_diff(ref_b, REF, "two images") > 1e-3, "images 0 and 1 embed alike")
    body, ctype = H.multipart([("a", PNG, "image/png"), ("b", b_png, "image/png"),
                               ("c", PNG, "image/png")])
    rows = embeddings(body, ctype)
    eq(len(rows), 3, "multipart embeddings")
    for row, ref, what in zip(rows, (REF, ref_b, REF), ("part 0", "part 1", "part 2")):
        H.close(row, ref, "multipart %s" % what)
    js = {"images": [base64.b64encode(x).decode() for x in (b_png, PNG)]}
    rows = embeddings(json.dumps(js).encode(), "application/json")
    H.close(rows[0], ref_b, "json image 0")
    H.close(rows[1], REF, "json image 1")
    floats = [p / 255 for p in H.fm_image(1)[0]] + [p / 255 for p in H.fm_image(0)[0]]
    rows = embeddings(H.f32le(floats), "application/octet-stream",
                      headers={"X-Tensor-Shape": "2,1,28,28"})
    H.close(rows[0], ref_b, "float32 image 0")
    H.close(rows[1], REF, "float32 image 1")


def test_binary_output_agrees_with_json():
    body, ctype = H.multipart([("a", PNG, None), ("b", H.fm_png(1), None)])
    j = expect(encode(body, ctype), 200).json
    for accept in ("application/octet-stream", "application/json;q=0.5, application/octet-stream"):
        r = expect(encode(body, ctype, headers={"Accept": accept}), 200)
        eq(r.header("Content-Type").split(";")[0], "application/octet-stream",
           "Content-Type for Accept %r" % accept)
        eq(r.header("X-Embedding-Shape"), "2,%d" % j["dim"], "X-Embedding-Shape")
        eq(r.header("X-Model-Version"), "v1", "X-Model-Version")
        eq(r.header("X-Checkpoint-Sha256"), V1["checkpoint_sha256"], "X-Checkpoint-Sha256")
        vals = H.from_f32le(r.body)
        eq(len(vals), 2 * j["dim"], "float32 values")
        # the JSON numbers are the same float32 values, printed exactly enough to round-trip
        as_f32 = H.from_f32le(H.f32le([x for row in j["embeddings"] for x in row]))
        eq(vals, as_f32, "binary vs JSON output")
    for accept in ("application/json", "*/*"):
        r = expect(encode(body, ctype, headers={"Accept": accept}), 200)
        eq(r.json["embeddings"], j["embeddings"], "JSON for Accept %r" % accept)


def test_taps_have_their_widths_and_match_the_cli():
    for tap in ("y", "fc", "conv", "local"):
        r = expect(encode(PNG, "image/png", {"tap": tap}), 200)
        eq(r.json["tap"], tap, "tap")
        eq(r.json["dim"], V1["taps"][tap], "dim of tap %s" % tap)
        eq(len(r.json["embeddings"][0]), V1["taps"][tap], "numbers of tap %s" % tap)
        cli = H.encode_with_cli(CKPT, PNG_PATH, tap=tap)
        H.close(r.json["embeddings"][0], cli["embedding"], "tap %s vs `dimd encode --tap`" % tap)
        rb = expect(encode(PNG, "image/png", {"tap": tap},
                           headers={"Accept": "application/octet-stream"}), 200)
        eq(rb.header("X-Embedding-Shape"), "1,%d" % V1["taps"][tap], "binary shape of tap %s" % tap)


def test_jpeg_matches_the_cli():
    path = write("train1.jpg", JPEG)
    cli = H.encode_with_cli(CKPT, path)
    emb = embeddings(JPEG, "image/jpeg")[0]
    H.close(emb, cli["embedding"], "image/jpeg vs `dimd encode`")
    body, ctype = H.multipart([("a", PNG, "image/png"), ("b", JPEG, "image/jpeg")])
    rows = embeddings(body, ctype)
    H.close(rows[0], REF, "multipart PNG next to a JPEG")
    H.close(rows[1], emb, "multipart JPEG")
    js = {"images": [base64.b64encode(JPEG).decode()]}
    H.close(embeddings(json.dumps(js).encode(), "application/json")[0], emb, "json JPEG")
    # a JPEG is lossy: close to, but not the same as, the PNG of the same pixels
    png1 = W.embed("fm", H.fm_png(1))[0]
    check(H.max_diff(emb, png1, "jpeg vs png") > 0, "the JPEG embeds exactly like the PNG")


# ---------------------------------------------------------------- bad inputs

def bad(what, r, status, code, needles=()):
    check(r.status == status and r.code == code, "%s: expected %d %s, got %d %s: %s" % (
        what, status, code, r.status, r.code, H.short(r.body)))
    detail = r.json["detail"]
    for n in needles:
        check(n in detail, "%s: detail %r does not name %r" % (what, detail, n))
    still_serving(what)


def test_bad_images():
    bad("truncated PNG", encode(PNG[:len(PNG) // 2], "image/png"), 422, "invalid_image",
        ["image 0"])
    bad("PNG without its end", encode(PNG[:-12], "image/png"), 422, "invalid_image")
    bad("JPEG with a bad header", encode(b"\xff\xd8\xff\xe0\x00\x10JFXX" + bytes(200), "image/jpeg"),
        422, "invalid_image", ["image 0"])
    bad("truncated JPEG", encode(JPEG[:300], "image/jpeg"), 422, "invalid_image")
    bad("zero-byte PNG body", encode(b"", "image/png"), 422, "invalid_image", ["image 0"])
    bad("zero-byte JPEG body", encode(b"", "image/jpeg"), 422, "invalid_image")
    bad("not an image", encode(b"GIF89a" + bytes(100), "image/png"), 422, "invalid_image")
    bomb = H.png_bomb(30000, 30000)
    check(len(bomb) < MAX_BODY, "the PNG bomb (%d bytes) exceeds the body limit" % len(bomb))
    bad("30000 x 30000 PNG bomb", encode(bomb, "image/png"), 422, "image_too_large",
        ["image 0", "encode_max_pixels"])
    body, ctype = H.multipart([("a", PNG, None), ("b", bomb, None)])
    bad("PNG bomb as part 1", encode(body, ctype), 422, "image_too_large", ["image 1"])


def test_a_corrupt_image_in_a_batch_is_named_by_its_index():
    broken = PNG[:len(PNG) // 2]
    body, ctype = H.multipart([("a", PNG, None), ("b", H.fm_png(1), None), ("c", broken, None),
                               ("d", PNG, None)])
    bad("multipart with image 2 truncated", encode(body, ctype), 422, "invalid_image", ["image 2"])
    js = {"images": [base64.b64encode(x).decode() for x in (PNG, PNG, broken)]}
    bad("json with image 2 truncated", encode(json.dumps(js).encode(), "application/json"), 422,
        "invalid_image", ["image 2"])
    body, ctype = H.multipart([("a", PNG, None), ("b", PNG, None), ("c", b"", None)])
    bad("multipart with an empty part 2", encode(body, ctype), 422, "invalid_image", ["image 2"])


def test_bad_tensors():
    px, _ = H.fm_image(0)
    good = tensor_of(px)

    def js(tensors):
        return json.dumps({"tensors": tensors}).encode()

    bad("tensor shape and data disagree",
        encode(js([dict(good, data=good["data"][:-1])]), "application/json"), 422, "invalid_tensor")
    bad("tensor with 2 channels",
        encode(js([{"shape": [2, 28, 14], "data": good["data"]}]), "application/json"), 422,
        "invalid_tensor")
    above = list(good["data"])
    above[17] = 1.5
    bad("tensor value 1.5", encode(js([dict(good, data=above)]), "application/json"), 422,
        "invalid_tensor")
    below = list(good["data"])
    below[0] = -0.01
    bad("tensor value -0.01", encode(js([good, dict(good, data=below)]), "application/json"), 422,
        "invalid_tensor")
    floats = [p / 255 for p in px]
    bad("float32 body of the wrong size",
        encode(H.f32le(floats[:-1]), "application/octet-stream",
               headers={"X-Tensor-Shape": "1,1,28,28"}), 422, "invalid_tensor")
    bad("float32 body without X-Tensor-Shape", encode(H.f32le(floats), "application/octet-stream"),
        422, "invalid_tensor")
    bad("float32 body with X-Tensor-Shape 28x28",
        encode(H.f32le(floats), "application/octet-stream", headers={"X-Tensor-Shape": "28,28"}),
        422, "invalid_tensor")
    bad("float32 value 2", encode(H.f32le([2.0] + floats[1:]), "application/octet-stream",
                                  headers={"X-Tensor-Shape": "1,28,28"}), 422, "invalid_tensor")
    bad("float32 NaN", encode(H.f32le([float("nan")] + floats[1:]), "application/octet-stream",
                              headers={"X-Tensor-Shape": "1,28,28"}), 422, "invalid_tensor")


def test_empty_requests_and_json_shape():
    body = b"--dimd-test-boundary-7c1f--\r\n"
    bad("multipart without parts",
        encode(body, "multipart/form-data; boundary=dimd-test-boundary-7c1f"), 422, "no_images")
    bad("empty images list", encode(b'{"images": []}', "application/json"), 422, "no_images")
    bad("empty tensors list", encode(b'{"tensors": []}', "application/json"), 422, "no_images")
    img = base64.b64encode(PNG).decode()
    for what, obj, paths in (
            ("both images and tensors", {"images": [img], "tensors": []}, None),
            ("neither images nor tensors", {}, ["$"]),
            ("an unknown key", {"images": [img], "colour": "red"}, ["$.colour"]),
            ("images not a list", {"images": img}, ["$.images"]),
            ("an image not a string", {"images": [1]}, ["$.images[0]"]),
            ("a JSON list", [img], ["$"])):
        r = encode(json.dumps(obj).encode(), "application/json")
        if paths is not None and r.status == 422 and r.code == "validation_failed":
            eq([e["path"] for e in r.json["errors"]], paths, "paths for %s" % what)
        bad(what, r, 422, "validation_failed")
    bad("malformed JSON", encode(b'{"images": [', "application/json"), 400, "malformed_json")


def test_unsupported_media_types():
    for ctype in ("text/plain", "image/gif", "application/x-www-form-urlencoded"):
        bad("Content-Type %s" % ctype, encode(PNG, ctype), 415, "unsupported_media_type")
    bad("no Content-Type", encode(PNG, None), 415, "unsupported_media_type")
    bad("multipart without a boundary", encode(PNG, "multipart/form-data"), 415,
        "unsupported_media_type")


def test_limits():
    body, ctype = H.multipart([("i%d" % i, PNG, None) for i in range(MAX_IMAGES + 1)])
    bad("%d images in multipart" % (MAX_IMAGES + 1), encode(body, ctype), 413, "too_many_images",
        ["encode_max_images"])
    js = {"images": [base64.b64encode(PNG).decode()] * (MAX_IMAGES + 1)}
    bad("%d images in JSON" % (MAX_IMAGES + 1), encode(json.dumps(js).encode(),
                                                      "application/json"),
        413, "too_many_images", ["encode_max_images"])
    floats = [p / 255 for p in H.fm_image(0)[0]] * (MAX_IMAGES + 1)
    bad("%d images as float32" % (MAX_IMAGES + 1),
        encode(H.f32le(floats), "application/octet-stream",
               headers={"X-Tensor-Shape": "%d,1,28,28" % (MAX_IMAGES + 1)}),
        413, "too_many_images", ["encode_max_images"])
    body, ctype = H.multipart([("i%d" % i, PNG, None) for i in range(MAX_IMAGES)])
    eq(len(embeddings(body, ctype)), MAX_IMAGES, "embeddings of encode_max_images images")
    big = PNG + bytes(MAX_BODY + 1 - len(PNG))
    bad("a body over encode_max_body_bytes", encode(big, "image/png"), 413, "body_too_large",
        ["encode_max_body_bytes"])
    # the encode limit, not max_body_bytes (1 MiB), applies to encode bodies
    bomb = H.png_bomb(30000, 30000)
    r = encode(bomb + bytes(1100000 - len(bomb)), "image/png")
    bad("a 1.1 MB body under encode_max_body_bytes", r, 422, "image_too_large")


def test_bad_parameters_and_names():
    for q in ({"tap": "z"}, {"tap": ""}, {"version": "vx"}, {"version": "0"}):
        bad("query %s" % q, encode(PNG, "image/png", q), 400, "invalid_parameter",
            [list(q)[0]])
    for q in ({"k": "0"}, {"k": "101"}, {"k": "ten"}):
        bad("neighbors query %s" % q, encode(PNG, "image/png", q, route="neighbors"), 400,
            "invalid_parameter", ["k"])
    bad("version v99", encode(PNG, "image/png", {"version": "v99"}), 404, "version_not_found")
    for route in ("encode", "neighbors"):
        r = W.encode("nope", PNG, "image/png", route=route)
        bad("unknown model (%s)" % route, r, 404, "model_not_found")


def test_the_model_is_looked_up_before_the_body_is_read():
    """A missing model or version is 404 whatever the body holds (it was 422 when
    the body was decoded first); a bad body for a model that exists is still 422."""
    garbage = b"not an image \x00\xff" * 8
    for route in ("encode", "neighbors"):
        for ctype, body in (("image/png", garbage), ("application/json", b'{"images": ['),
                            ("multipart/form-data; boundary=x", garbage),
                            ("application/octet-stream", garbage), ("text/plain", garbage)):
            r = W.encode("nope", body, ctype, route=route)
            bad("unknown model with a %s body of garbage (%s)" % (ctype, route), r, 404,
                "model_not_found", ["nope"])
        r = W.encode("fm", garbage, "image/png", {"version": "v99"}, route=route)
        bad("version v99 with a garbage body (%s)" % route, r, 404, "version_not_found", ["99"])
        r = W.encode("fm", garbage, "image/png", route=route)
        bad("a garbage body for fm (%s)" % route, r, 422, "invalid_image", ["image 0"])


# ---------------------------------------------------------------- neighbours

def test_neighbors_find_the_training_image():
    i = 4200  # a multiple of 60000 / index_max_images: in the index
    check(i % (60000 // INDEX_MAX) == 0, "image %d is not in the index" % i)
    px, label = H.fm_image(i)
    png = H.fm_png(i)
    r = expect(encode(png, "image/png", {"k": "5"}, route="neighbors"), 200)
    j = r.json
    eq((j["model"], j["version"], j["checkpoint_sha256"], j["k"]),
       ("fm", "v1", V1["checkpoint_sha256"], 5), "neighbors metadata")
    eq(len(j["neighbors"]), 5, "neighbours for k=5")
    first = j["neighbors"][0]
    eq(first["index"], i, "index of the nearest training image")
    eq(first["label"], label, "label of the nearest training image")
    check(first["cosine"] > 0.999, "cosine of the image with itself: %r" % first["cosine"])
    cos = [n["cosine"] for n in j["neighbors"]]
    eq(cos, sorted(cos, reverse=True), "neighbours best first")
    for n in j["neighbors"]:
        check(n["index"] % (60000 // INDEX_MAX) == 0, "index %d is not an indexed image" % n["index"])
        eq(n["label"], H.fm_image(n["index"])[1], "label of training image %d" % n["index"])
    # default k, and another input format of the same image
    r = expect(encode(json.dumps({"tensors": [tensor_of(px)]}).encode(), "application/json",
                      route="neighbors"), 200)
    eq(r.json["k"], 10, "default k")
    eq(len(r.json["neighbors"]), 10, "neighbours by default")
    eq(r.json["neighbors"][:5], j["neighbors"], "neighbours of the tensor vs the PNG")
    # exactly one image
    body, ctype = H.multipart([("a", png, None), ("b", png, None)])
    bad("neighbors of two images", encode(body, ctype, route="neighbors"), 422, "invalid_request")
    bad("neighbors of a truncated PNG", encode(png[:50], "image/png", route="neighbors"), 422,
        "invalid_image")


# ---------------------------------------------------------------- load

def scrape_encode_counters():
    r = expect(W.get("/metrics"), 200)
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r"^(dimd_encode_(?:images|batches|requests|forward_seconds)_total) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_concurrent_encodes_while_training():
    threads, per_thread = 16, 20
    pngs = [H.fm_png(i) for i in range(8)]
    refs = [W.embed("fm", p)[0] for p in pngs]
    job = W.submit(dict(H.SMALL, steps=200, checkpoint_every=200, name="load"))
    job = W.wait_job(job["id"], lambda j: j["state"] == "RUNNING" and j["step"] > 0, 60,
                     "RUNNING with a step")
    before = scrape_encode_counters()
    errors = []
    answered = [0] * threads
    lock = threading.Lock()
    c = H.contract()

    def client(t):
        conn = http.client.HTTPConnection(D.host, D.port, timeout=60 * H.SCALE)
        hdrs = {"Authorization": "Bearer " + D.token, "Content-Type": "image/png"}
        try:
            for k in range(per_thread):
                img = (t + k) % len(pngs)
                path = "/v1/models/fm/encode"
                conn.request("POST", path, body=pngs[img], headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                try:
                    c.check_response("POST", path, resp.status, resp.headers, data)
                    check(resp.status == 200, "status %d: %s" % (resp.status, H.short(data)))
                    H.close(H.strict_json(data)["embeddings"][0], refs[img],
                            "thread %d request %d (image %d) vs its single request" % (t, k, img))
                    answered[t] += 1
                except Failure as e:
                    with lock:
                        errors.append(str(e))
        except Exception as e:  # a dropped connection, a timeout
            with lock:
                errors.append("thread %d: %s: %s" % (t, type(e).__name__, e))
        finally:
            conn.close()

    t0 = time.time()
    ts = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.time() - t0
    check(not errors, "%d errors under load, e.g. %s" % (len(errors), "; ".join(errors[:3])))
    eq(sum(answered), threads * per_thread, "answered requests")
    mid = W.job(job["id"])
    eq(mid["state"], "RUNNING", "state of the training job right after the load (it overlapped)")
    after = scrape_encode_counters()
    eq(sorted(after), ["dimd_encode_batches_total", "dimd_encode_forward_seconds_total",
                       "dimd_encode_images_total", "dimd_encode_requests_total"], "encode counters")
    images = after["dimd_encode_images_total"] - before.get("dimd_encode_images_total", 0)
    batches = after["dimd_encode_batches_total"] - before.get("dimd_encode_batches_total", 0)
    check(images >= threads * per_thread, "/metrics counted %d images, sent %d" % (
        images, threads * per_thread))
    check(batches < images, "no batching under load: %d forward passes for %d images" % (
        batches, images))
    fw = after["dimd_encode_forward_seconds_total"] - before.get("dimd_encode_forward_seconds_total", 0)
    check(0 < fw <= elapsed + 0.5, "forward seconds %.3f during a %.1f s load on 1 encode thread" % (
        fw, elapsed))
    print("# load: %d requests in %.1fs (%.0f/s) while job %d went from step %d to %d" % (
        threads * per_thread, elapsed, threads * per_thread / elapsed, job["id"], job["step"],
        mid["step"]), flush=True)
    done = W.wait_state(job["id"], ("SUCCEEDED", "FAILED", "CANCELLED"), timeout=180)
    eq(done["state"], "SUCCEEDED", "state of the job that trained during the load")
    eq(done["step"], 200, "steps of the job that trained during the load")
    still_serving("the load")
