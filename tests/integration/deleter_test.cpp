// Tombstone purge through the deleter group (server-internals §2.6, §5.8): two nodes form the
// group (None, "actor", "del") = {nodes: [n1, n2]}; a deleted entry's tombstone is purged on
// both once the group agreed, and a live entry is untouched.
#include <doctest/doctest.h>

#include <thread>

#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "transport/client_connection.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {

std::vector<std::string> node_args(const mosquitto_process& broker) {
  return {"-C", "kv.server.backend=mqtt",   "-C", "kv.server.mqtt.uri=" + broker.uri(),
          "-C", "kv.server.ping.cycle=2",   "-C", "kv.server.ping.gap=0.5",
          "-C", "kv.server.delete.cycle=3", "-C", "kv.server.delete.gap=1"};
}

// Deleted ticks a node still tracks (get_state deleted).
size_t deleted_ticks(const node_process& n) {
  client_connection c(n.host(), n.port());
  value st = c.request("get_state", {{"deleted", true}});
  const value* d = st.find("deleted");
  size_t count = 0;
  if (d && d->is_map())
    for (const auto& [k, r] : d->as_map()) count += r.is_array() ? r.as_array().size() : 0;
  return count;
}

bool poll(const std::function<bool()>& cond, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    // A poll interval between rounds of questions to the nodes (the condition itself is
    // checked by asking them, never assumed after a fixed wait).
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return cond();
}

}  // namespace

TEST_CASE("deleter group: tombstones are purged on every member") {
  mosquitto_process broker;
  auto a1 = node_args(broker);
  a1.insert(a1.end(), {"-I", "init"});
  node_process n1("n1", a1, 20s);
  auto a2 = node_args(broker);
  a2.insert(a2.end(), {"-C", "kv.hostmap.n1=[127.0.0.1, " + std::to_string(n1.port()) + "]"});
  node_process n2("n2", a2, 40s);

  client_connection c(n1.host(), n1.port());
  c.request("set_internal", {{"path", value::make_path({"actor", "del"})},
                             {"value", map{{"nodes", array{"n1", "n2"}}}}});
  c.request("set_value", {{"path", value::make_path({"del", "keep"})}, {"value", 1}});
  c.request("set_value", {{"path", value::make_path({"del", "gone"})}, {"value", 2}});
  c.request("delete_value", {{"path", value::make_path({"del", "gone"})}});
  REQUIRE(poll([&] { return deleted_ticks(n2) > 0; }, 20s));  // n2 saw the deletion
  CHECK(poll([&] { return deleted_ticks(n1) == 0 && deleted_ticks(n2) == 0; }, 90s));
  client_connection c2(n2.host(), n2.port());
  CHECK(*c2.request("get_value", {{"path", value::make_path({"del", "keep"})}}).find("value") ==
        value(1));
}
