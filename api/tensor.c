/* tensor.c - raw and JSON float tensors as 8-bit images (api/tensor.h). */
#include "api/tensor.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tensor_shape_parse(const char *text, struct tensor_shape *shape, struct dim_err *err)
{
    if (!text)
        return dim_fail(err, DIM_EFORMAT, "no shape");
    long d[4];
    int n = 0;
    const char *s = text;
    while (*s && n < 4) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            return dim_fail(err, DIM_EFORMAT, "'%.40s': number %d is missing", text, n + 1);
        if (v < 1)
            return dim_fail(err, DIM_EFORMAT, "'%.40s': number %d is %ld, below 1", text, n + 1, v);
        d[n++] = v;
        while (*end == ' ')
            end++;
        if (*end == ',')
            end++;
        else if (*end)
            return dim_fail(err, DIM_EFORMAT, "'%.40s': number %d is followed by neither ',' nor "
                            "the end", text, n);
        s = end;
    }
    if (*s)
        return dim_fail(err, DIM_EFORMAT, "'%.40s' has more than 4 numbers", text);
    if (n != 3 && n != 4)
        return dim_fail(err, DIM_EFORMAT, "'%.40s' has %d number%s, not 3 or 4", text, n,
                        n == 1 ? "" : "s");
    if (n == 3)
        *shape = (struct tensor_shape){1, d[0], d[1], d[2]};
    else
        *shape = (struct tensor_shape){d[0], d[1], d[2], d[3]};
    return 0;
}

int tensor_raw_check(const struct tensor_shape *shape, size_t nbytes, struct dim_err *err)
{
    const long d[4] = {shape->n, shape->c, shape->h, shape->w};
    size_t need = sizeof(float);
    for (int k = 0; k < 4; k++) {
        if (d[k] < 1 || need > SIZE_MAX / (size_t)d[k])
            return dim_fail(err, DIM_ESHAPE,
                            "%ld,%ld,%ld,%ld needs more bytes of float32 than there are; the body "
                            "has %zu",
                            d[0], d[1], d[2], d[3], nbytes);
        need *= (size_t)d[k];
    }
    if (need != nbytes)
        return dim_fail(err, DIM_ESHAPE, "%ld,%ld,%ld,%ld needs %zu bytes of float32; the body has %zu",
                        d[0], d[1], d[2], d[3], need, nbytes);
    return 0;
}

int tensor_image_check(long c, long h, long w, size_t max_pixels, struct dim_err *err)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > TENSOR_SIDE_MAX || w > TENSOR_SIDE_MAX)
        return dim_fail(err, DIM_ESHAPE,
                        "shape [%ld, %ld, %ld] must be [C, H, W] with C 1 or 3 (H and W 1 to %ld)",
                        c, h, w, TENSOR_SIDE_MAX);
    if ((size_t)h * (size_t)w > max_pixels)
        return dim_fail(err, DIM_ELIMIT, "%ld x %ld pixels, more than %zu", w, h, max_pixels);
    return 0;
}

/* Pixel of value v, or -1 (with err set) when v is not in [0, 1]. */
static int tensor_pixel(double v, size_t k, struct dim_err *err)
{
    if (v >= 0.0 && v <= 1.0)
        return (int)lrint(v * 255.0);
    if (isnan(v))
        dim_fail(err, DIM_ERANGE, "value %zu is NaN; values are pixel intensities in [0, 1]", k);
    else
        dim_fail(err, DIM_ERANGE, "value %zu is %g; values are pixel intensities in [0, 1]", k, v);
    return -1;
}

/* img's pixels for a (c, h, w) tensor, or DIM_ENOMEM. */
static int tensor_alloc(long c, long h, long w, struct dim_image *img, struct dim_err *err)
{
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    *img = (struct dim_image){(int)c, (int)h, (int)w, malloc(n)};
    if (!img->px)
        return dim_fail(err, DIM_ENOMEM, "out of memory for %zu pixels", n);
    return 0;
}

/* Ends a conversion that failed at a value: frees the pixels, returns DIM_ERANGE. */
static int tensor_refuse(struct dim_image *img)
{
    dim_image_free(img);
    memset(img, 0, sizeof *img);
    return DIM_ERANGE;
}

int tensor_raw_image(const void *body, const struct tensor_shape *shape, size_t i,
                     struct dim_image *img, struct dim_err *err)
{
    int rc = tensor_alloc(shape->c, shape->h, shape->w, img, err);
    if (rc != 0)
        return rc;
    const size_t n = (size_t)shape->c * (size_t)shape->h * (size_t)shape->w;
    const unsigned char *p = (const unsigned char *)body + i * n * 4;
    for (size_t k = 0; k < n; k++, p += 4) {
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        int px = tensor_pixel(f, k, err);
        if (px < 0)
            return tensor_refuse(img);
        img->px[k] = (uint8_t)px;
    }
    return 0;
}

int tensor_json_parse(const json_t *x, long *c, long *h, long *w, const json_t **data,
                      struct dim_err *err)
{
    const json_t *sh = json_object_get(x, "shape");
    *data = json_object_get(x, "data");
    bool ok = json_is_object(x) && json_object_size(x) == 2 && json_is_array(sh) &&
              json_array_size(sh) == 3 && json_is_array(*data);
    for (size_t d = 0; ok && d < 3; d++)
        ok = json_is_integer(json_array_get(sh, d));
    if (!ok)
        return dim_fail(err, DIM_EFORMAT,
                        "must be {\"shape\": [C, H, W] (integers), \"data\": [numbers]}");
    *c = (long)json_integer_value(json_array_get(sh, 0));
    *h = (long)json_integer_value(json_array_get(sh, 1));
    *w = (long)json_integer_value(json_array_get(sh, 2));
    return 0;
}

int tensor_json_image(const json_t *data, long c, long h, long w, struct dim_image *img,
                      struct dim_err *err)
{
    const size_t n = (size_t)c * (size_t)h * (size_t)w;
    if (json_array_size(data) != n)
        return dim_fail(err, DIM_ESHAPE, "shape [%ld, %ld, %ld] needs %zu values, data has %zu", c,
                        h, w, n, json_array_size(data));
    int rc = tensor_alloc(c, h, w, img, err);
    if (rc != 0)
        return rc;
    for (size_t k = 0; k < n; k++) {
        const json_t *x = json_array_get(data, k);
        if (!json_is_number(x)) {
            dim_fail(err, DIM_ERANGE,
                     "value %zu is not a number; values are pixel intensities in [0, 1]", k);
            return tensor_refuse(img);
        }
        int px = tensor_pixel(json_number_value(x), k, err);
        if (px < 0)
            return tensor_refuse(img);
        img->px[k] = (uint8_t)px;
    }
    return 0;
}
