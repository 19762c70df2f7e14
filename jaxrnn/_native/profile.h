// Where a kernel's time goes, for benchmarks/profile_native.py: wall time
// per phase, summed over calls, when switched on (jaxrnn._native.profile).
// Off, a phase costs one relaxed atomic load.
#ifndef JAXRNN_NATIVE_PROFILE_H_
#define JAXRNN_NATIVE_PROFILE_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace jaxrnn {

enum Phase : int {
  kPack = 0,   // packing a worker's weights, loading its states
  kRecurrent,  // each step's products: b + x W_i + h W_h (forward), dz W_h^T
  kGateMath,   // each step's elementwise math (and its copies)
  kBarrier,    // waiting for the other workers at a step's barrier
  kCarries,    // backward: the carries before each step
  kWeights,    // backward: dW_h, dW_i, dX and the bias sums
  kNumPhases,
};

struct Profile {
  std::atomic<bool> on{false};
  std::atomic<int64_t> ns[kNumPhases] = {};
};

Profile& profile();  // defined in kernels.cc

// Adds the time from construction to destruction to `phase`, if on and
// `timed` (the persistent kernels time their worker 0 only: its phases add
// up to the call's wall time).
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase, bool timed = true)
      : phase_(phase), on_(timed && profile().on.load(std::memory_order_relaxed)) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~PhaseTimer() {
    if (!on_) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - start_).count();
    profile().ns[phase_].fetch_add(ns, std::memory_order_relaxed);
  }

 private:
  Phase phase_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_PROFILE_H_
