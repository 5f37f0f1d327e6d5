/* dataset.c - loads labelled image datasets (IDX, CIFAR-10 binary, image folders)
 * into memory as 8-bit (n, c, h, w) pixels, and turns batches of them into model
 * inputs through dim_image_to_input.
 *
 * Every file is treated as untrusted: headers are checked against the limits and
 * against each other before pixel memory is sized from them, reads are checked
 * for truncation and trailing data, and each error names the file.
 * Depends on: zlib, image.h, libc (POSIX dirent/stat). No globals.
 */
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#define DS_PATH_MAX 4096

static const char *const fashion_mnist_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

static int join(char *out, const char *a, const char *b, struct dim_err *err)
{
    int n = snprintf(out, DS_PATH_MAX, "%s/%s", a, b);
    if (n < 0 || n >= DS_PATH_MAX)
        return dim_fail(err, DIM_EINVAL, "path %s/%s is too long", a, b);
    return 0;
}

/* 1 if path is a directory (want_dir) or a regular file (!want_dir). */
static int is_kind(const char *path, int want_dir)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static int exists_in(const char *dir, const char *name)
{
    char p[DS_PATH_MAX];
    return join(p, dir, name, NULL) == 0 && is_kind(p, 0);
}

static int check_limits(size_t n, size_t h, size_t w, const struct dim_dataset_limits *lim,
                        const char *what, struct dim_err *err)
{
    if (n == 0)
        return dim_fail(err, DIM_EFORMAT, "%s has no images", what);
    if (lim && lim->max_images && n > lim->max_images)
        return dim_fail(err, DIM_ELIMIT, "%s has %zu images, limit is %zu", what, n,
                        lim->max_images);
    if (lim && lim->max_image_pixels && h * w > lim->max_image_pixels)
        return dim_fail(err, DIM_ELIMIT, "%s has %zux%zu images, limit is %zu pixels", what, h, w,
                        lim->max_image_pixels);
    return 0;
}

/* Allocates ds->px for n images of (c, h, w) and ds->labels. */
static int alloc_images(struct dim_dataset *ds, size_t n, int c, int h, int w, const char *what,
                        struct dim_err *err)
{
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (per == 0 || n > SIZE_MAX / per)
        return dim_fail(err, DIM_ELIMIT, "%s: %zu images of %dx%dx%d do not fit in memory", what, n,
                        c, h, w);
    ds->px = malloc(n * per);
    ds->labels = malloc(n * sizeof *ds->labels);
    if (!ds->px || !ds->labels)
        return dim_fail(err, DIM_ENOMEM, "%s: no memory for %zu images of %dx%dx%d", what, n, c, h,
                        w);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    return 0;
}

static int set_class_names(struct dim_dataset *ds, const char *const *names, size_t n,
                           struct dim_err *err)
{
    ds->class_names = calloc(n, sizeof *ds->class_names);
    if (!ds->class_names)
        return dim_fail(err, DIM_ENOMEM, "no memory for %zu class names", n);
    for (size_t i = 0; i < n; i++) {
        ds->class_names[i] = strdup(names[i]);
        if (!ds->class_names[i])
            return dim_fail(err, DIM_ENOMEM, "no memory for class name %s", names[i]);
    }
    return 0;
}

/* ---- IDX ------------------------------------------------------------------ */

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

/* Finds stem or stem.gz in dir; path receives the one found (or the plain name). */
static int idx_find(const char *dir, const char *stem, char *path, struct dim_err *err)
{
    char gz[256];
    snprintf(gz, sizeof gz, "%s.gz", stem);
    int rc = join(path, dir, gz, err);
    if (rc < 0)
        return rc;
    if (is_kind(path, 0))
        return 0;
    rc = join(path, dir, stem, err);
    if (rc < 0)
        return rc;
    if (is_kind(path, 0))
        return 0;
    return dim_fail(err, DIM_ENOENT, "IDX file %s[.gz] not found", path);
}

static int gz_fail(gzFile f, const char *path, const char *doing, struct dim_err *err)
{
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    return dim_fail(err, zerr == Z_ERRNO ? DIM_EIO : DIM_EFORMAT, "%s: %s: %s", path, doing,
                    zerr == Z_ERRNO ? strerror(errno) : msg);
}

/* Reads exactly n bytes; a short read is a truncated file. */
static int gz_read_exact(gzFile f, const char *path, void *dst, size_t n, const char *what,
                         struct dim_err *err)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (uint8_t *)dst + got, (unsigned)want);
        if (r < 0)
            return gz_fail(f, path, "cannot read", err);
        if (r == 0)
            return dim_fail(err, DIM_EFORMAT, "%s is truncated: %s has %zu of %zu bytes", path,
                            what, got, n);
        got += (size_t)r;
    }
    return 0;
}

/* Reads a payload of exactly total bytes into dst, then insists the file ends
 * there (a longer file means the header and the data disagree). */
static int gz_read_payload(gzFile f, const char *path, size_t total, uint8_t *dst,
                           struct dim_err *err)
{
    int rc = gz_read_exact(f, path, dst, total, "the data", err);
    if (rc < 0)
        return rc;
    uint8_t extra;
    int r = gzread(f, &extra, 1);
    if (r < 0)
        return gz_fail(f, path, "cannot read", err);
    if (r > 0)
        return dim_fail(err, DIM_EFORMAT,
                        "%s is longer than its header says (%zu data bytes expected)", path, total);
    return 0;
}

static int idx_header(gzFile f, const char *path, uint32_t magic, uint32_t *dims, int ndims,
                      struct dim_err *err)
{
    uint8_t h[16];
    size_t len = 4 * (size_t)(ndims + 1);
    int rc = gz_read_exact(f, path, h, len, "the header", err);
    if (rc < 0)
        return rc;
    uint32_t v[4];
    for (int i = 0; i <= ndims; i++)
        v[i] = (uint32_t)h[4 * i] << 24 | (uint32_t)h[4 * i + 1] << 16 |
               (uint32_t)h[4 * i + 2] << 8 | h[4 * i + 3];
    if (v[0] != magic)
        return dim_fail(err, DIM_EFORMAT, "%s: bad magic 0x%08x, expected 0x%08x (IDX %s)", path,
                        v[0], magic, ndims == 3 ? "unsigned-byte images" : "unsigned-byte labels");
    for (int i = 0; i < ndims; i++)
        dims[i] = v[i + 1];
    return 0;
}

static int load_idx(const char *dir, enum dim_split split, const struct dim_dataset_limits *lim,
                    int builtin, struct dim_dataset *ds, struct dim_err *err)
{
    const char *pre = split == DIM_SPLIT_TRAIN ? "train" : "t10k";
    char img_stem[64], lab_stem[64], img_path[DS_PATH_MAX], lab_path[DS_PATH_MAX];
    snprintf(img_stem, sizeof img_stem, "%s-images-idx3-ubyte", pre);
    snprintf(lab_stem, sizeof lab_stem, "%s-labels-idx1-ubyte", pre);
    int rc = idx_find(dir, img_stem, img_path, err);
    if (rc < 0)
        return rc;
    rc = idx_find(dir, lab_stem, lab_path, err);
    if (rc < 0)
        return rc;

    gzFile fi = gzopen(img_path, "rb");
    gzFile fl = gzopen(lab_path, "rb");
    uint8_t *lab = NULL;
    if (!fi || !fl) {
        const char *p = fi ? lab_path : img_path;
        rc = dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "cannot open %s: %s", p,
                      strerror(errno));
        goto done;
    }
    gzbuffer(fi, 1u << 18);

    uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
    if ((rc = idx_header(fi, img_path, IDX_MAGIC_IMAGES, idims, 3, err)) < 0 ||
        (rc = idx_header(fl, lab_path, IDX_MAGIC_LABELS, ldims, 1, err)) < 0)
        goto done;
    if (idims[0] != ldims[0]) {
        rc = dim_fail(err, DIM_EFORMAT, "%s has %u images but %s has %u labels", img_path, idims[0],
                      lab_path, ldims[0]);
        goto done;
    }
    if (idims[1] == 0 || idims[2] == 0 || idims[1] > 65535 || idims[2] > 65535) {
        rc = dim_fail(err, DIM_EFORMAT, "%s: image size %ux%u is invalid", img_path, idims[1],
                      idims[2]);
        goto done;
    }
    if ((rc = check_limits(idims[0], idims[1], idims[2], lim, img_path, err)) < 0)
        goto done;

    size_t n = idims[0];
    lab = malloc(n);
    if (!lab) {
        rc = dim_fail(err, DIM_ENOMEM, "%s: no memory for %zu labels", lab_path, n);
        goto done;
    }
    /* Labels first: they are small, so a lying header fails here cheaply. */
    if ((rc = gz_read_payload(fl, lab_path, n, lab, err)) < 0)
        goto done;
    if ((rc = alloc_images(ds, n, 1, (int)idims[1], (int)idims[2], img_path, err)) < 0)
        goto done;
    if ((rc = gz_read_payload(fi, img_path, n * idims[1] * idims[2], ds->px, err)) < 0)
        goto done;

    unsigned max = 0;
    for (size_t i = 0; i < n; i++) {
        ds->labels[i] = lab[i];
        if (lab[i] > max)
            max = lab[i];
    }
    ds->n_classes = (int)max + 1;
    if (builtin && ds->n_classes <= 10) {
        /* The built-in Fashion-MNIST always has its 10 named classes. */
        ds->n_classes = 10;
        rc = set_class_names(ds, fashion_mnist_names, 10, err);
    }
done:
    free(lab);
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    return rc;
}

/* ---- CIFAR-10 binary --------------------------------------------------------- */

#define CIFAR_RECORD 3073u
#define CIFAR_PIXELS 3072u

/* Reads batches.meta.txt (one class name a line) when present. Returns the
 * number of names (0 when absent) or a negative status. */
static int cifar_meta(const char *dir, char ***names_out, struct dim_err *err)
{
    char path[DS_PATH_MAX];
    int rc = join(path, dir, "batches.meta.txt", err);
    if (rc < 0)
        return rc;
    *names_out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT
                   ? 0
                   : dim_fail(err, DIM_EIO, "cannot open %s: %s", path, strerror(errno));
    char **names = NULL;
    int n = 0;
    char line[512];
    rc = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (n >= 65535) {
            rc = dim_fail(err, DIM_ELIMIT, "%s lists more than 65535 classes", path);
            break;
        }
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *names);
        char *s = strdup(line);
        if (nn)
            names = nn;
        if (!nn || !s) {
            free(s);
            rc = dim_fail(err, DIM_ENOMEM, "no memory for the class names of %s", path);
            break;
        }
        names[n++] = s;
    }
    if (rc == 0 && ferror(f))
        rc = dim_fail(err, DIM_EIO, "cannot read %s", path);
    fclose(f);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    *names_out = names;
    return n;
}

static int load_cifar(const char *dir, enum dim_split split, const struct dim_dataset_limits *lim,
                      struct dim_dataset *ds, struct dim_err *err)
{
    char paths[5][DS_PATH_MAX];
    size_t counts[5];
    int nfiles = split == DIM_SPLIT_TRAIN ? 5 : 1;
    size_t n = 0;
    int rc;
    for (int i = 0; i < nfiles; i++) {
        char name[32];
        if (split == DIM_SPLIT_TRAIN)
            snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        if ((rc = join(paths[i], dir, name, err)) < 0)
            return rc;
        struct stat st;
        if (stat(paths[i], &st) != 0)
            return dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "CIFAR-10 file %s: %s",
                            paths[i], strerror(errno));
        if (!S_ISREG(st.st_mode))
            return dim_fail(err, DIM_EFORMAT, "CIFAR-10 file %s is not a regular file", paths[i]);
        if ((uint64_t)st.st_size % CIFAR_RECORD != 0)
            return dim_fail(err, DIM_EFORMAT,
                            "%s: size %lld bytes is not a multiple of the %u-byte CIFAR-10 record",
                            paths[i], (long long)st.st_size, CIFAR_RECORD);
        counts[i] = (size_t)st.st_size / CIFAR_RECORD;
        n += counts[i];
    }
    if ((rc = check_limits(n, 32, 32, lim, dir, err)) < 0)
        return rc;

    char **names = NULL;
    int n_names = cifar_meta(dir, &names, err);
    if (n_names < 0)
        return n_names;
    ds->class_names = names;
    ds->n_classes = n_names > 0 ? n_names : 10;

    if ((rc = alloc_images(ds, n, 3, 32, 32, dir, err)) < 0)
        return rc;
    size_t k = 0;
    for (int i = 0; i < nfiles; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            return dim_fail(err, DIM_EIO, "cannot open %s: %s", paths[i], strerror(errno));
        for (size_t r = 0; r < counts[i]; r++, k++) {
            uint8_t label;
            if (fread(&label, 1, 1, f) != 1 ||
                fread(ds->px + k * CIFAR_PIXELS, 1, CIFAR_PIXELS, f) != CIFAR_PIXELS) {
                fclose(f);
                return dim_fail(err, DIM_EFORMAT, "%s is truncated at record %zu", paths[i], r);
            }
            if (label >= ds->n_classes) {
                fclose(f);
                return dim_fail(err, DIM_EFORMAT,
                                "%s: record %zu has label %u but there are %d classes", paths[i], r,
                                label, ds->n_classes);
            }
            ds->labels[k] = label;
        }
        fclose(f);
    }
    return 0;
}

/* ---- image folders ------------------------------------------------------------ */

struct names {
    char **v;
    size_t n;
};

static void names_free(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the non-hidden subdirectories (want_dirs) or regular files of dir. */
static int list_dir(const char *dir, int want_dirs, struct names *out, struct dim_err *err)
{
    out->v = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "cannot open directory %s: %s",
                        dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    char path[DS_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if ((rc = join(path, dir, e->d_name, err)) < 0)
            break;
        if (!is_kind(path, want_dirs))
            continue;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nv = realloc(out->v, ncap * sizeof *nv);
            if (!nv) {
                rc = dim_fail(err, DIM_ENOMEM, "no memory to list %s", dir);
                break;
            }
            out->v = nv;
            cap = ncap;
        }
        out->v[out->n] = strdup(e->d_name);
        if (!out->v[out->n]) {
            rc = dim_fail(err, DIM_ENOMEM, "no memory to list %s", dir);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (rc < 0) {
        names_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* An image file of the split: its class and its path. */
struct entry {
    uint16_t label;
    char *path;
};

/* In a folder without train/ and test/, file i (0-based, sorted) of each class is
 * a test image when i % 6 == 5, i.e. every 6th file. */
static int in_split(size_t i, int explicit_splits, enum dim_split split)
{
    if (explicit_splits)
        return 1;
    return (i % 6 == 5) == (split == DIM_SPLIT_TEST);
}

static int load_folder(const char *dir, enum dim_split split, const struct dim_dataset_limits *lim,
                       struct dim_dataset *ds, struct dim_err *err)
{
    char train_root[DS_PATH_MAX], split_root[DS_PATH_MAX], path[DS_PATH_MAX];
    int rc;
    if ((rc = join(train_root, dir, "train", err)) < 0 ||
        (rc = join(split_root, dir, "test", err)) < 0)
        return rc;
    int explicit_splits = is_kind(train_root, 1) && is_kind(split_root, 1);
    if (!explicit_splits)
        snprintf(train_root, sizeof train_root, "%s", dir);
    if (split == DIM_SPLIT_TRAIN || !explicit_splits)
        snprintf(split_root, sizeof split_root, "%s", train_root);

    struct names classes = {0}, files = {0}, other = {0};
    struct entry *ents = NULL;
    size_t n = 0, cap = 0;
    struct dim_image ref = {0}, img = {0};

    if ((rc = list_dir(train_root, 1, &classes, err)) < 0)
        goto done;
    if (classes.n == 0) {
        rc = dim_fail(err, DIM_EFORMAT,
                      "%s has no class subfolders (and is not an IDX or CIFAR-10 directory)",
                      train_root);
        goto done;
    }
    if (classes.n > 65535) {
        rc = dim_fail(err, DIM_ELIMIT, "%s has %zu class subfolders, at most 65535 allowed",
                      train_root, classes.n);
        goto done;
    }
    if (explicit_splits && split == DIM_SPLIT_TEST) {
        if ((rc = list_dir(split_root, 1, &other, err)) < 0)
            goto done;
        for (size_t i = 0; i < other.n; i++) {
            if (!bsearch(&other.v[i], classes.v, classes.n, sizeof *classes.v, cmp_str)) {
                rc = dim_fail(err, DIM_EFORMAT, "%s/%s: class '%s' is not in %s", split_root,
                              other.v[i], other.v[i], train_root);
                goto done;
            }
        }
    }

    /* The reference shape comes from the first training image, so both splits agree. */
    const char *ref_path = NULL;
    char ref_buf[DS_PATH_MAX];
    for (size_t k = 0; k < classes.n && !ref_path; k++) {
        if ((rc = join(path, train_root, classes.v[k], err)) < 0)
            goto done;
        if ((rc = list_dir(path, 0, &files, err)) < 0)
            goto done;
        if (files.n > 0) {
            if ((rc = join(ref_buf, path, files.v[0], err)) < 0)
                goto done;
            ref_path = ref_buf;
        }
        names_free(&files);
    }
    if (!ref_path) {
        rc = dim_fail(err, DIM_EFORMAT, "%s: the class subfolders contain no files", train_root);
        goto done;
    }

    for (size_t k = 0; k < classes.n; k++) {
        if ((rc = join(path, split_root, classes.v[k], err)) < 0)
            goto done;
        if (!is_kind(path, 1))
            continue; /* a class absent from test/ */
        if ((rc = list_dir(path, 0, &files, err)) < 0)
            goto done;
        for (size_t i = 0; i < files.n; i++) {
            if (!in_split(i, explicit_splits, split))
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct entry *ne = realloc(ents, ncap * sizeof *ne);
                if (!ne) {
                    rc = dim_fail(err, DIM_ENOMEM, "no memory to list %s", path);
                    goto done;
                }
                ents = ne;
                cap = ncap;
            }
            char full[DS_PATH_MAX];
            if ((rc = join(full, path, files.v[i], err)) < 0)
                goto done;
            ents[n].label = (uint16_t)k;
            ents[n].path = strdup(full);
            if (!ents[n].path) {
                rc = dim_fail(err, DIM_ENOMEM, "no memory to list %s", path);
                goto done;
            }
            n++;
            if (lim && lim->max_images && n > lim->max_images) {
                rc = dim_fail(err, DIM_ELIMIT, "%s has more than %zu images (the limit)",
                              split_root, lim->max_images);
                goto done;
            }
        }
        names_free(&files);
    }
    if (n == 0) {
        rc = dim_fail(err, DIM_EFORMAT, "%s: the %s split has no images", dir,
                      split == DIM_SPLIT_TRAIN ? "train" : "test");
        goto done;
    }

    size_t max_px = lim ? lim->max_image_pixels : 0;
    if ((rc = dim_image_load(ref_path, max_px, &ref, err)) < 0)
        goto done;
    if ((rc = alloc_images(ds, n, ref.c, ref.h, ref.w, dir, err)) < 0)
        goto done;
    size_t per = (size_t)ref.c * (size_t)ref.h * (size_t)ref.w;
    for (size_t i = 0; i < n; i++) {
        if ((rc = dim_image_load(ents[i].path, max_px, &img, err)) < 0)
            goto done;
        uint8_t *dst = ds->px + i * per;
        if (img.c == ref.c && img.h == ref.h && img.w == ref.w)
            memcpy(dst, img.px, per);
        else
            dim_image_resample(&img, ref.c, ref.h, ref.w, dst);
        ds->labels[i] = ents[i].label;
        dim_image_free(&img);
    }
    ds->n_classes = (int)classes.n;
    rc = set_class_names(ds, (const char *const *)classes.v, classes.n, err);
done:
    for (size_t i = 0; i < n; i++)
        free(ents[i].path);
    free(ents);
    names_free(&classes);
    names_free(&files);
    names_free(&other);
    dim_image_free(&ref);
    dim_image_free(&img);
    return rc;
}

/* ---- public API ------------------------------------------------------------------ */

int dim_dataset_load(const char *spec, enum dim_split split,
                     const struct dim_dataset_limits *limits, struct dim_dataset *ds,
                     struct dim_err *err)
{
    if (!ds)
        return dim_fail(err, DIM_EINVAL, "dim_dataset_load: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!spec || !*spec)
        return dim_fail(err, DIM_EINVAL, "dataset spec is empty");
    if (split != DIM_SPLIT_TRAIN && split != DIM_SPLIT_TEST)
        return dim_fail(err, DIM_EINVAL, "dataset split %d is neither train (0) nor test (1)",
                        (int)split);
    int builtin = strcmp(spec, "fashion-mnist") == 0;
    const char *dir = builtin ? DIM_FASHION_MNIST_DIR : spec;
    struct stat st;
    if (stat(dir, &st) != 0)
        return dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "dataset directory %s: %s",
                        dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dim_fail(err, DIM_EINVAL, "dataset %s is not a directory", dir);

    int rc;
    if (exists_in(dir, "train-images-idx3-ubyte.gz") || exists_in(dir, "train-images-idx3-ubyte") ||
        exists_in(dir, "t10k-images-idx3-ubyte.gz") || exists_in(dir, "t10k-images-idx3-ubyte"))
        rc = load_idx(dir, split, limits, builtin, ds, err);
    else if (exists_in(dir, "data_batch_1.bin") || exists_in(dir, "test_batch.bin"))
        rc = load_cifar(dir, split, limits, ds, err);
    else
        rc = load_folder(dir, split, limits, ds, err);
    if (rc < 0)
        dim_dataset_free(ds);
    return rc;
}

void dim_dataset_free(struct dim_dataset *ds)
{
    if (!ds)
        return;
    if (ds->class_names) {
        for (int i = 0; i < ds->n_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    free(ds->px);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void dim_dataset_batch(const struct dim_dataset *ds, const uint32_t *idx, size_t B,
                       const struct dim_preprocess *pp, struct dim_rng *rng, float *out,
                       uint16_t *labels)
{
    size_t per_in = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    size_t per_out = (size_t)pp->c * (size_t)pp->h * (size_t)pp->w;
    for (size_t b = 0; b < B; b++) {
        struct dim_image view = {ds->c, ds->h, ds->w, ds->px + (size_t)idx[b] * per_in};
        dim_image_to_input(&view, pp, rng, out + b * per_out);
        if (labels)
            labels[b] = ds->labels[idx[b]];
    }
}
