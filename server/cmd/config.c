/* config.c - the table of `dimd serve` settings (cmd/config.h). */
#include "cmd/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cfg_type { CFG_STR, CFG_LONG };

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset, size; /* CFG_STR: buffer size */
    long min, max;
    const char *def;
    const char *help;
};

#define STR(n, def, help) {#n, CFG_STR, offsetof(struct serve_config, n), \
                           sizeof(((struct serve_config *)0)->n), 0, 0, def, help}
#define LONG(n, lo, hi, def, help) {#n, CFG_LONG, offsetof(struct serve_config, n), 0, lo, hi, \
                                    def, help}

static const struct cfg_key keys[] = {
    STR(listen, "127.0.0.1", "address to bind (loopback by default; 0.0.0.0 exposes dimd)"),
    LONG(port, 0, 65535, "8470", "TCP port (0: any free port, printed at start)"),
    STR(state_dir, "./dimd-state",
        "directory of the database (dimd.db) and the first token (token)"),
    LONG(workers, 1, 64, "1", "worker threads running training jobs"),
    LONG(threads_per_worker, 0, 256, "0", "compute threads per worker (0: cores / workers)"),
    LONG(queue_max, 1, 1000000, "100", "QUEUED jobs accepted before submits get 429"),
    LONG(max_body_bytes, 1024, 1L << 30, "1048576", "largest request body (413 above)"),
    LONG(max_connections, 4, 100000, "64",
         "concurrent HTTP connections besides event streams; also the most handlers running at "
         "once, a thread each, for encode and neighbors requests and for the other routes"),
    LONG(connection_timeout_s, 1, 86400, "60", "idle HTTP connections close after this"),
    LONG(connection_memory_bytes, 8192, 1L << 20, "32768",
         "memory of each HTTP connection (event streams included) for its request headers and "
         "reply buffers; headers over about half of it get 431"),
    LONG(http_thread_nice, 0, 19, "5",
         "nice value of the threads serving HTTP (polling, handlers, streams): above 0, forward "
         "passes and training run first and requests fill the CPU they leave (0: equal)"),
    STR(allowed_hosts, "127.0.0.1,localhost,[::1]",
        "comma-separated Host header names accepted (any port); others get 403"),
    STR(data_roots, "", "colon-separated directories whose subfolders jobs may train on"),
    LONG(max_restarts, 0, 1000, "3",
         "times a job may be interrupted by a daemon crash before it is FAILED"),
    LONG(idempotency_ttl_s, 1, 31536000, "86400",
         "how long an Idempotency-Key of POST /v1/jobs holds: reused within it, the original job "
         "is returned; after it, the key is forgotten and a new job is made"),
    LONG(metrics_flush_ms, 10, 3600000, "1000", "how often a running job writes its metrics"),
    LONG(sse_heartbeat_s, 1, 3600, "15", "seconds between heartbeats on idle event streams"),
    LONG(sse_max_streams, 1, 1000000, "1024",
         "open event streams (GET /v1/jobs/{id}/events; no thread each); one more gets 503 "
         "too_many_streams"),
    LONG(history_limit_max, 10, 10000000, "100000", "most points one metrics history page holds"),
    LONG(encode_threads, 1, 64, "1", "threads answering encode requests (each runs whole batches)"),
    LONG(encode_compute_threads, 0, 256, "0", "compute threads of each encode thread (0: cores)"),
    LONG(encode_batch_max, 1, 4096, "256", "images per forward pass when requests are batched"),
    LONG(encode_batch_wait_ms, 0, 10000, "5", "longest wait for a batch of encode requests to fill"),
    LONG(encode_queue_max, 1, 1000000, "256", "images waiting to be encoded before 429"),
    LONG(model_cache_max, 1, 1024, "4", "model versions kept loaded (least recently used go)"),
    LONG(encode_max_body_bytes, 1024, 1L << 31, "16777216",
         "largest body of an encode or neighbors request (413 above)"),
    LONG(encode_max_pixels, 1, 1L << 31, "16777216",
         "decoded pixels (width x height) per image, against decompression bombs (422 above)"),
    LONG(encode_max_images, 1, 100000, "64", "images per encode request (413 above)"),
    LONG(index_max_images, 0, 100000000, "10000",
         "training images in a model version's neighbours index (evenly spaced; 0: no index; "
         "promoting encodes them)"),
    LONG(projection_max_images, 2, 100000, "2000",
         "test images in a model version's 2-D projection (evenly spaced; made on first request)"),
    LONG(min_free_bytes, 0, 1L << 50, "0",
         "free bytes the state directory's file system keeps: below them dimd is read-mostly "
         "(submits and other writes get 507), and a checkpoint that would leave fewer (it needs "
         "up to twice its size) pauses its job with storage_full (below 4 MiB: the 4 MiB "
         "floor)"),
    LONG(reserve_bytes, 0, 1L << 40, "16777216",
         "size of STATE_DIR/reserve, a file given back half at a time when the disk fills, so "
         "dimd can still record paused jobs, start, and delete (0: none)"),
    LONG(max_ranks, 0, 1024, "0",
         "most ranks a training job may ask for (\"ranks\" in its spec; 422 above; 0: the "
         "online cores of this machine)"),
    STR(mpi_hostfile, "",
        "Open MPI hostfile the ranks of a job with \"ranks\" > 1 run on (empty: on this "
        "machine, oversubscribed when they outnumber its cores); the dataset must be at the "
        "same path on every host, and rank 0 must reach this daemon's host name over TCP"),
    STR(mpirun, "mpirun",
        "the launcher of a job's ranks (a path, or a name looked up in PATH); as root, Open "
        "MPI's mpirun also needs OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
        "in the daemon's environment"),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static const struct cfg_key *find(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

bool config_has(const char *key)
{
    return find(key) != NULL;
}

int config_set(struct serve_config *c, const char *key, const char *value, struct dim_err *err)
{
    const struct cfg_key *k = find(key);
    if (!k)
        return dim_fail(err, DIM_EINVAL, "unknown setting '%s'", key);
    char *p = (char *)c + k->offset;
    if (k->type == CFG_STR) {
        if (strlen(value) >= k->size)
            return dim_fail(err, DIM_EINVAL, "%s is longer than %zu characters", key,
                            k->size - 1);
        strcpy(p, value);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || strchr(value, ' '))
        return dim_fail(err, DIM_EINVAL, "%s '%s' is not an integer", key, value);
    if (v < k->min || v > k->max)
        return dim_fail(err, DIM_EINVAL, "%s %ld is out of range [%ld, %ld]", key, v, k->min,
                        k->max);
    *(long *)p = v;
    return 0;
}

void config_default(struct serve_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_KEYS; i++)
        config_set(c, keys[i].name, keys[i].def, NULL);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int config_load_file(struct serve_config *c, const char *path, struct dim_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return dim_fail(err, DIM_ENOENT, "config %s: %s", path, strerror(errno));
    char line[8192];
    int no = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = dim_fail(err, DIM_EINVAL, "config %s:%d: line too long", path, no);
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = dim_fail(err, DIM_EINVAL, "config %s:%d: expected 'key = value'", path, no);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        struct dim_err e;
        if (config_set(c, key, value, &e) != 0) {
            rc = dim_fail(err, DIM_EINVAL, "config %s:%d: %s", path, no, e.msg);
            break;
        }
    }
    fclose(f);
    return rc;
}

void config_write(const struct serve_config *c, FILE *f)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct cfg_key *k = &keys[i];
        const char *p = (const char *)c + k->offset;
        fprintf(f, "# %s (default: %s)\n", k->help, k->def[0] ? k->def : "empty");
        if (k->type == CFG_STR)
            fprintf(f, "%s = \"%s\"\n\n", k->name, p);
        else
            fprintf(f, "%s = %ld\n\n", k->name, *(const long *)p);
    }
}

void config_resolve(struct serve_config *c)
{
    if (c->encode_compute_threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c->encode_compute_threads = cores > 0 ? cores : 1;
    }
    if (c->max_ranks == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c->max_ranks = cores > 0 ? cores : 1;
    }
    if (c->threads_per_worker == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads_per_worker = cores > c->workers ? cores / c->workers : 1;
    }
}
