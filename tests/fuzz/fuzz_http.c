/* fuzz_http.c - request paths and query strings, through the whole HTTP front
 * of the daemon: libmicrohttpd, the route table (handlers/routes.c), path
 * captures ({id}, {name}, {version}, {key}, {step}, {file}), the query
 * parameters each handler reads (limit, cursor, state, kind, model, version,
 * tap, k, after_step, to_step, max_points, format, last_event_id, ...) and
 * the handlers behind them, against a real store.
 *
 * Once per process: a state directory with a real SQLite store holding one
 * SUCCEEDED job (metrics, a real checkpoint, events) and model "fm" v1 made
 * from that checkpoint, a read-scope token, the workers, the encoder and the
 * HTTP server on a free loopback port. Each input is one request: its first
 * byte picks the method (GET, HEAD, POST, DELETE, PUT), the rest is the
 * request target, sent as is but for the bytes a request line cannot hold
 * (controls, space, DEL and above, which are percent-encoded), with '/'
 * prepended when it does not start with one. The token has the read scope, so
 * write routes stop at 403 and the fixture stays as it is.
 * Invariants: every request gets an answer within 10 s, never a 5xx, and
 * every 4xx is application/problem+json.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "handlers/handlers.h"
#include "store/checkpoints.h"
#include "store/jobs.h"
#include "store/metrics.h"
#include "store/models.h"
#include "util/sha256.h"
#include "fixtures.h"
#include "svcfix.h"
#include "fuzz.h"

static struct handler_ctx app;
static struct datasets datasets;
static struct handler_settings settings = {1, 16, 1, 10000, 16777216, 64, 10000, 2000, 4};
static char token[TOKEN_TEXT_MAX];
static char *workdir;
static int port;

static void fatal(const char *what, const struct dim_err *err)
{
    fprintf(stderr, "fuzz_http: %s: %s\n", what, err ? err->msg : "failed");
    abort();
}

/* One SUCCEEDED job with three metric points, a checkpoint and events, and
 * model "fm" v1 from its checkpoint. */
static void seed(struct dimd_store *s)
{
    struct dim_err err;
    struct store_job job;
    const char *spec = "{\"dataset\":\"shapes\",\"steps\":2,\"checkpoint_every\":2}";
    if (store_job_insert(s, spec, "seed", NULL, NULL, 16, &job, &err) != STORE_OK)
        fatal("insert job", &err);
    store_job_clear(&job);
    if (store_job_claim(s, NULL, 0, &job, &err) != STORE_OK)
        fatal("claim job", &err);
    const struct store_metric m[3] = {{"loss", 1, 0.5, 1000}, {"loss", 2, 0.25, 2000},
                                      {"mi", 2, 0.125, 2000}};
    if (store_metrics_append(s, job.id, job.attempts, m, 3, 2, 100.0, &err) != STORE_OK)
        fatal("append metrics", &err);
    void *ckpt;
    size_t n;
    if (svcfix_checkpoint(NULL, 7, 0, &ckpt, &n) != 0)
        fatal("make a checkpoint", NULL);
    char sha[65];
    sha256_hex(ckpt, n, sha);
    const struct store_retention keep = {3, 0, "", false};
    if (store_checkpoint_put(s, job.id, job.attempts, 2, ckpt, n, sha, "{\"loss\":0.25}", &keep,
                             &err) != STORE_OK)
        fatal("put checkpoint", &err);
    if (store_job_finish(s, job.id, job.attempts, JOB_SUCCEEDED, NULL, NULL, &err) != STORE_OK)
        fatal("finish job", &err);
    struct store_model_version v;
    if (store_model_create(s, "fm", job.id, 2, sha, ckpt, n, sha, "{}", "{\"loss\":0.25}", false,
                           NULL, &v, &err) != STORE_OK)
        fatal("create model", &err);
    store_model_version_clear(&v);
    store_job_clear(&job);
    free(ckpt);
}

static void stop(void)
{
    atomic_store(&app.phase, HANDLER_STOPPING);
    http_quiesce(app.http);
    runner_stop(app.runner);
    http_stop(app.http);
    inference_stop(app.inference);
    auth_free(app.auth);
    store_close(app.store);
    fixtures_rmtree(workdir);
    free(workdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    char data[512], shapes[600], db[700];
    workdir = svcfix_workdir(2, 6, data, shapes);
    if (!workdir)
        fatal("make the work directory", NULL);
    struct dim_err err;
    if (datasets_init(&datasets, data, &err) != 0)
        fatal("datasets", &err);
    snprintf(db, sizeof db, "%s/dimd.db", workdir);
    if (store_open(&app.store, db, &err) != 0)
        fatal("open the store", &err);
    seed(app.store);
    if (auth_create(&app.auth, app.store, &err) != STORE_OK)
        fatal("auth", &err);
    struct store_token t;
    if (auth_token_create(app.auth, "fuzz", SCOPE_READ, token, &t, &err) != STORE_OK)
        fatal("token", &err);
    app.cfg = &settings;
    app.datasets = &datasets;
    const struct runner_config rc = {1, 1, 100, NULL, {0}};
    if (runner_start(&app.runner, app.store, &datasets, &rc, &err) != 0)
        fatal("runner", &err);
    const struct inference_config ic = {1, 1, 8, 0, 64, 2};
    if (inference_start(&app.inference, app.store, &ic, &err) != 0)
        fatal("inference", &err);
    const struct http_options ho = {.listen = "127.0.0.1",
                                    .port = 0,
                                    .max_body_bytes = 1 << 20,
                                    .max_large_body_bytes = 16 << 20,
                                    .max_connections = 64,
                                    .max_streams = 64,
                                    .connection_timeout_s = 10,
                                    .connection_memory = 32768,
                                    .allowed_hosts = "localhost,127.0.0.1",
                                    .authenticate = handler_authenticate,
                                    .wait_change = handler_wait_events};
    if (http_start(&app.http, &ho, handler_routes, handler_n_routes, &app, &err) != 0)
        fatal("http", &err);
    port = http_port(app.http);
    atomic_store(&app.phase, HANDLER_READY);
    atexit(stop);
    return 0;
}

/* Sends req and reads the whole answer (the server closes: Connection: close)
 * into resp (NUL-terminated, cut at cap - 1). Returns its length. */
static size_t roundtrip(const char *req, size_t len, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&a, sizeof a)) != 0 && errno == EINTR)
        ;
    FUZZ_CHECK(rc == 0, "connect: %s", strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, 0);
        if (w < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(w > 0, "send: %s", strerror(errno));
        off += (size_t)w;
    }
    size_t n = 0;
    for (;;) {
        char sink[4096];
        char *dst = n < cap - 1 ? resp + n : sink;
        size_t room = n < cap - 1 ? cap - 1 - n : sizeof sink;
        ssize_t r = recv(fd, dst, room, 0);
        if (r < 0 && errno == EINTR) /* libFuzzer's timeout timer (SIGALRM) */
            continue;
        FUZZ_CHECK(r >= 0, "no complete answer within 10 s (%s) to: %.300s", strerror(errno), req);
        if (r == 0)
            break;
        if (dst == resp + n)
            n += (size_t)r;
    }
    close(fd);
    resp[n] = '\0';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "GET", "GET", "HEAD", "POST", "DELETE", "PUT"};
    if (size < 1 || size > 2048)
        return 0;
    const char *method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    static char target[3 * 2048 + 2];
    size_t t = 0;
    if (size < 2 || data[1] != '/')
        target[t++] = '/';
    for (size_t i = 1; i < size; i++) {
        unsigned char ch = data[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            t += (size_t)snprintf(target + t, 4, "%%%02X", ch);
        } else {
            target[t++] = (char)ch;
        }
    }
    target[t] = '\0';
    static char req[sizeof target + 512];
    int len = snprintf(req, sizeof req,
                       "%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                       "Connection: close\r\n\r\n",
                       method, target, token);
    static char resp[8192];
    size_t n = roundtrip(req, (size_t)len, resp, sizeof resp);
    int status = 0;
    FUZZ_CHECK(n > 12 && sscanf(resp, "HTTP/1.%*d %d", &status) == 1, "no status line for: %s",
               req);
    /* 400 with libmicrohttpd's own HTML page: a request line it refuses itself */
    FUZZ_CHECK(status < 500, "%s %s answered %d:\n%.2000s", method, target, status, resp);
    if (status >= 400 && strstr(resp, "application/problem+json") == NULL)
        FUZZ_CHECK(status == 400 && strstr(resp, "<html>") != NULL,
                   "%s %s answered %d without problem+json:\n%.2000s", method, target, status, resp);
    return 0;
}
