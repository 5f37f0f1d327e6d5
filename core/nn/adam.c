/* adam.c - Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). */
#include "nn/adam.h"

#include <math.h>

void nn_adam_update(struct nn_adam *a, float *params, const float *grads, float *m, float *v,
                    size_t n)
{
    a->t++;
    const float b1 = a->beta1, b2 = a->beta2;
    const float c1 = (float)(1.0 / (1.0 - pow(b1, (double)a->t)));
    const float c2 = (float)(1.0 / (1.0 - pow(b2, (double)a->t)));
    const float lr = a->lr, eps = a->eps;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    }
}
