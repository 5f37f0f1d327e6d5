/* test_check.c - the integrity check (store/check.h) on real database files:
 * a good database passes with every checkpoint and model version counted; a
 * byte flipped inside a checkpoint on disk (invisible to SQLite's own check)
 * is a sha256 mismatch naming the job and step; a damaged b-tree page is
 * reported by integrity_check; a truncated blob and a model version's bad bytes
 * are named; files that are not dimd databases cannot be checked at all.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
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

#include "store/check.h"
#include "storefix.h"

#define CKPT_BYTES (200 * 1024)

/* The problems a check reported, one per line. */
struct lines {
    char text[4096];
    int n;
};

static void collect(void *ctx, const char *problem)
{
    struct lines *l = ctx;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%s\n", problem);
    l->n++;
}

/* A job with checkpoints at steps 10 and 20, and a model version "fm" v1. */
static int64_t fill(struct storefix *f)
{
    struct store_retention keep = {5, 0, "", false};
    int64_t id = storefix_running_job(f->s);
    storefix_put_ckpt(f->s, id, 10, CKPT_BYTES, "{}", &keep);
    storefix_put_ckpt(f->s, id, 20, CKPT_BYTES, "{}", &keep);
    struct storefix_mv mv;
    storefix_mv_make(&mv, 50000, 10, 4, 1);
    storefix_mv_create(f->s, "fm", id, 20, &mv, false);
    storefix_mv_free(&mv);
    return id;
}

/* Closes the store, so the WAL is folded into the database file. */
static void close_store(struct storefix *f)
{
    store_close(f->s);
    f->s = NULL;
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_not_equal(access(wal, F_OK), 0);
}

static void test_good_database(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    fill(f);
    struct lines l = {"", 0};
    struct store_check_report r;
    /* beside the open store (a live daemon's case) and with it closed */
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(store_check(f->path, collect, &l, &r, &err), STORE_OK);
        assert_int_equal(r.problems, 0);
        assert_int_equal(l.n, 0);
        assert_int_equal(r.jobs, 1);
        assert_int_equal(r.checkpoints, 2);
        assert_int_equal(r.checkpoint_bytes, 2 * CKPT_BYTES);
        assert_int_equal(r.versions, 1);
        assert_int_equal(r.version_bytes, 50000);
        assert_int_equal(r.page_size, 4096);
        assert_true(r.pages * r.page_size > 2 * CKPT_BYTES);
        assert_true(r.seconds >= 0);
        if (pass == 0)
            close_store(f);
    }
}

/* Flips one byte of the file, found as the 64 bytes of the pattern
 * storefix_put_ckpt wrote at offset `at` of the checkpoint of `step`. */
static void flip_on_disk(const char *path, int64_t step, size_t at)
{
    unsigned char want[64];
    for (size_t i = 0; i < 64; i++)
        want[i] = (unsigned char)((at + i) * 31 + (size_t)step * 7 + ((at + i) >> 9));
    FILE *g = fopen(path, "rb");
    assert_non_null(g);
    fseek(g, 0, SEEK_END);
    long n = ftell(g);
    fseek(g, 0, SEEK_SET);
    unsigned char *all = malloc((size_t)n);
    assert_non_null(all);
    assert_int_equal(fread(all, 1, (size_t)n, g), (size_t)n);
    fclose(g);
    long off = -1;
    for (long i = 0; i + 64 <= n && off < 0; i++)
        if (memcmp(all + i, want, sizeof want) == 0)
            off = i + 10;
    assert_true(off >= 0);
    unsigned char b = all[off] ^ 0x01;
    free(all);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_flipped_checkpoint_byte(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = fill(f);
    close_store(f);
    flip_on_disk(f->path, 20, CKPT_BYTES / 2);
    struct lines l = {"", 0};
    struct store_check_report r;
    assert_int_equal(store_check(f->path, collect, &l, &r, &err), STORE_OK);
    /* SQLite sees nothing wrong; the sha256 does */
    assert_int_equal(r.problems, 1);
    assert_int_equal(l.n, 1);
    char want[96];
    snprintf(want, sizeof want, "checkpoint of job %lld at step 20: sha256 mismatch",
             (long long)id);
    assert_non_null(strstr(l.text, want));
    assert_null(strstr(l.text, "integrity_check"));
    assert_int_equal(r.checkpoints, 2);
}

static void test_damaged_btree_page(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    fill(f);
    close_store(f);
    /* the root page of the events index: its b-tree page header becomes garbage */
    int64_t root =
        storefix_raw_int(f->path, "SELECT rootpage FROM sqlite_schema WHERE name = 'events_job'");
    assert_true(root > 1);
    unsigned char junk[16];
    memset(junk, 0xee, sizeof junk);
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)(root - 1) * 4096), (ssize_t)sizeof junk);
    close(fd);
    struct lines l = {"", 0};
    struct store_check_report r;
    assert_int_equal(store_check(f->path, collect, &l, &r, &err), STORE_OK);
    assert_true(r.problems >= 1);
    assert_non_null(strstr(l.text, "integrity_check: "));
    char page[32];
    snprintf(page, sizeof page, "Page %lld: ", (long long)root);
    assert_non_null(strstr(l.text, page));
    /* each problem on one line */
    assert_int_equal(r.problems, (int64_t)l.n);
    int newlines = 0;
    for (const char *p = l.text; *p; p++)
        newlines += *p == '\n';
    assert_int_equal(newlines, l.n);
    /* the checkpoints themselves are still verified */
    assert_int_equal(r.checkpoints, 2);
    assert_null(strstr(l.text, "sha256 mismatch"));
}

static void test_truncated_and_version_bytes(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    int64_t id = fill(f);
    close_store(f);
    storefix_raw_exec(f->path,
                      "UPDATE checkpoints SET data = substr(data, 1, 1000) WHERE step = 10;"
                      "UPDATE model_versions SET data = zeroblob(bytes)");
    struct lines l = {"", 0};
    struct store_check_report r;
    assert_int_equal(store_check(f->path, collect, &l, &r, &err), STORE_OK);
    assert_int_equal(r.problems, 2);
    char want[128];
    snprintf(want, sizeof want, "checkpoint of job %lld at step 10: 1000 bytes stored, %d recorded",
             (long long)id, CKPT_BYTES);
    assert_non_null(strstr(l.text, want));
    assert_non_null(strstr(l.text, "model fm version v1: sha256 mismatch"));
}

static void test_not_checkable(void **state)
{
    struct storefix *f = *state;
    struct dim_err err = {0};
    struct store_check_report r;
    char p[160];
    snprintf(p, sizeof p, "%s/missing.db", f->dir);
    assert_int_equal(store_check(p, NULL, NULL, &r, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "missing.db: no such file"));
    snprintf(p, sizeof p, "%s/text.db", f->dir);
    FILE *g = fopen(p, "w");
    assert_non_null(g);
    for (int i = 0; i < 300; i++)
        fputs("this is text ", g);
    fclose(g);
    assert_int_equal(store_check(p, NULL, NULL, &r, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "text.db"));
    assert_non_null(strstr(err.msg, "not a database"));
    snprintf(p, sizeof p, "%s/other.db", f->dir);
    storefix_raw_exec(p, "CREATE TABLE jobs (x)");
    assert_int_equal(store_check(p, NULL, NULL, &r, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "not a dimd database"));
    /* page 1 of a dimd database overwritten: not checkable either */
    struct dim_err e2 = {0};
    assert_int_equal(store_open(&f->s, f->path, &e2), STORE_OK);
    close_store(f);
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "garbage garbage!", 16, 0), 16);
    close(fd);
    assert_int_equal(store_check(f->path, NULL, NULL, &r, &err), STORE_ERROR);
    assert_non_null(strstr(err.msg, "not a database"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_database, storefix_setup_open, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_checkpoint_byte, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_btree_page, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_version_bytes, storefix_setup_open,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_not_checkable, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
