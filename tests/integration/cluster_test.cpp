// Multi-node replication with real mosquitto and serf processes (issue 3). These tests prove:
//   * over MQTT, writes made on any of three nodes reach all of them; a node started later
//     fetches the whole tree from a peer; a node stopped and restarted without state catches up
//     (writes made while it was down included) and its own later writes still replicate;
//   * after a partition (one node's broker link cut through a tcp_proxy) with writes on both
//     sides -- distinct keys, the same keys with conflicting values, a delete racing a modify
//     -- and a heal, all nodes end with identical trees (values and full chains) within a
//     bounded time, the conflicts resolved to one value everywhere and no acknowledged write to
//     a distinct key lost; once for a short link blip, once for a split of several ping cycles;
//   * over Serf, two nodes replicate, including values larger than one Serf event (chunked);
//   * garbage on the backend topics (random bytes, wrong types, absurd multipart parts,
//     ill-typed updates, infos and pings) neither stops a node nor stops replication;
//   * `moatkv bench watch` runs across two nodes and reports p50_us (smoke test only).
// Convergence, join and catch-up times are measured and printed with MESSAGE. Every process is
// owned by an RAII object and stopped by PID; all traffic stays on 127.0.0.1. To investigate a
// failure, set MOATKV_TEST_LOG_DIR=DIR (node logs and the partition tests' broker traffic are
// saved there) and MOATKV_TEST_NODE_DEBUG=1 (debug logging).
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "messages/msgpack_codec.hpp"
#include "messages/path_syntax.hpp"
#include "tests/integration/cluster_helpers.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "tests/integration/tcp_proxy.hpp"

namespace moatkv::test {

namespace {

using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

constexpr auto replicate_timeout = 15s;  // one write reaching every node
constexpr auto converge_timeout = 60s;   // trees identical after a join, restart or heal

milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(clock_type::now() - t0);
}

std::string ms_text(milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

// Client ports picked up front so that every node's hostmap names every peer (restarts too).
std::map<std::string, uint16_t> pick_ports(const std::vector<std::string>& names) {
  std::map<std::string, uint16_t> ports;
  for (const auto& n : names) {
    uint16_t p;
    do {
      p = free_loopback_port();
    } while ([&] {
      for (const auto& [k, v] : ports)
        if (v == p) return true;
      return false;
    }());
    ports[n] = p;
  }
  return ports;
}

// Checks that every node's final tree has `expected` at every listed path.
void check_values(const std::vector<cluster_node*>& nodes, const std::vector<tree_snapshot>& trees,
                  const std::map<std::string, value>& expected) {
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& [path, v] : expected) {
      auto it = trees[i].find(path);
      INFO("node " << nodes[i]->name() << " path " << path);
      if (it == trees[i].end()) {
        FAIL_CHECK("acknowledged write lost: " << path << " = " << debug_string(v));
        continue;
      }
      CHECK_MESSAGE(it->second.data == v,
                    "value " << debug_string(it->second.data) << ", wrote " << debug_string(v));
    }
}

void check_absent(const std::vector<cluster_node*>& nodes, const std::vector<tree_snapshot>& trees,
                  const std::string& path) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto it = trees[i].find(path);
    CHECK_MESSAGE(it == trees[i].end(), "node " << nodes[i]->name() << " still has " << path
                                                << " = " << debug_string(it->second.data));
  }
}

void report_tocks(const std::vector<cluster_node*>& nodes, const convergence& c) {
  for (size_t i = 1; i < c.trees.size(); ++i) {
    std::string td = tock_diff(c.trees[0], c.trees[i]);
    WARN_MESSAGE(td.empty(), "entry tocks differ between " << nodes[0]->name() << " and "
                                                           << nodes[i]->name() << ":\n"
                                                           << td);
  }
}

// Partition {n1, n2} | {n3} for at least `hold`, with writes on both sides; heal; require
// identical trees. `hold` shorter than a ping cycle: a broker link blip during which n3 never
// pings alone; several cycles: n3 pings on its own during the split (as in the original's
// captured partition runs).
void partition_scenario(milliseconds hold) {
  mosquitto_process broker;
  broker_capture capture(broker.port(), "partition-broker");
  tcp_proxy proxy(broker.port());  // n3's broker link
  temp_dir dir;
  auto ports = pick_ports({"n1", "n2", "n3"});
  cluster_node_config cfg;
  cfg.mqtt_uri = broker.uri();
  cfg.hostmap = ports;
  cluster_node_config cfg3 = cfg;
  cfg3.mqtt_uri = "mqtt://127.0.0.1:" + std::to_string(proxy.port());

  cluster_node n1(dir, "n1", ports["n1"], cfg, "init-n1");
  cluster_node n2(dir, "n2", ports["n2"], cfg);
  cluster_node n3(dir, "n3", ports["n3"], cfg3);
  std::vector<cluster_node*> all{&n1, &n2, &n3};

  std::map<std::string, value> acked;  // distinct keys: path -> value acknowledged
  for (const char* p : {"conflict.k", "conflict2.k", "dm1.x", "dm2.x", "todel.x"})
    set_value(n1, p, value("base"));
  set_value(n2, "keep.n2", value("before the split"));
  acked["keep.n2"] = value("before the split");
  convergence c0 = wait_converged(all, replicate_timeout);
  REQUIRE_MESSAGE(c0.converged, c0.detail << logs_of(all));
  REQUIRE(c0.trees[2].count("dm2.x") == 1);

  // Partition {n1, n2} | {n3}.
  size_t log_mark = n3.log().size();
  auto t_cut = clock_type::now();
  proxy.cut();
  REQUIRE_MESSAGE(poll_until(
                      all, [&] { return n3.log_has("backend link down", log_mark); }, 15s),
                  "n3 did not notice the cut\n"
                      << n3.log_tail());
  auto write = [&](cluster_node& n, const std::string& p, const value& v) {
    INFO("set " << p << " on " << n.name());
    REQUIRE_NOTHROW(set_value(n, p, v));
  };
  auto del = [&](cluster_node& n, const std::string& p) {
    INFO("delete " << p << " on " << n.name());
    REQUIRE_NOTHROW(delete_value(n, p));
  };
  del(n1, "dm1.x");                            // delete, then the other side modifies
  write(n3, "dm2.x", value("mod-by-n3"));      // modify, then the other side deletes
  write(n1, "part.n1only", value("n1-side"));  // distinct keys on every node
  write(n3, "part.n3only", value("n3-side"));
  write(n2, "part.n2only", value(map{{value("x"), value("from")}, {value("y"), value(1)}}));
  write(n1, "conflict.k", value("from-n1"));  // the same key on both sides
  write(n3, "conflict.k", value("from-n3"));
  write(n2, "conflict2.k", value("from-n2"));
  write(n3, "conflict2.k", value("from-n3"));
  write(n3, "conflict2.k", value("from-n3-again"));
  del(n3, "todel.x");  // a one-sided delete
  del(n1, "dm2.x");
  write(n3, "dm1.x", value("mod-by-n3"));
  write(n3, "part.n3b", value(4.5));
  acked["part.n1only"] = value("n1-side");
  acked["part.n3only"] = value("n3-side");
  acked["part.n2only"] = value(map{{value("x"), value("from")}, {value("y"), value(1)}});
  acked["part.n3b"] = value(4.5);
  // n2 sees n1's write (same side); nothing crossed the cut.
  CHECK(wait_value_everywhere({&n1, &n2}, "part.n1only", value("n1-side"), replicate_timeout));
  REQUIRE_MESSAGE(!get_value(n3, "part.n1only"), "the cut let n1's write through");
  REQUIRE_MESSAGE(!get_value(n1, "part.n3only"), "the cut let n3's write through");
  REQUIRE(get_value(n3, "conflict.k") == std::optional<value>(value("from-n3")));
  REQUIRE(get_value(n1, "conflict.k") == std::optional<value>(value("from-n1")));

  // Keep the partition for `hold` (its length is the scenario; nothing waits on it to sync).
  poll_until(
      all, [&] { return since(t_cut) >= hold; }, hold + 1s);
  REQUIRE_MESSAGE(!get_value(n3, "part.n1only"), "the cut let n1's write through");
  MESSAGE("partition held for " << ms_text(since(t_cut)));

  // Heal and require identical trees everywhere.
  log_mark = n3.log().size();
  auto t_heal = clock_type::now();
  proxy.heal();
  bool relinked = poll_until(
      all, [&] { return n3.log_has("backend link up", log_mark); }, 30s);
  milliseconds relink_after = since(t_heal);
  CHECK_MESSAGE(relinked, "n3 did not reconnect to the broker\n" << n3.log_tail());
  convergence c = wait_converged(all, converge_timeout);
  milliseconds converged_after = since(t_heal);
  MESSAGE("heal: n3 back on the broker after "
          << ms_text(relink_after) << ", identical trees after " << ms_text(converged_after));
  REQUIRE_MESSAGE(c.converged, "no convergence within " << ms_text(converge_timeout)
                                                        << " after the heal; differences seen:\n"
                                                        << c.history_text() << logs_of(all, 80));
  if (converged_after > 20s) MESSAGE("slow convergence; differences seen:\n" << c.history_text());
  report_tocks(all, c);

  // The same-key conflicts resolved to one of the written values, the same everywhere.
  for (const auto& [key, choices] : std::map<std::string, std::vector<std::string>>{
           {"conflict.k", {"from-n1", "from-n3"}}, {"conflict2.k", {"from-n2", "from-n3-again"}}}) {
    auto it = c.trees[0].find(key);
    REQUIRE_MESSAGE(it != c.trees[0].end(), key << " vanished");
    bool one_of = false;
    for (const auto& ch : choices) one_of = one_of || it->second.data == value(ch);
    CHECK_MESSAGE(one_of, key << " resolved to " << debug_string(it->second.data));
    MESSAGE(key << " resolved to " << debug_string(it->second.data) << " on every node");
  }
  for (std::string key : {"dm1.x", "dm2.x"}) {
    auto it = c.trees[0].find(key);
    MESSAGE(key << " (delete vs modify) resolved to "
                << (it == c.trees[0].end() ? std::string("deleted") : debug_string(it->second.data))
                << " on every node");
  }
  // No acknowledged write to a distinct key was lost; the one-sided delete held.
  check_values(all, c.trees, acked);
  check_absent(all, c.trees, "todel.x");

  // Replication still works after the heal, in both directions.
  write(n3, "after.n3", value("after the heal"));
  write(n1, "after.n1", value("after the heal"));
  CHECK(wait_value_everywhere(all, "after.n3", value("after the heal"), replicate_timeout));
  CHECK(wait_value_everywhere(all, "after.n1", value("after the heal"), replicate_timeout));
}

}  // namespace

TEST_SUITE("cluster") {
  TEST_CASE(
      "cluster: three nodes over MQTT replicate; a late joiner and a restarted node catch "
      "up") {
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"n1", "n2", "n3", "n4"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.hostmap = ports;

    auto n1 = std::make_unique<cluster_node>(dir, "n1", ports["n1"], cfg, "init-n1");
    auto n2 = std::make_unique<cluster_node>(dir, "n2", ports["n2"], cfg);
    auto n3 = std::make_unique<cluster_node>(dir, "n3", ports["n3"], cfg);
    MESSAGE("join times: n2 " << ms_text(n2->ready_after()) << ", n3 "
                              << ms_text(n3->ready_after()));
    std::vector<cluster_node*> three{n1.get(), n2.get(), n3.get()};

    // Writes on each node are visible on all three.
    set_value(*n1, "c.n1", value("from-n1"));
    set_value(*n2, "c.n2", value(2));
    set_value(*n3, "c.n3", value(map{{value("a"), value(1)}, {value("b"), value(array{})}}));
    auto t_write = clock_type::now();
    for (auto [writer, p] : std::vector<std::pair<cluster_node*, std::string>>{
             {n1.get(), "c.n1"}, {n2.get(), "c.n2"}, {n3.get(), "c.n3"}}) {
      std::optional<value> want = get_value(*writer, p);
      REQUIRE(want);
      CHECK_MESSAGE(wait_value_everywhere(three, p, want, replicate_timeout),
                    p << " did not reach all nodes\n"
                      << logs_of(three));
    }
    MESSAGE("writes on three nodes replicated in " << ms_text(since(t_write)));
    convergence c3 = wait_converged(three, replicate_timeout);
    REQUIRE_MESSAGE(c3.converged, c3.detail << logs_of(three));

    // A fourth node started later gets the whole tree.
    auto n4 = std::make_unique<cluster_node>(dir, "n4", ports["n4"], cfg);
    std::vector<cluster_node*> four{n1.get(), n2.get(), n3.get(), n4.get()};
    convergence c4 = wait_converged(four, converge_timeout);
    MESSAGE("late joiner n4: serving after " << ms_text(n4->ready_after()) << ", identical trees "
                                             << ms_text(c4.took) << " later");
    REQUIRE_MESSAGE(c4.converged, c4.detail << logs_of(four));
    CHECK(c4.trees[3].size() == c3.trees[0].size());
    report_tocks(four, c4);

    // Stop n2; write (and overwrite and delete) while it is down; restart it without state.
    CHECK(n2->stop() == 0);
    n2.reset();
    set_value(*n1, "down.a", value("while n2 was down"));
    set_value(*n3, "down.b", value(array{value(1), value(2), value(3)}));
    set_value(*n4, "c.n2", value(22));  // overwrites n2's own key
    delete_value(*n1, "c.n3");
    std::vector<cluster_node*> others{n1.get(), n3.get(), n4.get()};
    REQUIRE_MESSAGE(wait_value_everywhere(others, "c.n3", std::nullopt, replicate_timeout),
                    logs_of(others));
    REQUIRE_MESSAGE(
        wait_value_everywhere(others, "down.a", value("while n2 was down"), replicate_timeout),
        logs_of(others));
    auto t_restart = clock_type::now();
    n2 = std::make_unique<cluster_node>(dir, "n2", ports["n2"], cfg);
    four = {n1.get(), n2.get(), n3.get(), n4.get()};
    convergence cr = wait_converged(four, converge_timeout);
    MESSAGE("restarted n2: serving after " << ms_text(n2->ready_after())
                                           << ", identical trees after "
                                           << ms_text(since(t_restart)));
    REQUIRE_MESSAGE(cr.converged, cr.detail << logs_of(four));
    check_values(four, cr.trees,
                 {{"c.n1", value("from-n1")},
                  {"c.n2", value(22)},
                  {"down.a", value("while n2 was down")},
                  {"down.b", value(array{value(1), value(2), value(3)})}});
    check_absent(four, cr.trees, "c.n3");

    // The restarted node's own writes still replicate (its ticks continue past the old ones).
    set_value(*n2, "after.n2", value("written after the restart"));
    set_value(*n2, "c.n1", value("overwritten by the restarted n2"));
    CHECK_MESSAGE(wait_value_everywhere(four, "after.n2", value("written after the restart"),
                                        replicate_timeout),
                  "a write on the restarted n2 did not replicate\n"
                      << logs_of(four));
    CHECK_MESSAGE(wait_value_everywhere(four, "c.n1", value("overwritten by the restarted n2"),
                                        replicate_timeout),
                  "an overwrite on the restarted n2 did not replicate\n"
                      << logs_of(four));
    convergence cf = wait_converged(four, replicate_timeout);
    CHECK_MESSAGE(cf.converged, cf.detail << logs_of(four));
  }

  TEST_CASE(
      "cluster: a node killed with SIGKILL comes back from its state directory and catches "
      "up") {
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"n1", "n2"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.hostmap = ports;
    cluster_node_config cfg2 = cfg;
    cfg2.state_dir = dir.file("n2-state");

    cluster_node n1(dir, "n1", ports["n1"], cfg, "init-n1");
    auto n2 = std::make_unique<cluster_node>(dir, "n2", ports["n2"], cfg2);
    std::vector<cluster_node*> both{&n1, n2.get()};
    set_value(n1, "s.n1", value("from-n1"));
    set_value(*n2, "s.n2", value("from-n2"));
    set_value(*n2, "s.gone", value("deleted while n2 is down"));
    set_value(*n2, "s.n2b", value("n2's last write"));
    convergence c0 = wait_converged(both, replicate_timeout);
    REQUIRE_MESSAGE(c0.converged, c0.detail << logs_of(both));

    // SIGKILL: no clean shutdown, the state directory is all n2 keeps.
    ::kill(n2->pid(), SIGKILL);
    n2.reset();
    set_value(n1, "s.down", value("written while n2 was down"));
    set_value(n1, "s.n2", value("overwritten by n1"));
    delete_value(n1, "s.gone");

    auto t_restart = clock_type::now();
    n2 = std::make_unique<cluster_node>(dir, "n2", ports["n2"], cfg2);
    both = {&n1, n2.get()};
    // Ready on its own data at once (no fetch), then the recovery brings what it missed.
    CHECK(get_value(*n2, "s.n2b") == std::optional<value>(value("n2's last write")));
    convergence c1 = wait_converged(both, converge_timeout);
    MESSAGE("n2 from its state directory: serving after " << ms_text(n2->ready_after())
                                                          << ", identical trees after "
                                                          << ms_text(since(t_restart)));
    REQUIRE_MESSAGE(c1.converged, c1.detail << c1.history_text() << logs_of(both));
    check_values(both, c1.trees,
                 {{"s.n1", value("from-n1")},
                  {"s.n2", value("overwritten by n1")},
                  {"s.n2b", value("n2's last write")},
                  {"s.down", value("written while n2 was down")}});
    check_absent(both, c1.trees, "s.gone");

    // Its ticks continue past the ones it used before the kill, so its writes replicate.
    set_value(*n2, "s.after", value("written after the restart"));
    CHECK_MESSAGE(wait_value_everywhere(both, "s.after", value("written after the restart"),
                                        replicate_timeout),
                  logs_of(both));
  }

  TEST_CASE(
      "cluster: after a broker link blip (shorter than a ping cycle) a node's writes merge "
      "deterministically") {
    partition_scenario(0ms);
  }

  TEST_CASE(
      "cluster: after a partition of several ping cycles the writes of both sides merge "
      "deterministically") {
    partition_scenario(8s);
  }

  TEST_CASE("cluster: two nodes over Serf replicate, values larger than one Serf event too") {
    serf_agent_process a1;
    serf_agent_process::options o2;
    o2.join = a1.bind_port();
    serf_agent_process a2(o2);
    REQUIRE(a1.wait_members(2));
    REQUIRE(a2.wait_members(2));
    temp_dir dir;
    auto ports = pick_ports({"s1", "s2"});
    cluster_node_config cfg;
    cfg.backend = "serf";
    cfg.hostmap = ports;
    cluster_node_config cfg1 = cfg, cfg2 = cfg;
    cfg1.serf_rpc_port = a1.rpc_port();
    cfg2.serf_rpc_port = a2.rpc_port();

    cluster_node s1(dir, "s1", ports["s1"], cfg1, "init-s1");
    set_value(s1, "before.join", value("fetched over the client protocol"));
    cluster_node s2(dir, "s2", ports["s2"], cfg2);
    MESSAGE("serf join: s2 serving after " << ms_text(s2.ready_after()));
    std::vector<cluster_node*> both{&s1, &s2};
    CHECK(get_value(s2, "before.join") ==
          std::optional<value>(value("fetched over the client protocol")));

    std::string big1, big2;
    std::mt19937 rng(42);
    for (int i = 0; i < 5000; ++i) big1 += static_cast<char>('a' + rng() % 26);
    for (int i = 0; i < 3000; ++i) big2 += static_cast<char>('A' + rng() % 26);
    set_value(s1, "small.s1", value(1));
    set_value(s1, "big.s1", value(big1));
    set_value(s2, "small.s2", value("two"));
    set_value(s2, "big.s2", value(map{{value("text"), value(big2)}, {value("n"), value(3)}}));
    auto t0 = clock_type::now();
    CHECK_MESSAGE(wait_value_everywhere(both, "big.s1", value(big1), replicate_timeout),
                  "the 5000-byte value from s1 did not reach s2\n"
                      << logs_of(both));
    CHECK_MESSAGE(
        wait_value_everywhere(both, "big.s2",
                              value(map{{value("text"), value(big2)}, {value("n"), value(3)}}),
                              replicate_timeout),
        "the 3000-byte value from s2 did not reach s1\n"
            << logs_of(both));
    convergence c = wait_converged(both, replicate_timeout);
    MESSAGE("serf: large values replicated, trees identical after " << ms_text(since(t0)));
    CHECK_MESSAGE(c.converged, c.detail << logs_of(both));
    if (c.converged) CHECK(c.trees[0].count("small.s2") == 1);
  }

  TEST_CASE("cluster: garbage on the backend topics neither stops a node nor replication") {
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"n1", "n2"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.hostmap = ports;
    cluster_node n1(dir, "n1", ports["n1"], cfg, "init-n1");
    cluster_node n2(dir, "n2", ports["n2"], cfg);
    std::vector<cluster_node*> both{&n1, &n2};
    set_value(n1, "before.garbage", value(1));
    REQUIRE(wait_value_everywhere(both, "before.garbage", value(1), replicate_timeout));

    auto m = [](std::initializer_list<map_item> items) { return value(map(items)); };
    auto s = [](const char* t) { return value(t); };
    auto raw = [](std::initializer_list<int> bytes) {
      std::string b;
      for (int x : bytes) b += static_cast<char>(x);
      return b;
    };
    std::vector<std::pair<std::string, std::string>> payloads;  // (label, bytes)
    auto add = [&](const std::string& label, const value& v) {
      payloads.emplace_back(label, encode(v));
    };
    std::mt19937 rng(1234);
    for (int i = 0; i < 4; ++i) {
      std::string b;
      size_t len = 1 + rng() % 200;
      for (size_t k = 0; k < len; ++k) b += static_cast<char>(rng() & 0xff);
      payloads.emplace_back("random bytes " + std::to_string(i), b);
    }
    payloads.emplace_back("reserved byte 0xc1", raw({0xc1}));
    payloads.emplace_back("map32 claiming 2^32-1 pairs", raw({0xdf, 0xff, 0xff, 0xff, 0xff}));
    payloads.emplace_back("array32 claiming 2^32-1 items", raw({0xdd, 0xff, 0xff, 0xff, 0xff}));
    payloads.emplace_back("str32 claiming 4 GB", raw({0xdb, 0xff, 0xff, 0xff, 0xff, 0x41}));
    payloads.emplace_back("truncated map", encode(m({{s("node"), s("evil")}})).substr(0, 4));
    payloads.emplace_back("deeply nested arrays", std::string(100000, '\x91'));
    payloads.emplace_back("empty payload", "");
    add("int", value(42));
    add("string", s("hello"));
    add("array", value(array{value(1), s("two")}));
    add("nil", value());
    add("bin", value(bin{"\x01\x02"}));
    add("map with int keys", m({{value(1), value(2)}}));
    // Multipart parts with absurd indexes / counts, and ill-typed parts.
    add("part index 2^31",
        m({{s("_p0"), value(array{s("evil"), value(1), value(2147483647), value(bin{"x"})})}}));
    add("part index -2^40",
        m({{s("_p0"),
            value(array{s("evil"), value(2), value(-(int64_t{1} << 40)), value(bin{"x"})})}}));
    add("info missing huge range",
        m({{s("node"), s("evil")},
           {s("missing"),
            m({{s("n1"), value(array{value(array{value(1), value(int64_t{1} << 62)})})}})}}));
    add("info known huge range",
        m({{s("node"), s("evil")},
           {s("known"),
            m({{s("n2"), value(array{value(array{value(1), value(int64_t{1} << 62)})})}})}}));

    add("part index int64 min",
        m({{s("_p0"), value(array{s("evil"), value(3), value(INT64_MIN), value(bin{"x"})})}}));
    add("part index uint64 max",
        m({{s("_p0"), value(array{s("evil"), value(4), value(UINT64_MAX), value(bin{"x"})})}}));
    add("part index 0",
        m({{s("_p0"), value(array{s("evil"), value(5), value(0), value(bin{"x"})})}}));
    add("part last of 1 with garbage",
        m({{s("_p0"), value(array{s("evil"), value(6), value(-1), value(bin{"\xc1\xc1"})})}}));
    add("part last of 1 decoding to an int",
        m({{s("_p0"), value(array{s("evil"), value(7), value(-1), value(bin{"\x05"})})}}));
    add("part data str", m({{s("_p0"), value(array{s("evil"), value(8), value(-1), s("x")})}}));
    add("part too short", m({{s("_p0"), value(array{s("evil")})}}));
    add("part not an array", m({{s("_p0"), value(5)}}));
    add("part name int", m({{s("_p0"), value(array{value(1), value(1), value(1), value(bin{})})}}));
    // Updates with ill-typed fields.
    add("update path int", m({{s("node"), s("evil")},
                              {s("tick"), value(1)},
                              {s("path"), value(5)},
                              {s("value"), value(1)},
                              {s("tock"), value(3)}}));
    add("update path str", m({{s("node"), s("evil")},
                              {s("tick"), value(2)},
                              {s("path"), s("a.b")},
                              {s("value"), value(1)}}));
    add("update path nil", m({{s("node"), s("evil")},
                              {s("tick"), value(3)},
                              {s("path"), value()},
                              {s("value"), value(1)}}));
    add("update path map", m({{s("node"), s("evil")},
                              {s("tick"), value(4)},
                              {s("path"), m({{s("a"), value(1)}})},
                              {s("value"), value(1)}}));
    add("update no path",
        m({{s("node"), s("evil")}, {s("tick"), value(5)}, {s("value"), value(1)}}));
    add("update node int", m({{s("node"), value(7)},
                              {s("tick"), value(1)},
                              {s("path"), parse_path("garbage.a")},
                              {s("value"), value(1)}}));
    add("update tick str", m({{s("node"), s("evil")},
                              {s("tick"), s("one")},
                              {s("path"), parse_path("garbage.b")},
                              {s("value"), value(1)}}));
    add("update tick negative", m({{s("node"), s("evil")},
                                   {s("tick"), value(-5)},
                                   {s("path"), parse_path("garbage.c")},
                                   {s("value"), value(1)}}));
    add("update prev str", m({{s("node"), s("evil")},
                              {s("tick"), value(6)},
                              {s("prev"), s("x")},
                              {s("path"), parse_path("garbage.d")},
                              {s("value"), value(1)}}));
    add("update chain int",
        m({{s("chain"), value(5)}, {s("path"), parse_path("garbage.e")}, {s("value"), value(1)}}));
    add("update tock str", m({{s("node"), s("evil")},
                              {s("tick"), value(7)},
                              {s("path"), parse_path("garbage.f")},
                              {s("tock"), s("late")}}));
    // Infos with ill-typed ranges.
    add("info missing str", m({{s("node"), s("evil")}, {s("missing"), s("all")}}));
    add("info missing ranges str",
        m({{s("node"), s("evil")}, {s("missing"), m({{s("n1"), s("1-5")}})}}));
    add("info missing range of strs",
        m({{s("node"), s("evil")},
           {s("missing"), m({{s("n1"), value(array{value(array{s("a"), s("b")})})}})}}));
    add("info missing 3-element range",
        m({{s("node"), s("evil")},
           {s("missing"),
            m({{s("n2"), value(array{value(array{value(1), value(2), value(3)})})}})}}));
    add("info missing reversed range",
        m({{s("node"), s("evil")},
           {s("missing"), m({{s("n1"), value(array{value(array{value(9), value(2)})})}})}}));
    add("info missing negative tick",
        m({{s("node"), s("evil")}, {s("missing"), m({{s("n2"), value(array{value(-3)})}})}}));
    add("info missing node int",
        m({{s("node"), s("evil")}, {s("missing"), m({{value(5), value(array{value(1)})}})}}));
    add("info known map of ints",
        m({{s("node"), s("evil")}, {s("known"), m({{s("n1"), value(3)}})}}));
    add("info deleted array", m({{s("node"), s("evil")}, {s("deleted"), value(array{value(1)})}}));
    add("info deleted float",
        m({{s("node"), s("evil")}, {s("deleted"), m({{s("n1"), value(array{value(1.5)})}})}}));
    add("info superseded nil", m({{s("node"), s("evil")}, {s("superseded"), value()}}));
    add("info ticks str", m({{s("node"), s("evil")}, {s("ticks"), m({{s("n1"), s("x")}})}}));
    add("info ticks array", m({{s("node"), s("evil")}, {s("ticks"), value(array{value(1)})}}));
    add("info node_drop map", m({{s("node"), s("evil")}, {s("node_drop"), m({})}}));
    add("info node int", m({{s("node"), value(3)}, {s("missing"), m({})}}));
    // Malformed ping-actor messages.
    add("ping no t", m({{s("node"), s("evil")}}));
    add("ping t int", m({{s("t"), value(1)}, {s("node"), s("evil")}}));
    add("ping t unknown", m({{s("t"), s("zap")}, {s("node"), s("evil")}}));
    add("ping without node", m({{s("t"), s("ping")}, {s("value"), value()}}));
    add("ping node int", m({{s("t"), s("ping")},
                            {s("node"), value(5)},
                            {s("value"), value()},
                            {s("history"), value(array{})}}));
    add("ping history str", m({{s("t"), s("ping")},
                               {s("node"), s("evil1")},
                               {s("value"), value()},
                               {s("history"), s("evil1")}}));
    add("ping history of ints", m({{s("t"), s("ping")},
                                   {s("node"), s("evil2")},
                                   {s("value"), value()},
                                   {s("history"), value(array{value(1), value(2)})}}));
    add("ping value map", m({{s("t"), s("ping")},
                             {s("node"), s("evil3")},
                             {s("value"), m({{s("a"), value(1)}})},
                             {s("history"), value(array{s("evil3")})}}));
    add("ping value of strs", m({{s("t"), s("ping")},
                                 {s("node"), s("evil4")},
                                 {s("value"), value(array{s("x"), s("y")})},
                                 {s("history"), value(array{s("evil4"), s("n1")})}}));
    add("hist empty history", m({{s("t"), s("hist")},
                                 {s("value"), value(array{value(1), value(2)})},
                                 {s("history"), value(array{})}}));
    add("hist history nil",
        m({{s("t"), s("hist")}, {s("value"), value()}, {s("history"), value()}}));
    add("init node int", m({{s("t"), s("init")}, {s("node"), value(9)}}));
    add("vers ill-typed", m({{s("t"), s("vers")},
                             {s("node"), s("evil")},
                             {s("cycle"), s("fast")},
                             {s("gap"), value(-1)},
                             {s("nodes"), s("x")},
                             {s("splits"), value()},
                             {s("n_hosts"), value(array{})},
                             {s("version"), s("999")}}));
    add("vers version str only", m({{s("t"), s("vers")}, {s("version"), s("x")}}));
    add("vers invalid config", m({{s("t"), s("vers")},
                                  {s("node"), s("evil")},
                                  {s("cycle"), value(0)},
                                  {s("gap"), value(5)},
                                  {s("nodes"), value(-3)},
                                  {s("splits"), value(0)},
                                  {s("n_hosts"), value(0)},
                                  {s("version"), value(1000)},
                                  {s("force_in"), value(0)}}));

    // Publish every payload on every replication topic with mosquitto_pub.
    const std::string mosquitto_pub = find_program("mosquitto_pub");
    auto t0 = clock_type::now();
    int published = 0;
    std::optional<std::string> first_failure;
    for (size_t i = 0; i < payloads.size(); ++i) {
      std::string file = dir.write("garbage" + std::to_string(i), payloads[i].second);
      for (const char* topic : {"moat/kv/update", "moat/kv/info", "moat/kv/ping"}) {
        std::vector<std::string> argv{
            mosquitto_pub, "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t", topic};
        if (payloads[i].second.empty())
          argv.push_back("-n");
        else
          argv.insert(argv.end(), {"-f", file});
        child_process::options popts;
        popts.capture_stderr = true;
        child_process pub(argv, popts);
        auto rc = pub.wait_exit(10s);
        INFO(payloads[i].first << " on " << std::string(topic) << ": exit "
                               << (rc ? std::to_string(*rc) : "timeout") << " " << pub.stdout_text()
                               << pub.stderr_text());
        REQUIRE(rc == std::optional<int>(0));
        ++published;
        for (cluster_node* n : both) n->pump();
        for (cluster_node* n : both) {
          // A node whose replication actor failed may keep serving clients: look for that too.
          REQUIRE_MESSAGE(n->running(), n->name() << " died after '" << payloads[i].first << "' on "
                                                  << topic << "\n"
                                                  << n->log_tail(30));
          bool failed = n->log_has("[critical]") || n->log_has("[error]");
          if (failed && !first_failure) {
            first_failure = n->name() + " logged a failure, first seen after publishing '" +
                            payloads[i].first + "' on " + topic;
            MESSAGE(*first_failure << "\n" << n->log_tail(8));
          }
        }
      }
    }
    MESSAGE("published " << published << " garbage messages in " << ms_text(since(t0)));
    CHECK_MESSAGE(!first_failure, first_failure.value_or(""));

    // Both nodes keep serving clients and replicate later writes, in both directions.
    for (cluster_node* n : both) {
      INFO("node " << n->name() << "\n" << n->log_tail(30));
      REQUIRE(n->running());
      CHECK_NOTHROW(get_value(*n, "before.garbage"));
    }
    set_value(n1, "after.garbage.n1", value("still replicating"));
    set_value(n2, "after.garbage.n2", value("still replicating"));
    REQUIRE_MESSAGE(wait_value_everywhere(both, "after.garbage.n1", value("still replicating"),
                                          replicate_timeout),
                    "no replication after the garbage ("
                        << first_failure.value_or("no failure logged") << ")\n"
                        << logs_of(both, 12));
    CHECK_MESSAGE(wait_value_everywhere(both, "after.garbage.n2", value("still replicating"),
                                        replicate_timeout),
                  logs_of(both));
    // Some garbage only bites when the ping actor next uses what it stored (comparing values,
    // picking a successor): watch both nodes through a few ping cycles, then write once more.
    auto watch_until =
        clock_type::now() + 3 * milliseconds(static_cast<int>(cfg.ping_cycle * 1000));
    bool died = false;
    poll_until(
        both,
        [&] {
          died = !n1.running() || !n2.running();
          return died || clock_type::now() >= watch_until;
        },
        20s);
    REQUIRE_MESSAGE(!died, "a node died in the ping cycles after the garbage\n" << logs_of(both));
    set_value(n2, "final.n2", value(3));
    CHECK_MESSAGE(wait_value_everywhere(both, "final.n2", value(3), replicate_timeout),
                  logs_of(both));
    convergence c = wait_converged(both, replicate_timeout);
    CHECK_MESSAGE(c.converged, c.detail << logs_of(both));
    if (c.converged)
      for (const auto& [p, e] : c.trees[0])
        CHECK_MESSAGE(p.rfind("garbage", 0) != 0,
                      "a garbage update was applied: " << p << " = " << debug_string(e.data));
  }

  TEST_CASE("cluster: a joining node fetches from kv.hostmap without waiting for a ping") {
    // A 30 s ping cycle: through the ping protocol alone n2 would wait for n1's next ping
    // (up to cycle + 2 gap). With the hostmap it asks n1 as soon as its broker link is up.
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"h0", "h1", "h2"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.ping_cycle = 30;
    cfg.ping_gap = 2;
    cfg.hostmap = ports;  // h0 (asked first) never starts: a peer that does not serve is skipped
    cluster_node h1(dir, "h1", ports["h1"], cfg, "init-h1");
    // h1 serves before its broker link is up (it has data); h2's first update must not go out
    // before h1 listens, since with a 30 s cycle no ping would repair it within the test.
    REQUIRE(poll_until({&h1}, [&] { return h1.log_has("gossip h1: backend link up"); }, 10s));
    set_value(h1, "joined.x", value("from h1"));
    cluster_node h2(dir, "h2", ports["h2"], cfg);
    MESSAGE("h2 serving after " << ms_text(h2.ready_after()));
    CHECK(h2.ready_after() < 10s);
    CHECK(get_value(h2, "joined.x") == std::optional<value>(value("from h1")));
    // And it replicates like any member.
    set_value(h2, "joined.y", value(2));
    CHECK(wait_value_everywhere({&h1, &h2}, "joined.y", value(2), replicate_timeout));
  }

  TEST_CASE("cluster: writers wait while the broker lags, so no update is dropped") {
    // A queue of 3000 publications at most: 40 000 pipelined sets outrun the broker (about
    // 30 000/s here) and overflowed it before the writers were held back at `high`.
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"q1", "q2"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.hostmap = ports;
    cfg.mqtt_extra = "      queue: {max: 3000, high: 1000, low: 200}\n";
    cluster_node q1(dir, "q1", ports["q1"], cfg, "init-q1");
    // q1 serves before its broker link is up (it has data): writes then would be dropped for
    // another reason than the one this test is about.
    REQUIRE(poll_until({&q1}, [&] { return q1.log_has("gossip q1: backend link up"); }, 10s));
    cluster_node q2(dir, "q2", ports["q2"], cfg);
    command_result r =
        run_moatkv({"-h", "127.0.0.1", "-p", std::to_string(q1.port()), "bench", "set",
                    "--connections", "4", "--pipeline", "64", "--count", "40000", "--converge",
                    std::to_string(q2.port()), "--wait", "60", "--json"},
                   std::nullopt, 90s);
    q1.pump();
    q2.pump();
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe() << "\n" << logs_of({&q1, &q2}));
    MESSAGE("bench set with a 3000-publication queue: " << r.out);
    CHECK(r.out.find("\"converged_s\"") != std::string::npos);
    CHECK_MESSAGE(!q1.log_has("dropping the oldest"), q1.log_tail());
  }

  TEST_CASE("cluster: bench watch across two nodes reports p50_us (smoke test)") {
    mosquitto_process broker;
    temp_dir dir;
    auto ports = pick_ports({"b1", "b2"});
    cluster_node_config cfg;
    cfg.mqtt_uri = broker.uri();
    cfg.hostmap = ports;
    cluster_node b1(dir, "b1", ports["b1"], cfg, "init-b1");
    cluster_node b2(dir, "b2", ports["b2"], cfg);
    command_result r = run_moatkv(
        {"-h", "127.0.0.1", "-p", std::to_string(b1.port()), "bench", "watch", "--watch-host",
         "127.0.0.1", "--watch-port", std::to_string(b2.port()), "--count", "50", "--json"},
        std::nullopt, 60s);
    REQUIRE_MESSAGE(r.exit_code == 0, r.describe() << "\n" << logs_of({&b1, &b2}));
    std::smatch m;
    REQUIRE_MESSAGE(std::regex_search(r.out, m, std::regex(R"re("p50_us":\s*([0-9.]+))re")),
                    r.describe());
    MESSAGE("bench watch b1 -> b2: " << r.out);
    CHECK(std::stod(m[1].str()) > 0);
  }
}

}  // namespace moatkv::test
