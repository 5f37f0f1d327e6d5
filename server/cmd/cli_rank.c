/* cli_rank.c - `dimd rank`: one rank of a daemon's data-parallel training job.
 * Internal: the daemon's worker (service/rank_job.c) starts it under mpirun,
 * never a user.
 *
 * Rank 0 connects to the worker (DIMD_RANK_ADDR, host:port), proves it was
 * started for this job (DIMD_RANK_TOKEN) and receives the run (util/rankwire.h):
 * the dataset's path, the steps, and the checkpoint to start from (a new job's
 * is its freshly initialised model at step 0), which it broadcasts. Every rank
 * loads the dataset and the checkpoint and builds its trainer on the MPI
 * collectives (dist/dist.h), exactly as `mpirun dimd train --resume` does; the
 * setup is agreed on before the first step. Then each step: rank 0 reads a STOP
 * or the end of the connection and broadcasts what to do (one 4-byte
 * broadcast), every rank steps, rank 0 sends the losses, and every
 * checkpoint_every steps and at the last one the checkpoint. The worker stores
 * everything: no rank writes a file or the database.
 * A rank whose parent (mpirun, or Open MPI's orted on another host) goes away
 * exits at once (a thread watches getppid), so a daemon killed with SIGKILL,
 * which takes mpirun with it, leaves no rank behind.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "dim/checkpoint.h"
#include "dim/trainer.h"
#include "dist/dist.h"
#include "util/clock.h"
#include "util/rankwire.h"

enum { CTL_RUN = 0, CTL_STOP = 1, CTL_LOST = 2 };

static pid_t parent_at_start;

/* Exits the process when its parent is gone (reparented: getppid changes). */
static void *watch_parent(void *arg)
{
    (void)arg;
    for (;;) {
        if (getppid() != parent_at_start)
            _exit(3);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Rank 0: connects to the worker and sends the token. Returns the socket or -1. */
static int connect_worker(char *msg, size_t n)
{
    const char *addr = getenv("DIMD_RANK_ADDR"), *token = getenv("DIMD_RANK_TOKEN");
    if (!addr || !token || strlen(token) != RANKWIRE_TOKEN_LEN) {
        snprintf(msg, n, "DIMD_RANK_ADDR and DIMD_RANK_TOKEN are not set: `dimd rank` is started "
                         "by the daemon's worker");
        return -1;
    }
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        snprintf(msg, n, "DIMD_RANK_ADDR '%s' is not HOST:PORT", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, colon + 1, &hints, &res);
    if (g != 0) {
        snprintf(msg, n, "resolving %s: %s", addr, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(msg, n, "cannot connect to the worker at %s: %s", addr, strerror(errno));
        return -1;
    }
    if (rankwire_send(fd, RANKWIRE_HELLO, token, RANKWIRE_TOKEN_LEN, NULL, 0) != 0) {
        snprintf(msg, n, "sending to the worker: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Rank 0: reads START into *st, the path and the checkpoint. Returns 0 or -1. */
static int read_start(int fd, struct rankwire_start *st, char **path, struct dim_membuf *ck,
                      char *msg, size_t n)
{
    struct rankwire_hdr h;
    if (rankwire_recv_hdr(fd, &h) != 0 || h.type != RANKWIRE_START || h.len < sizeof *st) {
        snprintf(msg, n, "the worker did not send the run");
        return -1;
    }
    if (rankwire_read(fd, st, sizeof *st) != 0 || st->path_len == 0 ||
        st->path_len > h.len - sizeof *st) {
        snprintf(msg, n, "the worker's run is malformed");
        return -1;
    }
    uint64_t ck_n = h.len - sizeof *st - st->path_len;
    *path = calloc(1, (size_t)st->path_len + 1);
    ck->p = malloc(ck_n ? (size_t)ck_n : 1);
    if (!*path || !ck->p) {
        snprintf(msg, n, "out of memory for a %llu-byte checkpoint", (unsigned long long)ck_n);
        return -1;
    }
    ck->n = ck->cap = (size_t)ck_n;
    if (rankwire_read(fd, *path, st->path_len) != 0 || rankwire_read(fd, ck->p, ck->n) != 0) {
        snprintf(msg, n, "reading the run from the worker: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Rank 0: what the worker asks before the next step. */
static int poll_worker(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 0);
    if (r == 0)
        return CTL_RUN;
    if (r < 0)
        return errno == EINTR ? CTL_RUN : CTL_LOST;
    struct rankwire_hdr h;
    if (rankwire_recv_hdr(fd, &h) != 0 || h.type != RANKWIRE_STOP || rankwire_skip(fd, h.len))
        return CTL_LOST;
    return CTL_STOP;
}

/* Rank 0: the checkpoint of the trainer's step to the worker. */
static int send_checkpoint(int fd, const struct dim_model *m, struct dim_trainer *tr,
                           struct dim_membuf *buf, struct dim_err *err)
{
    struct dim_train_progress prog;
    dim_trainer_progress(tr, &prog);
    buf->n = 0;
    const struct dim_writer wr = {dim_membuf_write, buf};
    if (dim_checkpoint_write(m, &prog, &wr, err) != 0)
        return -1;
    uint64_t step = prog.step;
    if (rankwire_send(fd, RANKWIRE_CKPT, &step, sizeof step, buf->p, buf->n) != 0)
        return dim_fail(err, DIM_EIO, "sending the checkpoint: %s", strerror(errno));
    return 0;
}

static void send_fail(int fd, int code, uint64_t step, const char *text)
{
    struct rankwire_fail f = {code, (uint32_t)step};
    rankwire_send(fd, RANKWIRE_FAIL, &f, sizeof f, text, strlen(text));
}

#define MSG_LEN 256

int cli_rank(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    parent_at_start = getppid();
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_parent, NULL) == 0)
        pthread_detach(watcher);
    if (dist_launched_size() < 1 || !getenv("DIMD_RANK_ADDR")) {
        fprintf(stderr, "dimd rank: internal: started by the daemon under mpirun, not by hand\n");
        return CLI_EXIT_USAGE;
    }
    struct dist *dd = NULL;
    char msg[MSG_LEN] = "";
    if (dist_start(&dd, msg, sizeof msg) != 0) {
        fprintf(stderr, "dimd rank: %s\n", msg);
        return CLI_EXIT_FAIL;
    }
    const int rank = dist_rank(dd), size = dist_size(dd);
    const bool lead = rank == 0;
    int fd = -1, status = CLI_EXIT_FAIL;
    struct rankwire_start st = {0};
    char *path = NULL;
    struct dim_membuf ck = {0};
    struct dim_dataset train = {0};
    struct dim_model *m = NULL;
    struct dim_trainer *tr = NULL;
    struct threadpool *pool = NULL;
    char *names = NULL;
    struct dim_err err;

    int bad = 0;
    if (lead) {
        fd = connect_worker(msg, sizeof msg);
        bad = fd < 0 || read_start(fd, &st, &path, &ck, msg, sizeof msg) != 0;
        if (bad)
            fprintf(stderr, "dimd rank 0: %s\n", msg);
    }
    if (dist_any(dd, bad))
        goto out;
    /* the run, from rank 0 to every rank */
    dist_bcast(dd, &st, sizeof st);
    uint64_t ck_n = ck.n;
    dist_bcast(dd, &ck_n, sizeof ck_n);
    if (!lead) {
        path = calloc(1, (size_t)st.path_len + 1);
        ck.p = malloc(ck_n ? (size_t)ck_n : 1);
        ck.n = ck.cap = (size_t)ck_n;
    }
    if (dist_any(dd, !path || !ck.p))
        goto out;
    dist_bcast(dd, path, st.path_len);
    dist_bcast(dd, ck.p, ck.n);

    /* setup on every rank; each one's problem is gathered so rank 0 can name it */
    int threads = (int)st.threads;
    if (threads < 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long per = cores / dist_launched_local_size();
        threads = per > 1 ? (int)per : 1;
    }
    pool = cli_threads_use(threads);
    msg[0] = '\0';
    const struct dim_dataset_limits lim = {0, 64u << 20};
    struct dim_train_progress prog;
    struct dim_memsrc src = {ck.p, ck.n, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    if (dim_dataset_load(path, DIM_SPLIT_TRAIN, &lim, &train, &err) != 0) {
        snprintf(msg, sizeof msg, "dataset %.60s: %.180s", path, err.msg);
    } else if (dim_checkpoint_read(&m, &prog, true, &rd, &err) != 0) {
        snprintf(msg, sizeof msg, "the checkpoint: %.200s", err.msg);
    } else {
        struct dim_preprocess pp = dim_model_preprocess(m);
        pp.random_crop = (int)st.random_crop;
        pp.random_flip = st.random_flip != 0;
        if (dim_trainer_create_dist(&tr, m, &train, &pp, dist_hooks(dd), &err) != 0 ||
            dim_trainer_restore(tr, &prog, &err) != 0)
            snprintf(msg, sizeof msg, "%.250s", err.msg);
    }
    free(ck.p);
    ck = (struct dim_membuf){0};
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    char mine[MSG_LEN + 64];
    memset(mine, 0, sizeof mine);
    memcpy(mine, host, sizeof host);
    memcpy(mine + 64, msg, MSG_LEN);
    names = malloc((size_t)size * sizeof mine);
    if (!names) {
        fprintf(stderr, "dimd rank %d: out of memory\n", rank);
        goto out; /* the others block in the gather until mpirun ends the job */
    }
    dist_allgather(dd, mine, names, sizeof mine);
    int failed_rank = -1;
    for (int k = 0; k < size && failed_rank < 0; k++)
        if (names[(size_t)k * sizeof mine + 64] != '\0')
            failed_rank = k;
    if (failed_rank >= 0) {
        if (lead) {
            char text[MSG_LEN + 32];
            snprintf(text, sizeof text, "rank %d: %s", failed_rank,
                     names + (size_t)failed_rank * sizeof mine + 64);
            send_fail(fd, DIM_EINVAL, 0, text);
            rankwire_send(fd, RANKWIRE_DONE, &(uint64_t){0}, sizeof(uint64_t), NULL, 0);
        }
        status = 0;
        goto out;
    }
    if (lead) { /* the hosts, rank 0 first, as a JSON array of strings */
        struct dim_membuf js = {0};
        dim_membuf_write(&js, "[", 1);
        for (int k = 0; k < size; k++) {
            const char *h = names + (size_t)k * sizeof mine;
            dim_membuf_write(&js, k ? ",\"" : "\"", k ? 2 : 1);
            for (const char *c = h; *c && c < h + 63; c++)
                if (*c != '"' && *c != '\\' && (unsigned char)*c >= 0x20)
                    dim_membuf_write(&js, c, 1);
            dim_membuf_write(&js, "\"", 1);
        }
        dim_membuf_write(&js, "]", 1);
        rankwire_send(fd, RANKWIRE_READY, js.p, js.n, NULL, 0);
        free(js.p);
    }

    uint64_t step = prog.step, last_ckpt = prog.step;
    const uint64_t every = st.checkpoint_every ? st.checkpoint_every : st.total;
    int ctl = CTL_RUN;
    struct dim_membuf buf = {0};
    while (step < st.total) {
        ctl = lead ? poll_worker(fd) : CTL_RUN;
        int32_t c = ctl;
        dist_bcast(dd, &c, sizeof c);
        ctl = c;
        if (ctl != CTL_RUN)
            break;
        struct dim_losses l;
        double t0 = clock_mono_s();
        int rc = dim_trainer_step(tr, &l, &err); /* the same outcome on every rank */
        double t1 = clock_mono_s();
        if (rc != 0) {
            if (lead) {
                send_fail(fd, rc, step + 1, err.msg);
                rankwire_send(fd, RANKWIRE_DONE, &step, sizeof step, NULL, 0);
            }
            status = 0;
            goto out_buf;
        }
        step++;
        if (lead) {
            struct rankwire_step s = {step, t1 - t0, (double)m->opt_main.lr,
                                      {l.local, l.global, l.prior_enc, l.prior_disc, l.total}};
            rankwire_send(fd, RANKWIRE_STEP, &s, sizeof s, NULL, 0); /* a lost worker: next poll */
            if (step % every == 0 || step == st.total) {
                if (send_checkpoint(fd, m, tr, &buf, &err) != 0)
                    fprintf(stderr, "dimd rank 0: %s\n", err.msg);
                last_ckpt = step;
            }
        }
    }
    if (ctl == CTL_LOST) {
        fprintf(stderr, "dimd rank %d: the worker is gone; stopping at step %llu\n", rank,
                (unsigned long long)step);
        goto out_buf;
    }
    if (lead) {
        if (step != last_ckpt && send_checkpoint(fd, m, tr, &buf, &err) != 0)
            fprintf(stderr, "dimd rank 0: %s\n", err.msg);
        rankwire_send(fd, RANKWIRE_DONE, &step, sizeof step, NULL, 0);
    }
    status = 0;
out_buf:
    free(buf.p);
out:
    free(names);
    free(path);
    free(ck.p);
    dim_trainer_free(tr);
    dim_model_free(m);
    dim_dataset_free(&train);
    cli_threads_release(pool);
    dist_finish(dd);
    if (fd >= 0)
        close(fd);
    return status;
}
