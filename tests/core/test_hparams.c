/* test_hparams.c - the hyperparameter table of dim/hparams: defaults format and
 * parse back to the same value, names are unique and findable, bounds agree with
 * dim_config_validate, and bad text is DIM_EINVAL with the parameter named. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dim/hparams.h"
#include "dim/model.h"

static const struct dim_hparam *find(const char *name)
{
    const struct dim_hparam *h = dim_hparam_find(name);
    if (!h)
        fail_msg("no hyperparameter '%s'", name);
    return h;
}

/* The bytes of the field h describes. */
static size_t field_size(const struct dim_hparam *h)
{
    switch (h->type) {
    case DIM_HP_INT:
        return sizeof(int);
    case DIM_HP_U32:
        return sizeof(uint32_t);
    case DIM_HP_U64:
        return sizeof(uint64_t);
    case DIM_HP_FLOAT:
        return sizeof(float);
    case DIM_HP_PRESET:
        return sizeof(enum dim_preset);
    case DIM_HP_ESTIMATOR:
        return sizeof(enum dim_estimator);
    case DIM_HP_SCHEDULE:
        return sizeof(enum dim_lr_schedule);
    }
    return 0;
}

static void test_table(void **state)
{
    (void)state;
    assert_true(dim_n_hparams >= 14);
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        assert_non_null(h->name);
        assert_true(strlen(h->name) > 0);
        assert_non_null(h->help);
        assert_true(h->min <= h->max);
        assert_true(h->offset + field_size(h) <= sizeof(struct dim_config));
        assert_ptr_equal(dim_hparam_find(h->name), h);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(dim_hparams[j].name, h->name) == 0)
                fail_msg("duplicate name '%s'", h->name);
            if (dim_hparams[j].offset == h->offset)
                fail_msg("'%s' and '%s' share a field", dim_hparams[j].name, h->name);
        }
    }
    /* every field of the config is covered, by its CLI name */
    const char *names[] = {"preset",     "channels", "y_dim", "mi_dim", "estimator",
                           "alpha",      "beta",     "gamma", "lr",     "adam_beta1",
                           "adam_beta2", "adam_eps", "batch", "seed",
                           "lr_schedule", "lr_warmup", "lr_final", "lr_step_factor",
                           "lr_horizon"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        find(names[k]);
    assert_int_equal(find("channels")->offset, offsetof(struct dim_config, in_c));
    assert_int_equal(find("batch")->offset, offsetof(struct dim_config, batch));
    assert_int_equal(find("seed")->offset, offsetof(struct dim_config, seed));
    assert_null(dim_hparam_find("learning_rate"));
    assert_null(dim_hparam_find(""));
    assert_null(dim_hparam_find("LR"));
    assert_null(dim_hparam_find("lr "));
}

/* Each default formats to text that parses back to the identical value, and the
 * text of a few defaults is the expected one. */
static void test_defaults_round_trip(void **state)
{
    (void)state;
    struct dim_config def;
    dim_config_default(&def);
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        char text[64];
        dim_hparam_format(&def, h, text, sizeof text);
        struct dim_config c;
        memset(&c, 0xa5, sizeof c); /* not the default anywhere */
        struct dim_err err = {0};
        if (dim_hparam_parse(&c, h, text, &err) != 0)
            fail_msg("%s: default text '%s' does not parse: %s", h->name, text, err.msg);
        if (memcmp((char *)&c + h->offset, (char *)&def + h->offset, field_size(h)) != 0)
            fail_msg("%s: '%s' parsed to a different value", h->name, text);
        assert_true(dim_hparam_get_number(&c, h) == dim_hparam_get_number(&def, h));
        /* the default lies inside the table's bounds */
        double v = dim_hparam_get_number(&def, h);
        assert_true(v >= h->min && v <= h->max);
    }
    char text[64];
    dim_hparam_format(&def, find("preset"), text, sizeof text);
    assert_string_equal(text, "basic32x32");
    dim_hparam_format(&def, find("estimator"), text, sizeof text);
    assert_string_equal(text, "jsd");
    dim_hparam_format(&def, find("lr"), text, sizeof text);
    assert_string_equal(text, "0.0005");
    dim_hparam_format(&def, find("lr_schedule"), text, sizeof text);
    assert_string_equal(text, "constant");
    dim_hparam_format(&def, find("lr_warmup"), text, sizeof text);
    assert_string_equal(text, "0");
    dim_hparam_format(&def, find("lr_horizon"), text, sizeof text);
    assert_string_equal(text, "0");
    dim_hparam_format(&def, find("batch"), text, sizeof text);
    assert_string_equal(text, "64");
    dim_hparam_format(&def, find("adam_beta1"), text, sizeof text);
    assert_string_equal(text, "0.5");
}

/* Other values: every preset and estimator, integer and float edges, the full u64. */
static void test_values_round_trip(void **state)
{
    (void)state;
    const struct {
        const char *name, *text;
        double want;
    } cases[] = {
        {"preset", "basic28x28", DIM_BASIC28},
        {"preset", "basic64x64", DIM_BASIC64},
        {"preset", "basic32x32", DIM_BASIC32},
        {"estimator", "nce", DIM_NCE},
        {"estimator", "dv", DIM_DV},
        {"estimator", "jsd", DIM_JSD},
        {"channels", "3", 3},
        {"channels", "1", 1},
        {"y_dim", "4096", 4096},
        {"mi_dim", "1", 1},
        {"batch", "2", 2},
        {"batch", "4096", 4096},
        {"alpha", "0.5", 0.5},
        {"gamma", "0", 0},
        {"beta", "1e6", 1e6},
        {"lr", "1", 1},
        {"adam_beta2", "0.9", 0.9f},
        {"seed", "0", 0},
        {"seed", "12345678901", 12345678901.0},
        {"lr_schedule", "cosine", DIM_LR_COSINE},
        {"lr_schedule", "step", DIM_LR_STEP},
        {"lr_schedule", "constant", DIM_LR_CONSTANT},
        {"lr_warmup", "500", 500},
        {"lr_final", "0", 0},
        {"lr_step_factor", "0.5", 0.5},
        {"lr_horizon", "1000000000000", 1e12},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct dim_config c;
        dim_config_default(&c);
        struct dim_err err = {0};
        const struct dim_hparam *h = find(cases[k].name);
        if (dim_hparam_parse(&c, h, cases[k].text, &err) != 0)
            fail_msg("%s '%s': %s", cases[k].name, cases[k].text, err.msg);
        if (dim_hparam_get_number(&c, h) !=
            (h->type == DIM_HP_FLOAT ? (double)(float)cases[k].want : cases[k].want))
            fail_msg("%s '%s' read back as %.17g", cases[k].name, cases[k].text,
                     dim_hparam_get_number(&c, h));
        char text[64];
        dim_hparam_format(&c, h, text, sizeof text);
        struct dim_config c2;
        dim_config_default(&c2);
        assert_int_equal(dim_hparam_parse(&c2, h, text, &err), 0);
        assert_memory_equal((char *)&c2 + h->offset, (char *)&c + h->offset, field_size(h));
    }
    /* seeds are exact up to 2^53 - 1 (what JSON clients can hold) and refused above */
    struct dim_config c;
    dim_config_default(&c);
    struct dim_err err = {0};
    assert_int_equal(dim_hparam_parse(&c, find("seed"), "9007199254740991", &err), 0);
    assert_true(c.seed == 9007199254740991ull);
    char text[64];
    dim_hparam_format(&c, find("seed"), text, sizeof text);
    assert_string_equal(text, "9007199254740991");
    const char *too_big[] = {"9007199254740992", "9007199254740993", "18446744073709551615"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(dim_hparam_parse(&c, find("seed"), too_big[i], &err), DIM_EINVAL);
        assert_non_null(strstr(err.msg, "seed"));
        assert_true(c.seed == 9007199254740991ull);
    }
    /* set_number checks the same bounds */
    assert_int_equal(dim_hparam_set_number(&c, find("mi_dim"), 256, &err), 0);
    assert_int_equal(c.mi_dim, 256);
    assert_int_equal(dim_hparam_set_number(&c, find("mi_dim"), 0, &err), DIM_EINVAL);
    assert_int_equal(dim_hparam_set_number(&c, find("mi_dim"), 2.5, &err), DIM_EINVAL);
    assert_int_equal(dim_hparam_set_number(&c, find("lr"), NAN, &err), DIM_EINVAL);
    assert_int_equal(c.mi_dim, 256);
}

/* Bad text: DIM_EINVAL, a message naming the parameter (and the text), the config
 * field untouched. */
static void test_bad_values(void **state)
{
    (void)state;
    const struct {
        const char *name, *text;
    } cases[] = {
        {"batch", "1"},        {"batch", "0"},      {"batch", "4097"},
        {"batch", "2.5"},      {"batch", "-64"},    {"batch", "sixty"},
        {"batch", ""},         {"batch", "64x"},    {"channels", "0"},
        {"channels", "4"},     {"channels", "1.5"}, {"y_dim", "0"},
        {"y_dim", "4097"},     {"mi_dim", "0"},     {"mi_dim", "8193"},
        {"mi_dim", "1e100"},   {"alpha", "-0.1"},   {"beta", "1e7"},
        {"gamma", "nan"},      {"gamma", "inf"},    {"lr", "0"},
        {"lr", "-1e-4"},       {"lr", "2"},         {"lr", "abc"},
        {"lr", "1e-4 "},       {"adam_beta1", "1"}, {"adam_beta2", "1.5"},
        {"adam_eps", "0"},     {"seed", "-1"},      {"seed", "1.5"},
        {"seed", "abc"},       {"seed", ""},        {"seed", "18446744073709551616"},
        {"seed", " -1"},       {"seed", "\t-5"},    {"preset", "basic16x16"},
        {"preset", ""},        {"preset", "1"},     {"estimator", "mine"},
        {"estimator", "JSD "}, {"estimator", ""},
        {"lr_schedule", "linear"}, {"lr_schedule", "Cosine"}, {"lr_schedule", ""},
        {"lr_warmup", "-5"},   {"lr_warmup", "1.5"}, {"lr_horizon", "-1"},
        {"lr_horizon", "1000000000001"}, {"lr_final", "1.5"}, {"lr_final", "-0.1"},
        {"lr_step_factor", "0"}, {"lr_step_factor", "2"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct dim_hparam *h = find(cases[k].name);
        struct dim_config c, before;
        dim_config_default(&c);
        before = c;
        struct dim_err err = {0};
        int rc = dim_hparam_parse(&c, h, cases[k].text, &err);
        if (rc != DIM_EINVAL)
            fail_msg("%s '%s' gave %d, want DIM_EINVAL", cases[k].name, cases[k].text, rc);
        assert_int_equal(err.code, DIM_EINVAL);
        if (!strstr(err.msg, h->name))
            fail_msg("%s '%s': message '%s' does not name the parameter", cases[k].name,
                     cases[k].text, err.msg);
        if (cases[k].text[0] && !strstr(err.msg, cases[k].text) && h->type != DIM_HP_INT &&
            h->type != DIM_HP_U32 && h->type != DIM_HP_FLOAT)
            fail_msg("%s '%s': message '%s' does not show the value", cases[k].name, cases[k].text,
                     err.msg);
        assert_memory_equal(&c, &before, sizeof c);
    }
}

/* Writes v into h's field without any check (to build out-of-range configs). */
static void poke(struct dim_config *c, const struct dim_hparam *h, double v)
{
    char *p = (char *)c + h->offset;
    if (h->type == DIM_HP_FLOAT)
        *(float *)p = (float)v;
    else if (h->type == DIM_HP_INT)
        *(int *)p = (int)v;
    else if (h->type == DIM_HP_U32)
        *(uint32_t *)p = (uint32_t)v;
}

/* Every numeric bound of the table agrees with dim_config_validate: the bound itself
 * is accepted, a value just beyond it is rejected by both. */
static void test_bounds_match_validate(void **state)
{
    (void)state;
    size_t n_checked = 0;
    for (size_t i = 0; i < dim_n_hparams; i++) {
        const struct dim_hparam *h = &dim_hparams[i];
        if (h->type != DIM_HP_INT && h->type != DIM_HP_U32 && h->type != DIM_HP_FLOAT)
            continue;
        struct dim_config c;
        struct dim_err err = {0};
        const bool integer = h->type != DIM_HP_FLOAT;
        const double ends[2] = {h->min, h->max};
        const double beyond[2] = {integer ? h->min - 1 : (h->min > 0 ? h->min / 2 : -1e-3),
                                  integer ? h->max + 1 : (h->max < 1 ? 1.0 : 2 * h->max)};
        for (int e = 0; e < 2; e++) {
            dim_config_default(&c);
            assert_int_equal(dim_hparam_set_number(&c, h, ends[e], &err), 0);
            if (strcmp(h->name, "beta") == 0 && ends[e] == 0)
                c.alpha = 1.0f; /* alpha = beta = 0 is refused as a pair */
            if (dim_config_validate(&c, &err) != 0)
                fail_msg("%s = %g is in the table's bounds but validate says: %s", h->name, ends[e],
                         err.msg);
            dim_config_default(&c);
            assert_int_equal(dim_hparam_set_number(&c, h, beyond[e], &err), DIM_EINVAL);
            if (integer && beyond[e] < 0)
                continue; /* not representable in an unsigned field */
            poke(&c, h, beyond[e]);
            if (dim_config_validate(&c, &err) != DIM_EINVAL)
                fail_msg("%s = %g is outside the table's bounds but validate accepts it", h->name,
                         beyond[e]);
            n_checked++;
        }
    }
    assert_true(n_checked >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_defaults_round_trip),
        cmocka_unit_test(test_values_round_trip),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bounds_match_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
