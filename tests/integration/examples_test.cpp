// The examples of issue 7 (examples/) against a real node: they are documentation, and this
// keeps them true. attach_write_read writes what msgpack clients then read; watch_reactor
// reacts to changes made over msgpack, writes its results where msgpack clients read them,
// and notices a killed node at once.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/path_syntax.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// The examples are built into the same directory as the moatkv binary (build/bin).
std::string example_binary(const std::string& name) {
  return (std::filesystem::path(moatkv_binary()).parent_path() / name).string();
}

// stdout and stderr captured, for the failure messages.
const child_process::options captured{.capture_stderr = true, .stdin_data = std::nullopt};

// A standalone node with its remote actors on a free loopback port, and a msgpack client.
struct example_node {
  uint16_t remote_port = free_loopback_port();
  node_process node{"example1",
                    {"-I", "Init", "-C", "kv.server.remote.host=127.0.0.1", "-C",
                     "kv.server.remote.port=" + std::to_string(remote_port)}};
  client_connection mc{node.host(), node.port()};

  value get(const std::string& path) {
    value r = mc.request("get_value", {{"path", parse_path(path)}});
    const value* v = r.find("value");
    return v ? *v : value();
  }
  void set(const std::string& path, value v) {
    mc.request("set_value", {{"path", parse_path(path)}, {"value", std::move(v)}});
  }

  // watch_reactor on `sensors`, once it printed that its watch is up to date (so no change
  // made afterwards can be missed).
  std::unique_ptr<child_process> start_reactor(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{example_binary("watch_reactor"), "127.0.0.1",
                                  std::to_string(remote_port), "sensors"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<child_process>(argv, captured);
    bool up = p->wait_for_stdout_text("watching sensors", 10s);
    REQUIRE_MESSAGE(up, "watch_reactor did not start: " << p->stdout_text() << p->stderr_text());
    return p;
  }
};

}  // namespace

TEST_CASE_FIXTURE(example_node, "examples: attach_write_read writes what msgpack clients read") {
  child_process p({example_binary("attach_write_read"), "127.0.0.1", std::to_string(remote_port)},
                  captured);
  std::optional<int> code = p.wait_exit(20s);
  REQUIRE_MESSAGE(code, "attach_write_read did not exit: " << p.stdout_text());
  CHECK_MESSAGE(*code == 0, p.stdout_text() << p.stderr_text());
  CHECK(p.stdout_text().find("attached to node 'example1'") != std::string::npos);
  CHECK(p.stdout_text().find("  example.nested.list = ") != std::string::npos);

  CHECK(get("example.answer") == value(42));
  CHECK(get("example.greeting") == value("hello"));
  CHECK(get("example.nested.list") == value(array{1, 2.5, "three"}));
}

TEST_CASE_FIXTURE(example_node, "examples: attach_write_read runs the same over msgpack") {
  child_process p({example_binary("attach_write_read"), "127.0.0.1", std::to_string(node.port()),
                   "viamsgpack", "msgpack"},
                  captured);
  std::optional<int> code = p.wait_exit(20s);
  REQUIRE_MESSAGE(code, "attach_write_read did not exit: " << p.stdout_text());
  CHECK_MESSAGE(*code == 0, p.stdout_text() << p.stderr_text());
  CHECK(p.stdout_text().find("  viamsgpack.nested.list = ") != std::string::npos);
  CHECK(get("viamsgpack.answer") == value(42));
}

TEST_CASE("examples: attach_write_read fails cleanly without a node") {
  child_process p(
      {example_binary("attach_write_read"), "127.0.0.1", std::to_string(free_loopback_port())},
      captured);
  std::optional<int> code = p.wait_exit(20s);
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(p.stderr_text().find("cannot attach") != std::string::npos);
}

TEST_CASE_FIXTURE(example_node, "examples: watch_reactor reacts to changes made over msgpack") {
  auto reactor = start_reactor({"--count", "3"});
  set("sensors.a", 1);
  set("sensors.b", 2);
  set("sensors.a", 5);
  std::optional<int> code = reactor->wait_exit(10s);
  REQUIRE_MESSAGE(code, "watch_reactor did not exit: " << reactor->stdout_text());
  const std::string& out = reactor->stdout_text();
  CHECK_MESSAGE(*code == 0, out << reactor->stderr_text());
  // One line per reaction, in the order of the changes.
  size_t a1 = out.find("reacted: sensors.a = 1 -> derived.a = 2\n");
  size_t b2 = out.find("reacted: sensors.b = 2 -> derived.b = 4\n");
  size_t a5 = out.find("reacted: sensors.a = 5 -> derived.a = 10\n");
  CHECK_MESSAGE(a1 != std::string::npos, out);
  CHECK_MESSAGE(b2 != std::string::npos, out);
  CHECK_MESSAGE(a5 != std::string::npos, out);
  CHECK(a1 < b2);
  CHECK(b2 < a5);
  // Its writes are done when it exits (it counts a reaction once the node confirmed it).
  CHECK(get("derived.a") == value(10));
  CHECK(get("derived.b") == value(4));
}

TEST_CASE_FIXTURE(example_node, "examples: watch_reactor fetches what exists, skips non-numbers") {
  set("sensors.old", 2.5);  // there before the reactor: the fetch reacts to it
  auto reactor = start_reactor({"--count", "2"});
  set("sensors.name", "not a number");
  set("sensors.deep.x", 7);
  std::optional<int> code = reactor->wait_exit(10s);
  REQUIRE(code);
  CHECK_MESSAGE(*code == 0, reactor->stdout_text() << reactor->stderr_text());
  CHECK(get("derived.old") == value(5.0));
  CHECK(get("derived.deep.x") == value(14));
  CHECK(get("derived.name").is_nil());
}

TEST_CASE_FIXTURE(example_node, "examples: watch_reactor exits at once when the node is killed") {
  auto reactor = start_reactor();
  set("sensors.a", 21);
  REQUIRE(reactor->wait_for_stdout_text("reacted: sensors.a = 21 -> derived.a = 42", 5s));
  REQUIRE(::kill(node.pid(), SIGKILL) == 0);
  auto killed = steady::now();
  std::optional<int> code = reactor->wait_exit(2s);
  REQUIRE_MESSAGE(code, "watch_reactor still runs 2 s after the node was killed");
  MESSAGE("watch_reactor exited "
          << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - killed).count()
          << " ms after the kill");
  CHECK(*code != 0);
  CHECK_MESSAGE(reactor->stdout_text().find("node gone") != std::string::npos,
                reactor->stdout_text() << reactor->stderr_text());
}

}  // namespace moatkv::test
