/* fuzz_checkpoint.c - core/dim/checkpoint: dim_checkpoint_read of untrusted
 * bytes (an uploaded or corrupted checkpoint file or database blob), through
 * the memory reader, for inference and for training.
 * Each input is read twice: as it is, and with its last 4 bytes replaced by
 * the CRC-32 of the rest, so that mutations also reach the code after the
 * checksum (a mutated file almost never has a matching CRC).
 * Slow (a few to tens of executions a second): every header that passes the
 * config check builds a whole model (about 20 MB for basic32x32) before its
 * tensor table is compared with the config.
 * Invariants: success gives a model; failure one of the documented statuses
 * with a message and *out NULL.
 */
#include <stdint.h>
#include <zlib.h>

#include "dim/checkpoint.h"
#include "fuzz.h"

static void read_one(const uint8_t *data, size_t size, bool training)
{
    struct dim_memsrc src = {data, size, 0};
    struct dim_reader r = {dim_memsrc_read, &src};
    struct dim_model *m = (struct dim_model *)(uintptr_t)1;
    struct dim_train_progress p;
    struct dim_err err;
    int rc = dim_checkpoint_read(&m, &p, training, &r, &err);
    if (rc == 0) {
        FUZZ_CHECK(m != NULL, "success without a model");
        dim_model_free(m);
        return;
    }
    FUZZ_CHECK(m == NULL, "failure leaves a model");
    FUZZ_CHECK(rc == DIM_ECKPT_MAGIC || rc == DIM_ECKPT_VERSION || rc == DIM_ECKPT_CONFIG ||
                   rc == DIM_ECKPT_LAYOUT || rc == DIM_ECKPT_TRUNCATED ||
                   rc == DIM_ECKPT_CHECKSUM || rc == DIM_ENOMEM,
               "status %d (%s)", rc, err.msg);
    FUZZ_CHECK(err.msg[0], "no message for status %d", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Building a model for training costs four times more (gradients, Adam
     * moments): only the CRC-patched copy of every other input does. */
    read_one(data, size, false);
    if (size < 16)
        return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    read_one(fixed, size, size % 2 == 0);
    free(fixed);
    return 0;
}
