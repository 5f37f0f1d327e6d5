/* image.c - PNG/JPEG decoding from memory, PNG writing, and the single definition
 * of how an 8-bit image becomes a model input (dim_image_to_input).
 *
 * Decoders treat their input as untrusted: the pixel limit is checked from the
 * header before any pixel memory is allocated, libpng/libjpeg errors are caught
 * with longjmp (never printed), every error path frees what it allocated, and
 * truncated or corrupt data is an error rather than a partially grey image.
 * Depends on: libpng, libjpeg(-turbo), libc. No globals; thread-safe.
 */
#include "data/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* 0 means "no limit" (the caller asked for none); otherwise w*h must not exceed it. */
static int check_pixels(size_t w, size_t h, size_t max_pixels, const char *kind,
                        struct dim_err *err)
{
    if (w == 0 || h == 0)
        return dim_fail(err, DIM_EFORMAT, "%s has zero size (%zux%zu)", kind, w, h);
    if (w > INT_MAX || h > INT_MAX || (max_pixels && w > max_pixels / h))
        return dim_fail(err, DIM_ELIMIT, "%s is %zux%zu = %.0f pixels, limit is %zu", kind, w, h,
                        (double)w * (double)h, max_pixels);
    if (w > SIZE_MAX / 4 / h)
        return dim_fail(err, DIM_ELIMIT, "%s is %zux%zu pixels, too large to address", kind, w, h);
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- PNG ---------------------------------------------------------------- */

struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    size_t max_pixels;
    png_structp png;
    png_infop info;
    uint8_t *inter;  /* interleaved decoded rows */
    png_bytep *rows; /* row pointers into inter */
    uint8_t *px;     /* planar result */
    int code;        /* status when a callback, not libpng, raised the error */
    char msg[256];   /* libpng's message or ours */
    struct dim_err *err;
};

static void png_mem_read(png_structp png, png_bytep out, size_t n)
{
    struct png_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos)
        png_error(png, "unexpected end of data (truncated)");
    memcpy(out, ctx->buf + ctx->pos, n);
    ctx->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings concern ancillary data; never printed */
}

/* Everything after setjmp lives in *ctx (the caller's frame), so nothing this
 * function's frame holds is needed after a longjmp. */
static int png_decode_inner(struct png_ctx *ctx, struct dim_image *out)
{
    if (setjmp(png_jmpbuf(ctx->png)))
        return ctx->code ? ctx->code : DIM_EFORMAT;

    png_set_read_fn(ctx->png, ctx, png_mem_read);
    png_set_crc_action(ctx->png, PNG_CRC_DEFAULT, PNG_CRC_DEFAULT);
    png_read_info(ctx->png, ctx->info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(ctx->png, ctx->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    int rc = check_pixels(w, h, ctx->max_pixels, "PNG image", ctx->err);
    if (rc < 0) {
        ctx->code = rc;
        snprintf(ctx->msg, sizeof ctx->msg, "%s", ctx->err ? ctx->err->msg : "");
        return rc;
    }

    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(ctx->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(ctx->png);
    if (depth == 16)
        png_set_strip_16(ctx->png);
    /* Unconditional: palette expansion also turns tRNS into an alpha channel. */
    png_set_strip_alpha(ctx->png);
    png_set_interlace_handling(ctx->png);
    png_read_update_info(ctx->png, ctx->info);

    int c = png_get_channels(ctx->png, ctx->info);
    size_t rowbytes = png_get_rowbytes(ctx->png, ctx->info);
    if ((c != 1 && c != 3) || rowbytes != (size_t)w * (size_t)c) {
        ctx->code = DIM_EUNSUPPORTED;
        snprintf(ctx->msg, sizeof ctx->msg,
                 "PNG colour type %d depth %d gives %d channels, expected 1 or 3", color, depth, c);
        return DIM_EUNSUPPORTED;
    }

    size_t n = (size_t)w * h * (size_t)c;
    ctx->inter = malloc(n);
    ctx->rows = malloc(h * sizeof *ctx->rows);
    ctx->px = malloc(n);
    if (!ctx->inter || !ctx->rows || !ctx->px) {
        ctx->code = DIM_ENOMEM;
        snprintf(ctx->msg, sizeof ctx->msg, "no memory for a %ux%u PNG image", (unsigned)w,
                 (unsigned)h);
        return DIM_ENOMEM;
    }
    for (size_t y = 0; y < h; y++)
        ctx->rows[y] = ctx->inter + y * rowbytes;
    png_read_image(ctx->png, ctx->rows);
    png_read_end(ctx->png, NULL);

    size_t plane = (size_t)w * h;
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < c; k++)
            ctx->px[(size_t)k * plane + i] = ctx->inter[i * (size_t)c + (size_t)k];
    out->c = c;
    out->h = (int)h;
    out->w = (int)w;
    out->px = ctx->px;
    ctx->px = NULL;
    return 0;
}

static int png_decode(const uint8_t *buf, size_t len, size_t max_pixels, struct dim_image *out,
                      struct dim_err *err)
{
    /* Check the size in IHDR before libpng runs, so a header-only bomb is refused
     * even when the rest of the file is missing. PNG requires IHDR first. */
    if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) {
        int rc = check_pixels(be32(buf + 16), be32(buf + 20), max_pixels, "PNG image", err);
        if (rc < 0)
            return rc;
    }

    struct png_ctx ctx = {.buf = buf, .len = len, .max_pixels = max_pixels, .err = err};
    ctx.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    if (!ctx.png)
        return dim_fail(err, DIM_ENOMEM, "cannot create a PNG decoder");
    ctx.info = png_create_info_struct(ctx.png);
    if (!ctx.info) {
        png_destroy_read_struct(&ctx.png, NULL, NULL);
        return dim_fail(err, DIM_ENOMEM, "cannot create a PNG decoder");
    }
    /* libpng's own limit is 1e6 x 1e6; ours is checked after png_read_info. */
    int rc = png_decode_inner(&ctx, out);
    png_destroy_read_struct(&ctx.png, &ctx.info, NULL);
    free(ctx.inter);
    free(ctx.rows);
    free(ctx.px);
    if (rc == 0)
        return 0;
    if (rc == DIM_EFORMAT)
        return dim_fail(err, rc, "corrupt PNG: %s", ctx.msg);
    return dim_fail(err, rc, "%s", ctx.msg);
}

/* ---- JPEG --------------------------------------------------------------- */

struct jpeg_ctx {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    struct jpeg_decompress_struct cinfo;
    size_t max_pixels;
    uint8_t *row; /* one interleaved scanline */
    uint8_t *px;  /* planar result */
    int code;
    char msg[JMSG_LENGTH_MAX + 64];
    struct dim_err *err;
};

static void jpeg_on_error(j_common_ptr cinfo)
{
    struct jpeg_ctx *ctx = (struct jpeg_ctx *)cinfo->err;
    char buf[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, buf);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", buf);
    longjmp(ctx->jmp, 1);
}

/* Warnings: those that mean the data is damaged (premature end, bad Huffman
 * code, lost sync...) are treated as errors, so a truncated file is refused
 * instead of decoding to a grey bottom half. Trace messages are ignored. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return;
    switch (cinfo->err->msg_code) {
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
        return;
    default:
        jpeg_on_error(cinfo);
    }
}

static void jpeg_output_nothing(j_common_ptr cinfo)
{
    (void)cinfo;
}

static int jpeg_decode_inner(struct jpeg_ctx *ctx, const uint8_t *buf, size_t len,
                             struct dim_image *out)
{
    struct jpeg_decompress_struct *ci = &ctx->cinfo;
    if (setjmp(ctx->jmp))
        return ctx->code ? ctx->code : DIM_EFORMAT;

    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, buf, (unsigned long)len);
    jpeg_read_header(ci, TRUE);

    int rc =
        check_pixels(ci->image_width, ci->image_height, ctx->max_pixels, "JPEG image", ctx->err);
    if (rc < 0) {
        ctx->code = rc;
        snprintf(ctx->msg, sizeof ctx->msg, "%s", ctx->err ? ctx->err->msg : "");
        return rc;
    }
    int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    if (ci->num_components == 1)
        ci->out_color_space = JCS_GRAYSCALE;
    else if (cmyk)
        ci->out_color_space = JCS_CMYK;
    else
        ci->out_color_space = JCS_RGB;
    jpeg_start_decompress(ci);

    int oc = ci->output_components;
    int c = cmyk ? 3 : oc;
    if ((c != 1 && c != 3) || (cmyk && oc != 4)) {
        ctx->code = DIM_EUNSUPPORTED;
        snprintf(ctx->msg, sizeof ctx->msg, "JPEG with %d output components", oc);
        return DIM_EUNSUPPORTED;
    }
    size_t w = ci->output_width, h = ci->output_height, plane = w * h;
    ctx->row = malloc(w * (size_t)oc);
    ctx->px = malloc(plane * (size_t)c);
    if (!ctx->row || !ctx->px) {
        ctx->code = DIM_ENOMEM;
        snprintf(ctx->msg, sizeof ctx->msg, "no memory for a %zux%zu JPEG image", w, h);
        return DIM_ENOMEM;
    }
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        JSAMPROW rows[1] = {ctx->row};
        if (jpeg_read_scanlines(ci, rows, 1) != 1) {
            ctx->code = DIM_EFORMAT;
            snprintf(ctx->msg, sizeof ctx->msg, "truncated at scanline %zu of %zu", y, h);
            return DIM_EFORMAT;
        }
        uint8_t *dst = ctx->px + y * w;
        const uint8_t *src = ctx->row;
        for (size_t x = 0; x < w; x++) {
            if (cmyk) {
                /* Adobe stores CMYK inverted: R = C*K/255 on the stored values. */
                unsigned k = src[x * 4 + 3];
                for (int ch = 0; ch < 3; ch++)
                    dst[(size_t)ch * plane + x] = (uint8_t)((src[x * 4 + ch] * k + 127) / 255);
            } else {
                for (int ch = 0; ch < c; ch++)
                    dst[(size_t)ch * plane + x] = src[x * (size_t)c + (size_t)ch];
            }
        }
    }
    jpeg_finish_decompress(ci);
    out->c = c;
    out->h = (int)h;
    out->w = (int)w;
    out->px = ctx->px;
    ctx->px = NULL;
    return 0;
}

static int jpeg_decode(const uint8_t *buf, size_t len, size_t max_pixels, struct dim_image *out,
                       struct dim_err *err)
{
    struct jpeg_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return dim_fail(err, DIM_ENOMEM, "cannot create a JPEG decoder");
    ctx->max_pixels = max_pixels;
    ctx->err = err;
    ctx->cinfo.err = jpeg_std_error(&ctx->pub);
    ctx->pub.error_exit = jpeg_on_error;
    ctx->pub.emit_message = jpeg_on_message;
    ctx->pub.output_message = jpeg_output_nothing;
    int rc = jpeg_decode_inner(ctx, buf, len, out);
    jpeg_destroy_decompress(&ctx->cinfo);
    free(ctx->row);
    free(ctx->px);
    if (rc == DIM_EFORMAT)
        dim_fail(err, rc, "corrupt JPEG: %s", ctx->msg);
    else if (rc < 0)
        dim_fail(err, rc, "%s", ctx->msg);
    free(ctx);
    return rc;
}

/* ---- public decoding API ------------------------------------------------- */

int dim_image_decode(const void *buf, size_t len, size_t max_pixels, struct dim_image *out,
                     struct dim_err *err)
{
    if (!out)
        return dim_fail(err, DIM_EINVAL, "dim_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (len == 0)
        return dim_fail(err, DIM_EFORMAT, "empty image (0 bytes)");
    if (!buf)
        return dim_fail(err, DIM_EINVAL, "dim_image_decode: buf is NULL with length %zu", len);
    const uint8_t *b = buf;
    int rc;
    if (len >= 8 && memcmp(b, png_sig, 8) == 0)
        rc = png_decode(b, len, max_pixels, out, err);
    else if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        rc = jpeg_decode(b, len, max_pixels, out, err);
    else
        return dim_fail(err, DIM_EUNSUPPORTED,
                        "unknown image signature %02x %02x %02x %02x (%zu bytes); "
                        "expected PNG or JPEG",
                        b[0], len > 1 ? b[1] : 0, len > 2 ? b[2] : 0, len > 3 ? b[3] : 0, len);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int dim_image_load(const char *path, size_t max_pixels, struct dim_image *out, struct dim_err *err)
{
    if (!out || !path)
        return dim_fail(err, DIM_EINVAL, "dim_image_load: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return dim_fail(err, errno == ENOENT ? DIM_ENOENT : DIM_EIO, "cannot open %s: %s", path,
                        strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                rc =
                    dim_fail(err, DIM_ENOMEM, "no memory to read %s (%zu bytes so far)", path, len);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = dim_fail(err, DIM_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == 0) {
        rc = dim_image_decode(buf, len, max_pixels, out, err);
        if (rc < 0 && err) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            dim_fail(err, rc, "%s: %s", path, msg);
        }
    }
    free(buf);
    return rc;
}

void dim_image_free(struct dim_image *img)
{
    if (!img)
        return;
    free(img->px);
    memset(img, 0, sizeof *img);
}

/* ---- PNG writing -------------------------------------------------------- */

struct png_wctx {
    FILE *f;         /* file sink, or NULL for the memory sink below */
    uint8_t *mem;    /* memory sink: malloc'd bytes written so far */
    size_t len, cap; /* ... their count and the buffer's capacity */
    png_structp png;
    png_infop info;
    uint8_t *row;
    char msg[200];
};

static void png_mem_write(png_structp png, png_bytep data, size_t n)
{
    struct png_wctx *ctx = png_get_io_ptr(png);
    if (n > ctx->cap - ctx->len) {
        size_t cap = ctx->cap ? ctx->cap : 4096;
        while (cap - ctx->len < n && cap <= SIZE_MAX / 2)
            cap *= 2;
        uint8_t *p = cap - ctx->len >= n ? realloc(ctx->mem, cap) : NULL;
        if (!p)
            png_error(png, "out of memory for the encoded PNG");
        ctx->mem = p;
        ctx->cap = cap;
    }
    memcpy(ctx->mem + ctx->len, data, n);
    ctx->len += n;
}

static void png_mem_flush(png_structp png)
{
    (void)png;
}

static void png_on_werror(png_structp png, png_const_charp msg)
{
    struct png_wctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static int png_write_inner(struct png_wctx *ctx, const struct dim_image *img)
{
    if (setjmp(png_jmpbuf(ctx->png)))
        return DIM_EIO;
    if (ctx->f)
        png_init_io(ctx->png, ctx->f);
    else
        png_set_write_fn(ctx->png, ctx, png_mem_write, png_mem_flush);
    png_set_IHDR(ctx->png, ctx->info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
                 img->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(ctx->png, ctx->info);
    size_t w = (size_t)img->w, h = (size_t)img->h, c = (size_t)img->c, plane = w * h;
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++)
            for (size_t k = 0; k < c; k++)
                ctx->row[x * c + k] = img->px[k * plane + y * w + x];
        png_write_row(ctx->png, ctx->row);
    }
    png_write_end(ctx->png, NULL);
    return 0;
}

/* Checks that img can be a PNG (grey or RGB, nonempty); verb names the call. */
static int png_check(const struct dim_image *img, const char *verb, struct dim_err *err)
{
    if ((img->c != 1 && img->c != 3) || img->h <= 0 || img->w <= 0)
        return dim_fail(err, DIM_EINVAL, "cannot %s a %dx%dx%d image as PNG (c must be 1 or 3)",
                        verb, img->c, img->h, img->w);
    return 0;
}

/* Encodes a checked img through ctx (to ctx->f when set, else into ctx->mem):
 * 0, or a negative DIM_E* code with ctx->msg. */
static int png_encode(struct png_wctx *ctx, const struct dim_image *img)
{
    ctx->row = malloc((size_t)img->w * (size_t)img->c);
    if (!ctx->row) {
        snprintf(ctx->msg, sizeof ctx->msg, "out of memory for a row of width %d", img->w);
        return DIM_ENOMEM;
    }
    int rc = DIM_ENOMEM;
    ctx->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_werror, png_on_warning);
    if (ctx->png)
        ctx->info = png_create_info_struct(ctx->png);
    if (ctx->png && ctx->info)
        rc = png_write_inner(ctx, img);
    else
        snprintf(ctx->msg, sizeof ctx->msg, "cannot create a PNG encoder");
    png_destroy_write_struct(&ctx->png, &ctx->info);
    free(ctx->row);
    ctx->row = NULL;
    return rc;
}

int dim_image_write_png(const char *path, const struct dim_image *img, struct dim_err *err)
{
    if (!path || !img || !img->px)
        return dim_fail(err, DIM_EINVAL, "dim_image_write_png: NULL argument");
    int rc = png_check(img, "write", err);
    if (rc != 0)
        return rc;
    struct png_wctx ctx = {0};
    ctx.f = fopen(path, "wb");
    if (!ctx.f) {
        int e = errno;
        return dim_fail(err, e == ENOENT ? DIM_ENOENT : DIM_EIO, "cannot create %s: %s", path,
                        strerror(e));
    }
    rc = png_encode(&ctx, img);
    if (fclose(ctx.f) != 0 && rc == 0) {
        rc = DIM_EIO;
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
    }
    if (rc < 0) {
        remove(path);
        return dim_fail(err, rc, "cannot write PNG %s: %s", path, ctx.msg);
    }
    return 0;
}

int dim_image_encode_png(const struct dim_image *img, uint8_t **out, size_t *out_len,
                         struct dim_err *err)
{
    if (!out || !out_len || !img || !img->px)
        return dim_fail(err, DIM_EINVAL, "dim_image_encode_png: NULL argument");
    *out = NULL;
    *out_len = 0;
    int rc = png_check(img, "encode", err);
    if (rc != 0)
        return rc;
    struct png_wctx ctx = {0};
    rc = png_encode(&ctx, img);
    if (rc < 0) {
        free(ctx.mem);
        return dim_fail(err, strstr(ctx.msg, "out of memory") ? DIM_ENOMEM : rc,
                        "cannot encode PNG: %s", ctx.msg);
    }
    *out = ctx.mem;
    *out_len = ctx.len;
    return 0;
}

/* ---- conversion to model input ------------------------------------------ */

/* Source value of channel ch at (y, x) after channel conversion to tc channels. */
static float src_value(const struct dim_image *img, int tc, int ch, size_t y, size_t x)
{
    size_t plane = (size_t)img->h * (size_t)img->w;
    const uint8_t *p = img->px + y * (size_t)img->w + x;
    if (img->c == tc)
        return p[(size_t)ch * plane];
    if (tc == 1 && img->c >= 3) /* ITU-R BT.601 luma */
        return 0.299f * p[0] + 0.587f * p[plane] + 0.114f * p[2 * plane];
    return p[0]; /* grey -> RGB by replication (and any other mismatch: channel 0) */
}

/* Bilinear sample (half-pixel centres, edges clamped) of the channel-converted
 * source at target pixel (ty, tx) of a th x tw resize. */
static float bilinear(const struct dim_image *img, int tc, int ch, int th, int tw, int ty, int tx)
{
    float fy = ((float)ty + 0.5f) * (float)img->h / (float)th - 0.5f;
    float fx = ((float)tx + 0.5f) * (float)img->w / (float)tw - 0.5f;
    if (fy < 0)
        fy = 0;
    if (fx < 0)
        fx = 0;
    int y0 = (int)fy, x0 = (int)fx;
    if (y0 > img->h - 1)
        y0 = img->h - 1;
    if (x0 > img->w - 1)
        x0 = img->w - 1;
    int y1 = y0 + 1 < img->h ? y0 + 1 : y0;
    int x1 = x0 + 1 < img->w ? x0 + 1 : x0;
    float ay = fy - (float)y0, ax = fx - (float)x0;
    if (ay > 1)
        ay = 1;
    if (ax > 1)
        ax = 1;
    float v00 = src_value(img, tc, ch, (size_t)y0, (size_t)x0);
    float v01 = src_value(img, tc, ch, (size_t)y0, (size_t)x1);
    float v10 = src_value(img, tc, ch, (size_t)y1, (size_t)x0);
    float v11 = src_value(img, tc, ch, (size_t)y1, (size_t)x1);
    float top = v00 + (v01 - v00) * ax;
    float bot = v10 + (v11 - v10) * ax;
    return top + (bot - top) * ay;
}

/* The geometry rule of dim_image_to_input: pad when the source fits and needs at
 * most target/8 pixels of padding on every side. */
static int pads(int src, int dst)
{
    if (src > dst)
        return 0;
    int total = dst - src;
    return total - total / 2 <= dst / 8;
}

/* Value in [0, 255] of the target-size image (before augmentation) at (ty, tx);
 * outside the target (augmentation padding) it is 0. */
static float target_value(const struct dim_image *img, const struct dim_preprocess *pp, int pad,
                          int ch, int ty, int tx)
{
    if (ty < 0 || tx < 0 || ty >= pp->h || tx >= pp->w)
        return 0.0f;
    if (pad) {
        int sy = ty - (pp->h - img->h) / 2, sx = tx - (pp->w - img->w) / 2;
        if (sy < 0 || sx < 0 || sy >= img->h || sx >= img->w)
            return 0.0f;
        return src_value(img, pp->c, ch, (size_t)sy, (size_t)sx);
    }
    return bilinear(img, pp->c, ch, pp->h, pp->w, ty, tx);
}

void dim_image_to_input(const struct dim_image *img, const struct dim_preprocess *pp,
                        struct dim_rng *rng, float *out)
{
    int pad = pads(img->h, pp->h) && pads(img->w, pp->w);
    /* Augmentation draws, in this order: crop offset y, crop offset x (each in
     * [0, 2*random_crop]), then the flip bit. */
    int dy = 0, dx = 0, flip = 0;
    if (rng && pp->random_crop > 0) {
        uint32_t span = 2u * (uint32_t)pp->random_crop + 1u;
        dy = (int)dim_rng_below(rng, span) - pp->random_crop;
        dx = (int)dim_rng_below(rng, span) - pp->random_crop;
    }
    if (rng && pp->random_flip)
        flip = (int)(dim_rng_u32(rng) >> 31);

    for (int ch = 0; ch < pp->c; ch++) {
        float *o = out + (size_t)ch * (size_t)pp->h * (size_t)pp->w;
        for (int y = 0; y < pp->h; y++) {
            for (int x = 0; x < pp->w; x++) {
                int sx = flip ? pp->w - 1 - x : x;
                float v = target_value(img, pp, pad, ch, y + dy, sx + dx);
                o[(size_t)y * (size_t)pp->w + (size_t)x] = v / 127.5f - 1.0f;
            }
        }
    }
}

void dim_image_resample(const struct dim_image *img, int c, int h, int w, uint8_t *out)
{
    for (int ch = 0; ch < c; ch++) {
        uint8_t *o = out + (size_t)ch * (size_t)h * (size_t)w;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                float v = (h == img->h && w == img->w) ? src_value(img, c, ch, (size_t)y, (size_t)x)
                                                       : bilinear(img, c, ch, h, w, y, x);
                v = floorf(v + 0.5f);
                o[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)(v < 0.0f     ? 0.0f
                                                                 : v > 255.0f ? 255.0f
                                                                              : v);
            }
        }
    }
}
