/* fuzz_cifar.c - core/data/dataset's CIFAR-10 binary reader, through
 * dim_dataset_load on a directory it writes. The input is the 2-byte
 * little-endian length L of batches.meta.txt (0xffff: no such file), then L
 * bytes of it, then the rest as test_batch.bin (the test split). Limits are
 * the service's ({0, 64 Mi pixels}).
 * Invariants: success gives n >= 1 images of (3, 32, 32) with every label
 * below n_classes and class names when the meta file named some; failure
 * leaves the dataset empty, with a message.
 */
#include <stdint.h>

#include "data/dataset.h"
#include "fuzz.h"

static const char *const names[] = {"batches.meta.txt", "test_batch.bin", NULL};

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
    size_t lm = (size_t)data[0] | (size_t)data[1] << 8;
    size_t off = 2;
    if (lm == 0xffff) {
        fuzz_dir_remove(names[0]);
    } else {
        if (lm > size - 2)
            lm = size - 2;
        fuzz_dir_write(names[0], data + 2, lm);
        off += lm;
    }
    fuzz_dir_write(names[1], data + off, size - off);
    const struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_dataset ds;
    struct dim_err err;
    int rc = dim_dataset_load(fuzz_dir_path, DIM_SPLIT_TEST, &lim, &ds, &err);
    if (rc == 0) {
        FUZZ_CHECK(ds.n >= 1 && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.px && ds.labels,
                   "%zu images of %dx%dx%d", ds.n, ds.c, ds.h, ds.w);
        for (size_t i = 0; i < ds.n; i++)
            FUZZ_CHECK(ds.labels[i] < ds.n_classes, "label %u of %d classes", ds.labels[i],
                       ds.n_classes);
        if (ds.class_names)
            for (int k = 0; k < ds.n_classes; k++)
                FUZZ_CHECK(ds.class_names[k] && ds.class_names[k][0], "class %d has no name", k);
        dim_dataset_free(&ds);
    } else {
        FUZZ_CHECK(ds.n == 0 && ds.px == NULL && ds.labels == NULL, "a failed load keeps data");
        FUZZ_CHECK(err.msg[0], "no message for status %d", rc);
    }
    return 0;
}
