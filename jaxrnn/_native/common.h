// What the kernels share: the cell kinds, the arguments of a call, and small
// helpers.
#ifndef JAXRNN_NATIVE_COMMON_H_
#define JAXRNN_NATIVE_COMMON_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cells.h"
#include "profile.h"
#include "workspace.h"

namespace jaxrnn {

// Kept in sync with jaxrnn/_native/__init__.py.
enum Kind : int64_t {
  kRnnTanh = 0,
  kRnnRelu = 1,
  kLstm = 2,
  kGruAfter = 3,   // r applied to (h W_hn + b_hn): torch, cuDNN
  kGruBefore = 4,  // (r * h) W_hn: Cho et al.
  kCifg = 5,
  kPeephole = 6,
  kNumKinds = 7,
};

inline int64_t num_gates(int64_t kind) {
  switch (kind) {
    case kRnnTanh: case kRnnRelu: return 1;
    case kLstm: case kPeephole: return 4;
    default: return 3;
  }
}

inline bool has_cell_state(int64_t kind) {
  return kind == kLstm || kind == kCifg || kind == kPeephole;
}

// Width per (step, row) of the saved activations ("residuals").
inline int64_t residual_width(int64_t kind, int64_t H) {
  switch (kind) {
    case kRnnTanh: case kRnnRelu: return H;  // h' (ys is 0 on invalid steps)
    case kGruAfter: return 4 * H;            // r, u, n, h W_hn + b_hn
    default: return num_gates(kind) * H;     // the activated gates
  }
}

struct Dims {
  int64_t T, B, I, H;
};

template <typename T>
struct ForwardArgs {
  int64_t kind;
  bool reverse;
  Dims d;
  const T *xs, *w_i, *b, *w_h, *extra, *h0, *c0;
  const uint8_t* valid;              // nullptr: every step valid
  T *ys, *h_out, *c_out, *res, *cs;  // res, cs: nullptr unless saved
};

template <typename T>
struct BackwardArgs {
  int64_t kind;
  bool reverse;
  Dims d;
  const T *xs, *w_i, *w_h, *extra, *h0, *c0;
  const uint8_t* valid;
  const T *ys, *res, *cs, *dys, *dh_in, *dc_in;
  T *dxs, *dw_i, *db, *dw_h, *dextra, *dh0, *dc0;
};

// The sequence as a list of time indices in the order the scan visits them.
inline int64_t time_index(int64_t step, int64_t T, bool reverse) {
  return reverse ? T - 1 - step : step;
}

inline bool is_valid(const uint8_t* valid, int64_t t, int64_t B, int64_t b) {
  return valid == nullptr || valid[t * B + b] != 0;
}

// out (cols, rows) = in (rows, cols)^T, both row-major with row strides.
template <typename T>
JAXRNN_INLINE void transpose(int64_t rows, int64_t cols, const T* in,
                             int64_t ld_in, T* out, int64_t ld_out) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c)
          out[c * ld_out + r] = in[r * ld_in + c];
}

// h before each step, (T*B, H) row-major, units [lo, hi): on an invalid
// step the carry is held, so it is the output of the last valid step before
// it in scan order (or h0).
template <typename T>
JAXRNN_INLINE void carries_before(const BackwardArgs<T>& a, T* hprev, int64_t lo,
                                  int64_t hi) {
  const int64_t Tn = a.d.T, B = a.d.B, H = a.d.H;
  for (int64_t b = 0; b < B; ++b) {
    const T* cur = a.h0 + b * H;
    for (int64_t s = 0; s < Tn; ++s) {
      const int64_t t = time_index(s, Tn, a.reverse);
      std::copy(cur + lo, cur + hi, hprev + (t * B + b) * H + lo);
      if (is_valid(a.valid, t, B, b)) cur = a.ys + (t * B + b) * H;
    }
  }
}

// sum[j] += row[j], in double (the bias sums, rounded once at the end).
template <typename T>
JAXRNN_INLINE void accumulate(int64_t n, const T* __restrict row,
                              double* __restrict sum) {
  for (int64_t j = 0; j < n; ++j) sum[j] += row[j];
}

// The backward loop's sums: the bias cotangents in
// double (db; db_xn, the reset-after GRU's input-side n block) and the
// peepholes' (dp, (3, H)).
struct BiasSums {
  std::vector<double> db, db_xn, dp;
  BiasSums(int64_t kind, int64_t H)
      : db(num_gates(kind) * H, 0.0),
        db_xn(kind == kGruAfter ? H : 0, 0.0),
        dp(kind == kPeephole ? 3 * H : 0, 0.0) {}
};

// After the backward loop: the bias gradients from the loop's sums, rounded
// once (b_hn for the reset-after GRU, whose h-side n block is its own).
template <typename T>
JAXRNN_INLINE void bias_gradients(const BackwardArgs<T>& a, const BiasSums& sums) {
  const int64_t H = a.d.H, GH = num_gates(a.kind) * H;
  for (int64_t g = 0; g < GH; ++g) a.db[g] = static_cast<T>(sums.db[g]);
  if (a.kind == kGruAfter) {  // the h-side n block is b_hn's; b_in's is the input side's
    for (int64_t j = 0; j < H; ++j) {
      a.dextra[j] = a.db[2 * H + j];
      a.db[2 * H + j] = static_cast<T>(sums.db_xn[j]);
    }
  }
  if (a.kind == kPeephole)
    for (int64_t q = 0; q < 3 * H; ++q) a.dextra[q] = static_cast<T>(sums.dp[q]);
}

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_COMMON_H_
