/* make_corpus.c - writes the binary seeds of tests/fuzz/corpus/ (the text
 * seeds are written by hand): PNG and JPEG images, the same as base64 and
 * data URLs, raw tensors, IDX and CIFAR-10 files from the first Fashion-MNIST
 * test images, and the start of an inference-only checkpoint of the
 * smallest model the service tests use. Built by `make fuzz-build` (build-fuzz/fuzz/make_corpus);
 * run it from the repository's root to rewrite the seeds:
 *   build-fuzz/fuzz/make_corpus tests/fuzz/corpus
 * Depends on core, tests/support (svcfix, fixtures), zlib.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "fixtures.h"
#include "svcfix.h"

static const char *root;

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    if (fixtures_write_file(path, p, n) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* A (c, h, w) test pattern: a ramp plus a checker. */
static struct dim_image pattern(int c, int h, int w)
{
    struct dim_image img = {c, h, w, malloc((size_t)c * h * w)};
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img.px[((size_t)k * h + y) * w + x] =
                    (uint8_t)((x * 255 / (w > 1 ? w - 1 : 1) + k * 60) ^ (((x / 2 + y / 2) & 1) * 64));
    return img;
}

static char *b64(const uint8_t *p, size_t n, size_t *out_len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc(n / 3 * 4 + 5), *o = s;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        *o++ = a[(v >> 6) & 63];
        *o++ = a[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        *o++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    *out_len = (size_t)(o - s);
    return s;
}

static void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* IDX images and labels of the first n Fashion-MNIST test images, as the
 * fuzz_idx input (2-byte length of the images file first); gzipped when gz. */
static void idx_seed(const struct dim_dataset *ds, size_t n, int gz, const char *name)
{
    size_t li = 16 + n * 784, ll = 8 + n;
    uint8_t *img = malloc(li), *lab = malloc(ll);
    put_u32be(img, 0x803), put_u32be(img + 4, (uint32_t)n), put_u32be(img + 8, 28),
        put_u32be(img + 12, 28);
    memcpy(img + 16, ds->px, n * 784);
    put_u32be(lab, 0x801), put_u32be(lab + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        lab[8 + i] = (uint8_t)ds->labels[i];
    uint8_t *parts[2] = {img, lab};
    size_t lens[2] = {li, ll};
    if (gz) {
        for (int k = 0; k < 2; k++) {
            char tmp[] = "/tmp/dimd-corpus-XXXXXX";
            int fd = mkstemp(tmp);
            gzFile f = gzdopen(fd, "wb9");
            gzwrite(f, parts[k], (unsigned)lens[k]);
            gzclose(f);
            uint8_t *z;
            size_t zn;
            fixtures_read_file(tmp, &z, &zn);
            remove(tmp);
            free(parts[k]);
            parts[k] = z;
            lens[k] = zn;
        }
    }
    uint8_t *in = malloc(2 + lens[0] + lens[1]);
    in[0] = (uint8_t)lens[0], in[1] = (uint8_t)(lens[0] >> 8);
    memcpy(in + 2, parts[0], lens[0]);
    memcpy(in + 2 + lens[0], parts[1], lens[1]);
    put("fuzz_idx", name, in, 2 + lens[0] + lens[1]);
    free(in);
    free(parts[0]);
    free(parts[1]);
}

/* n CIFAR-10 records (grey Fashion-MNIST images, padded to 32x32, in all three
 * channels) after a batches.meta.txt of meta (NULL: none). */
static void cifar_seed(const struct dim_dataset *ds, size_t n, const char *meta, const char *name)
{
    size_t lm = meta ? strlen(meta) : 0, len = 2 + lm + n * 3073;
    uint8_t *in = calloc(1, len), *p = in + 2 + lm;
    in[0] = meta ? (uint8_t)lm : 0xff, in[1] = meta ? (uint8_t)(lm >> 8) : 0xff;
    if (meta)
        memcpy(in + 2, meta, lm);
    for (size_t i = 0; i < n; i++, p += 3073) {
        p[0] = (uint8_t)ds->labels[i];
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 28; y++)
                memcpy(p + 1 + k * 1024 + (y + 2) * 32 + 2, ds->px + i * 784 + y * 28, 28);
    }
    put("fuzz_cifar", name, in, len);
    free(in);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus CORPUS_DIR\n");
        return 2;
    }
    root = argv[1];
    struct dim_err err;
    /* images: PNG grey, RGB, 1x1; JPEG grey and RGB */
    const int shapes[][3] = {{1, 8, 8}, {3, 8, 6}, {1, 1, 1}, {3, 16, 16}};
    uint8_t *png_small = NULL;
    size_t png_small_len = 0;
    for (int i = 0; i < 4; i++) {
        struct dim_image img = pattern(shapes[i][0], shapes[i][1], shapes[i][2]);
        uint8_t *out;
        size_t n;
        char name[64];
        if (dim_image_encode_png(&img, &out, &n, &err) != 0) {
            fprintf(stderr, "make_corpus: %s\n", err.msg);
            return 1;
        }
        snprintf(name, sizeof name, "png_%dx%dx%d", img.c, img.h, img.w);
        put("fuzz_image", name, out, n);
        if (i == 0) {
            png_small = out;
            png_small_len = n;
        } else {
            free(out);
        }
        if (i != 2) {
            if (fixtures_encode_jpeg(img.px, img.c, img.h, img.w, 90, &out, &n) != 0)
                return 1;
            snprintf(name, sizeof name, "jpeg_%dx%dx%d", img.c, img.h, img.w);
            put("fuzz_image", name, out, n);
            free(out);
        }
        dim_image_free(&img);
    }
    /* base64: the grey PNG plain and as a data URL */
    size_t bl;
    char *s = b64(png_small, png_small_len, &bl);
    put("fuzz_base64", "png", s, bl);
    char *url = malloc(bl + 32);
    int ul = snprintf(url, bl + 32, "data:image/png;base64,%s", s);
    put("fuzz_base64", "data_url", url, (size_t)ul);
    free(url);
    free(s);
    /* multipart: two image parts */
    {
        const char *head = "multipart/form-data; boundary=XyZ\n--XyZ\r\nContent-Disposition: "
                           "form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: "
                           "image/png\r\n\r\n";
        const char *mid = "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n";
        const char *tail = "\r\n--XyZ--\r\n";
        size_t hl = strlen(head), ml = strlen(mid), tl = strlen(tail);
        size_t n = hl + png_small_len + ml + png_small_len + tl;
        char *m = malloc(n), *o = m;
        memcpy(o, head, hl), o += hl, memcpy(o, png_small, png_small_len), o += png_small_len;
        memcpy(o, mid, ml), o += ml, memcpy(o, png_small, png_small_len), o += png_small_len;
        memcpy(o, tail, tl);
        put("fuzz_multipart", "two_pngs", m, n);
        free(m);
    }
    free(png_small);
    /* raw tensors: 1x1x2x2 and 2x1x1x3 float32 */
    {
        const char *h1 = "1,1,2,2\n";
        float v1[4] = {0.0f, 0.25f, 0.5f, 1.0f};
        uint8_t buf[64];
        memcpy(buf, h1, strlen(h1));
        memcpy(buf + strlen(h1), v1, sizeof v1);
        put("fuzz_tensor", "raw_1x1x2x2", buf, strlen(h1) + sizeof v1);
        const char *h2 = "3,1,1\n";
        float v2[3] = {0.1f, 0.2f, 0.3f};
        memcpy(buf, h2, strlen(h2));
        memcpy(buf + strlen(h2), v2, sizeof v2);
        put("fuzz_tensor", "raw_3x1x1", buf, strlen(h2) + sizeof v2);
    }
    /* IDX and CIFAR from the first test images of Fashion-MNIST */
    struct dim_dataset ds;
    const struct dim_dataset_limits lim = {0, 64u << 20};
    if (dim_dataset_load("fashion-mnist", DIM_SPLIT_TEST, &lim, &ds, &err) != 0) {
        fprintf(stderr, "make_corpus: %s\n", err.msg);
        return 1;
    }
    idx_seed(&ds, 3, 0, "fmnist_3");
    idx_seed(&ds, 2, 1, "fmnist_2_gz");
    cifar_seed(&ds, 2, "t-shirt\ntrouser\npullover\ndress\ncoat\nsandal\nshirt\nsneaker\nbag\n"
                       "ankle boot\n", "fmnist_2_meta");
    cifar_seed(&ds, 1, NULL, "fmnist_1");
    dim_dataset_free(&ds);
    /* an inference-only checkpoint of the service tests' smallest model */
    void *ck;
    size_t ckn;
    if (svcfix_checkpoint(NULL, 7, 0, &ck, &ckn) != 0)
        return 1;
    /* The whole file is 20 MB, far past what a fuzzer mutates: the seeds are
     * its header and tensor table (344 bytes in format version 2), then the
     * same with the first 64 payload bytes, and a copy of the header with
     * format version 3 (unsupported). The v1_* seeds (316 and 380 bytes) are
     * the same from format version 1, kept from before version 2. */
    put("fuzz_checkpoint", "header", ck, 344);
    put("fuzz_checkpoint", "header_payload64", ck, 408);
    ((uint8_t *)ck)[8] = 3;
    put("fuzz_checkpoint", "version3", ck, 344);
    (void)ckn;
    free(ck);
    return 0;
}
