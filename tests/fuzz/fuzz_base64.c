/* fuzz_base64.c - util/base64: an encode request's base64 image strings,
 * data URLs included, as the handler reads them (base64_data_url_prefix, then
 * base64_decode of the rest). Invariants: the prefix lies within the input;
 * success writes at most base64_decoded_max bytes; failure leaves *out NULL and
 * names the problem; decoding is the same whether or not the input is copied.
 */
#include <stdint.h>

#include "util/base64.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    size_t skip = base64_data_url_prefix(s, size);
    FUZZ_CHECK(skip <= size, "prefix of %zu in %zu bytes", skip, size);
    unsigned char *out = NULL;
    size_t n = 12345;
    struct dim_err err;
    int rc = base64_decode(s + skip, size - skip, &out, &n, &err);
    if (rc == 0) {
        FUZZ_CHECK(n <= base64_decoded_max(size - skip), "%zu bytes from %zu characters", n,
                   size - skip);
        FUZZ_CHECK(out != NULL, "success without a buffer");
    } else {
        FUZZ_CHECK(rc == DIM_EFORMAT || rc == DIM_ENOMEM, "status %d", rc);
        FUZZ_CHECK(out == NULL && n == 0, "failure leaves %zu bytes", n);
        FUZZ_CHECK(err.msg[0], "no message");
    }
    /* The whole input too, data URL prefix and all (as a client that did not
     * mean a data URL would send it). */
    unsigned char *out2 = NULL;
    size_t n2 = 0;
    int rc2 = base64_decode(s, size, &out2, &n2, &err);
    if (skip == 0) {
        FUZZ_CHECK(rc2 == rc && n2 == n && (n == 0 || memcmp(out, out2, n) == 0),
                   "two decodings of the same input differ");
    }
    free(out2);
    free(out);
    return 0;
}
