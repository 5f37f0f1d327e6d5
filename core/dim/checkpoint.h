/* checkpoint.h - the one versioned binary format for a DIM model and its training state.
 *
 * Layout (all little-endian):
 *   0   magic "DIMDCKPT" (8 bytes)
 *   8   u32 format version (DIM_CKPT_VERSION)
 *   12  config: u32 preset, in_c, y_dim, mi_dim, estimator; f32 alpha, beta, gamma,
 *       lr, adam_beta1, adam_beta2, adam_eps; u32 batch; u64 seed;
 *       (version 2 on) u32 lr_schedule; u64 lr_warmup; f32 lr_final, lr_step_factor;
 *       u64 lr_horizon
 *       progress: u64 step, epoch, pos; rng (2 x u64); epoch_rng (2 x u64);
 *       u64 adam steps (main), adam steps (prior)
 *       u32 tensor count, then per tensor: name (16 bytes, NUL-padded), u64 float count
 *   ... payload: each tensor's float32 values in table order
 *   end u32 CRC-32 (zlib polynomial) of every byte before it
 * Tensors: "main", "prior", "state" (always) and "main.m", "main.v", "prior.m",
 * "prior.v" (Adam moments; count 0 when written from an inference-only model).
 * I/O goes through caller-supplied callbacks, so the same code writes files,
 * memory buffers or database blobs. Version 1 (before lr schedules) reads as a
 * constant lr without warm-up. Depends on dim/model, dim/trainer, zlib.
 */
#ifndef DIM_DIM_CHECKPOINT_H
#define DIM_DIM_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "dim/model.h"
#include "dim/trainer.h"

#define DIM_CKPT_MAGIC "DIMDCKPT"
#define DIM_CKPT_VERSION 2u /* reads 1 too: no schedule, a constant lr */

/* write returns 0 on success, non-zero on failure (the whole write then fails with DIM_EIO). */
struct dim_writer {
    int (*write)(void *ctx, const void *buf, size_t n);
    void *ctx;
};
/* read returns the number of bytes read; fewer than n means end of data. */
struct dim_reader {
    size_t (*read)(void *ctx, void *buf, size_t n);
    void *ctx;
};

/* Memory I/O for the callbacks: a growing buffer to write into (start it zeroed;
 * free p), and a reader over bytes. */
struct dim_membuf {
    unsigned char *p;
    size_t n, cap;
};
int dim_membuf_write(void *ctx, const void *buf, size_t n); /* ctx: struct dim_membuf */
struct dim_memsrc {
    const unsigned char *p;
    size_t n, pos;
};
size_t dim_memsrc_read(void *ctx, void *buf, size_t n); /* ctx: struct dim_memsrc */

/* Writes m (and p, or a zero progress when p is NULL). */
int dim_checkpoint_write(const struct dim_model *m, const struct dim_train_progress *p,
                         const struct dim_writer *w, struct dim_err *err);

/* Reads a checkpoint into a new model (created for training when training is
 * true; then Adam moments are restored too) and, when p is non-NULL, the saved
 * progress. Errors, each distinct: DIM_ECKPT_MAGIC, DIM_ECKPT_VERSION,
 * DIM_ECKPT_CONFIG (a config field out of range, named), DIM_ECKPT_LAYOUT
 * (tensor table disagrees with the config, or trailing bytes), DIM_ECKPT_TRUNCATED,
 * DIM_ECKPT_CHECKSUM, DIM_ENOMEM. On failure *out is NULL. */
int dim_checkpoint_read(struct dim_model **out, struct dim_train_progress *p, bool training,
                        const struct dim_reader *r, struct dim_err *err);

/* File helpers: save writes path.tmp, fsyncs, renames over path and fsyncs the
 * directory, so path is always either the old or the new checkpoint. */
int dim_checkpoint_save(const char *path, const struct dim_model *m,
                        const struct dim_train_progress *p, struct dim_err *err);
int dim_checkpoint_load(const char *path, struct dim_model **out, struct dim_train_progress *p,
                        bool training, struct dim_err *err);

#endif
