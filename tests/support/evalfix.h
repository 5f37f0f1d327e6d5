/* evalfix.h - helpers for the tests of core/eval (tests only): ReLU sign
 * patterns of a dim_trainnet, to skip gradient-check entries whose perturbed
 * evaluations cross a ReLU kink (see gradcheck.h, "Kinks"). */
#ifndef DIM_TESTS_EVALFIX_H
#define DIM_TESTS_EVALFIX_H

#include <stdbool.h>
#include <stddef.h>

#include "eval/trainnet.h"

/* Number of ReLU outputs of t for a batch of B rows. */
size_t evalfix_relu_count(const struct dim_trainnet *t, size_t B);

/* Writes (act > 0) of every ReLU output of t's last forward pass (B rows) into
 * pos (evalfix_relu_count entries). */
void evalfix_relu_record(const struct dim_trainnet *t, size_t B, bool *pos);

/* True when some ReLU output of t's last forward pass changed sign from pos. */
bool evalfix_relu_changed(const struct dim_trainnet *t, size_t B, const bool *pos);

#endif
