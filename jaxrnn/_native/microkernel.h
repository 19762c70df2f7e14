// The per-step products of the persistent kernels: C = init + A P, where P
// is a weight slice packed once per call into column panels, and A is one
// or two row-major operands (x_t and h_{t-1}, or dz_t).
//
// Packed layout: columns in panels of NR = 2 vectors. Panel q holds its NR
// columns for all Kp rows, row after row: element (k, q NR + j) sits at
// (q Kp + k) NR + j. A product reads a contiguous stretch of rows of every
// panel, so one packed matrix serves several products (the GRU's input and
// recurrent halves, the reset-before GRU's n block).
//
// The micro-kernel keeps an MR x NR tile of C in 2 MR vector registers for
// the whole K loop: GCC vector extensions, compiled for the ISA of the
// function that instantiates them (kernels.cc: AVX-512, AVX2+FMA, or the
// baseline), and contracted to FMAs (-ffp-contract=fast).
#ifndef JAXRNN_NATIVE_MICROKERNEL_H_
#define JAXRNN_NATIVE_MICROKERNEL_H_

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <utility>

#include "cells.h"

namespace jaxrnn {

template <typename T, int N>
struct Vec {
  typedef T type __attribute__((vector_size(N * sizeof(T))));
};

template <typename V, typename T>
JAXRNN_INLINE V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename V, typename T>
JAXRNN_INLINE void store(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Packs rows [k0, k0 + K) of panels with Kp rows each: element (k, j) of the
// source, j < n, is src[k * ld_k + j * ld_j]; columns n .. panels * NR are 0.
template <int NR, typename T>
JAXRNN_INLINE void pack(int64_t K, int64_t n, const T* src, int64_t ld_k,
                        int64_t ld_j, T* dst, int64_t Kp, int64_t k0) {
  const int64_t panels = round_up(n, NR) / NR;
  for (int64_t q = 0; q < panels; ++q) {
    T* panel = dst + (q * Kp + k0) * NR;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < NR; ++j) {
        const int64_t col = q * NR + j;
        panel[k * NR + j] = col < n ? src[k * ld_k + col * ld_j] : T(0);
      }
  }
}

// One operand of a product: A (M, K) with row stride lda, times rows
// [k0, k0 + K) of the packed matrix.
template <typename T>
struct Operand {
  const T* a;
  int64_t lda, k0, K;
};

// One MR x NR tile. S partial sums per element split the K loop when MR is
// small, so that enough FMAs are in flight to hide their latency. Panel: A
// is a micro-panel, its MR rows interleaved (element (r, k) at a[k MR + r]).
template <typename T, int NV, int MR, int S, bool Panel>
JAXRNN_INLINE void tile(Operand<T> x, Operand<T> y, const T* panel,
                        const T* init, int64_t ld_init, T* c, int64_t ldc) {
  using V = typename Vec<T, NV>::type;
  constexpr int NR = 2 * NV;
  V lo[S][MR], hi[S][MR];
#pragma GCC unroll 8
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      lo[s][r] = V{};
      hi[s][r] = V{};
    }
  if (init != nullptr)
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      lo[0][r] = load<V>(init + r * ld_init);
      hi[0][r] = load<V>(init + r * ld_init + NV);
    }
  for (const Operand<T>& op : {x, y}) {
    if (op.K == 0) continue;
    const T* p = panel + op.k0 * NR;
    const T* a = op.a;
    int64_t k = 0;
    for (; k + S <= op.K; k += S)
#pragma GCC unroll 8
      for (int s = 0; s < S; ++s) {
        const V b0 = load<V>(p + (k + s) * NR), b1 = load<V>(p + (k + s) * NR + NV);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const T ar = Panel ? a[(k + s) * MR + r] : a[r * op.lda + k + s];
          lo[s][r] += ar * b0;
          hi[s][r] += ar * b1;
        }
      }
    for (; k < op.K; ++k) {
      const V b0 = load<V>(p + k * NR), b1 = load<V>(p + k * NR + NV);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const T ar = Panel ? a[k * MR + r] : a[r * op.lda + k];
        lo[0][r] += ar * b0;
        hi[0][r] += ar * b1;
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int s = 1; s < S; ++s) {
      lo[0][r] += lo[s][r];
      hi[0][r] += hi[s][r];
    }
    store(c + r * ldc, lo[0][r]);
    store(c + r * ldc + NV, hi[0][r]);
  }
}

// The operand from row m on.
template <typename T>
JAXRNN_INLINE Operand<T> rows(const Operand<T>& op, int64_t m) {
  return {op.K ? op.a + m * op.lda : nullptr, op.lda, op.k0, op.K};
}

// C (M, panels * NR; row stride ldc) = init + x P + y P over `panels`
// column panels of the packed matrix P (Kp rows each). Panel: x is A packed
// in micro-panels (pack_micro_panels; lda = K). init: nullptr for 0,
// a bias row (ld_init 0), or C itself (ld_init = ldc) to accumulate.
template <typename T, int NV, bool Panel = false>
JAXRNN_INLINE void packed_product(int64_t M, int64_t panels, const T* packed,
                                  int64_t Kp, Operand<T> x, Operand<T> y,
                                  const T* init, int64_t ld_init, T* c,
                                  int64_t ldc) {
  constexpr int NR = 2 * NV, MR = 6;
  for (int64_t q = 0; q < panels; ++q) {
    const T* panel = packed + q * Kp * NR;
    const T* iq = init ? init + q * NR : nullptr;
    T* cq = c + q * NR;
    int64_t m = 0;
    for (; m + MR <= M; m += MR) {
      const Operand<T> xm = rows(x, m), ym = rows(y, m);
      tile<T, NV, MR, 1, Panel>(xm, ym, panel, iq ? iq + m * ld_init : nullptr, ld_init,
                         cq + m * ldc, ldc);
    }
    const Operand<T> xm = rows(x, m), ym = rows(y, m);
    const T* im = iq ? iq + m * ld_init : nullptr;
    switch (M - m) {
      case 5: tile<T, NV, 5, 1, Panel>(xm, ym, panel, im, ld_init, cq + m * ldc, ldc); break;
      case 4: tile<T, NV, 4, 1, Panel>(xm, ym, panel, im, ld_init, cq + m * ldc, ldc); break;
      case 3: tile<T, NV, 3, 2, Panel>(xm, ym, panel, im, ld_init, cq + m * ldc, ldc); break;
      case 2: tile<T, NV, 2, 2, Panel>(xm, ym, panel, im, ld_init, cq + m * ldc, ldc); break;
      case 1: tile<T, NV, 1, 4, Panel>(xm, ym, panel, im, ld_init, cq + m * ldc, ldc); break;
      default: break;
    }
  }
}

// A (M, K), element (m, k) at at[k * ld + m] (A given transposed), into the
// micro-panels the tiles of packed_product read: tiles of 6 rows (the last
// one shorter), each stored k after k with its rows adjacent. Reads and
// writes run along rows of the source and of the panel alike.
template <typename T>
JAXRNN_INLINE void pack_micro_panels(int64_t M, int64_t K, const T* at, int64_t ld,
                                     T* __restrict dst) {
  constexpr int64_t MR = 6;
  for (int64_t m = 0; m < M; m += MR) {
    const int64_t mr = std::min(MR, M - m);
    T* panel = dst + m * K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < mr; ++r) panel[k * mr + r] = at[k * ld + m + r];
  }
}

// C (M, panels * NR) = A P for a long K (the weight gradients: K is T*B), A
// given transposed (element (m, k) at at[k * ld + m]): K in blocks whose
// panel rows stay in L1, M in blocks whose packed A (`scratch`, kMc * kKc
// elements) stays in L2.
constexpr int64_t kMc = 96, kKc = 256;

template <typename T, int NV>
JAXRNN_INLINE void transposed_product(int64_t M, int64_t panels, const T* packed,
                                      int64_t Kp, const T* at, int64_t ld, int64_t K,
                                      T* scratch, T* c, int64_t ldc) {
  const Operand<T> none{nullptr, 0, 0, 0};
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kn = std::min(kKc, K - k0);
    for (int64_t m0 = 0; m0 < M; m0 += kMc) {
      const int64_t mn = std::min(kMc, M - m0);
      pack_micro_panels(mn, kn, at + k0 * ld + m0, ld, scratch);
      T* cm = c + m0 * ldc;
      packed_product<T, NV, true>(mn, panels, packed, Kp, {scratch, kn, k0, kn}, none,
                                  k0 > 0 ? cm : nullptr, ldc, cm, ldc);
    }
  }
}

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_MICROKERNEL_H_
