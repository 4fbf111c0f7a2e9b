// Child processes for process-level tests: a `moatkv server` node, a long-running `moatkv`
// client (e.g. `data … monitor`) and one-shot `moatkv` commands.
//
// Contract:
//   * every process is started with fork/exec and is owned by exactly one object; the destructor
//     stops it by its PID (SIGTERM, then up to 5 s for it to exit, then SIGKILL) and always reaps
//     it with waitpid, so a failing test leaves no process behind;
//   * children get PR_SET_PDEATHSIG(SIGKILL), so they also die when the test binary is killed;
//   * nothing waits by sleeping: every wait is a poll() on the child's pipes (or waitpid) bounded
//     by a deadline, and ends as soon as its condition holds;
//   * children talk to 127.0.0.1 only (the node binds to the configured default, the tests pass
//     `-p PORT` to clients).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moatkv::test {

using namespace std::chrono_literals;

/// Path of the `moatkv` binary under test (compile definition MOATKV_BINARY).
std::string moatkv_binary();

/// A child process with piped stdout (and optionally piped stderr and stdin).
class child_process {
 public:
  struct options {
    bool capture_stderr = false;            // else inherited (shows up in the test log)
    std::optional<std::string> stdin_data;  // else stdin is /dev/null
  };

  /// Starts argv[0] with the given arguments. Throws std::runtime_error if fork/pipe fail;
  /// a failing exec shows up as exit code 127.
  child_process(std::vector<std::string> argv, options opts);
  explicit child_process(std::vector<std::string> argv) : child_process(std::move(argv), {}) {}
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return argv_; }

  /// Pumps the pipes until `done(stdout so far)` holds, the child closed its stdout, or the
  /// timeout passed. Returns whether `done` held.
  bool wait_for_stdout(const std::function<bool(const std::string&)>& done,
                       std::chrono::milliseconds timeout);
  /// Shorthand: wait until stdout contains `needle` at or after offset `from`.
  bool wait_for_stdout_text(const std::string& needle, std::chrono::milliseconds timeout,
                            size_t from = 0);

  /// Pumps the pipes until the child has exited and closed its output, or the timeout passed.
  /// Returns the exit code (see `exit_code`) or nullopt on timeout (the child keeps running).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  /// Non-blocking: whether the child is still running (reaps it if it has exited).
  bool running();

  /// SIGTERM, wait up to `grace` for the exit, then SIGKILL; always reaped. Idempotent.
  /// Returns the exit code.
  int stop(std::chrono::milliseconds grace = 5s);

  /// Exit code once reaped: the exit status, or -N when killed by signal N.
  std::optional<int> exit_code() const { return exit_code_; }

  /// Whether the child closed its stdout (usually: it is exiting).
  bool stdout_closed() const { return out_fd_ < 0; }
  const std::string& stdout_text() const { return out_; }
  const std::string& stderr_text() const { return err_; }

 private:
  // One poll() round over the open pipes, at most until `deadline`. Returns false if there was
  // nothing left to wait for (all pipes closed).
  bool pump(std::chrono::steady_clock::time_point deadline);
  bool try_reap();
  void close_fd(int& fd);

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1, in_fd_ = -1;
  int pidfd_ = -1;  // -1 if the kernel has no pidfd_open: then exits are noticed by polling
  std::string out_, err_, in_data_;
  size_t in_written_ = 0;
  std::optional<int> exit_code_;
};

/// Result of a one-shot command.
struct command_result {
  int exit_code = -1;  // exit status, -N if killed by signal N
  bool timed_out = false;
  std::string out, err;
  /// A one-line summary for failure messages.
  std::string describe() const;
};

/// Runs `moatkv ARGS…` (optionally with stdin), bounded by `timeout` (killed on timeout), and
/// captures its exit code, stdout and stderr.
command_result run_moatkv(const std::vector<std::string>& args,
                          std::optional<std::string> stdin_data = std::nullopt,
                          std::chrono::milliseconds timeout = 20s);

/// A `moatkv server NAME EXTRA… -C kv.server.bind_default.port=0` node on 127.0.0.1 (the port
/// only when EXTRA names none).
/// The constructor returns once the node printed `moatkv node NAME serving on HOST:PORT`
/// (throws std::runtime_error with the node's output if that does not happen within
/// `ready_timeout` or the node exits first).
class node_process {
 public:
  explicit node_process(std::string name, std::vector<std::string> extra_args = {},
                        std::chrono::milliseconds ready_timeout = 10s);

  const std::string& name() const { return name_; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  bool running() { return proc_.running(); }
  /// Stop the node (SIGTERM, grace period, SIGKILL) and return its exit code.
  int stop(std::chrono::milliseconds grace = 5s) { return proc_.stop(grace); }
  /// What the node wrote so far, stdout (its log) then stderr; complete after `stop`.
  std::string output() const { return proc_.stdout_text() + proc_.stderr_text(); }

  /// `moatkv -p PORT ARGS…` against this node.
  command_result client(const std::vector<std::string>& args,
                        std::optional<std::string> stdin_data = std::nullopt,
                        std::chrono::milliseconds timeout = 20s) const;
  /// The argv of `moatkv -p PORT ARGS…` (to start a long-running client as a child_process).
  std::vector<std::string> client_argv(const std::vector<std::string>& args) const;

 private:
  std::string name_;
  child_process proc_;
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace moatkv::test
