/* dimfix.h - shared DIM test set-ups: a small basic28x28 config and a dataset of
 * random 28x28 grey images (tests only). */
#ifndef DIM_TESTS_DIMFIX_H
#define DIM_TESTS_DIMFIX_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "dim/model.h"

/* dim_config_default with preset basic28x28 and the given widths and batch. */
struct dim_config dimfix_config(int y_dim, int mi_dim, uint32_t batch);

/* Fills ds with n random 28x28x1 images (seeded), labels i % classes. Free with
 * dim_dataset_free. Aborts the test on allocation failure. */
void dimfix_random_dataset(struct dim_dataset *ds, size_t n, int classes, uint64_t seed);

#endif
