/* blas.h - the one door to BLAS. Only blas.c includes cblas.h.
 *
 * Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, where
 * op(A) is M x K, op(B) is K x N and C is M x N; lda/ldb/ldc are row strides.
 * BLAS's own thread count is process-wide (an OpenBLAS property), set by the
 * owner of main. When a thread has a pool (base/parallel.h), large products are
 * split across the pool instead; BLAS should then be set to one thread.
 */
#ifndef DIM_BASE_BLAS_H
#define DIM_BASE_BLAS_H

#include <stdbool.h>
#include <stddef.h>

void nn_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);

/* Sets the number of threads BLAS may use (>= 1). */
void nn_blas_set_threads(int n);
int nn_blas_get_threads(void);

#endif
