/* neighbors.c - cosine top-k over a neighbours index (see neighbors.h). */
#include "service/neighbors.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/blas.h"

/* Min-heap of (cosine, row) ordered worse-first: lower cosine, then higher row. */
struct hit {
    float c;
    int64_t i;
};

static bool worse(struct hit a, struct hit b)
{
    return a.c < b.c || (a.c == b.c && a.i > b.i);
}

static void sift_down(struct hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(h[l], h[m]))
            m = l;
        if (r < n && worse(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        struct hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(struct hit *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(h[i], h[p]))
            return;
        struct hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int neighbors_search(const float *vectors, const uint16_t *labels, size_t n, size_t dim,
                     const float *y, size_t k, struct neighbor *out, size_t *found,
                     struct dim_err *err)
{
    *found = 0;
    if (k < 1 || n == 0 || dim == 0)
        return dim_fail(err, DIM_EINVAL,
                        "a neighbours search needs k >= 1 (got %zu) and a "
                        "non-empty index (%zu vectors of %zu)",
                        k, n, dim);
    double ss = 0;
    for (size_t j = 0; j < dim; j++)
        ss += (double)y[j] * (double)y[j];
    if (!isfinite(ss))
        return dim_fail(err, DIM_ENONFINITE, "the query embedding has a non-finite value");
    const size_t K = k < n ? k : n;
    float *score = malloc(sizeof(float) * n), *q = malloc(sizeof(float) * dim);
    struct hit *heap = malloc(sizeof(struct hit) * K);
    if (!score || !q || !heap) {
        free(score);
        free(q);
        free(heap);
        return dim_fail(err, DIM_ENOMEM, "out of memory for a neighbours search of %zu vectors", n);
    }
    const double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (size_t j = 0; j < dim; j++)
        q[j] = (float)((double)y[j] * inv);
    /* scores (n x 1) = vectors (n x dim) . q (dim x 1) */
    nn_sgemm(false, false, n, 1, dim, 1.0f, vectors, dim, q, 1, 0.0f, score, 1);
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        struct hit x = {isnan(score[i]) ? -INFINITY : score[i], (int64_t)i};
        if (h < K) {
            heap[h] = x;
            sift_up(heap, h++);
        } else if (worse(heap[0], x)) {
            heap[0] = x;
            sift_down(heap, h, 0);
        }
    }
    /* pop worst-first into the back of out */
    for (size_t left = h; left > 0; left--) {
        struct hit x = heap[0];
        heap[0] = heap[left - 1];
        sift_down(heap, left - 1, 0);
        out[left - 1].index = x.i;
        out[left - 1].label = labels[x.i];
        out[left - 1].cosine = x.c;
    }
    *found = h;
    free(score);
    free(q);
    free(heap);
    return 0;
}
