/* cli.h - the command-line front of the dimd binary: dimd serve | routes | train | encode | eval
 * | measure | backup | check | sweep.
 *
 * Each command parses its flags, prints a one-line error naming the problem and
 * returns exit status 2 on bad input; 1 on a runtime failure; 0 on success.
 * Shared pieces (flag parsing, dataset loading, probe reports) live in cli_common.c.
 */
#ifndef DIMD_CMD_CLI_H
#define DIMD_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "data/dataset.h"
#include "dim/model.h"
#include "eval/probe.h"

#define CLI_EXIT_USAGE 2
#define CLI_EXIT_FAIL 1

int cli_train(int argc, char **argv);
int cli_encode(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_measure(int argc, char **argv); /* cmd/cli_measure.c */
int cli_serve(int argc, char **argv);  /* cmd/serve.c */
int cli_routes(int argc, char **argv); /* cmd/serve.c */
int cli_backup(int argc, char **argv); /* cmd/cli_backup.c */
int cli_check(int argc, char **argv);  /* cmd/cli_backup.c */
int cli_sweep(int argc, char **argv);  /* cmd/cli_sweep.c */
int cli_rank(int argc, char **argv);   /* cmd/cli_rank.c: internal, started by the daemon */

/* One "--name value" or "--name=value" flag from argv, at index *i. A flag takes
 * the next argument as its value when its name is in with_value (NULL-terminated)
 * or, with hparams, is a hyperparameter (dim/hparams.h); any other is a bare flag.
 * Returns 1 and sets *name and *value (NULL for a bare flag), 0 when argv[*i] is
 * not a flag (a positional), -1 when a flag's value is missing. */
int cli_next_flag(int argc, char **argv, int *i, const char **name, const char **value,
                  const char *const *with_value, bool hparams);

/* Parses unsigned / double flag values; print "dimd CMD: --NAME ..." and return -1 on error. */
int cli_parse_u64(const char *cmd, const char *name, const char *v, uint64_t lo, uint64_t hi,
                  uint64_t *out);
int cli_parse_double(const char *cmd, const char *name, const char *v, double lo, double hi,
                     double *out);

/* Loads both splits of a dataset; prints the error and returns non-zero on failure. */
int cli_load_dataset(const char *cmd, const char *spec, struct dim_dataset *train,
                     struct dim_dataset *test);

/* The comparison `dimd train` and `dimd eval` print: a probe on each tap of the
 * trained encoder, of a freshly initialised one of the same architecture (when
 * asked) and on the raw pixels, under one protocol. */
struct cli_probe_table {
    struct dim_linclass_result trained[DIM_N_PROBE_TAPS];
    struct dim_linclass_result fresh[DIM_N_PROBE_TAPS];
    struct dim_linclass_result pixels;
    bool has_fresh, has_pixels;
    double seconds;
};

/* Fills t (dim_probe_model on m, on the fresh encoder when fresh, dim_probe_pixels
 * when pixels); prints the error and returns non-zero on failure. */
int cli_probe_compare(const struct dim_model *m, bool fresh, bool pixels,
                      const struct dim_dataset *train,
                      const struct dim_dataset *test, const struct dim_probe_opts *po,
                      struct cli_probe_table *t);
/* Prints t as a table, one row per encoder and one for the pixels. */
void cli_probe_print(const struct cli_probe_table *t, const struct dim_probe_opts *po);
/* {"kind", "epochs" (mlp), "seconds", "trained": {conv, fc, y}, "fresh": {...},
 * "pixels": a, "fit": {...}} (the linear probe's solves under "fit"; fresh and
 * pixels when probed). */
json_t *cli_probe_json(const struct cli_probe_table *t, const struct dim_probe_opts *po);


struct threadpool;
/* Gives this thread `threads` cores' worth of compute: a pool of threads - 1
 * workers plus the caller runs core's split matrix products and elementwise
 * loops, with BLAS itself on one thread. If the pool cannot start, BLAS gets the
 * threads instead. Returns the pool (NULL in that case) for cli_threads_release. */
struct threadpool *cli_threads_use(int threads);
void cli_threads_release(struct threadpool *pool);

/* Prints o as one compact JSON line on stdout with `digits` significant digits
 * per real, and releases o (--json output of the commands). */
void cli_print_json(json_t *o, int digits);

#endif
