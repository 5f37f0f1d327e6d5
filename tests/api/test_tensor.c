/* test_tensor.c - api/tensor: float tensors of encode requests as 8-bit images.
 *
 * X-Tensor-Shape text, valid and not (0, negative, a missing number, too few
 * or too many, trailing junk, numbers beyond long); a raw body's byte count
 * against its shape, including a product that overflows; the per-image shape
 * and pixel limits; values to pixels (every p / 255 back to p, rounding,
 * -0.0) and the refusal of NaN, infinities and values outside [0, 1], from
 * raw little-endian float32 at any alignment and from JSON arrays.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/tensor.h"

static void has(const struct dim_err *err, const char *needle)
{
    if (!strstr(err->msg, needle))
        fail_msg("message '%s' does not contain '%s'", err->msg, needle);
}

static void shape_is(const char *text, long n, long c, long h, long w)
{
    struct tensor_shape s;
    struct dim_err err = {0};
    if (tensor_shape_parse(text, &s, &err) != 0)
        fail_msg("'%s' refused: %s", text, err.msg);
    if (s.n != n || s.c != c || s.h != h || s.w != w)
        fail_msg("'%s' read as %ld,%ld,%ld,%ld", text, s.n, s.c, s.h, s.w);
}

static void shape_refused(const char *text, const char *needle)
{
    struct tensor_shape s;
    struct dim_err err = {0};
    assert_int_equal(tensor_shape_parse(text, &s, &err), DIM_EFORMAT);
    has(&err, needle);
}

static void test_shape_valid(void **state)
{
    (void)state;
    shape_is("1,1,28,28", 1, 1, 28, 28);
    shape_is("1,28,28", 1, 1, 28, 28); /* C,H,W: N is 1 */
    shape_is("5,3,32,32", 5, 3, 32, 32);
    shape_is(" 2 , 3,4 ,5 ", 2, 3, 4, 5); /* blanks around the numbers */
    shape_is("+1,+1,2,2", 1, 1, 2, 2);
    shape_is("1,2,3,", 1, 1, 2, 3);       /* a trailing comma */
    shape_is("1,2,3,4,", 1, 2, 3, 4);
    shape_is("007,1,1,1", 7, 1, 1, 1);
    /* beyond LONG_MAX reads as LONG_MAX (strtol); tensor_raw_check refuses it */
    shape_is("1,99999999999999999999,1,1", 1, LONG_MAX, 1, 1);
}

static void test_shape_invalid(void **state)
{
    (void)state;
    shape_refused(NULL, "no shape");
    shape_refused("", "has 0 numbers, not 3 or 4");
    shape_refused("28,28", "'28,28' has 2 numbers, not 3 or 4");
    shape_refused("784", "has 1 number,");
    shape_refused("1,1,1,1,1", "has more than 4 numbers");
    shape_refused("0,1,28,28", "number 1 is 0, below 1");
    shape_refused("1,1,0,28", "number 3 is 0, below 1");
    shape_refused("1,-1,28,28", "number 2 is -1, below 1");
    shape_refused("1,,28,28", "number 2 is missing");
    shape_refused(",1,28,28", "number 1 is missing");
    shape_refused("1,28,28x", "number 3 is followed by neither ',' nor the end");
    shape_refused("1.5,28,28", "number 1 is followed by neither");
    shape_refused("1;28;28", "number 1 is followed by neither");
    shape_refused("0x1,28,28", "number 1 is 0, below 1");
    shape_refused("1,28,28\t", "number 3 is followed by neither"); /* only spaces may trail */
    shape_refused("N,C,H,W", "number 1 is missing");
}

static void test_raw_byte_count(void **state)
{
    (void)state;
    struct dim_err err = {0};
    struct tensor_shape s = {2, 1, 28, 28};
    assert_int_equal(tensor_raw_check(&s, 2 * 784 * 4, &err), 0);
    assert_int_equal(tensor_raw_check(&s, 2 * 784 * 4 - 1, &err), DIM_ESHAPE);
    has(&err, "2,1,28,28 needs 6272 bytes of float32; the body has 6271");
    assert_int_equal(tensor_raw_check(&s, 2 * 784 * 4 + 4, &err), DIM_ESHAPE);
    assert_int_equal(tensor_raw_check(&s, 0, &err), DIM_ESHAPE);
    /* products that overflow size_t are refused, not wrapped around to the body's size */
    struct tensor_shape big = {1, LONG_MAX, 1, 1};
    assert_int_equal(tensor_raw_check(&big, 0, &err), DIM_ESHAPE);
    has(&err, "needs more bytes of float32 than there are; the body has 0");
    struct tensor_shape wrap = {1, 1L << 31, 1L << 31, 1L << 2}; /* x 4 bytes = 2^66 */
    assert_int_equal(tensor_raw_check(&wrap, 0, &err), DIM_ESHAPE);
    has(&err, "more bytes");
    struct tensor_shape wrap4 = {1L << 16, 1L << 16, 1L << 16, 1L << 14}; /* x 4 = 2^64 exactly */
    assert_int_equal(tensor_raw_check(&wrap4, 0, &err), DIM_ESHAPE);
}

static void test_image_shape_and_limits(void **state)
{
    (void)state;
    struct dim_err err = {0};
    assert_int_equal(tensor_image_check(1, 28, 28, 784, &err), 0);
    assert_int_equal(tensor_image_check(3, 28, 28, 784, &err), 0);
    assert_int_equal(tensor_image_check(2, 28, 14, 784, &err), DIM_ESHAPE);
    has(&err, "shape [2, 28, 14] must be [C, H, W] with C 1 or 3");
    assert_int_equal(tensor_image_check(4, 1, 1, 784, &err), DIM_ESHAPE);
    assert_int_equal(tensor_image_check(1, 0, 28, 784, &err), DIM_ESHAPE);
    assert_int_equal(tensor_image_check(1, 28, -3, 784, &err), DIM_ESHAPE);
    assert_int_equal(tensor_image_check(1, TENSOR_SIDE_MAX, 1, SIZE_MAX, &err), 0);
    assert_int_equal(tensor_image_check(1, TENSOR_SIDE_MAX + 1, 1, SIZE_MAX, &err), DIM_ESHAPE);
    assert_int_equal(tensor_image_check(1, 1, TENSOR_SIDE_MAX + 1, SIZE_MAX, &err), DIM_ESHAPE);
    assert_int_equal(tensor_image_check(1, 28, 28, 783, &err), DIM_ELIMIT);
    has(&err, "28 x 28 pixels, more than 783");
    assert_int_equal(tensor_image_check(3, 20, 30, 600, &err), 0); /* pixels, not values */
    assert_int_equal(tensor_image_check(1, 20, 31, 600, &err), DIM_ELIMIT);
    has(&err, "31 x 20 pixels");
}

/* n floats as little-endian bytes at out. */
static void put_f32le(unsigned char *out, const float *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, &v[k], 4);
        for (int b = 0; b < 4; b++)
            out[4 * k + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
}

static void test_raw_values_to_pixels(void **state)
{
    (void)state;
    /* two (1, 16, 16) images holding every p / 255, the second reversed, one byte
     * off alignment */
    float v[2 * 256];
    for (int p = 0; p < 256; p++) {
        v[p] = (float)p / 255.0f;
        v[256 + p] = (float)(255 - p) / 255.0f;
    }
    unsigned char *buf = malloc(sizeof v + 1);
    assert_non_null(buf);
    put_f32le(buf + 1, v, 512);
    struct tensor_shape s = {2, 1, 16, 16};
    struct dim_err err = {0};
    assert_int_equal(tensor_raw_check(&s, sizeof v, &err), 0);
    for (size_t i = 0; i < 2; i++) {
        struct dim_image img = {0};
        assert_int_equal(tensor_raw_image(buf + 1, &s, i, &img, &err), 0);
        assert_int_equal(img.c, 1);
        assert_int_equal(img.h, 16);
        assert_int_equal(img.w, 16);
        for (int p = 0; p < 256; p++)
            assert_int_equal(img.px[p], i == 0 ? p : 255 - p);
        dim_image_free(&img);
    }
    /* rounding to nearest, and -0.0 is 0 */
    const float r[4] = {0.5f, 0.001f, 0.999f, -0.0f};
    put_f32le(buf, r, 4);
    struct tensor_shape s4 = {1, 1, 2, 2};
    struct dim_image img = {0};
    assert_int_equal(tensor_raw_image(buf, &s4, 0, &img, &err), 0);
    assert_int_equal(img.px[0], 128); /* 127.5 rounds to even */
    assert_int_equal(img.px[1], 0);
    assert_int_equal(img.px[2], 255);
    assert_int_equal(img.px[3], 0);
    dim_image_free(&img);
    free(buf);
}

/* A (1, 2, 2) raw tensor with value bad at index 2 is refused, naming it. */
static void raw_refused(float bad, const char *needle)
{
    float v[4] = {0.0f, 1.0f, bad, 0.5f};
    unsigned char buf[16];
    put_f32le(buf, v, 4);
    struct tensor_shape s = {1, 1, 2, 2};
    struct dim_image img = {0};
    struct dim_err err = {0};
    assert_int_equal(tensor_raw_image(buf, &s, 0, &img, &err), DIM_ERANGE);
    assert_null(img.px);
    has(&err, needle);
}

static void test_raw_values_refused(void **state)
{
    (void)state;
    raw_refused(NAN, "value 2 is NaN; values are pixel intensities in [0, 1]");
    raw_refused(-NAN, "value 2 is NaN");
    raw_refused(INFINITY, "value 2 is inf;");
    raw_refused(-INFINITY, "value 2 is -inf;");
    raw_refused(2.0f, "value 2 is 2;");
    raw_refused(nextafterf(1.0f, 2.0f), "value 2 is 1;"); /* %g of 1.0000001 */
    raw_refused(-1e-9f, "value 2 is -1e-09;");
    raw_refused(255.0f, "value 2 is 255;"); /* pixels, not intensities */
}

static void test_json_values(void **state)
{
    (void)state;
    struct dim_err err = {0};
    struct dim_image img = {0};
    json_t *data = json_pack("[i, f, i, f, f, f]", 0, 0.5, 1, 0.2, 1.0, 0.0);
    assert_int_equal(tensor_json_image(data, 3, 1, 2, &img, &err), 0);
    assert_int_equal(img.c, 3);
    assert_int_equal(img.w, 2);
    const uint8_t want[6] = {0, 128, 255, 51, 255, 0};
    assert_memory_equal(img.px, want, 6);
    dim_image_free(&img);
    /* the count must match the shape */
    assert_int_equal(tensor_json_image(data, 1, 2, 2, &img, &err), DIM_ESHAPE);
    has(&err, "shape [1, 2, 2] needs 4 values, data has 6");
    assert_null(img.px);
    assert_int_equal(tensor_json_image(NULL, 1, 1, 1, &img, &err), DIM_ESHAPE);
    has(&err, "data has 0");
    json_decref(data);
    /* the first bad element is named */
    static const char *const bad[] = {"[0, 1, \"0.5\"]", "[0, 1, null]", "[0, 1, [0]]",
                                      "[0, 1, true]"};
    for (size_t k = 0; k < 4; k++) {
        data = json_loads(bad[k], 0, NULL);
        assert_non_null(data);
        assert_int_equal(tensor_json_image(data, 1, 1, 3, &img, &err), DIM_ERANGE);
        has(&err, "value 2 is not a number; values are pixel intensities in [0, 1]");
        assert_null(img.px);
        json_decref(data);
    }
    data = json_loads("[0.5, 1.5, -1]", 0, NULL);
    assert_int_equal(tensor_json_image(data, 1, 1, 3, &img, &err), DIM_ERANGE);
    has(&err, "value 1 is 1.5;");
    json_decref(data);
    data = json_loads("[0, 2]", 0, NULL);
    assert_int_equal(tensor_json_image(data, 1, 1, 2, &img, &err), DIM_ERANGE);
    has(&err, "value 1 is 2;"); /* an integer outside [0, 1] */
    json_decref(data);
}

static void test_json_tensor_object(void **state)
{
    (void)state;
    struct dim_err err = {0};
    long c, h, w;
    const json_t *data;
    json_t *x = json_loads("{\"data\": [0, 1], \"shape\": [1, 1, 2]}", 0, NULL);
    assert_int_equal(tensor_json_parse(x, &c, &h, &w, &data, &err), 0);
    assert_int_equal(c, 1);
    assert_int_equal(h, 1);
    assert_int_equal(w, 2);
    assert_ptr_equal(data, json_object_get(x, "data"));
    json_decref(x);
    /* integers of any value pass here: tensor_image_check judges them */
    x = json_loads("{\"shape\": [2, -1, 0], \"data\": []}", 0, NULL);
    assert_int_equal(tensor_json_parse(x, &c, &h, &w, &data, &err), 0);
    assert_int_equal(h, -1);
    json_decref(x);
    static const char *const bad[] = {
        "[1, 1, 2]",
        "{\"shape\": [1, 1, 2]}",
        "{\"shape\": [1, 1, 2], \"data\": [0, 1], \"extra\": 1}",
        "{\"shape\": [1, 2], \"data\": [0, 1]}",
        "{\"shape\": [1, 1, 2, 1], \"data\": [0, 1]}",
        "{\"shape\": [1, 1, 2.0], \"data\": [0, 1]}",
        "{\"shape\": [1, 1, \"2\"], \"data\": [0, 1]}",
        "{\"shape\": [1, 1, 2], \"data\": \"0,1\"}",
        "{\"shape\": \"1,1,2\", \"data\": [0, 1]}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        x = json_loads(bad[k], 0, NULL);
        assert_non_null(x);
        if (tensor_json_parse(x, &c, &h, &w, &data, &err) != DIM_EFORMAT)
            fail_msg("%s accepted", bad[k]);
        has(&err, "must be {\"shape\": [C, H, W] (integers), \"data\": [numbers]}");
        json_decref(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_valid),
        cmocka_unit_test(test_shape_invalid),
        cmocka_unit_test(test_raw_byte_count),
        cmocka_unit_test(test_image_shape_and_limits),
        cmocka_unit_test(test_raw_values_to_pixels),
        cmocka_unit_test(test_raw_values_refused),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_tensor_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
