/* threadpool.c - compute threads for core's parallel loops (see threadpool.h for the design). */
#include "util/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct worker {
    struct threadpool *pool;
    int index; /* 1..n: which part of the range it runs */
    pthread_t thread;
};

struct threadpool {
    int n;
    struct worker *w;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation;
    atomic_int pending;
    bool stop;
    dim_range_fn fn;
    void *ctx;
    size_t items;
    struct dim_parallel hook;
};

static void run_part(struct threadpool *p, int part)
{
    size_t parts = (size_t)p->n + 1;
    size_t b = p->items * (size_t)part / parts, e = p->items * (size_t)(part + 1) / parts;
    if (b < e)
        p->fn(p->ctx, b, e);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct threadpool *p = w->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->generation) == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        bool stop = p->stop;
        seen = atomic_load(&p->generation);
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return NULL;
        run_part(p, w->index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void pool_run(void *pool, dim_range_fn fn, void *ctx, size_t n)
{
    struct threadpool *p = pool;
    if (p->n == 0) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->items = n;
    atomic_store(&p->pending, p->n);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

struct threadpool *threadpool_create(int workers)
{
    if (workers < 0)
        return NULL;
    struct threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = workers;
    p->w = calloc((size_t)workers + 1, sizeof *p->w);
    if (!p->w) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    p->hook.run = pool_run;
    p->hook.pool = p;
    p->hook.width = workers + 1;
    for (int i = 0; i < workers; i++) {
        p->w[i].pool = p;
        p->w[i].index = i + 1;
        if (pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]) != 0) {
            p->n = i; /* join the ones that started */
            threadpool_free(p);
            return NULL;
        }
    }
    return p;
}

void threadpool_free(struct threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->w[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->w);
    free(p);
}

const struct dim_parallel *threadpool_parallel(struct threadpool *p)
{
    return &p->hook;
}
