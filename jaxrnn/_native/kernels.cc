// Fused recurrent layers for XLA:CPU behind the XLA FFI: one forward and one
// backward handler serve every cell kind below.
//
// Forward: the input projection of a chunk of steps is one GEMM; each step
// adds h_{t-1} W_h with one GEMM (two for the reset-before GRU) and applies
// the gate math row by row. Backward (cuDNN's scheme): the loop carries only
// the recurrent cotangent, one GEMM per step (dh_{t-1} = dz_t W_h^T); the
// weight gradients, the bias gradient and dX are single GEMMs after the loop
// over all T*B rows.
//
// Layout: time-major, xs (T, B, I); fused weights w_i (I, G*H), w_h (H, G*H);
// b (G*H) is the input-side bias with every foldable recurrent bias added in;
// valid (T, B) uint8, or empty when every step is valid. On an invalid step
// the carry is held and y is 0, exactly as the XLA engine does.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <cstring>
#include <string>
#include <vector>

#include "blas.h"
#include "cells.h"
#include "workspace.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jaxrnn {

FortranGemm<float>* sgemm_ptr = nullptr;
FortranGemm<double>* dgemm_ptr = nullptr;

namespace {

// Kept in sync with jaxrnn/_native/__init__.py (CELL_KINDS).
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

int64_t num_gates(int64_t kind) {
  switch (kind) {
    case kRnnTanh: case kRnnRelu: return 1;
    case kLstm: case kPeephole: return 4;
    default: return 3;
  }
}

bool has_cell_state(int64_t kind) {
  return kind == kLstm || kind == kCifg || kind == kPeephole;
}

// Width per (step, row) of the saved activations ("residuals").
int64_t residual_width(int64_t kind, int64_t H) {
  switch (kind) {
    case kRnnTanh: case kRnnRelu: return 0;  // h itself is ys
    case kGruAfter: return 4 * H;            // r, z, n, h W_hn + b_hn
    default: return num_gates(kind) * H;     // the activated gates
  }
}

struct Dims {
  int64_t T, B, I, H;
};

// The sequence as a list of time indices in the order the scan visits them.
inline int64_t time_index(int64_t step, int64_t T, bool reverse) {
  return reverse ? T - 1 - step : step;
}

inline bool is_valid(const uint8_t* valid, int64_t t, int64_t B, int64_t b) {
  return valid == nullptr || valid[t * B + b] != 0;
}

// ------------------------------------------------------------------ forward
template <typename T>
struct ForwardArgs {
  int64_t kind;
  bool reverse;
  Dims d;
  const T *xs, *w_i, *b, *w_h, *extra, *h0, *c0;
  const uint8_t* valid;
  T *ys, *h_out, *c_out, *res, *cs;  // res, cs: nullptr unless saved
};

// The gate math of step t for every row, given z = x W_i + h W_h (B, G*H)
// and, for the GRU, the recurrent products in hp (B, G*H).
template <bool Save, typename T>
JAXRNN_ROW void step_rows(const ForwardArgs<T>& a, int64_t t, const T* z, const T* hp,
               T* h, T* c) {
  const int64_t B = a.d.B, H = a.d.H, GH = num_gates(a.kind) * H;
  const int64_t R = residual_width(a.kind, H);
  for (int64_t row = 0; row < B; ++row) {
    const int64_t tr = t * B + row;
    T* y = a.ys + tr * H;
    T* res = Save && R ? a.res + tr * R : nullptr;
    T* cs = Save && a.cs ? a.cs + tr * H : nullptr;
    T* hr = h + row * H;
    T* cr = c + row * H;
    const T* zr = z + row * GH;
    if (!is_valid(a.valid, t, B, row)) {  // held carry, zero output
      std::fill(y, y + H, T(0));
      if (res) std::fill(res, res + R, T(0));  // never read, but never NaN
      if (cs) std::copy(cr, cr + H, cs);
      continue;
    }
    switch (a.kind) {
      case kRnnTanh: case kRnnRelu:
        rnn_forward(H, a.kind == kRnnRelu, zr, a.b, hr, y);
        break;
      case kLstm:
        lstm_forward<Save>(H, zr, a.b, cr, hr, y, res, cs);
        break;
      case kCifg:
        cifg_forward<Save>(H, zr, a.b, cr, hr, y, res, cs);
        break;
      case kPeephole:
        peephole_forward<Save>(H, zr, a.b, a.extra, cr, hr, y, res, cs);
        break;
      case kGruAfter:
        gru_forward<Save, true>(H, zr, a.b, hp + row * GH, hp + row * GH + 2 * H,
                                a.extra, hr, y, res);
        break;
      case kGruBefore:
        gru_forward<Save, false>(H, zr, a.b, hp + row * GH, hp + row * GH + 2 * H,
                                 a.extra, hr, y, res);
        break;
    }
  }
}

// The recurrent products of a GRU step into hp (B, 3H): r, u activated, and
// h W_hn (reset after) or (r h) W_hn (reset before) in the n block.
template <typename T>
JAXRNN_ROW void gru_recurrent(const ForwardArgs<T>& a, const T* z, const T* h, T* hp,
                   T* rh) {
  const int64_t B = a.d.B, H = a.d.H, GH = 3 * H;
  const bool after = a.kind == kGruAfter;
  gemm<T>(false, false, B, after ? GH : 2 * H, H, T(1), h, H, a.w_h, GH, T(0),
          hp, GH);
  for (int64_t row = 0; row < B; ++row) {
    gru_gates(2 * H, z + row * GH, a.b, hp + row * GH);
    if (!after) multiply(H, hp + row * GH, h + row * H, rh + row * H);
  }
  if (!after)
    gemm<T>(false, false, B, H, H, T(1), rh, H, a.w_h + 2 * H, GH, T(0),
            hp + 2 * H, GH);
}

// Steps per chunk of the input projection: about 1 MB of projected inputs,
// so a chunk is still in cache when its steps read it.
int64_t chunk_steps(int64_t T, int64_t B, int64_t GH, size_t elem) {
  const int64_t per_step = std::max<int64_t>(1, B * GH * static_cast<int64_t>(elem));
  return std::max<int64_t>(1, std::min<int64_t>(T, (int64_t{1} << 20) / per_step));
}

template <bool Save, typename T>
JAXRNN_ROW void forward(const ForwardArgs<T>& a) {
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
    gemm<T>(false, false, k * B, GH, I, T(1), a.xs + t_lo * B * I, I, a.w_i, GH,
            T(0), xp, GH);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = time_index(s0 + j, Tn, a.reverse);
      T* z = xp + (t - t_lo) * B * GH;
      if (gru) {
        gru_recurrent(a, z, h, hp, rh);
      } else {
        gemm<T>(false, false, B, GH, H, T(1), h, H, a.w_h, GH, T(1), z, GH);
      }
      step_rows<Save>(a, t, z, hp, h, c);
    }
  }
  std::copy(h, h + B * H, a.h_out);
  if (a.c_out) std::copy(c, c + B * H, a.c_out);
  ws.release();
}

// ----------------------------------------------------------------- backward
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

// The carry before each step, (T, B, H), from the saved outputs: on an
// invalid step the carry is held, so it is the output of the last valid step
// before it in scan order (or the initial carry). `after_is_held`: the saved
// sequence already holds the carry on invalid steps (cs does, ys does not).
template <typename T>
JAXRNN_ROW void carries_before(const BackwardArgs<T>& a, const T* init, const T* after_step,
                    bool after_is_held, T* out) {
  const int64_t Tn = a.d.T, B = a.d.B, H = a.d.H;
  for (int64_t row = 0; row < B; ++row) {
    const T* cur = init + row * H;
    for (int64_t s = 0; s < Tn; ++s) {
      const int64_t t = time_index(s, Tn, a.reverse);
      std::copy(cur, cur + H, out + (t * B + row) * H);
      if (after_is_held || is_valid(a.valid, t, B, row))
        cur = after_step + (t * B + row) * H;
    }
  }
}

// Sums of the bias cotangents, accumulated row by row in the loop (where the
// rows are in cache) in double, then rounded once.
template <typename T>
JAXRNN_ROW void accumulate(int64_t n, const T* __restrict row,
                           double* __restrict sum) {
  for (int64_t j = 0; j < n; ++j) sum[j] += row[j];
}

// W (H, N) row-major -> W^T (N, H) row-major: the per-step GEMM of the
// backward pass, dz W_h^T, ran at 300 us against 190 us with W_h^T packed
// once per call (B=32, H=256, OpenBLAS).
template <typename T>
void transpose(int64_t H, int64_t N, const T* w, T* wt) {
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < N; ++j) wt[j * H + i] = w[i * N + j];
}

template <typename T>
JAXRNN_ROW void backward(const BackwardArgs<T>& a) {
  const int64_t Tn = a.d.T, B = a.d.B, I = a.d.I, H = a.d.H;
  const int64_t GH = num_gates(a.kind) * H, R = residual_width(a.kind, H);
  const int64_t TB = Tn * B;
  const bool cell_state = has_cell_state(a.kind);
  const bool after = a.kind == kGruAfter;
  Workspace& ws = Workspace::for_this_thread();
  T* hprev = ws.get<T>(0, TB * H);
  T* cprev = ws.get<T>(1, cell_state ? TB * H : 0);
  carries_before(a, a.h0, a.ys, false, hprev);
  if (cell_state) carries_before(a, a.c0, a.cs, true, cprev);
  T* w_ht = ws.get<T>(2, H * GH);
  transpose(H, GH, a.w_h, w_ht);

  // dz: the cotangent of each step's pre-activations, h side (T, B, G*H).
  // For the reset-after GRU its n block is d(h W_hn + b_hn); the input side
  // (d(x W_in)) is kept apart in dxn and swapped in after the loop.
  T* dz = ws.get<T>(3, TB * GH);
  T* dxn = ws.get<T>(4, after ? TB * H : 0);
  T* dh = ws.get<T>(5, B * H);
  T* dc = ws.get<T>(6, B * H);
  std::copy(a.dh_in, a.dh_in + B * H, dh);
  if (cell_state) std::copy(a.dc_in, a.dc_in + B * H, dc);
  T* drh = ws.get<T>(7, a.kind == kGruBefore ? B * H : 0);
  std::vector<T> dp(a.kind == kPeephole ? 3 * H : 0, T(0));
  std::vector<double> db(GH, 0.0), db_xn(after ? H : 0, 0.0);

  for (int64_t s = Tn - 1; s >= 0; --s) {
    const int64_t t = time_index(s, Tn, a.reverse);
    T* dzt = dz + t * B * GH;
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
      const T* cp = cell_state ? cprev + tr * H : nullptr;
      const T* cn = cell_state ? a.cs + tr * H : nullptr;
      switch (a.kind) {
        case kRnnTanh: case kRnnRelu:
          rnn_backward(H, a.kind == kRnnRelu, a.ys + tr * H, dy, dhr, dzr);
          break;
        case kLstm:
          lstm_backward(H, rs, cn, cp, dy, dhr, dcr, dzr);
          break;
        case kCifg:
          cifg_backward(H, rs, cn, cp, dy, dhr, dcr, dzr);
          break;
        case kPeephole:
          peephole_backward(H, rs, cn, cp, a.extra, dy, dhr, dcr, dzr, dp.data());
          break;
        case kGruAfter:
          gru_backward<true>(H, rs, hprev + tr * H, dy, dhr, dzr, dxr);
          break;
        case kGruBefore:
          gru_backward<false>(H, rs, hprev + tr * H, dy, dhr, dzr, dxr);
          break;
      }
    }
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
    for (int64_t row = 0; row < B; ++row) {
      accumulate(GH, dzt + row * GH, db.data());
      if (after) accumulate(H, dxn + (t * B + row) * H, db_xn.data());
    }
  }
  std::copy(dh, dh + B * H, a.dh0);
  if (cell_state) std::copy(dc, dc + B * H, a.dc0);
  // Biases: the h-side n block of the reset-after GRU is b_hn's.
  for (int64_t j = 0; j < GH; ++j) a.db[j] = static_cast<T>(db[j]);
  if (after) {
    for (int64_t j = 0; j < H; ++j) {
      a.dextra[j] = static_cast<T>(db[2 * H + j]);
      a.db[2 * H + j] = static_cast<T>(db_xn[j]);
    }
  }
  if (a.kind == kPeephole) std::copy(dp.begin(), dp.end(), a.dextra);

  // Recurrent weights: dW_h = sum_t h_{t-1}^T dz_t, one GEMM over T*B rows.
  if (a.kind == kGruBefore) {
    gemm<T>(true, false, H, 2 * H, TB, T(1), hprev, H, dz, GH, T(0), a.dw_h, GH);
    for (int64_t tr = 0; tr < TB; ++tr)  // the n block's input is r h
      multiply(H, a.res + tr * R, hprev + tr * H, hprev + tr * H);
    gemm<T>(true, false, H, H, TB, T(1), hprev, H, dz + 2 * H, GH, T(0),
            a.dw_h + 2 * H, GH);
  } else {
    gemm<T>(true, false, H, GH, TB, T(1), hprev, H, dz, GH, T(0), a.dw_h, GH);
  }
  if (after)  // the input side's n block takes the h side's place
    for (int64_t tr = 0; tr < TB; ++tr)
      std::copy(dxn + tr * H, dxn + tr * H + H, dz + tr * GH + 2 * H);
  // Input side: dW_i = X^T dZ, dX = dZ W_i^T.
  gemm<T>(true, false, I, GH, TB, T(1), a.xs, I, dz, GH, T(0), a.dw_i, GH);
  gemm<T>(false, true, TB, I, GH, T(1), dz, GH, a.w_i, GH, T(0), a.dxs, I);
  ws.release();
}

// Each dtype's driver is compiled for several instruction sets and the best
// one the CPU has is picked at load time (GCC function multiversioning), so
// one build runs everywhere and uses AVX-512 where it exists.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    !defined(__clang__)
#define JAXRNN_MULTIVERSION \
  __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define JAXRNN_MULTIVERSION
#endif

JAXRNN_MULTIVERSION void forward_f32(const ForwardArgs<float>& a) {
  a.res || a.cs ? forward<true>(a) : forward<false>(a);
}
JAXRNN_MULTIVERSION void forward_f64(const ForwardArgs<double>& a) {
  a.res || a.cs ? forward<true>(a) : forward<false>(a);
}
JAXRNN_MULTIVERSION void backward_f32(const BackwardArgs<float>& a) { backward(a); }
JAXRNN_MULTIVERSION void backward_f64(const BackwardArgs<double>& a) { backward(a); }

// -------------------------------------------------------------- FFI glue

// While a kernel runs, XLA's intra-op workers have nothing to do and spin
// looking for work, on the cores the BLAS threads need (measured: the
// per-step GEMM ran at one thread's speed). Parking them, one blocking task
// per worker for the kernel's duration, turns that spinning into sleep.
class ParkedPool {
 public:
  explicit ParkedPool(ffi::ThreadPool& pool) : state_(std::make_shared<State>()) {
    for (int64_t i = 0; i < pool.num_threads(); ++i) {
      pool.Schedule([state = state_] {
        std::unique_lock<std::mutex> lock(state->mu);
        state->cv.wait(lock, [&] { return state->released; });
      });
    }
  }
  ~ParkedPool() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->released = true;
    }
    state_->cv.notify_all();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;
  };
  std::shared_ptr<State> state_;
};

template <typename T>
const T* in(const ffi::AnyBuffer& buf) {
  return buf.element_count() ? static_cast<const T*>(buf.untyped_data()) : nullptr;
}
template <typename T>
T* out(ffi::Result<ffi::AnyBuffer>& buf) {
  return buf->element_count() ? static_cast<T*>(buf->untyped_data()) : nullptr;
}

ffi::Error check(int64_t kind, const ffi::AnyBuffer& xs, const ffi::AnyBuffer& w_h,
                 Dims* d) {
  if (kind < 0 || kind >= kNumKinds)
    return ffi::Error::InvalidArgument("jaxrnn native: unknown cell kind " +
                                       std::to_string(kind));
  if (xs.element_type() != ffi::F32 && xs.element_type() != ffi::F64)
    return ffi::Error::InvalidArgument("jaxrnn native: float32 or float64 only");
  if (xs.element_type() == ffi::F32 ? !sgemm_ptr : !dgemm_ptr)
    return ffi::Error::Internal("jaxrnn native: no BLAS was set");
  auto x = xs.dimensions();
  auto w = w_h.dimensions();
  if (x.size() != 3 || w.size() != 2)
    return ffi::Error::InvalidArgument("jaxrnn native: xs must be (T, B, I)");
  *d = Dims{x[0], x[1], x[2], w[0]};
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::AnyBuffer xs, ffi::AnyBuffer w_i, ffi::AnyBuffer b,
                       ffi::AnyBuffer w_h, ffi::AnyBuffer extra, ffi::AnyBuffer h0,
                       ffi::AnyBuffer c0, ffi::AnyBuffer valid,
                       ffi::Result<ffi::AnyBuffer> ys,
                       ffi::Result<ffi::AnyBuffer> h_out,
                       ffi::Result<ffi::AnyBuffer> c_out,
                       ffi::Result<ffi::AnyBuffer> res,
                       ffi::Result<ffi::AnyBuffer> cs, int64_t kind,
                       int64_t reverse, ffi::ThreadPool pool) {
  Dims d;
  if (ffi::Error e = check(kind, xs, w_h, &d); e.failure()) return e;
  ParkedPool parked(pool);
  const uint8_t* v = in<uint8_t>(valid);
  if (xs.element_type() == ffi::F32) {
    forward_f32({kind, reverse != 0, d, in<float>(xs), in<float>(w_i), in<float>(b),
                 in<float>(w_h), in<float>(extra), in<float>(h0), in<float>(c0), v,
                 out<float>(ys), out<float>(h_out), out<float>(c_out),
                 out<float>(res), out<float>(cs)});
  } else {
    forward_f64({kind, reverse != 0, d, in<double>(xs), in<double>(w_i),
                 in<double>(b), in<double>(w_h), in<double>(extra), in<double>(h0),
                 in<double>(c0), v, out<double>(ys), out<double>(h_out),
                 out<double>(c_out), out<double>(res), out<double>(cs)});
  }
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(
    ffi::AnyBuffer xs, ffi::AnyBuffer w_i, ffi::AnyBuffer w_h, ffi::AnyBuffer extra,
    ffi::AnyBuffer h0, ffi::AnyBuffer c0, ffi::AnyBuffer valid, ffi::AnyBuffer ys,
    ffi::AnyBuffer res, ffi::AnyBuffer cs, ffi::AnyBuffer dys, ffi::AnyBuffer dh,
    ffi::AnyBuffer dc, ffi::Result<ffi::AnyBuffer> dxs,
    ffi::Result<ffi::AnyBuffer> dw_i, ffi::Result<ffi::AnyBuffer> db,
    ffi::Result<ffi::AnyBuffer> dw_h, ffi::Result<ffi::AnyBuffer> dextra,
    ffi::Result<ffi::AnyBuffer> dh0, ffi::Result<ffi::AnyBuffer> dc0, int64_t kind,
    int64_t reverse, ffi::ThreadPool pool) {
  Dims d;
  if (ffi::Error e = check(kind, xs, w_h, &d); e.failure()) return e;
  ParkedPool parked(pool);
  const uint8_t* v = in<uint8_t>(valid);
  if (xs.element_type() == ffi::F32) {
    using T = float;
    backward_f32({kind, reverse != 0, d, in<T>(xs), in<T>(w_i), in<T>(w_h),
                  in<T>(extra), in<T>(h0), in<T>(c0), v, in<T>(ys), in<T>(res),
                  in<T>(cs), in<T>(dys), in<T>(dh), in<T>(dc), out<T>(dxs),
                  out<T>(dw_i), out<T>(db), out<T>(dw_h), out<T>(dextra),
                  out<T>(dh0), out<T>(dc0)});
  } else {
    using T = double;
    backward_f64({kind, reverse != 0, d, in<T>(xs), in<T>(w_i), in<T>(w_h),
                  in<T>(extra), in<T>(h0), in<T>(c0), v, in<T>(ys), in<T>(res),
                  in<T>(cs), in<T>(dys), in<T>(dh), in<T>(dc), out<T>(dxs),
                  out<T>(dw_i), out<T>(db), out<T>(dw_h), out<T>(dextra),
                  out<T>(dh0), out<T>(dc0)});
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnForward, ForwardImpl,
                       ffi::Ffi::Bind()
                           .Arg<ffi::AnyBuffer>()  // xs
                           .Arg<ffi::AnyBuffer>()  // w_i
                           .Arg<ffi::AnyBuffer>()  // b
                           .Arg<ffi::AnyBuffer>()  // w_h
                           .Arg<ffi::AnyBuffer>()  // extra
                           .Arg<ffi::AnyBuffer>()  // h0
                           .Arg<ffi::AnyBuffer>()  // c0
                           .Arg<ffi::AnyBuffer>()  // valid
                           .Ret<ffi::AnyBuffer>()  // ys
                           .Ret<ffi::AnyBuffer>()  // h
                           .Ret<ffi::AnyBuffer>()  // c
                           .Ret<ffi::AnyBuffer>()  // res
                           .Ret<ffi::AnyBuffer>()  // cs
                           .Attr<int64_t>("kind")
                           .Attr<int64_t>("reverse")
                           .Ctx<ffi::ThreadPool>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxrnnBackward, BackwardImpl,
                       ffi::Ffi::Bind()
                           .Arg<ffi::AnyBuffer>()  // xs
                           .Arg<ffi::AnyBuffer>()  // w_i
                           .Arg<ffi::AnyBuffer>()  // w_h
                           .Arg<ffi::AnyBuffer>()  // extra
                           .Arg<ffi::AnyBuffer>()  // h0
                           .Arg<ffi::AnyBuffer>()  // c0
                           .Arg<ffi::AnyBuffer>()  // valid
                           .Arg<ffi::AnyBuffer>()  // ys
                           .Arg<ffi::AnyBuffer>()  // res
                           .Arg<ffi::AnyBuffer>()  // cs
                           .Arg<ffi::AnyBuffer>()  // dys
                           .Arg<ffi::AnyBuffer>()  // dh
                           .Arg<ffi::AnyBuffer>()  // dc
                           .Ret<ffi::AnyBuffer>()  // dxs
                           .Ret<ffi::AnyBuffer>()  // dw_i
                           .Ret<ffi::AnyBuffer>()  // db
                           .Ret<ffi::AnyBuffer>()  // dw_h
                           .Ret<ffi::AnyBuffer>()  // dextra
                           .Ret<ffi::AnyBuffer>()  // dh0
                           .Ret<ffi::AnyBuffer>()  // dc0
                           .Attr<int64_t>("kind")
                           .Attr<int64_t>("reverse")
                           .Ctx<ffi::ThreadPool>());

}  // namespace jaxrnn
