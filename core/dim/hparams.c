/* hparams.c - hyperparameter table and its parser. */
#include "dim/hparams.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HP(name, type, field, lo, hi, help)                                                     \
    {name, type, offsetof(struct dim_config, field), lo, hi, help}

const struct dim_hparam dim_hparams[] = {
    HP("preset", DIM_HP_PRESET, preset, 0, 2, "encoder: basic32x32, basic28x28 or basic64x64"),
    HP("channels", DIM_HP_INT, in_c, 1, 3, "input channels, 1 or 3 (CLI: the dataset's by default)"),
    HP("y_dim", DIM_HP_INT, y_dim, 1, 4096, "width of the global representation Y"),
    HP("mi_dim", DIM_HP_INT, mi_dim, 1, 8192, "D, width of the MI critics' embedding"),
    HP("estimator", DIM_HP_ESTIMATOR, estimator, 0, 2, "MI estimator: jsd, nce or dv"),
    HP("alpha", DIM_HP_FLOAT, alpha, 0, 1e6, "weight of global MI"),
    HP("beta", DIM_HP_FLOAT, beta, 0, 1e6, "weight of local MI"),
    HP("gamma", DIM_HP_FLOAT, gamma, 0, 1e6, "weight of prior matching"),
    HP("lr", DIM_HP_FLOAT, lr, 1e-12, 1, "Adam learning rate (encoder, critics, prior)"),
    HP("lr_schedule", DIM_HP_SCHEDULE, lr_schedule, 0, 2,
       "lr schedule: constant, cosine (decay to lr * lr_final) or step"),
    HP("lr_warmup", DIM_HP_U64, lr_warmup, 0, 1e12, "steps of linear lr warm-up (0: none)"),
    HP("lr_final", DIM_HP_FLOAT, lr_final, 0, 1, "cosine: the final lr as a fraction of lr"),
    HP("lr_step_factor", DIM_HP_FLOAT, lr_step_factor, 1e-6, 1,
       "step: lr factor at 50 % and 75 % of the decay"),
    HP("lr_horizon", DIM_HP_U64, lr_horizon, 0, 1e12,
       "steps the schedule spans, warm-up included (0: the run's length)"),
    HP("adam_beta1", DIM_HP_FLOAT, adam_beta1, 0, 0.999999, "Adam beta1"),
    HP("adam_beta2", DIM_HP_FLOAT, adam_beta2, 0, 0.9999999, "Adam beta2"),
    HP("adam_eps", DIM_HP_FLOAT, adam_eps, 1e-30, 1, "Adam epsilon"),
    HP("batch", DIM_HP_U32, batch, 2, DIM_BATCH_MAX, "images per step (all-pairs negatives)"),
    /* seeds stop at 2^53 - 1 so that JSON clients (JavaScript numbers) keep them exact */
    HP("seed", DIM_HP_U64, seed, 0, 9007199254740991.0, "seed of initialisation and data order"),
};
const size_t dim_n_hparams = sizeof dim_hparams / sizeof dim_hparams[0];

bool dim_hparam_is_text(const struct dim_hparam *h)
{
    return h->type == DIM_HP_PRESET || h->type == DIM_HP_ESTIMATOR || h->type == DIM_HP_SCHEDULE;
}

const struct dim_hparam *dim_hparam_find(const char *name)
{
    for (size_t i = 0; i < dim_n_hparams; i++)
        if (strcmp(dim_hparams[i].name, name) == 0)
            return &dim_hparams[i];
    return NULL;
}

int dim_hparam_set_number(struct dim_config *cfg, const struct dim_hparam *h, double v,
                          struct dim_err *err)
{
    char *p = (char *)cfg + h->offset;
    if (!isfinite(v) || v < h->min || v > h->max)
        return dim_fail(err, DIM_EINVAL, "%s %g is out of range [%g, %g]", h->name, v, h->min,
                        h->max);
    if (h->type != DIM_HP_FLOAT && v != floor(v))
        return dim_fail(err, DIM_EINVAL, "%s %g must be a whole number", h->name, v);
    switch (h->type) {
    case DIM_HP_INT:
        *(int *)p = (int)v;
        break;
    case DIM_HP_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case DIM_HP_U64:
        *(uint64_t *)p = (uint64_t)v;
        break;
    case DIM_HP_FLOAT:
        *(float *)p = (float)v;
        break;
    case DIM_HP_PRESET:
        *(enum dim_preset *)p = (enum dim_preset)(int)v;
        break;
    case DIM_HP_ESTIMATOR:
        *(enum dim_estimator *)p = (enum dim_estimator)(int)v;
        break;
    case DIM_HP_SCHEDULE:
        *(enum dim_lr_schedule *)p = (enum dim_lr_schedule)(int)v;
        break;
    }
    return 0;
}

double dim_hparam_get_number(const struct dim_config *cfg, const struct dim_hparam *h)
{
    const char *p = (const char *)cfg + h->offset;
    switch (h->type) {
    case DIM_HP_INT:
        return *(const int *)p;
    case DIM_HP_U32:
        return *(const uint32_t *)p;
    case DIM_HP_U64:
        return (double)*(const uint64_t *)p;
    case DIM_HP_FLOAT:
        return *(const float *)p;
    case DIM_HP_PRESET:
        return (double)*(const enum dim_preset *)p;
    case DIM_HP_ESTIMATOR:
        return (double)*(const enum dim_estimator *)p;
    case DIM_HP_SCHEDULE:
        return (double)*(const enum dim_lr_schedule *)p;
    }
    return NAN;
}

int dim_hparam_parse(struct dim_config *cfg, const struct dim_hparam *h, const char *text,
                     struct dim_err *err)
{
    char *p = (char *)cfg + h->offset;
    if (h->type == DIM_HP_PRESET) {
        if (dim_preset_parse(text, (enum dim_preset *)p) != 0)
            return dim_fail(err, DIM_EINVAL,
                            "preset '%s' is not one of basic32x32, basic28x28, basic64x64", text);
        return 0;
    }
    if (h->type == DIM_HP_ESTIMATOR) {
        if (dim_estimator_parse(text, (enum dim_estimator *)p) != 0)
            return dim_fail(err, DIM_EINVAL, "estimator '%s' is not one of jsd, nce, dv", text);
        return 0;
    }
    if (h->type == DIM_HP_SCHEDULE) {
        if (dim_lr_schedule_parse(text, (enum dim_lr_schedule *)p) != 0)
            return dim_fail(err, DIM_EINVAL,
                            "lr_schedule '%s' is not one of constant, cosine, step", text);
        return 0;
    }
    if (h->type == DIM_HP_U64) { /* exact for the full 64-bit range */
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        /* strtoull skips leading space and negates "-1" to 2^64 - 1: refuse any '-' */
        if (!*text || *end || errno || strchr(text, '-'))
            return dim_fail(err, DIM_EINVAL, "%s '%s' is not a non-negative integer", h->name,
                            text);
        if ((double)v > h->max)
            return dim_fail(err, DIM_EINVAL, "%s %s is out of range [0, %.0f]", h->name, text,
                            h->max);
        *(uint64_t *)p = (uint64_t)v;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno)
        return dim_fail(err, DIM_EINVAL, "%s '%s' is not a number", h->name, text);
    return dim_hparam_set_number(cfg, h, v, err);
}

void dim_hparam_format(const struct dim_config *cfg, const struct dim_hparam *h, char *buf,
                       size_t n)
{
    const char *p = (const char *)cfg + h->offset;
    switch (h->type) {
    case DIM_HP_PRESET:
        snprintf(buf, n, "%s", dim_preset_name(*(const enum dim_preset *)p));
        break;
    case DIM_HP_ESTIMATOR:
        snprintf(buf, n, "%s", dim_estimator_name(*(const enum dim_estimator *)p));
        break;
    case DIM_HP_SCHEDULE:
        snprintf(buf, n, "%s", dim_lr_schedule_name(*(const enum dim_lr_schedule *)p));
        break;
    case DIM_HP_U64:
        snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case DIM_HP_FLOAT:
        snprintf(buf, n, "%g", (double)*(const float *)p);
        break;
    default:
        snprintf(buf, n, "%.0f", dim_hparam_get_number(cfg, h));
        break;
    }
}
