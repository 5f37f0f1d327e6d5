/* rankwire.h - the messages between a daemon worker and rank 0 of a
 * data-parallel job (service/rank_job.c on one side, cmd/cli_rank.c on the
 * other), over the TCP connection rank 0 opens to the worker.
 *
 * A message is a 16-byte header, type (u32), 0 (u32), payload length (u64),
 * little-endian, then the payload. The conversation:
 *   rank 0 -> HELLO  the job's one-time token (DIMD_RANK_TOKEN), 64 hex characters
 *   worker -> START  struct rankwire_start, then the checkpoint the ranks begin from
 *   rank 0 -> READY  the ranks' host names, a JSON array (setup agreed on every rank)
 *   rank 0 -> STEP   struct rankwire_step, after every step
 *   rank 0 -> CKPT   u64 step, then the checkpoint of that step (core's format)
 *   worker -> STOP   (empty) checkpoint the current step and end (pause, shutdown)
 *   rank 0 -> FAIL   struct rankwire_fail, then the message (setup or a step failed)
 *   rank 0 -> DONE   u64 step: every rank has stopped there and is exiting
 * Fixed-size payloads are sent as their C structs: both ends are this binary.
 * Depends on libc only. Thread-safety: one connection per thread.
 */
#ifndef DIMD_UTIL_RANKWIRE_H
#define DIMD_UTIL_RANKWIRE_H

#include <stddef.h>
#include <stdint.h>

enum rankwire_type {
    RANKWIRE_HELLO = 1,
    RANKWIRE_START,
    RANKWIRE_READY,
    RANKWIRE_STEP,
    RANKWIRE_CKPT,
    RANKWIRE_STOP,
    RANKWIRE_FAIL,
    RANKWIRE_DONE,
};

#define RANKWIRE_TOKEN_LEN 64
#define RANKWIRE_MAX_PAYLOAD ((uint64_t)1 << 36) /* 64 GiB: a checkpoint's ceiling */

struct rankwire_start {
    uint64_t total;            /* the job's steps (the ranks run from the checkpoint's step) */
    uint64_t checkpoint_every; /* steps between checkpoints (the last step always gets one) */
    uint32_t threads;          /* compute threads of each rank (0: cores / local ranks) */
    uint32_t random_crop;
    uint32_t random_flip;
    uint32_t path_len;         /* the dataset's path follows the struct, then the checkpoint */
};

struct rankwire_step {
    uint64_t step;    /* steps done */
    double seconds;   /* wall seconds of this step */
    double lr;        /* the learning rate it took */
    double losses[5]; /* local, global, prior_enc, prior_disc, total */
};

struct rankwire_fail {
    int32_t code;  /* core's DIM_E* code */
    uint32_t step; /* low bits of the step that failed (0: setup) */
};

struct rankwire_hdr {
    uint32_t type;
    uint64_t len;
};

/* Writes one message: the header, then a (na bytes) and b (nb bytes), either may
 * be empty. Retries partial writes and EINTR. Returns 0, or -1 (errno set; the
 * peer is gone on EPIPE / ECONNRESET). */
int rankwire_send(int fd, uint32_t type, const void *a, size_t na, const void *b, size_t nb);
/* Reads exactly n bytes. Returns 0, 1 at end of stream before the first byte, -1
 * on an error or an end of stream inside them. */
int rankwire_read(int fd, void *buf, size_t n);
/* Reads a header. Returns 0, 1 at end of stream, -1 on an error or a bad header
 * (unknown type, a payload above RANKWIRE_MAX_PAYLOAD). */
int rankwire_recv_hdr(int fd, struct rankwire_hdr *h);
/* Reads and drops n bytes. Returns 0 or -1. */
int rankwire_skip(int fd, uint64_t n);

#endif
