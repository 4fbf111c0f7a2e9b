// A TCP forwarder owned by a test, to cut a node's broker link and heal it (partition tests).
//
// It listens on a free 127.0.0.1 port and forwards every connection to `target_port`. `cut()`
// closes the listening socket and every forwarded connection (new connection attempts are
// refused, as with a broken network); `heal()` listens again on the same port. One thread
// runs a poll loop; the destructor stops it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace moatkv::test {

class tcp_proxy {
 public:
  explicit tcp_proxy(uint16_t target_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  uint16_t port() const { return port_; }
  void cut();
  void heal();
  /// Connections forwarded so far (for tests that want to see a reconnect).
  int accepted() const { return accepted_.load(); }

 private:
  void run();
  void listen_on_port();

  uint16_t target_port_;
  uint16_t port_ = 0;
  int wake_[2] = {-1, -1};  // self-pipe to interrupt poll
  std::mutex mutex_;
  int listen_fd_ = -1;
  bool cut_requested_ = false;
  bool heal_requested_ = false;
  std::vector<std::pair<int, int>> pairs_;  // (client side, target side)
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace moatkv::test
