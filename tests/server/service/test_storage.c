/* test_storage.c - the storage guard (service/storage.h): read-mostly mode in
 * and out with the free bytes, the reserve file (allocated, halved at each
 * fault, grown back), admission of big writes, the reasons it gives.
 *
 * The free bytes must move only when the test moves them, so the tests that
 * measure run on a 64 MB tmpfs each mounts (we run as root); where mounting is
 * impossible they are skipped with the reason printed. One test needs no mount:
 * a min_free_bytes no disk has.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "service/storage.h"

#define MIB (1LL << 20)

struct fs {
    char dir[64];
    bool mounted;
};

static int64_t free_of(const char *dir)
{
    struct statvfs v;
    assert_int_equal(statvfs(dir, &v), 0);
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

static int64_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* A file of n bytes (allocated) in dir, named name. */
static void make_file(const char *dir, const char *name, int64_t n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(posix_fallocate(fd, 0, n), 0);
    close(fd);
}

static void remove_file(const char *dir, const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(unlink(p), 0);
}

static int fs_setup(void **state)
{
    struct fs *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dimd-storage-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->mounted = mount("tmpfs", f->dir, "tmpfs", 0, "size=64m,mode=0700") == 0;
    if (!f->mounted)
        fprintf(stderr, "# cannot mount a 64 MB tmpfs on %s (%s): the tests that measure skip\n",
                f->dir, strerror(errno));
    *state = f;
    return 0;
}

static int fs_teardown(void **state)
{
    struct fs *f = *state;
    if (f->mounted)
        umount(f->dir);
    else {
        char p[128];
        snprintf(p, sizeof p, "%s/reserve", f->dir);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void need_mount(const struct fs *f)
{
    if (!f->mounted)
        skip();
}

static void test_min_free_no_disk_has(void **state)
{
    struct fs *f = *state;
    const struct storage_config cfg = {f->dir, 1LL << 50, 0};
    struct storage *s = NULL;
    struct dim_err err;
    assert_int_equal(storage_create(&s, &cfg, &err), 0);
    assert_true(storage_degraded(s));
    struct storage_status st;
    assert_false(storage_admit(s, 0, &st));
    assert_true(st.degraded);
    assert_non_null(strstr(st.reason, "below min_free_bytes"));
    assert_int_equal(st.floor_bytes, 1LL << 50);
    assert_true(st.leave_bytes > st.floor_bytes);
    assert_int_equal(st.reserve_held, 0);
    storage_free(s);
    const struct storage_config bad = {f->dir, -1, 0};
    assert_int_equal(storage_create(&s, &bad, &err), DIM_EINVAL);
}

static void test_reserve_floor_and_admission(void **state)
{
    struct fs *f = *state;
    need_mount(f);
    char reserve[128];
    snprintf(reserve, sizeof reserve, "%s/reserve", f->dir);
    const struct storage_config cfg = {f->dir, 0, 8 * MIB};
    struct storage *s = NULL;
    struct dim_err err;
    assert_int_equal(storage_create(&s, &cfg, &err), 0);
    assert_false(storage_degraded(s));
    assert_int_equal(size_of(reserve), 8 * MIB);
    struct storage_status st;
    storage_get(s, &st);
    assert_int_equal(st.reserve_held, 8 * MIB);
    assert_int_equal(st.floor_bytes, STORAGE_FLOOR_BYTES);
    int64_t fr = free_of(f->dir);
    /* a write that leaves the floor is admitted; one that crosses it is not */
    assert_true(storage_admit(s, fr - STORAGE_FLOOR_BYTES - MIB, NULL));
    assert_false(storage_admit(s, fr - STORAGE_FLOOR_BYTES + MIB, &st));
    assert_false(st.degraded); /* a refused write is no fault */
    assert_non_null(strstr(st.reason, "would leave"));
    /* below the floor: read-mostly; back above it: writes again */
    make_file(f->dir, "filler", free_of(f->dir) - 2 * MIB);
    assert_true(storage_poll(s));
    assert_false(storage_admit(s, 0, &st));
    assert_non_null(strstr(st.reason, "below the floor"));
    assert_int_equal(size_of(reserve), 8 * MIB); /* no write failed: the reserve stays */
    remove_file(f->dir, "filler");
    assert_false(storage_poll(s));
    assert_true(storage_admit(s, 0, NULL));
    storage_free(s);
}

static void test_a_fault_halves_the_reserve_until_space_returns(void **state)
{
    struct fs *f = *state;
    need_mount(f);
    char reserve[128];
    snprintf(reserve, sizeof reserve, "%s/reserve", f->dir);
    const struct storage_config cfg = {f->dir, 0, 8 * MIB};
    struct storage *s = NULL;
    struct dim_err err;
    assert_int_equal(storage_create(&s, &cfg, &err), 0);
    make_file(f->dir, "freeable", 2 * MIB);
    /* the rest of the disk is full: a write "fails" */
    make_file(f->dir, "filler", free_of(f->dir));
    assert_int_equal(free_of(f->dir), 0);
    storage_report(s, "append metrics: database or disk is full");
    struct storage_status st;
    storage_get(s, &st);
    assert_true(st.degraded);
    assert_int_equal(st.faults, 1);
    assert_int_equal(st.reserve_held, 4 * MIB);
    assert_int_equal(size_of(reserve), 4 * MIB);
    assert_int_equal(free_of(f->dir), 4 * MIB); /* given back to the file system */
    assert_non_null(strstr(st.reason, "disk is full"));
    assert_true(st.since_ms > 0);
    /* a second fault: half of what is left */
    storage_report(s, "finish job: database or disk is full");
    storage_get(s, &st);
    assert_int_equal(st.reserve_held, 2 * MIB);
    assert_int_equal(st.faults, 2);
    /* nothing freed: still read-mostly, however often it looks */
    assert_true(storage_poll(s));
    assert_true(storage_poll(s));
    /* 2 MiB freed: above the floor? no (6 MiB free < 4 + 6 + 1 to grow the reserve back) */
    remove_file(f->dir, "freeable");
    assert_true(storage_poll(s));
    storage_get(s, &st);
    assert_int_equal(st.leave_bytes, STORAGE_FLOOR_BYTES + 6 * MIB + STORAGE_MARGIN_BYTES);
    /* the filler goes: writes again, the reserve whole */
    remove_file(f->dir, "filler");
    assert_false(storage_poll(s));
    storage_get(s, &st);
    assert_int_equal(st.reserve_held, 8 * MIB);
    assert_int_equal(size_of(reserve), 8 * MIB);
    assert_int_equal(st.since_ms, 0);
    assert_string_equal(st.reason, "");
    /* start-up on a full disk gives back half at a time; below 256 KiB, all of it */
    assert_int_equal(storage_release(s), 4 * MIB);
    assert_int_equal(storage_release(s), 2 * MIB);
    assert_int_equal(storage_release(s), 1 * MIB);
    assert_int_equal(storage_release(s), MIB / 2);
    assert_int_equal(storage_release(s), MIB / 4);
    assert_int_equal(storage_release(s), MIB / 4); /* 128 KiB would be left: all of it */
    assert_int_equal(size_of(reserve), -1);
    assert_int_equal(storage_release(s), 0);
    storage_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_min_free_no_disk_has, fs_setup, fs_teardown),
        cmocka_unit_test_setup_teardown(test_reserve_floor_and_admission, fs_setup, fs_teardown),
        cmocka_unit_test_setup_teardown(test_a_fault_halves_the_reserve_until_space_returns,
                                        fs_setup, fs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
