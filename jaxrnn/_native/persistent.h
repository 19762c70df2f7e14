// The persistent, weight-stationary layer kernels: Diamos et al. 2016,
// "Persistent RNNs: Stashing Recurrent Weights On-Chip", on CPU cores.
//
// P workers (pool.h) each own a slice of the hidden units with all the
// gates of those units, for the whole call:
//
// Forward. A worker packs its columns of [W_i; W_h] once (microkernel.h),
//   where they stay in its core's cache for all T steps. Each step it
//   computes its units' pre-activations z = b + x_t W_i + h_{t-1} W_h as one
//   product (the input projection is part of the step: no T x B x G*H
//   buffer), applies their gate math at once (its units' cell state is its
//   own), writes its part of h_t, and meets the others at a spin barrier
//   that publishes h_t. h is double-buffered, so one barrier per step
//   suffices. The reset-before GRU needs r for every unit before (r h) W_hn:
//   one more barrier.
// Backward (cuDNN's scheme, owned the same way). Per step a worker computes
//   dz_t for its units' gates, meets the others, then its units' part of
//   dh_{t-1} = direct + dz_t W_h^T from the whole dz_t, with its rows of
//   W_h^T packed once. After the loop the same workers compute the weight
//   gradients and dX as products over all T*B rows (cuDNN's scheme), each
//   worker a share of the output rows: dW_h^T = dz^T H_prev, dW_i^T = dz^T X,
//   dX = dz W_i^T. No BLAS: its own threads would compete with the pool's.
//
// The elementwise math is cells.h's, on a worker's slice: n = its units,
// gate stride H in the saved arrays and `pad` (its units rounded up to whole
// panels) in its own buffers.
#ifndef JAXRNN_NATIVE_PERSISTENT_H_
#define JAXRNN_NATIVE_PERSISTENT_H_

#include <utility>

#include "common.h"
#include "microkernel.h"
#include "pool.h"

namespace jaxrnn {
namespace persistent {

// Worker w of P owns units [lo, hi): whole panels of NR units, spread as
// evenly as they divide. pad: its units rounded up to its panels.
struct Units {
  int64_t lo, hi, n, pad, panels;
};

template <int NR>
inline Units units(int64_t H, int P, int w) {
  const int64_t panels = round_up(H, NR) / NR;
  const int64_t q0 = panels * w / P, q1 = panels * (w + 1) / P;
  const int64_t lo = std::min(H, q0 * NR), hi = std::min(H, q1 * NR);
  return {lo, hi, hi - lo, (q1 - q0) * NR, q1 - q0};
}

// What the workers of one call share.
template <typename T>
struct ForwardCall {
  ForwardCall(const ForwardArgs<T>& args, int workers, Workspace& ws)
      : a(args), P(workers), barrier(workers) {
    const int64_t BH = a.d.B * a.d.H;
    h[0] = ws.get<T>(kShared, BH);
    h[1] = ws.get<T>(kShared + 1, BH);
    rh = ws.get<T>(kShared + 2, a.kind == kGruBefore ? BH : 0);
  }
  static constexpr size_t kShared = 8;  // workspace slots 0..7 are a worker's
  const ForwardArgs<T>& a;
  const int P;
  SpinBarrier barrier;
  // dst[0:n] = src[0:n] past the caches (kernels.cc, per instruction set):
  // the saved activations, written once here and read in another pass.
  void (*stream)(T* dst, const T* src, int64_t n) = nullptr;
  T* h[2];  // (B, H): h_{t-1} and h_t
  T* rh;    // (B, H): r h (reset-before GRU)
};

template <typename T>
struct BackwardCall {
  BackwardCall(const BackwardArgs<T>& args, int workers, Workspace& ws)
      : a(args), P(workers), barrier(workers), sums(a.kind, a.d.H) {
    const int64_t TB = a.d.T * a.d.B, H = a.d.H;
    hprev = ws.get<T>(kShared, TB * H);
    dz = ws.get<T>(kShared + 1, TB * num_gates(a.kind) * H);
    dxn = ws.get<T>(kShared + 2, a.kind == kGruAfter ? TB * H : 0);
  }
  // The weight-gradient phase's operands, packed by `vector`-wide panels.
  void weight_buffers(int vector, Workspace& ws) {
    const int64_t TB = a.d.T * a.d.B, GH = num_gates(a.kind) * a.d.H;
    const int64_t Hp = round_up(a.d.H, 2 * vector), Ip = round_up(a.d.I, 2 * vector);
    packed_h = ws.get<T>(kShared + 3, TB * Hp);
    packed_x = ws.get<T>(kShared + 4, TB * Ip);
    packed_wi = ws.get<T>(kShared + 5, GH * Ip);
    dwt = ws.get<T>(kShared + 6, GH * std::max(Hp, Ip));
    dx = ws.get<T>(kShared + 7, TB * Ip);
  }
  static constexpr size_t kShared = 8;
  const BackwardArgs<T>& a;
  const int P;
  SpinBarrier barrier;
  BiasSums sums;  // each worker adds to its own units' entries
  T* hprev;       // (T*B, H): the carry before each step
  T* dz;          // (T*B, G*H): pre-activation cotangents, h side
  T* dxn;         // (T*B, H): the reset-after GRU's input-side n block
  T *packed_h = nullptr, *packed_x = nullptr, *packed_wi = nullptr;  // H_prev, X, W_i^T
  T* dwt = nullptr;  // (G*H, padded H or I): dW_h^T, then dW_i^T
  T* dx = nullptr;   // (T*B, padded I)
};

// Worker w's share [lo, hi) of n rows.
inline std::pair<int64_t, int64_t> share(int64_t n, int P, int w) {
  return {n * w / P, n * (w + 1) / P};
}

// Packs panels [q0, q1) of the (K, n) matrix at src (element (k, j) at
// src[k ld_k + j ld_j]) into panels with K rows.
template <int NR, typename T>
JAXRNN_INLINE void pack_share(int64_t K, int64_t n, const T* src, int64_t ld_k,
                              int64_t ld_j, T* dst, int64_t q0, int64_t q1) {
  const int64_t cols = std::min(n, q1 * NR) - q0 * NR;
  if (cols > 0) pack<NR>(K, cols, src + q0 * NR * ld_j, ld_k, ld_j, dst + q0 * K * NR, K, 0);
}

// dW_h^T rows [g0, g1) = dz[:, g0:g1]^T H_prev, this worker's share, then
// into dW_h (H, G*H).
template <typename T, int NV>
JAXRNN_INLINE void dw_h(BackwardCall<T>& call, int w, int64_t g0, int64_t g1, T* scratch) {
  const BackwardArgs<T>& a = call.a;
  const int64_t TB = a.d.T * a.d.B, H = a.d.H, GH = num_gates(a.kind) * H;
  const int64_t Hp = round_up(H, 2 * NV);
  auto [m0, m1] = share(g1 - g0, call.P, w);
  m0 += g0;
  m1 += g0;
  transposed_product<T, NV>(m1 - m0, Hp / (2 * NV), call.packed_h, TB, call.dz + m0, GH, TB,
                            scratch, call.dwt + m0 * Hp, Hp);
  for (int64_t j = 0; j < H; ++j)
    for (int64_t g = m0; g < m1; ++g) a.dw_h[j * GH + g] = call.dwt[g * Hp + j];
}

// The weight gradients and dX, once dz (T*B, G*H) and H_prev are complete:
// each product's output rows shared among the workers, a barrier between
// phases that read what others wrote.
template <typename T, int NV>
JAXRNN_INLINE void weights(BackwardCall<T>& call, int w, bool timed) {
  constexpr int NR = 2 * NV;
  const BackwardArgs<T>& a = call.a;
  const int64_t TB = a.d.T * a.d.B, I = a.d.I, H = a.d.H;
  const int64_t G = num_gates(a.kind), GH = G * H, R = residual_width(a.kind, H);
  const int64_t Hp = round_up(H, NR), Ip = round_up(I, NR);
  const bool before = a.kind == kGruBefore, after = a.kind == kGruAfter;
  const int P = call.P;
  PhaseTimer timer(kWeights, timed);
  T* scratch = Workspace::for_this_thread().get<T>(5, kMc * kKc);
  // (No lambdas here: GCC compiles a lambda for the baseline ISA, not for
  // the target of the function that holds it.)
  const auto [hq0, hq1] = share(Hp / NR, P, w);
  const auto [iq0, iq1] = share(Ip / NR, P, w);
  pack_share<NR>(TB, H, call.hprev, H, 1, call.packed_h, hq0, hq1);
  pack_share<NR>(TB, I, a.xs, I, 1, call.packed_x, iq0, iq1);
  pack_share<NR>(GH, I, a.w_i, 1, GH, call.packed_wi, iq0, iq1);
  call.barrier.wait();
  if (before) {  // the n block's input is r h_prev, not h_prev
    dw_h<T, NV>(call, w, 0, 2 * H, scratch);
    call.barrier.wait();
    for (int64_t tr = 0; tr < TB; ++tr)
      for (int64_t j = hq0 * NR; j < std::min(H, hq1 * NR); ++j)
        call.hprev[tr * H + j] *= a.res[tr * R + j];
    pack_share<NR>(TB, H, call.hprev, H, 1, call.packed_h, hq0, hq1);
    call.barrier.wait();
    dw_h<T, NV>(call, w, 2 * H, GH, scratch);
  } else {
    dw_h<T, NV>(call, w, 0, GH, scratch);
  }
  call.barrier.wait();
  if (after) {  // the input side's n block takes the h side's place
    auto [r0, r1] = share(TB, P, w);
    for (int64_t r = r0; r < r1; ++r)
      std::copy(call.dxn + r * H, call.dxn + (r + 1) * H, call.dz + r * GH + 2 * H);
    call.barrier.wait();
  }
  {  // dW_i^T = dz^T X
    auto [m0, m1] = share(GH, P, w);
    transposed_product<T, NV>(m1 - m0, Ip / NR, call.packed_x, TB, call.dz + m0, GH, TB,
                              scratch, call.dwt + m0 * Ip, Ip);
    for (int64_t i = 0; i < I; ++i)
      for (int64_t g = m0; g < m1; ++g) a.dw_i[i * GH + g] = call.dwt[g * Ip + i];
  }
  {  // dX = dz W_i^T
    auto [r0, r1] = share(TB, P, w);
    for (int64_t m = r0; m < r1; m += kMc)  // kMc rows of dz stay in L2 for all panels
      packed_product<T, NV>(std::min(kMc, r1 - m), Ip / NR, call.packed_wi, GH,
                            {call.dz + m * GH, GH, 0, GH}, {nullptr, 0, 0, 0}, nullptr, 0,
                            call.dx + m * Ip, Ip);
    for (int64_t r = r0; r < r1; ++r)
      std::copy(call.dx + r * Ip, call.dx + r * Ip + I, a.dxs + r * I);
  }
}

// The gate math of step t for this worker's units of every row. z, hp:
// (B, ldz), gate blocks `pad` apart; h: h_{t-1}; hn: h_t (B, H); c: the
// worker's cell states (B, pad).
template <bool Save, typename T>
JAXRNN_INLINE void gates(const ForwardCall<T>& call, const Units& u, int64_t t,
                         const T* z, const T* hp, int64_t ldz, const T* h, T* hn,
                         T* c, T* staged) {
  const ForwardArgs<T>& a = call.a;
  const int64_t B = a.d.B, H = a.d.H, R = residual_width(a.kind, H), blocks = R / H;
  const int64_t n = u.n, zs = u.pad;
  for (int64_t row = 0; row < B; ++row) {
    const int64_t tr = t * B + row;
    T* y = a.ys + tr * H + u.lo;
    // What the backward pass reads is staged in L1 and streamed out with
    // non-temporal stores: no read of the fresh lines it overwrites.
    T* res = Save ? staged : nullptr;
    T* cs = Save && a.cs ? staged + blocks * zs : nullptr;
    T* hr = hn + row * H + u.lo;
    T* cr = c + row * u.pad;
    const T* zr = z + row * ldz;
    const T* hpr = hp + row * ldz;
    std::copy(h + row * H + u.lo, h + row * H + u.hi, hr);
    if (!is_valid(a.valid, t, B, row)) {  // held carry, zero output
      std::fill(y, y + n, T(0));
      if (res) std::fill(res, res + blocks * zs, T(0));  // never read, but never NaN
      if (cs) std::copy(cr, cr + n, cs);
    } else {
      switch (a.kind) {
        case kRnnTanh: case kRnnRelu:
          rnn_forward<Save>(n, a.kind == kRnnRelu, zr, hr, res);
          break;
        case kLstm:
          lstm_forward<Save>(n, zr, zs, cr, hr, res, zs, cs);
          break;
        case kCifg:
          cifg_forward<Save>(n, zr, zs, cr, hr, res, zs, cs);
          break;
        case kPeephole:
          peephole_forward<Save>(n, zr, zs, a.extra + u.lo, H, cr, hr, res, zs, cs);
          break;
        case kGruAfter:
          gru_forward<Save, true>(n, zr, zs, hpr, zs, a.extra + u.lo, hr, res, zs);
          break;
        case kGruBefore:  // no b_hn here: it is folded into b
          gru_forward<Save, false, T>(n, zr, zs, hpr, zs, nullptr, hr, res, zs);
          break;
      }
      std::copy(hr, hr + n, y);
    }
    if (Save) {
      for (int64_t g = 0; g < blocks; ++g)
        call.stream(a.res + tr * R + g * H + u.lo, res + g * zs, n);
      if (cs) call.stream(a.cs + tr * H + u.lo, cs, n);
    }
  }
}

inline void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_sfence();
#endif
}

template <bool Save, typename T, int NV>
JAXRNN_INLINE void forward(ForwardCall<T>& call, int w) {
  constexpr int NR = 2 * NV;
  const ForwardArgs<T>& a = call.a;
  const int64_t Tn = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H;
  const int64_t G = num_gates(a.kind), GH = G * H;
  const bool gru = a.kind == kGruAfter || a.kind == kGruBefore;
  const bool timed = w == 0;
  const Units u = units<NR>(H, call.P, w);
  const int64_t Kp = I + H, ldz = G * u.pad, block = u.panels * Kp * NR;
  Workspace& ws = Workspace::for_this_thread();
  T* packed = ws.get<T>(0, G * block);
  T* z = ws.get<T>(1, B * ldz);
  T* hp = ws.get<T>(2, gru ? B * ldz : 0);
  T* c = ws.get<T>(3, B * u.pad);
  T* bias = ws.get<T>(4, ldz);
  T* staged = ws.get<T>(5, Save ? 5 * u.pad : 0);
  {
    PhaseTimer timer(kPack, timed);
    for (int64_t g = 0; g < G; ++g) {
      pack<NR>(I, u.n, a.w_i + g * H + u.lo, GH, 1, packed + g * block, Kp, 0);
      pack<NR>(H, u.n, a.w_h + g * H + u.lo, GH, 1, packed + g * block, Kp, I);
      for (int64_t j = 0; j < u.pad; ++j)
        bias[g * u.pad + j] = j < u.n ? a.b[g * H + u.lo + j] : T(0);
    }
    for (int64_t row = 0; row < B; ++row) {
      std::copy(a.h0 + row * H + u.lo, a.h0 + row * H + u.hi, call.h[0] + row * H + u.lo);
      if (has_cell_state(a.kind))
        std::copy(a.c0 + row * H + u.lo, a.c0 + row * H + u.hi, c + row * u.pad);
    }
  }
  const Operand<T> none{nullptr, 0, 0, 0};
  int cur = 0;
  for (int64_t s = 0; s < Tn; ++s) {
    {
      PhaseTimer timer(kBarrier, timed);
      call.barrier.wait();  // h_{t-1} is complete
    }
    const int64_t t = time_index(s, Tn, a.reverse);
    const T* h = call.h[cur];
    T* hn = call.h[cur ^ 1];
    const Operand<T> x{a.xs + t * B * I, I, 0, I}, hh{h, H, I, H};
    {
      PhaseTimer timer(kRecurrent, timed);
      if (!gru) {
        packed_product<T, NV>(B, G * u.panels, packed, Kp, x, hh, bias, 0, z, ldz);
      } else {  // input and recurrent products apart; r h needs r first
        packed_product<T, NV>(B, G * u.panels, packed, Kp, x, none, bias, 0, z, ldz);
        packed_product<T, NV>(B, (a.kind == kGruAfter ? 3 : 2) * u.panels, packed, Kp,
                              hh, none, nullptr, 0, hp, ldz);
      }
    }
    if (gru) {
      PhaseTimer timer(kGateMath, timed);
      for (int64_t row = 0; row < B; ++row) {
        gru_gates(2 * u.pad, z + row * ldz, hp + row * ldz);  // r, u
        if (a.kind == kGruBefore)
          multiply(u.n, hp + row * ldz, h + row * H + u.lo, call.rh + row * H + u.lo);
      }
    }
    if (a.kind == kGruBefore) {
      {
        PhaseTimer timer(kBarrier, timed);
        call.barrier.wait();  // r h is complete
      }
      PhaseTimer timer(kRecurrent, timed);
      packed_product<T, NV>(B, u.panels, packed + 2 * block, Kp, {call.rh, H, I, H},
                            none, nullptr, 0, hp + 2 * u.pad, ldz);
    }
    PhaseTimer timer(kGateMath, timed);
    gates<Save>(call, u, t, z, hp, ldz, h, hn, c, staged);
    cur ^= 1;
  }
  if (Save) stream_fence();
  for (int64_t row = 0; row < B; ++row) {
    const T* h = call.h[cur] + row * H;
    std::copy(h + u.lo, h + u.hi, a.h_out + row * H + u.lo);
    if (a.c_out) std::copy(c + row * u.pad, c + row * u.pad + u.n, a.c_out + row * H + u.lo);
  }
  if (w != 0) ws.release();  // the caller's shared slots outlive its body
}

template <typename T, int NV>
JAXRNN_INLINE void forward(ForwardCall<T>& call, int w) {
  if (call.a.res != nullptr) forward<true, T, NV>(call, w);
  else forward<false, T, NV>(call, w);
}

template <typename T, int NV>
JAXRNN_INLINE void backward(BackwardCall<T>& call, int w) {
  constexpr int NR = 2 * NV;
  const BackwardArgs<T>& a = call.a;
  const int64_t Tn = a.d.T, B = a.d.B, H = a.d.H;
  const int64_t G = num_gates(a.kind), GH = G * H, R = residual_width(a.kind, H);
  const bool cell_state = has_cell_state(a.kind);
  const bool after = a.kind == kGruAfter, before = a.kind == kGruBefore;
  const bool timed = w == 0;
  const Units u = units<NR>(H, call.P, w);
  const int64_t n = u.n, pad = u.pad;
  Workspace& ws = Workspace::for_this_thread();
  T* packed = ws.get<T>(0, u.panels * GH * NR);  // rows of W_h^T
  T* dh = ws.get<T>(1, B * pad);
  T* dc = ws.get<T>(2, B * pad);
  T* drh = ws.get<T>(3, before ? B * pad : 0);
  BiasSums& sums = call.sums;
  {
    PhaseTimer timer(kPack, timed);
    pack<NR>(GH, n, a.w_h + u.lo * GH, 1, GH, packed, GH, 0);
    std::fill(dh, dh + B * pad, T(0));
    std::fill(dc, dc + B * pad, T(0));
    for (int64_t row = 0; row < B; ++row) {
      std::copy(a.dh_in + row * H + u.lo, a.dh_in + row * H + u.hi, dh + row * pad);
      if (cell_state)
        std::copy(a.dc_in + row * H + u.lo, a.dc_in + row * H + u.hi, dc + row * pad);
    }
  }
  {
    PhaseTimer timer(kCarries, timed);
    carries_before(a, call.hprev, u.lo, u.hi);
  }
  const Operand<T> none{nullptr, 0, 0, 0};
  for (int64_t s = Tn - 1; s >= 0; --s) {
    const int64_t t = time_index(s, Tn, a.reverse);
    const int64_t t_prev = s > 0 ? time_index(s - 1, Tn, a.reverse) : -1;
    T* dzt = call.dz + t * B * GH;
    {
      PhaseTimer timer(kGateMath, timed);
      for (int64_t row = 0; row < B; ++row) {
        const int64_t tr = t * B + row;
        T* dzr = dzt + row * GH + u.lo;
        T* dxr = after ? call.dxn + tr * H + u.lo : nullptr;
        if (!is_valid(a.valid, t, B, row)) {  // carry held: cotangents pass
          for (int64_t g = 0; g < G; ++g) std::fill(dzr + g * H, dzr + g * H + n, T(0));
          if (dxr) std::fill(dxr, dxr + n, T(0));
          continue;
        }
        T* dhr = dh + row * pad;
        T* dcr = dc + row * pad;
        const T* dy = a.dys + tr * H + u.lo;
        const T* rs = a.res + tr * R + u.lo;
        const T* hp = call.hprev + tr * H + u.lo;
        const T* cn = cell_state ? a.cs + tr * H + u.lo : nullptr;
        const T* cp = !cell_state ? nullptr
                      : t_prev < 0 ? a.c0 + row * H + u.lo
                      : a.cs + (t_prev * B + row) * H + u.lo;
        switch (a.kind) {
          case kRnnTanh: case kRnnRelu:
            rnn_backward(n, a.kind == kRnnRelu, rs, dy, dhr, dzr);
            break;
          case kLstm:
            lstm_backward(n, rs, H, cn, cp, dy, dhr, dcr, dzr, H);
            break;
          case kCifg:
            cifg_backward(n, rs, H, cn, cp, dy, dhr, dcr, dzr, H);
            break;
          case kPeephole:
            peephole_backward(n, rs, H, cn, cp, a.extra + u.lo, H, dy, dhr, dcr, dzr, H,
                              sums.dp.data() + u.lo);
            break;
          case kGruAfter:
            gru_backward<true>(n, rs, H, hp, dy, dhr, dzr, H, dxr);
            break;
          case kGruBefore:
            gru_backward<false>(n, rs, H, hp, dy, dhr, dzr, H, dxr);
            break;
        }
      }
    }
    {
      PhaseTimer timer(kBarrier, timed);
      call.barrier.wait();  // dz_t is complete
    }
    if (before) {  // d(r h) = dn' W_hn^T, then r's gate and the path through r h
      {
        PhaseTimer timer(kRecurrent, timed);
        packed_product<T, NV>(B, u.panels, packed, GH, {dzt + 2 * H, GH, 2 * H, H}, none,
                              nullptr, 0, drh, pad);
        for (int64_t row = 0; row < B; ++row) {
          if (!is_valid(a.valid, t, B, row)) continue;
          const int64_t tr = t * B + row;
          gru_before_reset_backward(n, a.res + tr * R + u.lo, call.hprev + tr * H + u.lo,
                                    drh + row * pad, dzt + row * GH + u.lo, dh + row * pad);
        }
      }
      PhaseTimer timer(kBarrier, timed);
      call.barrier.wait();  // dz_r is complete
    }
    {
      PhaseTimer timer(kRecurrent, timed);
      packed_product<T, NV>(B, u.panels, packed, GH, {dzt, GH, 0, before ? 2 * H : GH},
                            none, dh, pad, dh, pad);
    }
    PhaseTimer timer(kGateMath, timed);  // the bias sums of this worker's units
    for (int64_t row = 0; row < B; ++row) {
      for (int64_t g = 0; g < G; ++g)
        accumulate(n, dzt + row * GH + g * H + u.lo, sums.db.data() + g * H + u.lo);
      if (after) accumulate(n, call.dxn + (t * B + row) * H + u.lo, sums.db_xn.data() + u.lo);
    }
  }
  for (int64_t row = 0; row < B; ++row) {
    std::copy(dh + row * pad, dh + row * pad + n, a.dh0 + row * H + u.lo);
    if (cell_state) std::copy(dc + row * pad, dc + row * pad + n, a.dc0 + row * H + u.lo);
  }
  {
    PhaseTimer timer(kBarrier, timed);
    call.barrier.wait();  // dz and H_prev are complete
  }
  weights<T, NV>(call, w, timed);
  if (w != 0) ws.release();
}

}  // namespace persistent
}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_PERSISTENT_H_
