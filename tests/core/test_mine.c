/* test_mine.c - the MINE estimate of I(X; Y): the DV loss and its exact
 * gradient against direct formulas and central differences, the moving-average
 * bias correction, the critic's gradients with respect to every parameter of
 * its three parts (image net, representation net, head; both the MLP and the
 * convolutional image path), and the estimate: near 0 for independent (x, y),
 * large for y = f(x) + small noise.
 *
 * Tolerances: DV loss on scores, smooth, gradients O(1/B): eps 1e-2, rtol 2e-2,
 * atol 1e-4. Through the critic (conv, linear, ReLU): eps 2e-3 (the head's
 * first ReLU sees sums near 0, so a larger step crosses kinks often), rtol
 * 3e-2, atol 2e-4 (gradients are O(0.01..0.1); float32 noise over 2 eps is
 * ~3e-5), entries crossing a ReLU kink skipped and required to stay a minority. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/blas.h"
#include "eval/mine.h"
#include "eval/stats.h"
#include "evalfix.h"
#include "gradcheck.h"

/* --- the DV loss ---------------------------------------------------------- */

struct score_case {
    float u[12], du[12];
    size_t B;
};

static double score_loss(void *ctx)
{
    struct score_case *c = ctx;
    float tmp[12];
    return dim_mine_dv_loss(tmp, c->u, c->B, NULL, 0.0f);
}

static void test_dv_loss_value_and_exact_gradient(void **state)
{
    (void)state;
    struct score_case c = {.B = 6};
    struct dim_rng rng;
    dim_rng_seed(&rng, 4, 1);
    gc_fill_normal(c.u, 12, 1.5f, &rng);
    double l = dim_mine_dv_loss(c.du, c.u, c.B, NULL, 0.0f);
    double mp = 0.0, me = 0.0;
    for (int i = 0; i < 6; i++) {
        mp += c.u[i] / 6.0;
        me += exp((double)c.u[6 + i]) / 6.0;
    }
    assert_true(fabs(l - (-mp + log(me))) < 1e-9);
    struct gc_opts o = gc_opts_default("mine.dv.du");
    o.atol = 1e-4;
    assert_int_equal(gc_check(&o, score_loss, &c, c.u, c.du, 12, NULL), 0);
    /* the negatives' gradient is a softmax over them: it sums to 1 */
    double s = 0.0;
    for (int i = 6; i < 12; i++)
        s += c.du[i];
    assert_true(fabs(s - 1.0) < 1e-6);
}

static void test_dv_loss_moving_average_correction(void **state)
{
    (void)state;
    float u1[4] = {0.5f, 1.0f, 0.0f, 2.0f}, u2[4] = {0.5f, 1.0f, 1.0f, 3.0f}, du[4];
    double log_ma = NAN;
    const float r = 0.1f;
    const double rd = (double)r;
    double l1 = dim_mine_dv_loss(du, u1, 2, &log_ma, r);
    double lme1 = log((exp(0.0) + exp(2.0)) / 2.0);
    assert_true(fabs(log_ma - lme1) < 1e-9); /* first batch initialises the average */
    assert_true(fabs(l1 - (-0.75 + lme1)) < 1e-6);
    double l2 = dim_mine_dv_loss(du, u2, 2, &log_ma, r);
    double lme2 = log((exp(1.0) + exp(3.0)) / 2.0);
    double ma = (1.0 - rd) * exp(lme1) + rd * exp(lme2);
    assert_true(fabs(log_ma - log(ma)) < 1e-9);
    assert_true(fabs(l2 - (-0.75 + lme2)) < 1e-6); /* the loss itself is not corrected */
    assert_true(fabsf(du[0] + 0.5f) < 1e-7f);
    assert_true(fabs(du[2] - exp(1.0) / ma / 2.0) < 1e-6);
    assert_true(fabs(du[3] - exp(3.0) / ma / 2.0) < 1e-6);
}

/* --- through the critic --------------------------------------------------- */

struct critic_case {
    struct dim_mine_critic c;
    float *x, *y;
    uint32_t perm[8];
    size_t B;
    bool *pos[3];
    size_t kinks;
};

static double critic_loss(void *ctx)
{
    struct critic_case *k = ctx;
    float u[16], du[16];
    dim_mine_critic_forward(&k->c, k->x, k->y, k->perm, k->B, u);
    return dim_mine_dv_loss(du, u, k->B, NULL, 0.0f);
}

static bool critic_kinked(void *ctx)
{
    struct critic_case *k = ctx;
    bool kk = evalfix_relu_changed(&k->c.fx, k->B, k->pos[0]) ||
              evalfix_relu_changed(&k->c.head, 2 * k->B, k->pos[2]);
    k->kinks += kk;
    return kk;
}

static void check_critic(int C, int H, int W, int D, int hidden, size_t B, uint64_t seed)
{
    struct critic_case k = {.B = B};
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 3);
    assert_int_equal(dim_mine_critic_create(&k.c, C, H, W, D, hidden, B, &rng, NULL), 0);
    const size_t P = (size_t)C * H * W;
    k.x = malloc(sizeof(float) * B * P);
    k.y = malloc(sizeof(float) * B * D);
    assert_non_null(k.x);
    assert_non_null(k.y);
    gc_fill_normal(k.x, B * P, 1.0f, &rng);
    gc_fill_normal(k.y, B * D, 1.0f, &rng);
    dim_stats_derangement(&rng, k.perm, B);
    k.pos[0] = calloc(evalfix_relu_count(&k.c.fx, B) + 1, sizeof(bool));
    k.pos[2] = calloc(evalfix_relu_count(&k.c.head, 2 * B) + 1, sizeof(bool));
    float u[16], du[16];
    dim_mine_critic_forward(&k.c, k.x, k.y, k.perm, B, u);
    evalfix_relu_record(&k.c.fx, B, k.pos[0]);
    evalfix_relu_record(&k.c.head, 2 * B, k.pos[2]);
    dim_mine_dv_loss(du, u, B, NULL, 0.0f);
    dim_mine_critic_zero_grads(&k.c);
    dim_mine_critic_backward(&k.c, k.x, k.y, k.perm, B, du);
    struct dim_trainnet *parts[3] = {&k.c.fx, &k.c.fy, &k.c.head};
    const char *names[3] = {"mine.fx", "mine.fy", "mine.head"};
    for (int p = 0; p < 3; p++) {
        size_t n = parts[p]->net.n_params;
        float *g = malloc(sizeof(float) * n);
        assert_non_null(g);
        memcpy(g, parts[p]->grads, sizeof(float) * n);
        struct gc_opts o = gc_opts_default(names[p]);
        o.eps = 2e-3;
        o.rtol = 3e-2;
        o.atol = 2e-4;
        o.max_checks = 96;
        o.kink = critic_kinked;
        struct gc_result res;
        assert_int_equal(gc_check(&o, critic_loss, &k, parts[p]->params, g, n, &res), 0);
        assert_true(res.checked >= 10 && res.checked > 2 * res.skipped);
        free(g);
    }
    free(k.pos[0]);
    free(k.pos[2]);
    free(k.x);
    free(k.y);
    dim_mine_critic_free(&k.c);
}

static void test_critic_gradient_mlp_path(void **state)
{
    (void)state;
    check_critic(1, 3, 4, 3, 6, 5, 21);
}

static void test_critic_gradient_conv_path(void **state)
{
    (void)state;
    check_critic(2, 16, 16, 3, 6, 3, 22);
}

/* --- the estimate --------------------------------------------------------- */

/* n images of 1x6x6 Gaussian noise and y (n, 2): independent noise, or
 * y = (x0 + x1, x2 - x3) / sqrt(2) + noise * N(0, 1). */
static void pairs(float *X, float *Y, size_t n, bool dependent, uint64_t seed)
{
    struct dim_rng r;
    dim_rng_seed(&r, seed, 9);
    for (size_t i = 0; i < n; i++) {
        float *x = X + i * 36;
        for (int j = 0; j < 36; j++)
            x[j] = dim_rng_normal(&r);
        if (dependent) {
            Y[2 * i] = (x[0] + x[1]) * 0.7071f + 0.1f * dim_rng_normal(&r);
            Y[2 * i + 1] = (x[2] - x[3]) * 0.7071f + 0.1f * dim_rng_normal(&r);
        } else {
            Y[2 * i] = dim_rng_normal(&r);
            Y[2 * i + 1] = dim_rng_normal(&r);
        }
    }
}

static double mine_of(bool dependent)
{
    const size_t ntr = 2048, nte = 1024;
    float *Xtr = malloc(sizeof(float) * ntr * 36), *Ytr = malloc(sizeof(float) * ntr * 2);
    float *Xte = malloc(sizeof(float) * nte * 36), *Yte = malloc(sizeof(float) * nte * 2);
    assert_true(Xtr && Ytr && Xte && Yte);
    pairs(Xtr, Ytr, ntr, dependent, 1);
    pairs(Xte, Yte, nte, dependent, 2);
    struct dim_mine_opts o;
    dim_mine_opts_default(&o);
    o.steps = 500;
    o.hidden = 64;
    o.lr = 1e-3f;
    double mi = NAN;
    struct dim_err err;
    int rc = dim_mine_run(Xtr, Ytr, ntr, Xte, Yte, nte, 1, 6, 6, 2, &o, NULL, &mi, &err);
    if (rc)
        print_message("mine: %s\n", err.msg);
    assert_int_equal(rc, 0);
    free(Xtr), free(Ytr), free(Xte), free(Yte);
    return mi;
}

static void test_mine_near_zero_for_independent_pairs(void **state)
{
    (void)state;
    double mi = mine_of(false);
    print_message("MINE of independent (x, y): %.4f\n", mi);
    assert_true(fabs(mi) < 0.15);
}

/* True I(X; Y) = 2 * 1/2 log(1 + 1/0.01) = 4.6 nats: the estimate must be clearly large. */
static void test_mine_large_for_dependent_pairs(void **state)
{
    (void)state;
    double mi = mine_of(true);
    print_message("MINE of y = f(x) + noise: %.4f (true 4.62)\n", mi);
    assert_true(mi > 1.5);
}

static void test_mine_rejects_bad_arguments_and_cancels(void **state)
{
    (void)state;
    float X[4 * 4] = {0}, Y[4 * 2] = {0};
    struct dim_mine_opts o;
    dim_mine_opts_default(&o);
    o.hidden = 8;
    o.steps = 3;
    double mi;
    struct dim_err err;
    assert_int_equal(dim_mine_run(X, Y, 1, X, Y, 4, 1, 2, 2, 2, &o, NULL, &mi, &err), DIM_EINVAL);
    assert_int_equal(dim_mine_run(X, Y, 4, X, Y, 4, 1, 2, 2, 0, &o, NULL, &mi, &err), DIM_EINVAL);
    atomic_bool stop = true;
    struct dim_hooks h = {.cancel = &stop};
    assert_int_equal(dim_mine_run(X, Y, 4, X, Y, 4, 1, 2, 2, 2, &o, &h, &mi, &err), DIM_ECANCELLED);
    assert_true(isnan(mi));
    atomic_store(&stop, false);
    assert_int_equal(dim_mine_run(X, Y, 4, X, Y, 4, 1, 2, 2, 2, &o, &h, &mi, &err), 0);
    assert_true(isfinite(mi));
}

int main(void)
{
    nn_blas_set_threads(1); /* small GEMMs: one thread is quicker and deterministic */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dv_loss_value_and_exact_gradient),
        cmocka_unit_test(test_dv_loss_moving_average_correction),
        cmocka_unit_test(test_critic_gradient_mlp_path),
        cmocka_unit_test(test_critic_gradient_conv_path),
        cmocka_unit_test(test_mine_near_zero_for_independent_pairs),
        cmocka_unit_test(test_mine_large_for_dependent_pairs),
        cmocka_unit_test(test_mine_rejects_bad_arguments_and_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
