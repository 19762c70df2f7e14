// Row-major GEMM on top of the Fortran BLAS whose sgemm/dgemm pointers the
// Python binding hands over at import (scipy's BLAS, as jaxlib reaches LAPACK),
// so nothing links against a BLAS at build time.
#ifndef JAXRNN_NATIVE_BLAS_H_
#define JAXRNN_NATIVE_BLAS_H_

#include <algorithm>
#include <cstdint>
#include <limits>

namespace jaxrnn {

template <typename T>
using FortranGemm = void(const char* transa, const char* transb, const int* m,
                         const int* n, const int* k, const T* alpha, const T* a,
                         const int* lda, const T* b, const int* ldb,
                         const T* beta, T* c, const int* ldc);

extern FortranGemm<float>* sgemm_ptr;
extern FortranGemm<double>* dgemm_ptr;

template <typename T> inline FortranGemm<T>* gemm_ptr();
template <> inline FortranGemm<float>* gemm_ptr<float>() { return sgemm_ptr; }
template <> inline FortranGemm<double>* gemm_ptr<double>() { return dgemm_ptr; }

// C[M,N] = alpha * op(A) op(B) + beta * C, all row-major; op(A) is (M,K)
// (A stored (K,M) when ta), op(B) is (K,N) (B stored (N,K) when tb); lda, ldb
// and ldc are row strides. Column-major BLAS computes C^T = op(B)^T op(A)^T,
// so the operands swap and the flags stay.
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
          const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
          int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        C[m * ldc + n] = beta == T(0) ? T(0) : beta * C[m * ldc + n];
    return;
  }
  const char tra = ta ? 'T' : 'N', trb = tb ? 'T' : 'N';
  // Fortran BLAS takes int. N, K and the strides are layer widths, which the
  // Python binding (jaxrnn/_native/__init__.py, too_large) keeps below 2^31;
  // M counts rows (T * B) and may not be: it is split into blocks that fit.
  constexpr int64_t kMaxRows = std::numeric_limits<int>::max();
  const int n_ = static_cast<int>(N), k = static_cast<int>(K),
            la = static_cast<int>(ldb), lb = static_cast<int>(lda),
            lc = static_cast<int>(ldc);
  for (int64_t m0 = 0; m0 < M; m0 += kMaxRows) {
    const int rows = static_cast<int>(std::min(kMaxRows, M - m0));
    const T* a = ta ? A + m0 : A + m0 * lda;
    gemm_ptr<T>()(&trb, &tra, &n_, &rows, &k, &alpha, B, &la, a, &lb, &beta,
                  C + m0 * ldc, &lc);
  }
}

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_BLAS_H_
