/* dimd_side.c - dimd's half of `make bench-peers`, driven line by line.
 *
 * bench/peers/bench_peers.py runs this program as a subprocess next to PyTorch in
 * its own process and alternates the two, so each round of both shares the
 * machine's state. This side holds the product's configuration, as bench_train
 * and bench_encode do: the default job (Fashion-MNIST zero-padded to 32x32,
 * basic32x32, D = 512, DIM(L) JSD + prior, batch 64, Adam (0.5, 0.999)), one
 * compute pool of `threads` (threads - 1 workers plus the caller) with OpenBLAS
 * on one thread inside it, as `dimd train --threads N` and the daemon's encode
 * thread run.
 *
 * On start it prints one JSON line: parameter counts (main slab, encoder, prior
 * discriminator), dim_trainer_step_flops and the encoder's forward FLOPs per image.
 * Then, for each command line on stdin, one JSON line on stdout:
 *   train K        K training steps;                 {"seconds": total, "loss": last total}
 *   forward B K    K inference forwards of B images; {"seconds": total}
 *   single K       K one-image forwards, K <= 256;   {"seconds": [each one's]}
 * Forwards run the inference form the daemon serves (dim/infer.h: batch norm
 * folded, bias and ReLU fused, channels-last convolutions).
 *   quit
 * Inputs are real images: the dataset's first images, preprocessed as training does.
 *
 * usage: dimd_side [--threads N] [--dataset SPEC]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "dim/infer.h"
#include "dim/model.h"
#include "dim/trainer.h"
#include "util/clock.h"
#include "util/threadpool.h"

#define FWD_MAX 1024
#define SINGLE_MAX 256

int main(int argc, char **argv)
{
    const char *spec = "fashion-mnist";
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dataset") == 0 && i + 1 < argc)
            spec = argv[++i];
        else {
            fprintf(stderr, "usage: dimd_side [--threads N] [--dataset SPEC]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "dimd_side: --threads in [1, 64]\n");
        return 2;
    }
    struct dim_err err = {0};
    struct dim_dataset ds;
    struct dim_dataset_limits lim = {0, 0};
    if (dim_dataset_load(spec, DIM_SPLIT_TRAIN, &lim, &ds, &err) != 0) {
        fprintf(stderr, "dimd_side: %s\n", err.msg);
        return 1;
    }
    struct dim_config cfg;
    dim_config_default(&cfg);
    cfg.in_c = ds.c;
    struct dim_model *m = NULL, *inf = NULL;
    struct dim_trainer *t = NULL;
    struct dim_preprocess pp = {ds.c, 32, 32, 0, 0};
    struct dim_infer *form = NULL;
    if (dim_model_create(&m, &cfg, true, &err) != 0 ||
        dim_trainer_create(&t, m, &ds, &pp, &err) != 0 ||
        dim_model_create(&inf, &cfg, false, &err) != 0 ||
        dim_infer_create(&form, inf, &err) != 0) {
        fprintf(stderr, "dimd_side: %s\n", err.msg);
        return 1;
    }
    const size_t in = nn_net_in_size(&inf->enc);
    float *x = malloc(sizeof(float) * FWD_MAX * in);
    uint32_t *idx = malloc(sizeof(uint32_t) * FWD_MAX);
    double *lat = malloc(sizeof(double) * SINGLE_MAX);
    if (!x || !idx || !lat || ds.n < FWD_MAX) {
        fprintf(stderr, "dimd_side: out of memory, or fewer than %d images\n", FWD_MAX);
        return 1;
    }
    for (uint32_t i = 0; i < FWD_MAX; i++)
        idx[i] = i;
    dim_dataset_batch(&ds, idx, FWD_MAX, &pp, NULL, x, NULL);

    /* the product's configuration: one pool of `threads`, BLAS inside it on one thread */
    struct threadpool *pool = threads > 1 ? threadpool_create(threads - 1) : NULL;
    nn_blas_set_threads(1);
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    /* the daemon's inference form, its workspaces cut for this pool */
    struct dim_infer_ws ws, ws1;
    if (dim_infer_ws_create(&ws, form, FWD_MAX, &err) != 0 ||
        dim_infer_ws_create(&ws1, form, 1, &err) != 0) {
        fprintf(stderr, "dimd_side: %s\n", err.msg);
        return 1;
    }

    printf("{\"main_params\":%zu,\"encoder_params\":%zu,\"prior_params\":%zu,"
           "\"step_flops\":%.0f,\"forward_flops_per_image\":%.0f,\"batch\":%u,\"mi_dim\":%d,"
           "\"threads\":%d,\"in\":[%d,%d,%d]}\n",
           m->n_main, dim_model_encoder_params(m), m->n_prior, dim_trainer_step_flops(t),
           2.0 * nn_net_macs(&inf->enc), cfg.batch, cfg.mi_dim, threads, pp.c, pp.h, pp.w);
    fflush(stdout);

    char line[256];
    int rc = 0;
    while (fgets(line, sizeof line, stdin)) {
        long k = 0, b = 0;
        if (sscanf(line, "train %ld", &k) == 1 && k > 0) {
            struct dim_losses ls = {0};
            double t0 = clock_mono_s();
            for (long i = 0; i < k; i++)
                if (dim_trainer_step(t, &ls, &err) != 0) {
                    fprintf(stderr, "dimd_side: %s\n", err.msg);
                    rc = 1;
                    break;
                }
            if (rc)
                break;
            printf("{\"seconds\":%.6f,\"loss\":%.6f}\n", clock_mono_s() - t0, ls.total);
        } else if (sscanf(line, "forward %ld %ld", &b, &k) == 2 && b > 0 && b <= FWD_MAX &&
                   k > 0) {
            double t0 = clock_mono_s();
            float chk = 0;
            for (long i = 0; i < k; i++)
                chk += dim_infer_encode(form, &ws, x, (size_t)b, DIM_TAP_Y)[0];
            printf("{\"seconds\":%.6f,\"finite\":%s}\n", clock_mono_s() - t0,
                   chk == chk ? "true" : "false");
        } else if (sscanf(line, "single %ld", &k) == 1 && k > 0 && k <= SINGLE_MAX) {
            for (long i = 0; i < k; i++) {
                double t0 = clock_mono_s();
                dim_infer_encode(form, &ws1, x + (size_t)(i % FWD_MAX) * in, 1, DIM_TAP_Y);
                lat[i] = clock_mono_s() - t0;
            }
            printf("{\"seconds\":[");
            for (long i = 0; i < k; i++)
                printf("%s%.7f", i ? "," : "", lat[i]);
            printf("]}\n");
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            fprintf(stderr, "dimd_side: bad command: %s", line);
            rc = 2;
            break;
        }
        fflush(stdout);
    }
    dim_parallel_use(NULL);
    threadpool_free(pool);
    free(x);
    free(idx);
    free(lat);
    dim_infer_ws_free(&ws);
    dim_infer_ws_free(&ws1);
    dim_infer_free(form);
    dim_trainer_free(t);
    dim_model_free(m);
    dim_model_free(inf);
    dim_dataset_free(&ds);
    return rc;
}
