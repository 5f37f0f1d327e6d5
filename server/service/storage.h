/* storage.h - the state directory's free space, and whether the daemon may
 * write: the storage guard that the runner, the handlers and the start-up
 * consult, and that cmd/serve.c polls once a second from its libuv timer.
 *
 * DESIGN
 * - Degraded (read-mostly) mode: reads, downloads, encodes, deletions, cancel
 *   and pause go on; submits, resumes, promotions and other writes get 507
 *   insufficient_storage; no worker claims a job. The daemon enters it when a
 *   store write fails for lack of space or an I/O error (storage_report, after
 *   a STORE_FULL) or when the free bytes of the state directory's file system
 *   fall below the floor, max(min_free_bytes, STORAGE_FLOOR_BYTES)
 *   (storage_poll). It leaves on its own when storage_poll finds the floor
 *   plus the reserve it must re-create plus STORAGE_MARGIN_BYTES free, and,
 *   after a failed write, STORAGE_MARGIN_BYTES more than right after it (space
 *   came back: someone deleted something).
 * - The reserve: a file STATE_DIR/reserve of reserve_bytes, allocated while
 *   there is room. Each fault (a write that failed; a start on a file system
 *   below the floor) truncates it to half of what it held (to nothing below
 *   STORAGE_FLOOR_BYTES / 16), so SQLite has room to record the paused job,
 *   to open at start-up and to delete jobs and reclaim their pages, and a
 *   later fault still finds some. storage_poll grows it back when it leaves.
 * - Big writes ask first (storage_admit): a checkpoint needs what
 *   store_checkpoint_need says (its WAL frames beyond the WAL file, its pages
 *   beyond the database's free pages: up to twice its size) and must leave the
 *   floor free, so training pauses before the disk is full. This matters beyond tidiness: a
 *   transaction that lands in the WAL but that the checkpoint cannot copy into
 *   a database file that cannot grow leaves the WAL unable to restart, and
 *   then even a delete has nowhere to write.
 * - The 4 MiB floor with min_free_bytes 0 is the least dimd keeps.
 * - Free bytes are statvfs's f_bavail * f_frsize of the state directory (what
 *   an unprivileged writer may still use).
 * Thread-safety: every function may be called from any thread (a mutex).
 * Depends on libc (statvfs, posix_fallocate), core/base (errors).
 */
#ifndef DIMD_SERVICE_STORAGE_H
#define DIMD_SERVICE_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Below this many free bytes the daemon is degraded whatever min_free_bytes says
 * (SQLite needs a little room to record anything). */
#define STORAGE_FLOOR_BYTES (4LL << 20)
/* Hysteresis: leaving needs this much more than the floor and the reserve. */
#define STORAGE_MARGIN_BYTES (1LL << 20)

struct storage_config {
    const char *dir;        /* the state directory (copied) */
    int64_t min_free_bytes; /* >= 0 */
    int64_t reserve_bytes;  /* >= 0; 0: no reserve file */
};

struct storage_status {
    bool degraded;
    int64_t free_bytes;     /* at the last poll (or admit) */
    int64_t min_free_bytes; /* as configured */
    int64_t floor_bytes;    /* max(min_free_bytes, STORAGE_FLOOR_BYTES) */
    int64_t leave_bytes;    /* free bytes the daemon needs to leave degraded mode */
    int64_t reserve_bytes;  /* configured */
    int64_t reserve_held;   /* the reserve file's size now */
    uint64_t faults;        /* writes that failed for lack of space (storage_report) */
    int64_t since_ms;       /* when degraded mode began (0: not degraded) */
    char reason[256];       /* why degraded ("" when not) */
};

struct storage;

/* Creates the guard for cfg->dir and polls it once (which creates the reserve
 * when there is room). DIM_EIO when the directory cannot be measured. */
int storage_create(struct storage **out, const struct storage_config *cfg, struct dim_err *err);
void storage_free(struct storage *s);

/* Measures the free bytes; enters degraded mode below the floor, leaves it
 * (growing the reserve back first) when leave_bytes are free. Returns whether
 * the daemon is degraded now. */
bool storage_poll(struct storage *s);
/* A store write failed with STORE_FULL (what: its message): enters degraded
 * mode and gives back half of the reserve, so the caller's next small write
 * (a paused job, a reclaim) has room. */
void storage_report(struct storage *s, const char *what);
/* Start-up on a file system below the floor: gives back half of the reserve
 * before the store opens (a fault like storage_report's, without a failed
 * write). Returns the bytes given back. */
int64_t storage_release(struct storage *s);
bool storage_degraded(struct storage *s);
/* Whether a write of about `bytes` may go ahead: not degraded, and the free
 * bytes (measured now) minus bytes stay at or above the floor
 * (max(min_free_bytes, STORAGE_FLOOR_BYTES)). On false, *out (may be NULL)
 * holds the status with reason naming the free bytes and the need. */
bool storage_admit(struct storage *s, int64_t bytes, struct storage_status *out);
/* A copy of the guard's state. */
void storage_get(struct storage *s, struct storage_status *out);

#endif
