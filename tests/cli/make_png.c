/* make_png.c - writes a small PNG for the CLI tests (tests only; libpng, libc).
 *
 * usage: make_png OUT.png WIDTH HEIGHT CHANNELS [SEED]
 * CHANNELS is 1 (grey) or 3 (RGB). The pixels are a deterministic pattern
 * that depends on SEED (default 0), so different seeds give different images.
 * Exits 0 on success, 2 on bad arguments, 1 when the file cannot be written.
 */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long w, h, c, seed = 0;
    if ((argc != 5 && argc != 6) || parse_int(argv[2], 1, 4096, &w) ||
        parse_int(argv[3], 1, 4096, &h) || parse_int(argv[4], 1, 3, &c) || c == 2 ||
        (argc == 6 && parse_int(argv[5], 0, 1000000, &seed))) {
        fprintf(stderr, "usage: make_png OUT.png WIDTH HEIGHT CHANNELS(1|3) [SEED]\n");
        return 2;
    }
    const size_t n = (size_t)w * (size_t)h * (size_t)c;
    uint8_t *px = malloc(n); /* (h, w, c) interleaved, as libpng wants */
    if (!px) {
        fprintf(stderr, "make_png: out of memory\n");
        return 1;
    }
    for (long y = 0; y < h; y++)
        for (long x = 0; x < w; x++)
            for (long k = 0; k < c; k++)
                px[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] =
                    (uint8_t)((x * (3 + seed) + y * (5 + 2 * seed) + k * 60 + seed * 37) & 255);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&img, argv[1], 0, px, 0, NULL);
    free(px);
    if (!ok) {
        fprintf(stderr, "make_png: %s: %s\n", argv[1], img.message);
        return 1;
    }
    return 0;
}
