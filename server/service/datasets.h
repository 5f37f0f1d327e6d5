/* datasets.h - the datasets jobs may name: built-in names and the folders
 * directly under configured data roots.
 *
 * A dataset's name is "fashion-mnist" (built in, when its Debian package is
 * installed) or "ROOT/DIR": ROOT the base name of a configured root, DIR a
 * directory directly inside it. Names are looked up, never joined as paths:
 * "..", "/", symlinks leaving the root and anything not listed are refused,
 * so a job can never name a path outside the roots.
 * Depends on data/dataset, jansson.
 */
#ifndef DIMD_SERVICE_DATASETS_H
#define DIMD_SERVICE_DATASETS_H

#include <jansson.h>
#include <stddef.h>

#include "api/jobspec.h"
#include "base/error.h"

#define DATASETS_MAX_ROOTS 16

struct datasets {
    size_t n_roots;
    char roots[DATASETS_MAX_ROOTS][4096]; /* canonical absolute paths */
};

/* Parses a colon-separated list of directories (each must exist). */
int datasets_init(struct datasets *d, const char *roots_list, struct dim_err *err);

/* Resolves a dataset name to what dim_dataset_load takes (a built-in name or
 * an absolute directory). DIM_ENOENT for an unknown name, DIM_EINVAL for a name
 * that tries to leave the roots; err names the dataset either way. */
int datasets_resolve(const struct datasets *d, const char *name, char path[4096],
                     struct dim_err *err);

/* datasets_resolve without the path, in the form jobspec_parse asks for:
 * ctx is the struct datasets. */
int datasets_check(const void *ctx, const char *name, struct dim_err *err);

/* [{"name","kind":"builtin"|"folder","path"?}...] (a new reference). */
json_t *datasets_list(const struct datasets *d);

#endif
