/* inference.c - the model cache, the batching queue and the encode threads (see
 * inference.h for the design). One file of about 870 lines because one mutex
 * guards the cache, the queue and the threads' hand-offs: split, the locking
 * rules below would span files. The search itself is service/neighbors.c.
 *
 * Locking: one mutex, e->mu, guards the cache list, every entry's refs/loading/
 * last_used, the request queue, the counters and the stop flag. Nothing slow
 * runs under it: store reads, checkpoint parsing, forward passes, copies and
 * neighbour searches all run unlocked. A loaded entry's model and index are
 * immutable and freed only when its refcount is 0 (callers hold a reference
 * from lookup until their reply is written, so an entry in a batch is never
 * evicted).
 * Loading: the first caller inserts the entry with loading set and loads it
 * outside the lock; others asking for the same version wait on load_cv. A load
 * that fails removes the entry again; its waiters then try for themselves.
 * Batching: each request records its arrival. An encode thread takes the oldest
 * request and gathers later ones for the same entry and tap in queue order
 * while they fit in batch_max images. It runs the batch when it is full, when
 * the oldest request is wait_ms old, or when no caller inside the encoder could
 * still join it (every active request is in the batch or queued for another
 * model or tap): waiting then could only catch a request not yet sent, and a
 * lone caller would pay wait_ms for nothing. Under load requests pile up while
 * a batch computes, so the next batch forms on its own and grows with the load
 * (up to batch_max): N busy callers settle into two groups of about N/2 taking
 * turns, one computing while the other's answers and next requests go through
 * HTTP. Waiting for the answered group to come back instead (batches of N) was
 * measured slower over HTTP: 0.95-1.08 of the batched limit against 1.36-1.55
 * (bench_encode, 64 clients, same run), the encode thread idle while it waited.
 * Lifetime: every public call counts itself in e->calls; inference_stop wakes all
 * waiters with INFERENCE_STOPPING (a request running in chunks stops after its
 * current pass, also with INFERENCE_STOPPING; a gathered batch finishes) and frees
 * only when e->calls is back to 0.
 */
#include "service/inference.h"
#include "util/clock.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/blas.h"
#include "base/parallel.h"
#include "dim/checkpoint.h"
#include "dim/infer.h"
#include "util/threadpool.h"
#include "store/models.h"

/* ---- types ---- */

struct entry {
    char name[MODEL_NAME_MAX];
    int version;
    uint64_t id;        /* unique per load: encode threads key their workspace on it */
    int refs;           /* under mu */
    bool loading;       /* under mu */
    uint64_t last_used; /* under mu: e->tick at the latest lookup */
    uint64_t checked;   /* under mu: store_models_generation when the store last had it */
    uint64_t newest;    /* under mu: that generation when it was also the newest (0: not) */
    struct dim_model *m;   /* as stored: the reference, and the shapes */
    struct dim_infer *inf; /* its inference-only form: what the encode threads run */
    struct inference_model_info info;
    size_t in_size; /* floats per input image */
    float *vectors;
    uint16_t *labels;
    int64_t index_n;
    int index_dim;
    struct entry *next;
};

struct request {
    struct entry *ent;
    enum dim_tap tap;
    const float *x;
    size_t n;
    float *out;
    double t_arrive;
    int status;
    bool done;
    struct dim_err err;
    pthread_cond_t cv;
    struct request *next;
};

struct ethread {
    struct inference *e;
    int index;
    pthread_t thread;
    struct dim_infer_ws ws;
    uint64_t ws_id; /* entry id ws was made for (0: none) */
    float *xbuf;
    size_t xcap; /* floats */
    struct request **batch;
};

struct inference {
    struct dimd_store *store;
    struct inference_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* queue changed, a batch finished, or stopping */
    pthread_cond_t load_cv; /* a load finished */
    pthread_cond_t idle_cv; /* calls dropped to 0 while stopping */
    bool stopping;
    atomic_bool stop_flag; /* stopping, for a chunked request between its passes */
    int calls;             /* callers inside a public function */
    /* cache */
    struct entry *cache;
    int n_cached;
    uint64_t tick, next_id;
    /* queue */
    struct request *head, *tail;
    int queued_images;
    int active; /* requests queued or being computed */
    /* stats */
    uint64_t requests, images, batches;
    double forward_s; /* wall-clock seconds in forward passes, summed over encode threads */
    /* threads */
    int n_threads, n_started;
    struct ethread *t;
};

/* ---- small helpers ---- */

/* Enters a public call: STOPPING when inference_stop has begun. */
static int call_enter(struct inference *e, struct dim_err *err)
{
    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        pthread_mutex_unlock(&e->mu);
        return dim_fail(err, DIM_ECANCELLED, "the encoder is stopping"), INFERENCE_STOPPING;
    }
    e->calls++;
    pthread_mutex_unlock(&e->mu);
    return INFERENCE_OK;
}

static void call_leave_locked(struct inference *e)
{
    e->calls--;
    if (e->stopping && e->calls == 0)
        pthread_cond_broadcast(&e->idle_cv);
}

static void call_leave(struct inference *e)
{
    pthread_mutex_lock(&e->mu);
    call_leave_locked(e);
    pthread_mutex_unlock(&e->mu);
}

/* ---- cache ---- */

static void entry_free(struct entry *ent)
{
    if (!ent)
        return;
    dim_infer_free(ent->inf);
    dim_model_free(ent->m);
    free(ent->vectors);
    free(ent->labels);
    free(ent);
}

/* Unlinks ent from the cache list (under mu). */
static void cache_unlink(struct inference *e, struct entry *ent)
{
    for (struct entry **pp = &e->cache; *pp; pp = &(*pp)->next)
        if (*pp == ent) {
            *pp = ent->next;
            ent->next = NULL;
            if (!ent->loading)
                e->n_cached--;
            return;
        }
}

/* Unlinks least recently used idle entries while more than cache_max are
 * loaded (under mu); returns them as a list for entry_free outside the lock. */
static struct entry *cache_trim(struct inference *e)
{
    struct entry *out = NULL;
    while (e->n_cached > e->cfg.cache_max) {
        struct entry *lru = NULL;
        for (struct entry *x = e->cache; x; x = x->next)
            if (!x->loading && x->refs == 0 && (!lru || x->last_used < lru->last_used))
                lru = x;
        if (!lru)
            break; /* every one is in use: trimmed when released */
        cache_unlink(e, lru);
        lru->next = out;
        out = lru;
    }
    return out;
}

static void free_list(struct entry *l)
{
    while (l) {
        struct entry *n = l->next;
        entry_free(l);
        l = n;
    }
}

static void entry_release(struct inference *e, struct entry *ent)
{
    pthread_mutex_lock(&e->mu);
    ent->refs--;
    struct entry *gone = ent->refs == 0 ? cache_trim(e) : NULL;
    pthread_mutex_unlock(&e->mu);
    free_list(gone);
}


/* INFERENCE_NOT_FOUND for a name or version no store could hold; the store's own
 * NOT_FOUND messages say the rest ("no model NAME", "model NAME has no versions",
 * "model NAME has no version N"). */
static int bad_name(const char *name, int version, struct dim_err *err)
{
    if (!model_name_ok(name))
        return dim_fail(err, DIM_ENOENT, "no model %.80s", name ? name : "(null)"),
               INFERENCE_NOT_FOUND;
    return dim_fail(err, DIM_ENOENT, "model %s has no version %d", name, version),
           INFERENCE_NOT_FOUND;
}

static int store_failed(int rc, const char *name, int version, const struct dim_err *serr,
                        struct dim_err *err)
{
    if (rc == STORE_NOT_FOUND) {
        if (err)
            *err = *serr;
        if (err && !err->msg[0])
            dim_fail(err, DIM_ENOENT, "model %s has no version %d", name, version);
        return INFERENCE_NOT_FOUND;
    }
    return dim_fail(err, serr->code ? serr->code : DIM_EIO, "model %s version %d: store: %s", name,
                    version, serr->msg),
           INFERENCE_ERROR;
}

/* Reads version ent->version of ent->name from the store into ent (unlocked). */
static int entry_load(struct inference *e, struct entry *ent, struct dim_err *err)
{
    struct store_model_version row;
    memset(&row, 0, sizeof row);
    void *ckpt = NULL;
    float *vec = NULL;
    uint16_t *lab = NULL;
    struct dim_err serr;
    dim_err_clear(&serr);
    int rc = store_model_get(e->store, ent->name, ent->version, &row, &ckpt, &vec, &lab, &serr);
    if (rc != STORE_OK) {
        store_model_version_clear(&row);
        return store_failed(rc, ent->name, ent->version, &serr, err);
    }
    struct dim_memsrc src = {ckpt, ckpt ? (size_t)row.bytes : 0, 0};
    struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_model *m = NULL;
    struct dim_err cerr;
    dim_err_clear(&cerr);
    rc = dim_checkpoint_read(&m, NULL, false, &rd, &cerr);
    free(ckpt);
    const char *stage = "checkpoint";
    /* the inference form is built here, at load, not stored: every stored version
     * keeps loading, and the checkpoint stays the one artefact its sha256 names */
    if (rc == 0 && (rc = dim_infer_create(&ent->inf, m, &cerr)) != 0) {
        stage = "inference form";
        dim_model_free(m);
        m = NULL;
    }
    if (rc != 0) {
        dim_fail(err, rc, "model %s version %d: %s: %s", ent->name, ent->version, stage, cerr.msg);
        store_model_version_clear(&row);
        free(vec);
        free(lab);
        return INFERENCE_ERROR;
    }
    ent->m = m;
    ent->in_size = (size_t)m->cfg.in_c * (size_t)m->in_h * (size_t)m->in_w;
    struct inference_model_info *in = &ent->info;
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", ent->name);
    in->version = ent->version;
    memcpy(in->sha256, row.sha256, sizeof in->sha256);
    in->sha256[64] = '\0';
    in->in_c = m->cfg.in_c;
    in->in_h = m->in_h;
    in->in_w = m->in_w;
    in->dim[DIM_TAP_CONV] = dim_model_tap_size(m, DIM_TAP_CONV);
    in->dim[DIM_TAP_FC] = dim_model_tap_size(m, DIM_TAP_FC);
    in->dim[DIM_TAP_Y] = dim_model_tap_size(m, DIM_TAP_Y);
    in->dim[DIM_TAP_LOCAL] = (size_t)m->local_c;
    if (vec && lab && row.index_images > 0 && row.index_dim > 0) {
        ent->vectors = vec;
        ent->labels = lab;
        ent->index_n = row.index_images;
        ent->index_dim = row.index_dim;
        in->index_images = row.index_images;
    } else {
        free(vec);
        free(lab);
    }
    store_model_version_clear(&row);
    return INFERENCE_OK;
}

/* The cached entry that the store said, at generation gen, is name at version
 * (0: the newest), or NULL (under mu). */
static struct entry *cache_find(struct inference *e, const char *name, int version, uint64_t gen)
{
    for (struct entry *x = e->cache; x; x = x->next)
        if (!x->loading && strcmp(x->name, name) == 0 &&
            (version ? x->version == version && x->checked == gen : x->newest == gen))
            return x;
    return NULL;
}

/* Finds or loads model name at version (0: the newest) and takes a reference.
 * The store is asked whenever its models generation has moved since the entry
 * was last confirmed, so a deleted version is not found even while it is still
 * cached, and version 0 follows new versions; between changes a lookup is a
 * walk of the cache list. */
static int entry_get(struct inference *e, const char *name, int version, struct entry **out,
                     struct dim_err *err)
{
    *out = NULL;
    if (!model_name_ok(name) || version < 0)
        return bad_name(name, version, err);
    const uint64_t gen = store_models_generation(e->store); /* before the store is read */
    pthread_mutex_lock(&e->mu);
    struct entry *hit = cache_find(e, name, version, gen);
    if (hit) {
        hit->refs++;
        hit->last_used = ++e->tick;
        pthread_mutex_unlock(&e->mu);
        *out = hit;
        return INFERENCE_OK;
    }
    pthread_mutex_unlock(&e->mu);
    struct store_model_version row;
    memset(&row, 0, sizeof row);
    struct dim_err serr;
    dim_err_clear(&serr);
    int rc = store_model_get(e->store, name, version, &row, NULL, NULL, NULL, &serr);
    int v = row.version;
    store_model_version_clear(&row);
    if (rc != STORE_OK)
        return store_failed(rc, name, version, &serr, err);
    if (v < 1)
        return bad_name(name, version, err);

    pthread_mutex_lock(&e->mu);
    for (;;) {
        struct entry *ent = NULL;
        for (struct entry *x = e->cache; x; x = x->next)
            if (x->version == v && strcmp(x->name, name) == 0) {
                ent = x;
                break;
            }
        if (ent && ent->loading) {
            pthread_cond_wait(&e->load_cv, &e->mu);
            continue; /* it may have failed and gone */
        }
        if (ent) {
            ent->refs++;
            ent->last_used = ++e->tick;
            ent->checked = gen;
            if (version == 0)
                ent->newest = gen;
            pthread_mutex_unlock(&e->mu);
            *out = ent;
            return INFERENCE_OK;
        }
        break;
    }
    struct entry *ent = calloc(1, sizeof *ent);
    if (!ent) {
        pthread_mutex_unlock(&e->mu);
        return dim_fail(err, DIM_ENOMEM, "out of memory for a model cache entry"), INFERENCE_ERROR;
    }
    snprintf(ent->name, sizeof ent->name, "%s", name);
    ent->version = v;
    ent->id = ++e->next_id;
    ent->refs = 1;
    ent->loading = true;
    ent->next = e->cache;
    e->cache = ent;
    pthread_mutex_unlock(&e->mu);

    rc = entry_load(e, ent, err);

    pthread_mutex_lock(&e->mu);
    struct entry *gone = NULL;
    if (rc != INFERENCE_OK) {
        cache_unlink(e, ent); /* still loading: not counted */
    } else {
        ent->loading = false;
        ent->last_used = ++e->tick;
        ent->checked = gen;
        ent->newest = version == 0 ? gen : 0;
        e->n_cached++;
        gone = cache_trim(e);
    }
    pthread_cond_broadcast(&e->load_cv);
    pthread_mutex_unlock(&e->mu);
    free_list(gone);
    if (rc != INFERENCE_OK) {
        entry_free(ent);
        return rc;
    }
    *out = ent;
    return INFERENCE_OK;
}

/* ---- encode threads ---- */

/* Makes t's workspace and input buffer fit ent's model. */
static int thread_prepare(struct ethread *t, const struct entry *ent, struct dim_err *err)
{
    size_t cap = (size_t)t->e->cfg.batch_max;
    if (t->ws_id != ent->id) {
        dim_infer_ws_free(&t->ws);
        t->ws_id = 0;
        int rc = dim_infer_ws_create(&t->ws, ent->inf, cap, err);
        if (rc != 0)
            return rc;
        t->ws_id = ent->id;
    }
    size_t need = cap * ent->in_size;
    if (t->xcap < need) {
        float *p = realloc(t->xbuf, sizeof(float) * need);
        if (!p)
            return dim_fail(err, DIM_ENOMEM, "out of memory for an encode batch of %zu images",
                            cap);
        t->xbuf = p;
        t->xcap = need;
    }
    return 0;
}

/* Copies rows [0, B) of tap features f into out (B rows of info.dim[tap]). */
static void scatter(const struct entry *ent, enum dim_tap tap, const float *f, size_t B, float *out)
{
    const struct dim_model *m = ent->m;
    if (tap != DIM_TAP_LOCAL) {
        memcpy(out, f, sizeof(float) * B * ent->info.dim[tap]);
        return;
    }
    size_t c = (size_t)m->local_c, hw = (size_t)m->local_h * (size_t)m->local_w;
    for (size_t b = 0; b < B; b++)
        for (size_t k = 0; k < c; k++) {
            const float *p = f + (b * c + k) * hw;
            double s = 0;
            for (size_t i = 0; i < hw; i++)
                s += p[i];
            out[b * c + k] = (float)(s / (double)hw);
        }
}

/* Runs one gathered batch (G requests, same entry and tap) unlocked. */
static int run_batch(struct ethread *t, struct request **rs, int G, uint64_t *passes,
                     double *forward_s, struct dim_err *err)
{
    const struct entry *ent = rs[0]->ent;
    enum dim_tap tap = rs[0]->tap;
    size_t cap = (size_t)t->e->cfg.batch_max, dim = ent->info.dim[tap];
    int rc = thread_prepare(t, ent, err);
    if (rc != 0)
        return rc;
    if (G == 1) { /* straight from the caller's inputs, in chunks of batch_max */
        struct request *r = rs[0];
        for (size_t at = 0; at < r->n; at += cap) {
            if (at > 0 && atomic_load(&t->e->stop_flag))
                return dim_fail(err, DIM_ECANCELLED, "the encoder is stopping");
            size_t B = r->n - at < cap ? r->n - at : cap;
            const double t0 = clock_mono_s();
            const float *f = dim_infer_encode(ent->inf, &t->ws, r->x + at * ent->in_size, B, tap);
            *forward_s += clock_mono_s() - t0;
            scatter(ent, tap, f, B, r->out + at * dim);
            (*passes)++;
        }
        return 0;
    }
    size_t B = 0;
    for (int i = 0; i < G; i++) {
        memcpy(t->xbuf + B * ent->in_size, rs[i]->x, sizeof(float) * rs[i]->n * ent->in_size);
        B += rs[i]->n;
    }
    const double t0 = clock_mono_s();
    const float *f = dim_infer_encode(ent->inf, &t->ws, t->xbuf, B, tap);
    *forward_s += clock_mono_s() - t0;
    size_t row = 0;
    for (int i = 0; i < G; i++) {
        size_t fs = tap == DIM_TAP_LOCAL ? dim_model_tap_size(ent->m, DIM_TAP_LOCAL) : dim;
        scatter(ent, tap, f + row * fs, rs[i]->n, rs[i]->out);
        row += rs[i]->n;
    }
    (*passes)++;
    return 0;
}

/* Under mu: picks the next batch into t->batch. Returns its request count, 0
 * when the caller should wait (until *deadline when > 0, else for work). */
static int pick_batch(struct ethread *t, double now, double *deadline)
{
    struct inference *e = t->e;
    *deadline = 0;
    struct request *h = e->head;
    if (!h)
        return 0;
    size_t cap = (size_t)e->cfg.batch_max;
    int G = 0, others = 0;
    size_t B = 0;
    bool full = false;
    if (h->n >= cap) {
        t->batch[G++] = h;
        full = true;
    } else {
        for (struct request *r = h; r; r = r->next) {
            if (r->ent != h->ent || r->tap != h->tap) {
                others++;
                continue;
            }
            if (full || B + r->n > cap) {
                others++; /* queued, cannot join this batch */
                continue;
            }
            t->batch[G++] = r;
            B += r->n;
            if (B == cap)
                full = true;
        }
    }
    double due = h->t_arrive + (double)e->cfg.wait_ms * 1e-3;
    bool nobody_else = G + others >= e->active; /* every active caller is queued, none can join */
    if (!full && !nobody_else && now < due) {
        *deadline = due;
        return 0;
    }
    /* unlink the batch from the queue */
    for (int i = 0; i < G; i++) {
        struct request **pp = &e->head, *prev = NULL;
        while (*pp != t->batch[i]) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = t->batch[i]->next;
        if (e->tail == t->batch[i])
            e->tail = prev;
        t->batch[i]->next = NULL;
        e->queued_images -= (int)t->batch[i]->n;
    }
    return G;
}

static void *thread_main(void *arg)
{
    struct ethread *t = arg;
    struct inference *e = t->e;
    struct threadpool *pool = NULL;
    if (e->cfg.compute_threads > 1) {
        pool = threadpool_create(e->cfg.compute_threads - 1);
        if (pool)
            dim_parallel_use(threadpool_parallel(pool));
        else
            fprintf(stderr,
                    "dimd: encode thread %d: cannot start %d compute threads; "
                    "running serially\n",
                    t->index, e->cfg.compute_threads - 1);
    }
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        double deadline;
        int G = pick_batch(t, clock_mono_s(), &deadline);
        if (G == 0) {
            if (deadline > 0) {
                struct timespec ts = clock_mono_ts(deadline);
                pthread_cond_timedwait(&e->work_cv, &e->mu, &ts);
            } else {
                pthread_cond_wait(&e->work_cv, &e->mu);
            }
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        struct dim_err err;
        dim_err_clear(&err);
        uint64_t passes = 0;
        double forward_s = 0;
        int rc = run_batch(t, t->batch, G, &passes, &forward_s, &err);
        pthread_mutex_lock(&e->mu);
        for (int i = 0; i < G; i++) {
            struct request *r = t->batch[i];
            r->status = rc == 0                ? INFERENCE_OK
                        : rc == DIM_ECANCELLED ? INFERENCE_STOPPING
                                               : INFERENCE_ERROR;
            if (rc != 0)
                r->err = err;
            r->done = true;
            pthread_cond_signal(&r->cv);
            e->images += r->n;
        }
        e->active -= G;
        e->batches += passes;
        e->forward_s += forward_s;
        pthread_cond_broadcast(&e->work_cv); /* a gatherer may stop waiting for these */
    }
    pthread_mutex_unlock(&e->mu);
    dim_infer_ws_free(&t->ws);
    free(t->xbuf);
    t->xbuf = NULL;
    dim_parallel_use(NULL);
    threadpool_free(pool);
    return NULL;
}

/* ---- public ---- */

static void inference_free(struct inference *e)
{
    free_list(e->cache);
    if (e->t)
        for (int i = 0; i < e->n_threads; i++)
            free(e->t[i].batch);
    free(e->t);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->load_cv);
    pthread_cond_destroy(&e->idle_cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int inference_start(struct inference **out, struct dimd_store *store, const struct inference_config *cfg,
                  struct dim_err *err)
{
    *out = NULL;
    if (!store || !cfg)
        return dim_fail(err, DIM_EINVAL, "encoder needs a store and a config"), INFERENCE_ERROR;
    if (cfg->threads < 1 || cfg->threads > 1024)
        return dim_fail(err, DIM_EINVAL, "encode threads %d must be in [1, 1024]", cfg->threads),
               INFERENCE_ERROR;
    if (cfg->compute_threads < 1 || cfg->compute_threads > 1024)
        return dim_fail(err, DIM_EINVAL, "encode compute_threads %d must be in [1, 1024]",
                        cfg->compute_threads),
               INFERENCE_ERROR;
    if (cfg->batch_max < 1 || cfg->batch_max > 65536)
        return dim_fail(err, DIM_EINVAL, "encode batch_max %d must be in [1, 65536]",
                        cfg->batch_max),
               INFERENCE_ERROR;
    if (cfg->wait_ms < 0 || cfg->wait_ms > 60000)
        return dim_fail(err, DIM_EINVAL, "encode wait_ms %d must be in [0, 60000]", cfg->wait_ms),
               INFERENCE_ERROR;
    if (cfg->queue_max < 1)
        return dim_fail(err, DIM_EINVAL, "encode queue_max %d must be >= 1", cfg->queue_max),
               INFERENCE_ERROR;
    if (cfg->cache_max < 1)
        return dim_fail(err, DIM_EINVAL, "model cache_max %d must be >= 1", cfg->cache_max),
               INFERENCE_ERROR;
    struct inference *e = calloc(1, sizeof *e);
    if (!e)
        return dim_fail(err, DIM_ENOMEM, "out of memory for the encoder"), INFERENCE_ERROR;
    e->store = store;
    e->cfg = *cfg;
    atomic_init(&e->stop_flag, false);
    pthread_mutex_init(&e->mu, NULL);
    clock_cond_init(&e->work_cv);
    clock_cond_init(&e->load_cv);
    clock_cond_init(&e->idle_cv);
    e->n_threads = cfg->threads;
    e->t = calloc((size_t)e->n_threads, sizeof *e->t);
    if (!e->t) {
        inference_free(e);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %d encode threads", cfg->threads),
               INFERENCE_ERROR;
    }
    for (int i = 0; i < e->n_threads; i++) {
        e->t[i].e = e;
        e->t[i].index = i;
        e->t[i].batch = malloc(sizeof(struct request *) * (size_t)cfg->batch_max);
        if (!e->t[i].batch) {
            inference_free(e);
            return dim_fail(err, DIM_ENOMEM, "out of memory for %d encode threads", cfg->threads),
                   INFERENCE_ERROR;
        }
    }
    /* process-wide (as the runner sets it): each encode thread splits over its own pool */
    nn_blas_set_threads(1);
    for (int i = 0; i < e->n_threads; i++) {
        int rc = pthread_create(&e->t[i].thread, NULL, thread_main, &e->t[i]);
        if (rc != 0) {
            dim_fail(err, DIM_ENOMEM, "cannot start encode thread %d of %d: %s", i + 1,
                     e->n_threads, strerror(rc));
            inference_stop(e);
            return INFERENCE_ERROR;
        }
        e->n_started++;
    }
    *out = e;
    return INFERENCE_OK;
}

void inference_stop(struct inference *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    atomic_store(&e->stop_flag, true);
    for (struct request *r = e->head; r;) {
        struct request *n = r->next;
        r->next = NULL;
        r->status = INFERENCE_STOPPING;
        dim_fail(&r->err, DIM_ECANCELLED, "the encoder is stopping");
        r->done = true;
        pthread_cond_signal(&r->cv);
        e->active--;
        r = n;
    }
    e->head = e->tail = NULL;
    e->queued_images = 0;
    pthread_cond_broadcast(&e->work_cv);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->n_started; i++)
        pthread_join(e->t[i].thread, NULL);
    /* requests the threads were computing have been answered; wait for their callers */
    pthread_mutex_lock(&e->mu);
    while (e->calls > 0)
        pthread_cond_wait(&e->idle_cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    inference_free(e);
}

/* Counts the caller in (call_enter) and takes a reference to the version's
 * entry; on failure neither is held. */
static int enter_with_entry(struct inference *e, const char *name, int version, struct entry **ent,
                            struct dim_err *err)
{
    int rc = call_enter(e, err);
    if (rc != INFERENCE_OK)
        return rc;
    rc = entry_get(e, name, version, ent, err);
    if (rc != INFERENCE_OK)
        call_leave(e);
    return rc;
}

static void info_copy(struct inference_model_info *info, const struct entry *ent)
{
    if (info)
        *info = ent->info;
}

int inference_model(struct inference *e, const char *name, int version, struct inference_model_info *info,
                  struct dim_err *err)
{
    struct entry *ent;
    int rc = enter_with_entry(e, name, version, &ent, err);
    if (rc != INFERENCE_OK)
        return rc;
    info_copy(info, ent);
    entry_release(e, ent);
    call_leave(e);
    return rc;
}

int inference_encode(struct inference *e, const char *name, int version, enum dim_tap tap,
                   const float *x, size_t n, float **out, struct inference_model_info *info,
                   struct dim_err *err)
{
    if (out)
        *out = NULL;
    if (!out || !x)
        return dim_fail(err, DIM_EINVAL, "encode needs inputs and an output"), INFERENCE_ERROR;
    if (n == 0)
        return dim_fail(err, DIM_EINVAL, "encode needs at least one input"), INFERENCE_ERROR;
    if ((int)tap < 0 || (int)tap > DIM_TAP_LOCAL)
        return dim_fail(err, DIM_EINVAL, "unknown tap %d", (int)tap), INFERENCE_ERROR;
    struct entry *ent;
    int rc = enter_with_entry(e, name, version, &ent, err);
    if (rc != INFERENCE_OK)
        return rc;
    info_copy(info, ent);
    size_t dim = ent->info.dim[tap];
    float *y = NULL;
    if (n > SIZE_MAX / sizeof(float) / (ent->in_size > dim ? ent->in_size : dim) ||
        n > (size_t)INT32_MAX || !(y = malloc(sizeof(float) * n * dim))) {
        entry_release(e, ent);
        call_leave(e);
        return dim_fail(err, DIM_ENOMEM, "out of memory for %zu embeddings of %zu floats", n, dim),
               INFERENCE_ERROR;
    }
    struct request r;
    memset(&r, 0, sizeof r);
    r.ent = ent;
    r.tap = tap;
    r.x = x;
    r.n = n;
    r.out = y;
    pthread_cond_init(&r.cv, NULL);

    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        rc = INFERENCE_STOPPING;
        dim_fail(err, DIM_ECANCELLED, "the encoder is stopping");
    } else if (e->queued_images > 0 && (size_t)e->queued_images + n > (size_t)e->cfg.queue_max) {
        rc = INFERENCE_QUEUE_FULL;
        dim_fail(err, DIM_ELIMIT,
                 "encode queue full: %d images wait, %zu more would exceed "
                 "queue_max %d",
                 e->queued_images, n, e->cfg.queue_max);
    } else {
        r.t_arrive = clock_mono_s();
        if (e->tail)
            e->tail->next = &r;
        else
            e->head = &r;
        e->tail = &r;
        e->queued_images += (int)n;
        e->active++;
        e->requests++;
        pthread_cond_broadcast(&e->work_cv);
        while (!r.done)
            pthread_cond_wait(&r.cv, &e->mu);
        rc = r.status;
        if (rc != INFERENCE_OK && err)
            *err = r.err;
    }
    pthread_mutex_unlock(&e->mu);
    pthread_cond_destroy(&r.cv);
    entry_release(e, ent);
    call_leave(e);
    if (rc == INFERENCE_OK)
        *out = y;
    else
        free(y);
    return rc;
}

int inference_neighbors(struct inference *e, const char *name, int version, const float *y, int k,
                        struct neighbor *out, size_t *n, struct dim_err *err)
{
    if (n)
        *n = 0;
    if (!y || !out || !n)
        return dim_fail(err, DIM_EINVAL, "neighbours need a query and an output"), INFERENCE_ERROR;
    if (k < 1)
        return dim_fail(err, DIM_EINVAL, "k %d must be >= 1", k), INFERENCE_ERROR;
    struct entry *ent;
    int rc = enter_with_entry(e, name, version, &ent, err);
    if (rc != INFERENCE_OK)
        return rc;
    size_t dim = ent->info.dim[DIM_TAP_Y];
    if (ent->index_n <= 0) {
        rc = INFERENCE_NOT_FOUND;
        dim_fail(err, DIM_ENOENT, "model %s version %d has no neighbours index", ent->name,
                 ent->version);
    } else if ((size_t)ent->index_dim != dim) {
        rc = INFERENCE_ERROR;
        dim_fail(err, DIM_EFORMAT,
                 "model %s version %d: neighbours index has %d-wide vectors, Y has %zu", ent->name,
                 ent->version, ent->index_dim, dim);
    } else if (neighbors_search(ent->vectors, ent->labels, (size_t)ent->index_n, dim, y,
                                (size_t)k, out, n, err) != 0) {
        rc = INFERENCE_ERROR;
    }
    entry_release(e, ent);
    call_leave(e);
    return rc;
}

void inference_get_stats(struct inference *e, struct inference_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->mu);
    out->requests = e->requests;
    out->images = e->images;
    out->batches = e->batches;
    out->forward_seconds = e->forward_s;
    out->queued_images = e->queued_images;
    out->cached_models = e->n_cached;
    pthread_mutex_unlock(&e->mu);
}
