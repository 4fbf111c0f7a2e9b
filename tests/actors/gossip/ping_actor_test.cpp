// The ping actor (server-internals §4) against the original's captured traffic
// (cluster-mqtt-messages.tsv) and in simulated clusters: several instances on an in-memory
// broker that delivers every publication to every instance of the sender's partition group
// (the sender included) after a small latency, in simulated time with seeded randomness.
#include <doctest/doctest.h>
#include "tests/hex.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "actors/gossip/ping_actor.hpp"
#include "messages/msgpack_codec.hpp"

using namespace moatkv;
using moatkv::test::hex;
using moatkv::test::unhex;

namespace {

struct row {
  std::string run;  // "run1" / "run2"
  std::string broker;
  double time;
  std::string topic;
  std::string bytes;
};

// The actor topics' rows of the captured cluster traffic.
std::vector<row> actor_rows() {
  std::ifstream in(MOATKV_CONFORMANCE_DATA "/cluster-mqtt-messages.tsv");
  REQUIRE(in);
  std::string line;
  std::vector<row> out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() != 5 || (f[3] != "moat/kv/ping" && f[3] != "moat/kv/del")) continue;
    out.push_back({f[0].substr(0, 4), f[1], std::stod(f[2]), f[3], unhex(f[4])});
  }
  return out;
}

// The first captured payload on `topic` whose decoded map has these string fields.
std::string captured(const std::string& topic, std::vector<std::pair<std::string, value>> fields) {
  for (const auto& r : actor_rows()) {
    if (r.topic != topic) continue;
    value v = decode(r.bytes);
    bool ok = true;
    for (const auto& [k, want] : fields) {
      const value* got = v.find(k);
      ok = ok && got && *got == want;
    }
    if (ok) return r.bytes;
  }
  FAIL("no captured message on " << topic);
  return {};
}

// Deterministic [0, 1): xorshift64*.
struct rng {
  uint64_t s;
  double operator()() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<double>((s * 2685821657736338717ULL) >> 11) * 0x1.0p-53;
  }
};

value tt(int64_t tock, int64_t tick) {
  return value(array{tock, tick});
}

value names(std::vector<std::string> n) {
  array a;
  for (auto& s : n) a.emplace_back(s);
  return value(std::move(a));
}

value ping_msg(const std::string& node, value v, std::vector<std::string> hist) {
  return value(
      map{{"t", "ping"}, {"node", node}, {"value", std::move(v)}, {"history", names(hist)}});
}

value vers_msg(const std::string& node, int64_t version, value cycle = 10, value gap = 2) {
  return value(map{{"t", "vers"},
                   {"node", node},
                   {"cycle", cycle},
                   {"gap", gap},
                   {"nodes", 5},
                   {"splits", 4},
                   {"n_hosts", 10},
                   {"version", version},
                   {"force_in", 0}});
}

const char* type_of(const value& msg) {
  const value* t = msg.is_map() ? msg.find("t") : nullptr;
  return t && t->is_str() ? t->as_str().c_str() : "?";
}

struct timed_event {
  double at;
  ping_actor::event ev;
};

// One instance plus what it sent and emitted.
struct sim_node {
  std::string name;
  rng random;
  std::unique_ptr<ping_actor> actor;
  std::vector<std::pair<double, value>> sent;
  std::vector<timed_event> events;
  int group = 0;

  template <class E>
  std::vector<std::pair<double, E>> all(double from = 0) const {
    std::vector<std::pair<double, E>> out;
    for (const auto& e : events)
      if (e.at >= from)
        if (auto* x = std::get_if<E>(&e.ev)) out.emplace_back(e.at, *x);
    return out;
  }
  std::vector<std::pair<double, value>> sent_of(const std::string& t, double from = 0) const {
    std::vector<std::pair<double, value>> out;
    for (const auto& [at, m] : sent)
      if (at >= from && type_of(m) == t) out.emplace_back(at, m);
    return out;
  }
};

// The in-memory broker and the simulated clock.
struct sim {
  double now = 0;
  double latency = 0.004;
  std::vector<std::unique_ptr<sim_node>> nodes;
  struct delivery {
    double at;
    uint64_t seq;
    size_t to;
    std::string bytes;
  };
  std::vector<delivery> queue;
  uint64_t seq = 0;

  sim_node& add(const std::string& name, value val, ping_config cfg = ping_config::server_ping(),
                bool enabled = true, uint64_t seed = 0) {
    auto n = std::make_unique<sim_node>();
    n->name = name;
    n->random.s = seed ? seed : 0x9e3779b97f4a7c15ULL * (nodes.size() + 1);
    size_t idx = nodes.size();
    sim_node* np = n.get();
    ping_actor::hooks h;
    h.send = [this, idx](const value& msg) { publish(idx, msg); };
    h.on_event = [this, np](const ping_actor::event& ev) { np->events.push_back({now, ev}); };
    h.random = [np] { return np->random(); };
    n->actor = std::make_unique<ping_actor>(name, cfg, h, enabled);
    n->actor->set_value(std::move(val));
    nodes.push_back(std::move(n));
    return *nodes.back();
  }
  sim_node& operator[](const std::string& name) {
    for (auto& n : nodes)
      if (n->name == name) return *n;
    FAIL("no node " << name);
    return *nodes.front();
  }

  // MOATKV_PING_TRACE=1 prints the simulated broker traffic.
  bool trace = std::getenv("MOATKV_PING_TRACE") != nullptr;

  void publish(size_t from, const value& msg) {
    nodes[from]->sent.emplace_back(now, msg);
    if (trace) MESSAGE(now << " " << nodes[from]->name << ": " << debug_string(msg));
    std::string bytes = encode(msg);  // the owner packs with plain msgpack
    for (size_t to = 0; to < nodes.size(); ++to)
      if (nodes[to]->group == nodes[from]->group)
        queue.push_back({now + latency, seq++, to, bytes});
  }

  void run_until(double until) {
    for (int guard = 0; guard < 1000000; ++guard) {
      auto d = std::min_element(queue.begin(), queue.end(), [](const auto& a, const auto& b) {
        return a.at < b.at || (a.at == b.at && a.seq < b.seq);
      });
      double t_msg = d == queue.end() ? std::numeric_limits<double>::infinity() : d->at;
      double t_timer = std::numeric_limits<double>::infinity();
      size_t who = 0;
      for (size_t i = 0; i < nodes.size(); ++i)
        if (auto nd = nodes[i]->actor->next_deadline(); nd && *nd < t_timer) {
          t_timer = *nd;
          who = i;
        }
      double next = std::min(t_msg, t_timer);
      if (next > until) {
        now = until;
        return;
      }
      REQUIRE(next >= now - 1e-9);
      now = std::max(now, next);
      if (t_msg <= t_timer) {
        delivery dv = std::move(*d);
        queue.erase(d);
        auto problem = nodes[dv.to]->actor->receive(decode(dv.bytes), now);
        CHECK_MESSAGE(!problem, *problem);
      } else {
        nodes[who]->actor->on_timer(now);
      }
    }
    FAIL("simulation does not advance");
  }

  void start_all(double spacing = 0.37) {
    for (auto& n : nodes) {
      n->actor->start(now);
      run_until(now + spacing);
    }
  }
};

// Intervals during which each node was "it" (TagEvent until UntagEvent / DetagEvent).
struct it_interval {
  std::string node;
  double from, to;
};
std::vector<it_interval> it_intervals(const sim& s, double end) {
  std::vector<it_interval> out;
  for (const auto& n : s.nodes) {
    std::optional<double> open;
    for (const auto& e : n->events) {
      if (std::holds_alternative<ping_actor::tag_event>(e.ev)) {
        open = e.at;
      } else if (open && (std::holds_alternative<ping_actor::untag_event>(e.ev) ||
                          std::holds_alternative<ping_actor::detag_event>(e.ev))) {
        out.push_back({n->name, *open, e.at});
        open.reset();
      }
    }
    if (open) out.push_back({n->name, *open, end});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.from < b.from; });
  return out;
}

}  // namespace

// ---- Python ordering --------------------------------------------------------------------------

TEST_CASE("ping actor: python ordering of ping values") {
  CHECK(python_greater(tt(5, 1), tt(4, 99)) == true);
  CHECK(python_greater(tt(5, 1), tt(5, 2)) == false);
  CHECK(python_greater(tt(5, 2), tt(5, 1)) == true);
  CHECK(python_greater(value(array{5}), tt(5, 0)) == false);  // shorter is smaller
  CHECK(python_greater(tt(5, 0), value(array{5})) == true);
  CHECK(python_greater(value(array{1.5, 0}), tt(1, 9)) == true);  // numbers across kinds
  CHECK(python_greater(value(9007199254740993LL), value(9007199254740992.0)) == true);  // exact
  CHECK(python_greater(value(18446744073709551615ULL), value(-1)) == true);
  CHECK(python_greater(value(std::nan("")), value(1)) == false);
  CHECK(python_greater(value(1), value(std::nan(""))) == false);
  CHECK(python_greater(value("b"), value("a")) == true);
  CHECK(python_greater(value("\xc3\xa9"), value("z")) == true);  // code points, not locale
  CHECK(python_greater(value(array{nullptr, 2}), value(array{nullptr, 1})) == true);
  CHECK_FALSE(python_greater(value(array{nullptr}), value(array{1})).has_value());  // TypeError
  CHECK_FALSE(python_greater(value("a"), value(1)).has_value());
  CHECK_FALSE(python_greater(value(map{}), value(map{})).has_value());
}

TEST_CASE("ping actor: node list keeps asyncactor's NodeList rule") {
  node_list n{{}, 3};
  for (const char* x : {"a", "a", "b", "a", "c", "d", "c"}) n.push_front(x);
  CHECK(n.names == std::vector<std::string>{"c", "d"});  // the doctest in nodelist.py
  node_list u{{}, 0};
  for (const char* x : {"a", "b", "c", "d", "b"}) u.push_front(x);
  CHECK(u.names == std::vector<std::string>{"b", "d", "c", "a"});
}

// ---- Wire format ------------------------------------------------------------------------------

TEST_CASE("ping actor: init and vers encode like the captured ones") {
  std::vector<value> sent;
  ping_actor::hooks h;
  h.send = [&](const value& m) { sent.push_back(m); };
  h.random = [] { return 0.5; };

  ping_actor p("n1", ping_config::server_ping(), h);
  p.start(0);
  REQUIRE(sent.size() == 2);
  CHECK(hex(encode(sent[0])) == hex(captured("moat/kv/ping", {{"t", "init"}, {"node", "n1"}})));
  CHECK(hex(encode(sent[1])) == hex(captured("moat/kv/ping", {{"t", "vers"}, {"node", "n1"}})));
  // gap 2 is configured as an int and goes out as one (0x02, not float64).
  CHECK(hex(encode(sent[1])).find("a367617002") != std::string::npos);

  sent.clear();
  ping_actor d("n2", ping_config::server_delete(), h, /*enabled=*/false, /*send_raw=*/false);
  d.start(0);
  REQUIRE(sent.size() == 2);
  CHECK(hex(encode(sent[0])) == hex(captured("moat/kv/del", {{"t", "init"}, {"node", "n2"}})));
  CHECK(hex(encode(sent[1])) == hex(captured("moat/kv/del", {{"t", "vers"}, {"node", "n2"}})));

  // A float gap stays a float (0.24 sends what it was configured with).
  sent.clear();
  ping_config f;
  ping_actor q("x", f, h);
  q.start(0);
  CHECK(hex(encode(sent[1])).find("a3676170cb3ff8000000000000") != std::string::npos);
}

TEST_CASE("ping actor: ping and hist encode like the captured ones") {
  std::vector<value> sent;
  std::vector<ping_actor::event> events;
  ping_actor::hooks h;
  h.send = [&](const value& m) { sent.push_back(m); };
  h.on_event = [&](const ping_actor::event& e) { events.push_back(e); };
  h.random = [] { return 0.5; };

  // §4.1's example: a pings after b, which had pinged after a.
  {
    ping_actor a("a", ping_config::server_ping(), h);
    a.set_value(tt(17, 3));
    a.start(0);
    a.receive(value(map{{"t", "init"}, {"node", "a"}}), 0.01);
    a.on_timer(*a.next_deadline());  // first ping, history [a]
    CHECK(a.history() == std::vector<std::string>{"a"});
    double t = *a.next_deadline();
    CHECK(!a.receive(ping_msg("b", tt(16, 1), {"b", "a"}), 20));
    CHECK(a.history() == std::vector<std::string>{"b", "a"});
    sent.clear();
    while (sent.empty()) a.on_timer(*a.next_deadline());  // the debouncer, then the ping
    CHECK(*a.next_deadline() > t);
    REQUIRE(sent.size() == 1);
    CHECK(hex(encode(sent[0])) ==
          "84a174a470696e67a46e6f6465a161a576616c75659211"
          "03a7686973746f727992a161a162");
  }

  // run 1, after n3 joined: n1 = [240, 17] after n2 sees n3's first ping, answers with a hist.
  {
    sent.clear();
    events.clear();
    ping_actor n1("n1", ping_config::server_ping(), h);
    n1.set_value(tt(240, 17));
    n1.start(0);
    n1.receive(value(map{{"t", "init"}, {"node", "n1"}}), 0.01);
    n1.on_timer(*n1.next_deadline());
    REQUIRE(sent.size() == 3);
    CHECK(hex(encode(sent[2])) ==
          "84a174a470696e67a46e6f6465a26e31a576616c756592ccf011"
          "a7686973746f727991a26e31");
    n1.receive(ping_msg("n2", tt(239, 8), {"n2", "n1"}), 20);
    while (sent.size() == 3) n1.on_timer(*n1.next_deadline());
    REQUIRE(sent.size() == 4);
    CHECK(hex(encode(sent[3])) ==
          hex(captured("moat/kv/ping", {{"t", "ping"},
                                        {"node", "n1"},
                                        {"value", tt(240, 17)},
                                        {"history", names({"n1", "n2"})}})));
    n1.receive(decode(captured("moat/kv/ping", {{"t", "ping"}, {"node", "n3"}})), 40);
    REQUIRE(sent.size() == 5);  // prio 0: at once
    CHECK(hex(encode(sent[4])) == hex(captured("moat/kv/ping", {{"t", "hist"}})));
    CHECK(hex(encode(sent[4])) ==
          "83a174a468697374a576616c756592ccf011a7686973746f727992a26e31a26e32");
    bool recovered = false;
    for (const auto& e : events)
      if (auto* r = std::get_if<ping_actor::recover_event>(&e)) {
        recovered = true;
        CHECK(r->prio == 0);
        CHECK_FALSE(r->replace);  // n3 is not ready: our side keeps its history
        CHECK(r->local_nodes == std::vector<std::string>{"n1", "n2"});
        CHECK(r->remote_nodes == std::vector<std::string>{"n3"});
      }
    CHECK(recovered);
  }
}

// ---- Captured traffic -------------------------------------------------------------------------

TEST_CASE("ping actor: every captured ping/del payload decodes and replays into a fourth node") {
  auto rows = actor_rows();
  REQUIRE(rows.size() > 100);
  for (const char* run : {"run1", "run2"}) {
    CAPTURE(run);
    struct instance {
      std::unique_ptr<ping_actor> actor;
      rng random{12345};
      std::vector<ping_actor::event> events;
      size_t sent = 0;
    };
    auto make = [](instance& i, ping_config cfg, bool enabled) {
      ping_actor::hooks h;
      h.send = [&i](const value&) { ++i.sent; };
      h.on_event = [&i](const ping_actor::event& e) { i.events.push_back(e); };
      h.random = [&i] { return i.random(); };
      i.actor = std::make_unique<ping_actor>("n4", cfg, h, enabled);
    };
    instance ping, del;
    make(ping, ping_config::server_ping(), true);
    make(del, ping_config::server_delete(), false);
    ping.actor->start(0);
    del.actor->start(0);

    size_t fed_ping = 0, fed_del = 0;
    for (const auto& r : rows) {
      if (r.run != run || r.broker != "A") continue;
      value msg;
      REQUIRE_NOTHROW(msg = decode(r.bytes));
      REQUIRE(msg.is_map());
      instance& i = r.topic == "moat/kv/ping" ? ping : del;
      (r.topic == "moat/kv/ping" ? fed_ping : fed_del) += 1;
      // Timers that fell due before this message.
      while (i.actor->next_deadline() && *i.actor->next_deadline() <= r.time)
        i.actor->on_timer(*i.actor->next_deadline());
      auto problem = i.actor->receive(msg, r.time);
      CHECK_MESSAGE(!problem, *problem << " at " << r.time);
    }
    auto raws = [](const instance& i) {
      return std::count_if(i.events.begin(), i.events.end(), [](const auto& e) {
        return std::holds_alternative<ping_actor::raw_event>(e);
      });
    };
    CHECK(fed_ping > 20);
    CHECK(fed_del == 6);  // init + vers of three nodes
    CHECK(raws(ping) == static_cast<long>(fed_ping));
    CHECK(raws(del) == static_cast<long>(fed_del));
    // Our own init never came back (we were not on the broker).
    CHECK(std::any_of(ping.events.begin(), ping.events.end(), [](const auto& e) {
      return std::holds_alternative<ping_actor::echo_missing_event>(e);
    }));
    // n4 has no value: it saw ready nodes and asked to sync from them.
    CHECK(std::any_of(ping.events.begin(), ping.events.end(), [](const auto& e) {
      auto* g = std::get_if<ping_actor::good_node_event>(&e);
      return g && !g->nodes.empty();
    }));
    CHECK(ping.actor->tagged() >= 0);
    CHECK(del.actor->tagged() == -1);
    CHECK(del.actor->config().version == 1);  // equal versions: nothing adopted
  }
}

// ---- Simulated clusters -----------------------------------------------------------------------

TEST_CASE("ping actor: a lone node pings every cycle + 2 gap and is not tagged on its first ping") {
  sim s;
  auto& a = s.add("a", tt(1, 1));
  s.start_all();
  s.run_until(200);
  auto pings = a.sent_of("ping");
  REQUIRE(pings.size() >= 10);
  // First ping after the start delay (rand/2 + 1.5)·gap + cycle = 13…14 s.
  CHECK(pings[0].first >= 13);
  CHECK(pings[0].first < 14);
  CHECK(*pings[0].second.find("history") == names({"a"}));
  auto tags = a.all<ping_actor::tag_event>();
  REQUIRE(!tags.empty());
  CHECK(tags[0].first > pings[1].first);                        // not after the first ping, …
  CHECK(tags[0].first == doctest::Approx(pings[1].first + 2));  // … but gap after the second
  for (size_t i = 1; i < pings.size(); ++i) {
    CHECK(pings[i].first - pings[i - 1].first == doctest::Approx(14));  // as captured (13.8, 27.8…)
    CHECK(*pings[i].second.find("history") == names({"a"}));
  }
  CHECK(a.all<ping_actor::untag_event>().size() >= tags.size() - 1);
  CHECK(a.all<ping_actor::recover_event>().empty());
  CHECK(a.all<ping_actor::collision_event>().empty());
  CHECK(a.all<ping_actor::echo_missing_event>().empty());
}

TEST_CASE("ping actor: two nodes settle into taking turns, one tag at a time") {
  sim s;
  s.add("n1", tt(99, 12));
  s.add("n2", tt(98, 3));
  s.start_all(14.4);
  s.run_until(600);
  auto iv = it_intervals(s, 600);
  std::vector<it_interval> settled;
  for (const auto& i : iv)
    if (i.from > 60) settled.push_back(i);
  REQUIRE(settled.size() >= 30);
  for (size_t i = 1; i < settled.size(); ++i) {
    CHECK(settled[i].from >= settled[i - 1].to);        // never two "it" at once
    CHECK(settled[i].node != settled[i - 1].node);      // strict alternation
    CHECK(settled[i].from - settled[i - 1].from < 15);  // a turn per ~cycle + gap
  }
  // The histories alternate like the captured ones: [n1, n2], [n2, n1], …
  for (const auto& [at, m] : s["n1"].sent_of("ping", 60))
    CHECK(*m.find("history") == names({"n1", "n2"}));
  for (const auto& [at, m] : s["n2"].sent_of("ping", 60))
    CHECK(*m.find("history") == names({"n2", "n1"}));
}

TEST_CASE("ping actor: three nodes take turns, one tag at a time") {
  sim s;
  s.add("a", tt(10, 1));
  s.add("b", tt(10, 2));
  s.add("c", tt(11, 0));
  s.start_all(0.4);
  s.run_until(900);
  auto iv = it_intervals(s, 900);
  std::map<std::string, int> turns;
  int last_overlap_end = 0;
  for (size_t i = 1; i < iv.size(); ++i)
    if (iv[i].from < iv[i - 1].to) last_overlap_end = static_cast<int>(iv[i].to);
  CHECK(last_overlap_end < 120);  // any double tag only while settling
  for (const auto& i : iv)
    if (i.from > 120) ++turns[i.node];
  CHECK(turns.size() == 3);
  for (const auto& [n, k] : turns) {
    CAPTURE(n);
    CHECK(k >= 15);  // each is "it" in turn
  }
  for (size_t i = 1; i < iv.size(); ++i)
    if (iv[i].from > 120) CHECK(iv[i].node != iv[i - 1].node);
  // Settled histories contain all three.
  auto last = s["a"].sent_of("ping").back().second;
  CHECK(last.find("history")->as_array().size() == 3);
}

TEST_CASE("ping actor: a node without a value asks for the ready node (good_node)") {
  sim s;
  s.add("n1", tt(99, 12));
  auto& n2 = s.add("n2", value());
  s.start_all(14.4);
  s.run_until(60);
  auto good = n2.all<ping_actor::good_node_event>();
  REQUIRE(!good.empty());
  CHECK(good[0].second.nodes == std::vector<std::string>{"n1"});
  // n2's pings carry nil until the owner sets the value; then no more good_node events.
  auto p = n2.sent_of("ping");
  REQUIRE(!p.empty());
  CHECK(p[0].second.find("value")->is_nil());
  n2.actor->set_value(tt(120, 0));
  size_t before = n2.all<ping_actor::good_node_event>().size();
  s.run_until(200);
  CHECK(n2.all<ping_actor::good_node_event>().size() == before);
  CHECK(s["n1"].all<ping_actor::good_node_event>().empty());
}

TEST_CASE("ping actor: ping_sender_of reads the sender's name, tock and tick") {
  auto p = ping_sender_of(value(map{{"t", "ping"}, {"node", "a"}, {"value", array{5, 7}}}));
  REQUIRE(p);
  CHECK(p->name == "a");
  CHECK(p->tock == 5u);
  CHECK(p->tick == 7u);
  // A hist names its sender as history[0]; a nil value gives no tick or tock.
  p = ping_sender_of(value(map{{"t", "hist"}, {"history", array{"b", "c"}}, {"value", value()}}));
  REQUIRE(p);
  CHECK(p->name == "b");
  CHECK(!p->tick);
  CHECK(!p->tock);
  // Negative or non-integer parts are left out, not wrapped.
  p = ping_sender_of(value(map{{"node", "c"}, {"value", array{-1, "x"}}}));
  REQUIRE(p);
  CHECK(!p->tock);
  CHECK(!p->tick);
  CHECK(!ping_sender_of(value(map{{"value", array{1, 2}}})));
  CHECK(!ping_sender_of(value(map{{"history", array{}}})));
}

TEST_CASE("ping actor: a newcomer learns of a node with data during its start delay") {
  sim s;
  s.add("n1", tt(99, 12));
  s.start_all(0.4);
  s.run_until(60);  // n1 pings on its own now, at a fixed interval
  auto p1 = s["n1"].sent_of("ping");
  REQUIRE(p1.size() >= 2);
  double interval = p1.back().first - p1[p1.size() - 2].first;
  double next = p1.back().first + interval;
  s.run_until(next - 1);  // n2 starts a second before n1's next ping
  auto& n2 = s.add("n2", value());
  double started = s.now;
  n2.actor->start(s.now);
  s.run_until(started + 40);
  auto good = n2.all<ping_actor::good_node_event>();
  REQUIRE(!good.empty());
  auto pings = n2.sent_of("ping");
  REQUIRE(!pings.empty());
  // The first GoodNodeEvent follows n1's ping at once, not n2's start delay (13-14 s): before
  // the change it came only after n2's own first ping.
  CHECK(pings[0].first - started >= 13);
  CHECK(good[0].second.nodes == std::vector<std::string>{"n1"});
  CHECK(good[0].first - started < 1.1);
  // A node that has data asks nobody.
  CHECK(s["n1"].all<ping_actor::good_node_event>().empty());
}

TEST_CASE("ping actor: partition and heal start recovery on both sides with hist pings") {
  sim s;
  s.add("n1", tt(100, 12));
  s.add("n3", tt(100, 1));
  s.add("n2", tt(90, 3));
  s.start_all(0.4);
  s.run_until(150);
  for (auto& n : s.nodes) CHECK(n->all<ping_actor::recover_event>(120).empty());

  s["n2"].group = 1;  // cut {n2} off from {n1, n3}
  s.run_until(230);
  // Each side goes on alone: n2's history shrinks to itself, n1/n3 alternate.
  CHECK(s["n2"].actor->history() == std::vector<std::string>{"n2"});
  auto h1 = s["n1"].actor->history();
  CHECK(std::find(h1.begin(), h1.end(), "n2") == h1.end());

  double heal = s.now;
  s["n2"].group = 0;
  s.run_until(heal + 40);

  auto check_side = [&](const std::string& node, std::vector<std::string> side) {
    CAPTURE(node);
    auto rec = s[node].all<ping_actor::recover_event>(heal);
    REQUIRE(!rec.empty());
    const auto& r = rec.front().second;
    // prio = our position in our side's history, which holds only our side.
    REQUIRE(r.prio >= 0);
    REQUIRE(r.prio < static_cast<int64_t>(r.local_nodes.size()));
    CHECK(r.local_nodes[r.prio] == node);
    for (const auto& l : r.local_nodes) CHECK(std::find(side.begin(), side.end(), l) != side.end());
    for (const auto& x : r.remote_nodes)
      CHECK(std::find(side.begin(), side.end(), x) == side.end());
    CHECK(!r.remote_nodes.empty());
  };
  check_side("n1", {"n1", "n3"});
  check_side("n3", {"n1", "n3"});
  check_side("n2", {"n2"});

  // hist pings: each side's prio-0 node answers at once with its side's history and the value
  // of that history's first node; the second in line (prio 1) waits gap/2 and only a ping (not
  // a hist) from the first would have stopped it.
  auto hist_of = [&](const std::string& node) { return s[node].sent_of("hist", heal); };
  auto n2h = hist_of("n2");
  REQUIRE(!n2h.empty());
  CHECK(*n2h[0].second.find("history") == names({"n2"}));
  CHECK(*n2h[0].second.find("value") == tt(90, 3));
  std::vector<std::pair<double, value>> side_a;
  for (const char* n : {"n1", "n3"})
    for (auto& h : hist_of(n)) side_a.push_back(h);
  REQUIRE(!side_a.empty());
  for (const auto& [at, m] : side_a) {
    CHECK(m.find("node") == nullptr);
    const auto& h = m.find("history")->as_array();
    REQUIRE(h.size() == 2);
    CHECK(*m.find("value") == s[h[0].as_str()].actor->value_of(h[0].as_str()));
  }
  // The prio-0 recovery sent its hist at the time of the recover event (+ broker latency).
  auto first_rec = std::min(s["n1"].all<ping_actor::recover_event>(heal)[0].first,
                            s["n3"].all<ping_actor::recover_event>(heal)[0].first);
  double first_hist = std::numeric_limits<double>::infinity();
  for (const auto& h : side_a) first_hist = std::min(first_hist, h.first);
  CHECK(first_hist == doctest::Approx(first_rec));

  // And the cluster settles again with all three in the history.
  s.run_until(heal + 200);
  CHECK(s["n1"].sent_of("ping").back().second.find("history")->as_array().size() == 3);
}

TEST_CASE("ping actor: a higher vers is adopted, a lower one answered with it") {
  sim s;
  auto& a = s.add("a", tt(1, 1));
  s.start_all();
  s.run_until(20);  // a has pinged (history [a])
  REQUIRE(a.actor->history().front() == "a");

  // Adoption: the whole message becomes our config, including the other node's name.
  CHECK(!a.actor->receive(vers_msg("b", 3, 12, 3), s.now));
  CHECK(a.actor->config().version == 3);
  CHECK(a.actor->config().cycle_seconds() == 12);
  CHECK(a.actor->config_node() == "b");
  auto setups = a.all<ping_actor::setup_event>();
  REQUIRE(setups.size() == 1);
  CHECK(*setups[0].second.msg.find("node") == value("b"));

  // A lower version: we are first in the history, so we answer at once with the adopted one.
  size_t before = a.sent.size();
  CHECK(!a.actor->receive(vers_msg("c", 1), s.now + 0.1));
  REQUIRE(a.sent.size() == before + 1);
  CHECK(encode(a.sent.back().second) == encode(vers_msg("b", 3, 12, 3)));

  // An older vers while we are second in the history: the answer waits gap/2 …
  CHECK(!a.actor->receive(ping_msg("z", tt(5, 5), {"z", "a"}), s.now + 0.2));
  CHECK(a.actor->history() == std::vector<std::string>{"z", "a"});
  before = a.sent.size();
  double t0 = s.now + 0.3;
  CHECK(!a.actor->receive(vers_msg("c", 1), t0));
  CHECK(a.sent.size() == before);
  CHECK(*a.actor->next_deadline() == doctest::Approx(t0 + 1.5));  // gap 3 · (1 - 1/2)
  // … and is cancelled by someone else's answer of the same version.
  CHECK(!a.actor->receive(vers_msg("z", 3, 12, 3), t0 + 0.5));
  a.actor->on_timer(t0 + 1.6);
  CHECK(a.sent.size() == before);
  // Without that answer it goes out.
  CHECK(!a.actor->receive(vers_msg("c", 1), t0 + 2));
  a.actor->on_timer(t0 + 3.6);
  REQUIRE(a.sent.size() == before + 1);
  CHECK(type_of(a.sent.back().second) == std::string("vers"));
  CHECK(a.all<ping_actor::setup_event>().size() == 1);

  // A disabled actor adopts nothing.
  sim d;
  auto& x = d.add("x", value(), ping_config::server_delete(), false);
  d.start_all();
  d.run_until(200);
  CHECK(!x.actor->receive(vers_msg("b", 7, 100, 10), d.now));
  CHECK(x.actor->config().version == 1);
  CHECK(x.all<ping_actor::setup_event>().empty());
}

TEST_CASE("ping actor: a disabled instance reports one ping event per burst, enable joins") {
  sim s;
  auto& a = s.add("a", tt(1, 1), ping_config::server_delete(), false);
  auto& b = s.add("b", tt(1, 2), ping_config::server_delete(), false);
  s.start_all();
  s.run_until(400);
  CHECK(a.sent_of("ping").empty());
  CHECK(a.all<ping_actor::ping_event>().size() == 1);  // the init/vers burst at start
  CHECK(a.actor->tagged() == -1);

  a.actor->enable(s.now, 2);  // raises nodes to 2? no: 5 >= 2, nothing to send
  b.actor->enable(s.now);
  CHECK(a.actor->config().version == 1);
  s.run_until(1500);
  CHECK(!a.sent_of("ping").empty());
  CHECK(!a.all<ping_actor::tag_event>().empty());
  CHECK(!b.all<ping_actor::tag_event>().empty());

  // enable(length > nodes) bumps and announces the version; the peer adopts it.
  a.actor->enable(s.now, 7);
  CHECK(a.actor->config().nodes == 7);
  CHECK(a.actor->config().version == 2);
  s.run_until(s.now + 1);
  CHECK(b.actor->config().version == 2);
  CHECK(b.actor->config_node() == "a");

  a.actor->disable(0);
  CHECK(a.actor->tagged() == -1);
  size_t pings = a.sent_of("ping").size();
  s.run_until(s.now + 1000);
  CHECK(a.sent_of("ping").size() == pings);
}

TEST_CASE("ping actor: our own init twice is a name collision, reported not thrown") {
  sim s;
  auto& a = s.add("a", tt(1, 1));
  s.start_all();
  s.run_until(1);
  CHECK(a.all<ping_actor::collision_event>().empty());
  std::optional<std::string> r;
  CHECK_NOTHROW(r = a.actor->receive(value(map{{"t", "init"}, {"node", "a"}}), 1.5));
  CHECK(r.has_value());
  CHECK(a.all<ping_actor::collision_event>().size() == 1);
  s.run_until(100);  // and it goes on
  CHECK(!a.sent_of("ping").empty());
}

TEST_CASE("ping actor: malformed and random messages are ignored and change nothing") {
  sim s;
  auto& a = s.add("a", tt(1, 1));
  s.add("b", tt(1, 2));
  s.start_all();
  s.run_until(100);
  auto& p = *a.actor;
  double now = s.now;

  auto snapshot = [&] {
    std::ostringstream o;
    o << p.tagged() << '|' << p.valid_pings() << '|' << p.config().version << '|' << p.config_node()
      << '|' << *p.next_deadline() << '|' << a.sent.size() << '|' << a.events.size() << '|';
    for (const auto& h : p.history()) o << h << ',';
    o << '|' << debug_string(p.value_of("b"));
    return o.str();
  };
  std::string before = snapshot();

  std::vector<value> bad = {
      value(),
      value(42),
      value("ping"),
      value(array{"t", "ping"}),
      value(map{}),
      value(map{{"t", 1}}),
      value(map{{"t", "pong"}, {"node", "b"}}),
      value(map{{1, "x"}, {"t", "init"}, {"node", "b"}}),
      value(map{{"t", "init"}}),
      value(map{{"t", "init"}, {"node", ""}}),
      value(map{{"t", "init"}, {"node", 7}}),
      value(map{{"t", "ping"}, {"node", "b"}, {"value", tt(9, 9)}}),
      value(map{{"t", "ping"}, {"value", tt(9, 9)}, {"history", names({"b"})}}),
      value(map{{"t", "ping"}, {"node", "b"}, {"history", names({"b"})}}),
      value(map{{"t", "ping"}, {"node", "b"}, {"value", tt(9, 9)}, {"history", "b"}}),
      value(map{{"t", "ping"}, {"node", "b"}, {"value", tt(9, 9)}, {"history", array{}}}),
      value(map{{"t", "ping"}, {"node", "b"}, {"value", tt(9, 9)}, {"history", array{1, 2}}}),
      value(map{{"t", "ping"}, {"node", bin{"b"}}, {"value", 1}, {"history", names({"b"})}}),
      value(map{{"t", "hist"}, {"value", tt(9, 9)}, {"history", array{}}}),
      value(map{{"t", "hist"}, {"value", tt(9, 9)}}),
      value(map{{"t", "vers"}, {"node", "b"}, {"version", 9}}),
      vers_msg("b", 9, "ten", 2),
      vers_msg("b", 9, 10, 5),            // cycle < 3 gap
      vers_msg("b", 9, 0.5, 0.1),         // cycle < 1
      vers_msg("b", 9, 10, -1),           // gap < 0
      vers_msg("b", 9, std::nan(""), 2),  // NaN
      vers_msg("b", 9, true, 2),          // bool is not a duration
      value(map{{"t", "vers"},
                {"node", "b"},
                {"cycle", 10},
                {"gap", 2},
                {"nodes", "5"},
                {"splits", 4},
                {"n_hosts", 10},
                {"version", 9}}),
      value(map{{"t", "vers"},
                {"node", "b"},
                {"cycle", 10},
                {"gap", 2},
                {"nodes", 5},
                {"splits", 4},
                {"n_hosts", 10},
                {"version", 9.5}}),
      value(map{{"t", "vers"},
                {"node", "b"},
                {"cycle", 10},
                {"gap", 2},
                {"nodes", 5},
                {"splits", 4},
                {"n_hosts", 10},
                {"version", 9},
                {"force_in", "yes"}}),
  };
  for (const auto& m : bad) {
    CAPTURE(debug_string(m));
    std::optional<std::string> r;
    CHECK_NOTHROW(r = p.receive(m, now));
    CHECK(r.has_value());
    CHECK(snapshot() == before);
  }

  // Random maps built from the protocol's keys and arbitrary values: never a crash or throw.
  rng g{777};
  auto pick = [&](size_t n) { return static_cast<size_t>(g() * n); };
  std::function<value(int)> any = [&](int depth) -> value {
    switch (pick(depth > 2 ? 7 : 9)) {
      case 0:
        return value();
      case 1:
        return value(g() < 0.5);
      case 2:
        return value(static_cast<int64_t>(pick(20)) - 5);
      case 3:
        return value(g() * 100 - 50);
      case 4:
        return value(std::vector<std::string>{"a", "b", "t", "", "ping"}[pick(5)]);
      case 5:
        return value(bin{"\x01\x02"});
      case 6:
        return value(18446744073709551615ULL);
      case 7: {
        array x;
        for (size_t i = pick(4); i > 0; --i) x.push_back(any(depth + 1));
        return value(std::move(x));
      }
      default: {
        map x;
        for (size_t i = pick(4); i > 0; --i) x.emplace_back(any(depth + 1), any(depth + 1));
        return value(std::move(x));
      }
    }
  };
  const char* keys[] = {"t",   "node",  "value",  "history", "version",  "cycle",
                        "gap", "nodes", "splits", "n_hosts", "force_in", "x"};
  const char* types[] = {"init", "vers", "ping", "hist", "nope"};
  for (int i = 0; i < 3000; ++i) {
    map m;
    m.emplace_back("t", types[pick(5)]);
    for (size_t k = pick(7); k > 0; --k) m.emplace_back(keys[pick(12)], any(0));
    CHECK_NOTHROW(p.receive(value(std::move(m)), now + i * 0.01));
  }
  s.run_until(s.now + 200);  // and it still works
  CHECK(!a.sent_of("ping", s.now - 100).empty());
}

TEST_CASE("ping actor: has_priority prefers the higher value, nil lowest, then the lower name") {
  ping_actor::hooks h;
  h.random = [] { return 0.5; };
  ping_actor p("m", ping_config::server_ping(), h);
  p.start(0);
  p.on_timer(*p.next_deadline());
  auto learn = [&](const std::string& n, value v, double t) {
    // Each from a fresh previous pinger so that none is ignored as a repeat.
    p.receive(ping_msg(n, std::move(v), {n}), t);
  };
  learn("a", tt(5, 1), 20);
  learn("b", tt(5, 1), 21);
  learn("c", tt(6, 0), 22);
  learn("d", value(), 23);
  learn("e", tt(5, 2), 24);
  learn("f", value("x"), 25);
  CHECK(p.has_priority("a", "b"));  // equal values: lower name
  CHECK_FALSE(p.has_priority("b", "a"));
  CHECK(p.has_priority("c", "a"));  // higher tock
  CHECK(p.has_priority("e", "a"));  // same tock, higher tick
  CHECK(p.has_priority("a", "d"));  // nil lowest
  CHECK_FALSE(p.has_priority("d", "a"));
  CHECK(p.has_priority("a", "zz"));  // unknown = nil
  CHECK(p.has_priority("a", "f"));   // unorderable: names decide
  CHECK_FALSE(p.has_priority("f", "a"));
}
