/* datasets.c - dataset names jobs may use (service/datasets.h). */
#include "service/datasets.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"

#define BUILTIN_FASHION "fashion-mnist"

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int datasets_init(struct datasets *d, const char *roots_list, struct dim_err *err)
{
    memset(d, 0, sizeof *d);
    if (!roots_list)
        return 0;
    const char *p = roots_list;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            char dir[4096];
            if (len >= sizeof dir)
                return dim_fail(err, DIM_EINVAL, "data root '%.64s...' is too long", p);
            memcpy(dir, p, len);
            dir[len] = '\0';
            if (d->n_roots == DATASETS_MAX_ROOTS)
                return dim_fail(err, DIM_ELIMIT, "more than %d data roots", DATASETS_MAX_ROOTS);
            char *real = realpath(dir, NULL);
            if (!real || !is_dir(real)) {
                free(real);
                return dim_fail(err, DIM_ENOENT, "data root %s is not a directory", dir);
            }
            if (strlen(real) >= sizeof d->roots[0]) {
                free(real);
                return dim_fail(err, DIM_EINVAL, "data root %s is too long", dir);
            }
            /* two roots with one base name would make names ambiguous */
            const char *base = strrchr(real, '/') + 1;
            for (size_t i = 0; i < d->n_roots; i++) {
                if (strcmp(strrchr(d->roots[i], '/') + 1, base) == 0) {
                    dim_fail(err, DIM_EINVAL, "data roots %s and %s share the base name '%s'",
                             d->roots[i], dir, base);
                    free(real);
                    return DIM_EINVAL;
                }
            }
            strcpy(d->roots[d->n_roots++], real);
            free(real);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static bool builtin_available(void)
{
    return is_dir(DIM_FASHION_MNIST_DIR);
}

/* Whether name is a plain directory entry name: no '/', not "." or "..", not hidden. */
static bool plain_entry(const char *name, size_t len)
{
    if (len == 0 || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '/' || name[i] == '\\' || (unsigned char)name[i] < 0x20)
            return false;
    return true;
}

int datasets_check(const void *ctx, const char *name, struct dim_err *err)
{
    char path[4096];
    return datasets_resolve(ctx, name, path, err);
}

int datasets_resolve(const struct datasets *d, const char *name, char path[4096],
                     struct dim_err *err)
{
    if (strcmp(name, BUILTIN_FASHION) == 0) {
        if (!builtin_available())
            return dim_fail(err, DIM_ENOENT,
                            "dataset 'fashion-mnist' is not installed (Debian package "
                            "dataset-fashion-mnist)");
        strcpy(path, BUILTIN_FASHION);
        return 0;
    }
    const char *slash = strchr(name, '/');
    if (name[0] == '/' || strstr(name, "..") || (slash && strchr(slash + 1, '/')))
        return dim_fail(err, DIM_EINVAL,
                        "dataset '%.200s' is not a name from GET /v1/datasets: paths outside "
                        "the data roots are refused",
                        name);
    if (!slash)
        return dim_fail(err, DIM_ENOENT, "unknown dataset '%.200s' (see GET /v1/datasets)", name);
    size_t root_len = (size_t)(slash - name);
    const char *sub = slash + 1;
    if (!plain_entry(name, root_len) || !plain_entry(sub, strlen(sub)))
        return dim_fail(err, DIM_EINVAL, "dataset '%.200s' is not a valid dataset name", name);
    for (size_t i = 0; i < d->n_roots; i++) {
        const char *base = strrchr(d->roots[i], '/') + 1;
        if (strlen(base) != root_len || strncmp(base, name, root_len) != 0)
            continue;
        char joined[8192];
        snprintf(joined, sizeof joined, "%s/%s", d->roots[i], sub);
        char *real = realpath(joined, NULL);
        size_t rl = strlen(d->roots[i]);
        /* a symlink may not lead out of its root */
        bool inside = real && strncmp(real, d->roots[i], rl) == 0 && real[rl] == '/' &&
                      is_dir(real) && strlen(real) < 4096;
        if (inside)
            strcpy(path, real);
        free(real);
        if (!inside)
            return dim_fail(err, real ? DIM_EINVAL : DIM_ENOENT,
                            "dataset '%.200s' is not a folder inside data root %s", name,
                            d->roots[i]);
        return 0;
    }
    return dim_fail(err, DIM_ENOENT, "unknown dataset '%.200s' (see GET /v1/datasets)", name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *datasets_list(const struct datasets *d)
{
    json_t *arr = json_array();
    if (builtin_available())
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", BUILTIN_FASHION, "kind",
                                             "builtin"));
    for (size_t i = 0; i < d->n_roots; i++) {
        DIR *dir = opendir(d->roots[i]);
        if (!dir)
            continue;
        const char *base = strrchr(d->roots[i], '/') + 1;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!plain_entry(e->d_name, strlen(e->d_name)))
                continue;
            char full[8192];
            snprintf(full, sizeof full, "%s/%s", d->roots[i], e->d_name);
            /* list only what datasets_resolve accepts: no symlink out of the root */
            char *real = realpath(full, NULL);
            size_t rl = strlen(d->roots[i]);
            bool inside = real && strncmp(real, d->roots[i], rl) == 0 && real[rl] == '/' &&
                          is_dir(real);
            free(real);
            if (!inside)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown)
                    break;
                names = grown;
            }
            names[n] = strdup(e->d_name);
            if (names[n])
                n++;
        }
        closedir(dir);
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t k = 0; k < n; k++) {
            char full[DATASET_NAME_MAX * 2];
            snprintf(full, sizeof full, "%s/%s", base, names[k]);
            json_array_append_new(arr, json_pack("{s:s, s:s}", "name", full, "kind", "folder"));
            free(names[k]);
        }
        free(names);
    }
    return arr;
}
