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
  kProjection = 0,  // forward: x W_i + b for a chunk of steps
  kRecurrent,       // each step's h W_h (forward) or dz W_h^T (backward)
  kGateMath,        // each step's elementwise math (and its layout copies)
  kCarries,         // backward: the carries before each step
  kWeights,         // backward: dW_h, dW_i, dX and the bias sums
  kNumPhases,
};

struct Profile {
  std::atomic<bool> on{false};
  std::atomic<int64_t> ns[kNumPhases] = {};
};

Profile& profile();  // defined in kernels.cc

// Adds the time from construction to destruction to `phase`, if on.
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase)
      : phase_(phase), on_(profile().on.load(std::memory_order_relaxed)) {
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
