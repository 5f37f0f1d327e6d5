/* dist.c - core's collectives on MPI (dist.h). */
#include "dist/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dist {
    int rank, size;
    struct dim_dist hooks;
    struct dist_stats st;
};

/* MPI counts are ints: larger buffers go in pieces of CHUNK elements. */
#define CHUNK ((size_t)1 << 30)

static int env_count(const char *v)
{
    long n = v ? strtol(v, NULL, 10) : 1;
    return n >= 1 && n <= INT_MAX ? (int)n : 1;
}

int dist_launched_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    return env_count(v ? v : getenv("PMI_SIZE"));
}

int dist_launched_local_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    return v ? env_count(v) : dist_launched_size();
}

static void account(struct dist *d, enum dist_kind k, size_t bytes, double t0)
{
    d->st.calls[k]++;
    d->st.bytes[k] += bytes;
    d->st.seconds[k] += MPI_Wtime() - t0;
}

static void sum_f32(void *ctx, float *buf, size_t n)
{
    struct dist *d = ctx;
    double t0 = MPI_Wtime();
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
    account(d, DIST_SUM_F32, n * sizeof(float), t0);
}

static void sum_f64(void *ctx, double *buf, size_t n)
{
    struct dist *d = ctx;
    double t0 = MPI_Wtime();
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_DOUBLE,
                      MPI_SUM, MPI_COMM_WORLD);
    account(d, DIST_SUM_F64, n * sizeof(double), t0);
}

static void max_f64(void *ctx, double *buf, size_t n)
{
    struct dist *d = ctx;
    double t0 = MPI_Wtime();
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_DOUBLE,
                      MPI_MAX, MPI_COMM_WORLD);
    account(d, DIST_SUM_F64, n * sizeof(double), t0);
}

static void gather_f32(void *ctx, float *all, const float *mine, size_t n)
{
    struct dist *d = ctx;
    double t0 = MPI_Wtime();
    if (n <= CHUNK) {
        MPI_Allgather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    } else { /* over 2^30 floats a rank: each rank's block broadcast piece by piece */
        for (size_t i = 0; i < n; i += CHUNK) {
            int c = (int)(n - i < CHUNK ? n - i : CHUNK);
            for (int k = 0; k < d->size; k++) {
                float *dst = all + (size_t)k * n + i;
                if (k == d->rank)
                    memcpy(dst, mine + i, sizeof(float) * (size_t)c);
                MPI_Bcast(dst, c, MPI_FLOAT, k, MPI_COMM_WORLD);
            }
        }
    }
    account(d, DIST_GATHER, n * sizeof(float), t0);
}

int dist_start(struct dist **out, char *msg, size_t msg_size)
{
    *out = NULL;
    /* a rank waiting in a collective yields its core instead of spinning on it (Open MPI
     * spins by default): ranks share a machine with their own compute threads and with
     * other work, and a spinning rank slows the very rank it waits for. The user's
     * setting (environment or mpirun --mca) wins. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) {
        snprintf(msg, msg_size, "MPI provides thread level %d, dimd needs MPI_THREAD_FUNNELED",
                 provided);
        MPI_Finalize();
        return -1;
    }
    struct dist *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(msg, msg_size, "out of memory");
        MPI_Finalize();
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->hooks = (struct dim_dist){.rank = d->rank, .size = d->size, .sum_f32 = sum_f32,
                                 .sum_f64 = sum_f64, .max_f64 = max_f64,
                                 .gather_f32 = gather_f32, .ctx = d};
    *out = d;
    return 0;
}

const struct dim_dist *dist_hooks(const struct dist *d)
{
    return &d->hooks;
}

int dist_rank(const struct dist *d)
{
    return d->rank;
}

int dist_size(const struct dist *d)
{
    return d->size;
}

void dist_bcast(struct dist *d, void *buf, size_t n)
{
    double t0 = MPI_Wtime();
    for (size_t i = 0; i < n; i += CHUNK)
        MPI_Bcast((char *)buf + i, (int)(n - i < CHUNK ? n - i : CHUNK), MPI_BYTE, 0,
                  MPI_COMM_WORLD);
    account(d, DIST_OTHER, n, t0);
}

int dist_any(struct dist *d, int flag)
{
    double t0 = MPI_Wtime();
    int v = flag != 0, any = 0;
    MPI_Allreduce(&v, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    account(d, DIST_OTHER, sizeof v, t0);
    return any;
}

void dist_allgather(struct dist *d, const void *mine, void *all, size_t n)
{
    double t0 = MPI_Wtime();
    MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
    account(d, DIST_OTHER, n, t0);
}

void dist_stats(const struct dist *d, struct dist_stats *s)
{
    *s = d->st;
}

const char *dist_kind_name(enum dist_kind k)
{
    static const char *const names[DIST_KINDS] = {"sum_f32", "sum_f64", "gather", "other"};
    return (unsigned)k < DIST_KINDS ? names[k] : "?";
}

void dist_finish(struct dist *d)
{
    if (!d)
        return;
    MPI_Finalize();
    free(d);
}
