#include "tests/integration/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace moatkv::test {

namespace {

int listen_socket(uint16_t port, uint16_t& bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    std::string err = strerror(errno);
    close(fd);
    throw std::runtime_error("tcp_proxy: cannot listen on port " + std::to_string(port) + ": " +
                             err);
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  bound = ntohs(a.sin_port);
  return fd;
}

int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Copy what is readable from `from` to `to`; false when the connection is over.
bool pump(int from, int to) {
  char buf[65536];
  ssize_t n = read(from, buf, sizeof buf);
  if (n <= 0) return false;
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = write(to, buf + off, static_cast<size_t>(n - off));
    if (w <= 0) return false;
    off += w;
  }
  return true;
}

}  // namespace

tcp_proxy::tcp_proxy(uint16_t target_port) : target_port_(target_port) {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("tcp_proxy: pipe");
  listen_fd_ = listen_socket(0, port_);
  thread_ = std::thread([this] { run(); });
}

tcp_proxy::~tcp_proxy() {
  stop_ = true;
  (void)!write(wake_[1], "x", 1);
  thread_.join();
  for (auto [a, b] : pairs_) {
    close(a);
    close(b);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void tcp_proxy::cut() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cut_requested_ = true;
  }
  (void)!write(wake_[1], "x", 1);
  // Wait until the loop has closed everything, so the caller's next step sees a cut link.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!cut_requested_) return;
    }
    std::this_thread::yield();
  }
}

void tcp_proxy::heal() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    heal_requested_ = true;
  }
  (void)!write(wake_[1], "x", 1);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!heal_requested_) return;
    }
    std::this_thread::yield();
  }
}

void tcp_proxy::run() {
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
    size_t first_pair = fds.size();
    size_t polled_pairs = pairs_.size();  // an accept below adds pairs that were not polled
    for (auto [a, b] : pairs_) {
      fds.push_back({a, POLLIN, 0});
      fds.push_back({b, POLLIN, 0});
    }
    poll(fds.data(), fds.size(), 1000);
    if (fds[0].revents) {
      char drain[64];
      while (read(wake_[0], drain, sizeof drain) > 0) {
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (cut_requested_) {
        for (auto [a, b] : pairs_) {
          shutdown(a, SHUT_RDWR);
          close(a);
          close(b);
        }
        pairs_.clear();
        if (listen_fd_ >= 0) close(listen_fd_);
        listen_fd_ = -1;
        cut_requested_ = false;
        continue;
      }
      if (heal_requested_) {
        uint16_t bound;
        if (listen_fd_ < 0) listen_fd_ = listen_socket(port_, bound);
        heal_requested_ = false;
        continue;
      }
    }
    if (listen_fd_ >= 0 && fds.size() > 1 && fds[1].revents & POLLIN) {
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        int t = connect_local(target_port_);
        if (t < 0) {
          close(c);
        } else {
          pairs_.emplace_back(c, t);
          ++accepted_;
        }
      }
    }
    std::vector<size_t> dead;
    for (size_t i = 0; i < polled_pairs; ++i) {
      const pollfd& pa = fds[first_pair + 2 * i];
      const pollfd& pb = fds[first_pair + 2 * i + 1];
      bool ok = true;
      if (pa.revents) ok = pump(pairs_[i].first, pairs_[i].second);
      if (ok && pb.revents) ok = pump(pairs_[i].second, pairs_[i].first);
      if (!ok) dead.push_back(i);
    }
    for (size_t k = dead.size(); k-- > 0;) {
      close(pairs_[dead[k]].first);
      close(pairs_[dead[k]].second);
      pairs_.erase(pairs_.begin() + static_cast<long>(dead[k]));
    }
  }
}

}  // namespace moatkv::test
