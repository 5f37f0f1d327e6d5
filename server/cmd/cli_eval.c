/* cli_eval.c - `dimd eval`: probe accuracies of a saved encoder on a dataset, of
 * the raw pixels (unless --no_pixels) and, with --fresh, of a freshly initialised
 * encoder of the same architecture under the same protocol (what `dimd train`
 * reports at its end). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dim/checkpoint.h"
#include "cmd/cli.h"

static const char *const eval_with_value[] = {"checkpoint", "dataset",      "probe",
                                              "threads",    "probe_epochs", NULL};

int cli_eval(int argc, char **argv)
{
    const char *ckpt = NULL, *dataset = "fashion-mnist";
    struct dim_probe_opts po;
    dim_probe_opts_default(&po);
    bool json = false, fresh = false, pixels = true;
    uint64_t threads = 0, epochs = (uint64_t)po.epochs;
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, eval_with_value, false);
        if (r <= 0) {
            fprintf(stderr, "dimd eval: %s '%s'\n",
                    r == 0 ? "unexpected argument" : "flag needs a value",
                    argv[r == 0 ? i : i - 1]);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0) {
            printf("usage: dimd eval --checkpoint PATH [--dataset NAME|DIR] [--probe linear|mlp] "
                   "[--probe_epochs N] [--fresh] [--no_pixels] [--threads N] [--json]\n"
                   "  --probe linear   logistic regression solved to convergence, L2 weight "
                   "chosen on a validation split (default)\n"
                   "  --probe mlp      the paper's MLP probe, trained for --probe_epochs "
                   "epochs (default %d)\n"
                   "  --fresh          also probe a freshly initialised encoder of the same "
                   "architecture\n"
                   "  --no_pixels      leave out the raw-pixel row (it does not depend on the "
                   "checkpoint)\n",
                   po.epochs);
            return 0;
        } else if (strcmp(name, "checkpoint") == 0) {
            ckpt = val;
        } else if (strcmp(name, "dataset") == 0) {
            dataset = val;
        } else if (strcmp(name, "json") == 0) {
            json = true;
        } else if (strcmp(name, "fresh") == 0) {
            fresh = true;
        } else if (strcmp(name, "no_pixels") == 0) {
            pixels = false;
        } else if (strcmp(name, "probe") == 0) {
            if (strcmp(val, "linear") == 0)
                po.kind = DIM_PROBE_LINEAR;
            else if (strcmp(val, "mlp") == 0)
                po.kind = DIM_PROBE_MLP;
            else {
                fprintf(stderr, "dimd eval: --probe '%s' is not one of linear, mlp\n", val);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(name, "probe_epochs") == 0) {
            if (cli_parse_u64("eval", name, val, 1, 10000, &epochs))
                return CLI_EXIT_USAGE;
        } else if (strcmp(name, "threads") == 0) {
            if (cli_parse_u64("eval", name, val, 1, 256, &threads))
                return CLI_EXIT_USAGE;
        } else {
            fprintf(stderr, "dimd eval: unknown flag --%s\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    if (!ckpt) {
        fprintf(stderr, "dimd eval: --checkpoint is required\n");
        return CLI_EXIT_USAGE;
    }
    po.epochs = (int)epochs;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = threads ? (int)threads : (cores > 0 ? (int)cores : 1);
    struct dim_err err;
    struct dim_model *m = NULL;
    if (dim_checkpoint_load(ckpt, &m, NULL, false, &err) != 0) {
        fprintf(stderr, "dimd eval: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    struct dim_dataset train = {0}, test = {0};
    if (cli_load_dataset("eval", dataset, &train, &test) != 0) {
        dim_model_free(m);
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_FAIL;
    struct threadpool *pool = cli_threads_use(nthreads);
    struct cli_probe_table t;
    if (cli_probe_compare(m, fresh, pixels, &train, &test, &po, &t) != 0)
        goto out;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:o}", "command", "eval", "dataset", dataset, "probe",
                              cli_probe_json(&t, &po));
        cli_print_json(o, 6);
    } else {
        printf("dataset %s\n", dataset);
        cli_probe_print(&t, &po);
    }
    status = 0;
out:
    cli_threads_release(pool);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
    dim_model_free(m);
    return status;
}
