// Scratch memory for the kernels, kept per thread between calls.
//
// A kernel's scratch (the projected inputs of a chunk of steps; in the
// backward pass the carries before each step and the gate cotangents, tens of
// MB) is touched once per call. Fresh allocations that size come from mmap,
// and their first touch costs a page fault per 4 KB page: measured at about
// 25 ms of a 200 ms LSTM backward (B=32 T=256 H=256). So buffers stay
// allocated for the next call on the same thread, uninitialised, unless they
// exceed kKeepBytes, which are freed when the call ends.
#ifndef JAXRNN_NATIVE_WORKSPACE_H_
#define JAXRNN_NATIVE_WORKSPACE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace jaxrnn {

class Workspace {
 public:
  static constexpr size_t kKeepBytes = size_t{256} << 20;

  // The thread's workspace, with every slot free for this call.
  static Workspace& for_this_thread() {
    thread_local Workspace workspace;
    return workspace;
  }

  // Slot `slot` as n uninitialised elements of T (valid until release()).
  template <typename T>
  T* get(size_t slot, int64_t n) {
    if (slots_.size() <= slot) slots_.resize(slot + 1);
    Slot& s = slots_[slot];
    const size_t bytes = static_cast<size_t>(n > 0 ? n : 1) * sizeof(T);
    if (s.bytes < bytes) {
      s.data.reset(new char[bytes]);
      s.bytes = bytes;
    }
    return reinterpret_cast<T*>(s.data.get());
  }

  // Ends a call: frees the slots too large to keep.
  void release() {
    for (Slot& s : slots_) {
      if (s.bytes > kKeepBytes) {
        s.data.reset();
        s.bytes = 0;
      }
    }
  }

 private:
  struct Slot {
    std::unique_ptr<char[]> data;
    size_t bytes = 0;
  };
  std::vector<Slot> slots_;
};

}  // namespace jaxrnn

#endif  // JAXRNN_NATIVE_WORKSPACE_H_
