/* cli_measure.c - `dimd measure`: the paper's representation measures (probes,
 * SVM, NDM, MINE, reconstruction) of a saved encoder on a dataset through
 * dim_evaluate and, with --fresh, of a freshly initialised encoder of the same
 * architecture under the same budgets and seeds. Ctrl-C cancels cleanly. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dim/checkpoint.h"
#include "eval/evaluate.h"
#include "cmd/cli.h"
#include "api/evalspec.h"

static const char *const measure_with_value[] = {
    "checkpoint", "dataset",      "measures",     "seed",       "threads",   "grid",
    "max_train",  "max_test",     "probe_epochs", "ndm_steps", "mine_steps", "recon_epochs",
    "grid_pairs", NULL};

static atomic_bool measure_cancel;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&measure_cancel, true);
}

static void measure_usage(void)
{
    struct dim_eval_opts d;
    dim_eval_opts_default(&d);
    printf(
        "usage: dimd measure --checkpoint PATH [--dataset NAME|DIR] [--measures LIST] [--fresh]\n"
        "                    [--seed N] [--threads N] [--grid PATH.png] [--json] [budgets]\n"
        "  --checkpoint PATH  the encoder to measure\n"
        "  --dataset NAME|DIR fashion-mnist (default), an IDX or CIFAR-10 directory, or an "
        "image folder\n"
        "  --measures LIST    comma-separated: linear,mlp,svm,ndm,mine,recon or all (default "
        "all)\n"
        "  --fresh            also measure a freshly initialised encoder of the same "
        "architecture\n"
        "  --seed N           base seed of every measure (default %llu)\n"
        "  --threads N        compute threads (default: online cores)\n"
        "  --grid PATH.png    write originals over reconstructions (recon); with --fresh the\n"
        "                     fresh encoder's grid goes to PATH-fresh.png\n"
        "  --json             end with one JSON object holding every figure\n"
        "Budgets:\n"
        "  --max_train N      training images used, evenly spaced, 0 = all (default %zu)\n"
        "  --max_test N       test images used, evenly spaced, 0 = all (default %zu)\n"
        "  --probe_epochs N   MLP probe epochs (default %d; the linear probe and the SVM\n"
        "                     are solved to convergence, their L2 weight chosen on a\n"
        "                     validation split of the training images)\n"
        "  --ndm_steps N      NDM discriminator steps, per variant (default %d)\n"
        "  --mine_steps N     MINE critic steps (default %d)\n"
        "  --recon_epochs N   decoder epochs (default %d)\n"
        "  --grid_pairs N     pairs in the grid image (default %d)\n",
        (unsigned long long)d.seed, d.max_train, d.max_test, d.probe_epochs, d.ndm_steps, d.mine_steps, d.recon_epochs, d.grid_pairs);
}

/* One table row: a label and the trained (and fresh) value. */
static void row(const char *label, double a, const double *b, int prec)
{
    char va[32] = "-", vb[32] = "-";
    if (isfinite(a))
        snprintf(va, sizeof va, "%.*f", prec, a);
    if (b && isfinite(*b))
        snprintf(vb, sizeof vb, "%.*f", prec, *b);
    if (b)
        printf("  %-26s %10s %10s\n", label, va, vb);
    else
        printf("  %-26s %10s\n", label, va);
}

static void print_table(const struct dim_eval_result *r, const struct dim_eval_result *f)
{
    char label[64];
    if (f)
        printf("  %-26s %10s %10s\n", "measure", "trained", "fresh");
    else
        printf("  %-26s %10s\n", "measure", "trained");
    /* rows conv, fc, y, then pixels (the same for both encoders) */
    for (int t = 0; t < DIM_PROBE_ROWS && (r->measures & DIM_MEASURE_LINEAR); t++) {
        snprintf(label, sizeof label, "linear probe acc, %s", dim_probe_row_name(t));
        row(label, r->linear[t].accuracy, f ? &f->linear[t].accuracy : NULL, 4);
    }
    for (int t = 0; t < DIM_PROBE_ROWS && (r->measures & DIM_MEASURE_MLP); t++) {
        snprintf(label, sizeof label, "MLP probe acc, %s", dim_probe_row_name(t));
        row(label, r->mlp[t], f ? &f->mlp[t] : NULL, 4);
    }
    for (int t = 0; t < DIM_PROBE_ROWS && (r->measures & DIM_MEASURE_SVM); t++) {
        snprintf(label, sizeof label, "SVM acc, %s", dim_probe_row_name(t));
        row(label, r->svm[t].accuracy, f ? &f->svm[t].accuracy : NULL, 4);
    }
    if (r->measures & DIM_MEASURE_NDM) {
        row("NDM (nats)", r->ndm, f ? &f->ndm : NULL, 4);
        row("NDM of sigmoid(Y) (nats)", r->ndm_sigmoid, f ? &f->ndm_sigmoid : NULL, 4);
    }
    if (r->measures & DIM_MEASURE_MINE)
        row("MINE I(X;Y) (nats)", r->mine, f ? &f->mine : NULL, 4);
    if (r->measures & DIM_MEASURE_RECON) {
        row("reconstruction MSE", r->recon_mse, f ? &f->recon_mse : NULL, 5);
        row("SSIM", r->ssim, f ? &f->ssim : NULL, 4);
        snprintf(label, sizeof label, "MS-SSIM (%d scales)", r->ms_ssim_scales);
        row(label, r->ms_ssim, f ? &f->ms_ssim : NULL, 4);
    }
    row("seconds", r->seconds_total, f ? &f->seconds_total : NULL, 1);
    if (r->failed)
        printf("  trained encoder: diverged: %s\n", r->failure);
    if (f && f->failed)
        printf("  fresh encoder: diverged: %s\n", f->failure);
}

/* Prints each stage's name once, when it starts. */
static void on_progress(void *ctx, const char *stage, double fraction)
{
    const char **last = ctx;
    (void)fraction;
    if (*last && strcmp(*last, stage) == 0)
        return;
    *last = stage;
    printf("  %s...\n", stage);
    fflush(stdout);
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(buf, 1, len, f);
    return (fclose(f) != 0 || n != len) ? -1 : 0;
}

/* PATH.png -> PATH-fresh.png (or PATH-fresh.png when PATH has no .png suffix). */
static char *fresh_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 16);
    if (!p)
        return NULL;
    size_t stem = n >= 4 && strcmp(path + n - 4, ".png") == 0 ? n - 4 : n;
    memcpy(p, path, stem);
    strcpy(p + stem, "-fresh.png");
    return p;
}

int cli_measure(int argc, char **argv)
{
    const char *ckpt = NULL, *dataset = "fashion-mnist", *grid = NULL;
    struct dim_eval_opts eo;
    dim_eval_opts_default(&eo);
    bool json = false, fresh = false;
    uint64_t threads = 0;
    struct {
        const char *name;
        int *v;
        uint64_t lo, hi;
    } ints[] = {
        {"probe_epochs", &eo.probe_epochs, 1, 10000}, {"ndm_steps", &eo.ndm_steps, 1, 1000000},
        {"mine_steps", &eo.mine_steps, 1, 1000000},   {"recon_epochs", &eo.recon_epochs, 1, 10000},
        {"grid_pairs", &eo.grid_pairs, 1, 1000}};
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, measure_with_value, false);
        if (r <= 0) {
            fprintf(stderr, "dimd measure: %s '%s'\n",
                    r == 0 ? "unexpected argument" : "flag needs a value",
                    argv[r == 0 ? i : i - 1]);
            return CLI_EXIT_USAGE;
        }
        bool done = false;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !done; k++)
            if (strcmp(name, ints[k].name) == 0) {
                uint64_t v;
                if (cli_parse_u64("measure", name, val, ints[k].lo, ints[k].hi, &v))
                    return CLI_EXIT_USAGE;
                *ints[k].v = (int)v;
                done = true;
            }
        if (done)
            continue;
        if (strcmp(name, "help") == 0) {
            measure_usage();
            return 0;
        } else if (strcmp(name, "checkpoint") == 0) {
            ckpt = val;
        } else if (strcmp(name, "dataset") == 0) {
            dataset = val;
        } else if (strcmp(name, "grid") == 0) {
            grid = val;
        } else if (strcmp(name, "json") == 0) {
            json = true;
        } else if (strcmp(name, "fresh") == 0) {
            fresh = true;
        } else if (strcmp(name, "measures") == 0) {
            struct dim_err err;
            if (dim_measure_parse(val, &eo.measures, &err) != 0) {
                fprintf(stderr, "dimd measure: --measures: %s\n", err.msg);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(name, "seed") == 0) {
            if (cli_parse_u64("measure", name, val, 0, (UINT64_C(1) << 53) - 1, &eo.seed))
                return CLI_EXIT_USAGE;
        } else if (strcmp(name, "threads") == 0) {
            if (cli_parse_u64("measure", name, val, 1, 256, &threads))
                return CLI_EXIT_USAGE;
        } else if (strcmp(name, "max_train") == 0 || strcmp(name, "max_test") == 0) {
            uint64_t v;
            if (cli_parse_u64("measure", name, val, 0, UINT64_C(1) << 32, &v))
                return CLI_EXIT_USAGE;
            *(strcmp(name, "max_train") == 0 ? &eo.max_train : &eo.max_test) = (size_t)v;
        } else {
            fprintf(stderr, "dimd measure: unknown flag --%s\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    if (!ckpt) {
        fprintf(stderr, "dimd measure: --checkpoint is required\n");
        return CLI_EXIT_USAGE;
    }
    if (grid && !(eo.measures & DIM_MEASURE_RECON)) {
        fprintf(stderr, "dimd measure: --grid needs the recon measure in --measures\n");
        return CLI_EXIT_USAGE;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = threads ? (int)threads : (cores > 0 ? (int)cores : 1);
    struct dim_err err;
    struct dim_model *m = NULL, *f = NULL;
    if (dim_checkpoint_load(ckpt, &m, NULL, false, &err) != 0) {
        fprintf(stderr, "dimd measure: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    struct dim_dataset train = {0}, test = {0};
    if (cli_load_dataset("measure", dataset, &train, &test) != 0) {
        dim_model_free(m);
        return CLI_EXIT_USAGE;
    }
    if ((eo.measures & (DIM_MEASURE_LINEAR | DIM_MEASURE_MLP | DIM_MEASURE_SVM)) &&
        train.n_classes < 2) {
        fprintf(stderr,
                "dimd measure: dataset %s has %d class; linear, mlp and svm need 2 or more\n",
                dataset, train.n_classes);
        dim_dataset_free(&train);
        dim_dataset_free(&test);
        dim_model_free(m);
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_FAIL;
    struct dim_eval_result res[2];
    memset(res, 0, sizeof res);
    struct threadpool *pool = cli_threads_use(nthreads);
    struct dim_preprocess pp = dim_model_preprocess(m);
    atomic_store(&measure_cancel, false);
    void (*old_handler)(int) = signal(SIGINT, on_sigint);
    const char *stage = NULL;
    eo.progress = on_progress;
    eo.progress_ctx = &stage;
    eo.cancel = &measure_cancel;
    char list[64];
    dim_measure_format(eo.measures, list, sizeof list);
    printf("dimd measure: %s encoder from %s on %s; measures %s; seed %llu\n",
           dim_preset_name(m->cfg.preset), ckpt, dataset, list, (unsigned long long)eo.seed);
    printf("trained encoder:\n");
    fflush(stdout);
    if (dim_evaluate(m, &train, &test, &pp, &eo, &res[0], &err) != 0) {
        fprintf(stderr, "dimd measure: %s\n", err.msg);
        goto out;
    }
    if (fresh) {
        if (dim_model_create(&f, &m->cfg, false, &err) != 0) {
            fprintf(stderr, "dimd measure: %s\n", err.msg);
            goto out;
        }
        printf("fresh encoder:\n");
        fflush(stdout);
        stage = NULL;
        if (dim_evaluate(f, &train, &test, &pp, &eo, &res[1], &err) != 0) {
            fprintf(stderr, "dimd measure: %s\n", err.msg);
            goto out;
        }
    }
    if (grid) {
        char *fp = fresh ? fresh_path(grid) : NULL;
        if (!res[0].grid_png || write_file(grid, res[0].grid_png, res[0].grid_png_size) != 0 ||
            (fresh && (!fp || !res[1].grid_png ||
                       write_file(fp, res[1].grid_png, res[1].grid_png_size) != 0))) {
            fprintf(stderr, "dimd measure: cannot write the grid image %s\n",
                    fp && res[0].grid_png ? fp : grid);
            free(fp);
            goto out;
        }
        free(fp);
    }
    printf("%zu training / %zu test images\n", res[0].n_train, res[0].n_test);
    print_table(&res[0], fresh ? &res[1] : NULL);
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "command", "measure",
                              "checkpoint", ckpt, "dataset", dataset, "measures", list, "seed",
                              (json_int_t)eo.seed, "n_train", (json_int_t)res[0].n_train, "n_test",
                              (json_int_t)res[0].n_test, "trained", evalspec_result_json(&res[0]));
        if (fresh)
            json_object_set_new(o, "fresh", evalspec_result_json(&res[1]));
        cli_print_json(o, 6);
    }
    status = 0;
out:
    signal(SIGINT, old_handler);
    cli_threads_release(pool);
    dim_eval_result_free(&res[0]);
    dim_eval_result_free(&res[1]);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
    dim_model_free(m);
    dim_model_free(f);
    return status;
}
