// The kernels' own threads: one pool, sized to the cores this process may
// run on (sched_getaffinity, as XLA sizes its own), that a call borrows
// whole, and a spin barrier for the steps of a persistent loop.
//
// - The caller's thread is worker 0; the pool's threads are workers 1..P-1.
//   They sleep on a condition variable between calls, so nothing spins
//   after a call returns and the next XLA op gets the cores.
// - One call holds the pool at a time. A call that finds it busy (XLA runs
//   independent ops at once: the two directions of a bidirectional layer)
//   waits for it, asleep. Running alone instead put three busy threads on
//   two cores, and the pool's barriers then waited for a thread the OS had
//   taken off its core (2-layer bidirectional LSTM, B=32: 912 ms against
//   torch's 908).
// - After fork() the child has none of the parent's threads: the pool is
//   rebuilt on first use in the child.
#ifndef JAXRNN_NATIVE_POOL_H_
#define JAXRNN_NATIVE_POOL_H_

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace jaxrnn {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Waits until `done()`: spins (pause) for about the time of a few steps, then
// yields the core, so that a worker that the OS took off its core (a shared
// or oversubscribed machine) gets it back.
template <typename Done>
inline void spin_until(Done done) {
  for (int spin = 0; !done(); ++spin) {
    if (spin < 4000) cpu_relax(); else sched_yield();
  }
}

// A sense-reversing barrier for n threads: an atomic counter and a
// generation, no futex or condition variable.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    if (n_ == 1) return;
    const int gen = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      generation_.store(gen + 1, std::memory_order_release);
      return;
    }
    spin_until([&] { return generation_.load(std::memory_order_acquire) != gen; });
  }

 private:
  const int n_;
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<int> generation_{0};
};

// The cores this process may run on.
inline int usable_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  using Body = void (*)(void* ctx, int worker);

  // The process's pool (rebuilt in a forked child); never destroyed, so its
  // sleeping threads need no shutdown at exit.
  static Pool& instance() {
    static std::mutex lock;
    static Pool* pool = nullptr;
    std::lock_guard<std::mutex> guard(lock);
    if (pool == nullptr || pool->pid_ != getpid()) pool = new Pool();
    return *pool;
  }

  // Threads a call may use: JAXRNN_NUM_THREADS, set_threads(), or the cores.
  int size() const { return size_.load(std::memory_order_relaxed); }
  void set_size(int n) { size_.store(n > 0 ? n : default_size(), std::memory_order_relaxed); }
  // Whether every call uses size() workers, however small its work (tests).
  bool forced() const { return forced_.load(std::memory_order_relaxed); }
  void set_forced(bool on) { forced_.store(on, std::memory_order_relaxed); }

  // Runs body(ctx, w) for w in [0, P) with the caller as worker 0, and
  // returns when all have returned; waits first while another call holds
  // the pool.
  void run(int P, Body body, void* ctx) {
    std::lock_guard<std::mutex> busy(busy_);
    grow(P - 1);
    {
      std::lock_guard<std::mutex> guard(mutex_);
      body_ = body;
      ctx_ = ctx;
      active_ = P;
      csr_ = float_control();
      pending_.store(P - 1, std::memory_order_relaxed);
      ++generation_;
    }
    if (P > 1) wake_.notify_all();
    body(ctx, 0);
    spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
  }

 private:
  Pool() : pid_(getpid()) { set_size(0); }

  static int default_size() {
    if (const char* env = std::getenv("JAXRNN_NUM_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
    return usable_cores();
  }

  void grow(int workers) {
    while (static_cast<int>(threads_) < workers) {
      const int id = static_cast<int>(++threads_);
      uint64_t now;  // the thread serves every call after this one
      {
        std::lock_guard<std::mutex> guard(mutex_);
        now = generation_;
      }
      std::thread([this, id, now] { serve(id, now); }).detach();
    }
  }

  void serve(int id, uint64_t seen) {
    for (;;) {
      std::unique_lock<std::mutex> guard(mutex_);
      wake_.wait(guard, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= active_) continue;
      Body body = body_;
      void* ctx = ctx_;
      set_float_control(csr_);
      guard.unlock();
      body(ctx, id);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  const pid_t pid_;
  // The caller's floating-point control (flush-to-zero, denormals-are-zero,
  // rounding), which XLA sets on its threads: the workers compute as it does.
  static unsigned float_control() {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_stmxcsr();
#else
    return 0;
#endif
  }
  static void set_float_control(unsigned csr) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_ldmxcsr(csr);
#else
    (void)csr;
#endif
  }

  std::atomic<int> size_{1};
  std::atomic<bool> forced_{false};
  unsigned csr_ = 0;
  std::mutex busy_;   // held by the call that runs
  std::mutex mutex_;  // guards the call's description below
  std::condition_variable wake_;
  uint64_t generation_ = 0;
  int active_ = 0;
  Body body_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<int> pending_{0};
  size_t threads_ = 0;  // only grow() (under busy_) changes it
};

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_POOL_H_
