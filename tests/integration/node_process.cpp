// Child processes for process-level tests (see node_process.hpp for the contract).
#include "tests/integration/node_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <stdexcept>

#ifndef MOATKV_BINARY
#error "MOATKV_BINARY (path of the moatkv binary under test) must be defined"
#endif

namespace moatkv::test {

namespace {

using clock = std::chrono::steady_clock;

// Without pidfd support, an exit that is not accompanied by a pipe event is noticed by polling
// waitpid at this interval (still bounded by the caller's deadline).
constexpr int reap_poll_ms = 10;

int remaining_ms(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count(), 60'000)) + 1;
}

void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

std::string quote_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`!*?()[]{};&|<>") == std::string::npos;
    s += plain ? a : "'" + a + "'";
  }
  return s;
}

}  // namespace

std::string moatkv_binary() {
  return MOATKV_BINARY;
}

// ---------------------------------------------------------------------------------------------
// child_process

child_process::child_process(std::vector<std::string> argv, options opts) : argv_(std::move(argv)) {
  if (argv_.empty()) throw std::invalid_argument("child_process: empty argv");
  // A child that closes its stdin early must not kill the test with SIGPIPE; the child itself
  // gets the default disposition back before exec.
  signal(SIGPIPE, SIG_IGN);

  int out[2], err[2] = {-1, -1}, in[2];
  make_pipe(out);
  if (opts.capture_stderr) make_pipe(err);
  if (opts.stdin_data) {
    make_pipe(in);
  } else {
    in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    in[1] = -1;
  }
  std::vector<char*> cargv;
  for (auto& a : argv_) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t parent = getpid();

  pid_ = fork();
  if (pid_ < 0) {
    int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1], in[0], in[1]})
      if (fd >= 0) close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(e));
  }
  if (pid_ == 0) {
    // Child: async-signal-safe calls only until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (in[0] >= 0) dup2(in[0], 0);
    dup2(out[1], 1);
    if (err[1] >= 0) dup2(err[1], 2);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  out_fd_ = out[0];
  set_nonblocking(out_fd_);
  if (err[1] >= 0) {
    close(err[1]);
    err_fd_ = err[0];
    set_nonblocking(err_fd_);
  }
  if (in[0] >= 0) close(in[0]);
  if (in[1] >= 0) {
    in_fd_ = in[1];
    set_nonblocking(in_fd_);
    in_data_ = std::move(*opts.stdin_data);
    if (in_data_.empty()) close_fd(in_fd_);
  }
  // pidfd: lets poll() wake up on the child's exit. The pid cannot be reused before we reap it.
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
}

child_process::~child_process() {
  stop();
  close_fd(out_fd_);
  close_fd(err_fd_);
  close_fd(in_fd_);
  close_fd(pidfd_);
}

void child_process::close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

bool child_process::try_reap() {
  if (exit_code_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    close_fd(pidfd_);
    return true;
  }
  return false;
}

bool child_process::pump(clock::time_point deadline) {
  pollfd fds[4];
  int n = 0;
  auto add = [&](int fd, short events) {
    if (fd >= 0) fds[n++] = pollfd{fd, events, 0};
  };
  add(out_fd_, POLLIN);
  add(err_fd_, POLLIN);
  add(in_fd_, POLLOUT);
  if (!exit_code_) add(pidfd_, POLLIN);
  int timeout = remaining_ms(deadline);
  if (!exit_code_ && pidfd_ < 0) timeout = std::min(timeout, reap_poll_ms);
  if (n == 0 && exit_code_) return false;
  int r = poll(n ? fds : nullptr, static_cast<nfds_t>(n), timeout);
  if (r < 0 && errno != EINTR)
    throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
  for (int i = 0; r > 0 && i < n; ++i) {
    if (!fds[i].revents) continue;
    int fd = fds[i].fd;
    if (fd == out_fd_ || fd == err_fd_) {
      char buf[4096];
      ssize_t got = read(fd, buf, sizeof buf);
      if (got > 0) {
        (fd == out_fd_ ? out_ : err_).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        close_fd(fd == out_fd_ ? out_fd_ : err_fd_);
      }
    } else if (fd == in_fd_) {
      ssize_t put = write(fd, in_data_.data() + in_written_, in_data_.size() - in_written_);
      if (put > 0) in_written_ += static_cast<size_t>(put);
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || in_written_ == in_data_.size())
        close_fd(in_fd_);
    }
  }
  try_reap();
  return true;
}

bool child_process::wait_for_stdout(const std::function<bool(const std::string&)>& done,
                                    std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (!done(out_)) {
    if (out_fd_ < 0 || clock::now() >= deadline) return done(out_);
    pump(deadline);
  }
  return true;
}

bool child_process::wait_for_stdout_text(const std::string& needle,
                                         std::chrono::milliseconds timeout, size_t from) {
  return wait_for_stdout(
      [&](const std::string& s) { return s.size() >= from && s.find(needle, from) != s.npos; },
      timeout);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    try_reap();
    if (exit_code_ && out_fd_ < 0 && err_fd_ < 0) return exit_code_;
    if (clock::now() >= deadline) return std::nullopt;
    if (!pump(deadline)) return exit_code_;
  }
}

bool child_process::running() {
  return !try_reap();
}

int child_process::stop(std::chrono::milliseconds grace) {
  if (!try_reap()) {
    kill(pid_, SIGTERM);
    auto deadline = clock::now() + grace;
    while (!try_reap() && clock::now() < deadline) pump(deadline);
    if (!exit_code_) {
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      exit_code_ = decode_status(status);
      close_fd(pidfd_);
    }
  }
  return *exit_code_;
}

// ---------------------------------------------------------------------------------------------
// one-shot commands

std::string command_result::describe() const {
  std::string s = "exit " + std::to_string(exit_code) + (timed_out ? " (timed out, killed)" : "");
  s += "\n--- stdout ---\n" + out + "--- stderr ---\n" + err + "--------------";
  return s;
}

command_result run_moatkv(const std::vector<std::string>& args,
                          std::optional<std::string> stdin_data,
                          std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{moatkv_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process p(argv, {.capture_stderr = true, .stdin_data = std::move(stdin_data)});
  command_result r;
  std::optional<int> code = p.wait_exit(timeout);
  if (!code) {
    r.timed_out = true;
    code = p.stop(0ms);  // SIGKILL at once
  }
  r.exit_code = *code;
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

// ---------------------------------------------------------------------------------------------
// node_process

namespace {

std::vector<std::string> server_argv(const std::string& name,
                                     const std::vector<std::string>& extra) {
  std::vector<std::string> argv{moatkv_binary(), "server", name};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // Loopback only, on a free port chosen by the kernel (the node prints it), unless the test
  // names one (a node restarted where its clients expect it).
  bool port = false;
  for (const auto& a : extra) port = port || a.rfind("kv.server.bind_default.port=", 0) == 0;
  argv.insert(argv.end(), {"-C", "kv.server.bind_default.host=127.0.0.1"});
  if (!port) argv.insert(argv.end(), {"-C", "kv.server.bind_default.port=0"});
  // The remote actor interface only where a test asks for it: its default port is fixed.
  bool remote = false;
  for (const auto& a : extra) remote = remote || a.rfind("kv.server.remote", 0) == 0;
  if (!remote) argv.insert(argv.end(), {"-C", "kv.server.remote.port=0"});
  return argv;
}

}  // namespace

node_process::node_process(std::string name, std::vector<std::string> extra_args,
                           std::chrono::milliseconds ready_timeout)
    : name_(std::move(name)), proc_(server_argv(name_, extra_args)) {
  static const std::regex ready_line(R"(moatkv node (\S+) serving on (\S+):(\d+)\r?\n)");
  std::smatch m;
  bool ready = proc_.wait_for_stdout(
      [&](const std::string& out) { return std::regex_search(out, m, ready_line); }, ready_timeout);
  if (!ready) {
    // Closed stdout: the node is exiting; its exit code follows at once.
    std::optional<int> code = proc_.stdout_closed() ? proc_.wait_exit(5s) : std::nullopt;
    std::string state =
        code ? "exited with " + std::to_string(*code)
             : "no such line within " + std::to_string(ready_timeout.count()) + " ms";
    throw std::runtime_error("node did not report 'serving on HOST:PORT' (" + state +
                             "): " + quote_argv(proc_.argv()) + "\nstdout: " + proc_.stdout_text());
  }
  if (m[1].str() != name_)
    throw std::runtime_error("node announced name " + m[1].str() + ", expected " + name_);
  host_ = m[2].str();
  unsigned long port = std::stoul(m[3].str());
  if (port == 0 || port > 65535) throw std::runtime_error("node announced port " + m[3].str());
  port_ = static_cast<uint16_t>(port);
  if (host_ != "127.0.0.1")
    throw std::runtime_error("node serves on " + host_ + ", tests use 127.0.0.1 only");
}

std::vector<std::string> node_process::client_argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{moatkv_binary(), "-h", host_, "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

command_result node_process::client(const std::vector<std::string>& args,
                                    std::optional<std::string> stdin_data,
                                    std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = client_argv(args);
  argv.erase(argv.begin());
  return run_moatkv(argv, std::move(stdin_data), timeout);
}

}  // namespace moatkv::test
