/* rank_job.c - a data-parallel training job ("ranks" > 1 in its spec) on a
 * worker: its steps run in the ranks mpirun starts, its persistence stays here
 * (service/job_run.h).
 *
 * DESIGN
 * - train_job_run sets the job up as any other (spec, dataset, the model new or
 *   from the latest stored checkpoint, metrics rewound, total steps); the model
 *   at that step, as a checkpoint, is what the ranks start from.
 * - Launch: a TCP socket listens (127.0.0.1 without mpi_hostfile, else every
 *   address, rank 0 reaching it by this host's name), then the worker forks
 *   `mpirun -np N [--hostfile H | --oversubscribe] --bind-to none
 *   -x DIMD_RANK_ADDR -x DIMD_RANK_TOKEN DIMD rank`. The child is its own process
 *   group and gets SIGKILL when this worker thread dies (PR_SET_PDEATHSIG), so
 *   kill -9 of the daemon takes mpirun with it, and every rank exits when its
 *   parent goes (cmd/cli_rank.c). Rank 0 connects and proves itself with the
 *   one-time token (in the environment, not on the command line), gets the run
 *   and the checkpoint (util/rankwire.h) and broadcasts them.
 * - Rank 0 streams each step's losses (STEP) and each checkpoint's bytes
 *   (CKPT); this thread turns them into the same metric points, flushes
 *   (images_per_second from the ranks' step times), probes (on the checkpoint,
 *   decoded here) and checkpoints with retention as a one-rank job, through
 *   train_job.c and job_run.c. The daemon stays the only writer of its database.
 * - Control: a pause or runner_stop sends STOP: the ranks agree to stop at the
 *   next step, rank 0 sends that step's checkpoint and DONE, and the job is
 *   stored PAUSED or QUEUED as in one process. A cancel (or any other end)
 *   closes the connection: rank 0 sees it before its next step and every rank
 *   stops there; mpirun still running seconds later gets SIGTERM (Open MPI
 *   kills its ranks), then its process group SIGKILL. No rank outlives the job.
 * - A connection that ends without DONE (a rank died: mpirun ends the others)
 *   is lost like a daemon crash: store_job_restart gives restarts + 1 and QUEUED
 *   (FAILED "restart_limit" past max_restarts), and the next claim resumes from
 *   the latest checkpoint. mpirun that exits before rank 0 connects fails the
 *   job ("ranks_failed"; mpirun's messages are on the daemon's stderr).
 * Depends on store (jobs), util (rankwire, clock), core (checkpoint); no HTTP.
 */
#define _GNU_SOURCE 1 /* accept4 */
#include "service/job_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/jobs.h"
#include "util/clock.h"
#include "util/rankwire.h"

extern char **environ;

#define CONNECT_TIMEOUT_S 120.0 /* mpirun's start-up on every host */
#define STOP_TIMEOUT_S 120.0    /* a step, then the checkpoint's bytes */
#define EXIT_GRACE_S 10.0       /* mpirun and its ranks ending after the connection closes */
#define TEXT_MAX 4096           /* a READY or FAIL payload */

struct rank_proc {
    pid_t pid;          /* mpirun; 0 once reaped */
    int status;         /* its wait status once reaped */
    int listen_fd, fd;  /* -1: closed */
    bool done;          /* DONE received: every rank stopped at x->step */
    bool stopping;      /* STOP sent: checkpoints from here are not probed */
    bool lost;          /* the connection ended (or broke) without DONE */
    bool ended;         /* the job's attempt is over (a FAIL, or a store write ended it) */
    char token[RANKWIRE_TOKEN_LEN + 1];
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reaps mpirun if it has exited; returns whether it has. */
static bool reaped(struct rank_proc *rp)
{
    if (rp->pid <= 0)
        return true;
    pid_t p = waitpid(rp->pid, &rp->status, WNOHANG);
    if (p == rp->pid || (p < 0 && errno == ECHILD)) {
        rp->pid = 0;
        return true;
    }
    return false;
}

static bool wait_exit(struct rank_proc *rp, double seconds)
{
    double until = clock_mono_s() + seconds;
    while (!reaped(rp)) {
        if (clock_mono_s() >= until)
            return false;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return true;
}

/* Closes the connection (rank 0 stops every rank at its next step), then waits
 * for mpirun; SIGTERM, then SIGKILL to its process group, when it lingers. */
static void rank_proc_end(struct run *x, struct rank_proc *rp)
{
    close_fd(&rp->fd);
    close_fd(&rp->listen_fd);
    if (rp->pid <= 0)
        return;
    pid_t pid = rp->pid;
    if (wait_exit(rp, EXIT_GRACE_S))
        return;
    fprintf(stderr, "dimd: job %lld: mpirun (pid %d) still runs %.0f s after the end; SIGTERM\n",
            (long long)x->id, (int)pid, EXIT_GRACE_S);
    kill(pid, SIGTERM);
    if (wait_exit(rp, 5.0))
        return;
    fprintf(stderr, "dimd: job %lld: mpirun (pid %d) ignores SIGTERM; SIGKILL\n",
            (long long)x->id, (int)pid);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, &rp->status, 0);
    rp->pid = 0;
}

static void describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "signal %d", WTERMSIG(status));
    else
        snprintf(buf, n, "status %d", status);
}

/* PATH lookup of a launcher name without a slash, into out. */
static int find_program(const char *name, char *out, size_t n)
{
    if (strchr(name, '/')) {
        snprintf(out, n, "%s", name);
        return access(out, X_OK);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && (size_t)snprintf(out, n, "%.*s/%s", (int)len, path, name) < n &&
            access(out, X_OK) == 0)
            return 0;
        path += len + (end ? 1 : 0);
    }
    return -1;
}

/* The listening socket, the token, and mpirun started. Returns 0, or -1 with msg. */
static int launch(struct run *x, struct rank_proc *rp, char *msg, size_t n)
{
    const struct runner_mpi *mpi = &x->r->cfg.mpi;
    const bool hostfile = mpi->hostfile && mpi->hostfile[0];
    char exe[4096];
    if (!mpi->mpirun || find_program(mpi->mpirun, exe, sizeof exe) != 0) {
        snprintf(msg, n, "the launcher '%s' (setting mpirun) is not an executable program",
                 mpi->mpirun ? mpi->mpirun : "");
        return -1;
    }
    if (!mpi->self_exe) {
        snprintf(msg, n, "the path of this dimd binary is unknown");
        return -1;
    }
    rp->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(hostfile ? INADDR_ANY : INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (rp->listen_fd < 0 || bind(rp->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(rp->listen_fd, 8) != 0 || getsockname(rp->listen_fd, (struct sockaddr *)&sa, &sl)) {
        snprintf(msg, n, "the socket for rank 0: %s", strerror(errno));
        return -1;
    }
    unsigned char raw[RANKWIRE_TOKEN_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        snprintf(msg, n, "no random bytes for the token: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(rp->token + 2 * i, 3, "%02x", raw[i]);
    char host[256] = "127.0.0.1";
    if (hostfile && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    char a_env[320], t_env[96];
    snprintf(a_env, sizeof a_env, "DIMD_RANK_ADDR=%s:%d", host, (int)ntohs(sa.sin_port));
    snprintf(t_env, sizeof t_env, "DIMD_RANK_TOKEN=%s", rp->token);
    char np[24];
    snprintf(np, sizeof np, "%llu", (unsigned long long)x->spec.ranks);
    const char *argv[24];
    int k = 0;
    argv[k++] = exe;
    argv[k++] = "-np";
    argv[k++] = np;
    if (hostfile) {
        argv[k++] = "--hostfile";
        argv[k++] = mpi->hostfile;
    } else {
        argv[k++] = "--oversubscribe";
    }
    argv[k++] = "--bind-to";
    argv[k++] = "none";
    argv[k++] = "-x";
    argv[k++] = "DIMD_RANK_ADDR";
    argv[k++] = "-x";
    argv[k++] = "DIMD_RANK_TOKEN";
    argv[k++] = mpi->self_exe;
    argv[k++] = "rank";
    argv[k] = NULL;
    size_t ne = 0;
    while (environ && environ[ne])
        ne++;
    char **envp = malloc((ne + 3) * sizeof *envp);
    if (!envp) {
        snprintf(msg, n, "out of memory");
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "DIMD_RANK_", 10) != 0)
            envp[m++] = environ[i];
    envp[m++] = a_env;
    envp[m++] = t_env;
    envp[m] = NULL;
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) { /* the child: async-signal-safe calls only, then exec */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(2, 1);
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execve(exe, (char *const *)argv, envp);
        _exit(127);
    }
    int e = errno;
    free(envp);
    if (pid < 0) {
        snprintf(msg, n, "fork: %s", strerror(e));
        return -1;
    }
    rp->pid = pid;
    fprintf(stderr, "dimd: job %lld: attempt %d: %s -np %s %s%s (pid %d), rank 0 to %s\n",
            (long long)x->id, x->attempt, exe, np, hostfile ? "--hostfile " : "--oversubscribe",
            hostfile ? mpi->hostfile : "", (int)pid, a_env + 15);
    return 0;
}

/* Reads a payload of at most TEXT_MAX bytes as a string (NULL: too long or broken). */
static char *read_text(int fd, uint64_t len)
{
    if (len > TEXT_MAX)
        return NULL;
    char *t = malloc((size_t)len + 1);
    if (!t || rankwire_read(fd, t, (size_t)len) != 0) {
        free(t);
        return NULL;
    }
    t[len] = '\0';
    return t;
}

/* A checkpoint's bytes in x->ck: decoded into x->m for the probe when there is
 * one, then stored like a one-rank job's. */
static void on_checkpoint(struct run *x, struct rank_proc *rp, uint64_t step)
{
    const bool probe = !rp->stopping && x->spec.probe != JOB_PROBE_NONE;
    x->step = step;
    if (probe) {
        struct dim_memsrc src = {x->ck.p, x->ck.n, 0};
        const struct dim_reader rd = {dim_memsrc_read, &src};
        struct dim_model *m = NULL;
        struct dim_err err;
        if (dim_checkpoint_read(&m, NULL, false, &rd, &err) != 0) {
            job_run_fail(x, "checkpoint_invalid", "rank 0's checkpoint at step %llu: %s",
                         (unsigned long long)step, err.msg);
            rp->ended = true;
            return;
        }
        dim_model_free(x->m);
        x->m = m;
    }
    if (train_job_checkpoint(x, probe) != RUN_OK)
        rp->ended = true;
}

/* Waits up to timeout_ms for one message from rank 0 and handles it. */
static void pump_one(struct run *x, struct rank_proc *rp, int timeout_ms)
{
    struct pollfd p = {rp->fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0)
        return;
    struct rankwire_hdr h;
    if (rankwire_recv_hdr(rp->fd, &h) != 0) {
        rp->lost = true;
        return;
    }
    switch (h.type) {
    case RANKWIRE_READY: {
        char *hosts = read_text(rp->fd, h.len);
        if (!hosts) {
            rp->lost = true;
            return;
        }
        struct dim_err err;
        int rc = store_job_set_hosts(x->r->store, x->id, x->attempt, hosts, &err);
        if (rc == STORE_STALE)
            rp->ended = true;
        else if (rc != STORE_OK)
            fprintf(stderr, "dimd: job %lld: recording the hosts %s: %s\n", (long long)x->id,
                    hosts, err.msg);
        else
            fprintf(stderr, "dimd: job %lld: %llu ranks on %s\n", (long long)x->id,
                    (unsigned long long)x->spec.ranks, hosts);
        free(hosts);
        return;
    }
    case RANKWIRE_STEP: {
        struct rankwire_step s;
        if (h.len != sizeof s || rankwire_read(rp->fd, &s, sizeof s) != 0) {
            rp->lost = true;
            return;
        }
        const struct dim_losses l = {.local = s.losses[0], .global = s.losses[1],
                                     .prior_enc = s.losses[2], .prior_disc = s.losses[3],
                                     .total = s.losses[4]};
        x->step = s.step;
        x->win_steps++;
        x->win_s += s.seconds;
        x->last = l;
        x->have_last = true;
        atomic_fetch_add_explicit(&x->r->steps_total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&x->r->images_total, x->m->cfg.batch, memory_order_relaxed);
        if (train_job_push_losses(x, &l, s.lr) != 0) {
            job_run_fail(x, "out_of_memory", "out of memory for metric points");
            rp->ended = true;
        }
        return;
    }
    case RANKWIRE_CKPT: {
        uint64_t step;
        if (h.len < sizeof step || rankwire_read(rp->fd, &step, sizeof step) != 0) {
            rp->lost = true;
            return;
        }
        uint64_t n = h.len - sizeof step;
        if (n > x->ck.cap) {
            void *q = realloc(x->ck.p, (size_t)n);
            if (!q) {
                job_run_fail(x, "out_of_memory", "out of memory for a %llu-byte checkpoint",
                             (unsigned long long)n);
                rp->ended = true;
                return;
            }
            x->ck.p = q;
            x->ck.cap = (size_t)n;
        }
        if (rankwire_read(rp->fd, x->ck.p, (size_t)n) != 0) {
            rp->lost = true;
            return;
        }
        x->ck.n = (size_t)n;
        on_checkpoint(x, rp, step);
        return;
    }
    case RANKWIRE_FAIL: {
        struct rankwire_fail f;
        char *text = NULL;
        if (h.len < sizeof f || rankwire_read(rp->fd, &f, sizeof f) != 0 ||
            !(text = read_text(rp->fd, h.len - sizeof f))) {
            rp->lost = true;
            return;
        }
        if (job_run_flush(x) == RUN_OK) {
            if (f.step == 0)
                job_run_fail(x, f.code == DIM_ENOMEM ? "out_of_memory" : "ranks_setup_failed",
                             "setting up the ranks: %s", text);
            else
                train_job_step_failed(x, f.code, x->step + 1, text);
        }
        free(text);
        rp->ended = true;
        return;
    }
    case RANKWIRE_DONE: {
        uint64_t step;
        if (h.len != sizeof step || rankwire_read(rp->fd, &step, sizeof step) != 0) {
            rp->lost = true;
            return;
        }
        rp->done = true;
        return;
    }
    default: /* HELLO, START, STOP come the other way */
        fprintf(stderr, "dimd: job %lld: unexpected message %u from rank 0\n", (long long)x->id,
                h.type);
        rp->lost = true;
    }
}

/* Waits for rank 0 (polling the runner's stop, state changes and mpirun), checks
 * its token and sends the run. RUN_OK: connected; RUN_END: the attempt is over. */
static int connect_rank0(struct run *x, struct rank_proc *rp)
{
    const double until = clock_mono_s() + CONNECT_TIMEOUT_S;
    while (rp->fd < 0) {
        if (atomic_load(&x->r->stop))
            return job_run_shutdown(x);
        if (atomic_exchange(&x->w->changed, false) && job_run_check_state(x) != RUN_OK)
            return RUN_END;
        if (reaped(rp)) {
            char st[64];
            describe_status(rp->status, st, sizeof st);
            return job_run_fail(x, "ranks_failed",
                                "mpirun ended (%s) before rank 0 connected; its messages are "
                                "in the daemon's log",
                                st);
        }
        if (clock_mono_s() > until)
            return job_run_fail(x, "ranks_failed", "rank 0 did not connect within %.0f s",
                                CONNECT_TIMEOUT_S);
        struct pollfd p = {rp->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept4(rp->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct pollfd q = {fd, POLLIN, 0};
        struct rankwire_hdr h;
        char token[RANKWIRE_TOKEN_LEN];
        if (poll(&q, 1, 10000) == 1 && rankwire_recv_hdr(fd, &h) == 0 &&
            h.type == RANKWIRE_HELLO && h.len == RANKWIRE_TOKEN_LEN &&
            rankwire_read(fd, token, sizeof token) == 0 &&
            memcmp(token, rp->token, sizeof token) == 0)
            rp->fd = fd;
        else
            close(fd); /* not our rank 0 */
    }
    close_fd(&rp->listen_fd);
    const size_t path_len = strlen(x->dataset_path);
    const uint64_t ranks = x->spec.ranks;
    const int tpw = x->r->cfg.threads_per_worker;
    const bool hostfile = x->r->cfg.mpi.hostfile && x->r->cfg.mpi.hostfile[0];
    struct rankwire_start st = {
        .total = x->total,
        .checkpoint_every = x->spec.checkpoint_every ? x->spec.checkpoint_every : x->total,
        /* on this machine the ranks share the worker's threads; on hosts, each decides */
        .threads = hostfile ? 0 : (uint32_t)((uint64_t)tpw > ranks ? (uint64_t)tpw / ranks : 1),
        .random_crop = (uint32_t)x->spec.random_crop,
        .random_flip = x->spec.random_flip,
        .path_len = (uint32_t)path_len,
    };
    /* one message: the struct, the path, the checkpoint */
    char *head = malloc(sizeof st + path_len);
    if (!head)
        return job_run_fail(x, "out_of_memory", "out of memory for the ranks' run");
    memcpy(head, &st, sizeof st);
    memcpy(head + sizeof st, x->dataset_path, path_len);
    int rc = rankwire_send(rp->fd, RANKWIRE_START, head, sizeof st + path_len, x->ck.p, x->ck.n);
    free(head);
    if (rc != 0)
        rp->lost = true;
    return RUN_OK;
}

int rank_job_stop(struct run *x)
{
    struct rank_proc *rp = x->ranks;
    if (!rp || rp->fd < 0 || rp->done || rp->lost || rp->ended)
        return rp && rp->ended ? RUN_END : RUN_OK;
    rp->stopping = true;
    if (rankwire_send(rp->fd, RANKWIRE_STOP, NULL, 0, NULL, 0) != 0)
        rp->lost = true;
    const double until = clock_mono_s() + STOP_TIMEOUT_S;
    while (!rp->done && !rp->lost && !rp->ended && clock_mono_s() < until)
        pump_one(x, rp, 200);
    if (rp->ended)
        return RUN_END;
    if (!rp->done)
        fprintf(stderr, "dimd: job %lld: the ranks did not stop within %.0f s; step %llu has no "
                        "checkpoint\n",
                (long long)x->id, STOP_TIMEOUT_S, (unsigned long long)x->step);
    return job_run_flush(x);
}

/* The connection ended without DONE: like a daemon crash for this job. */
static void rank_lost(struct run *x, struct rank_proc *rp)
{
    rank_proc_end(x, rp);
    char st[64], why[256];
    describe_status(rp->status, st, sizeof st);
    snprintf(why, sizeof why, "a rank of the job's %llu stopped at step %llu (mpirun: %s)",
             (unsigned long long)x->spec.ranks, (unsigned long long)x->step, st);
    fprintf(stderr, "dimd: job %lld: %s; back to its latest checkpoint (step %llu)\n",
            (long long)x->id, why, (unsigned long long)x->last_ckpt);
    if (job_run_flush(x) != RUN_OK)
        return;
    struct dim_err err;
    bool failed = false;
    int rc = store_job_restart(x->r->store, x->id, x->attempt, x->r->cfg.mpi.max_restarts, why,
                               &failed, &err);
    if (rc != STORE_OK && rc != STORE_STALE)
        job_run_store_fail(x, rc, "the restart", &err);
}

void rank_job_run(struct run *x)
{
    struct runner *r = x->r;
    struct rank_proc rp = {.listen_fd = -1, .fd = -1};
    struct dim_err err;
    /* the checkpoint the ranks start from: the model set up at x->step */
    struct dim_train_progress prog;
    dim_trainer_progress(x->tr, &prog);
    x->ck.n = 0;
    const struct dim_writer wr = {dim_membuf_write, &x->ck};
    if (dim_checkpoint_write(x->m, &prog, &wr, &err) != 0) {
        job_run_fail(x, "checkpoint_failed", "the ranks' starting checkpoint: %s", err.msg);
        return;
    }
    dim_trainer_free(x->tr); /* the ranks train; this thread keeps the model for probes */
    x->tr = NULL;
    x->ranks = &rp;
    char msg[512];
    if (launch(x, &rp, msg, sizeof msg) != 0) {
        job_run_fail(x, "ranks_failed", "starting %llu ranks: %s",
                     (unsigned long long)x->spec.ranks, msg);
        goto end;
    }
    if (connect_rank0(x, &rp) != RUN_OK)
        goto end;
    const double flush_s = r->cfg.metrics_flush_ms / 1000.0;
    x->last_flush = clock_mono_s();
    while (!rp.done && !rp.lost && !rp.ended) {
        if (atomic_load_explicit(&r->stop, memory_order_relaxed)) {
            job_run_shutdown(x);
            goto end;
        }
        if (atomic_exchange(&x->w->changed, false) && job_run_check_state(x) != RUN_OK)
            goto end;
        double left = x->last_flush + flush_s - clock_mono_s();
        int wait_ms = left <= 0 ? 0 : left < 0.2 ? (int)(left * 1000) + 1 : 200;
        pump_one(x, &rp, wait_ms);
        if (rp.ended)
            goto end;
        if (!rp.done && !rp.lost && clock_mono_s() - x->last_flush >= flush_s &&
            (job_run_flush(x) != RUN_OK || job_run_check_state(x) != RUN_OK))
            goto end;
    }
    if (rp.lost || x->step != x->total || x->last_ckpt != x->step) {
        rank_lost(x, &rp);
        goto end;
    }
    int rc = store_job_finish(r->store, x->id, x->attempt, JOB_SUCCEEDED, NULL, NULL, &err);
    if (rc == STORE_FULL)
        job_run_store_fail(x, rc, "the end state", &err);
    else if (rc == STORE_ERROR)
        fprintf(stderr, "dimd: job %lld: recording success: %s\n", (long long)x->id, err.msg);
end:
    rank_proc_end(x, &rp);
    x->ranks = NULL;
}
