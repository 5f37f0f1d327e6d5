/* bench_encode.c - what serving an embedding costs against the bare forward pass.
 *
 * One program, one model (the default preset basic32x32 with the default
 * hyperparameters, inference-only, parameters from the default seed):
 *   (a) the bare forward pass with core directly, configured as the daemon's
 *       encode threads are (BLAS on one thread; each encode thread with a
 *       compute pool of compute_threads - 1 workers plus itself): one image on
 *       one thread, for the latency target, in the inference form the daemon
 *       runs (dim/infer.h) and, for comparison, in the reference form
 *       (dim_model_encode: unfolded batch norms, NCHW im2col); the same for one
 *       batch of `batch` images;
 *   (b) the same model served: a temporary state directory gets it as version
 *       v1 of model "bench" (store_model_create from its checkpoint bytes, no
 *       neighbours index), `dimd serve --state_dir DIR --port 0` runs as a
 *       subprocess with the same encode settings, and a small HTTP/1.1
 *       keep-alive client posts a 28x28 grey PNG (image/png body) to
 *       /v1/models/bench/encode: 300 sequential requests for the single-image
 *       latency (p50, p99);
 *   (c) throughput, in rounds: the batched forward limit (`threads` forward
 *       threads at once, each on batch-size inputs with its own pool and
 *       workspace, for 1.5 s: images/s), then `clients` concurrent
 *       connections for `seconds`, then the limit again, and so on. This
 *       machine's speed drifts by tens of percent within seconds, so each
 *       round's throughput is divided by the mean of the limits measured just
 *       before and after it, and the figure is the median of those ratios.
 *       Each round also reports the daemon's CPU time per image (/proc) and
 *       the load clients' (this process), against the forward's own.
 *   (d) with --streams N (watchers): before (b), a job is submitted and paused
 *       and N event streams (GET /v1/jobs/{id}/events, HTTP/1.1 chunked) are
 *       opened on it and kept open; the daemon's RSS before and after gives
 *       its memory per idle stream. During every load round a probe sends
 *       sequential GET /v1/jobs?limit=5 and GET /healthz on its own connection
 *       (2 ms apart): their p50 / p99 (target p99 < 50 ms). At the end the job
 *       is cancelled and the time until every stream has its CANCELLED state
 *       event is measured. --streams 0 runs the probe without streams.
 * Reports p50 / bare single-image forward (target <= 2) and the median
 * throughput / batched limit (target >= 0.8). Exits 1 when a request fails or
 * the daemon cannot be started; missing a target is reported, not an error.
 *
 * usage: bench_encode [DIMD] [--json PATH] [--requests N] [--clients C]
 *                     [--seconds S] [--rounds R] [--batch B] [--threads E]
 *                     [--compute_threads T] [--streams N]
 * DIMD defaults to build/dimd; batch to 256, threads to 1 and compute_threads to
 * the cores (the daemon's defaults of encode_batch_max, encode_threads and
 * encode_compute_threads, which are passed to it explicitly); 3 rounds of 4 s.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "data/image.h"
#include "dim/checkpoint.h"
#include "dim/infer.h"
#include "dim/model.h"
#include "util/threadpool.h"
#include "util/sha256.h"
#include "store/models.h"
#include "store/store.h"
#include "util/clock.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values (nearest rank). */
static double quantile(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_encode: %s: %s\n", what, msg);
    exit(1);
}

/* ---- (a) the bare forward pass ---- */

/* One forward pass to Y: the daemon's (the inference form, dim/infer.h) or the
 * reference (dim_model_encode) when inf is NULL. */
struct fwd {
    const struct dim_model *m;
    const struct dim_infer *inf;
    struct dim_encode_ws rws;
    struct dim_infer_ws iws;
};

static void fwd_init(struct fwd *f, const struct dim_model *m, const struct dim_infer *inf,
                     size_t B)
{
    struct dim_err err = {0};
    memset(f, 0, sizeof *f);
    f->m = m;
    f->inf = inf;
    if (inf ? dim_infer_ws_create(&f->iws, inf, B, &err) : dim_encode_ws_create(&f->rws, m, B, &err))
        die("encode workspace", err.msg);
}

static void fwd_free(struct fwd *f)
{
    dim_encode_ws_free(&f->rws);
    dim_infer_ws_free(&f->iws);
}

static const float *fwd_run(struct fwd *f, const float *x, size_t B)
{
    return f->inf ? dim_infer_encode(f->inf, &f->iws, x, B, DIM_TAP_Y)
                  : dim_model_encode(f->m, &f->rws, x, B, DIM_TAP_Y);
}

/* Median seconds of one forward pass on B inputs, over at least min_s seconds
 * and min_calls calls. */
static double time_forward(struct fwd *f, const float *x, size_t B, double min_s, int min_calls)
{
    for (int i = 0; i < 3; i++) /* warm-up: caches, pool threads, BLAS buffers */
        fwd_run(f, x, B);
    size_t cap = 4096, n = 0;
    double *t = malloc(cap * sizeof *t);
    double t_end = clock_mono_s() + min_s;
    while ((n < (size_t)min_calls || clock_mono_s() < t_end) && n < cap) {
        double t0 = clock_mono_s();
        const float *y = fwd_run(f, x, B);
        t[n++] = clock_mono_s() - t0;
        if (y[0] != y[0])
            die("forward", "NaN output");
    }
    qsort(t, n, sizeof *t, cmp_double);
    double med = quantile(t, n, 0.5);
    free(t);
    return med;
}

/* The batched limit of the daemon's configuration: `threads` forward threads,
 * each with its own compute pool of compute_threads - 1 workers and its own
 * workspace (as each encode thread has), all running batch-B passes at once. */
struct fwd_thread {
    const struct dim_model *m;
    const struct dim_infer *inf;
    const float *x;
    size_t B;
    int compute_threads;
    pthread_barrier_t *go;
    atomic_bool *stop;
    long passes;
};

static void *fwd_thread_main(void *arg)
{
    struct fwd_thread *f = arg;
    struct threadpool *pool = f->compute_threads > 1 ? threadpool_create(f->compute_threads - 1)
                                                    : NULL;
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    struct fwd ws;
    fwd_init(&ws, f->m, f->inf, f->B);
    fwd_run(&ws, f->x, f->B); /* warm-up */
    pthread_barrier_wait(f->go);
    while (!atomic_load(f->stop)) {
        const float *y = fwd_run(&ws, f->x, f->B);
        if (y[0] != y[0])
            die("forward", "NaN output");
        f->passes++;
    }
    fwd_free(&ws);
    dim_parallel_use(NULL);
    threadpool_free(pool);
    return NULL;
}

/* CPU seconds (user + system) of process pid from /proc, or -1. */
static double proc_cpu(pid_t pid)
{
    char p[64], buf[2048];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *s = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Images per second of `threads` concurrent batch-B forward threads over
 * `seconds`; *cpu gets the CPU seconds this process spent per image. */
static double forward_limit(const struct dim_model *m, const struct dim_infer *inf, const float *x,
                            size_t B, int threads,
                            int compute_threads, double seconds, double *cpu)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    atomic_bool stop;
    atomic_init(&stop, false);
    struct fwd_thread *f = calloc((size_t)threads, sizeof *f);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    for (int i = 0; i < threads; i++) {
        f[i] = (struct fwd_thread){m, inf, x, B, compute_threads, &go, &stop, 0};
        if (pthread_create(&th[i], NULL, fwd_thread_main, &f[i]) != 0)
            die("pthread_create", "forward thread");
    }
    pthread_barrier_wait(&go);
    const double c0 = self_cpu(), t0 = clock_mono_s();
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, true);
    long passes = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        passes += f[i].passes;
    }
    /* passes finished after the stop count in full: the window ends at the join */
    const double wall = clock_mono_s() - t0, c = self_cpu() - c0;
    free(f);
    free(th);
    pthread_barrier_destroy(&go);
    const double images = (double)passes * (double)B;
    *cpu = images > 0 ? c / images : 0;
    return images / wall;
}

/* ---- the served model's state directory ---- */

static void make_state(const char *dir, const struct dim_model *m)
{
    char db[600];
    snprintf(db, sizeof db, "%s/dimd.db", dir);
    struct dim_err err = {0};
    struct dim_membuf ck = {0};
    const struct dim_writer w = {dim_membuf_write, &ck};
    if (dim_checkpoint_write(m, NULL, &w, &err) != 0)
        die("checkpoint", err.msg);
    char sha[65];
    sha256_hex(ck.p, ck.n, sha);
    char info[512];
    snprintf(info, sizeof info,
             "{\"preset\":\"%s\",\"input\":{\"channels\":%d,\"height\":%d,\"width\":%d},"
             "\"y_dim\":%d,\"taps\":{\"conv\":%zu,\"fc\":%zu,\"y\":%zu,\"local\":%d},"
             "\"dataset\":\"none\",\"index_dataset_images\":0}",
             dim_preset_name(m->cfg.preset), m->cfg.in_c, m->in_h, m->in_w, m->cfg.y_dim,
             dim_model_tap_size(m, DIM_TAP_CONV), dim_model_tap_size(m, DIM_TAP_FC),
             dim_model_tap_size(m, DIM_TAP_Y), m->local_c);
    struct dimd_store *s;
    if (store_open(&s, db, &err) != 0)
        die("store_open", err.msg);
    struct store_model_version v;
    if (store_model_create(s, "bench", 0, 0, sha, ck.p, ck.n, sha, info, "{}", false, NULL, &v,
                           &err) != STORE_OK)
        die("store_model_create", err.msg);
    store_model_version_clear(&v);
    store_close(s);
    free(ck.p);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- the daemon ---- */

/* --streams: streams opened before the measured ones, so that what the first
 * requests create once (handler threads, their stacks and malloc arenas) is
 * not counted as memory per stream */
#define WARM_STREAMS 100

struct daemon {
    pid_t pid;
    int port;
    char token[128];
    FILE *out; /* its stdout (kept open: it may print more lines) */
};

static void start_daemon(struct daemon *d, const char *dimd, const char *dir, int batch,
                         int threads, int compute_threads, int streams, int clients)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe", strerror(errno));
    char b[16], et[16], ct[16], ms[16], mc[16];
    /* the load clients, the probe and the bench's own connection, besides the streams */
    snprintf(mc, sizeof mc, "%d", clients + 8 > 64 ? clients + 8 : 64);
    snprintf(ms, sizeof ms, "%d", streams + WARM_STREAMS > 1024 ? streams + WARM_STREAMS : 1024);
    snprintf(b, sizeof b, "%d", batch);
    snprintf(et, sizeof et, "%d", threads);
    snprintf(ct, sizeof ct, "%d", compute_threads);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        /* without --streams, the flags of daemons that predate them */
        if (streams > 0)
            execl(dimd, dimd, "serve", "--state_dir", dir, "--port", "0", "--encode_batch_max",
                  b, "--encode_threads", et, "--encode_compute_threads", ct, "--sse_max_streams",
                  ms, "--max_connections", mc, (char *)NULL);
        else if (streams == 0)
            execl(dimd, dimd, "serve", "--state_dir", dir, "--port", "0", "--encode_batch_max",
                  b, "--encode_threads", et, "--encode_compute_threads", ct, "--max_connections",
                  mc, (char *)NULL);
        else
            execl(dimd, dimd, "serve", "--state_dir", dir, "--port", "0", "--encode_batch_max",
                  b, "--encode_threads", et, "--encode_compute_threads", ct, (char *)NULL);
        fprintf(stderr, "bench_encode: cannot run %s: %s\n", dimd, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[1200], token_path[1200] = "";
    d->pid = pid;
    d->port = 0;
    while (fgets(line, sizeof line, f)) {
        int port;
        if (sscanf(line, "dimd: listening on http://127.0.0.1:%d/", &port) == 1)
            d->port = port;
        if (strncmp(line, "dimd: token file ", 17) == 0) {
            snprintf(token_path, sizeof token_path, "%s", line + 17);
            token_path[strcspn(token_path, "\n")] = '\0';
            break;
        }
    }
    /* stdout stays open until the daemon exits: the pipe's buffer is ample for
     * the few lines dimd prints */
    d->out = f;
    if (!d->port || !token_path[0]) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        die("dimd serve", "did not print its listening address and token file");
    }
    FILE *t = fopen(token_path, "r");
    if (!t || !fgets(d->token, sizeof d->token, t))
        die("token file", token_path);
    fclose(t);
    d->token[strcspn(d->token, "\r\n")] = '\0';
}

static int stop_daemon(struct daemon *d)
{
    kill(d->pid, SIGTERM);
    int st = 0, rc = -1;
    for (int i = 0; i < 600; i++) { /* 60 s */
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            break;
        }
        usleep(100000);
    }
    if (rc == -1 && kill(d->pid, 0) == 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &st, 0);
    }
    fclose(d->out);
    return rc;
}

/* ---- a tiny HTTP/1.1 keep-alive client ---- */

struct conn {
    int fd;
    char *buf; /* received, not yet consumed */
    size_t len, cap;
};

static int conn_open(struct conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        return -1;
    }
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    return c->buf ? 0 : -1;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads until buf holds at least need bytes. */
static int fill(struct conn *c, size_t need)
{
    while (c->len < need) {
        if (c->len == c->cap) {
            size_t cap = 2 * c->cap;
            char *g = realloc(c->buf, cap);
            if (!g)
                return -1;
            c->buf = g;
            c->cap = cap;
        }
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c->len += (size_t)k;
    }
    return 0;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* One request; returns the status (or -1 on a transport error). The body, up to
 * cap bytes, goes to out (NUL-terminated) when out is non-NULL. */
static int http_call(struct conn *c, const char *head, const void *body, size_t body_len,
                     char *out, size_t cap)
{
    if (send_all(c->fd, head, strlen(head)) != 0 ||
        (body_len && send_all(c->fd, body, body_len) != 0))
        return -1;
    char *end;
    for (;;) {
        end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (fill(c, c->len + 1) != 0)
            return -1;
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    size_t content = 0;
    int chunked = 0;
    for (char *p = c->buf; p < end;) {
        char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (!eol)
            break;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            content = strtoull(p + 15, NULL, 10);
        else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0 &&
                 memmem(p, (size_t)(eol - p), "chunked", 7))
            chunked = 1;
        p = eol + 2;
    }
    consume(c, hl);
    size_t got = 0;
    if (!chunked) {
        if (fill(c, content) != 0)
            return -1;
        if (out) {
            got = content < cap - 1 ? content : cap - 1;
            memcpy(out, c->buf, got);
        }
        consume(c, content);
    } else {
        for (;;) {
            char *eol;
            while (!(eol = c->len >= 2 ? memmem(c->buf, c->len, "\r\n", 2) : NULL))
                if (fill(c, c->len + 1) != 0)
                    return -1;
            size_t n = strtoull(c->buf, NULL, 16);
            size_t sl = (size_t)(eol - c->buf) + 2;
            if (fill(c, sl + n + 2) != 0)
                return -1;
            if (out && got + n < cap) {
                memcpy(out + got, c->buf + sl, n);
                got += n;
            }
            consume(c, sl + n + 2);
            if (n == 0)
                break;
        }
    }
    if (out)
        out[got] = '\0';
    return status;
}

/* ---- (b) the served model under load ---- */

struct load {
    int port;
    const char *head;
    const unsigned char *png;
    size_t png_len;
    double deadline;
    atomic_long done, errors;
};

static void *load_client(void *arg)
{
    struct load *L = arg;
    struct conn c;
    if (conn_open(&c, L->port) != 0) {
        atomic_fetch_add(&L->errors, 1);
        return NULL;
    }
    char out[4096];
    while (clock_mono_s() < L->deadline) {
        int st = http_call(&c, L->head, L->png, L->png_len, out, sizeof out);
        if (st == 200) {
            atomic_fetch_add(&L->done, 1);
        } else {
            atomic_fetch_add(&L->errors, 1);
            if (st < 0) {
                conn_close(&c);
                if (conn_open(&c, L->port) != 0)
                    break;
            }
        }
    }
    conn_close(&c);
    return NULL;
}

/* A counter of /metrics, or -1. */
static double metric(struct conn *c, int port, const char *token, const char *name)
{
    char head[512];
    snprintf(head, sizeof head,
             "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n",
             port, token);
    static char out[1 << 17];
    if (http_call(c, head, NULL, 0, out, sizeof out) != 200)
        return -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(out, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* One load round: `clients` keep-alive connections posting the PNG for
 * `seconds`. */
struct round {
    double limit, limit_cpu; /* the forward limit measured before it; CPU s per image */
    double tput, seconds, per_pass, daemon_cpu, client_cpu; /* CPU s per image */
    double forward_wall; /* the daemon's forward-pass seconds per image (its /metrics) */
    double busy;         /* its forward-pass seconds per second per encode thread */
    long images, errors;
};

static void load_round(struct round *r, struct conn *c, const struct daemon *d, const char *head,
                       const unsigned char *png, size_t png_len, int clients, double seconds,
                       int threads)
{
    const double img0 = metric(c, d->port, d->token, "dimd_encode_images_total"),
                 bat0 = metric(c, d->port, d->token, "dimd_encode_batches_total"),
                 fw0 = metric(c, d->port, d->token, "dimd_encode_forward_seconds_total");
    struct load L = {.port = d->port, .head = head, .png = png, .png_len = png_len};
    atomic_init(&L.done, 0);
    atomic_init(&L.errors, 0);
    pthread_t *th = malloc((size_t)clients * sizeof *th);
    const double dc0 = proc_cpu(d->pid), sc0 = self_cpu(), t0 = clock_mono_s();
    L.deadline = t0 + seconds;
    for (int i = 0; i < clients; i++)
        if (pthread_create(&th[i], NULL, load_client, &L) != 0)
            die("pthread_create", "load client");
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    r->seconds = clock_mono_s() - t0;
    const double dc1 = proc_cpu(d->pid), sc1 = self_cpu();
    free(th);
    const double img1 = metric(c, d->port, d->token, "dimd_encode_images_total"),
                 bat1 = metric(c, d->port, d->token, "dimd_encode_batches_total"),
                 fw1 = metric(c, d->port, d->token, "dimd_encode_forward_seconds_total");
    r->images = atomic_load(&L.done);
    r->errors = atomic_load(&L.errors);
    r->tput = (double)r->images / r->seconds;
    r->per_pass = img0 >= 0 && bat1 > bat0 ? (img1 - img0) / (bat1 - bat0) : -1;
    r->forward_wall = fw0 >= 0 && img1 > img0 ? (fw1 - fw0) / (img1 - img0) : -1;
    r->busy = fw0 >= 0 ? (fw1 - fw0) / (r->seconds * threads) : -1;
    r->daemon_cpu = r->images && dc0 >= 0 && dc1 >= 0 ? (dc1 - dc0) / (double)r->images : -1;
    r->client_cpu = r->images ? (sc1 - sc0) / (double)r->images : -1;
}

/* ---- (d) watchers: event streams and the API probe ---- */

/* The daemon's resident memory (KiB), or -1. */
static long proc_rss_kb(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

struct watchers {
    int n, ep;
    int *fd;
    char (*tail)[24];  /* the last bytes of each stream (a needle may straddle reads) */
    unsigned char *tl; /* their count */
    bool *got;         /* the stream's first bytes came */
    double *seen;      /* when each stream's data held the needle (0: not yet) */
    atomic_int started, closed, found;
    const char *needle;
    atomic_bool stop;
    pthread_t th;
};

static void *watchers_main(void *arg)
{
    struct watchers *W = arg;
    struct epoll_event ev[256];
    static char buf[1 << 16];
    char joined[sizeof buf + 48];
    while (!atomic_load(&W->stop)) {
        int k = epoll_wait(W->ep, ev, 256, 100);
        for (int j = 0; j < k; j++) {
            int i = (int)ev[j].data.u32;
            ssize_t r = recv(W->fd[i], buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                epoll_ctl(W->ep, EPOLL_CTL_DEL, W->fd[i], NULL);
                atomic_fetch_add(&W->closed, 1);
                continue;
            }
            if (!W->got[i]) {
                W->got[i] = true;
                if (r >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
                    atomic_fetch_add(&W->started, 1);
            }
            size_t tl = W->tl[i];
            memcpy(joined, W->tail[i], tl);
            memcpy(joined + tl, buf, (size_t)r);
            size_t jl = tl + (size_t)r;
            if (W->seen[i] == 0 && W->needle && memmem(joined, jl, W->needle, strlen(W->needle))) {
                W->seen[i] = clock_mono_s();
                atomic_fetch_add(&W->found, 1);
            }
            size_t keep = jl < sizeof W->tail[i] ? jl : sizeof W->tail[i];
            memcpy(W->tail[i], joined + jl - keep, keep);
            W->tl[i] = (unsigned char)keep;
        }
    }
    return NULL;
}

/* Opens n event streams on job_id; returns after every one answered 200 (or
 * dies after 120 s). */
static void watchers_open(struct watchers *W, int n, int port, const char *token, long job_id,
                          const char *needle)
{
    memset(W, 0, sizeof *W);
    W->n = n;
    W->needle = needle;
    W->fd = calloc((size_t)n, sizeof *W->fd);
    W->tail = calloc((size_t)n, sizeof *W->tail);
    W->seen = calloc((size_t)n, sizeof *W->seen);
    W->tl = calloc((size_t)n, 1);
    W->got = calloc((size_t)n, sizeof *W->got);
    W->ep = epoll_create1(0);
    if (!W->fd || !W->tail || !W->seen || !W->tl || !W->got || W->ep < 0)
        die("watchers", "out of memory");
    char req[512];
    snprintf(req, sizeof req,
             "GET /v1/jobs/%ld/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: "
             "text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n",
             job_id, port, token);
    if (pthread_create(&W->th, NULL, watchers_main, W) != 0)
        die("pthread_create", "watchers");
    for (int i = 0; i < n; i++) {
        struct conn c;
        if (conn_open(&c, port) != 0)
            die("watchers: connect", strerror(errno));
        free(c.buf);
        W->fd[i] = c.fd;
        if (send_all(c.fd, req, strlen(req)) != 0)
            die("watchers: send", strerror(errno));
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(W->ep, EPOLL_CTL_ADD, c.fd, &e);
    }
    double until = clock_mono_s() + 120;
    while (atomic_load(&W->started) < n && clock_mono_s() < until)
        usleep(20000);
    if (atomic_load(&W->started) < n) {
        fprintf(stderr, "bench_encode: only %d of %d streams answered 200 (%d closed)\n",
                atomic_load(&W->started), n, atomic_load(&W->closed));
        exit(1);
    }
}

static void watchers_close(struct watchers *W)
{
    atomic_store(&W->stop, true);
    pthread_join(W->th, NULL);
    for (int i = 0; i < W->n; i++)
        close(W->fd[i]);
    close(W->ep);
    free(W->fd);
    free(W->tail);
    free(W->seen);
    free(W->tl);
    free(W->got);
}

/* Sequential cheap requests on one connection until stopped. */
struct probe {
    int port;
    const char *token;
    atomic_bool stop;
    double *lat;
    size_t n, cap;
    long errors;
};

static void *probe_main(void *arg)
{
    struct probe *P = arg;
    struct conn c;
    if (conn_open(&c, P->port) != 0) {
        P->errors++;
        return NULL;
    }
    char head[2][512];
    snprintf(head[0], sizeof head[0],
             "GET /v1/jobs?limit=5 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
             "%s\r\n\r\n",
             P->port, P->token);
    snprintf(head[1], sizeof head[1], "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             P->port);
    static char out[1 << 16];
    for (size_t k = 0; !atomic_load(&P->stop); k++) {
        double t0 = clock_mono_s();
        int st = http_call(&c, head[k % 2], NULL, 0, out, sizeof out);
        double dt = clock_mono_s() - t0;
        if (st != 200) {
            P->errors++;
            if (st < 0) {
                conn_close(&c);
                if (conn_open(&c, P->port) != 0)
                    break;
            }
        }
        if (P->n == P->cap) {
            P->cap = P->cap ? 2 * P->cap : 4096;
            P->lat = realloc(P->lat, P->cap * sizeof *P->lat);
            if (!P->lat)
                die("probe", "out of memory");
        }
        P->lat[P->n++] = dt;
        usleep(2000);
    }
    conn_close(&c);
    return NULL;
}

/* POST or GET with a JSON body; returns the status, the body in out. */
static int api_call(struct conn *c, const struct daemon *d, const char *method, const char *path,
                    const char *body, char *out, size_t cap)
{
    char head[1024];
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             method, path, d->port, d->token, body ? strlen(body) : 0);
    return http_call(c, head, body, body ? strlen(body) : 0, out, cap);
}

/* A job to watch: submitted, then paused once it runs; returns its id. */
static long paused_job(struct conn *c, const struct daemon *d)
{
    static char out[1 << 16];
    int st = api_call(c, d, "POST", "/v1/jobs",
                      "{\"dataset\":\"fashion-mnist\",\"batch\":8,\"mi_dim\":16,\"y_dim\":16,"
                      "\"probe\":\"none\",\"steps\":1000000,\"checkpoint_every\":1000000}",
                      out, sizeof out);
    long id = 0;
    const char *p = strstr(out, "\"id\":");
    if (st != 201 || !p || (id = strtol(p + 5, NULL, 10)) <= 0)
        die("submit the watched job", out);
    char path[64];
    snprintf(path, sizeof path, "/v1/jobs/%ld/pause", id);
    for (int i = 0; i < 600; i++) { /* pause once it runs (QUEUED cannot pause) */
        st = api_call(c, d, "POST", path, NULL, out, sizeof out);
        if (st == 200)
            break;
        usleep(50000);
    }
    if (st != 200)
        die("pause the watched job", out);
    snprintf(path, sizeof path, "/v1/jobs/%ld", id);
    for (int i = 0; i < 600; i++) {
        api_call(c, d, "GET", path, NULL, out, sizeof out);
        if (strstr(out, "\"state\":\"PAUSED\""))
            return id;
        usleep(50000);
    }
    die("the watched job", "did not reach PAUSED");
    return 0;
}

int main(int argc, char **argv)
{
    const char *dimd = "build/dimd", *json = NULL;
    int requests = 300, clients = 16, batch = 256, threads = 1, rounds = 3, streams = -1;
    double seconds = 4, limit_seconds = 1.5;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int compute_threads = cores > 0 ? (int)cores : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            dimd = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_encode: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--json") == 0)
            json = v;
        else if (strcmp(a, "--requests") == 0)
            requests = atoi(v);
        else if (strcmp(a, "--clients") == 0)
            clients = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--rounds") == 0)
            rounds = atoi(v);
        else if (strcmp(a, "--batch") == 0)
            batch = atoi(v);
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--compute_threads") == 0)
            compute_threads = atoi(v);
        else if (strcmp(a, "--streams") == 0)
            streams = atoi(v);
        else {
            fprintf(stderr, "bench_encode: unknown flag %s\n", a);
            return 2;
        }
        i++;
    }
    if (requests < 10 || clients < 1 || clients > 256 || batch < 1 || threads < 1 ||
        threads > 64 || compute_threads < 1 || seconds <= 0 || rounds < 1 || rounds > 50 ||
        streams < -1 || streams > 100000) {
        fprintf(stderr, "bench_encode: bad arguments\n");
        return 2;
    }
    if (streams > 0) { /* a socket per stream, here and in the daemon (which raises its own) */
        struct rlimit rl;
        rlim_t need = (rlim_t)streams + (rlim_t)clients + 256;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
            rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
            setrlimit(RLIMIT_NOFILE, &rl);
            if (rl.rlim_cur < need)
                die("--streams", "the open-files hard limit (ulimit -Hn) is too low");
        }
    }

    /* (a) the bare forward pass, configured like the daemon's encode threads */
    nn_blas_set_threads(1);
    struct dim_config cfg;
    dim_config_default(&cfg);
    struct dim_model *m;
    struct dim_err err = {0};
    if (dim_model_create(&m, &cfg, false, &err) != 0)
        die("dim_model_create", err.msg);
    /* a 28 x 28 grey image (a pattern), preprocessed as every input is */
    struct dim_image img = {1, 28, 28, malloc(28 * 28)};
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            img.px[y * 28 + x] = (uint8_t)((x * 9 + y * 5 + ((x * y) % 7) * 20) & 255);
    const struct dim_preprocess pp = dim_model_preprocess(m);
    const size_t in = (size_t)pp.c * (size_t)pp.h * (size_t)pp.w;
    float *x = malloc((size_t)batch * in * sizeof *x);
    for (int b = 0; b < batch; b++)
        dim_image_to_input(&img, &pp, NULL, x + (size_t)b * in);
    /* one image, on one encode thread's pool */
    struct threadpool *pool = compute_threads > 1 ? threadpool_create(compute_threads - 1) : NULL;
    if (pool)
        dim_parallel_use(threadpool_parallel(pool));
    struct dim_infer *inf = NULL;
    if (dim_infer_create(&inf, m, &err) != 0)
        die("dim_infer_create", err.msg);
    struct fwd ws1, rws1, wsb, rwsb;
    fwd_init(&ws1, m, inf, 1);
    fwd_init(&rws1, m, NULL, 1);
    fwd_init(&wsb, m, inf, (size_t)batch);
    fwd_init(&rwsb, m, NULL, (size_t)batch);
    const double fwd1 = time_forward(&ws1, x, 1, 1.0, 200);
    const double ref1 = time_forward(&rws1, x, 1, 1.0, 200);
    const double fwdb = time_forward(&wsb, x, (size_t)batch, 1.0, 10);
    const double refb = time_forward(&rwsb, x, (size_t)batch, 1.0, 10);
    fwd_free(&ws1);
    fwd_free(&rws1);
    fwd_free(&wsb);
    fwd_free(&rwsb);
    dim_parallel_use(NULL);
    threadpool_free(pool);
    printf("encode: %s, BLAS 1 thread, %d encode thread%s x %d compute threads, batch %d\n",
           dim_preset_name(cfg.preset), threads, threads > 1 ? "s" : "", compute_threads, batch);
    printf("  bare forward, 1 image:        %.3f ms (reference, unfolded NCHW: %.3f ms, %.2fx)\n",
           1e3 * fwd1, 1e3 * ref1, ref1 / fwd1);
    printf("  bare forward, batch %d:       %.0f images/s (reference: %.0f images/s, %.2fx)\n",
           batch, batch / fwdb, batch / refb, refb / fwdb);
    fflush(stdout);

    /* (b) the same model served */
    char dir[] = "/tmp/dimd-bench-encode-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    make_state(dir, m);
    char png_path[600];
    snprintf(png_path, sizeof png_path, "%s/img.png", dir);
    if (dim_image_write_png(png_path, &img, &err) != 0)
        die("png", err.msg);
    FILE *pf = fopen(png_path, "rb");
    unsigned char png[65536];
    size_t png_len = pf ? fread(png, 1, sizeof png, pf) : 0;
    if (pf)
        fclose(pf);
    if (png_len == 0)
        die("png", "cannot read it back");
    free(img.px);

    struct daemon d;
    start_daemon(&d, dimd, dir, batch, threads, compute_threads, streams, clients);
    char head[1024];
    snprintf(head, sizeof head,
             "POST /v1/models/bench/encode HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Authorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: %zu\r\n\r\n",
             d.port, d.token, png_len);
    int rc = 0;
    struct conn c;
    if (conn_open(&c, d.port) != 0)
        die("connect", strerror(errno));
    char out[4096];
    for (int i = 0; i < 20; i++) { /* warm-up: loads the model into the cache */
        int st = http_call(&c, head, png, png_len, out, sizeof out);
        if (st != 200) {
            fprintf(stderr, "bench_encode: warm-up request: status %d: %.300s\n", st, out);
            stop_daemon(&d);
            remove_tree(dir);
            return 1;
        }
    }
    /* (d) the watchers, open from here to the end */
    struct watchers W[2], Wwarm;
    long watched = 0, rss0 = -1, rss_mid = -1, rss1 = -1;
    double t_streams = 0;
    const int half = streams / 2;
    const char *cancelled = "\"state\":\"CANCELLED\"";
    if (streams > 0) {
        watched = paused_job(&c, &d);
        watchers_open(&Wwarm, WARM_STREAMS, d.port, d.token, watched, NULL);
        usleep(500000);
        rss0 = proc_rss_kb(d.pid);
        const double t0 = clock_mono_s();
        watchers_open(&W[0], half, d.port, d.token, watched, cancelled);
        usleep(500000);
        rss_mid = proc_rss_kb(d.pid);
        const double t1 = clock_mono_s();
        watchers_open(&W[1], streams - half, d.port, d.token, watched, cancelled);
        t_streams = clock_mono_s() - t1 + (t1 - 0.5 - t0);
        usleep(500000);
        rss1 = proc_rss_kb(d.pid);
        printf("  %d event streams open on job %ld in %.2f s (after %d others); daemon RSS %ld -> "
               "%ld -> %ld KiB: %.1f KiB per idle stream (%.1f over the second %d)\n",
               streams, watched, t_streams, WARM_STREAMS, rss0, rss_mid, rss1,
               (double)(rss1 - rss0) / streams, (double)(rss1 - rss_mid) / (streams - half),
               streams - half);
        fflush(stdout);
    }
    double *lat = malloc((size_t)requests * sizeof *lat);
    for (int i = 0; i < requests; i++) {
        double t0 = clock_mono_s();
        int st = http_call(&c, head, png, png_len, out, sizeof out);
        lat[i] = clock_mono_s() - t0;
        if (st != 200) {
            fprintf(stderr, "bench_encode: request %d: status %d\n", i, st);
            rc = 1;
        }
    }
    qsort(lat, (size_t)requests, sizeof *lat, cmp_double);
    const double p50 = quantile(lat, (size_t)requests, 0.5),
                 p99 = quantile(lat, (size_t)requests, 0.99);
    free(lat);
    const double r_lat = p50 / fwd1;
    printf("  HTTP, 1 image (image/png), %d sequential requests: p50 %.3f ms, p99 %.3f ms\n",
           requests, 1e3 * p50, 1e3 * p99);
    printf("  p50 / bare forward: %.2fx (target <= 2x: %s)\n", r_lat,
           r_lat <= 2 ? "met" : "MISSED");

    /* Throughput: rounds of [forward limit, load], then one more limit; each
     * round's ratio is its throughput over the mean of the limits measured
     * just before and just after it, so the machine's drift between rounds
     * cancels; the figure is the median ratio. */
    printf("  throughput: %d rounds of %d clients for %.1f s, each between two %.1f s "
           "measures of the batched forward limit (%d x batch %d)\n",
           rounds, clients, seconds, limit_seconds, threads, batch);
    struct round *R = calloc((size_t)rounds + 1, sizeof *R);
    double *ratio = malloc((size_t)rounds * sizeof *ratio);
    long errors = 0;
    struct probe P = {.port = d.port, .token = d.token};
    double *probe_p50 = calloc((size_t)rounds, sizeof *probe_p50),
           *probe_p99 = calloc((size_t)rounds, sizeof *probe_p99);
    for (int i = 0; i <= rounds; i++) {
        R[i].limit = forward_limit(m, inf, x, (size_t)batch, threads, compute_threads, limit_seconds,
                                   &R[i].limit_cpu);
        if (i == rounds)
            break;
        pthread_t pt;
        const size_t p_from = P.n;
        if (streams >= 0) {
            atomic_store(&P.stop, false);
            if (pthread_create(&pt, NULL, probe_main, &P) != 0)
                die("pthread_create", "probe");
        }
        load_round(&R[i], &c, &d, head, png, png_len, clients, seconds, threads);
        errors += R[i].errors;
        if (streams >= 0) {
            atomic_store(&P.stop, true);
            pthread_join(pt, NULL);
            size_t k = P.n - p_from;
            double *v = malloc((k ? k : 1) * sizeof *v);
            memcpy(v, P.lat + p_from, k * sizeof *v);
            qsort(v, k, sizeof *v, cmp_double);
            probe_p50[i] = k ? quantile(v, k, 0.5) : -1;
            probe_p99[i] = k ? quantile(v, k, 0.99) : -1;
            free(v);
        }
    }
    for (int i = 0; i < rounds; i++) {
        const double lim = 0.5 * (R[i].limit + R[i + 1].limit);
        ratio[i] = R[i].tput / lim;
        printf("  round %d: limit %.0f / %.0f images/s (%.3f ms and %.2f ms CPU per image); "
               "served %.0f images/s, %.1f per pass, %ld errors; daemon: forward %.3f ms per "
               "image, busy %.2f, %.2f ms CPU per image (clients %.2f): ratio %.2f\n",
               i + 1, R[i].limit, R[i + 1].limit, 1e3 * threads / R[i].limit,
               1e3 * R[i].limit_cpu, R[i].tput, R[i].per_pass, R[i].errors,
               1e3 * R[i].forward_wall, R[i].busy, 1e3 * R[i].daemon_cpu,
               1e3 * R[i].client_cpu, ratio[i]);
        if (streams >= 0)
            printf("           probe (GET /v1/jobs, /healthz) meanwhile: p50 %.2f ms, p99 %.2f ms\n",
                   1e3 * probe_p50[i], 1e3 * probe_p99[i]);
    }
    double pp50 = -1, pp99 = -1, pmax = -1;
    if (streams >= 0) {
        qsort(P.lat, P.n, sizeof *P.lat, cmp_double);
        if (P.n) {
            pp50 = quantile(P.lat, P.n, 0.5);
            pp99 = quantile(P.lat, P.n, 0.99);
            pmax = P.lat[P.n - 1];
        }
        printf("  probe with %d streams open and %d encode clients, %zu requests (%ld not 200): "
               "p50 %.2f ms, p99 %.2f ms, max %.1f ms (target p99 < 50 ms: %s)\n",
               streams > 0 ? streams : 0, clients, P.n, P.errors, 1e3 * pp50, 1e3 * pp99,
               1e3 * pmax, pp99 >= 0 && pp99 < 0.05 ? "met" : "MISSED");
        if (P.errors)
            rc = 1;
    }
    double cancel_max = -1, cancel_med = -1;
    int stream_closed = 0;
    if (streams > 0) {
        stream_closed = atomic_load(&W[0].closed) + atomic_load(&W[1].closed) +
                        atomic_load(&Wwarm.closed);
        static char out2[1 << 16];
        char path[64];
        snprintf(path, sizeof path, "/v1/jobs/%ld/cancel", watched);
        const double t_cancel = clock_mono_s();
        if (api_call(&c, &d, "POST", path, NULL, out2, sizeof out2) != 200)
            die("cancel the watched job", out2);
        const double until = t_cancel + 60;
        while (atomic_load(&W[0].found) + atomic_load(&W[1].found) < streams &&
               clock_mono_s() < until)
            usleep(5000);
        int found = atomic_load(&W[0].found) + atomic_load(&W[1].found);
        double *a = malloc((size_t)streams * sizeof *a);
        size_t k = 0;
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < W[h].n; i++)
                if (W[h].seen[i] > 0)
                    a[k++] = W[h].seen[i] - t_cancel;
        qsort(a, k, sizeof *a, cmp_double);
        cancel_max = k ? a[k - 1] : -1;
        cancel_med = k ? quantile(a, k, 0.5) : -1;
        free(a);
        printf("  the cancel reached %d of %d streams: median %.0f ms, last %.0f ms; %d streams "
               "had closed before it\n",
               found, streams, 1e3 * cancel_med, 1e3 * cancel_max, stream_closed);
        if (found < streams || stream_closed)
            rc = 1;
        watchers_close(&W[0]);
        watchers_close(&W[1]);
        watchers_close(&Wwarm);
    }
    free(P.lat);
    free(probe_p50);
    free(probe_p99);
    double *sorted = malloc((size_t)rounds * sizeof *sorted);
    memcpy(sorted, ratio, (size_t)rounds * sizeof *sorted);
    qsort(sorted, (size_t)rounds, sizeof *sorted, cmp_double);
    const double r_tput = rounds % 2 ? sorted[rounds / 2]
                                     : 0.5 * (sorted[rounds / 2 - 1] + sorted[rounds / 2]);
    free(sorted);
    printf("  throughput / batched limit, median of %d rounds: %.2f (target >= 0.8: %s)\n",
           rounds, r_tput, r_tput >= 0.8 ? "met" : "MISSED");
    conn_close(&c);
    const int stop_rc = stop_daemon(&d);
    remove_tree(dir);
    dim_infer_free(inf);
    dim_model_free(m);
    free(x);
    if (errors)
        rc = 1;
    if (stop_rc != 0)
        printf("  dimd serve exited with status %d after SIGTERM\n", stop_rc);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f)
            die("--json", strerror(errno));
        fprintf(f,
                "{\"preset\":\"%s\",\"encode_threads\":%d,\"compute_threads\":%d,\"batch\":%d,"
                "\"forward_1_ms\":%.4f,\"forward_1_reference_ms\":%.4f,"
                "\"forward_batch_images_per_second\":%.1f,"
                "\"forward_batch_reference_images_per_second\":%.1f,"
                "\"http_requests\":%d,\"http_p50_ms\":%.4f,"
                "\"http_p99_ms\":%.4f,\"p50_over_forward\":%.3f,\"clients\":%d,"
                "\"round_seconds\":%.2f,\"rounds\":[",
                dim_preset_name(cfg.preset), threads, compute_threads, batch, 1e3 * fwd1,
                1e3 * ref1, batch / fwdb, batch / refb, requests, 1e3 * p50, 1e3 * p99, r_lat, clients, seconds);
        for (int i = 0; i < rounds; i++)
            fprintf(f,
                    "%s{\"limit_before\":%.1f,\"limit_after\":%.1f,\"forward_cpu_ms_per_image\":"
                    "%.4f,\"throughput_images_per_second\":%.1f,\"images\":%ld,\"errors\":%ld,"
                    "\"mean_images_per_forward\":%.2f,\"daemon_forward_ms_per_image\":%.4f,"
                    "\"daemon_encode_busy\":%.3f,\"daemon_cpu_ms_per_image\":%.4f,"
                    "\"client_cpu_ms_per_image\":%.4f,\"throughput_over_limit\":%.3f}",
                    i ? "," : "", R[i].limit, R[i + 1].limit, 1e3 * R[i].limit_cpu, R[i].tput,
                    R[i].images, R[i].errors, R[i].per_pass, 1e3 * R[i].forward_wall,
                    R[i].busy, 1e3 * R[i].daemon_cpu,
                    1e3 * R[i].client_cpu, ratio[i]);
        if (streams >= 0)
            fprintf(f,
                    "],\"streams\":%d,\"streams_open_seconds\":%.3f,\"rss_before_kib\":%ld,"
                    "\"rss_after_kib\":%ld,\"rss_kib_per_stream\":%.2f,"
                    "\"rss_kib_per_stream_second_half\":%.2f,\"probe_requests\":%zu,"
                    "\"probe_errors\":%ld,\"probe_p50_ms\":%.3f,\"probe_p99_ms\":%.3f,"
                    "\"probe_max_ms\":%.3f,\"target_probe_p99_ms_max\":50,"
                    "\"cancel_to_all_streams_ms\":%.1f,\"cancel_median_ms\":%.1f",
                    streams > 0 ? streams : 0, t_streams, rss0, rss1,
                    streams > 0 ? (double)(rss1 - rss0) / streams : 0,
                    streams > 1 ? (double)(rss1 - rss_mid) / (streams - half) : 0, P.n, P.errors,
                    1e3 * pp50,
                    1e3 * pp99, 1e3 * pmax, 1e3 * cancel_max, 1e3 * cancel_med);
        fprintf(f,
                "%s\"throughput_over_limit\":%.3f,\"target_p50_over_forward_max\":2,"
                "\"target_throughput_over_limit_min\":0.8,\"targets_met\":%s}\n",
                streams >= 0 ? "," : "],", r_tput,
                r_lat <= 2 && r_tput >= 0.8 && (streams < 0 || (pp99 >= 0 && pp99 < 0.05))
                    ? "true"
                    : "false");
        fclose(f);
    }
    free(R);
    free(ratio);
    return rc;
}
