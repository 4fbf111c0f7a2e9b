// The process helpers themselves (node_process.hpp): a node that cannot start is reported at
// once with its exit code instead of a hang, a command that does not end is killed at its
// deadline, and a stopped node is reaped.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "tests/integration/node_process.hpp"

namespace moatkv::test {

TEST_CASE(
    "node_process reports a node that exits before serving, without waiting out the timeout") {
  auto t0 = std::chrono::steady_clock::now();
  std::string what;
  try {
    node_process node("broken", {"--no-such-option"}, 10s);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  INFO(what);
  CHECK(what.find("exited with") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("run_moatkv kills a command at its deadline and captures what it printed") {
  node_process node("helpernode", {"-I", "Init"});
  CHECK(node.port() > 0);
  // A monitor never ends by itself.
  command_result r = node.client({"data", "demo", "monitor"}, std::nullopt, 300ms);
  INFO(r.describe());
  CHECK(r.timed_out);
  CHECK(r.exit_code < 0);  // killed by a signal
  // A normal command: exit code and output.
  command_result ok = node.client({"data", ":"});
  INFO(ok.describe());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == "'Init'\n");
}

TEST_CASE("node_process::stop reaps the node; a second stop returns the same exit code") {
  node_process node("stopnode", {"-I", "Init"});
  pid_t pid = node.pid();
  int code = node.stop();
  CHECK(code == 0);
  CHECK(!node.running());
  CHECK(node.stop() == code);
  CHECK(kill(pid, 0) != 0);  // reaped: the pid is gone
}

}  // namespace moatkv::test
