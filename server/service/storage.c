/* storage.c - the storage guard (service/storage.h): free bytes of the state
 * directory, degraded mode in and out, the reserve file.
 * Every transition is logged on stderr ("dimd: storage: ..."), with the free
 * bytes, so an operator sees when and why writes stopped and started again.
 * Depends on libc (statvfs, posix_fallocate), util/clock, core/base.
 */
#include "service/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/clock.h"

struct storage {
    pthread_mutex_t mu;
    char *dir;
    char *reserve_path;
    int64_t min_free, reserve_bytes;
    int64_t held;     /* the reserve file's size, under mu */
    int64_t free_now; /* at the last measure, under mu */
    bool degraded;    /* under mu */
    bool fault;       /* a write failed since the daemon last left degraded mode */
    int64_t fault_free; /* free bytes after the last fault (its reserve given back) */
    uint64_t faults;
    int64_t since_ms;
    char reason[256];
};

static int64_t floor_of(const struct storage *s)
{
    return s->min_free > STORAGE_FLOOR_BYTES ? s->min_free : STORAGE_FLOOR_BYTES;
}

/* Free bytes needed to leave degraded mode: the floor, room to grow the reserve
 * back, the margin; after a failed write also more than there was after it
 * (space must have come back, or the same write fails again). */
static int64_t leave_of(const struct storage *s)
{
    int64_t need = floor_of(s) + (s->reserve_bytes - s->held) + STORAGE_MARGIN_BYTES;
    if (s->fault && s->fault_free + STORAGE_MARGIN_BYTES > need)
        need = s->fault_free + STORAGE_MARGIN_BYTES;
    return need;
}

/* Free bytes of the state directory's file system, or -1 (errno set). */
static int64_t measure(const struct storage *s)
{
    struct statvfs v;
    if (statvfs(s->dir, &v) != 0)
        return -1;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* Sizes the reserve file to `bytes` (0: removes it). Under mu. Returns 0, or -1
 * when the file system refused (the reserve keeps what it had). */
static int reserve_set(struct storage *s, int64_t bytes)
{
    if (bytes <= 0) {
        if (unlink(s->reserve_path) != 0 && errno != ENOENT)
            return -1;
        s->held = 0;
        return 0;
    }
    int fd = open(s->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (bytes < s->held) {
        rc = ftruncate(fd, bytes);
    } else if (bytes > s->held) {
        int e = posix_fallocate(fd, 0, bytes);
        if (e != 0) {
            if (ftruncate(fd, s->held) != 0) /* give back what the failed call took */
                fprintf(stderr, "dimd: storage: cannot truncate %s: %s\n", s->reserve_path,
                        strerror(errno));
            errno = e;
            rc = -1;
        }
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    struct stat st;
    if (fstat(fd, &st) == 0)
        s->held = st.st_size;
    close(fd);
    return rc;
}

/* Truncates the reserve to half (nothing below STORAGE_FLOOR_BYTES / 16). Under
 * mu. Returns the bytes given back. */
static int64_t reserve_halve(struct storage *s)
{
    int64_t before = s->held;
    if (before <= 0)
        return 0;
    int64_t half = before / 2;
    if (half < STORAGE_FLOOR_BYTES / 16)
        half = 0;
    if (reserve_set(s, half) != 0)
        fprintf(stderr, "dimd: storage: cannot shrink the reserve %s: %s\n", s->reserve_path,
                strerror(errno));
    return before - s->held;
}

static void enter(struct storage *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void enter(struct storage *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    if (!s->degraded) {
        s->degraded = true;
        s->since_ms = clock_wall_ms();
        fprintf(stderr,
                "dimd: storage: read-mostly mode: %s (%lld bytes free, the reserve holds %lld; "
                "writes resume at %lld free)\n",
                s->reason, (long long)s->free_now, (long long)s->held, (long long)leave_of(s));
    }
}

/* Under mu: measures, and enters or leaves degraded mode. */
static void poll_locked(struct storage *s)
{
    int64_t f = measure(s);
    if (f < 0) {
        s->free_now = 0;
        enter(s, "cannot measure the state directory %s: %s", s->dir, strerror(errno));
        return;
    }
    s->free_now = f;
    if (f < floor_of(s)) {
        if (!s->degraded || !s->fault)
            enter(s, "the state directory %s has %lld bytes free, below %s %lld", s->dir,
                  (long long)f, s->min_free > STORAGE_FLOOR_BYTES ? "min_free_bytes" : "the floor",
                  (long long)floor_of(s));
        return;
    }
    if (f < leave_of(s)) /* degraded: not yet; else writes go on, the reserve grows later */
        return;
    if (s->held < s->reserve_bytes && reserve_set(s, s->reserve_bytes) != 0) {
        fprintf(stderr, "dimd: storage: cannot allocate the reserve %s (%lld bytes): %s\n",
                s->reserve_path, (long long)s->reserve_bytes, strerror(errno));
        return;
    }
    s->free_now = measure(s);
    if (s->degraded) {
        fprintf(stderr,
                "dimd: storage: writes accepted again: %lld bytes free, the reserve holds %lld "
                "(read-mostly for %.1f s)\n",
                (long long)s->free_now, (long long)s->held,
                (double)(clock_wall_ms() - s->since_ms) / 1000.0);
        s->degraded = false;
        s->fault = false;
        s->since_ms = 0;
        s->reason[0] = '\0';
    }
}

int storage_create(struct storage **out, const struct storage_config *cfg, struct dim_err *err)
{
    *out = NULL;
    if (!cfg->dir || cfg->min_free_bytes < 0 || cfg->reserve_bytes < 0)
        return dim_fail(err, DIM_EINVAL, "storage: a directory and sizes >= 0 are needed");
    struct storage *s = calloc(1, sizeof *s);
    size_t n = strlen(cfg->dir) + sizeof "/reserve";
    if (!s || !(s->dir = strdup(cfg->dir)) || !(s->reserve_path = malloc(n))) {
        if (s)
            free(s->dir);
        free(s);
        return dim_fail(err, DIM_ENOMEM, "storage: out of memory");
    }
    snprintf(s->reserve_path, n, "%s/reserve", cfg->dir);
    pthread_mutex_init(&s->mu, NULL);
    s->min_free = cfg->min_free_bytes;
    s->reserve_bytes = cfg->reserve_bytes;
    struct stat st;
    if (stat(s->reserve_path, &st) == 0)
        s->held = st.st_size;
    if (measure(s) < 0) {
        int e = errno;
        storage_free(s);
        return dim_fail(err, DIM_EIO, "storage: cannot measure the free space of %s: %s",
                        cfg->dir, strerror(e));
    }
    if (s->reserve_bytes == 0 && s->held > 0) /* the reserve was turned off */
        reserve_set(s, 0);
    pthread_mutex_lock(&s->mu);
    poll_locked(s);
    pthread_mutex_unlock(&s->mu);
    *out = s;
    return 0;
}

void storage_free(struct storage *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->reserve_path);
    free(s->dir);
    free(s);
}

bool storage_poll(struct storage *s)
{
    pthread_mutex_lock(&s->mu);
    poll_locked(s);
    bool d = s->degraded;
    pthread_mutex_unlock(&s->mu);
    return d;
}

void storage_report(struct storage *s, const char *what)
{
    pthread_mutex_lock(&s->mu);
    s->faults++;
    /* the reserve first, so the log line below has the free bytes after it */
    int64_t given = reserve_halve(s);
    int64_t f = measure(s);
    s->fault_free = s->free_now = f < 0 ? 0 : f;
    bool was = s->degraded;
    int64_t since = s->since_ms;
    s->fault = true;
    s->degraded = false; /* enter() logs every fault, with its reason */
    enter(s, "a write failed: %s", what ? what : "no space");
    if (was)
        s->since_ms = since;
    if (given > 0)
        fprintf(stderr, "dimd: storage: gave back %lld bytes of the reserve (%lld left)\n",
                (long long)given, (long long)s->held);
    pthread_mutex_unlock(&s->mu);
}

int64_t storage_release(struct storage *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t given = reserve_halve(s);
    int64_t f = measure(s);
    s->free_now = f < 0 ? 0 : f;
    if (given > 0)
        fprintf(stderr, "dimd: storage: gave back %lld bytes of the reserve (%lld left)\n",
                (long long)given, (long long)s->held);
    pthread_mutex_unlock(&s->mu);
    return given;
}

bool storage_degraded(struct storage *s)
{
    pthread_mutex_lock(&s->mu);
    bool d = s->degraded;
    pthread_mutex_unlock(&s->mu);
    return d;
}

static void status_locked(const struct storage *s, struct storage_status *o)
{
    memset(o, 0, sizeof *o);
    o->degraded = s->degraded;
    o->free_bytes = s->free_now;
    o->min_free_bytes = s->min_free;
    o->floor_bytes = floor_of(s);
    o->leave_bytes = leave_of(s);
    o->reserve_bytes = s->reserve_bytes;
    o->reserve_held = s->held;
    o->faults = s->faults;
    o->since_ms = s->since_ms;
    snprintf(o->reason, sizeof o->reason, "%s", s->reason);
}

bool storage_admit(struct storage *s, int64_t bytes, struct storage_status *out)
{
    pthread_mutex_lock(&s->mu);
    int64_t f = measure(s);
    if (f >= 0)
        s->free_now = f;
    if (!s->degraded && f >= 0 && f < floor_of(s))
        enter(s, "the state directory %s has %lld bytes free, below %s %lld", s->dir,
              (long long)f, s->min_free > STORAGE_FLOOR_BYTES ? "min_free_bytes" : "the floor",
              (long long)floor_of(s));
    bool ok = !s->degraded;
    if (ok && bytes > 0 && s->free_now - bytes < floor_of(s)) {
        ok = false;
        if (out) {
            status_locked(s, out);
            snprintf(out->reason, sizeof out->reason,
                     "it needs about %lld bytes and would leave %lld of the %lld free, below %s "
                     "%lld",
                     (long long)bytes, (long long)(s->free_now - bytes), (long long)s->free_now,
                     s->min_free > STORAGE_FLOOR_BYTES ? "min_free_bytes" : "the floor",
                     (long long)floor_of(s));
            out->leave_bytes = bytes + floor_of(s);
        }
    } else if (!ok && out) {
        status_locked(s, out);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void storage_get(struct storage *s, struct storage_status *out)
{
    pthread_mutex_lock(&s->mu);
    status_locked(s, out);
    pthread_mutex_unlock(&s->mu);
}
