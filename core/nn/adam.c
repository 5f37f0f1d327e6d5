/* adam.c - Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * Elementwise, so it splits across the thread's pool (base/parallel.h). */
#include "nn/adam.h"

#include <math.h>

#include "base/parallel.h"

struct adam_job {
    float *params, *m, *v;
    const float *grads;
    float b1, b2, c1, c2, lr, eps;
};

static void adam_range(void *ctx, size_t i0, size_t i1)
{
    const struct adam_job *j = ctx;
    float *restrict p = j->params, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->grads;
    const float b1 = j->b1, b2 = j->b2, c1 = j->c1, c2 = j->c2, lr = j->lr, eps = j->eps;
    for (size_t i = i0; i < i1; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    }
}

void nn_adam_update(struct nn_adam *a, float *params, const float *grads, float *m, float *v,
                    size_t n)
{
    a->t++;
    struct adam_job j = {params, m, v, grads, a->beta1, a->beta2,
                         (float)(1.0 / (1.0 - pow(a->beta1, (double)a->t))),
                         (float)(1.0 / (1.0 - pow(a->beta2, (double)a->t))), a->lr, a->eps};
    dim_parallel_for(n, 65536, adam_range, &j);
}
