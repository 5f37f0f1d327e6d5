/* svcfix.h - fixtures for the service tests (tests/server/service/): an
 * image-folder dataset on disk and real checkpoints of a small model for its
 * images (tests only). Core only: no store, no server headers, so every test
 * binary links it.
 */
#ifndef DIM_TESTS_SVCFIX_H
#define DIM_TESTS_SVCFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dim/model.h"

/* Writes an image folder at dir (created): classes subfolders "class0",
 * "class1", ... of per_class 32x32 grey PNGs each ("img00.png", ...); class c
 * is a pattern of its own (c mod 3: horizontal ramp, vertical ramp, checkers)
 * plus deterministic noise. Without train/ and test/ folders, every 6th file
 * of a class is a test image (core/data/dataset.h). Returns 0, or -1. */
int svcfix_shapes(const char *dir, int classes, int per_class);

/* A fresh temporary directory (fixtures_mkdtemp: malloc'd path, remove it with
 * fixtures_rmtree) holding data/shapes, an svcfix_shapes dataset; data gets
 * "DIR/data" (a data root for datasets_init), shapes "DIR/data/shapes".
 * NULL on failure. */
char *svcfix_workdir(int classes, int per_class, char data[512], char shapes[600]);

/* A checkpoint of a fresh model for 32x32 grey images (y_dim 16, mi_dim 32,
 * batch 16, seeded), in memory: *buf (malloc'd, free it), *n bytes. When
 * train_dir is not NULL the model takes `steps` training steps on that
 * dataset's training split and the checkpoint keeps its optimiser state;
 * otherwise it is an untrained, inference-only checkpoint. Returns 0, or -1. */
int svcfix_checkpoint(const char *train_dir, uint64_t seed, int steps, void **buf, size_t *n);

/* The oracle for embeddings: the Y of images floor(i * N / n), i < n, of the
 * N in dataset dir's split (n = min(max_n, N)), encoded by m one image per
 * forward pass, scaled to unit length when unit: *y (n, Y width) and *labels
 * (n), malloc'd; *n_out = n, *n_data = N. Returns 0, or -1. */
int svcfix_embed(const struct dim_model *m, const char *dir, int split, size_t max_n, bool unit,
                 float **y, uint16_t **labels, size_t *n_out, size_t *n_data);

#endif
