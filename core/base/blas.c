/* blas.c - sgemm wrapper over OpenBLAS's CBLAS interface.
 *
 * When the calling thread has a pool (base/parallel.h), a large product is cut
 * into blocks of rows (or of columns, whichever dimension is longer) of C and
 * each block is one single-threaded cblas_sgemm on the pool. Every element of C
 * is still computed by one call over the whole K, so the result does not depend
 * on the pool. With a pool, BLAS itself should run on one thread (the owner of
 * main sets that), so that BLAS's own spinning workers do not compete with the
 * pool for the same cores.
 */
#include "base/blas.h"

#include <cblas.h>

#include "base/parallel.h"

/* Products below this many multiply-adds are not worth a hand-off. */
#define SPLIT_MIN_MACS (1u << 20)
/* Rows or columns per block at the least. */
#define SPLIT_MIN_EDGE 16

struct gemm_job {
    bool ta, tb, by_rows;
    size_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
};

static void gemm_block(void *ctx, size_t i0, size_t i1)
{
    const struct gemm_job *j = ctx;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    size_t M = j->M, N = j->N;
    if (j->by_rows) { /* rows i0..i1 of op(A) and C */
        A += j->ta ? i0 : i0 * j->lda;
        C += i0 * j->ldc;
        M = i1 - i0;
    } else { /* columns i0..i1 of op(B) and C */
        B += j->tb ? i0 * j->ldb : i0;
        C += i0;
        N = i1 - i0;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
                j->tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)j->K,
                j->alpha, A, (blasint)j->lda, B, (blasint)j->ldb, j->beta, C, (blasint)j->ldc);
}

void nn_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    struct gemm_job j = {trans_a, trans_b, M >= N, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    size_t edge = j.by_rows ? M : N;
    if ((double)M * N * K < SPLIT_MIN_MACS)
        gemm_block(&j, 0, edge);
    else
        dim_parallel_for(edge, SPLIT_MIN_EDGE, gemm_block, &j);
}

void nn_sgemm_serial(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                     size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    struct gemm_job j = {trans_a, trans_b, true, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    gemm_block(&j, 0, M);
}

void nn_sgemv_serial(size_t M, size_t N, float alpha, const float *A, size_t lda, const float *x,
                     float beta, float *y)
{
    if (M == 0)
        return;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)M, (blasint)N, alpha, A, (blasint)lda, x, 1,
                beta, y, 1);
}

void nn_dgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, double alpha,
              const double *A, size_t lda, const double *B, size_t ldb, double beta, double *C,
              size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha, A,
                (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* LAPACK's Fortran interface (OpenBLAS exports it); the trailing length is the
 * hidden argument Fortran compilers give character arguments. */
void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info,
             size_t uplo_len);
void dpotrs_(const char *uplo, const blasint *n, const blasint *nrhs, const double *a,
             const blasint *lda, double *b, const blasint *ldb, blasint *info, size_t uplo_len);

/* Row-major A is column-major A' = A: "U" in Fortran is the lower triangle here. */
int nn_cholesky(double *A, size_t n)
{
    blasint N = (blasint)n, info = 0;
    dpotrf_("U", &N, A, &N, &info, 1);
    return (int)info;
}

void nn_cholesky_solve(const double *A, size_t n, double *B, size_t nrhs)
{
    /* row-major B (nrhs, n) is column-major (n, nrhs): one right-hand side a column */
    blasint N = (blasint)n, R = (blasint)nrhs, info = 0;
    dpotrs_("U", &N, &R, A, &N, B, &N, &info, 1);
}

void nn_blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int nn_blas_get_threads(void)
{
    return openblas_get_num_threads();
}
