/* ckpt_diff.c - how far apart the parameters of two checkpoints are (tests only; core).
 *
 * usage: ckpt_diff A.ckpt B.ckpt
 * Reads both with core's reader (so it follows the format wherever it goes) and
 * prints one line per slab, "NAME max_abs X rel_l2 Y", where X is the largest
 * |a - b| and Y = ||a - b|| / ||a|| over the slab: main (encoder and critics),
 * prior (the discriminator), state (batch-norm running statistics).
 * Exits 0, 2 on bad arguments, 1 when a checkpoint cannot be read or the two
 * models differ in shape.
 */
#include <math.h>
#include <stdio.h>

#include "dim/checkpoint.h"

static void diff(const char *name, const float *a, const float *b, size_t n)
{
    double mx = 0.0, d2 = 0.0, a2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        mx = fmax(mx, fabs(d));
        d2 += d * d;
        a2 += (double)a[i] * a[i];
    }
    printf("%s max_abs %.3e rel_l2 %.3e\n", name, mx, a2 > 0 ? sqrt(d2 / a2) : sqrt(d2));
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_diff A.ckpt B.ckpt\n");
        return 2;
    }
    struct dim_model *a = NULL, *b = NULL;
    struct dim_err err;
    int rc = 1;
    if (dim_checkpoint_load(argv[1], &a, NULL, false, &err) != 0 ||
        dim_checkpoint_load(argv[2], &b, NULL, false, &err) != 0) {
        fprintf(stderr, "ckpt_diff: %s\n", err.msg);
        goto out;
    }
    if (a->n_main != b->n_main || a->n_prior != b->n_prior || a->n_state != b->n_state) {
        fprintf(stderr, "ckpt_diff: the two models differ in shape\n");
        goto out;
    }
    diff("main", a->main_params, b->main_params, a->n_main);
    diff("prior", a->prior_params, b->prior_params, a->n_prior);
    diff("state", a->state, b->state, a->n_state);
    rc = 0;
out:
    dim_model_free(a);
    dim_model_free(b);
    return rc;
}
