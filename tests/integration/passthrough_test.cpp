// msg_send / msg_monitor (server-internals §7.8): a client publishes on the node's backend and
// another client's monitor sees it, decoded or raw; a monitor overlapping the node's own topics
// sees each message once; a standalone node refuses with a clear error and keeps serving.
#include <doctest/doctest.h>

#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "transport/client_connection.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {

std::vector<std::string> mqtt_node_args(const mosquitto_process& broker) {
  return {"-I", "init",
          "-C", "kv.server.backend=mqtt",
          "-C", "kv.server.mqtt.uri=" + broker.uri(),
          "-C", "kv.server.ping.cycle=2",
          "-C", "kv.server.ping.gap=0.5"};
}

// Read messages of stream `seq` until `pred` holds for one (returns it) or the deadline passes.
std::optional<value> read_until(client_connection& c, int64_t seq,
                                const std::function<bool(const value&)>& pred,
                                std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  c.set_timeout(std::chrono::milliseconds(200));
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      value m = c.read_for(seq);
      if (pred(m)) return m;
    } catch (const client_error& e) {
      if (std::string(e.what()).find("timed out") == std::string::npos) throw;
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("passthrough: msg_monitor sees msg_send, decoded and raw") {
  mosquitto_process broker;
  node_process node("n1", mqtt_node_args(broker), 20s);
  client_connection mon(node.host(), node.port());
  client_connection snd(node.host(), node.port());
  int64_t seq = mon.send_request("msg_monitor", {{"topic", "test.x"}});
  REQUIRE(read_until(mon, seq, [](const value& m) { return m.find("state") != nullptr; }));
  // The subscription reaches the broker asynchronously: send until the monitor sees one.
  std::optional<value> got;
  for (int i = 0; i < 50 && !got; ++i) {
    snd.request("msg_send", {{"topic", array{"test", "x"}}, {"data", map{{"a", i}}}});
    got = read_until(
        mon, seq, [](const value& m) { return m.find("data") != nullptr; }, 200ms);
  }
  REQUIRE(got);
  CHECK(*got->find("topic") == value(array{"test", "x"}));
  CHECK(got->find("data")->is_map());
  snd.request("msg_send", {{"topic", array{"test", "x"}}, {"raw", bin{"\xc1"}}});
  auto bad = read_until(mon, seq, [](const value& m) { return m.find("error") != nullptr; });
  REQUIRE(bad);
  CHECK(*bad->find("raw") == value(bin{"\xc1"}));
  // The node keeps serving.
  CHECK(snd.request("get_tock", {}).find("tock"));
}

TEST_CASE("passthrough: a monitor overlapping the node's topics sees each update once") {
  mosquitto_process broker;
  node_process node("n1", mqtt_node_args(broker), 20s);
  client_connection mon(node.host(), node.port());
  client_connection w(node.host(), node.port());
  int64_t seq = mon.send_request("msg_monitor", {{"topic", array{"moat", "kv", "#"}}});
  REQUIRE(read_until(mon, seq, [](const value& m) { return m.find("state") != nullptr; }));
  // Wait until the monitor is live (it sees the node's own pings), then write twice.
  REQUIRE(read_until(
      mon, seq, [](const value& m) { return m.find("data") != nullptr; }, 15s));
  w.request("set_value", {{"path", value::make_path({"pt", "a"})}, {"value", 1}});
  w.request("set_value", {{"path", value::make_path({"pt", "b"})}, {"value", 2}});
  int seen_a = 0;
  auto is_update = [&](const value& m, const char* key) {
    const value* d = m.find("data");
    const value* p = d && d->is_map() ? d->find("path") : nullptr;
    return p && *p == value::make_path({"pt", key});
  };
  // pt.b is written after pt.a: once it arrived, every copy of pt.a has arrived too.
  REQUIRE(read_until(mon, seq, [&](const value& m) {
    if (is_update(m, "a")) ++seen_a;
    return is_update(m, "b");
  }));
  CHECK(seen_a == 1);
}

TEST_CASE("passthrough: a standalone node refuses msg_send with a clear error") {
  node_process node("solo");
  client_connection c(node.host(), node.port());
  CHECK_THROWS_WITH_AS(c.request("msg_send", {{"topic", "x"}, {"data", 1}}),
                       doctest::Contains("no backend"), server_error);
  CHECK(c.request("get_tock", {}).find("tock"));
}
