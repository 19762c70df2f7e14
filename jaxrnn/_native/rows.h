// The batch-major layout: states (B, H), pre-activations (B, G*H), saved
// activations (T, B, R), saved cell states (T, B, H); the cells' math runs
// along a batch row (n = H). Best for small batches, where a batch-minor
// loop would be B elements long (measured at B=1: twice as fast as
// columns.h).
#ifndef JAXRNN_NATIVE_ROWS_H_
#define JAXRNN_NATIVE_ROWS_H_

#include <optional>

#include "common.h"

namespace jaxrnn {
namespace rows {

// The gate math of step t for every row, given z = b + x W_i + h W_h
// (B, G*H) and, for the GRU, the recurrent products hp (B, G*H).
template <bool Save, typename T>
JAXRNN_INLINE void step(const ForwardArgs<T>& a, int64_t t, const T* z,
                        const T* hp, T* h, T* c) {
  const int64_t B = a.d.B, H = a.d.H, GH = num_gates(a.kind) * H;
  const int64_t R = residual_width(a.kind, H);
  for (int64_t row = 0; row < B; ++row) {
    const int64_t tr = t * B + row;
    T* y = a.ys + tr * H;
    T* res = Save ? a.res + tr * R : nullptr;
    T* cs = Save && a.cs ? a.cs + tr * H : nullptr;
    T* hr = h + row * H;
    T* cr = c + row * H;
    const T* zr = z + row * GH;
    const T* hpr = hp + row * GH;
    if (!is_valid(a.valid, t, B, row)) {  // held carry, zero output
      std::fill(y, y + H, T(0));
      if (res) std::fill(res, res + R, T(0));  // never read, but never NaN
      if (cs) std::copy(cr, cr + H, cs);
      continue;
    }
    switch (a.kind) {
      case kRnnTanh: case kRnnRelu:
        rnn_forward<Save, false>(H, a.kind == kRnnRelu, zr, (const T*)nullptr, hr, res);
        break;
      case kLstm:
        lstm_forward<Save, false>(H, zr, H, (const T*)nullptr, cr, hr, res, H, cs);
        break;
      case kCifg:
        cifg_forward<Save, false>(H, zr, H, (const T*)nullptr, cr, hr, res, H, cs);
        break;
      case kPeephole:
        peephole_forward<Save, false, 1>(H, zr, H, a.extra, H, (const T*)nullptr, cr,
                                         hr, res, H, cs);
        break;
      case kGruAfter:
        gru_forward<Save, false, true, 1>(H, zr, H, hpr, H, a.extra,
                                          (const T*)nullptr, hr, res, H);
        break;
      case kGruBefore:
        gru_forward<Save, false, false, 1>(H, zr, H, hpr, H, a.extra,
                                           (const T*)nullptr, hr, res, H);
        break;
    }
    std::copy(hr, hr + H, y);
  }
}

// The GRU's recurrent products into hp (B, 3H): r and u activated, and
// h W_hn (reset after) or (r h) W_hn (reset before) in the n block.
template <typename T>
JAXRNN_INLINE void gru_recurrent(const ForwardArgs<T>& a, const T* z, const T* h,
                                 T* hp, T* rh) {
  const int64_t B = a.d.B, H = a.d.H, GH = 3 * H;
  const bool after = a.kind == kGruAfter;
  gemm<T>(false, false, B, after ? GH : 2 * H, H, T(1), h, H, a.w_h, GH, T(0),
          hp, GH);
  for (int64_t row = 0; row < B; ++row) {
    gru_gates(2 * H, z + row * GH, hp + row * GH);
    if (!after) multiply(H, hp + row * GH, h + row * H, rh + row * H);
  }
  if (!after)
    gemm<T>(false, false, B, H, H, T(1), rh, H, a.w_h + 2 * H, GH, T(0),
            hp + 2 * H, GH);
}

template <bool Save, typename T>
JAXRNN_INLINE void forward(const ForwardArgs<T>& a) {
  const int64_t Tn = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H;
  const int64_t GH = num_gates(a.kind) * H;
  const bool gru = a.kind == kGruAfter || a.kind == kGruBefore;
  Workspace& ws = Workspace::for_this_thread();
  T* h = ws.get<T>(0, B * H);
  T* c = ws.get<T>(1, B * H);
  std::copy(a.h0, a.h0 + B * H, h);
  if (has_cell_state(a.kind)) std::copy(a.c0, a.c0 + B * H, c);
  T* hp = ws.get<T>(2, gru ? B * GH : 0);
  T* rh = ws.get<T>(3, a.kind == kGruBefore ? B * H : 0);
  const int64_t K = chunk_steps(Tn, B, GH, sizeof(T));
  T* xp = ws.get<T>(4, K * B * GH);
  for (int64_t s0 = 0; s0 < Tn; s0 += K) {
    const int64_t k = std::min(K, Tn - s0);
    const int64_t t_lo = a.reverse ? Tn - s0 - k : s0;
    {
      PhaseTimer timer(kProjection);
      for (int64_t r = 0; r < k * B; ++r) std::copy(a.b, a.b + GH, xp + r * GH);
      gemm<T>(false, false, k * B, GH, I, T(1), a.xs + t_lo * B * I, I, a.w_i, GH,
              T(1), xp, GH);
    }
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = time_index(s0 + j, Tn, a.reverse);
      T* z = xp + (t - t_lo) * B * GH;
      {
        PhaseTimer timer(kRecurrent);  // GRU: with its r, u gate math
        if (gru) {
          gru_recurrent(a, z, h, hp, rh);
        } else {
          gemm<T>(false, false, B, GH, H, T(1), h, H, a.w_h, GH, T(1), z, GH);
        }
      }
      PhaseTimer timer(kGateMath);
      step<Save>(a, t, z, hp, h, c);
    }
  }
  std::copy(h, h + B * H, a.h_out);
  if (a.c_out) std::copy(c, c + B * H, a.c_out);
  ws.release();
}

template <typename T>
JAXRNN_INLINE void backward(const BackwardArgs<T>& a) {
  const int64_t Tn = a.d.T, B = a.d.B, H = a.d.H;
  const int64_t GH = num_gates(a.kind) * H, R = residual_width(a.kind, H);
  const int64_t TB = Tn * B;
  const bool cell_state = has_cell_state(a.kind);
  const bool after = a.kind == kGruAfter;
  Workspace& ws = Workspace::for_this_thread();
  T* hprev = ws.get<T>(0, TB * H);
  {
    PhaseTimer timer(kCarries);
    carries_before(a, hprev);
  }
  // W_h^T packed once: the per-step GEMM dz W_h^T ran at 300 us against
  // 190 us with it (B=32, H=256, OpenBLAS).
  T* w_ht = ws.get<T>(1, H * GH);
  transpose(H, GH, a.w_h, GH, w_ht, H);
  // dz (T*B, G*H): each step's pre-activation cotangents, h side; for the
  // reset-after GRU the input side's n block goes to dxn (T*B, H).
  T* dz = ws.get<T>(2, TB * GH);
  T* dxn = ws.get<T>(3, after ? TB * H : 0);
  T* dh = ws.get<T>(4, B * H);
  T* dc = ws.get<T>(5, B * H);
  T* drh = ws.get<T>(6, a.kind == kGruBefore ? B * H : 0);
  std::copy(a.dh_in, a.dh_in + B * H, dh);
  if (cell_state) std::copy(a.dc_in, a.dc_in + B * H, dc);
  BiasSums sums(a.kind, H);
  const T* none = nullptr;

  for (int64_t s = Tn - 1; s >= 0; --s) {
    const int64_t t = time_index(s, Tn, a.reverse);
    const int64_t t_prev = s > 0 ? time_index(s - 1, Tn, a.reverse) : -1;
    T* dzt = dz + t * B * GH;
    std::optional<PhaseTimer> timer(kGateMath);
    for (int64_t row = 0; row < B; ++row) {
      const int64_t tr = t * B + row;
      T* dzr = dzt + row * GH;
      T* dxr = after ? dxn + tr * H : nullptr;
      if (!is_valid(a.valid, t, B, row)) {  // carry held: cotangents pass
        std::fill(dzr, dzr + GH, T(0));
        if (dxr) std::fill(dxr, dxr + H, T(0));
        continue;
      }
      T* dhr = dh + row * H;
      T* dcr = dc + row * H;
      const T* dy = a.dys + tr * H;
      const T* rs = a.res + tr * R;
      const T* cn = cell_state ? a.cs + tr * H : nullptr;
      const T* cp = !cell_state ? nullptr
                    : t_prev < 0 ? a.c0 + row * H
                    : a.cs + (t_prev * B + row) * H;
      switch (a.kind) {
        case kRnnTanh: case kRnnRelu:
          rnn_backward<false>(H, a.kind == kRnnRelu, rs, dy, none, dhr, dzr);
          break;
        case kLstm:
          lstm_backward<false>(H, rs, H, cn, cp, dy, none, dhr, dcr, dzr, H);
          break;
        case kCifg:
          cifg_backward<false>(H, rs, H, cn, cp, dy, none, dhr, dcr, dzr, H);
          break;
        case kPeephole:
          peephole_backward<false, 1>(H, rs, H, cn, cp, a.extra, H, dy, none, dhr,
                                      dcr, dzr, H, sums.dp.data());
          break;
        case kGruAfter:
          gru_backward<false, true>(H, rs, H, hprev + tr * H, dy, none, dhr, dzr, H,
                                    dxr);
          break;
        case kGruBefore:
          gru_backward<false, false>(H, rs, H, hprev + tr * H, dy, none, dhr, dzr, H,
                                     dxr);
          break;
      }
    }
    timer.emplace(kRecurrent);  // the reset-before GRU: with r's math
    if (a.kind == kGruBefore) {
      // d(r h) = dn' W_hn^T, then r's gate and the direct path through r h.
      gemm<T>(false, false, B, H, H, T(1), dzt + 2 * H, GH, w_ht + 2 * H * H, H,
              T(0), drh, H);
      for (int64_t row = 0; row < B; ++row) {
        if (!is_valid(a.valid, t, B, row)) continue;
        const int64_t tr = t * B + row;
        gru_before_reset_backward(H, a.res + tr * R, hprev + tr * H, drh + row * H,
                                  dzt + row * GH, dh + row * H);
      }
      gemm<T>(false, false, B, H, 2 * H, T(1), dzt, GH, w_ht, H, T(1), dh, H);
    } else {
      gemm<T>(false, false, B, H, GH, T(1), dzt, GH, w_ht, H, T(1), dh, H);
    }
    timer.emplace(kGateMath);  // the bias sums, once dz_t is complete
    for (int64_t row = 0; row < B; ++row) {
      accumulate(GH, dzt + row * GH, sums.db.data());
      if (after) accumulate(H, dxn + (t * B + row) * H, sums.db_xn.data());
    }
  }
  std::copy(dh, dh + B * H, a.dh0);
  if (cell_state) std::copy(dc, dc + B * H, a.dc0);
  backward_weights(a, sums, hprev, dz, dxn);
  ws.release();
}

}  // namespace rows
}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_ROWS_H_
