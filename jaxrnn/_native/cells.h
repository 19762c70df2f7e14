// One step of each cell, forward and backward, for a run of hidden units of
// one batch row: the equations of jaxrnn/_src/{simple,lstm,gru}.py written
// out per element.
//
// Each function runs over n contiguous units whose gate blocks sit `zs` (or
// `rs`) elements apart. The persistent kernels (persistent.h) call them on
// one batch row of a worker's units (n = its units); per-unit weights such
// as the peepholes and b_hn are one per element. The caller runs them only
// on a row's valid steps; on the others it holds the carry and passes the
// cotangents through itself. Every pointer is __restrict and every loop
// branch-free (selects, not branches), so each loop vectorises.
//
// Conventions: z holds pre-activations with the folded bias already added;
// gates are saved activated, in the cell's gate order. `Save`: store what
// the backward pass reads (res, cs).
#ifndef JAXRNN_NATIVE_CELLS_H_
#define JAXRNN_NATIVE_CELLS_H_

#include <algorithm>
#include <cstdint>

#include "activations.h"

#define JAXRNN_INLINE inline __attribute__((always_inline))

namespace jaxrnn {

// ------------------------------------------------------------- simple RNN
// h' = act(z); saved: h'.
template <bool Save, typename T>
JAXRNN_INLINE void rnn_forward(int64_t n, bool relu, const T* __restrict z,
                               T* __restrict h, T* __restrict res) {
  for (int64_t b = 0; b < n; ++b) {
    const T hn = relu ? std::max(z[b], T(0)) : tanh_(z[b]);
    if (Save) res[b] = hn;
    h[b] = hn;
  }
}

// dz = dh_t act'(h'), with dh_t = dh + dy; the direct path to h is 0.
template <typename T>
JAXRNN_INLINE void rnn_backward(int64_t n, bool relu, const T* __restrict hn,
                                const T* __restrict dy, T* __restrict dh,
                                T* __restrict dz) {
  for (int64_t b = 0; b < n; ++b) {
    const T g = dh[b] + dy[b];
    const T d = relu ? (hn[b] > T(0) ? g : T(0)) : g * (T(1) - hn[b] * hn[b]);
    dz[b] = d;
    dh[b] = T(0);
  }
}

// ------------------------------------------------------------------ LSTM
// c' = f c + i g, h' = o tanh(c'); gates i, f, g, o.
template <bool Save, typename T>
JAXRNN_INLINE void lstm_forward(int64_t n, const T* __restrict z, int64_t zs,
                                T* __restrict c, T* __restrict h,
                                T* __restrict res, int64_t rs, T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T i = sigmoid_(z[b]), f = sigmoid_(z[zs + b]);
    const T g = tanh_(z[2 * zs + b]), o = sigmoid_(z[3 * zs + b]);
    const T cn = f * c[b] + i * g;
    const T hn = o * tanh_(cn);
    h[b] = hn;
    c[b] = cn;
    if (Save) {
      res[b] = i; res[rs + b] = f; res[2 * rs + b] = g; res[3 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

template <typename T>
JAXRNN_INLINE void lstm_backward(int64_t n, const T* __restrict res, int64_t rs,
                                 const T* __restrict cn, const T* __restrict cp,
                                 const T* __restrict dy, T* __restrict dh,
                                 T* __restrict dc, T* __restrict dz, int64_t zs) {
  for (int64_t b = 0; b < n; ++b) {
    const T i = res[b], f = res[rs + b], g = res[2 * rs + b], o = res[3 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc);
    dz[b] = gc * g * i * (T(1) - i);
    dz[zs + b] = gc * cp[b] * f * (T(1) - f);
    dz[2 * zs + b] = gc * i * (T(1) - g * g);
    dz[3 * zs + b] = gh * tc * o * (T(1) - o);
    dc[b] = gc * f;
    dh[b] = T(0);
  }
}

// --------------------------------------------------------------- CIFG LSTM
// c' = f c + (1 - f) g, h' = o tanh(c'); gates f, g, o.
template <bool Save, typename T>
JAXRNN_INLINE void cifg_forward(int64_t n, const T* __restrict z, int64_t zs,
                                T* __restrict c, T* __restrict h,
                                T* __restrict res, int64_t rs, T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T f = sigmoid_(z[b]), g = tanh_(z[zs + b]), o = sigmoid_(z[2 * zs + b]);
    const T cn = f * c[b] + (T(1) - f) * g;
    const T hn = o * tanh_(cn);
    h[b] = hn;
    c[b] = cn;
    if (Save) {
      res[b] = f; res[rs + b] = g; res[2 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

template <typename T>
JAXRNN_INLINE void cifg_backward(int64_t n, const T* __restrict res, int64_t rs,
                                 const T* __restrict cn, const T* __restrict cp,
                                 const T* __restrict dy, T* __restrict dh,
                                 T* __restrict dc, T* __restrict dz, int64_t zs) {
  for (int64_t b = 0; b < n; ++b) {
    const T f = res[b], g = res[rs + b], o = res[2 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc);
    dz[b] = gc * (cp[b] - g) * f * (T(1) - f);
    dz[zs + b] = gc * (T(1) - f) * (T(1) - g * g);
    dz[2 * zs + b] = gh * tc * o * (T(1) - o);
    dc[b] = gc * f;
    dh[b] = T(0);
  }
}

// ----------------------------------------------------------- peephole LSTM
// i = s(z_i + p_i c), f = s(z_f + p_f c), c' = f c + i g,
// o = s(z_o + p_o c'), h' = o tanh(c'); p_i, p_f, p_o are this unit's.
template <bool Save, typename T>
JAXRNN_INLINE void peephole_forward(int64_t n, const T* __restrict z, int64_t zs,
                                    const T* __restrict p, int64_t ps,
                                    T* __restrict c, T* __restrict h,
                                    T* __restrict res, int64_t rs, T* __restrict cs) {
  for (int64_t b = 0; b < n; ++b) {
    const T cp = c[b];
    const T i = sigmoid_(z[b] + p[b] * cp);
    const T f = sigmoid_(z[zs + b] + p[ps + b] * cp);
    const T g = tanh_(z[2 * zs + b]);
    const T cn = f * cp + i * g;
    const T o = sigmoid_(z[3 * zs + b] + p[2 * ps + b] * cn);
    const T hn = o * tanh_(cn);
    h[b] = hn;
    c[b] = cn;
    if (Save) {
      res[b] = i; res[rs + b] = f; res[2 * rs + b] = g; res[3 * rs + b] = o;
      cs[b] = cn;
    }
  }
}

// Also adds the peepholes' cotangents to dp (p_i, p_f, p_o, `ps` apart),
// one per element.
template <typename T>
JAXRNN_INLINE void peephole_backward(int64_t n, const T* __restrict res, int64_t rs,
                                     const T* __restrict cn, const T* __restrict cp,
                                     const T* __restrict p, int64_t ps,
                                     const T* __restrict dy, T* __restrict dh,
                                     T* __restrict dc, T* __restrict dz, int64_t zs,
                                     double* __restrict dp) {
  for (int64_t b = 0; b < n; ++b) {
    const T p_i = p[b], p_f = p[ps + b], p_o = p[2 * ps + b];
    const T i = res[b], f = res[rs + b], g = res[2 * rs + b], o = res[3 * rs + b];
    const T gh = dh[b] + dy[b];
    const T tc = tanh_(cn[b]);
    const T zo = gh * tc * o * (T(1) - o);
    const T gc = dc[b] + gh * o * (T(1) - tc * tc) + zo * p_o;
    const T zi = gc * g * i * (T(1) - i);
    const T zf = gc * cp[b] * f * (T(1) - f);
    dz[b] = zi;
    dz[zs + b] = zf;
    dz[2 * zs + b] = gc * i * (T(1) - g * g);
    dz[3 * zs + b] = zo;
    dc[b] = gc * f + zi * p_i + zf * p_f;
    dh[b] = T(0);
    dp[b] += zi * cp[b];
    dp[ps + b] += zf * cp[b];
    dp[2 * ps + b] += zo * cn[b];
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
template <bool Save, bool After, typename T>
JAXRNN_INLINE void gru_forward(int64_t n, const T* __restrict z, int64_t zs,
                               const T* __restrict hp, int64_t hs,
                               const T* __restrict b_hn, T* __restrict h,
                               T* __restrict res, int64_t rs) {
  for (int64_t b = 0; b < n; ++b) {
    const T r = hp[b], u = hp[hs + b];
    const T hn = After ? hp[2 * hs + b] + b_hn[b] : hp[2 * hs + b];
    const T nn = tanh_(z[2 * zs + b] + (After ? r * hn : hn));
    const T hnew = (T(1) - u) * nn + u * h[b];
    h[b] = hnew;
    if (Save) {
      res[b] = r; res[rs + b] = u; res[2 * rs + b] = nn;
      if (After) res[3 * rs + b] = hn;
    }
  }
}

// dz gets u's and n's pre-activation cotangents (h side: reset after r dn',
// reset before dn') and, reset after, r's; dxn the input side's n block
// (reset after). dh becomes the direct path dh_t u. hp: h before the step.
template <bool After, typename T>
JAXRNN_INLINE void gru_backward(int64_t n, const T* __restrict res, int64_t rs,
                                const T* __restrict hp, const T* __restrict dy,
                                T* __restrict dh, T* __restrict dz, int64_t zs,
                                T* __restrict dxn) {
  for (int64_t b = 0; b < n; ++b) {
    const T r = res[b], u = res[rs + b], nn = res[2 * rs + b];
    const T gh = dh[b] + dy[b];
    const T an = gh * (T(1) - u) * (T(1) - nn * nn);
    dz[zs + b] = gh * (hp[b] - nn) * u * (T(1) - u);
    if (After) {
      dz[b] = an * res[3 * rs + b] * r * (T(1) - r);
      dz[2 * zs + b] = an * r;
      dxn[b] = an;
    } else {
      dz[2 * zs + b] = an;
    }
    dh[b] = gh * u;
  }
}

// Reset before, once d(r h) = W_hn dn' is known: r's cotangent and the path
// through r h.
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
