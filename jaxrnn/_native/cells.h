// One batch row of one step of each cell, forward and backward: the
// equations of jaxrnn/_src/{simple,lstm,gru}.py written out per element.
// Every pointer is __restrict and every loop branch-free, so that the
// compiler vectorises each loop; `Save` drops the stores of the saved
// activations when no backward pass will read them.
//
// Conventions: z is the pre-activation without bias (x W_i + h W_h), bias the
// folded bias; gates are saved activated, in the cell's gate order.
#ifndef JAXRNN_NATIVE_CELLS_H_
#define JAXRNN_NATIVE_CELLS_H_

#include <algorithm>
#include <cstdint>

#include "activations.h"

#define JAXRNN_ROW inline __attribute__((always_inline))

namespace jaxrnn {

// ------------------------------------------------------------- simple RNN
template <typename T>
JAXRNN_ROW void rnn_forward(int64_t H, bool relu, const T* __restrict z,
                            const T* __restrict bias, T* __restrict h,
                            T* __restrict y) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) h[j] = y[j] = std::max(z[j] + bias[j], T(0));
  } else {
    for (int64_t j = 0; j < H; ++j) h[j] = y[j] = tanh_(z[j] + bias[j]);
  }
}

// dz = dh_t * act'(h_t), dh_t = dh + dy; the direct path to h_{t-1} is 0.
template <typename T>
JAXRNN_ROW void rnn_backward(int64_t H, bool relu, const T* __restrict hn,
                             const T* __restrict dy, T* __restrict dh,
                             T* __restrict dz) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) {
      dz[j] = hn[j] > T(0) ? dh[j] + dy[j] : T(0);
      dh[j] = T(0);
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      dz[j] = (dh[j] + dy[j]) * (T(1) - hn[j] * hn[j]);
      dh[j] = T(0);
    }
  }
}

// ------------------------------------------------------------------ LSTM
// c' = f c + i g, h' = o tanh(c'); gates i, f, g, o.
template <bool Save, typename T>
JAXRNN_ROW void lstm_forward(int64_t H, const T* __restrict z,
                             const T* __restrict bias, T* __restrict c,
                             T* __restrict h, T* __restrict y,
                             T* __restrict gates, T* __restrict cs) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = sigmoid_(z[j] + bias[j]);
    const T f = sigmoid_(z[H + j] + bias[H + j]);
    const T g = tanh_(z[2 * H + j] + bias[2 * H + j]);
    const T o = sigmoid_(z[3 * H + j] + bias[3 * H + j]);
    const T cn = f * c[j] + i * g;
    const T hn = o * tanh_(cn);
    c[j] = cn;
    h[j] = y[j] = hn;
    if (Save) {
      gates[j] = i; gates[H + j] = f; gates[2 * H + j] = g; gates[3 * H + j] = o;
      cs[j] = cn;
    }
  }
}

template <typename T>
JAXRNN_ROW void lstm_backward(int64_t H, const T* __restrict gates,
                              const T* __restrict cn, const T* __restrict cp,
                              const T* __restrict dy, T* __restrict dh,
                              T* __restrict dc, T* __restrict dz) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T gh = dh[j] + dy[j];
    const T tc = tanh_(cn[j]);
    const T gc = dc[j] + gh * o * (T(1) - tc * tc);
    dz[j] = gc * g * i * (T(1) - i);
    dz[H + j] = gc * cp[j] * f * (T(1) - f);
    dz[2 * H + j] = gc * i * (T(1) - g * g);
    dz[3 * H + j] = gh * tc * o * (T(1) - o);
    dc[j] = gc * f;
    dh[j] = T(0);
  }
}

// --------------------------------------------------------------- CIFG LSTM
// c' = f c + (1 - f) g, h' = o tanh(c'); gates f, g, o.
template <bool Save, typename T>
JAXRNN_ROW void cifg_forward(int64_t H, const T* __restrict z,
                             const T* __restrict bias, T* __restrict c,
                             T* __restrict h, T* __restrict y,
                             T* __restrict gates, T* __restrict cs) {
  for (int64_t j = 0; j < H; ++j) {
    const T f = sigmoid_(z[j] + bias[j]);
    const T g = tanh_(z[H + j] + bias[H + j]);
    const T o = sigmoid_(z[2 * H + j] + bias[2 * H + j]);
    const T cn = f * c[j] + (T(1) - f) * g;
    const T hn = o * tanh_(cn);
    c[j] = cn;
    h[j] = y[j] = hn;
    if (Save) {
      gates[j] = f; gates[H + j] = g; gates[2 * H + j] = o;
      cs[j] = cn;
    }
  }
}

template <typename T>
JAXRNN_ROW void cifg_backward(int64_t H, const T* __restrict gates,
                              const T* __restrict cn, const T* __restrict cp,
                              const T* __restrict dy, T* __restrict dh,
                              T* __restrict dc, T* __restrict dz) {
  for (int64_t j = 0; j < H; ++j) {
    const T f = gates[j], g = gates[H + j], o = gates[2 * H + j];
    const T gh = dh[j] + dy[j];
    const T tc = tanh_(cn[j]);
    const T gc = dc[j] + gh * o * (T(1) - tc * tc);
    dz[j] = gc * (cp[j] - g) * f * (T(1) - f);
    dz[H + j] = gc * (T(1) - f) * (T(1) - g * g);
    dz[2 * H + j] = gh * tc * o * (T(1) - o);
    dc[j] = gc * f;
    dh[j] = T(0);
  }
}

// ----------------------------------------------------------- peephole LSTM
// i = s(z_i + p_i c), f = s(z_f + p_f c), c' = f c + i g,
// o = s(z_o + p_o c'), h' = o tanh(c'); p holds p_i, p_f, p_o.
template <bool Save, typename T>
JAXRNN_ROW void peephole_forward(int64_t H, const T* __restrict z,
                                 const T* __restrict bias, const T* __restrict p,
                                 T* __restrict c, T* __restrict h,
                                 T* __restrict y, T* __restrict gates,
                                 T* __restrict cs) {
  for (int64_t j = 0; j < H; ++j) {
    const T cp = c[j];
    const T i = sigmoid_(z[j] + bias[j] + p[j] * cp);
    const T f = sigmoid_(z[H + j] + bias[H + j] + p[H + j] * cp);
    const T g = tanh_(z[2 * H + j] + bias[2 * H + j]);
    const T cn = f * cp + i * g;
    const T o = sigmoid_(z[3 * H + j] + bias[3 * H + j] + p[2 * H + j] * cn);
    const T hn = o * tanh_(cn);
    c[j] = cn;
    h[j] = y[j] = hn;
    if (Save) {
      gates[j] = i; gates[H + j] = f; gates[2 * H + j] = g; gates[3 * H + j] = o;
      cs[j] = cn;
    }
  }
}

// Also accumulates the peepholes' gradient into dp (p_i, p_f, p_o).
template <typename T>
JAXRNN_ROW void peephole_backward(int64_t H, const T* __restrict gates,
                                  const T* __restrict cn, const T* __restrict cp,
                                  const T* __restrict p, const T* __restrict dy,
                                  T* __restrict dh, T* __restrict dc,
                                  T* __restrict dz, T* __restrict dp) {
  for (int64_t j = 0; j < H; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T gh = dh[j] + dy[j];
    const T tc = tanh_(cn[j]);
    const T zo = gh * tc * o * (T(1) - o);
    const T gc = dc[j] + gh * o * (T(1) - tc * tc) + zo * p[2 * H + j];
    const T zi = gc * g * i * (T(1) - i);
    const T zf = gc * cp[j] * f * (T(1) - f);
    dz[j] = zi;
    dz[H + j] = zf;
    dz[2 * H + j] = gc * i * (T(1) - g * g);
    dz[3 * H + j] = zo;
    dc[j] = gc * f + zi * p[j] + zf * p[H + j];
    dp[j] += zi * cp[j];
    dp[H + j] += zf * cp[j];
    dp[2 * H + j] += zo * cn[j];
    dh[j] = T(0);
  }
}

// -------------------------------------------------------------------- GRU
// r, u = s(x_r + h_r), s(x_u + h_u) over 2H, in place on the recurrent part.
template <typename T>
JAXRNN_ROW void gru_gates(int64_t H2, const T* __restrict z,
                          const T* __restrict bias, T* __restrict hp) {
  for (int64_t j = 0; j < H2; ++j) hp[j] = sigmoid_(z[j] + bias[j] + hp[j]);
}

template <typename T>
JAXRNN_ROW void multiply(int64_t H, const T* __restrict a, const T* __restrict b,
                         T* __restrict out) {
  for (int64_t j = 0; j < H; ++j) out[j] = a[j] * b[j];
}

// n = tanh(x_n + r (h W_hn + b_hn)) (reset after) or tanh(x_n + (r h) W_hn)
// (reset before; b_hn is folded in bias), h' = (1 - u) n + u h. ru holds r, u;
// hn the recurrent n product. Saved: r, u, n and, reset after, h W_hn + b_hn.
template <bool Save, bool After, typename T>
JAXRNN_ROW void gru_forward(int64_t H, const T* __restrict z,
                            const T* __restrict bias, const T* __restrict ru,
                            const T* __restrict hn, const T* __restrict b_hn,
                            T* __restrict h, T* __restrict y, T* __restrict saved) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = ru[j], u = ru[H + j];
    const T m = After ? hn[j] + b_hn[j] : hn[j];
    const T n = tanh_(z[2 * H + j] + bias[2 * H + j] + (After ? r * m : m));
    const T hnew = (T(1) - u) * n + u * h[j];
    h[j] = y[j] = hnew;
    if (Save) {
      saved[j] = r; saved[H + j] = u; saved[2 * H + j] = n;
      if (After) saved[3 * H + j] = m;
    }
  }
}

// dz gets r's (reset after only), u's and n's pre-activation cotangents, the
// n block on the h side (reset after: r * dn'; reset before: dn'); dxn the
// input side's n block (reset after). dh becomes the direct path dh_t * u.
template <bool After, typename T>
JAXRNN_ROW void gru_backward(int64_t H, const T* __restrict saved,
                             const T* __restrict hp, const T* __restrict dy,
                             T* __restrict dh, T* __restrict dz,
                             T* __restrict dxn) {
  for (int64_t j = 0; j < H; ++j) {
    const T r = saved[j], u = saved[H + j], n = saved[2 * H + j];
    const T gh = dh[j] + dy[j];
    const T an = gh * (T(1) - u) * (T(1) - n * n);
    dz[H + j] = gh * (hp[j] - n) * u * (T(1) - u);
    if (After) {
      dz[j] = an * saved[3 * H + j] * r * (T(1) - r);
      dz[2 * H + j] = an * r;
      dxn[j] = an;
    } else {
      dz[2 * H + j] = an;
    }
    dh[j] = gh * u;
  }
}

// Reset before, once d(r h) = dn' W_hn^T is known: r's cotangent and the
// path through r * h.
template <typename T>
JAXRNN_ROW void gru_before_reset_backward(int64_t H, const T* __restrict r,
                                          const T* __restrict hp,
                                          const T* __restrict drh,
                                          T* __restrict dz_r, T* __restrict dh) {
  for (int64_t j = 0; j < H; ++j) {
    dz_r[j] = drh[j] * hp[j] * r[j] * (T(1) - r[j]);
    dh[j] += drh[j] * r[j];
  }
}

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_CELLS_H_
