/* image.h - decoding untrusted PNG/JPEG bytes and turning any 8-bit image into a
 * model input. The one place where preprocessing is defined: the trainer, the
 * CLI's encode and the service's encode all call dim_image_to_input, so an
 * image is normalised identically everywhere. Also writes 8-bit PNGs, to a file
 * or to memory.
 * Depends on: libpng, libjpeg(-turbo), libc. No globals; thread-safe.
 */
#ifndef DIM_DATA_IMAGE_H
#define DIM_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"

/* An 8-bit image, planar (C, H, W): all of channel 0, then channel 1, ...
 * c is 1 (grey) or 3 (RGB). Owned by whoever filled it; free with dim_image_free. */
struct dim_image {
    int c, h, w;
    uint8_t *px; /* (C, H, W) */
};

/* How raw images become model inputs. */
struct dim_preprocess {
    int c, h, w;     /* target channels (1 or 3) and size */
    int random_crop; /* training augmentation: pad by this many pixels, crop back at random */
    int random_flip; /* training augmentation: horizontal flip with probability 1/2 */
};

/* Decodes a PNG or JPEG (detected from the signature bytes) into out, which it
 * allocates. Alpha is dropped, palettes and 16-bit depths are reduced to 8-bit
 * grey or RGB. Refuses, before allocating pixels, any image with more than
 * max_pixels (w*h) pixels (DIM_ELIMIT, message names both numbers). Corrupt or
 * truncated data gives DIM_EFORMAT naming what was wrong; unknown signature
 * gives DIM_EUNSUPPORTED. On failure out is left empty (px == NULL). */
int dim_image_decode(const void *buf, size_t len, size_t max_pixels, struct dim_image *out,
                     struct dim_err *err);

/* Reads a whole file and decodes it as dim_image_decode does. */
int dim_image_load(const char *path, size_t max_pixels, struct dim_image *out, struct dim_err *err);

/* Writes img as an 8-bit PNG file (grey or RGB). */
int dim_image_write_png(const char *path, const struct dim_image *img, struct dim_err *err);

/* Encodes img as an 8-bit PNG (grey or RGB) into a malloc'd buffer: *out (free
 * it) and its size *out_len. On failure *out is NULL (DIM_EINVAL, DIM_ENOMEM). */
int dim_image_encode_png(const struct dim_image *img, uint8_t **out, size_t *out_len,
                         struct dim_err *err);

void dim_image_free(struct dim_image *img);

/* Converts img to (c, h, w) 8-bit pixels in out (c*h*w bytes, caller-owned):
 * the channel conversion of dim_image_to_input, then a bilinear resize to h x w
 * when the size differs (never padding), rounded to the nearest integer. Used to
 * give every image of a dataset one shape. Never allocates. */
void dim_image_resample(const struct dim_image *img, int c, int h, int w, uint8_t *out);

/* Converts img to a float tensor out (pp->c, pp->h, pp->w) in [-1, 1]:
 * channel conversion (grey -> RGB by replication, RGB -> grey by ITU-R BT.601
 * luma), then geometry: when the source fits inside the target and needs at
 * most target/8 pixels of padding per side it is zero-padded (pixel value 0,
 * centred; Fashion-MNIST 28 -> 32 pads 2 a side), otherwise bilinearly
 * resized; then x / 127.5 - 1. When rng is non-NULL, pp's random crop and flip
 * are applied (training only); when rng is NULL they are not.
 * Never allocates. */
void dim_image_to_input(const struct dim_image *img, const struct dim_preprocess *pp,
                        struct dim_rng *rng, float *out);

#endif
