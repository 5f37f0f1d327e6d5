/* test_dataset.c - IDX (plain, gzipped, Fashion-MNIST), CIFAR-10 binary and image
 * folder datasets: exact contents, limits, and every malformed-file error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <zlib.h>

#include "data/dataset.h"
#include "fixtures.h"

static void assert_close(double a, double b, double tol)
{
    double d = a - b;
    if (d < 0)
        d = -d;
    if (!(d <= tol))
        fail_msg("%.9g differs from %.9g by more than %g", a, b, tol);
}

static void assert_msg_has(const struct dim_err *e, const char *needle)
{
    if (!strstr(e->msg, needle))
        fail_msg("error message \"%s\" does not mention \"%s\"", e->msg, needle);
}

static void assert_empty(const struct dim_dataset *ds)
{
    assert_int_equal(ds->n, 0);
    assert_null(ds->px);
    assert_null(ds->labels);
    assert_null(ds->class_names);
}

/* ---- Fashion-MNIST (the installed Debian package) ---- */

static void test_fashion_mnist(void **state)
{
    (void)state;
    struct dim_dataset ds;
    struct dim_err err;
    struct dim_dataset_limits lim = {0, 28 * 28};
    int rc = dim_dataset_load("fashion-mnist", DIM_SPLIT_TRAIN, &lim, &ds, &err);
    if (rc != 0)
        fail_msg("loading fashion-mnist: %s", err.msg);
    assert_int_equal(ds.n, 60000);
    assert_int_equal(ds.c, 1);
    assert_int_equal(ds.h, 28);
    assert_int_equal(ds.w, 28);
    assert_int_equal(ds.n_classes, 10);
    assert_non_null(ds.class_names);
    assert_string_equal(ds.class_names[0], "T-shirt/top");
    assert_string_equal(ds.class_names[9], "Ankle boot");

    size_t per_class[10] = {0};
    for (size_t i = 0; i < ds.n; i++) {
        assert_true(ds.labels[i] < 10);
        per_class[ds.labels[i]]++;
    }
    for (int k = 0; k < 10; k++)
        assert_int_equal(per_class[k], 6000);
    const uint16_t first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}; /* computed with Python's gzip */
    assert_memory_equal(ds.labels, first, sizeof first);

    uint64_t sum = 0, sum0 = 0;
    for (size_t i = 0; i < ds.n * 784; i++)
        sum += ds.px[i];
    for (size_t i = 0; i < 784; i++)
        sum0 += ds.px[i];
    assert_true(sum == 3431114169ull); /* independent reference: Python's gzip */
    assert_int_equal(sum0, 76247);
    double mean = (double)sum / (double)(ds.n * 784);
    assert_true(mean > 60 && mean < 85);

    /* Batches: 28 -> 32 pads 2 a side; labels follow idx. */
    uint32_t idx[2] = {0, 3};
    static float out[2 * 32 * 32];
    uint16_t lab[2];
    struct dim_preprocess pp = {1, 32, 32, 0, 0};
    dim_dataset_batch(&ds, idx, 2, &pp, NULL, out, lab);
    assert_int_equal(lab[0], 9);
    assert_int_equal(lab[1], 3);
    assert_true(out[0] == -1.0f);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            assert_close(out[(y + 2) * 32 + x + 2], ds.px[y * 28 + x] / 127.5 - 1.0, 1e-6);
            assert_close(out[1024 + (y + 2) * 32 + x + 2],
                         ds.px[3 * 784 + y * 28 + x] / 127.5 - 1.0, 1e-6);
        }
    dim_dataset_free(&ds);
    assert_empty(&ds);

    rc = dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, &lim, &ds, &err);
    if (rc != 0)
        fail_msg("loading fashion-mnist test: %s", err.msg);
    assert_int_equal(ds.n, 10000);
    size_t per_test[10] = {0};
    sum = 0;
    for (size_t i = 0; i < ds.n; i++)
        per_test[ds.labels[i]]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(per_test[k], 1000);
    for (size_t i = 0; i < ds.n * 784; i++)
        sum += ds.px[i];
    assert_true(sum == 573469082ull);
    const uint16_t tfirst[5] = {9, 2, 1, 1, 6};
    assert_memory_equal(ds.labels, tfirst, sizeof tfirst);
    dim_dataset_free(&ds);

    /* Limits are enforced from the header. */
    struct dim_dataset_limits small = {1000, 0};
    assert_int_equal(dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, &small, &ds, &err),
                     DIM_ELIMIT);
    assert_msg_has(&err, "10000");
    assert_empty(&ds);
    struct dim_dataset_limits tiny_px = {0, 100};
    assert_int_equal(dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, &tiny_px, &ds, &err),
                     DIM_ELIMIT);
}

/* ---- IDX written by the test ---- */

enum { IN = 5, IH = 3, IW = 4 };
static const uint8_t idx_labels[IN] = {0, 2, 1, 2, 0};

static size_t idx_images_bytes(uint8_t *buf, uint32_t magic, uint32_t n)
{
    const uint32_t hdr[4] = {magic, n, IH, IW};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++)
            buf[4 * i + b] = (uint8_t)(hdr[i] >> (24 - 8 * b));
    for (size_t i = 0; i < (size_t)n * IH * IW; i++)
        buf[16 + i] = (uint8_t)(i * 11 + 5);
    return 16 + (size_t)n * IH * IW;
}

static size_t idx_labels_bytes(uint8_t *buf, uint32_t magic, uint32_t n)
{
    const uint32_t hdr[2] = {magic, n};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 4; b++)
            buf[4 * i + b] = (uint8_t)(hdr[i] >> (24 - 8 * b));
    for (size_t i = 0; i < n; i++)
        buf[8 + i] = idx_labels[i % IN];
    return 8 + n;
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* Writes prefix-images-idx3-ubyte and prefix-labels-idx1-ubyte (gz or plain). */
static void write_idx(const char *dir, const char *prefix, int gz, uint32_t img_magic,
                      uint32_t lab_magic, uint32_t n_img, uint32_t n_lab, long img_delta)
{
    uint8_t img[16 + 16 * IH * IW + 8], lab[8 + 16];
    size_t ni = idx_images_bytes(img, img_magic, n_img);
    size_t nl = idx_labels_bytes(lab, lab_magic, n_lab);
    if (img_delta > 0)
        memset(img + ni, 0, (size_t)img_delta);
    ni = (size_t)((long)ni + img_delta);
    char name[128], path[512];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    fixtures_join(path, sizeof path, dir, name);
    if (gz)
        write_gz(path, img, ni);
    else
        assert_int_equal(fixtures_write_file(path, img, ni), 0);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    fixtures_join(path, sizeof path, dir, name);
    if (gz)
        write_gz(path, lab, nl);
    else
        assert_int_equal(fixtures_write_file(path, lab, nl), 0);
}

static void check_idx_contents(const struct dim_dataset *ds)
{
    assert_int_equal(ds->n, IN);
    assert_int_equal(ds->c, 1);
    assert_int_equal(ds->h, IH);
    assert_int_equal(ds->w, IW);
    assert_int_equal(ds->n_classes, 3);
    assert_null(ds->class_names);
    for (size_t i = 0; i < IN; i++)
        assert_int_equal(ds->labels[i], idx_labels[i]);
    for (size_t i = 0; i < (size_t)IN * IH * IW; i++)
        assert_int_equal(ds->px[i], (uint8_t)(i * 11 + 5));
}

static void test_idx_plain_and_gz(void **state)
{
    (void)state;
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    write_idx(dir, "train", 0, 0x803, 0x801, IN, IN, 0);
    write_idx(dir, "t10k", 1, 0x803, 0x801, IN, IN, 0);
    struct dim_dataset ds;
    struct dim_err err;
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err), 0);
    check_idx_contents(&ds);
    dim_dataset_free(&ds);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TEST, NULL, &ds, &err), 0);
    check_idx_contents(&ds);
    dim_dataset_free(&ds);

    struct dim_dataset_limits lim = {4, 0};
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, &lim, &ds, &err), DIM_ELIMIT);
    assert_empty(&ds);
    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

/* Loads the train split of a fresh directory made by write_idx, expecting code. */
static void idx_expect(int gz, uint32_t img_magic, uint32_t lab_magic, uint32_t n_img,
                       uint32_t n_lab, long img_delta, int code, const char *needle)
{
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    write_idx(dir, "train", gz, img_magic, lab_magic, n_img, n_lab, img_delta);
    struct dim_dataset ds;
    struct dim_err err;
    int rc = dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err);
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, rc ? err.msg : "ok");
    assert_msg_has(&err, needle);
    assert_msg_has(&err, "train-");
    assert_empty(&ds);
    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

static void test_idx_errors(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        idx_expect(gz, 0x803, 0x801, IN, IN, -1, DIM_EFORMAT, "truncated");
        idx_expect(gz, 0x803, 0x801, IN, IN, -30, DIM_EFORMAT, "truncated");
        idx_expect(gz, 0x803, 0x801, IN, IN, 3, DIM_EFORMAT, "longer than");
        idx_expect(gz, 0x00000d03, 0x801, IN, IN, 0, DIM_EFORMAT, "magic");
        idx_expect(gz, 0x803, 0x803, IN, IN, 0, DIM_EFORMAT, "magic 0x00000803");
        idx_expect(gz, 0x803, 0x801, IN, IN + 1, 0, DIM_EFORMAT, "labels");
        idx_expect(gz, 0x803, 0x801, 4, IN, 0, DIM_EFORMAT, "has 4 images");
    }

    /* A truncated gzip stream (not just short data) is refused too. */
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    write_idx(dir, "train", 1, 0x803, 0x801, IN, IN, 0);
    char path[512];
    fixtures_join(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    uint8_t *buf;
    size_t len;
    assert_int_equal(fixtures_read_file(path, &buf, &len), 0);
    assert_int_equal(fixtures_write_file(path, buf, len / 2), 0);
    free(buf);
    struct dim_dataset ds;
    struct dim_err err;
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, "train-images-idx3-ubyte.gz");
    /* Missing labels file: ENOENT naming it. */
    fixtures_join(path, sizeof path, dir, "train-labels-idx1-ubyte.gz");
    assert_int_equal(remove(path), 0);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_ENOENT);
    assert_msg_has(&err, "train-labels-idx1-ubyte");
    /* The test split's files are absent. */
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TEST, NULL, &ds, &err), DIM_ENOENT);
    assert_msg_has(&err, "t10k-images-idx3-ubyte");
    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);

    assert_int_equal(dim_dataset_load("/nonexistent/dataset", DIM_SPLIT_TRAIN, NULL, &ds, &err),
                     DIM_ENOENT);
    assert_msg_has(&err, "/nonexistent/dataset");
    assert_int_equal(dim_dataset_load("", DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EINVAL);
}

/* ---- CIFAR-10 binary ---- */

static uint8_t cifar_px(size_t rec, size_t j)
{
    return (uint8_t)(rec * 7 + j * 3 + (j >> 10));
}

/* Writes records [first, first + n) with label (rec % nlab). */
static void write_cifar(const char *dir, const char *name, size_t first, size_t n, int nlab,
                        size_t extra)
{
    size_t len = n * 3073 + extra;
    uint8_t *buf = calloc(1, len ? len : 1);
    assert_non_null(buf);
    for (size_t r = 0; r < n; r++) {
        buf[r * 3073] = (uint8_t)((first + r) % (size_t)nlab);
        for (size_t j = 0; j < 3072; j++)
            buf[r * 3073 + 1 + j] = cifar_px(first + r, j);
    }
    char path[512];
    assert_int_equal(fixtures_write_file(fixtures_join(path, sizeof path, dir, name), buf, len), 0);
    free(buf);
}

static void test_cifar(void **state)
{
    (void)state;
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    const size_t counts[5] = {2, 3, 1, 2, 2};
    size_t first = 0;
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        write_cifar(dir, name, first, counts[i], 10, 0);
        first += counts[i];
    }
    write_cifar(dir, "test_batch.bin", 100, 3, 10, 0);
    char path[512];
    const char meta[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    assert_int_equal(fixtures_write_file(fixtures_join(path, sizeof path, dir, "batches.meta.txt"),
                                         meta, sizeof meta - 1),
                     0);

    struct dim_dataset ds;
    struct dim_err err;
    int rc = dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 10);
    assert_int_equal(ds.c, 3);
    assert_int_equal(ds.h, 32);
    assert_int_equal(ds.w, 32);
    assert_int_equal(ds.n_classes, 10);
    assert_string_equal(ds.class_names[0], "airplane");
    assert_string_equal(ds.class_names[9], "truck");
    for (size_t r = 0; r < 10; r++) {
        assert_int_equal(ds.labels[r], r % 10);
        for (size_t j = 0; j < 3072; j += 97)
            assert_int_equal(ds.px[r * 3072 + j], cifar_px(r, j));
    }
    dim_dataset_free(&ds);

    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TEST, NULL, &ds, &err), 0);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.labels[0], 0); /* record 100 */
    assert_int_equal(ds.labels[2], 2);
    assert_int_equal(ds.px[2 * 3072 + 3071], cifar_px(102, 3071));
    dim_dataset_free(&ds);

    /* Without batches.meta.txt: 10 classes, no names. */
    assert_int_equal(remove(path), 0);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TEST, NULL, &ds, &err), 0);
    assert_int_equal(ds.n_classes, 10);
    assert_null(ds.class_names);
    dim_dataset_free(&ds);

    struct dim_dataset_limits lim = {9, 0};
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, &lim, &ds, &err), DIM_ELIMIT);

    /* A batch whose size is not a multiple of 3073. */
    write_cifar(dir, "data_batch_3.bin", 6, 1, 10, 5);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, "data_batch_3.bin");
    assert_msg_has(&err, "3078");
    assert_empty(&ds);

    /* A label beyond the 10 classes. */
    write_cifar(dir, "data_batch_3.bin", 6, 1, 10, 0);
    write_cifar(dir, "test_batch.bin", 0, 12, 12, 0);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TEST, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, "label 10");
    assert_empty(&ds);

    /* A missing batch. */
    assert_int_equal(remove(fixtures_join(path, sizeof path, dir, "data_batch_4.bin")), 0);
    assert_int_equal(dim_dataset_load(dir, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_ENOENT);
    assert_msg_has(&err, "data_batch_4.bin");

    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

/* ---- image folders ---- */

static void mkdir_in(const char *parent, const char *name, char *out)
{
    fixtures_join(out, 512, parent, name);
    assert_int_equal(mkdir(out, 0755), 0);
}

static void write_const_png(const char *dir, const char *name, int c, int h, int w, uint8_t v)
{
    uint8_t *px = malloc((size_t)c * (size_t)h * (size_t)w);
    assert_non_null(px);
    memset(px, v, (size_t)c * (size_t)h * (size_t)w);
    struct dim_image img = {c, h, w, px};
    char path[512];
    struct dim_err err;
    assert_int_equal(dim_image_write_png(fixtures_join(path, sizeof path, dir, name), &img, &err),
                     0);
    free(px);
}

static void write_const_jpeg(const char *dir, const char *name, const uint8_t rgb[3])
{
    uint8_t px[3 * 8 * 8];
    for (int k = 0; k < 3; k++)
        memset(px + k * 64, rgb[k], 64);
    char path[512];
    assert_int_equal(
        fixtures_write_jpeg(fixtures_join(path, sizeof path, dir, name), px, 3, 8, 8, 95), 0);
}

static void test_folder_implicit_split(void **state)
{
    (void)state;
    char *root = fixtures_mkdtemp();
    assert_non_null(root);
    char cat[512], dog[512], emu[512], path[512];
    mkdir_in(root, "cat", cat);
    mkdir_in(root, "dog", dog);
    mkdir_in(root, "emu", emu);
    /* cat: 7 grey 8x8 PNGs of value 20+i; file 5 (the 6th) is the test image. */
    for (int i = 0; i < 7; i++) {
        char name[32];
        snprintf(name, sizeof name, "a%d.png", i);
        write_const_png(cat, name, 1, 8, 8, (uint8_t)(20 + i));
    }
    assert_int_equal(
        fixtures_write_file(fixtures_join(path, sizeof path, cat, ".DS_Store"), "x", 1), 0);
    /* dog: 6 RGB JPEGs (converted to grey); emu: 2 grey 16x16 PNGs (resized to 8x8). */
    const uint8_t orange[3] = {200, 100, 50};
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%d.jpg", i);
        write_const_jpeg(dog, name, orange);
    }
    write_const_png(emu, "e0.png", 1, 16, 16, 77);
    write_const_png(emu, "e1.png", 3, 4, 4, 99);
    char hidden[512];
    mkdir_in(root, ".cache", hidden);

    struct dim_dataset ds;
    struct dim_err err;
    int rc = dim_dataset_load(root, DIM_SPLIT_TRAIN, NULL, &ds, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 6 + 5 + 2);
    assert_int_equal(ds.c, 1);
    assert_int_equal(ds.h, 8);
    assert_int_equal(ds.w, 8);
    assert_int_equal(ds.n_classes, 3);
    assert_string_equal(ds.class_names[0], "cat");
    assert_string_equal(ds.class_names[1], "dog");
    assert_string_equal(ds.class_names[2], "emu");
    const uint16_t want_labels[13] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2};
    assert_memory_equal(ds.labels, want_labels, sizeof want_labels);
    const uint8_t cat_vals[6] = {20, 21, 22, 23, 24, 26}; /* a5 is in test */
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 64; j++)
            assert_int_equal(ds.px[i * 64 + j], cat_vals[i]);
    for (int j = 0; j < 64; j++) {
        assert_close(ds.px[6 * 64 + j], 0.299 * 200 + 0.587 * 100 + 0.114 * 50, 4);
        assert_int_equal(ds.px[11 * 64 + j], 77);
        assert_int_equal(ds.px[12 * 64 + j], 99);
    }
    dim_dataset_free(&ds);

    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TEST, NULL, &ds, &err), 0);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.n_classes, 3);
    assert_int_equal(ds.labels[0], 0);
    assert_int_equal(ds.labels[1], 1);
    assert_int_equal(ds.px[0], 25);
    assert_int_equal(ds.c, 1);
    assert_int_equal(ds.h, 8);
    dim_dataset_free(&ds);

    struct dim_dataset_limits lim = {12, 0};
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TRAIN, &lim, &ds, &err), DIM_ELIMIT);
    struct dim_dataset_limits px_lim = {0, 100};
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TRAIN, &px_lim, &ds, &err), DIM_ELIMIT);
    assert_msg_has(&err, "e0.png");

    /* A corrupt image is an error naming the file; so is a file that is not an image. */
    uint8_t *png;
    size_t len;
    assert_int_equal(
        fixtures_read_file(fixtures_join(path, sizeof path, cat, "a0.png"), &png, &len), 0);
    assert_int_equal(
        fixtures_write_file(fixtures_join(path, sizeof path, emu, "zz_bad.png"), png, len - 20), 0);
    free(png);
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, "zz_bad.png");
    assert_empty(&ds);
    assert_int_equal(remove(path), 0);
    assert_int_equal(
        fixtures_write_file(fixtures_join(path, sizeof path, dog, "notes.txt"), "hello\n", 6), 0);
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EUNSUPPORTED);
    assert_msg_has(&err, "notes.txt");
    assert_empty(&ds);

    assert_int_equal(fixtures_rmtree(root), 0);
    free(root);
}

static void test_folder_explicit_split(void **state)
{
    (void)state;
    char *root = fixtures_mkdtemp();
    assert_non_null(root);
    char train[512], test[512], d[512];
    mkdir_in(root, "train", train);
    mkdir_in(root, "test", test);
    mkdir_in(train, "ant", d);
    write_const_png(d, "1.png", 3, 6, 5, 10);
    write_const_png(d, "2.png", 3, 6, 5, 11);
    mkdir_in(train, "bee", d);
    write_const_png(d, "1.png", 3, 6, 5, 12);
    mkdir_in(test, "bee", d);
    write_const_png(d, "x.png", 1, 6, 5, 13); /* grey -> RGB */

    struct dim_dataset ds;
    struct dim_err err;
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TRAIN, NULL, &ds, &err), 0);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.c, 3);
    assert_int_equal(ds.h, 6);
    assert_int_equal(ds.w, 5);
    assert_int_equal(ds.n_classes, 2);
    const uint16_t want[3] = {0, 0, 1};
    assert_memory_equal(ds.labels, want, sizeof want);
    assert_int_equal(ds.px[2 * 90 + 89], 12);
    dim_dataset_free(&ds);

    /* test/ lacks "ant": labels still follow train/'s class list. */
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TEST, NULL, &ds, &err), 0);
    assert_int_equal(ds.n, 1);
    assert_int_equal(ds.n_classes, 2);
    assert_int_equal(ds.labels[0], 1);
    assert_int_equal(ds.c, 3);
    for (int j = 0; j < 90; j++)
        assert_int_equal(ds.px[j], 13);
    assert_string_equal(ds.class_names[1], "bee");
    dim_dataset_free(&ds);

    /* A class only in test/ is refused. */
    mkdir_in(test, "cow", d);
    assert_int_equal(dim_dataset_load(root, DIM_SPLIT_TEST, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, "cow");
    assert_empty(&ds);

    /* A directory with no class subfolders at all. */
    char *empty = fixtures_mkdtemp();
    assert_non_null(empty);
    assert_int_equal(dim_dataset_load(empty, DIM_SPLIT_TRAIN, NULL, &ds, &err), DIM_EFORMAT);
    assert_msg_has(&err, empty);
    assert_int_equal(fixtures_rmtree(empty), 0);
    free(empty);

    assert_int_equal(fixtures_rmtree(root), 0);
    free(root);
}

static void test_batch_augmented(void **state)
{
    (void)state;
    /* Two 4x4 RGB images in memory; batch into grey 4x4 with flips, seeded. */
    uint8_t px[2 * 3 * 16];
    for (int i = 0; i < 96; i++)
        px[i] = (uint8_t)(i * 2);
    uint16_t labels[2] = {4, 7};
    struct dim_dataset ds = {2, 3, 4, 4, 8, px, labels, NULL};
    uint32_t idx[3] = {1, 0, 1};
    struct dim_preprocess pp = {3, 4, 4, 1, 1};
    float a[3 * 48], b[3 * 48], base[3 * 48];
    uint16_t la[3];
    struct dim_rng r1, r2;
    dim_rng_seed(&r1, 9, 0);
    dim_rng_seed(&r2, 9, 0);
    dim_dataset_batch(&ds, idx, 3, &pp, &r1, a, la);
    dim_dataset_batch(&ds, idx, 3, &pp, &r2, b, NULL);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(la[0], 7);
    assert_int_equal(la[1], 4);
    assert_int_equal(la[2], 7);
    dim_dataset_batch(&ds, idx, 3, &pp, NULL, base, NULL);
    assert_close(base[0], px[48] / 127.5 - 1.0, 1e-6);
    assert_close(base[48], px[0] / 127.5 - 1.0, 1e-6);
    assert_memory_equal(base, base + 96, 48 * sizeof(float));
    /* Augmented output differs from the plain one for this seed (crop/flip drawn per image). */
    assert_true(memcmp(a, base, sizeof base) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_idx_plain_and_gz),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_cifar),
        cmocka_unit_test(test_folder_implicit_split),
        cmocka_unit_test(test_folder_explicit_split),
        cmocka_unit_test(test_batch_augmented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
