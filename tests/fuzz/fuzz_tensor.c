/* fuzz_tensor.c - api/tensor: encode requests' float tensors, both forms.
 * The input's first line is the X-Tensor-Shape header, the rest the body:
 *   raw   tensor_shape_parse, tensor_raw_check, then for each image
 *         tensor_image_check and tensor_raw_image (as handlers/encode.c does);
 *   JSON  when the body is JSON: {"tensors": [...]} or a single tensor object,
 *         each through tensor_json_parse, tensor_image_check, tensor_json_image.
 * Limits are the daemon's defaults (encode_max_images 64, encode_max_pixels
 * 16777216). Invariants: an accepted image has the checked shape and pixels;
 * a refused one is left empty with a message.
 */
#include <stdint.h>

#include "api/tensor.h"
#include "fuzz.h"

#define MAX_IMAGES 64
#define MAX_PIXELS 16777216u

static void check_image(int rc, const struct dim_image *img, long c, long h, long w,
                        const struct dim_err *err)
{
    if (rc == 0) {
        FUZZ_CHECK(img->px && img->c == c && img->h == h && img->w == w,
                   "image %dx%dx%d for shape %ld,%ld,%ld", img->c, img->h, img->w, c, h, w);
    } else {
        FUZZ_CHECK(img->px == NULL, "a refused tensor keeps its pixels");
        FUZZ_CHECK(err->msg[0], "no message for status %d", rc);
    }
}

static void json_tensor(const json_t *x)
{
    long c, h, w;
    const json_t *arr;
    struct dim_err err;
    if (tensor_json_parse(x, &c, &h, &w, &arr, &err) != 0)
        return;
    if (tensor_image_check(c, h, w, MAX_PIXELS, &err) != 0)
        return;
    struct dim_image img = {0};
    int rc = tensor_json_image(arr, c, h, w, &img, &err);
    check_image(rc, &img, c, h, w, &err);
    dim_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char header[256];
    size_t off = fuzz_split_line(data, size, header, sizeof header);
    const uint8_t *body = data + off;
    size_t len = size - off;
    struct tensor_shape sh;
    struct dim_err err;
    if (tensor_shape_parse(header, &sh, &err) == 0) {
        FUZZ_CHECK(sh.n >= 1 && sh.c >= 1 && sh.h >= 1 && sh.w >= 1, "shape %ld,%ld,%ld,%ld",
                   sh.n, sh.c, sh.h, sh.w);
        if (sh.n <= MAX_IMAGES && tensor_raw_check(&sh, len, &err) == 0) {
            for (long i = 0; i < sh.n; i++) {
                if (tensor_image_check(sh.c, sh.h, sh.w, MAX_PIXELS, &err) != 0)
                    break;
                struct dim_image img = {0};
                int rc = tensor_raw_image(body, &sh, (size_t)i, &img, &err);
                check_image(rc, &img, sh.c, sh.h, sh.w, &err);
                dim_image_free(&img);
                if (rc != 0)
                    break;
            }
        }
    } else {
        FUZZ_CHECK(err.msg[0], "no message for a refused shape");
    }
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    const json_t *list = json_object_get(j, "tensors");
    if (json_is_array(list)) {
        for (size_t i = 0; i < json_array_size(list) && i < MAX_IMAGES; i++)
            json_tensor(json_array_get(list, i));
    } else {
        json_tensor(j);
    }
    json_decref(j);
    return 0;
}
