/* fuzz_idx.c - core/data/dataset's IDX reader (MNIST layout, plain or
 * gzipped), through dim_dataset_load on a directory it writes. The input is
 * the 2-byte little-endian length L of the images file, then L bytes of
 * train-images-idx3-ubyte, then the rest as train-labels-idx1-ubyte (either
 * may be gzip data: zlib reads both kinds). Limits are the service's
 * ({0, 64 Mi pixels}: no image count limit).
 * Invariants: success gives n >= 1 images of (1, h, w) with every label below
 * n_classes; failure leaves the dataset empty, with a message.
 */
#include <stdint.h>

#include "data/dataset.h"
#include "fuzz.h"

static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_dir_make(names);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t li = (size_t)data[0] | (size_t)data[1] << 8;
    if (li > size - 2)
        li = size - 2;
    fuzz_dir_write(names[0], data + 2, li);
    fuzz_dir_write(names[1], data + 2 + li, size - 2 - li);
    const struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_dataset ds;
    struct dim_err err;
    int rc = dim_dataset_load(fuzz_dir_path, DIM_SPLIT_TRAIN, &lim, &ds, &err);
    if (rc == 0) {
        FUZZ_CHECK(ds.n >= 1 && ds.c == 1 && ds.h >= 1 && ds.w >= 1 && ds.px && ds.labels,
                   "%zu images of %dx%dx%d", ds.n, ds.c, ds.h, ds.w);
        for (size_t i = 0; i < ds.n; i++)
            FUZZ_CHECK(ds.labels[i] < ds.n_classes, "label %u of %d classes", ds.labels[i],
                       ds.n_classes);
        dim_dataset_free(&ds);
    } else {
        FUZZ_CHECK(ds.n == 0 && ds.px == NULL && ds.labels == NULL, "a failed load keeps data");
        FUZZ_CHECK(err.msg[0], "no message for status %d", rc);
    }
    return 0;
}
