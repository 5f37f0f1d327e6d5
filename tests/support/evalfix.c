/* evalfix.c - helpers for the tests of core/eval (see evalfix.h). */
#include "evalfix.h"

size_t evalfix_relu_count(const struct dim_trainnet *t, size_t B)
{
    size_t n = 0;
    for (int i = 0; i < t->net.n; i++)
        if (t->net.L[i].op == NN_RELU)
            n += B * nn_layer_out_size(&t->net.L[i]);
    return n;
}

void evalfix_relu_record(const struct dim_trainnet *t, size_t B, bool *pos)
{
    for (int i = 0; i < t->net.n; i++)
        if (t->net.L[i].op == NN_RELU) {
            size_t n = B * nn_layer_out_size(&t->net.L[i]);
            for (size_t j = 0; j < n; j++)
                *pos++ = t->ws.act[i][j] > 0.0f;
        }
}

bool evalfix_relu_changed(const struct dim_trainnet *t, size_t B, const bool *pos)
{
    for (int i = 0; i < t->net.n; i++)
        if (t->net.L[i].op == NN_RELU) {
            size_t n = B * nn_layer_out_size(&t->net.L[i]);
            for (size_t j = 0; j < n; j++)
                if ((t->ws.act[i][j] > 0.0f) != *pos++)
                    return true;
        }
    return false;
}
