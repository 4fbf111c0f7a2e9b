// The node's tock: a Lamport-like counter (server-internals §2.7).
//
// Every read increments it and returns the new value (so every read is unique); `seen(v)`
// raises it to a tock observed elsewhere without incrementing. Sessions stamp replies with a
// fresh tock without asking the tree_store actor, so the counter is atomic; it only grows.
#pragma once

#include <atomic>
#include <cstdint>

namespace moatkv {

class tock_clock {
 public:
  /// Increment and return the new value.
  uint64_t next() { return value_.fetch_add(1, std::memory_order_relaxed) + 1; }
  /// The current value without incrementing (for logs and tests only).
  uint64_t peek() const { return value_.load(std::memory_order_relaxed); }
  /// Raise to `v` if larger.
  void seen(uint64_t v) {
    uint64_t cur = value_.load(std::memory_order_relaxed);
    while (cur < v && !value_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace moatkv
