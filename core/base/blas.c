/* blas.c - sgemm wrapper over OpenBLAS's CBLAS interface. */
#include "base/blas.h"

#include <cblas.h>

void nn_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
                A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void nn_blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int nn_blas_get_threads(void)
{
    return openblas_get_num_threads();
}
