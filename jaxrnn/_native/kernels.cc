// Fused recurrent layers for XLA:CPU behind the XLA FFI: one forward and one
// backward handler serve every cell kind of common.h.
//
// Forward: the input projection of a chunk of steps is one GEMM; each step
// adds h_{t-1} W_h with one GEMM (two for the reset-before GRU) and applies
// the gate math (cells.h). Backward (cuDNN's scheme): the loop carries only
// the recurrent cotangent, one GEMM per step (dh_{t-1} = dz_t W_h^T); the
// weight gradients and dX are single GEMMs after the loop over all T*B rows.
// rows.h implements both passes; columns.h a forward pass for large batches.
//
// Arguments: time-major, xs (T, B, I); fused weights w_i (I, G*H), w_h
// (H, G*H); b (G*H) is the input-side bias with every foldable recurrent bias
// added in; valid (T, B) uint8, or empty when every step is valid. On an
// invalid step the carry is held and y is 0, exactly as the XLA engine does.
// The saved activations and cell states are opaque to the caller.
#include <cstdint>
#include <string>

#include "columns.h"
#include "common.h"
#include "rows.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jaxrnn {

FortranGemm<float>* sgemm_ptr = nullptr;
FortranGemm<double>* dgemm_ptr = nullptr;

Profile& profile() {
  static Profile p;
  return p;
}

namespace {

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

// A forward pass that saves nothing (inference) runs batch-minor
// (columns.h) from this batch size up; every other pass runs batch-major
// (rows.h). Measured interleaved (B=32 T=256 I=128 H=256): the batch-minor
// forward took 0.65x (LSTM) and 0.73x (GRU) the batch-major one; at B=1 it
// took 2x. For training it lost: saving its activations in the backward
// pass's layout made forward+backward 1.10x (LSTM) and 1.17x (GRU) slower.
constexpr int64_t kColumnsMinBatch = 16;

template <typename T>
JAXRNN_INLINE void forward_any(const ForwardArgs<T>& a) {
  const bool save = a.res != nullptr, masked = a.valid != nullptr;
  if (save) {
    rows::forward<true>(a);
  } else if (a.d.B < kColumnsMinBatch) {
    rows::forward<false>(a);
  } else {
    masked ? columns::forward<true>(a) : columns::forward<false>(a);
  }
}

JAXRNN_MULTIVERSION void forward_f32(const ForwardArgs<float>& a) { forward_any(a); }
JAXRNN_MULTIVERSION void forward_f64(const ForwardArgs<double>& a) { forward_any(a); }
JAXRNN_MULTIVERSION void backward_f32(const BackwardArgs<float>& a) { rows::backward(a); }
JAXRNN_MULTIVERSION void backward_f64(const BackwardArgs<double>& a) { rows::backward(a); }

// -------------------------------------------------------------- FFI glue

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
                       int64_t reverse) {
  Dims d;
  if (ffi::Error e = check(kind, xs, w_h, &d); e.failure()) return e;
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
    int64_t reverse) {
  Dims d;
  if (ffi::Error e = check(kind, xs, w_h, &d); e.failure()) return e;
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
                           .Attr<int64_t>("reverse"));

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
                           .Attr<int64_t>("reverse"));

}  // namespace jaxrnn
