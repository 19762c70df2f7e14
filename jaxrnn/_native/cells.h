// One hidden unit of one step of each cell, forward and backward, for all B
// batch rows at once: the equations of jaxrnn/_src/{simple,lstm,gru}.py
// written out per element.
//
// Each function runs over n contiguous elements whose gate blocks sit `zs`
// (or `rs`) elements apart. The persistent kernels (persistent.h) call them
// on one batch row of a worker's units (n = its units; PS = 1: per-unit
// weights such as peepholes and b_hn, one per element). The `PS = 0` and
// `Masked` variants (one unit over n batch rows, a per-row mask) served a
// batch-minor layout that is gone; nothing instantiates them now.
// Every pointer is __restrict and every loop branch-free (selects, not
// branches), so each loop vectorises.
//
// Conventions: z holds pre-activations with the folded bias already added;
// gates are saved activated, in the cell's gate order. `Masked`: m[b] != 0
// marks the rows whose step is valid; other rows hold the carry (forward)
// and pass the cotangents through (backward). `Save`: store what the
// backward pass reads (res, cs).
#ifndef JAXRNN_NATIVE_CELLS_H_
#define JAXRNN_NATIVE_CELLS_H_

#include <algorithm>
#include <cstdint>

#include "activations.h"

#define JAXRNN_INLINE inline __attribute__((always_inline))

namespace jaxrnn {

template <bool Masked, typename T>
JAXRNN_INLINE bool keep(const T* __restrict m, int64_t b) {
  return !Masked || m[b] != T(0);
}

// ------------------------------------------------------------- simple RNN
// h' = act(z); saved: h'.
template <bool Save, bool Masked, typename T>
JAXRNN_INLINE void rnn_forward(int64_t n, bool relu, const T* __restrict z,
                               const T* __restrict m, T* __restrict h,
                               T* __restrict res) {
  for (int64_t b = 0; b < n; ++b) {
    const T hn = relu ? std::max(z[b], T(0)) : tanh_(z[b]);
    if (Save) res[b] = hn;
    h[b] = keep<Masked>(m, b) ? hn : h[b];
  }
}

// dz = dh_t act'(h'), with dh_t = dh + dy; the direct path to h is 0.
template <bool Masked, typename T>
JAXRNN_INLINE void rnn_backward(int64_t n, bool relu, const T* __restrict hn,
                                const T* __restrict dy, const T* __restrict m,
                                T* __restrict dh, T* __restrict dz) {
  for (int64_t b = 0; b < n; ++b) {
    const T g = dh[b] + dy[b];
    const T d = relu ? (hn[b] > T(0) ? g : T(0)) : g * (T(1) - hn[b] * hn[b]);
    const bool k = keep<Masked>(m, b);
    dz[b] = k ? d : T(0);
    dh[b] = k ? T(0) : dh[b];
  }
}

// ------------------------------------------------------------------ LSTM
// c' = f c + i g, h' = o tanh(c'); gates i, f, g, o.
template <bool Save, bool Masked, typename T>
JAXRNN_INLINE void lstm_forward(int64_t n, const T* __restrict z, int64_t zs,
                                const T* __restrict m, T* __restrict c,
                                T* __restrict h, T* __restrict res, int64_t rs,
                                T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T i = sigmoid_(z[b]), f = sigmoid_(z[zs + b]);
    const T g = tanh_(z[2 * zs + b]), o = sigmoid_(z[3 * zs + b]);
    const bool k = keep<Masked>(m, b);
    const T cn = k ? f * c[b] + i * g : c[b];
    const T hn = o * tanh_(cn);
    h[b] = k ? hn : h[b];
    c[b] = cn;
    if (Save) {
      res[b] = i; res[rs + b] = f; res[2 * rs + b] = g; res[3 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

template <bool Masked, typename T>
JAXRNN_INLINE void lstm_backward(int64_t n, const T* __restrict res, int64_t rs,
                                 const T* __restrict cn, const T* __restrict cp,
                                 const T* __restrict dy, const T* __restrict m,
                                 T* __restrict dh, T* __restrict dc,
                                 T* __restrict dz, int64_t zs) {
  for (int64_t b = 0; b < n; ++b) {
    const T i = res[b], f = res[rs + b], g = res[2 * rs + b], o = res[3 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc);
    const bool k = keep<Masked>(m, b);
    dz[b] = k ? gc * g * i * (T(1) - i) : T(0);
    dz[zs + b] = k ? gc * cp[b] * f * (T(1) - f) : T(0);
    dz[2 * zs + b] = k ? gc * i * (T(1) - g * g) : T(0);
    dz[3 * zs + b] = k ? gh * tc * o * (T(1) - o) : T(0);
    dc[b] = k ? gc * f : dc[b];
    dh[b] = k ? T(0) : dh[b];
  }
}

// --------------------------------------------------------------- CIFG LSTM
// c' = f c + (1 - f) g, h' = o tanh(c'); gates f, g, o.
template <bool Save, bool Masked, typename T>
JAXRNN_INLINE void cifg_forward(int64_t n, const T* __restrict z, int64_t zs,
                                const T* __restrict m, T* __restrict c,
                                T* __restrict h, T* __restrict res, int64_t rs,
                                T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T f = sigmoid_(z[b]), g = tanh_(z[zs + b]), o = sigmoid_(z[2 * zs + b]);
    const bool k = keep<Masked>(m, b);
    const T cn = k ? f * c[b] + (T(1) - f) * g : c[b];
    const T hn = o * tanh_(cn);
    h[b] = k ? hn : h[b];
    c[b] = cn;
    if (Save) {
      res[b] = f; res[rs + b] = g; res[2 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

template <bool Masked, typename T>
JAXRNN_INLINE void cifg_backward(int64_t n, const T* __restrict res, int64_t rs,
                                 const T* __restrict cn, const T* __restrict cp,
                                 const T* __restrict dy, const T* __restrict m,
                                 T* __restrict dh, T* __restrict dc,
                                 T* __restrict dz, int64_t zs) {
  for (int64_t b = 0; b < n; ++b) {
    const T f = res[b], g = res[rs + b], o = res[2 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc);
    const bool k = keep<Masked>(m, b);
    dz[b] = k ? gc * (cp[b] - g) * f * (T(1) - f) : T(0);
    dz[zs + b] = k ? gc * (T(1) - f) * (T(1) - g * g) : T(0);
    dz[2 * zs + b] = k ? gh * tc * o * (T(1) - o) : T(0);
    dc[b] = k ? gc * f : dc[b];
    dh[b] = k ? T(0) : dh[b];
  }
}

// ----------------------------------------------------------- peephole LSTM
// i = s(z_i + p_i c), f = s(z_f + p_f c), c' = f c + i g,
// o = s(z_o + p_o c'), h' = o tanh(c'); p_i, p_f, p_o are this unit's.
template <bool Save, bool Masked, int PS, typename T>
JAXRNN_INLINE void peephole_forward(int64_t n, const T* __restrict z, int64_t zs,
                                    const T* __restrict p, int64_t ps,
                                    const T* __restrict m, T* __restrict c,
                                    T* __restrict h, T* __restrict res, int64_t rs,
                                    T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T cp = c[b];
    const T i = sigmoid_(z[b] + p[b * PS] * cp);
    const T f = sigmoid_(z[zs + b] + p[ps + b * PS] * cp);
    const T g = tanh_(z[2 * zs + b]);
    const bool k = keep<Masked>(m, b);
    const T cn = k ? f * cp + i * g : cp;
    const T o = sigmoid_(z[3 * zs + b] + p[2 * ps + b * PS] * cn);
    const T hn = o * tanh_(cn);
    h[b] = k ? hn : h[b];
    c[b] = cn;
    if (Save) {
      res[b] = i; res[rs + b] = f; res[2 * rs + b] = g; res[3 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

// Also adds the peepholes' cotangents to dp (p_i, p_f, p_o, `ps` apart):
// one sum per gate over this unit's rows (PS = 0), or per element (PS = 1).
template <bool Masked, int PS, typename T>
JAXRNN_INLINE void peephole_backward(int64_t n, const T* __restrict res, int64_t rs,
                                     const T* __restrict cn, const T* __restrict cp,
                                     const T* __restrict p, int64_t ps,
                                     const T* __restrict dy, const T* __restrict m,
                                     T* __restrict dh, T* __restrict dc,
                                     T* __restrict dz, int64_t zs,
                                     double* __restrict dp) {
  double s_i = 0, s_f = 0, s_o = 0;
  for (int64_t b = 0; b < n; ++b) {
    const T p_i = p[b * PS], p_f = p[ps + b * PS], p_o = p[2 * ps + b * PS];
    const T i = res[b], f = res[rs + b], g = res[2 * rs + b], o = res[3 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const bool k = keep<Masked>(m, b);
    const T zo = k ? gh * tc * o * (T(1) - o) : T(0);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc) + zo * p_o;
    const T zi = k ? gc * g * i * (T(1) - i) : T(0);
    const T zf = k ? gc * cp[b] * f * (T(1) - f) : T(0);
    dz[b] = zi;
    dz[zs + b] = zf;
    dz[2 * zs + b] = k ? gc * i * (T(1) - g * g) : T(0);
    dz[3 * zs + b] = zo;
    dc[b] = k ? gc * f + zi * p_i + zf * p_f : dc[b];
    dh[b] = k ? T(0) : dh[b];
    if constexpr (PS == 0) {
      s_i += zi * cp[b];
      s_f += zf * cp[b];
      s_o += zo * cn[b];
    } else {
      dp[b] += zi * cp[b];
      dp[ps + b] += zf * cp[b];
      dp[2 * ps + b] += zo * cn[b];
    }
  }
  if constexpr (PS == 0) {
    dp[0] += s_i;
    dp[ps] += s_f;
    dp[2 * ps] += s_o;
  }
}

// -------------------------------------------------------------------- GRU
// In place on the recurrent products hp: r, u = s(x_r + h_r), s(x_u + h_u).
template <typename T>
JAXRNN_INLINE void gru_gates(int64_t n, const T* __restrict z,
                             T* __restrict hp) {
  for (int64_t b = 0; b < n; ++b) hp[b] = sigmoid_(z[b] + hp[b]);
}

template <typename T>
JAXRNN_INLINE void multiply(int64_t n, const T* __restrict x,
                            const T* __restrict y, T* __restrict out) {
  for (int64_t b = 0; b < n; ++b) out[b] = x[b] * y[b];
}

// n = tanh(x_n + r (h W_hn + b_hn)) (reset after) or tanh(x_n + (r h) W_hn)
// (reset before; its b_hn is folded into z), h' = (1 - u) n + u h. hp holds
// r, u and the recurrent n product, `hs` apart. Saved: r, u, n and, reset
// after, h W_hn + b_hn.
template <bool Save, bool Masked, bool After, int PS, typename T>
JAXRNN_INLINE void gru_forward(int64_t n, const T* __restrict z, int64_t zs,
                               const T* __restrict hp, int64_t hs,
                               const T* __restrict b_hn, const T* __restrict m,
                               T* __restrict h, T* __restrict res, int64_t rs) {
  for (int64_t b = 0; b < n; ++b) {
    const T r = hp[b], u = hp[hs + b];
    const T hn = After ? hp[2 * hs + b] + b_hn[b * PS] : hp[2 * hs + b];
    const T nn = tanh_(z[2 * zs + b] + (After ? r * hn : hn));
    const T hnew = (T(1) - u) * nn + u * h[b];
    h[b] = keep<Masked>(m, b) ? hnew : h[b];
    if (Save) {
      res[b] = r; res[rs + b] = u; res[2 * rs + b] = nn;
      if (After) res[3 * rs + b] = hn;
    }
  }
}

// dz gets u's and n's pre-activation cotangents (h side: reset after r dn',
// reset before dn') and, reset after, r's; dxn the input side's n block
// (reset after). dh becomes the direct path dh_t u. hp: h before the step.
template <bool Masked, bool After, typename T>
JAXRNN_INLINE void gru_backward(int64_t n, const T* __restrict res, int64_t rs,
                                const T* __restrict hp, const T* __restrict dy,
                                const T* __restrict m, T* __restrict dh,
                                T* __restrict dz, int64_t zs, T* __restrict dxn) {
  for (int64_t b = 0; b < n; ++b) {
    const T r = res[b], u = res[rs + b], nn = res[2 * rs + b];
    const T gh = dh[b] + dy[b];
    const T an = gh * (T(1) - u) * (T(1) - nn * nn);
    const bool k = keep<Masked>(m, b);
    dz[zs + b] = k ? gh * (hp[b] - nn) * u * (T(1) - u) : T(0);
    if (After) {
      dz[b] = k ? an * res[3 * rs + b] * r * (T(1) - r) : T(0);
      dz[2 * zs + b] = k ? an * r : T(0);
      dxn[b] = k ? an : T(0);
    } else {
      dz[2 * zs + b] = k ? an : T(0);
    }
    dh[b] = k ? gh * u : dh[b];
  }
}

// Reset before, once d(r h) = W_hn dn' is known: r's cotangent and the path
// through r h (both zero on invalid rows, where dn' is).
template <typename T>
JAXRNN_INLINE void gru_before_reset_backward(int64_t n, const T* __restrict r,
                                             const T* __restrict hp,
                                             const T* __restrict drh,
                                             T* __restrict dz_r, T* __restrict dh) {
  for (int64_t b = 0; b < n; ++b) {
    dz_r[b] = drh[b] * hp[b] * r[b] * (T(1) - r[b]);
    dh[b] += drh[b] * r[b];
  }
}

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_CELLS_H_
