/* infer_conv.c - channels-last convolution and fully connected layers for
 * inference, bias and ReLU fused after the product (see infer_conv.h). */
#include "nn/infer_conv.h"

#include <stdatomic.h>
#include <string.h>

#include "base/blas.h"
#include "base/parallel.h"

/* Batches up to this many images run a fully connected layer as matrix-vector
 * products (measured, README). */
#define NN_INFER_GEMV_MAX 2
/* Output features per chunk of a fully connected layer's product. */
#define NN_INFER_LINEAR_COLS 128

size_t nn_infer_conv_rows(const struct nn_conv2d *cv, size_t target_floats)
{
    size_t kkc = (size_t)cv->k * cv->k * cv->C, rows = target_floats / kkc;
    return rows < 8 ? 8 : rows;
}

size_t nn_infer_conv_scratch_floats(const struct nn_conv2d *cv, size_t rows, int parts)
{
    return (size_t)(parts < 1 ? 1 : parts) * rows * cv->k * cv->k * cv->C;
}

/* col (n, k, k, C): the receptive fields of output pixels [r0, r0 + n) of the
 * batch (pixel r is image r / OHW), zeros where they reach into the padding. */
static void gather(float *restrict col, const float *restrict in, const struct nn_conv2d *cv,
                   size_t r0, size_t n)
{
    const size_t C = (size_t)cv->C, k = (size_t)cv->k, kc = k * C;
    const size_t ohw = (size_t)cv->OH * cv->OW, img = (size_t)cv->H * cv->W * C;
    for (size_t i = 0; i < n; i++) {
        const size_t r = r0 + i, pix = r % ohw;
        const int oh = (int)(pix / (size_t)cv->OW), ow = (int)(pix % (size_t)cv->OW);
        const float *src = in + (r / ohw) * img;
        float *d = col + i * k * kc;
        const int iw0 = ow * cv->s - cv->p;
        const int lo = iw0 < 0 ? -iw0 : 0;
        const int hi = cv->W - iw0 < cv->k ? cv->W - iw0 : cv->k; /* kj in [lo, hi) lie inside */
        for (int ki = 0; ki < cv->k; ki++) {
            const int ih = oh * cv->s - cv->p + ki;
            float *dr = d + (size_t)ki * kc;
            if (ih < 0 || ih >= cv->H || hi <= lo) {
                memset(dr, 0, sizeof(float) * kc);
                continue;
            }
            const float *sr = src + ((size_t)ih * cv->W + (size_t)(iw0 + lo)) * C;
            const size_t nv = (size_t)(hi - lo) * C;
            if (lo)
                memset(dr, 0, sizeof(float) * (size_t)lo * C);
            if (nv <= 16) /* the first layer's few floats: no call */
                for (size_t j = 0; j < nv; j++)
                    dr[(size_t)lo * C + j] = sr[j];
            else
                memcpy(dr + (size_t)lo * C, sr, sizeof(float) * nv);
            if (hi < cv->k)
                memset(dr + (size_t)hi * C, 0, sizeof(float) * (size_t)(cv->k - hi) * C);
        }
    }
}

/* rows y (n, O) += b, then max(., 0) when relu */
static void epilogue(float *restrict y, size_t n, size_t O, const float *restrict b, bool relu)
{
    for (size_t i = 0; i < n; i++) {
        float *restrict r = y + i * O;
        if (b && relu)
            for (size_t j = 0; j < O; j++) {
                float v = r[j] + b[j];
                r[j] = v > 0.0f ? v : 0.0f;
            }
        else if (b)
            for (size_t j = 0; j < O; j++)
                r[j] += b[j];
        else if (relu)
            for (size_t j = 0; j < O; j++)
                r[j] = r[j] > 0.0f ? r[j] : 0.0f;
    }
}

struct conv_job {
    float *out, *scratch;
    const float *in, *w, *b;
    bool relu;
    const struct nn_conv2d *cv;
    size_t rows, total, blocks;
    int parts;
    atomic_size_t next; /* the next block not yet taken */
};

/* Parts [p0, p1): part p takes blocks one at a time from the shared counter (so a
 * part whose core is busy with other work takes fewer) and gathers, multiplies and
 * finishes each in its own slice of scratch. Which part computes a block does not
 * change its result. */
static void conv_parts(void *ctx, size_t p0, size_t p1)
{
    struct conv_job *j = ctx;
    const struct nn_conv2d *cv = j->cv;
    const size_t kkc = (size_t)cv->k * cv->k * cv->C, OC = (size_t)cv->OC;
    for (size_t p = p0; p < p1; p++) {
        float *col = j->scratch + p * j->rows * kkc;
        for (size_t blk; (blk = atomic_fetch_add(&j->next, 1)) < j->blocks;) {
            size_t r0 = blk * j->rows, n = j->total - r0 < j->rows ? j->total - r0 : j->rows;
            gather(col, j->in, cv, r0, n);
            nn_sgemm_serial(false, true, n, OC, kkc, 1.0f, col, kkc, j->w, kkc, 0.0f,
                            j->out + r0 * OC, OC);
            epilogue(j->out + r0 * OC, n, OC, j->b, j->relu);
        }
    }
}

void nn_infer_conv_forward(float *out, float *scratch, const float *in, const float *w,
                           const float *b, bool relu, const struct nn_conv2d *cv, size_t rows,
                           int parts, size_t B)
{
    const size_t kkc = (size_t)cv->k * cv->k * cv->C, OC = (size_t)cv->OC;
    const size_t total = B * (size_t)cv->OH * cv->OW;
    if (parts < 1)
        parts = 1;
    if (total <= rows) { /* one block: gather once, split the product by channels */
        gather(scratch, in, cv, 0, total);
        nn_sgemm(false, true, total, OC, kkc, 1.0f, scratch, kkc, w, kkc, 0.0f, out, OC);
        epilogue(out, total, OC, b, relu);
        return;
    }
    struct conv_job j = {out, scratch, in, w, b, relu, cv, rows, total,
                         (total + rows - 1) / rows, parts, 0};
    atomic_init(&j.next, 0);
    if ((size_t)j.parts > j.blocks)
        j.parts = (int)j.blocks;
    dim_parallel_for((size_t)j.parts, 1, conv_parts, &j);
}

struct gemv_job {
    float *out;
    const float *in, *w, *b;
    bool relu;
    size_t B, I, O;
};

/* Output features [o0, o1) of every image, one matrix-vector product each. */
static void gemv_cols(void *ctx, size_t o0, size_t o1)
{
    const struct gemv_job *j = ctx;
    for (size_t n = 0; n < j->B; n++) {
        float *y = j->out + n * j->O + o0;
        nn_sgemv_serial(o1 - o0, j->I, 1.0f, j->w + o0 * j->I, j->I, j->in + n * j->I, 0.0f, y);
        epilogue(y, 1, o1 - o0, j->b ? j->b + o0 : NULL, j->relu);
    }
}

struct linear_job {
    float *out;
    const float *in, *w, *b;
    bool relu;
    size_t B, I, O, cols, chunks;
    atomic_size_t next; /* the next chunk of output columns not yet taken */
};

/* Each call takes chunks of `cols` output features from the shared counter: one
 * single-threaded sgemm of all B rows over the chunk's weight rows, then its bias
 * and ReLU while it is in cache. */
static void linear_chunks(void *ctx, size_t p0, size_t p1)
{
    (void)p0;
    (void)p1;
    struct linear_job *j = ctx;
    for (size_t c; (c = atomic_fetch_add(&j->next, 1)) < j->chunks;) {
        size_t o0 = c * j->cols, n = j->O - o0 < j->cols ? j->O - o0 : j->cols;
        float *y = j->out + o0;
        nn_sgemm_serial(false, true, j->B, n, j->I, 1.0f, j->in, j->I, j->w + o0 * j->I, j->I,
                        0.0f, y, j->O);
        for (size_t r = 0; r < j->B; r++)
            epilogue(y + r * j->O, 1, n, j->b ? j->b + o0 : NULL, j->relu);
    }
}

void nn_infer_linear_forward(float *out, const float *in, const float *w, const float *b,
                             bool relu, size_t B, size_t I, size_t O)
{
    if (B <= NN_INFER_GEMV_MAX) { /* sgemm would copy (pack) all of w for a row or two */
        struct gemv_job g = {out, in, w, b, relu, B, I, O};
        dim_parallel_for(O, 64, gemv_cols, &g);
        return;
    }
    const int parts = dim_parallel_width();
    if (parts == 1 || (double)B * (double)I * (double)O < (double)(1u << 20)) {
        nn_sgemm_serial(false, true, B, O, I, 1.0f, in, I, w, I, 0.0f, out, O);
        epilogue(out, B, O, b, relu);
        return;
    }
    struct linear_job j = {out, in, w, b, relu, B, I, O, NN_INFER_LINEAR_COLS, 0, 0};
    j.chunks = (O + j.cols - 1) / j.cols;
    atomic_init(&j.next, 0);
    dim_parallel_for((size_t)parts, 1, linear_chunks, &j);
}

void nn_nchw_to_nhwc(float *out, const float *in, size_t B, size_t C, size_t HW)
{
    for (size_t n = 0; n < B; n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++)
                out[(n * HW + i) * C + c] = in[(n * C + c) * HW + i];
}

void nn_nhwc_to_nchw(float *out, const float *in, size_t B, size_t C, size_t HW)
{
    for (size_t n = 0; n < B; n++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++)
                out[(n * C + c) * HW + i] = in[(n * HW + i) * C + c];
}
