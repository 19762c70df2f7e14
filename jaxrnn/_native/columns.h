// The forward pass in the batch-minor layout: states (H, B), pre-activations
// (G*H, B); the cells' math runs along a unit's batch rows (n = B). The BLAS
// computes the recurrent products faster in this orientation (W_h^T h^T,
// scipy's OpenBLAS, B=32 H=256: about 125 us per step against 150-230 us for
// h W_h), so it serves large batches (see kColumnsMinBatch in kernels.cc).
// What it saves for the backward pass is transposed back to the batch-major
// layout of rows.h, whose backward pass measured faster at every batch size
// (LSTM B=32: 221 ms against 235 ms).
#ifndef JAXRNN_NATIVE_COLUMNS_H_
#define JAXRNN_NATIVE_COLUMNS_H_

#include "common.h"

namespace jaxrnn {
namespace columns {

// The step's validity of each row as 0/1 in T, for the cells' selects.
template <typename T>
JAXRNN_INLINE void row_mask(const uint8_t* valid, int64_t t, int64_t B, T* m) {
  for (int64_t b = 0; b < B; ++b) m[b] = valid[t * B + b] ? T(1) : T(0);
}

// The gate math of one step, unit by unit. z: (G*H, B) with row stride ldz;
// hp: (G*H, B) recurrent products (GRU); hT, cT: (H, B) states; m: masks.
template <bool Masked, typename T>
JAXRNN_INLINE void step(const ForwardArgs<T>& a, const T* z, int64_t ldz,
                        const T* hp, const T* m, T* hT, T* cT) {
  const int64_t B = a.d.B, H = a.d.H;
  const int64_t zs = H * ldz, hs = H * B;
  T* no_res = nullptr;  // nothing saved
  T* no_cs = nullptr;
  for (int64_t j = 0; j < H; ++j) {
    const T* zj = z + j * ldz;
    T* h = hT + j * B;
    T* c = cT + j * B;
    switch (a.kind) {
      case kRnnTanh: case kRnnRelu:
        rnn_forward<false, Masked>(B, a.kind == kRnnRelu, zj, m, h, no_res);
        break;
      case kLstm:
        lstm_forward<false, Masked>(B, zj, zs, m, c, h, no_res, 0, no_cs);
        break;
      case kCifg:
        cifg_forward<false, Masked>(B, zj, zs, m, c, h, no_res, 0, no_cs);
        break;
      case kPeephole:
        peephole_forward<false, Masked, 0>(B, zj, zs, a.extra + j, H, m, c, h,
                                           no_res, 0, no_cs);
        break;
      case kGruAfter:
        gru_forward<false, Masked, true, 0>(B, zj, zs, hp + j * B, hs, a.extra + j,
                                            m, h, no_res, 0);
        break;
      case kGruBefore:
        gru_forward<false, Masked, false, 0>(B, zj, zs, hp + j * B, hs, a.extra,
                                             m, h, no_res, 0);
        break;
    }
  }
}

// The GRU's recurrent products into hp (3H, B): r and u activated, and
// h W_hn (reset after) or (r h) W_hn (reset before) in the n block.
template <typename T>
JAXRNN_INLINE void gru_recurrent(const ForwardArgs<T>& a, const T* z, int64_t ldz,
                                 const T* w_ht, const T* hT, T* hp, T* rhT) {
  const int64_t B = a.d.B, H = a.d.H;
  const bool after = a.kind == kGruAfter;
  gemm<T>(false, false, after ? 3 * H : 2 * H, B, H, T(1), w_ht, H, hT, B, T(0),
          hp, B);
  for (int64_t j = 0; j < 2 * H; ++j) gru_gates(B, z + j * ldz, hp + j * B);
  if (!after) {
    multiply(H * B, hp, hT, rhT);
    gemm<T>(false, false, H, B, H, T(1), w_ht + 2 * H * H, H, rhT, B, T(0),
            hp + 2 * H * B, B);
  }
}

template <bool Masked, typename T>
JAXRNN_INLINE void forward(const ForwardArgs<T>& a) {
  const int64_t Tn = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H;
  const int64_t GH = num_gates(a.kind) * H;
  const bool gru = a.kind == kGruAfter || a.kind == kGruBefore;
  Workspace& ws = Workspace::for_this_thread();
  T* hT = ws.get<T>(0, H * B);
  T* cT = ws.get<T>(1, H * B);
  T* hp = ws.get<T>(2, gru ? GH * B : 0);
  T* rhT = ws.get<T>(3, a.kind == kGruBefore ? H * B : 0);
  T* w_it = ws.get<T>(4, GH * I);
  T* w_ht = ws.get<T>(5, GH * H);
  T* m = ws.get<T>(6, B);
  const int64_t K = chunk_steps(Tn, B, GH, sizeof(T));
  T* zc = ws.get<T>(7, GH * K * B);
  transpose(I, GH, a.w_i, GH, w_it, I);
  transpose(H, GH, a.w_h, GH, w_ht, H);
  transpose(B, H, a.h0, H, hT, B);
  if (has_cell_state(a.kind)) transpose(B, H, a.c0, H, cT, B);
  for (int64_t s0 = 0; s0 < Tn; s0 += K) {
    const int64_t k = std::min(K, Tn - s0);
    const int64_t t_lo = a.reverse ? Tn - s0 - k : s0;
    const int64_t ldz = k * B;
    {  // zc (G*H, k*B) = b + W_i^T xs^T over the chunk's steps
      PhaseTimer timer(kProjection);
      for (int64_t g = 0; g < GH; ++g) std::fill(zc + g * ldz, zc + (g + 1) * ldz, a.b[g]);
      gemm<T>(false, true, GH, k * B, I, T(1), w_it, I, a.xs + t_lo * B * I, I, T(1),
              zc, ldz);
    }
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = time_index(s0 + j, Tn, a.reverse);
      T* z = zc + (t - t_lo) * B;
      if (Masked) row_mask(a.valid, t, B, m);
      {
        PhaseTimer timer(kRecurrent);  // GRU: with its r, u gate math
        if (gru) {
          gru_recurrent(a, z, ldz, w_ht, hT, hp, rhT);
        } else {
          gemm<T>(false, false, GH, B, H, T(1), w_ht, H, hT, B, T(1), z, ldz);
        }
      }
      PhaseTimer timer(kGateMath);  // with the copy to ys
      step<Masked>(a, z, ldz, hp, m, hT, cT);
      T* y = a.ys + t * B * H;
      transpose(H, B, hT, B, y, H);
      if (Masked)
        for (int64_t b = 0; b < B; ++b)
          if (m[b] == T(0)) std::fill(y + b * H, y + (b + 1) * H, T(0));
    }
  }
  transpose(H, B, hT, B, a.h_out, H);
  if (a.c_out) transpose(H, B, cT, B, a.c_out, H);
  ws.release();
}

}  // namespace columns
}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_COLUMNS_H_
