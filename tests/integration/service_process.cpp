// Backend services for process-level tests (see service_process.hpp for the contract).
#include "tests/integration/service_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace moatkv::test {

namespace {

using clock = std::chrono::steady_clock;

// Interval between connect attempts while a service starts (a poll with a deadline, not a
// fixed wait: the loop ends as soon as the port accepts).
constexpr int accept_poll_ms = 10;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Binds a socket of `type` to 127.0.0.1:port (0: any); returns the fd and sets `port`.
int bind_loopback(int type, uint16_t& port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

bool tcp_connect_ok(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a = loopback(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

std::string make_temp_dir(const char* prefix) {
  std::string templ = (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX"));
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
  return templ;
}

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace

uint16_t free_loopback_port(bool udp_too) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    uint16_t port = 0;
    int tcp = bind_loopback(SOCK_STREAM, port);
    if (tcp < 0) continue;
    int udp = udp_too ? bind_loopback(SOCK_DGRAM, port) : -2;
    close(tcp);
    if (udp == -1) continue;  // the UDP side of this port is taken: try another
    if (udp >= 0) close(udp);
    return port;
  }
  throw std::runtime_error("no free loopback port");
}

bool wait_tcp_accepting(uint16_t port, std::chrono::milliseconds timeout, child_process* proc) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (tcp_connect_ok(port)) return true;
    if (proc && !proc->running()) return false;
    if (clock::now() >= deadline) return false;
    poll(nullptr, 0, accept_poll_ms);
  }
}

// ---------------------------------------------------------------------------------------------
// mosquitto

mosquitto_process::mosquitto_process(uint16_t port, std::chrono::milliseconds ready_timeout)
    : port_(port ? port : free_loopback_port()), dir_(make_temp_dir("moatkv-mosquitto-")) {
  std::string conf = dir_ + "/mosquitto.conf";
  {
    std::ofstream f(conf);
    f << "listener " << port_ << " 127.0.0.1\n"
      << "allow_anonymous true\n"
      << "persistence false\n"
      << "log_dest stderr\n"
      << "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  }
  proc_ = std::make_unique<child_process>(
      std::vector<std::string>{"/usr/sbin/mosquitto", "-c", conf},
      child_process::options{.capture_stderr = true, .stdin_data = std::nullopt});
  if (!wait_tcp_accepting(port_, ready_timeout, proc_.get())) {
    proc_->stop(1s);
    std::string err = "mosquitto did not accept connections on port " + std::to_string(port_) +
                      ": " + proc_->stderr_text();
    proc_.reset();
    std::filesystem::remove_all(dir_);
    throw std::runtime_error(err);
  }
}

mosquitto_process::~mosquitto_process() {
  proc_.reset();  // stops and reaps it
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

// ---------------------------------------------------------------------------------------------
// serf agent

serf_agent_process::serf_agent_process(options opts)
    : node_(opts.node.empty() ? "moatkv-test-" + unique_suffix() : opts.node),
      bind_port_(opts.bind_port ? opts.bind_port : free_loopback_port(true)),
      rpc_port_(opts.rpc_port ? opts.rpc_port : free_loopback_port()) {
  std::vector<std::string> argv{"/usr/bin/serf",
                                "agent",
                                "-profile=local",
                                "-log-level=warn",
                                "-bind=127.0.0.1:" + std::to_string(bind_port_),
                                "-rpc-addr=127.0.0.1:" + std::to_string(rpc_port_),
                                "-node=" + node_};
  if (opts.join) argv.push_back("-join=127.0.0.1:" + std::to_string(*opts.join));
  proc_ = std::make_unique<child_process>(
      argv, child_process::options{.capture_stderr = false, .stdin_data = std::nullopt});
  if (!wait_tcp_accepting(rpc_port_, opts.ready_timeout, proc_.get())) {
    proc_->stop(1s);
    proc_->wait_exit(1s);
    std::string err = "serf agent did not accept RPC connections on port " +
                      std::to_string(rpc_port_) + ": " + proc_->stdout_text();
    proc_.reset();
    throw std::runtime_error(err);
  }
}

serf_agent_process::~serf_agent_process() = default;  // child_process stops and reaps it

bool serf_agent_process::wait_members(size_t n, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    child_process members({"/usr/bin/serf", "members", "-status=alive",
                           "-rpc-addr=127.0.0.1:" + std::to_string(rpc_port_)});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (members.wait_exit(std::max(left, std::chrono::milliseconds(1))) == 0) {
      const std::string& out = members.stdout_text();
      if (static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) >= n) return true;
    }
    if (clock::now() >= deadline) return false;
    poll(nullptr, 0, accept_poll_ms);
  }
}

}  // namespace moatkv::test
