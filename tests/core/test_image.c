/* test_image.c - PNG/JPEG decoding (valid, converted, corrupt, truncated, bombs),
 * PNG writing, and dim_image_to_input / dim_image_resample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>
#include <zlib.h>

#include "data/image.h"
#include "fixtures.h"

#define MAXPX ((size_t)1 << 24)

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

/* ---- PNG encoding with libpng into memory (any colour type, for the decoder) ---- */

struct membuf {
    uint8_t *p;
    size_t n, cap;
};

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    struct membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        size_t cap = (m->n + n) * 2;
        uint8_t *p = realloc(m->p, cap);
        assert_non_null(p);
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* rows: h rows of interleaved samples as libpng expects for (color, depth). */
static struct membuf encode_png(int w, int h, int color, int depth, int interlace,
                                const uint8_t *rows, size_t rowbytes, const png_color *pal,
                                int npal, const uint8_t *trns, int ntrns)
{
    struct membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed to encode the test image");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal)
        png_set_PLTE(png, info, pal, npal);
    if (trns)
        png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    png_bytep *rp = malloc((size_t)h * sizeof *rp);
    assert_non_null(rp);
    for (int y = 0; y < h; y++)
        rp[y] = (png_bytep)(rows + (size_t)y * rowbytes);
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rp);
    return m;
}

/* An RGB w x h PNG with a varied pattern, for the corruption tests. */
static struct membuf pattern_png(int w, int h)
{
    size_t rowbytes = (size_t)w * 3;
    uint8_t *rows = malloc(rowbytes * (size_t)h);
    assert_non_null(rows);
    for (size_t i = 0; i < rowbytes * (size_t)h; i++)
        rows[i] = (uint8_t)(i * 37u + (i >> 5) * 11u);
    struct membuf m = encode_png(w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, rows, rowbytes,
                                 NULL, 0, NULL, 0);
    free(rows);
    return m;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends a chunk with a correct CRC. */
static size_t put_chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t len)
{
    put_be32(p, len);
    memcpy(p + 4, type, 4);
    if (len)
        memcpy(p + 8, data, len);
    put_be32(p + 8 + len, (uint32_t)crc32(0, p + 4, 4 + len));
    return 12 + len;
}

/* ---- decoding ---- */

static void test_png_roundtrip_grey_rgb(void **state)
{
    (void)state;
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    char path[512];
    struct dim_err err;

    uint8_t grey[5 * 7];
    for (int i = 0; i < 35; i++)
        grey[i] = (uint8_t)(i * 7 + 3);
    struct dim_image g = {1, 5, 7, grey}, back;
    assert_int_equal(dim_image_write_png(fixtures_join(path, sizeof path, dir, "g.png"), &g, &err),
                     0);
    assert_int_equal(dim_image_load(path, MAXPX, &back, &err), 0);
    assert_int_equal(back.c, 1);
    assert_int_equal(back.h, 5);
    assert_int_equal(back.w, 7);
    assert_memory_equal(back.px, grey, sizeof grey);
    dim_image_free(&back);
    assert_null(back.px);

    uint8_t rgb[3 * 4 * 6];
    for (int i = 0; i < 72; i++)
        rgb[i] = (uint8_t)(255 - i * 3);
    struct dim_image c = {3, 4, 6, rgb};
    assert_int_equal(dim_image_write_png(fixtures_join(path, sizeof path, dir, "c.png"), &c, &err),
                     0);
    assert_int_equal(dim_image_load(path, MAXPX, &back, &err), 0);
    assert_int_equal(back.c, 3);
    assert_int_equal(back.h, 4);
    assert_int_equal(back.w, 6);
    assert_memory_equal(back.px, rgb, sizeof rgb); /* planar in, planar out */
    dim_image_free(&back);

    /* Writing into a missing directory fails and names the path. */
    assert_int_equal(dim_image_write_png("/nonexistent-dir/x.png", &c, &err), DIM_ENOENT);
    assert_msg_has(&err, "/nonexistent-dir/x.png");
    struct dim_image bad = {2, 4, 6, rgb};
    assert_int_equal(dim_image_write_png(path, &bad, &err), DIM_EINVAL);

    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

static void test_png_conversions(void **state)
{
    (void)state;
    struct dim_err err;
    struct dim_image img;

    /* RGBA: alpha dropped, colour exact. 2x1 pixels. */
    const uint8_t rgba[] = {10, 20, 30, 0, 200, 100, 50, 255};
    struct membuf m = encode_png(2, 1, PNG_COLOR_TYPE_RGBA, 8, 0, rgba, 8, NULL, 0, NULL, 0);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 3);
    const uint8_t want_rgb[] = {10, 200, 20, 100, 30, 50};
    assert_memory_equal(img.px, want_rgb, 6);
    dim_image_free(&img);
    free(m.p);

    /* Grey + alpha -> grey. */
    const uint8_t ga[] = {7, 0, 250, 128, 99, 255};
    m = encode_png(3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, ga, 6, NULL, 0, NULL, 0);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 1);
    const uint8_t want_g[] = {7, 250, 99};
    assert_memory_equal(img.px, want_g, 3);
    dim_image_free(&img);
    free(m.p);

    /* 2-bit palette with transparency -> RGB from the palette. 4x1 pixels, indices 3 2 1 0. */
    const png_color pal[4] = {{1, 2, 3}, {40, 50, 60}, {255, 0, 128}, {9, 8, 7}};
    const uint8_t trns[4] = {0, 128, 255, 255};
    const uint8_t idx[] = {(3 << 6) | (2 << 4) | (1 << 2) | 0};
    m = encode_png(4, 1, PNG_COLOR_TYPE_PALETTE, 2, 0, idx, 1, pal, 4, trns, 4);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 3);
    assert_int_equal(img.w, 4);
    const uint8_t want_pal[] = {9, 255, 40, 1, 8, 0, 50, 2, 7, 128, 60, 3};
    assert_memory_equal(img.px, want_pal, 12);
    dim_image_free(&img);
    free(m.p);

    /* 16-bit grey -> high byte. */
    const uint8_t g16[] = {0xab, 0xcd, 0x12, 0x34};
    m = encode_png(2, 1, PNG_COLOR_TYPE_GRAY, 16, 0, g16, 4, NULL, 0, NULL, 0);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 1);
    assert_int_equal(img.px[0], 0xab);
    assert_int_equal(img.px[1], 0x12);
    dim_image_free(&img);
    free(m.p);

    /* 1-bit grey -> 0 / 255. 8x1 pixels 10110001. */
    const uint8_t g1[] = {0xb1};
    m = encode_png(8, 1, PNG_COLOR_TYPE_GRAY, 1, 0, g1, 1, NULL, 0, NULL, 0);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    const uint8_t want_g1[] = {255, 0, 255, 255, 0, 0, 0, 255};
    assert_memory_equal(img.px, want_g1, 8);
    dim_image_free(&img);
    free(m.p);

    /* 4-bit grey with a tRNS colour -> grey, no alpha. 2x1 pixels 0x3, 0xf. */
    const uint8_t g4[] = {0x3f};
    png_color_16 tc = {.gray = 3};
    struct membuf m4 = {0};
    {
        png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
        png_infop info = png_create_info_struct(png);
        assert_non_null(info);
        if (setjmp(png_jmpbuf(png)))
            fail_msg("libpng failed to encode the test image");
        png_set_write_fn(png, &m4, mem_write, mem_flush);
        png_set_IHDR(png, info, 2, 1, 4, PNG_COLOR_TYPE_GRAY, 0, 0, 0);
        png_set_tRNS(png, info, NULL, 0, &tc);
        png_write_info(png, info);
        png_write_row(png, g4);
        png_write_end(png, NULL);
        png_destroy_write_struct(&png, &info);
    }
    assert_int_equal(dim_image_decode(m4.p, m4.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 1);
    assert_int_equal(img.px[0], 0x33);
    assert_int_equal(img.px[1], 0xff);
    dim_image_free(&img);
    free(m4.p);

    /* Adam7-interlaced grey 9x9 decodes exactly. */
    uint8_t il[81];
    for (int i = 0; i < 81; i++)
        il[i] = (uint8_t)(i * 3);
    m = encode_png(9, 9, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_ADAM7, il, 9, NULL, 0, NULL, 0);
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    assert_int_equal(img.h, 9);
    assert_memory_equal(img.px, il, 81);
    dim_image_free(&img);
    free(m.p);
}

static void test_jpeg_decode(void **state)
{
    (void)state;
    struct dim_err err;
    struct dim_image img;
    enum { H = 16, W = 24 };
    uint8_t px[3 * H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            px[0 * H * W + y * W + x] = (uint8_t)(40 + 8 * x);
            px[1 * H * W + y * W + x] = (uint8_t)(200 - 6 * y);
            px[2 * H * W + y * W + x] = 90;
        }
    char *dir = fixtures_mkdtemp();
    assert_non_null(dir);
    char path[512];
    assert_int_equal(
        fixtures_write_jpeg(fixtures_join(path, sizeof path, dir, "c.jpg"), px, 3, H, W, 95), 0);
    assert_int_equal(dim_image_load(path, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 3);
    assert_int_equal(img.h, H);
    assert_int_equal(img.w, W);
    for (size_t i = 0; i < sizeof px; i++)
        assert_close(img.px[i], px[i], 12);
    dim_image_free(&img);

    /* Greyscale JPEG -> one channel. */
    assert_int_equal(
        fixtures_write_jpeg(fixtures_join(path, sizeof path, dir, "g.jpg"), px, 1, H, W, 95), 0);
    assert_int_equal(dim_image_load(path, MAXPX, &img, &err), 0);
    assert_int_equal(img.c, 1);
    for (size_t i = 0; i < (size_t)H * W; i++)
        assert_close(img.px[i], px[i], 8);
    dim_image_free(&img);

    /* Pixel limit applies to JPEG too. */
    assert_int_equal(dim_image_load(path, 100, &img, &err), DIM_ELIMIT);
    assert_msg_has(&err, "384");
    assert_null(img.px);

    assert_int_equal(fixtures_rmtree(dir), 0);
    free(dir);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    struct dim_err err;
    struct dim_image img = {7, 7, 7, NULL};

    assert_int_equal(dim_image_decode("", 0, MAXPX, &img, &err), DIM_EFORMAT);
    assert_msg_has(&err, "empty image");
    assert_null(img.px);

    const char gif[] = "GIF89a\x01\x00\x01\x00";
    assert_int_equal(dim_image_decode(gif, sizeof gif - 1, MAXPX, &img, &err), DIM_EUNSUPPORTED);
    assert_msg_has(&err, "47 49 46 38");

    /* JPEG SOI followed by garbage. */
    const uint8_t badjpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x02, 0x13, 0x37, 0x00, 0x01,
                               0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(dim_image_decode(badjpeg, sizeof badjpeg, MAXPX, &img, &err), DIM_EFORMAT);
    assert_msg_has(&err, "JPEG");
    assert_null(img.px);

    assert_int_equal(dim_image_load("/nonexistent/x.png", MAXPX, &img, &err), DIM_ENOENT);
    assert_msg_has(&err, "/nonexistent/x.png");
}

static void test_png_corrupt_and_truncated(void **state)
{
    (void)state;
    struct dim_err err;
    struct dim_image img;
    struct membuf m = pattern_png(20, 12);

    /* Sanity: the intact file decodes. */
    assert_int_equal(dim_image_decode(m.p, m.n, MAXPX, &img, &err), 0);
    dim_image_free(&img);

    /* Flip bytes in the middle of IDAT: the chunk CRC no longer matches. */
    uint8_t *idat = NULL;
    for (size_t i = 8; i + 8 < m.n; i++)
        if (memcmp(m.p + i, "IDAT", 4) == 0) {
            idat = m.p + i;
            break;
        }
    assert_non_null(idat);
    uint32_t len =
        (uint32_t)idat[-4] << 24 | (uint32_t)idat[-3] << 16 | (uint32_t)idat[-2] << 8 | idat[-1];
    assert_true(len > 16);
    uint8_t *copy = malloc(m.n);
    assert_non_null(copy);
    memcpy(copy, m.p, m.n);
    size_t mid = (size_t)(idat - m.p) + 4 + len / 2;
    copy[mid] ^= 0xff;
    copy[mid + 1] ^= 0x5a;
    img.px = (uint8_t *)1;
    assert_int_equal(dim_image_decode(copy, m.n, MAXPX, &img, &err), DIM_EFORMAT);
    assert_msg_has(&err, "corrupt PNG");
    assert_null(img.px);
    free(copy);

    /* Every truncation is refused (EFORMAT; EUNSUPPORTED when not even the signature is left). */
    for (size_t n = 1; n < m.n; n++) {
        int rc = dim_image_decode(m.p, n, MAXPX, &img, &err);
        if (n < 8)
            assert_int_equal(rc, DIM_EUNSUPPORTED);
        else if (rc != DIM_EFORMAT)
            fail_msg("PNG truncated to %zu of %zu bytes gave %d (%s)", n, m.n, rc, err.msg);
        assert_null(img.px);
    }
    assert_int_equal(dim_image_decode(m.p, m.n / 2, MAXPX, &img, &err), DIM_EFORMAT);
    assert_msg_has(&err, "truncated");
    free(m.p);
}

static void test_jpeg_truncated(void **state)
{
    (void)state;
    struct dim_err err;
    struct dim_image img;
    uint8_t px[3 * 16 * 16];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 13);
    uint8_t *jpg;
    size_t n;
    assert_int_equal(fixtures_encode_jpeg(px, 3, 16, 16, 90, &jpg, &n), 0);
    assert_int_equal(dim_image_decode(jpg, n, MAXPX, &img, &err), 0);
    dim_image_free(&img);
    for (size_t k = 3; k < n; k++) {
        int rc = dim_image_decode(jpg, k, MAXPX, &img, &err);
        if (rc != DIM_EFORMAT)
            fail_msg("JPEG truncated to %zu of %zu bytes gave %d (%s)", k, n, rc, err.msg);
        assert_null(img.px);
    }
    free(jpg);
}

static void test_png_bomb_header(void **state)
{
    (void)state;
    /* Signature, IHDR claiming 30000x30000 RGB, a tiny IDAT, IEND - all CRCs valid. */
    uint8_t buf[256];
    size_t n = 0;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    n = 8;
    uint8_t ihdr[13];
    put_be32(ihdr, 30000);
    put_be32(ihdr + 4, 30000);
    ihdr[8] = 8;  /* depth */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = 0; /* compression */
    ihdr[11] = 0; /* filter */
    ihdr[12] = 0; /* interlace */
    n += put_chunk(buf + n, "IHDR", ihdr, 13);
    uint8_t z[64];
    uLongf zn = sizeof z;
    const uint8_t raw[4] = {0};
    assert_int_equal(compress(z, &zn, raw, sizeof raw), Z_OK);
    n += put_chunk(buf + n, "IDAT", z, (uint32_t)zn);
    n += put_chunk(buf + n, "IEND", NULL, 0);

    struct dim_err err;
    struct dim_image img;
    assert_int_equal(dim_image_decode(buf, n, (size_t)1 << 24, &img, &err), DIM_ELIMIT);
    assert_msg_has(&err, "30000x30000");
    assert_msg_has(&err, "16777216");
    assert_null(img.px);

    /* Header only (no IDAT/IEND): still refused by the limit, not by truncation. */
    assert_int_equal(dim_image_decode(buf, 33, (size_t)1 << 24, &img, &err), DIM_ELIMIT);
}

/* ---- dim_image_to_input ---- */

static void test_input_pad_28_to_32(void **state)
{
    (void)state;
    uint8_t px[28 * 28];
    for (int i = 0; i < 28 * 28; i++)
        px[i] = (uint8_t)(i % 256);
    px[0] = 255;
    px[1] = 0;
    struct dim_image img = {1, 28, 28, px};
    struct dim_preprocess pp = {1, 32, 32, 0, 0};
    float out[32 * 32];
    dim_image_to_input(&img, &pp, NULL, out);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            float v = out[y * 32 + x];
            if (y < 2 || y >= 30 || x < 2 || x >= 30) {
                if (v != -1.0f)
                    fail_msg("padding at (%d,%d) is %g, expected -1", y, x, (double)v);
            } else {
                assert_close(v, px[(y - 2) * 28 + (x - 2)] / 127.5 - 1.0, 1e-6);
            }
        }
    assert_true(out[2 * 32 + 2] == 1.0f);  /* 255 -> 1 exactly */
    assert_true(out[2 * 32 + 3] == -1.0f); /* 0 -> -1 exactly */
}

static void test_input_channels(void **state)
{
    (void)state;
    /* grey -> RGB replicates. */
    uint8_t g[4] = {0, 51, 204, 255};
    struct dim_image gi = {1, 2, 2, g};
    struct dim_preprocess p3 = {3, 2, 2, 0, 0};
    float o3[12];
    dim_image_to_input(&gi, &p3, NULL, o3);
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 4; i++)
            assert_close(o3[ch * 4 + i], g[i] / 127.5 - 1.0, 1e-6);

    /* RGB -> grey uses BT.601 luma. Pixels: red, green, blue, white. */
    uint8_t rgb[12] = {255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255};
    struct dim_image ci = {3, 2, 2, rgb};
    struct dim_preprocess p1 = {1, 2, 2, 0, 0};
    float o1[4];
    dim_image_to_input(&ci, &p1, NULL, o1);
    assert_close(o1[0], 0.299 * 255 / 127.5 - 1.0, 1e-5);
    assert_close(o1[1], 0.587 * 255 / 127.5 - 1.0, 1e-5);
    assert_close(o1[2], 0.114 * 255 / 127.5 - 1.0, 1e-5);
    assert_close(o1[3], 1.0, 1e-5);
}

static void test_input_resize(void **state)
{
    (void)state;
    /* 32 -> 64 needs 16 px padding a side (> 64/8): resized; a constant stays constant. */
    static uint8_t c32[32 * 32];
    memset(c32, 100, sizeof c32);
    struct dim_image img = {1, 32, 32, c32};
    struct dim_preprocess pp = {1, 64, 64, 0, 0};
    static float out[64 * 64];
    dim_image_to_input(&img, &pp, NULL, out);
    for (int i = 0; i < 64 * 64; i++)
        assert_close(out[i], 100 / 127.5 - 1.0, 1e-5);

    /* 24 -> 32 pads (4 a side = 32/8); 22 -> 32 (5 a side) resizes. */
    static uint8_t c24[24 * 24], c22[22 * 22];
    memset(c24, 200, sizeof c24);
    memset(c22, 200, sizeof c22);
    struct dim_image i24 = {1, 24, 24, c24}, i22 = {1, 22, 22, c22};
    struct dim_preprocess p32 = {1, 32, 32, 0, 0};
    static float o32[32 * 32];
    dim_image_to_input(&i24, &p32, NULL, o32);
    assert_true(o32[0] == -1.0f);
    assert_true(o32[3 * 32 + 3] == -1.0f);
    assert_close(o32[4 * 32 + 4], 200 / 127.5 - 1.0, 1e-6);
    dim_image_to_input(&i22, &p32, NULL, o32);
    for (int i = 0; i < 32 * 32; i++)
        assert_close(o32[i], 200 / 127.5 - 1.0, 1e-5);

    /* Bilinear with half-pixel centres: columns [0, 255] -> 4 wide = 0, 63.75, 191.25, 255. */
    uint8_t two[4] = {0, 255, 0, 255};
    struct dim_image i2 = {1, 2, 2, two};
    struct dim_preprocess p4 = {1, 4, 4, 0, 0};
    float o4[16];
    dim_image_to_input(&i2, &p4, NULL, o4);
    const double want[4] = {0, 63.75, 191.25, 255};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            assert_close(o4[y * 4 + x], want[x] / 127.5 - 1.0, 1e-5);

    /* Downscale 40x40 -> 16x16 RGB: a constant colour per channel stays. */
    uint8_t rgb[3 * 40 * 40];
    memset(rgb, 10, 1600);
    memset(rgb + 1600, 20, 1600);
    memset(rgb + 3200, 250, 1600);
    struct dim_image irgb = {3, 40, 40, rgb};
    struct dim_preprocess p3 = {3, 16, 16, 0, 0};
    float o3[3 * 16 * 16];
    dim_image_to_input(&irgb, &p3, NULL, o3);
    assert_close(o3[5], 10 / 127.5 - 1.0, 1e-5);
    assert_close(o3[256 + 5], 20 / 127.5 - 1.0, 1e-5);
    assert_close(o3[512 + 255], 250 / 127.5 - 1.0, 1e-5);
}

static void test_input_augment(void **state)
{
    (void)state;
    enum { S = 8 };
    uint8_t px[S * S];
    for (int i = 0; i < S * S; i++)
        px[i] = (uint8_t)(3 * i + 1); /* all distinct and non-zero */
    struct dim_image img = {1, S, S, px};
    struct dim_preprocess plain = {1, S, S, 0, 0};
    struct dim_preprocess aug = {1, S, S, 2, 1};
    float base[S * S], out[S * S], out2[S * S];
    dim_image_to_input(&img, &plain, NULL, base);

    /* Without an rng nothing random happens, whatever pp asks for. */
    dim_image_to_input(&img, &aug, NULL, out);
    assert_memory_equal(out, base, sizeof base);

    /* Same seed -> same output; the output is a shift by the drawn offsets
     * (y then x, each in [-2, 2]) followed by the drawn flip; -1 where shifted in. */
    int saw_change = 0, saw_flip = 0, saw_noflip = 0;
    struct dim_rng r1, r2, mirror;
    dim_rng_seed(&r1, 42, 7);
    dim_rng_seed(&r2, 42, 7);
    for (int t = 0; t < 40; t++) {
        mirror = r1;
        dim_image_to_input(&img, &aug, &r1, out);
        dim_image_to_input(&img, &aug, &r2, out2);
        assert_memory_equal(out, out2, sizeof out);
        int dy = (int)dim_rng_below(&mirror, 5) - 2;
        int dx = (int)dim_rng_below(&mirror, 5) - 2;
        int flip = (int)(dim_rng_u32(&mirror) >> 31);
        assert_memory_equal(&mirror, &r1, sizeof mirror); /* exactly three draws */
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sx = (flip ? S - 1 - x : x) + dx, sy = y + dy;
                float want = (sy < 0 || sx < 0 || sy >= S || sx >= S) ? -1.0f : base[sy * S + sx];
                if (out[y * S + x] != want)
                    fail_msg("draw %d (dy %d dx %d flip %d): (%d,%d) is %g, want %g", t, dy, dx,
                             flip, y, x, (double)out[y * S + x], (double)want);
            }
        saw_change |= memcmp(out, base, sizeof base) != 0;
        saw_flip |= flip;
        saw_noflip |= !flip;
    }
    assert_true(saw_change);
    assert_true(saw_flip && saw_noflip);

    /* Flip only: a mirror image, no shift. */
    struct dim_preprocess fl = {1, S, S, 0, 1};
    struct dim_rng r;
    dim_rng_seed(&r, 1, 1);
    int flipped = 0;
    for (int t = 0; t < 16; t++) {
        dim_image_to_input(&img, &fl, &r, out);
        if (memcmp(out, base, sizeof base) != 0) {
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    assert_true(out[y * S + x] == base[y * S + (S - 1 - x)]);
            flipped++;
        }
    }
    assert_true(flipped > 0 && flipped < 16);
}

static void test_resample(void **state)
{
    (void)state;
    uint8_t rgb[3 * 4] = {255, 0, 0, 100, 0, 255, 0, 100, 0, 0, 255, 100};
    struct dim_image img = {3, 2, 2, rgb};
    uint8_t g[4];
    dim_image_resample(&img, 1, 2, 2, g);
    assert_int_equal(g[0], 76);  /* 0.299 * 255 = 76.2 */
    assert_int_equal(g[1], 150); /* 0.587 * 255 = 149.7 */
    assert_int_equal(g[2], 29);  /* 0.114 * 255 = 29.1 */
    assert_int_equal(g[3], 100);
    uint8_t c16[16 * 16];
    memset(c16, 77, sizeof c16);
    struct dim_image big = {1, 16, 16, c16};
    uint8_t small[3 * 5 * 5];
    dim_image_resample(&big, 3, 5, 5, small); /* never pads, grey -> RGB */
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal(small[i], 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip_grey_rgb),
        cmocka_unit_test(test_png_conversions),
        cmocka_unit_test(test_jpeg_decode),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_png_corrupt_and_truncated),
        cmocka_unit_test(test_jpeg_truncated),
        cmocka_unit_test(test_png_bomb_header),
        cmocka_unit_test(test_input_pad_28_to_32),
        cmocka_unit_test(test_input_channels),
        cmocka_unit_test(test_input_resize),
        cmocka_unit_test(test_input_augment),
        cmocka_unit_test(test_resample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
