/* encode.c - POST /v1/models/{name}/encode and /neighbors.
 *
 * The model version is looked up first, so that a missing one is 404 whatever
 * the body holds. Then every input format becomes a list of 8-bit images: a
 * raw PNG or JPEG body, multipart/form-data parts (util/multipart.h), JSON
 * with base64 images (util/base64.h) or float tensors, or raw little-endian
 * float32 with X-Tensor-Shape (api/tensor.h: tensors are pixel intensities in
 * [0, 1] and become round(x * 255), so a PNG and the tensor of its pixels /
 * 255 are the same image). Then each image goes through dim_image_to_input
 * for the model's channels and size - the one preprocessing the trainer uses
 * - and the encoder batches them with other requests.
 * Limits: encode_max_images per request (413), encode_max_pixels per decoded
 * image (422, before its pixels are allocated), the body size (413, in http.c),
 * the encode queue (429).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handlers/handlers.h"
#include "data/image.h"
#include "util/base64.h"
#include "util/floattext.h"
#include "util/multipart.h"
#include "api/jobspec.h"
#include "api/tensor.h"

#define RETRY_AFTER_S "1"

struct images {
    struct dim_image *v;
    size_t n, cap;
};

static void images_free(struct images *im)
{
    for (size_t i = 0; i < im->n; i++)
        dim_image_free(&im->v[i]);
    free(im->v);
    memset(im, 0, sizeof *im);
}

/* Appends img (taking its pixels), or frees it and returns false when out of memory. */
static bool images_push(struct images *im, struct dim_image *img)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? 2 * im->cap : 8;
        struct dim_image *g = realloc(im->v, cap * sizeof *g);
        if (!g) {
            dim_image_free(img);
            return false;
        }
        im->v = g;
        im->cap = cap;
    }
    im->v[im->n++] = *img;
    return true;
}

/* Adds the image a decoder gave with status rc (0 or DIM_E*, message in err)
 * as input number i, called `what` ("image", "tensor") in replies. Replies and
 * returns false on failure: `bad` (422) for malformed input, 422
 * image_too_large over encode_max_pixels, 500 when out of memory. */
static bool add_image(struct handler_ctx *a, struct http_request *rq, struct images *im,
                      struct dim_image *img, int rc, const struct dim_err *err, enum problem bad,
                      const char *what, size_t i)
{
    if (rc == 0 && images_push(im, img))
        return true;
    if (rc == 0 || rc == DIM_ENOMEM)
        http_reply_problem(rq, PROBLEM_INTERNAL, "%s %zu: out of memory", what, i);
    else if (rc == DIM_ELIMIT)
        http_reply_problem(rq, PROBLEM_IMAGE_TOO_LARGE, "%s %zu: %s (encode_max_pixels is %ld)",
                           what, i, err->msg, a->cfg->encode_max_pixels);
    else
        http_reply_problem(rq, bad, "%s %zu: %s", what, i, err->msg);
    return false;
}

/* Decodes PNG or JPEG image number i; replies and returns false on failure. */
static bool decode_one(struct handler_ctx *a, struct http_request *rq, struct images *im,
                       const void *data, size_t len, size_t i)
{
    struct dim_image img = {0};
    struct dim_err err;
    int rc = len == 0 ? dim_fail(&err, DIM_EFORMAT, "empty (0 bytes)")
                      : dim_image_decode(data, len, (size_t)a->cfg->encode_max_pixels, &img, &err);
    return add_image(a, rq, im, &img, rc, &err, PROBLEM_INVALID_IMAGE, "image", i);
}

/* Tensor i (c, h, w) from the raw body (raw) or a JSON array (arr); replies and
 * returns false on failure. */
static bool tensor_one(struct handler_ctx *a, struct http_request *rq, struct images *im, size_t i,
                       long c, long h, long w, const struct tensor_shape *raw, const json_t *arr)
{
    struct dim_image img = {0};
    struct dim_err err;
    int rc = tensor_image_check(c, h, w, (size_t)a->cfg->encode_max_pixels, &err);
    if (rc == 0)
        rc = arr ? tensor_json_image(arr, c, h, w, &img, &err)
                 : tensor_raw_image(rq->body, raw, i, &img, &err);
    return add_image(a, rq, im, &img, rc, &err, PROBLEM_INVALID_TENSOR, "tensor", i);
}

static bool too_many(struct handler_ctx *a, struct http_request *rq, size_t n)
{
    if (n <= (size_t)a->cfg->encode_max_images)
        return false;
    http_reply_problem(rq, PROBLEM_TOO_MANY_IMAGES,
                       "the request has %zu images; encode_max_images is %ld", n,
                       a->cfg->encode_max_images);
    return true;
}

/* application/octet-stream: float32 with X-Tensor-Shape. */
static bool from_raw_floats(struct handler_ctx *a, struct http_request *rq, struct images *im)
{
    struct tensor_shape sh;
    struct dim_err err;
    if (tensor_shape_parse(http_header(rq, "X-Tensor-Shape"), &sh, &err) != 0) {
        http_reply_problem(rq, PROBLEM_INVALID_TENSOR,
                           "a float32 body needs an X-Tensor-Shape header N,C,H,W (or C,H,W); %s",
                           err.msg);
        return false;
    }
    if (too_many(a, rq, (size_t)sh.n))
        return false;
    if (tensor_raw_check(&sh, rq->body_len, &err) != 0) {
        http_reply_problem(rq, PROBLEM_INVALID_TENSOR, "X-Tensor-Shape %s", err.msg);
        return false;
    }
    bool ok = true;
    for (long i = 0; ok && i < sh.n; i++)
        ok = tensor_one(a, rq, im, (size_t)i, sh.c, sh.h, sh.w, &sh, NULL);
    return ok;
}

/* The images or tensors list of a JSON body (EncodeRequest), or NULL after
 * adding each problem to errors. */
static const json_t *json_list(const json_t *body, json_t *errors, bool *tensors)
{
    const json_t *imgs = NULL, *tens = NULL;
    if (!json_is_object(body)) {
        jobspec_error(errors, NULL, "the body must be a JSON object with \"images\" or \"tensors\"");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "images") == 0 && json_is_array(v))
            imgs = v;
        else if (strcmp(k, "tensors") == 0 && json_is_array(v))
            tens = v;
        else if (strcmp(k, "images") == 0 || strcmp(k, "tensors") == 0)
            jobspec_error(errors, k, "must be an array");
        else
            jobspec_error(errors, k, "unknown field (images or tensors)");
    }
    if (imgs && tens)
        jobspec_error(errors, NULL, "give images or tensors, not both");
    else if (!imgs && !tens && json_array_size(errors) == 0)
        jobspec_error(errors, NULL, "give images (base64 PNG or JPEG) or tensors");
    const json_t *list = imgs ? imgs : tens;
    for (size_t i = 0; list && i < json_array_size(list); i++) {
        const json_t *x = json_array_get(list, i);
        char key[32];
        snprintf(key, sizeof key, "%s[%zu]", imgs ? "images" : "tensors", i);
        long c, h, w;
        const json_t *data;
        struct dim_err err;
        if (imgs && !json_is_string(x))
            jobspec_error(errors, key, "must be a base64 string");
        if (tens && tensor_json_parse(x, &c, &h, &w, &data, &err) != 0)
            jobspec_error(errors, key, "%s", err.msg);
    }
    *tensors = tens != NULL;
    return json_array_size(errors) ? NULL : list;
}

static bool from_json(struct handler_ctx *a, struct http_request *rq, struct images *im)
{
    json_t *body = handler_body_json(rq);
    if (!body)
        return false;
    json_t *errors = json_array();
    bool tens;
    const json_t *list = json_list(body, errors, &tens);
    if (!list) {
        http_reply_invalid(rq, errors, "the encode request is invalid");
        json_decref(body);
        return false;
    }
    json_decref(errors);
    size_t n = json_array_size(list);
    bool ok = !too_many(a, rq, n);
    if (ok && n == 0) {
        http_reply_problem(rq, PROBLEM_NO_IMAGES, "the %s list is empty", tens ? "tensors" : "images");
        ok = false;
    }
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *x = json_array_get(list, i);
        long c, h, w;
        const json_t *data;
        if (tens) {
            tensor_json_parse(x, &c, &h, &w, &data, NULL);
            ok = tensor_one(a, rq, im, i, c, h, w, NULL, data);
            continue;
        }
        const char *s = json_string_value(x);
        size_t len = json_string_length(x), skip = base64_data_url_prefix(s, len), blen;
        unsigned char *bytes;
        struct dim_err err;
        int rc = base64_decode(s + skip, len - skip, &bytes, &blen, &err);
        if (rc != 0)
            http_reply_problem(rq, rc == DIM_EFORMAT ? PROBLEM_INVALID_IMAGE : PROBLEM_INTERNAL,
                               "image %zu: %s%s", i, rc == DIM_EFORMAT ? "not valid base64: " : "",
                               err.msg);
        ok = rc == 0 && decode_one(a, rq, im, bytes, blen, i);
        free(bytes);
    }
    json_decref(body);
    return ok;
}

/* Each part one image, counted before any is decoded. As always, parts up to
 * a malformed tail (util/multipart.h) are the request's images. */
static bool from_multipart(struct handler_ctx *a, struct http_request *rq, struct images *im,
                           const char *ct)
{
    char b[MULTIPART_BOUNDARY_MAX + 1];
    struct dim_err err;
    if (multipart_boundary(ct, b, &err) != 0) {
        http_reply_problem(rq, PROBLEM_UNSUPPORTED_MEDIA_TYPE,
                           "multipart/form-data needs a boundary parameter: %s", err.msg);
        return false;
    }
    struct multipart mp;
    struct multipart_part part;
    size_t count = 0;
    int rc;
    multipart_init(&mp, b, rq->body, rq->body_len);
    while ((rc = multipart_next(&mp, &part, &err)) == 1)
        count++;
    if (too_many(a, rq, count))
        return false;
    if (count == 0) {
        http_reply_problem(rq, PROBLEM_NO_IMAGES, "the multipart body has no parts (boundary %s)%s%s",
                           b, rc < 0 ? ": " : "", rc < 0 ? err.msg : "");
        return false;
    }
    multipart_init(&mp, b, rq->body, rq->body_len);
    for (size_t i = 0; i < count && multipart_next(&mp, &part, NULL) == 1; i++)
        if (!decode_one(a, rq, im, part.data, part.len, i))
            return false;
    return true;
}

/* Reads the request's images in whatever format it came; replies and returns false on failure. */
static bool read_images(struct handler_ctx *a, struct http_request *rq, struct images *im)
{
    const char *ct = http_header(rq, "Content-Type");
    if (!ct)
        ct = "";
    size_t tl = strcspn(ct, "; ");
    if ((tl == 9 && strncasecmp(ct, "image/png", 9) == 0) ||
        (tl == 10 && strncasecmp(ct, "image/jpeg", 10) == 0))
        return decode_one(a, rq, im, rq->body, rq->body_len, 0);
    if (tl == 19 && strncasecmp(ct, "multipart/form-data", 19) == 0)
        return from_multipart(a, rq, im, ct);
    if (tl == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return from_json(a, rq, im);
    if (tl == 24 && strncasecmp(ct, "application/octet-stream", 24) == 0)
        return from_raw_floats(a, rq, im);
    http_reply_problem(rq, PROBLEM_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Type '%.60s' is not one of image/png, image/jpeg, "
                       "multipart/form-data, application/json, application/octet-stream "
                       "(float32 with X-Tensor-Shape)",
                       ct[0] ? ct : "(none)");
    return false;
}

/* Maps an encoder status to a reply; true when it is INFERENCE_OK. */
static bool inference_reply(struct http_request *rq, int rc, const struct dim_err *err)
{
    if (rc == INFERENCE_OK)
        return true;
    if (rc == INFERENCE_NOT_FOUND) {
        bool model = strncmp(err->msg, "no model ", 9) == 0;
        http_reply_problem(rq, model ? PROBLEM_MODEL_NOT_FOUND : PROBLEM_VERSION_NOT_FOUND, "%s",
                           err->msg);
    } else if (rc == INFERENCE_QUEUE_FULL) {
        http_add_header(rq, "Retry-After", RETRY_AFTER_S);
        http_reply_problem(rq, PROBLEM_ENCODE_QUEUE_FULL,
                           "the encode queue is full (encode_queue_max images wait); retry");
    } else if (rc == INFERENCE_STOPPING) {
        http_reply_problem(rq, PROBLEM_SHUTTING_DOWN, "dimd is shutting down");
    } else {
        handler_internal(rq, "encoding", err);
    }
    return false;
}

/* Query "version" (default latest); replies 400 on a bad one. */
static bool query_version(struct http_request *rq, int *version)
{
    const char *v = http_query(rq, "version");
    *version = 0;
    if (v && !model_version_parse(v, version)) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter version='%.32s' must be v1, 1 or latest", v);
        return false;
    }
    return true;
}

/* The request's embeddings at tap: looks the model version up into *info
 * (before reading the body, so that a missing one is 404 whatever the body
 * holds), reads the images (exactly one when `one`), preprocesses them and
 * encodes them with that version. *out (malloc'd) gets *n rows of
 * info->dim[tap] floats. Replies and returns false on failure. */
static bool embed(struct handler_ctx *a, struct http_request *rq, int version, enum dim_tap tap,
                  bool one, float **out, size_t *n, struct inference_model_info *info)
{
    const char *name = http_param(rq, "name");
    struct dim_err err = {0};
    struct images im = {0};
    float *x = NULL;
    bool ok = inference_reply(rq, inference_model(a->inference, name, version, info, &err), &err) &&
              read_images(a, rq, &im);
    if (ok && one && im.n != 1) {
        http_reply_problem(rq, PROBLEM_INVALID_REQUEST,
                           "neighbors takes exactly one image; the request has %zu", im.n);
        ok = false;
    }
    struct dim_preprocess pp = {info->in_c, info->in_h, info->in_w, 0, 0};
    size_t in = (size_t)pp.c * (size_t)pp.h * (size_t)pp.w;
    if (ok && !(x = malloc(im.n * in * sizeof *x))) {
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory");
        ok = false;
    }
    for (size_t i = 0; ok && i < im.n; i++)
        dim_image_to_input(&im.v[i], &pp, NULL, x + i * in);
    /* the version just described: a newer one promoted meanwhile must not answer */
    if (ok)
        ok = inference_reply(rq, inference_encode(a->inference, name, info->version, tap, x, im.n,
                                                  out, info, &err),
                             &err);
    *n = im.n;
    free(x);
    images_free(&im);
    return ok;
}

/* The JSON reply of an encode: written directly, since the embeddings are
 * nearly all of it and a json_t plus a printf per float cost more than the rest
 * of the request outside the forward pass (util/floattext.h). Names, version,
 * sha256 and tap need no escaping: model_name_ok allows [a-z0-9_-] only,
 * the rest are fixed alphabets. NaN and infinities are the strings "NaN",
 * "Infinity" and "-Infinity", as everywhere in the API. */
static void reply_embeddings(struct http_request *rq, const struct inference_model_info *info,
                             const char *ver, enum dim_tap tap, const float *out, size_t n,
                             size_t dim)
{
    const size_t cap = 512 + sizeof info->name + n * (3 + dim * (FLOATTEXT_MAX + 2));
    char *buf = malloc(cap);
    if (!buf) {
        http_reply_problem(rq, PROBLEM_INTERNAL, "out of memory for %zu embeddings", n);
        return;
    }
    size_t len = (size_t)snprintf(buf, cap,
                                  "{\"model\":\"%s\",\"version\":\"%s\",\"checkpoint_sha256\":"
                                  "\"%s\",\"tap\":\"%s\",\"dim\":%zu,\"count\":%zu,"
                                  "\"embeddings\":[",
                                  info->name, ver, info->sha256, dim_tap_name(tap), dim, n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf[len++] = ',';
        buf[len++] = '[';
        for (size_t k = 0; k < dim; k++) {
            if (k)
                buf[len++] = ',';
            const float v = out[i * dim + k];
            size_t w = floattext(v, buf + len);
            if (w == 0) {
                const char *t = real_nonfinite_text(v);
                w = strlen(t);
                buf[len] = '"';
                memcpy(buf + len + 1, t, w);
                buf[len + 1 + w] = '"';
                w += 2;
            }
            len += w;
        }
        buf[len++] = ']';
    }
    memcpy(buf + len, "]}\n", 3);
    len += 3;
    http_reply_bytes(rq, 200, "application/json", buf, len, true);
}

void handle_encode(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    int version;
    enum dim_tap tap = DIM_TAP_Y;
    const char *t = http_query(rq, "tap");
    if (!query_version(rq, &version))
        return;
    if (t && dim_tap_parse(t, &tap) != 0) {
        http_reply_problem(rq, PROBLEM_INVALID_PARAMETER,
                           "query parameter tap='%.32s' must be y, fc, conv or local", t);
        return;
    }
    float *out = NULL;
    size_t n;
    struct inference_model_info info;
    if (!embed(a, rq, version, tap, false, &out, &n, &info))
        return;
    const size_t dim = info.dim[tap];
    char ver[16];
    snprintf(ver, sizeof ver, "v%d", info.version);
    const char *accept = http_header(rq, "Accept");
    if (accept && strstr(accept, "application/octet-stream")) {
        char shape[48];
        snprintf(shape, sizeof shape, "%zu,%zu", n, dim);
        http_add_header(rq, "X-Embedding-Shape", shape);
        http_add_header(rq, "X-Model-Version", ver);
        http_add_header(rq, "X-Checkpoint-Sha256", info.sha256);
        http_reply_bytes(rq, 200, "application/octet-stream", out, n * dim * sizeof *out, true);
        return;
    }
    reply_embeddings(rq, &info, ver, tap, out, n, dim);
    free(out);
}

void handle_neighbors(void *app, struct http_request *rq)
{
    struct handler_ctx *a = app;
    const char *name = http_param(rq, "name");
    int version;
    int64_t k;
    if (!query_version(rq, &version) || !handler_query_int(rq, "k", 1, 100, 10, &k))
        return;
    float *y = NULL;
    size_t one;
    struct inference_model_info info;
    if (!embed(a, rq, version, DIM_TAP_Y, true, &y, &one, &info))
        return;
    struct neighbor nb[100];
    size_t n = 0;
    struct dim_err err = {0};
    int rc = inference_neighbors(a->inference, name, info.version, y, (int)k, nb, &n, &err);
    free(y);
    if (rc == INFERENCE_NOT_FOUND && info.index_images == 0) {
        http_reply_problem(rq, PROBLEM_NO_INDEX,
                           "model %s v%d has no neighbours index (index_max_images was 0 when it "
                           "was promoted)",
                           info.name, info.version);
        return;
    }
    if (!inference_reply(rq, rc, &err))
        return;
    /* index i of the index is training image floor(i * N / n) (models.c) */
    struct store_model_version v;
    int64_t N = 0;
    if (store_model_get(a->store, info.name, info.version, &v, NULL, NULL, NULL, &err) == STORE_OK) {
        json_t *vi = json_loads(v.info_json, 0, NULL);
        N = json_integer_value(json_object_get(vi, "index_dataset_images"));
        json_decref(vi);
        store_model_version_clear(&v);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t pos = info.index_images > 0 && N > 0 ? nb[i].index * N / info.index_images
                                                     : nb[i].index;
        json_array_append_new(arr, json_pack("{s:I, s:i, s:f}", "index", (json_int_t)pos,
                                             "label", nb[i].label, "cosine", (double)nb[i].cosine));
    }
    char ver[16];
    snprintf(ver, sizeof ver, "v%d", info.version);
    http_reply_json(rq, 200, json_pack("{s:s, s:s, s:s, s:I, s:o}", "model", info.name, "version",
                                       ver, "checkpoint_sha256", info.sha256, "k", (json_int_t)k,
                                       "neighbors", arr));
}
