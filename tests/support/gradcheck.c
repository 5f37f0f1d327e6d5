/* gradcheck.c - central-difference gradient checker and small test helpers. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct gc_opts gc_opts_default(const char *name)
{
    struct gc_opts o = {
        .name = name,
        .eps = GC_EPS,
        .atol = GC_ATOL,
        .rtol = GC_RTOL,
        .max_checks = GC_MAX_CHECKS,
        .seed = 0x9c0ffee5u,
        .kink = NULL,
        .quiet = false,
    };
    return o;
}

/* Uniform index in [0, n), for any size_t n > 0. */
static size_t pick_below(struct dim_rng *rng, size_t n)
{
    if (n <= UINT32_MAX)
        return dim_rng_below(rng, (uint32_t)n);
    uint64_t v = ((uint64_t)dim_rng_u32(rng) << 32) | dim_rng_u32(rng);
    return (size_t)(v % n);
}

/* Writes m distinct indices of [0, n) to idx (Floyd's sampling), m <= n. */
static void sample_indices(size_t *idx, size_t m, size_t n, uint64_t seed)
{
    struct dim_rng rng;
    dim_rng_seed(&rng, seed, 77);
    size_t k = 0;
    for (size_t j = n - m; j < n; j++) {
        size_t t = pick_below(&rng, j + 1);
        bool seen = false;
        for (size_t q = 0; q < k && !seen; q++)
            seen = idx[q] == t;
        idx[k++] = seen ? j : t;
    }
}

/* Loss at x[j] = v; *kinked is set when the optional kink test fires. */
static double loss_at(const struct gc_opts *o, gc_loss_fn loss, void *ctx, float *x, size_t j,
                      float v, bool *kinked)
{
    x[j] = v;
    double l = loss(ctx);
    if (o->kink && o->kink(ctx))
        *kinked = true;
    return l;
}

size_t gc_check(const struct gc_opts *o, gc_loss_fn loss, void *ctx, float *x, const float *grad,
                size_t n, struct gc_result *res)
{
    struct gc_result r = {0};
    const char *name = o->name ? o->name : "gradcheck";
    size_t m = (o->max_checks == 0 || n <= o->max_checks) ? n : o->max_checks;
    size_t *idx = NULL;
    if (m < n) {
        idx = malloc(sizeof *idx * m);
        if (!idx) {
            fprintf(stderr, "%s: out of memory\n", name);
            r.failed = 1;
            if (res)
                *res = r;
            return 1;
        }
        sample_indices(idx, m, n, o->seed);
    }
    for (size_t q = 0; q < m; q++) {
        size_t j = idx ? idx[q] : q;
        const float x0 = x[j];
        const float xp = (float)((double)x0 + o->eps), xm = (float)((double)x0 - o->eps);
        bool kinked = false;
        double lp = loss_at(o, loss, ctx, x, j, xp, &kinked);
        double lm = loss_at(o, loss, ctx, x, j, xm, &kinked);
        x[j] = x0;
        if (kinked) {
            r.skipped++;
            continue;
        }
        double num = (lp - lm) / ((double)xp - (double)xm);
        double ana = grad[j];
        double diff = fabs(num - ana);
        double tol = o->atol + o->rtol * fmax(fabs(num), fabs(ana));
        double ratio = diff / tol;
        r.checked++;
        if (!(ratio <= r.worst_ratio)) { /* also catches NaN */
            r.worst_ratio = ratio;
            r.worst_index = j;
        }
        if (diff > r.worst_abs || isnan(diff))
            r.worst_abs = diff;
        if (!(diff <= tol)) {
            if (!o->quiet && r.failed < GC_MAX_REPORTS)
                fprintf(stderr,
                        "%s[%zu]: numeric % .6e analytic % .6e |diff| %.3e > tol %.3e "
                        "(eps %.1e)\n",
                        name, j, num, ana, diff, tol, o->eps);
            r.failed++;
        }
    }
    if (!o->quiet && r.failed > GC_MAX_REPORTS)
        fprintf(stderr, "%s: %zu of %zu checked entries failed\n", name, r.failed, r.checked);
    if (getenv("GC_VERBOSE"))
        fprintf(stderr, "%s: checked %zu skipped %zu failed %zu worst ratio %.3g at [%zu]\n", name,
                r.checked, r.skipped, r.failed, r.worst_ratio, r.worst_index);
    free(idx);
    if (res)
        *res = r;
    return r.failed;
}

double gc_project(const float *out, const float *r, size_t n, float *dout)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)out[i] * r[i];
    if (dout)
        for (size_t i = 0; i < n; i++)
            dout[i] = r[i];
    return s;
}

void gc_fill_uniform(float *x, size_t n, float lo, float hi, struct dim_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * dim_rng_uniform(rng);
}

void gc_fill_normal(float *x, size_t n, float scale, struct dim_rng *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * dim_rng_normal(rng);
}

void gc_fill_away_from_zero(float *x, size_t n, float lo, float hi, struct dim_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        float v = lo + (hi - lo) * dim_rng_uniform(rng);
        x[i] = (dim_rng_u32(rng) & 1u) ? v : -v;
    }
}

size_t gc_compare(const char *name, const float *got, const float *want, size_t n, double atol,
                  double rtol, double *worst_abs)
{
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        double diff = fabs(g - w);
        if (diff > worst || isnan(diff))
            worst = diff;
        if (!(diff <= atol + rtol * fmax(fabs(g), fabs(w)))) {
            if (bad < GC_MAX_REPORTS)
                fprintf(stderr, "%s[%zu]: got % .8e want % .8e |diff| %.3e\n",
                        name ? name : "compare", i, g, w, diff);
            bad++;
        }
    }
    if (bad > GC_MAX_REPORTS)
        fprintf(stderr, "%s: %zu of %zu entries differ\n", name ? name : "compare", bad, n);
    if (worst_abs)
        *worst_abs = worst;
    return bad;
}
