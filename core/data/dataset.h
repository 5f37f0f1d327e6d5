/* dataset.h - labelled image datasets held in memory as 8-bit images.
 *
 * Sources, selected by dim_dataset_load's spec:
 *   "fashion-mnist"   the Debian package dataset-fashion-mnist
 *                     (/usr/share/datasets/fashion-mnist, gzipped IDX)
 *   a directory with train-images-idx3-ubyte[.gz] etc.   IDX (MNIST layout), gz or not
 *   a directory with data_batch_1.bin .. and test_batch.bin   CIFAR-10 binary
 *   any other directory: an image folder, one subfolder per class (PNG or JPEG);
 *                     if it has train/ and test/ subfolders those are the splits,
 *                     otherwise every 6th file of each class (by sorted name) is test.
 * All images of one dataset share c, h, w (an image folder's images are
 * converted to the first image's channel count and resized to its size).
 * Depends on: zlib, image.h, libc. Not thread-safe while loading; read-only after.
 */
#ifndef DIM_DATA_DATASET_H
#define DIM_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "data/image.h"

enum dim_split { DIM_SPLIT_TRAIN = 0, DIM_SPLIT_TEST = 1 };

struct dim_dataset_limits {
    size_t max_images;       /* refuse datasets larger than this (0: no limit) */
    size_t max_image_pixels; /* per decoded image, against decompression bombs */
};

struct dim_dataset {
    size_t n;           /* number of images */
    int c, h, w;        /* every image's channels and size */
    int n_classes;      /* labels are in [0, n_classes) */
    uint8_t *px;        /* (n, c, h, w) */
    uint16_t *labels;   /* (n) */
    char **class_names; /* n_classes strings, may be NULL for IDX/CIFAR */
};

/* The directory the built-in name "fashion-mnist" resolves to. */
#define DIM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads one split of the dataset named by spec into ds (which it fills and owns
 * until dim_dataset_free). Errors: DIM_ENOENT (missing directory or file, the
 * path named), DIM_EFORMAT (bad magic, truncated file, count mismatch, corrupt
 * image: the file and the problem named), DIM_ELIMIT. On failure ds is empty. */
int dim_dataset_load(const char *spec, enum dim_split split,
                     const struct dim_dataset_limits *limits, struct dim_dataset *ds,
                     struct dim_err *err);

void dim_dataset_free(struct dim_dataset *ds);

/* Fills out (B, pp->c, pp->h, pp->w) with images idx[0..B) converted by
 * dim_image_to_input (augmented when rng is non-NULL) and, when labels is
 * non-NULL, their labels. Never allocates. */
void dim_dataset_batch(const struct dim_dataset *ds, const uint32_t *idx, size_t B,
                       const struct dim_preprocess *pp, struct dim_rng *rng, float *out,
                       uint16_t *labels);

#endif
