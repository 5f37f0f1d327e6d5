/* fuzz_image.c - core/data/image: PNG and JPEG decoding of untrusted bytes
 * (an encode request's image, a dataset folder's file), with the daemon's
 * default pixel limit (encode_max_pixels 16777216), then the conversions every
 * decoded image goes through (dim_image_to_input, dim_image_resample).
 * Invariants: success gives 1 or 3 channels, a positive size within the
 * limit and pixels; failure leaves the image empty with a message and one of
 * the documented statuses.
 */
#include <stdint.h>

#include "data/image.h"
#include "fuzz.h"

#define MAX_PIXELS 16777216u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dim_image img = {0};
    struct dim_err err;
    int rc = dim_image_decode(data, size, MAX_PIXELS, &img, &err);
    if (rc != 0) {
        FUZZ_CHECK(img.px == NULL, "a refused image keeps its pixels");
        FUZZ_CHECK(rc == DIM_EFORMAT || rc == DIM_ELIMIT || rc == DIM_EUNSUPPORTED ||
                       rc == DIM_ENOMEM,
                   "status %d (%s)", rc, err.msg);
        FUZZ_CHECK(err.msg[0], "no message for status %d", rc);
        return 0;
    }
    FUZZ_CHECK(img.px && (img.c == 1 || img.c == 3) && img.h > 0 && img.w > 0 &&
                   (size_t)img.h * (size_t)img.w <= MAX_PIXELS,
               "decoded %dx%dx%d", img.c, img.h, img.w);
    static float x[3 * 32 * 32];
    static uint8_t px[3 * 32 * 32];
    const struct dim_preprocess pp = {3, 32, 32, 0, 0};
    dim_image_to_input(&img, &pp, NULL, x);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        FUZZ_CHECK(x[i] >= -1.0f && x[i] <= 1.0f, "input value %zu is %g", i, (double)x[i]);
    dim_image_resample(&img, 1, 28, 28, px);
    dim_image_free(&img);
    return 0;
}
