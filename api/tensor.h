/* tensor.h - float tensors of encode requests as 8-bit images: the raw format
 * (application/octet-stream: little-endian float32 values with the shape in the
 * X-Tensor-Shape header) and the "tensors" of a JSON encode request.
 *
 * A tensor is (C, H, W), channel-major, C 1 or 3, of pixel intensities in
 * [0, 1]; each value x becomes the pixel round(x * 255), so a PNG and the
 * tensor of its pixels / 255 are the same image. NaN, infinities and anything
 * outside [0, 1] are refused (-0.0 is 0).
 * Wire format only: no I/O. Depends on libc, libm, jansson and core's
 * base/error.h and data/image.h (struct dim_image). No globals; thread-safe.
 */
#ifndef DIMD_API_TENSOR_H
#define DIMD_API_TENSOR_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"
#include "data/image.h"

#define TENSOR_SIDE_MAX 1000000L /* H and W at most */

/* A raw body's shape: n images of (c, h, w). */
struct tensor_shape {
    long n, c, h, w;
};

/* Parses an X-Tensor-Shape value, "N,C,H,W" or "C,H,W" (then N is 1): whole
 * numbers at least 1, as strtol reads them (leading blanks and a '+' allowed;
 * one beyond LONG_MAX reads as LONG_MAX), each followed by spaces and then a
 * comma or the end (so a trailing comma is allowed). Returns 0, or DIM_EFORMAT
 * naming the text and what is wrong (text NULL: "no shape"). Only the numbers'
 * count and sign are checked here: tensor_raw_check and tensor_image_check do
 * the rest. */
int tensor_shape_parse(const char *text, struct tensor_shape *shape, struct dim_err *err);

/* Checks that a raw body of nbytes holds exactly N x C x H x W float32 values.
 * Returns 0, or DIM_ESHAPE naming both sizes (also when the product overflows
 * size_t). */
int tensor_raw_check(const struct tensor_shape *shape, size_t nbytes, struct dim_err *err);

/* Checks one tensor's shape: C 1 or 3 and H, W from 1 to TENSOR_SIDE_MAX
 * (else DIM_ESHAPE), and H x W at most max_pixels (else DIM_ELIMIT, naming
 * both). Returns 0 when it may be converted. */
int tensor_image_check(long c, long h, long w, size_t max_pixels, struct dim_err *err);

/* Image i (from 0) of a raw body that tensor_raw_check and tensor_image_check
 * accepted: its C x H x W little-endian float32 values (read byte by byte: any
 * alignment, any host) into *img, whose pixels it allocates (the caller frees
 * them with dim_image_free). Returns 0, DIM_ERANGE naming the first value that
 * is not in [0, 1] (its index within the tensor and the value), or
 * DIM_ENOMEM; on failure *img is left empty. */
int tensor_raw_image(const void *body, const struct tensor_shape *shape, size_t i,
                     struct dim_image *img, struct dim_err *err);

/* A JSON tensor, {"shape": [C, H, W], "data": [numbers]} with exactly these
 * two keys and three integers (of any value: tensor_image_check judges them),
 * into *c, *h, *w and *data (borrowed from x). Returns 0, or DIM_EFORMAT
 * saying what the object must be. */
int tensor_json_parse(const json_t *x, long *c, long *h, long *w, const json_t **data,
                      struct dim_err *err);

/* A JSON tensor's data (an array that should hold c x h x w numbers, for a
 * shape tensor_image_check accepted) into *img as tensor_raw_image does.
 * Returns 0, DIM_ESHAPE when the array has another length (naming both),
 * DIM_ERANGE naming the first element that is not a number in [0, 1], or
 * DIM_ENOMEM; on failure *img is left empty. */
int tensor_json_image(const json_t *data, long c, long h, long w, struct dim_image *img,
                      struct dim_err *err);

#endif
