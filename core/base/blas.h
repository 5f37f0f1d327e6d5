/* blas.h - the one door to BLAS and LAPACK. Only blas.c includes cblas.h or
 * declares a LAPACK routine.
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

/* The same product as one cblas_sgemm on the calling thread, never split across
 * a pool (for kernels that already run inside their own parallel loop). */
void nn_sgemm_serial(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                     size_t ldc);

/* y (M) = alpha * A x + beta * y, A (M, N) row-major with row stride lda, one
 * cblas_sgemv on the calling thread (no packing of A: the fast way to stream a
 * large matrix past one vector). */
void nn_sgemv_serial(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *x,
                     float beta, float *y);

/* The same in double precision, one call of cblas_dgemm on the calling thread
 * (no split across a pool: callers run it inside their own parallel loops). */
void nn_dgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, double alpha,
              const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
              size_t ldc);

/* LAPACK's Cholesky factorisation (dpotrf) of the symmetric positive definite
 * (n, n) matrix A, in place (one triangle holds the factor, the other is left as
 * it was). Returns 0, or i > 0 when the leading minor of order i is not
 * positive definite. Runs on BLAS's own threads. */
int nn_cholesky(double *A, size_t n);

/* Solves A x = b (dpotrs) for nrhs right-hand sides, the rows of B (nrhs, n),
 * overwritten by the solutions; A is the factor from nn_cholesky. */
void nn_cholesky_solve(const double *A, size_t n, double *B, size_t nrhs);

/* Sets the number of threads BLAS may use (>= 1). */
void nn_blas_set_threads(int n);
int nn_blas_get_threads(void);

#endif
