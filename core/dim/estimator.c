/* estimator.c - JSD, InfoNCE and DV losses over all-pairs score tensors. */
#include "dim/estimator.h"

#include <math.h>
#include <string.h>

#include "nn/activation.h"

const char *dim_estimator_name(enum dim_estimator e)
{
    switch (e) {
    case DIM_JSD:
        return "jsd";
    case DIM_NCE:
        return "nce";
    case DIM_DV:
        return "dv";
    }
    return "?";
}

int dim_estimator_parse(const char *name, enum dim_estimator *out)
{
    for (int e = DIM_JSD; e <= DIM_DV; e++)
        if (strcmp(name, dim_estimator_name((enum dim_estimator)e)) == 0) {
            *out = (enum dim_estimator)e;
            return 0;
        }
    return -1;
}

/* loss = (1/P) sum_P sp(-u) + (1/Q) sum_Q sp(u)
 * d/du_pos = -sigmoid(-u) / P;  d/du_neg = sigmoid(u) / Q */
static double jsd(float *du, const float *u, size_t N, size_t L, float w)
{
    const double P = (double)(N * L), Q = (double)(N * (N - 1) * L);
    double lp = 0.0, lq = 0.0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            const float *s = u + (i * N + j) * L;
            float *d = du + (i * N + j) * L;
            if (i == j)
                for (size_t q = 0; q < L; q++) {
                    lp += nn_softplus(-s[q]);
                    d[q] = (float)(-w * nn_sigmoid(-s[q]) / P);
                }
            else
                for (size_t q = 0; q < L; q++) {
                    lq += nn_softplus(s[q]);
                    d[q] = (float)(w * nn_sigmoid(s[q]) / Q);
                }
        }
    return lp / P + lq / Q;
}

/* logsumexp over row i's negatives (j != i, all q) */
static double row_neg_lse(const float *u, size_t i, size_t N, size_t L)
{
    double mx = -INFINITY;
    for (size_t j = 0; j < N; j++) {
        if (j == i)
            continue;
        const float *s = u + (i * N + j) * L;
        for (size_t q = 0; q < L; q++)
            mx = s[q] > mx ? s[q] : mx;
    }
    double acc = 0.0;
    for (size_t j = 0; j < N; j++) {
        if (j == i)
            continue;
        const float *s = u + (i * N + j) * L;
        for (size_t q = 0; q < L; q++)
            acc += exp(s[q] - mx);
    }
    return mx + log(acc);
}

/* loss_iq = sp(lse_i - u_iiq), averaged over the N*L anchors.
 * With t = sigmoid(lse_i - u_iiq): d/du_iiq = -t / NL; d/d lse_i = t / NL, and
 * d lse_i / d u_ijq' = exp(u_ijq' - lse_i), so negatives get T_i * softmax. */
static double nce(float *du, const float *u, size_t N, size_t L, float w)
{
    const double A = (double)(N * L);
    double loss = 0.0;
    for (size_t i = 0; i < N; i++) {
        double lse = row_neg_lse(u, i, N, L), T = 0.0;
        const float *pos = u + (i * N + i) * L;
        float *dpos = du + (i * N + i) * L;
        for (size_t q = 0; q < L; q++) {
            double z = lse - pos[q];
            loss += nn_softplus(z);
            double t = nn_sigmoid(z);
            dpos[q] = (float)(-w * t / A);
            T += t / A;
        }
        for (size_t j = 0; j < N; j++) {
            if (j == i)
                continue;
            const float *s = u + (i * N + j) * L;
            float *d = du + (i * N + j) * L;
            for (size_t q = 0; q < L; q++)
                d[q] = (float)(w * T * exp(s[q] - lse));
        }
    }
    return loss / A;
}

/* loss = -(1/P) sum_P u + log((1/Q) sum_Q exp(u))
 * d/du_pos = -1/P;  d/du_neg = exp(u - lse_Q) (softmax over all negatives) */
static double dv(float *du, const float *u, size_t N, size_t L, float w)
{
    const double P = (double)(N * L), Q = (double)(N * (N - 1) * L);
    double mx = -INFINITY, sp = 0.0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            const float *s = u + (i * N + j) * L;
            for (size_t q = 0; q < L; q++) {
                if (i == j)
                    sp += s[q];
                else if (s[q] > mx)
                    mx = s[q];
            }
        }
    double acc = 0.0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            if (i != j) {
                const float *s = u + (i * N + j) * L;
                for (size_t q = 0; q < L; q++)
                    acc += exp(s[q] - mx);
            }
    double lse = mx + log(acc);
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            const float *s = u + (i * N + j) * L;
            float *d = du + (i * N + j) * L;
            for (size_t q = 0; q < L; q++)
                d[q] = i == j ? (float)(-w / P) : (float)(w * exp(s[q] - lse));
        }
    return -sp / P + lse - log(Q);
}

double dim_estimator_loss(enum dim_estimator e, float *du, const float *u, size_t N, size_t L,
                          float weight)
{
    switch (e) {
    case DIM_JSD:
        return jsd(du, u, N, L, weight);
    case DIM_NCE:
        return nce(du, u, N, L, weight);
    case DIM_DV:
        return dv(du, u, N, L, weight);
    }
    return NAN;
}
