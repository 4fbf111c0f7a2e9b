// Backend services for process-level tests: a real `mosquitto` broker and a real `serf agent`,
// each on free 127.0.0.1 ports.
//
// Contract (as node_process.hpp, whose child_process does the process handling):
//   * the constructor returns once the service accepts TCP connections on its port (polled with
//     a deadline; throws std::runtime_error with the service's output if it exits first or the
//     deadline passes);
//   * the destructor (or `stop`) stops it by PID: SIGTERM, a bounded wait, SIGKILL, always
//     reaped; the generated config directory is removed. Nothing is left behind on a failing
//     test, and children die with the test binary (PR_SET_PDEATHSIG);
//   * a service can be started again on the ports of one that was stopped (restart tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tests/integration/node_process.hpp"

namespace moatkv::test {

/// A port on 127.0.0.1 that was free for TCP (and, with `udp_too`, for UDP) a moment ago.
uint16_t free_loopback_port(bool udp_too = false);

/// Polls until a TCP connect to 127.0.0.1:port succeeds, `proc` (if given) exited, or the
/// timeout passed. Returns whether a connect succeeded.
bool wait_tcp_accepting(uint16_t port, std::chrono::milliseconds timeout,
                        child_process* proc = nullptr);

/// `mosquitto -c <generated>` with `listener PORT 127.0.0.1`, anonymous access, no persistence.
class mosquitto_process {
 public:
  /// port 0: pick a free one.
  explicit mosquitto_process(uint16_t port = 0, std::chrono::milliseconds ready_timeout = 10s);
  ~mosquitto_process();
  mosquitto_process(const mosquitto_process&) = delete;
  mosquitto_process& operator=(const mosquitto_process&) = delete;

  uint16_t port() const { return port_; }
  std::string uri() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return proc_->pid(); }
  bool running() { return proc_->running(); }
  /// SIGTERM (or SIGKILL with grace 0), bounded wait, SIGKILL; returns the exit code.
  int stop(std::chrono::milliseconds grace = 5s) { return proc_->stop(grace); }
  /// What the broker logged so far (read while waiting on it; complete after `stop_and_log`).
  const std::string& log() const { return proc_->stderr_text(); }
  /// Stops the broker and returns its whole log.
  std::string stop_and_log() {
    proc_->stop();
    proc_->wait_exit(2s);  // drains the pipes to their end
    return proc_->stderr_text();
  }

 private:
  uint16_t port_ = 0;
  std::string dir_;
  std::unique_ptr<child_process> proc_;
};

/// `serf agent -profile=local -bind=127.0.0.1:B -rpc-addr=127.0.0.1:R -node=NAME [-join=…]`.
class serf_agent_process {
 public:
  struct options {
    std::string node;              // empty: unique generated name
    uint16_t bind_port = 0;        // 0: free port (TCP and UDP)
    uint16_t rpc_port = 0;         // 0: free port
    std::optional<uint16_t> join;  // bind port of an agent to join at start
    std::chrono::milliseconds ready_timeout = 10s;
  };
  explicit serf_agent_process(options opts);
  serf_agent_process() : serf_agent_process(options{}) {}
  ~serf_agent_process();
  serf_agent_process(const serf_agent_process&) = delete;
  serf_agent_process& operator=(const serf_agent_process&) = delete;

  const std::string& node() const { return node_; }
  uint16_t bind_port() const { return bind_port_; }
  uint16_t rpc_port() const { return rpc_port_; }
  pid_t pid() const { return proc_->pid(); }
  bool running() { return proc_->running(); }
  int stop(std::chrono::milliseconds grace = 5s) { return proc_->stop(grace); }
  const std::string& log() const { return proc_->stdout_text(); }

  /// Polls `serf members -status=alive` until this agent sees at least `n` alive members
  /// (itself included) or the timeout passed. The RPC port opens before a `-join` completes,
  /// so tests that need the cluster formed wait for this.
  bool wait_members(size_t n, std::chrono::milliseconds timeout = 10s);

 private:
  std::string node_;
  uint16_t bind_port_ = 0, rpc_port_ = 0;
  std::unique_ptr<child_process> proc_;
};

}  // namespace moatkv::test
