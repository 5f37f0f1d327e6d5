/* cli_encode.c - `dimd encode`: embeddings of image files from a checkpoint, as JSON lines. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "data/image.h"
#include "dim/checkpoint.h"
#include "cmd/cli.h"

/* Flags of encode and eval followed by a value; an unknown flag takes none, so it is
 * reported as unknown. */
static const char *const encode_with_value[] = {"checkpoint", "tap", "max_pixels", NULL};

int cli_encode(int argc, char **argv)
{
    const char *ckpt = NULL;
    enum dim_tap tap = DIM_TAP_Y;
    uint64_t max_pixels = 64u << 20;
    int i = 2, first_file = -1;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, encode_with_value, false);
        if (r == 0) {
            first_file = i;
            break;
        }
        if (r < 0) {
            fprintf(stderr, "dimd encode: flag %s needs a value\n", argv[i - 1]);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0) {
            printf("usage: dimd encode --checkpoint PATH [--tap y|fc|conv|local] "
                   "[--max_pixels N] IMAGE...\n"
                   "Prints one JSON line per image: {\"file\", \"tap\", \"dim\", \"embedding\"}.\n"
                   "--tap local gives the local feature map averaged over locations.\n");
            return 0;
        } else if (strcmp(name, "checkpoint") == 0) {
            ckpt = val;
        } else if (strcmp(name, "tap") == 0) {
            if (dim_tap_parse(val, &tap) != 0) {
                fprintf(stderr, "dimd encode: --tap '%s' is not one of y, fc, conv, local\n", val);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(name, "max_pixels") == 0) {
            if (cli_parse_u64("encode", name, val, 1, UINT64_C(1) << 34, &max_pixels))
                return CLI_EXIT_USAGE;
        } else {
            fprintf(stderr, "dimd encode: unknown flag --%s\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    if (!ckpt) {
        fprintf(stderr, "dimd encode: --checkpoint is required\n");
        return CLI_EXIT_USAGE;
    }
    if (first_file < 0) {
        fprintf(stderr, "dimd encode: no image files given\n");
        return CLI_EXIT_USAGE;
    }
    nn_blas_set_threads(1);
    struct dim_err err;
    struct dim_model *m;
    if (dim_checkpoint_load(ckpt, &m, NULL, false, &err) != 0) {
        fprintf(stderr, "dimd encode: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    struct dim_encode_ws ws;
    struct dim_preprocess pp = dim_model_preprocess(m);
    float *x = malloc(sizeof(float) * (size_t)pp.c * pp.h * pp.w);
    if (!x || dim_encode_ws_create(&ws, m, 1, &err) != 0) {
        fprintf(stderr, "dimd encode: out of memory\n");
        free(x);
        dim_model_free(m);
        return CLI_EXIT_FAIL;
    }
    const size_t tap_size = dim_model_tap_size(m, tap);
    const size_t lc = (size_t)m->local_h * m->local_w;
    const size_t dim = tap == DIM_TAP_LOCAL ? (size_t)m->local_c : tap_size;
    int status = 0;
    for (i = first_file; i < argc; i++) {
        struct dim_image img;
        if (dim_image_load(argv[i], (size_t)max_pixels, &img, &err) != 0) {
            fprintf(stderr, "dimd encode: %s\n", err.msg); /* the message names the file */
            status = CLI_EXIT_USAGE;
            break;
        }
        dim_image_to_input(&img, &pp, NULL, x);
        dim_image_free(&img);
        const float *f = dim_model_encode(m, &ws, x, 1, tap);
        json_t *emb = json_array();
        for (size_t d = 0; d < dim; d++) {
            double v = f[d];
            if (tap == DIM_TAP_LOCAL) { /* mean over the local map's locations */
                double s = 0;
                for (size_t q = 0; q < lc; q++)
                    s += f[d * lc + q];
                v = s / (double)lc;
            }
            json_array_append_new(emb, json_real(v));
        }
        json_t *o = json_pack("{s:s, s:s, s:I, s:o}", "file", argv[i], "tap", dim_tap_name(tap),
                              "dim", (json_int_t)dim, "embedding", emb);
        cli_print_json(o, 9);
    }
    free(x);
    dim_encode_ws_free(&ws);
    dim_model_free(m);
    return status;
}
