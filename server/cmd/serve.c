/* serve.c - `dimd serve`: the daemon. `dimd routes`: its route table.
 *
 * Start-up: settings (defaults < config file < flags), the state directory,
 * the store (migrated), the first token, crash recovery (jobs a dead daemon was
 * running go back to the queue), the workers, then HTTP. The main thread then
 * runs a libuv loop: SIGTERM/SIGINT stop the daemon cleanly (intake stops,
 * running jobs checkpoint and return to the queue, exit 0); a timer nudges the
 * workers every second so no queued job waits on a lost wake-up, and polls the
 * storage guard (service/storage.h: statvfs of the state directory, degraded
 * mode in and out); another purges the expired idempotency keys (at start,
 * then every minute, or every idempotency_ttl_s when that is shorter). On a
 * full disk the daemon still starts: the reserve file gives SQLite room to
 * open, and recovery waits for space.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "handlers/handlers.h"
#include "cmd/cli.h"
#include "cmd/config.h"
#include "store/jobs.h"
#include "store/tokens.h"

struct daemon {
    struct handler_ctx api;
    struct datasets datasets;
    struct serve_config cfg;
    struct handler_settings settings;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    uv_timer_t purge; /* expired idempotency keys */
    int exit_status;
    bool recover_pending; /* start-up recovery failed on a full disk: retried by the tick */
};

static void serve_usage(FILE *f)
{
    struct serve_config d;
    config_default(&d);
    fprintf(f, "usage: dimd serve [--config FILE] [--print-config] [--SETTING VALUE ...]\n\n"
               "Runs the dimd daemon. Settings (flag, config file key, default, meaning):\n\n");
    config_write(&d, f);
}

/* Writes the first token into STATE/token (0600) when the database has none. */
static int first_token(struct daemon *d, char *path, size_t n)
{
    snprintf(path, n, "%s/token", d->cfg.state_dir);
    int64_t count = 0;
    struct dim_err err;
    if (store_token_count(d->api.store, &count, &err) != STORE_OK) {
        fprintf(stderr, "dimd serve: %s\n", err.msg);
        return -1;
    }
    if (count > 0)
        return 0;
    char text[TOKEN_TEXT_MAX];
    struct store_token t;
    if (auth_token_create(d->api.auth, "first", SCOPE_WRITE, text, &t, &err) != STORE_OK) {
        fprintf(stderr, "dimd serve: creating the first token: %s\n", err.msg);
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0;
    size_t len = strlen(text);
    text[len] = '\n';
    ok = ok && write(fd, text, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    memset(text, 0, sizeof text);
    if (!ok) {
        fprintf(stderr, "dimd serve: cannot write the first token to %s: %s\n", path,
                strerror(errno));
        auth_token_delete(d->api.auth, t.id, NULL);
        return -1;
    }
    return 0;
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (atomic_load(&d->api.phase) == HANDLER_STOPPING)
        return;
    fprintf(stderr, "dimd: %s: stopping (running jobs checkpoint and return to the queue)\n",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&d->api.phase, HANDLER_STOPPING);
    http_quiesce(d->api.http);
    sweeps_stop(d->api.sweeps); /* no decision while the workers hand their jobs back */
    d->api.sweeps = NULL;
    runner_stop(d->api.runner);
    d->api.runner = NULL;
    uv_stop(&d->loop);
}

/* Start-up recovery (jobs a dead daemon ran go back to the queue). On a full
 * disk it is postponed (recover_pending) until the storage guard has room. */
static int recover(struct daemon *d)
{
    int requeued = 0, failed = 0;
    struct dim_err err;
    int rc = store_recover(d->api.store, (int)d->cfg.max_restarts, &requeued, &failed, &err);
    if (rc == STORE_FULL) {
        fprintf(stderr, "dimd: recovery postponed until there is space: %s\n", err.msg);
        storage_report(d->api.storage, err.msg);
        d->recover_pending = true;
        return 0;
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "dimd serve: recovery: %s\n", err.msg);
        return -1;
    }
    d->recover_pending = false;
    if (requeued || failed)
        printf("dimd: recovered after an unclean stop: %d job(s) back in the queue, %d failed "
               "(restart limit %ld)\n",
               requeued, failed, d->cfg.max_restarts);
    fflush(stdout);
    return 0;
}

/* Every second: the free space (degraded mode in and out), a postponed
 * recovery, and a nudge to the workers so no queued job waits on a lost
 * wake-up. */
static void on_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    bool degraded = storage_poll(d->api.storage);
    if (d->recover_pending && !degraded)
        recover(d);
    if (d->api.runner)
        runner_wake(d->api.runner);
}

/* Deletes the idempotency keys older than idempotency_ttl_s. */
static void on_purge(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int64_t removed = 0;
    struct dim_err err;
    if (store_idempotency_purge(d->api.store, &removed, &err) != STORE_OK)
        fprintf(stderr, "dimd: purging expired idempotency keys: %s\n", err.msg);
}

/* Each connection is a file descriptor: raises the soft RLIMIT_NOFILE (often
 * 1024) to what max_connections + sse_max_streams need, plus FD_RESERVE for the
 * database, datasets and logs, within the hard limit; warns when the hard
 * limit is lower (connections beyond it are refused by the kernel). */
#define FD_RESERVE 256
static void raise_fd_limit(const struct serve_config *c)
{
    rlim_t need = (rlim_t)c->max_connections + (rlim_t)c->sse_max_streams + FD_RESERVE;
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= need)
        return;
    rlim_t want = r.rlim_max == RLIM_INFINITY || r.rlim_max >= need ? need : r.rlim_max;
    if (want > r.rlim_cur) {
        r.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0)
            getrlimit(RLIMIT_NOFILE, &r);
    }
    if (r.rlim_cur < need)
        fprintf(stderr,
                "dimd serve: warning: open files are limited to %llu, and max_connections + "
                "sse_max_streams + %d need %llu (raise `ulimit -Hn` or LimitNOFILE)\n",
                (unsigned long long)r.rlim_cur, FD_RESERVE, (unsigned long long)need);
}

static int parse_serve(int argc, char **argv, struct serve_config *cfg, bool *print)
{
    config_default(cfg);
    *print = false;
    /* the config file first, so flags override it wherever they appear */
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            v = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            v = argv[i] + 9;
        if (v) {
            struct dim_err err;
            if (config_load_file(cfg, v, &err) != 0) {
                fprintf(stderr, "dimd serve: %s\n", err.msg);
                return CLI_EXIT_USAGE;
            }
        }
    }
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "dimd serve: unexpected argument '%s'\n", arg);
            return CLI_EXIT_USAGE;
        }
        name = arg + 2;
        char key[64];
        const char *eq = strchr(name, '=');
        size_t kl = eq ? (size_t)(eq - name) : strlen(name);
        if (kl >= sizeof key) {
            fprintf(stderr, "dimd serve: unknown flag %s\n", arg);
            return CLI_EXIT_USAGE;
        }
        memcpy(key, name, kl);
        key[kl] = '\0';
        if (strcmp(key, "help") == 0) {
            serve_usage(stdout);
            return 1;
        }
        if (strcmp(key, "print-config") == 0) {
            *print = true;
            i++;
            continue;
        }
        if (strcmp(key, "config") != 0 && !config_has(key)) {
            fprintf(stderr, "dimd serve: unknown flag --%s (see dimd serve --help)\n", key);
            return CLI_EXIT_USAGE;
        }
        if (eq) {
            val = eq + 1;
            i++;
        } else if (i + 1 < argc) {
            val = argv[i + 1];
            i += 2;
        } else {
            fprintf(stderr, "dimd serve: flag --%s needs a value\n", key);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(key, "config") == 0)
            continue;
        struct dim_err err;
        if (config_set(cfg, key, val, &err) != 0) {
            fprintf(stderr, "dimd serve: --%s\n", err.msg);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

int cli_routes(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const char *const scope[] = {"none", "read", "write"};
    for (size_t i = 0; i < handler_n_routes; i++)
        printf("%s %s %s\n", handler_routes[i].method, handler_routes[i].pattern,
               scope[handler_routes[i].scope]);
    return 0;
}

int cli_serve(int argc, char **argv)
{
    static struct daemon d; /* the loop's handles point into it until exit */
    bool print;
    int rc = parse_serve(argc, argv, &d.cfg, &print);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (print) {
        printf("# dimd serve configuration: `dimd serve --config FILE` reads it; flags of\n"
               "# the same names (--port 8470) override it. Every key, with its default.\n\n");
        config_write(&d.cfg, stdout);
        return 0;
    }
    config_resolve(&d.cfg);
    unsigned char addr[16];
    if (inet_pton(AF_INET, d.cfg.listen, addr) != 1 && inet_pton(AF_INET6, d.cfg.listen, addr) != 1) {
        fprintf(stderr, "dimd serve: listen '%s' is not an IPv4 or IPv6 address\n", d.cfg.listen);
        return CLI_EXIT_USAGE;
    }
    umask(0077); /* the database holds checkpoints and token hashes: the owner's only */
    struct dim_err err;
    if (datasets_init(&d.datasets, d.cfg.data_roots, &err) != 0) {
        fprintf(stderr, "dimd serve: data_roots: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    if (mkdir(d.cfg.state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "dimd serve: cannot create state_dir %s: %s\n", d.cfg.state_dir,
                strerror(errno));
        return CLI_EXIT_FAIL;
    }
    signal(SIGPIPE, SIG_IGN);
    char db[1100], token_path[1100];
    snprintf(db, sizeof db, "%s/dimd.db", d.cfg.state_dir);
    d.settings = (struct handler_settings){d.cfg.workers,          d.cfg.queue_max,
                                           d.cfg.sse_heartbeat_s,  d.cfg.history_limit_max,
                                           d.cfg.encode_max_pixels, d.cfg.encode_max_images,
                                           d.cfg.index_max_images, d.cfg.projection_max_images,
                                           d.cfg.max_ranks};
    d.api.cfg = &d.settings;
    d.api.datasets = &d.datasets;
    atomic_store(&d.api.phase, HANDLER_STARTING);
    const struct storage_config sc = {d.cfg.state_dir, d.cfg.min_free_bytes, d.cfg.reserve_bytes};
    if (storage_create(&d.api.storage, &sc, &err) != 0) {
        fprintf(stderr, "dimd serve: %s\n", err.msg);
        return CLI_EXIT_FAIL;
    }
    struct storage_status ss;
    storage_get(d.api.storage, &ss);
    /* a full disk: SQLite needs a little room to open (the -shm file) and to
     * record anything; the reserve gives it, half at a time */
    if (ss.free_bytes < STORAGE_FLOOR_BYTES)
        storage_release(d.api.storage);
    while (store_open(&d.api.store, db, &err) != 0) {
        storage_get(d.api.storage, &ss);
        if (ss.reserve_held > 0 && storage_release(d.api.storage) > 0)
            continue;
        fprintf(stderr, "dimd serve: %s: %s (the state directory has %lld bytes free)\n", db,
                err.msg, (long long)ss.free_bytes);
        storage_free(d.api.storage);
        return CLI_EXIT_FAIL;
    }
    int status = CLI_EXIT_FAIL;
    if (auth_create(&d.api.auth, d.api.store, &err) != STORE_OK) {
        fprintf(stderr, "dimd serve: %s\n", err.msg);
        goto out;
    }
    if (first_token(&d, token_path, sizeof token_path) != 0)
        goto out;
    store_idempotency_ttl_set(d.api.store, d.cfg.idempotency_ttl_s * 1000);
    if (recover(&d) != 0)
        goto out;
    /* the binary mpirun starts as each rank of a data-parallel job (`dimd rank`) */
    static char self_exe[4096];
    ssize_t n_exe = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n_exe <= 0) {
        fprintf(stderr, "dimd serve: cannot read /proc/self/exe: %s\n", strerror(errno));
        goto out;
    }
    self_exe[n_exe] = '\0';
    struct runner_config rc_cfg = {(int)d.cfg.workers,
                                   (int)d.cfg.threads_per_worker,
                                   (int)d.cfg.metrics_flush_ms,
                                   d.api.storage,
                                   {(int)d.cfg.max_ranks, (int)d.cfg.max_restarts, d.cfg.mpirun,
                                    d.cfg.mpi_hostfile, self_exe}};
    if (runner_start(&d.api.runner, d.api.store, &d.datasets, &rc_cfg, &err) != 0) {
        fprintf(stderr, "dimd serve: workers: %s\n", err.msg);
        goto out;
    }
    if (sweeps_start(&d.api.sweeps, d.api.store, &d.datasets, d.api.runner, (int)d.cfg.workers,
                     &err) != 0) {
        fprintf(stderr, "dimd serve: sweeps: %s\n", err.msg);
        goto out;
    }
    struct inference_config ec = {(int)d.cfg.encode_threads,   (int)d.cfg.encode_compute_threads,
                                (int)d.cfg.encode_batch_max, (int)d.cfg.encode_batch_wait_ms,
                                (int)d.cfg.encode_queue_max, (int)d.cfg.model_cache_max};
    if (inference_start(&d.api.inference, d.api.store, &ec, &err) != 0) {
        fprintf(stderr, "dimd serve: encoder: %s\n", err.msg);
        goto out;
    }
    raise_fd_limit(&d.cfg);
    struct http_options ho = {.listen = d.cfg.listen,
                              .port = (int)d.cfg.port,
                              .max_body_bytes = (size_t)d.cfg.max_body_bytes,
                              .max_large_body_bytes = (size_t)d.cfg.encode_max_body_bytes,
                              .max_connections = (unsigned)d.cfg.max_connections,
                              .max_streams = (unsigned)d.cfg.sse_max_streams,
                              .connection_timeout_s = (unsigned)d.cfg.connection_timeout_s,
                              .connection_memory = (size_t)d.cfg.connection_memory_bytes,
                              .allowed_hosts = d.cfg.allowed_hosts,
                              .thread_nice = (int)d.cfg.http_thread_nice,
                              .authenticate = handler_authenticate,
                              .wait_change = handler_wait_events};
    if (http_start(&d.api.http, &ho, handler_routes, handler_n_routes, &d.api, &err) != 0) {
        fprintf(stderr, "dimd serve: %s\n", err.msg);
        goto out;
    }
    uv_loop_init(&d.loop);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
    uv_timer_init(&d.loop, &d.tick);
    d.tick.data = &d;
    uv_timer_start(&d.tick, on_tick, 1000, 1000);
    /* keys live idempotency_ttl_s, and at most a minute more before they go */
    uint64_t purge_ms =
        d.cfg.idempotency_ttl_s < 60 ? (uint64_t)d.cfg.idempotency_ttl_s * 1000 : 60000;
    uv_timer_init(&d.loop, &d.purge);
    d.purge.data = &d;
    uv_timer_start(&d.purge, on_purge, 0, purge_ms);
    atomic_store(&d.api.phase, HANDLER_READY);
    const char *host = strchr(d.cfg.listen, ':') ? "[%s]" : "%s";
    char h[80];
    snprintf(h, sizeof h, host, d.cfg.listen);
    printf("dimd: listening on http://%s:%d/\n", h, http_port(d.api.http));
    printf("dimd: token file %s\n", token_path);
    printf("dimd: %ld worker(s) x %ld thread(s), state %s\n", d.cfg.workers,
           d.cfg.threads_per_worker, db);
    storage_get(d.api.storage, &ss);
    printf("dimd: storage: %lld bytes free, min_free_bytes %lld, reserve %lld of %lld bytes%s\n",
           (long long)ss.free_bytes, (long long)ss.min_free_bytes, (long long)ss.reserve_held,
           (long long)ss.reserve_bytes, ss.degraded ? "; read-mostly (writes get 507)" : "");
    fflush(stdout);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&d.sigterm, NULL);
    uv_close((uv_handle_t *)&d.sigint, NULL);
    uv_close((uv_handle_t *)&d.tick, NULL);
    uv_close((uv_handle_t *)&d.purge, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    status = 0;
out:
    atomic_store(&d.api.phase, HANDLER_STOPPING);
    sweeps_stop(d.api.sweeps);
    d.api.sweeps = NULL;
    if (d.api.runner)
        runner_stop(d.api.runner);
    http_stop(d.api.http); /* in-flight encode requests finish: the encoder still runs */
    if (d.api.inference)
        inference_stop(d.api.inference);
    auth_free(d.api.auth);
    store_close(d.api.store);
    storage_free(d.api.storage);
    if (status == 0)
        printf("dimd: stopped\n");
    return status;
}
