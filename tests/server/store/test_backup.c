/* test_backup.c - the online backup (store/backup.h): the copy has every row
 * and checkpoint byte of the source, is a self-contained rollback-journal file
 * readable by the owner only, is consistent and finishes while another thread
 * keeps committing (no restart: the steps match the pages), and the daemon's
 * temporary copy is one at a time, leaves no file behind and is swept after a
 * crash; cancel, and sources that are not dimd databases.
 *
 * Every test runs against real database files in a mkdtemp directory under
 * /tmp, removed afterwards (tests/support/storefix.h).
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store/backup.h"
#include "store/check.h"
#include "store/metrics.h"
#include "storefix.h"

#define CKPT_BYTES (256 * 1024)

/* A job with two checkpoints and some metric points; returns its id. */
static int64_t fill(struct dimd_store *s)
{
    struct store_retention keep = {5, 0, "", false};
    int64_t id = storefix_running_job(s);
    storefix_put_ckpt(s, id, 10, CKPT_BYTES, "{}", &keep);
    storefix_put_ckpt(s, id, 20, CKPT_BYTES + 7, "{}", &keep);
    struct dim_err err = {0};
    for (int64_t step = 1; step <= 20; step++) {
        struct store_metric m = {"loss_total", step, 1.0 / (double)step, 1000 + step};
        assert_int_equal(store_metrics_append(s, id, 1, &m, 1, step, 10.0, &err), STORE_OK);
    }
    return id;
}

static void test_backup_has_everything(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = fill(f->s);
    struct storefix_mv mv;
    storefix_mv_make(&mv, 100000, 50, 8, 3);
    storefix_mv_create(f->s, "fm", id, 20, &mv, false);
    char out[160];
    snprintf(out, sizeof out, "%s/copy.db", f->dir);
    struct store_backup_info info = {0};
    assert_int_equal(store_backup_file(f->path, out, 0, NULL, NULL, &info, &err), STORE_OK);
    assert_int_equal(info.page_size, storefix_raw_int(f->path, "PRAGMA page_size"));
    assert_int_equal(info.pages, storefix_raw_int(f->path, "PRAGMA page_count"));
    assert_int_equal(info.bytes, info.pages * info.page_size);
    assert_int_equal(info.steps, 1); /* 1024 pages per step hold this database */
    assert_true(info.seconds >= 0);
    /* one self-contained file: rollback journal (header bytes 18 and 19 are 1,
     * 2 in WAL mode), no -wal beside it, owner-only, nothing left at .tmp */
    unsigned char h[100];
    int fd = open(out, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, h, sizeof h), (ssize_t)sizeof h);
    close(fd);
    assert_memory_equal(h, "SQLite format 3", 16);
    assert_int_equal(h[18], 1);
    assert_int_equal(h[19], 1);
    char p[200];
    snprintf(p, sizeof p, "%s-wal", out);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s.tmp", out);
    assert_int_not_equal(access(p, F_OK), 0);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, info.bytes);
    /* the same rows and bytes, and it checks clean */
    const char *counts[] = {"SELECT COUNT(*) FROM jobs",
                            "SELECT COUNT(*) FROM metrics",
                            "SELECT COUNT(*) FROM events",
                            "SELECT COUNT(*) FROM tokens",
                            "SELECT SUM(bytes) FROM checkpoints",
                            "SELECT COUNT(*) FROM model_versions",
                            "PRAGMA user_version"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        assert_int_equal(storefix_raw_int(out, counts[i]), storefix_raw_int(f->path, counts[i]));
    assert_int_equal(storefix_raw_int(out, "SELECT SUM(bytes) FROM checkpoints"),
                     2 * CKPT_BYTES + 7);
    struct store_check_report r;
    assert_int_equal(store_check(out, NULL, NULL, &r, &err), STORE_OK);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.checkpoints, 2);
    assert_int_equal(r.versions, 1);
    /* a store opens on it and reads the checkpoint back bit for bit */
    struct dimd_store *copy;
    assert_int_equal(store_open(&copy, out, &err), STORE_OK);
    struct store_checkpoint meta;
    void *a = NULL, *b = NULL;
    assert_int_equal(store_checkpoint_get(copy, id, 20, &meta, &a, &err), STORE_OK);
    store_checkpoint_clear(&meta);
    assert_int_equal(store_checkpoint_get(f->s, id, 20, &meta, &b, &err), STORE_OK);
    assert_memory_equal(a, b, (size_t)meta.bytes);
    store_checkpoint_clear(&meta);
    free(a);
    free(b);
    store_close(copy);
    /* a second backup over the first replaces it */
    assert_int_equal(store_backup_file(f->path, out, 0, NULL, NULL, &info, &err), STORE_OK);
    storefix_mv_free(&mv);
}

/* A writer that commits metric points as fast as it can until told to stop. */
struct writer {
    struct dimd_store *s;
    int64_t job;
    atomic_bool stop;
    atomic_long commits;
};

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    struct dim_err err = {0};
    for (int64_t step = 1000; !atomic_load(&w->stop); step++) {
        struct store_metric m = {"loss_total", step, 0.5, step};
        if (store_metrics_append(w->s, w->job, 1, &m, 1, step, 1.0, &err) != STORE_OK) {
            fprintf(stderr, "writer: %s\n", err.msg);
            break;
        }
        atomic_fetch_add(&w->commits, 1);
    }
    return NULL;
}

/* Counts the writer's commits made while the copy runs; asks for nothing. */
struct watch {
    struct writer *w;
    long first, last;
    int calls;
};

static bool watch_steps(void *ctx)
{
    struct watch *x = ctx;
    long c = atomic_load(&x->w->commits);
    if (x->calls++ == 0)
        x->first = c;
    x->last = c;
    /* give the writer room to commit between two steps */
    while (atomic_load(&x->w->commits) < c + 2 && x->calls < 400)
        usleep(200);
    return false;
}

static void test_backup_while_writing(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = fill(f->s);
    struct writer w = {f->s, id, false, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_loop, &w), 0);
    while (atomic_load(&w.commits) < 5)
        usleep(100);
    char out[160];
    snprintf(out, sizeof out, "%s/live.db", f->dir);
    struct store_backup_info info = {0};
    struct watch x = {&w, 0, 0, 0};
    /* one page per step: the writer commits between steps, many times */
    assert_int_equal(store_backup_file(f->path, out, 1, watch_steps, &x, &info, &err), STORE_OK);
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    /* the writers were not held up, and the copy did not start over: one step
     * per page (the last one reports done) */
    assert_true(x.last - x.first >= 20);
    assert_int_equal(info.steps, info.pages);
    /* a snapshot: the copy has the points committed before it began and is whole */
    int64_t copied = storefix_raw_int(out, "SELECT COUNT(*) FROM metrics");
    assert_true(copied >= 20 + 5);
    assert_true(copied < storefix_raw_int(f->path, "SELECT COUNT(*) FROM metrics"));
    assert_int_equal(storefix_raw_int(out, "SELECT MAX(step) FROM metrics WHERE step >= 1000") -
                         999,
                     copied - 20);
    struct store_check_report r;
    assert_int_equal(store_check(out, NULL, NULL, &r, &err), STORE_OK);
    assert_int_equal(r.problems, 0);
    assert_int_equal(r.checkpoints, 2);
}

/* Calls store_backup_temp again from inside a running one. */
struct nested {
    struct dimd_store *s;
    int rc;
    char msg[256];
};

static bool try_second(void *ctx)
{
    struct nested *n = ctx;
    if (n->rc == -100) {
        struct dim_err err = {0};
        int fd = -1;
        n->rc = store_backup_temp(n->s, 0, NULL, NULL, &fd, NULL, &err);
        snprintf(n->msg, sizeof n->msg, "%s", err.msg);
        assert_int_equal(fd, -1);
    }
    return false;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_backup_temp(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    fill(f->s);
    size_t before = dir_entries(f->dir);
    struct nested n = {f->s, -100, ""};
    struct store_backup_info info = {0};
    int fd = -1;
    assert_int_equal(store_backup_temp(f->s, 16, try_second, &n, &fd, &info, &err), STORE_OK);
    assert_int_equal(n.rc, STORE_CONFLICT);
    assert_non_null(strstr(n.msg, "already running"));
    assert_true(fd >= 0);
    /* already unlinked: the directory holds what it held */
    assert_int_equal(dir_entries(f->dir), before);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, info.bytes);
    assert_int_equal(st.st_nlink, 0);
    char head[16];
    assert_int_equal(read(fd, head, 16), 16);
    assert_memory_equal(head, "SQLite format 3", 16);
    close(fd);
    /* and the next one may run */
    assert_int_equal(store_backup_temp(f->s, 0, NULL, NULL, &fd, NULL, &err), STORE_OK);
    close(fd);
}

static bool cancel_at_once(void *ctx)
{
    (*(int *)ctx)++;
    return true;
}

static void test_backup_cancel_and_bad_sources(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    fill(f->s);
    char out[160], tmp[170];
    snprintf(out, sizeof out, "%s/cancelled.db", f->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    int calls = 0;
    assert_int_equal(store_backup_file(f->path, out, 8, cancel_at_once, &calls, NULL, &err),
                     STORE_ERROR);
    assert_int_equal(calls, 1);
    assert_int_equal(err.code, DIM_ECANCELLED);
    assert_non_null(strstr(err.msg, "cancelled after 8 of"));
    assert_int_not_equal(access(out, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* no such database: nothing created in its place */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.db", f->dir);
    assert_int_equal(store_backup_file(missing, out, 0, NULL, NULL, NULL, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "missing.db"));
    assert_int_not_equal(access(missing, F_OK), 0);
    /* a SQLite file that is not dimd's, and a file that is not SQLite */
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    storefix_raw_exec(other, "CREATE TABLE t (x)");
    assert_int_equal(store_backup_file(other, out, 0, NULL, NULL, NULL, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "is not a dimd database"));
    FILE *g = fopen(other, "w");
    assert_non_null(g);
    for (int i = 0; i < 200; i++)
        fputs("not a database at all ", g);
    fclose(g);
    assert_int_equal(store_backup_file(other, out, 0, NULL, NULL, NULL, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "not a database"));
    assert_int_not_equal(access(out, F_OK), 0);
    /* an output directory that does not exist */
    snprintf(out, sizeof out, "%s/no/such/dir.db", f->dir);
    assert_int_equal(store_backup_file(f->path, out, 0, NULL, NULL, NULL, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "no/such/dir.db.tmp"));
}

static void test_sweep(void **state)
{
    struct storefix *f = *state;
    const char *names[] = {"dimd.db.backup-a1B2c3", "dimd.db.backup-x", "dimd.db.backup-abcdefg",
                           "other.db.backup-a1B2c3", "keep.txt"};
    for (int i = 0; i < 5; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        FILE *g = fopen(p, "w");
        assert_non_null(g);
        fclose(g);
    }
    /* store_open sweeps: only DB.backup- and mkstemp's six characters go */
    struct dim_err err = {0};
    assert_int_equal(store_open(&f->s, f->path, &err), STORE_OK);
    char p[200];
    snprintf(p, sizeof p, "%s/%s", f->dir, names[0]);
    assert_int_not_equal(access(p, F_OK), 0);
    for (int i = 1; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        assert_int_equal(access(p, F_OK), 0);
    }
    snprintf(p, sizeof p, "%s/dimd.db.backup-zzzzzz", f->dir);
    FILE *g = fopen(p, "w");
    assert_non_null(g);
    fclose(g);
    assert_int_equal(store_backup_sweep(f->path), 1);
    assert_int_equal(store_backup_sweep(f->path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_has_everything, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_backup_while_writing, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_backup_temp, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_backup_cancel_and_bad_sources, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_sweep, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
