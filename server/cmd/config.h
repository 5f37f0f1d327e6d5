/* config.h - `dimd serve` settings: one table gives the flags (--name value),
 * the config file's keys (name = value) and docs/dimd.conf.example.
 * Precedence: defaults, then the config file (--config PATH), then flags.
 */
#ifndef DIMD_CMD_CONFIG_H
#define DIMD_CMD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

struct serve_config {
    char listen[64];
    long port;
    char state_dir[1024];
    long workers, threads_per_worker;
    long queue_max;
    long max_body_bytes;
    long max_connections;
    long connection_timeout_s;
    long connection_memory_bytes;
    long http_thread_nice;
    char allowed_hosts[1024];
    char data_roots[4096];
    long max_restarts;
    long idempotency_ttl_s;
    long metrics_flush_ms;
    long sse_heartbeat_s;
    long sse_max_streams;
    long history_limit_max;
    long encode_threads, encode_compute_threads;
    long encode_batch_max, encode_batch_wait_ms, encode_queue_max;
    long model_cache_max;
    long encode_max_body_bytes, encode_max_pixels, encode_max_images;
    long index_max_images;
    long projection_max_images;
    long min_free_bytes, reserve_bytes;
    long max_ranks;
    char mpi_hostfile[1024];
    char mpirun[1024];
};

void config_default(struct serve_config *c);
/* Sets key from text; DIM_EINVAL naming the key and the value. */
int config_set(struct serve_config *c, const char *key, const char *value, struct dim_err *err);
/* Whether key is a setting. */
bool config_has(const char *key);
/* Reads a config file: "key = value" lines, '#' comments, blank lines. Errors name the line. */
int config_load_file(struct serve_config *c, const char *path, struct dim_err *err);
/* Writes every key with its value and help, in config file form. */
void config_write(const struct serve_config *c, FILE *f);
/* Fills threads_per_worker = max(1, cores / workers), encode_compute_threads =
 * cores and max_ranks = cores when they are 0. */
void config_resolve(struct serve_config *c);

#endif
