// Fused recurrent layers for XLA:CPU behind the XLA FFI: one forward and one
// backward handler serve every cell kind of common.h.
//
// Both passes are the persistent, weight-stationary kernels of persistent.h,
// run by the pool of pool.h: each worker owns a slice of the hidden units
// and keeps its packed weights for the whole call. The backward pass ends
// with the weight gradients and dX as single GEMMs over all T*B rows
// (common.h, BLAS).
//
// Arguments: time-major, xs (T, B, I); fused weights w_i (I, G*H), w_h
// (H, G*H); b (G*H) is the input-side bias with every foldable recurrent bias
// added in; valid (T, B) uint8, or empty when every step is valid. On an
// invalid step the carry is held and y is 0, exactly as the XLA engine does.
// The saved activations and cell states are opaque to the caller.
#include <algorithm>
#include <cstdint>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "common.h"
#include "persistent.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jaxrnn {

Profile& profile() {
  static Profile p;
  return p;
}

namespace {

// ----------------------------------------------------------- dispatch
// The workers' bodies, compiled once per instruction set with the vector
// width it has (elements of float, of double); the CPU's best is picked at
// run time. No -march flag: one build runs on every x86-64, and elsewhere
// on the baseline (128-bit vectors).
#define JAXRNN_BODIES(isa, attr, nv32, nv64)                                        \
  attr void forward_f32_##isa(void* c, int w) {                                    \
    persistent::forward<float, nv32>(*static_cast<persistent::ForwardCall<float>*>(c), w); \
  }                                                                                 \
  attr void forward_f64_##isa(void* c, int w) {                                    \
    persistent::forward<double, nv64>(*static_cast<persistent::ForwardCall<double>*>(c), w); \
  }                                                                                 \
  attr void backward_f32_##isa(void* c, int w) {                                   \
    persistent::backward<float, nv32>(*static_cast<persistent::BackwardCall<float>*>(c), w); \
  }                                                                                 \
  attr void backward_f64_##isa(void* c, int w) {                                   \
    persistent::backward<double, nv64>(*static_cast<persistent::BackwardCall<double>*>(c), w); \
  }

// Non-temporal copies (the forward's saved activations), one per
// instruction set: intrinsics need their target on the function that calls
// them, so these are functions of their own, not inlined templates.
template <typename T>
void copy_baseline(T* dst, const T* src, int64_t n) {
  std::copy(src, src + n, dst);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define JAXRNN_STREAM(isa, attr, bytes, vec, load, store_f, store_d)                 \
  template <typename T>                                                         \
  attr void copy_##isa(T* dst, const T* src, int64_t n) {                        \
    constexpr int64_t NV = bytes / sizeof(T);                                  \
    int64_t i = 0;                                                              \
    for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % bytes != 0; ++i)      \
      dst[i] = src[i];                                                          \
    for (; i + NV <= n; i += NV) {                                              \
      if constexpr (sizeof(T) == 4) store_f(dst + i, load##_ps(src + i));        \
      else store_d(dst + i, load##_pd(src + i));                                 \
    }                                                                           \
    for (; i < n; ++i) dst[i] = src[i];                                         \
  }
JAXRNN_STREAM(avx2, __attribute__((target("avx2,fma"))), 32, __m256, _mm256_loadu,
              _mm256_stream_ps, _mm256_stream_pd)
JAXRNN_STREAM(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))), 64, __m512,
              _mm512_loadu, _mm512_stream_ps, _mm512_stream_pd)
#endif

struct Isa {
  const char* name;
  Pool::Body forward[2], backward[2];  // float, double
  int vector[2];                       // elements per vector
  void (*stream32)(float*, const float*, int64_t);
  void (*stream64)(double*, const double*, int64_t);
};

JAXRNN_BODIES(baseline, , 4, 2)
#if defined(__x86_64__) && defined(__GNUC__)
JAXRNN_BODIES(avx2, __attribute__((target("avx2,fma"))), 8, 4)
JAXRNN_BODIES(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))), 16, 8)
#endif

#define JAXRNN_ISA(isa, nv32, nv64)                                              \
  Isa {                                                                          \
    #isa, {forward_f32_##isa, forward_f64_##isa},                                \
        {backward_f32_##isa, backward_f64_##isa}, {nv32, nv64},                 \
        copy_##isa<float>, copy_##isa<double>                                    \
  }

const Isa& isa() {
  static const Isa chosen = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
      return JAXRNN_ISA(avx512, 16, 8);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return JAXRNN_ISA(avx2, 8, 4);
#endif
    return JAXRNN_ISA(baseline, 4, 2);
  }();
  return chosen;
}

// Workers for a call: one per core the pool has, at most one per panel of
// units, and one alone when the work is too small to pay for waking the
// others (a few microseconds) and a barrier per step (about 0.3 us). The
// thresholds are measured by benchmarks/native_threads.py.
constexpr double kMinStepFlops = 2.0e4;  // per step, all workers together
constexpr double kMinCallFlops = 2.0e6;  // per call

int workers(const Dims& d, int64_t kind, int vector) {
  const int64_t panels = round_up(d.H, 2 * vector) / (2 * vector);
  const double step = 2.0 * d.B * num_gates(kind) * d.H * (d.I + d.H);
  if (!Pool::instance().forced() && (step < kMinStepFlops || step * d.T < kMinCallFlops))
    return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(Pool::instance().size(), panels)));
}

// What the caller does before the workers start, and once they are done.
template <typename T>
void prepare(persistent::ForwardCall<T>& call, Workspace&) {
  if constexpr (sizeof(T) == 4) call.stream = isa().stream32;
  else call.stream = isa().stream64;
}

template <typename T>
void prepare(persistent::BackwardCall<T>& call, Workspace& ws) {
  call.weight_buffers(isa().vector[sizeof(T) == 8], ws);
}

template <typename T>
void finish(persistent::ForwardCall<T>&) {}

template <typename T>
void finish(persistent::BackwardCall<T>& call) {
  bias_gradients(call.a, call.sums);
}

// Runs `Call` on the pool, or on the caller alone when one worker is enough.
template <typename Call, typename Args>
void run(const Args& a, Pool::Body body, int P) {
  Workspace& ws = Workspace::for_this_thread();
  {
    Call call(a, P, ws);
    prepare(call, ws);
    if (P > 1) Pool::instance().run(P, body, &call);
    else body(&call, 0);
    finish(call);
  }
  ws.release();
}

// XLA hands the kernels fresh output buffers; one of many MB is fresh
// mmap'd memory, and its first touch costs a page fault per 4 KB page
// (LSTM B=32 T=256 H=256: 41 MB of saved activations, 10k faults, tens of
// microseconds per step). Transparent huge pages on the buffer's interior
// make most of them 2 MB faults, where the kernel allows it ("madvise" mode).
template <typename T>
void prefer_huge_pages(T* p, int64_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (p == nullptr || n * static_cast<int64_t>(sizeof(T)) < 4 * static_cast<int64_t>(kHuge))
    return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p + n) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

template <typename T>
void forward(const ForwardArgs<T>& a) {
  const int64_t TB = a.d.T * a.d.B;
  prefer_huge_pages(a.ys, TB * a.d.H);
  prefer_huge_pages(a.res, TB * residual_width(a.kind, a.d.H));
  prefer_huge_pages(a.cs, TB * a.d.H);
  const int f64 = sizeof(T) == 8;
  run<persistent::ForwardCall<T>>(a, isa().forward[f64], workers(a.d, a.kind, isa().vector[f64]));
}

template <typename T>
void backward(const BackwardArgs<T>& a) {
  prefer_huge_pages(a.dxs, a.d.T * a.d.B * a.d.I);
  const int f64 = sizeof(T) == 8;
  run<persistent::BackwardCall<T>>(a, isa().backward[f64], workers(a.d, a.kind, isa().vector[f64]));
}

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
    forward<float>({kind, reverse != 0, d, in<float>(xs), in<float>(w_i), in<float>(b),
                 in<float>(w_h), in<float>(extra), in<float>(h0), in<float>(c0), v,
                 out<float>(ys), out<float>(h_out), out<float>(c_out),
                 out<float>(res), out<float>(cs)});
  } else {
    forward<double>({kind, reverse != 0, d, in<double>(xs), in<double>(w_i),
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
    backward<float>({kind, reverse != 0, d, in<T>(xs), in<T>(w_i), in<T>(w_h),
                  in<T>(extra), in<T>(h0), in<T>(c0), v, in<T>(ys), in<T>(res),
                  in<T>(cs), in<T>(dys), in<T>(dh), in<T>(dc), out<T>(dxs),
                  out<T>(dw_i), out<T>(db), out<T>(dw_h), out<T>(dextra),
                  out<T>(dh0), out<T>(dc0)});
  } else {
    using T = double;
    backward<double>({kind, reverse != 0, d, in<T>(xs), in<T>(w_i), in<T>(w_h),
                  in<T>(extra), in<T>(h0), in<T>(c0), v, in<T>(ys), in<T>(res),
                  in<T>(cs), in<T>(dys), in<T>(dh), in<T>(dc), out<T>(dxs),
                  out<T>(dw_i), out<T>(db), out<T>(dw_h), out<T>(dextra),
                  out<T>(dh0), out<T>(dc0)});
  }
  return ffi::Error::Success();
}

}  // namespace

int pool_threads() { return Pool::instance().size(); }
void set_pool_threads(int n, bool forced) {
  Pool::instance().set_size(n);
  Pool::instance().set_forced(forced);
}
const char* isa_name() { return isa().name; }

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
