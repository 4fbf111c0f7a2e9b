// The server-to-server side of kv_store (server-internals §2.6, §3.4, §5.3, §5.7): the update
// emitter against the captured bytes, a replay of the captured cluster traffic against the
// final dumps of cluster-notes.txt, info processing, convergence of three nodes with missed
// messages and resends, tombstone purge, and garbage input.
#include <doctest/doctest.h>
#include "tests/hex.hpp"

#include <algorithm>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "actors/gossip/multipart.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/range_set.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/msgpack_codec.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {

struct row {
  std::string run;  // "run1" / "run2"
  std::string broker;
  double time = 0;
  std::string topic;
  std::string bytes;
};

std::vector<row> load_capture() {
  std::ifstream in(std::string(MOATKV_CONFORMANCE_DATA) + "/cluster-mqtt-messages.tsv");
  REQUIRE(in.good());
  std::vector<row> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() != 5) continue;
    rows.push_back(row{f[0].substr(0, 4), f[1], std::stod(f[2]), f[3], unhex(f[4])});
  }
  return rows;
}

/// A kv_store standing in for one node, collecting what it would broadcast.
struct peer {
  std::unique_ptr<kv_store> kv;
  std::vector<value> sent;
  explicit peer(const char* name, bool ready = true)
      : kv(std::make_unique<kv_store>(name, std::make_shared<tock_clock>())) {
    kv->set_update_emitter([this](value v) { sent.push_back(std::move(v)); });
    if (ready) kv->init_own_tick();
  }
  void set(const value& path, const value& v) {
    value r = single(*kv, 1, M({{"action", "set_value"}, {"path", path}, {"value", v}}));
    REQUIRE_MESSAGE(!has_key(r, "error"), debug_string(r));
  }
  void del(const value& path) {
    value r = single(*kv, 1, M({{"action", "delete_value"}, {"path", path}}));
    REQUIRE_MESSAGE(!has_key(r, "error"), debug_string(r));
  }
  value state(const char* what) {
    return single(*kv, 1, M({{"action", "get_state"}, {what, true}}));
  }
  /// Every entry with a value: "path value chain @tock", from get_tree with nchain -1.
  std::vector<std::string> dump() {
    action_result r = kv->handle(1, M({{"action", "get_tree"}, {"path", A({})}, {"nchain", -1}}));
    path_longener lg;
    std::vector<std::string> out;
    for (value rec : r.messages) {
      std::string err;
      REQUIRE(lg.apply(rec, err));
      chain c;
      REQUIRE(chain::deserialize(rec, c, err));
      out.push_back(tree::format_path(at(rec, "path").elements()) + " " +
                    debug_string(at(rec, "value")) + " " + c.repr() + " @" +
                    std::to_string(int_at(rec, "tock")));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string entry_line(const char* path, const char* v, const char* chain_repr, int tock) {
  return std::string(path) + " " + v + " " + chain_repr + " @" + std::to_string(tock);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("s2s: the update emitter publishes shape A, byte-identical with the capture") {
  peer n1("n1", false);
  n1.kv->set_initial_root(value("Init"));
  // The init event as published in the original's single-node capture (cluster-notes, 6).
  REQUIRE(n1.sent.size() == 1);
  CHECK(hex(encode(n1.sent[0])) ==
        "86a46e6f6465a26e31a47469636b01a470726576c0a470617468c70003a576616c7565a4496e6974"
        "a4746f636b03");
  // Chain length: prev is cut (absent) beyond change_length links, nil at the real end.
  peer a("a"), b("b"), c("c");
  b.kv->apply_update(M({{"node", "a"},
                        {"tick", 1},
                        {"prev", value()},
                        {"path", P({"k"})},
                        {"value", 1},
                        {"tock", 5}}));
  b.kv->set_change_length(1);
  b.set(P({"k"}), 2);
  REQUIRE(b.sent.size() == 1);
  CHECK_FALSE(has_key(b.sent[0], "prev"));
  b.kv->set_change_length(5);
  b.set(P({"k"}), 3);
  CHECK(at(b.sent[1], "prev").is_map());
  CHECK(at(at(b.sent[1], "prev"), "prev").is_nil());
  // Changes received from peers are not re-published.
  c.kv->apply_update(b.sent[1]);
  CHECK(c.sent.empty());
}

namespace {

/// Replay one broker's capture of one run into a stand-in for node `name`: its own live
/// updates (shape A) are re-made locally with the same tocks and must be published with the
/// captured bytes (multipart parts included); everything else is received as from a peer.
void replay(const std::vector<row>& rows, const std::string& run, const std::string& broker,
            peer& p, const std::string& name, int& byte_checks) {
  if (name == "n1") {
    p.kv->set_initial_root(value("Init"));
  } else {
    // The init event was not published in these runs (cluster-notes, surprise 6); peers got
    // it through the get_tree sync. Feed it as the sync record would.
    value init = M({{"value", "Init"},
                    {"chain", M({{"node", "n1"}, {"tick", 1}, {"prev", value()}})},
                    {"tock", 3},
                    {"path", P({})}});
    REQUIRE(p.kv->apply_update(init));
  }
  p.sent.clear();
  multipart_assembler assembler;
  std::vector<std::string> raw_parts;
  uint64_t part_seq = 0;
  for (const auto& r : rows) {
    if (r.run != run || r.broker != broker) continue;
    if (r.topic != "moat/kv/update" && r.topic != "moat/kv/info") continue;
    raw_parts.push_back(r.bytes);
    std::optional<value> msg = assembler.feed(decode(r.bytes), r.time);
    if (!msg) continue;
    std::vector<std::string> parts = std::move(raw_parts);
    raw_parts.clear();
    if (r.topic == "moat/kv/info") {
      info_result res = p.kv->process_info(*msg);
      CHECK_MESSAGE(res.errors.empty(), debug_string(*msg));
      CHECK(res.own == (at(*msg, "node") == value(name)));
      continue;
    }
    bool own_live = !has_key(*msg, "chain") && at(*msg, "node") == value(name);
    if (!own_live) {
      update_result u = p.kv->receive_update(*msg);
      CHECK_MESSAGE(u.status != update_status::malformed, u.error);
      continue;
    }
    // Re-make the change: set_data reads the clock once before the event's tock.
    int64_t tock = int_at(*msg, "tock");
    REQUIRE(static_cast<int64_t>(p.kv->clock().peek()) <= tock - 2);
    p.kv->clock().seen(static_cast<uint64_t>(tock - 2));
    if (has_key(*msg, "value"))
      p.set(at(*msg, "path"), at(*msg, "value"));
    else
      p.del(at(*msg, "path"));
    REQUIRE(p.sent.size() == 1);
    if (parts.size() == 1) {
      CHECK(hex(encode(p.sent[0])) == hex(parts[0]));
    } else {
      CHECK(pack_multipart(p.sent[0], name, part_seq) == parts);
    }
    ++byte_checks;
    p.sent.clear();
  }
}

std::vector<std::string> common_final(int run) {
  bool r1 = run == 1;
  // Tocks of the changes made after n1's initial sets differ between the runs.
  return {
      entry_line(":", "'Init'", "<NodeEvent n1:1 (1,)>", 3),  // the root
      entry_line("big.blob", "", "", 0),                      // placeholder, replaced below
      entry_line("conflict.k", "'from-n1'", "<NodeEvent n1:15 (15,)>", r1 ? 186 : 206),
      entry_line("demo.a", "124", "<NodeEvent n2:2 n1:2 (2,)>", r1 ? 140 : 160),
      entry_line("demo.d", "{'x': 'hello', 'y': 2}", "<NodeEvent n1:4 (4,)>", 29),
      entry_line("demo.n.deep.leaf", "4.5", "<NodeEvent n1:5 (5,)>", 38),
      entry_line("demo.s", "'hello from n2'", "<NodeEvent n2:3 n1:3 (3,)>", r1 ? 148 : 168),
      entry_line("dm1.x", "'mod-by-n2'", "<NodeEvent n2:8 n1:10 (8,)>", r1 ? 189 : 209),
      entry_line("from2.a", "2", "<NodeEvent n2:1 (1,)>", r1 ? 132 : 152),
      entry_line("from3.a", "'hi-from-n3'", "<NodeEvent n3:1 (1,)>", r1 ? 271 : 125),
      entry_line("part.n1b", "{'x': 'from', 'y': 1}", "<NodeEvent n1:16 (16,)>", r1 ? 195 : 215),
      entry_line("part.n1only", "'n1-side'", "<NodeEvent n1:14 (14,)>", r1 ? 178 : 198),
      entry_line("part.n2only", "'n2-side'", "<NodeEvent n2:5 (5,)>", r1 ? 165 : 185),
  };
}

/// The expected final tree of a stand-in, from cluster-notes.txt's final dumps.
std::vector<std::string> expected_final(int run, const std::string& name, peer& p) {
  std::vector<std::string> want = common_final(run);
  // The 600-byte value: checked here, then taken from our own dump.
  std::vector<std::string> got = p.dump();
  auto blob = std::find_if(got.begin(), got.end(),
                           [](const std::string& s) { return s.rfind("big.blob ", 0) == 0; });
  REQUIRE(blob != got.end());
  CHECK(blob->find("'" + std::string(600, 'B') + "' <NodeEvent n1:12 (12,)> @100") !=
        std::string::npos);
  want[1] = *blob;
  if (run == 2) {
    want.push_back(entry_line("part.n3only", "'n3-side'", "<NodeEvent n3:2 (2,)>", 222));
    // dm2.x: n2 modified it (tock 176) and n1 deleted it concurrently (tock 228). The original
    // ended with 'mod-by-n2' everywhere because n1 accepted n2's re-sent modification without
    // comparing tocks (its entry was a tombstone) and therefore never re-sent its deletion.
    // OUR rule (tombstones take part in conflicts, tree.cpp fix (b)) keeps the later deletion
    // on the nodes that saw it (n1, n3 on broker A). n2 (broker B) holds the modification: the
    // captured traffic never carries the deletion to B (the original n1 announced n1:17 only
    // as known/deleted), which a C++ n1 would have re-sent as an update. So this replay shows
    // the difference of the rules, not a convergence failure of a C++ cluster.
    if (name == "n2")
      want.push_back(entry_line("dm2.x", "'mod-by-n2'", "<NodeEvent n2:4 n1:11 (4,)>", 176));
  }
  std::sort(want.begin(), want.end());
  return want;
}

}  // namespace

TEST_CASE("s2s: replay of the captured cluster traffic ends in the captured final trees") {
  std::vector<row> rows = load_capture();
  REQUIRE(rows.size() > 100);
  int byte_checks = 0;
  for (int run : {1, 2}) {
    std::string rn = "run" + std::to_string(run);
    for (auto [name, broker] : {std::pair{"n1", "A"}, std::pair{"n3", "A"}, std::pair{"n2", "B"}}) {
      CAPTURE(rn);
      std::string who = name;
      CAPTURE(who);
      peer p(name, false);
      if (std::string(name) != "n1") p.kv->init_own_tick();
      replay(rows, rn, broker, p, name, byte_checks);
      CHECK(p.dump() == expected_final(run, name, p));
      CHECK_FALSE(p.kv->has_local_missing());
      // The node table agrees with the captured `nodes` of the final dumps.
      value nodes = at(p.state("nodes"), "nodes");
      CHECK(at(nodes, "n1") == value(17));
      CHECK(at(nodes, "n2") == value(8));
      CHECK(at(nodes, "n3") == value(run == 1 ? 1 : 2));
    }
  }
  // Every live update of n1, n2 and n3 in both runs was reproduced byte for byte.
  CHECK(byte_checks >= 2 * 12 + 2 * 8);
}

TEST_CASE("s2s: info ticks/missing/known/deleted change the node table as §3.4 says") {
  peer a("a"), b("b");
  a.set(P({"x"}), 1);  // a:1
  a.set(P({"y"}), 2);  // a:2
  a.del(P({"y"}));     // a:3 (chain a:3)
  for (const auto& m : a.sent) REQUIRE(b.kv->apply_update(m));

  // Own info is ignored.
  info_result own = a.kv->process_info(M({{"node", "a"}, {"ticks", M({{"zz", 9}})}, {"tock", 1}}));
  CHECK(own.own);
  CHECK(at(at(a.state("nodes"), "nodes"), "zz") == value("<missing>"));

  // ticks: raise, create (nil), signal.
  info_result r = b.kv->process_info(
      M({{"ticks", M({{"a", 7}, {"c", value()}})}, {"tock", 500}, {"node", "a"}, {"tick", 3}}));
  CHECK(r.had_ticks);
  CHECK(r.sender == "a");
  CHECK(b.kv->clock().peek() >= 500);
  value nodes = at(b.state("nodes"), "nodes");
  CHECK(at(nodes, "a") == value(7));
  CHECK(at(nodes, "c").is_nil());
  CHECK(at(at(b.state("missing"), "missing"), "a") == A({A({4, 8})}));

  // missing -> remote_missing, resend needed; the answer comes from missing_data.
  r = b.kv->process_info(M({{"missing", M({{"a", A({1, 3})}})}, {"node", "c"}, {"tock", 501}}));
  CHECK(r.had_missing);
  CHECK(r.resend_needed);
  CHECK(at(at(b.state("remote_missing"), "remote_missing"), "a") == A({1, 3}));

  // known: ticks we hold stay present; the rest becomes superseded and leaves remote_missing.
  r = b.kv->process_info(M({{"known", M({{"a", A({1, A({4, 6})})}})}, {"node", "c"}}));
  CHECK(at(at(b.state("known"), "known"), "a") == A({2, A({4, 6})}));  // 2: y's set, superseded
  CHECK(at(at(b.state("present"), "present"), "a") == A({1, 3}));
  CHECK(at(at(b.state("missing"), "missing"), "a") == A({A({6, 8})}));

  // deleted: the tombstone y (a:3) is purged at once; x (a:1, a value) is not touched.
  r = b.kv->process_info(M({{"deleted", M({{"a", A({1, 3, 6})}})}, {"node", "c"}}));
  CHECK(r.purged == 1);
  CHECK(b.kv->data().follow(b.kv->data().root(), array{value("y")}, false, 0) == nullptr);
  CHECK(b.kv->data().follow(b.kv->data().root(), array{value("x")}, false, 0)->data() == value(1));
  CHECK(at(at(b.state("deleted"), "deleted"), "a") == A({6}));  // 3 purged, 1 live
  CHECK(at(at(b.state("present"), "present"), "a") == A({1}));
  CHECK(at(at(b.state("known"), "known"), "a") == A({A({2, 7})}));
  CHECK(at(at(b.state("missing"), "missing"), "a") == A({7}));

  // node_drop: only a node that heads no entry; [name, nil] items are ignored.
  r = b.kv->process_info(M({{"node_drop", A({"c", A({"a", value()}), "a"})}, {"node", "x"}}));
  CHECK(r.dropped == std::vector<std::string>{"c"});
  CHECK(at(at(b.state("nodes"), "nodes"), "c") == value("<missing>"));
  CHECK(at(b.state("node_drop"), "node_drop") == A({"c"}));
}

TEST_CASE("s2s: get_state replies (process_state) and readiness") {
  peer j("j", false);
  CHECK_FALSE(j.kv->ready());
  CHECK(j.kv->ping_value().is_nil());
  value st = M({{"nodes", M({{"n1", 12}, {"j", 4}})},
                {"known", M({{"n1", A({6})}})},
                {"deleted", M({{"n1", A({7})}})},
                {"node", "n1"},
                {"tock", 118}});
  info_result r = j.kv->process_state(st);
  CHECK(r.errors.empty());
  CHECK_FALSE(r.own);
  // A peer's idea of our tick does not make us ready, but it is not reused afterwards.
  CHECK_FALSE(j.kv->ready());
  CHECK(j.kv->has_local_missing());  // n1: 1..5, 8..12
  CHECK(j.kv->local_missing().find("n1")->ranges().size() == 2);
  j.kv->discard_all_missing();
  CHECK_FALSE(j.kv->has_local_missing());
  j.kv->mark_ready();
  CHECK(j.kv->own_tick() == 4u);
  value pv = j.kv->ping_value();
  REQUIRE(pv.is_array());
  CHECK(pv.as_array()[0] == value(118));
  CHECK(pv.as_array()[1] == value(4));
  j.set(P({"q"}), 1);
  CHECK(int_at(j.sent.back(), "tick") == 5);

  // note_node (ping RawMsgEvent): creates the node, raises its tick, feeds the tock.
  j.kv->note_node("p", std::nullopt, 1000);
  j.kv->note_node("p", 3, std::nullopt);
  CHECK(at(at(j.state("nodes"), "nodes"), "p") == value(3));
  CHECK(j.kv->clock().peek() >= 1000);
}

namespace {

/// Deliver messages with every node's update/info handlers (own info is ignored inside).
void deliver(std::vector<peer*>& all, const value& msg, bool is_info) {
  for (peer* p : all) {
    if (is_info)
      p->kv->process_info(msg);
    else
      p->kv->receive_update(msg);
  }
}

}  // namespace

TEST_CASE("s2s: three nodes converge whatever the order; a node that missed updates recovers") {
  for (unsigned seed = 1; seed <= 30; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    peer a("a"), b("b"), c("c");
    std::vector<peer*> all{&a, &b, &c};
    // A common base, delivered to everyone.
    a.set(P({"k1"}), "base");
    a.set(P({"k2"}), "base");
    a.set(P({"k3"}), "base");
    for (peer* p : all)
      for (const auto& m : a.sent) p->kv->receive_update(m);
    a.sent.clear();
    // Concurrent edits: deletes racing modifies, modifies racing modifies, new keys.
    a.del(P({"k1"}));
    b.set(P({"k1"}), "b-mod");
    b.set(P({"k2"}), "b2");
    c.set(P({"k2"}), "c2");
    c.del(P({"k3"}));
    a.set(P({"k3"}), "a3");
    b.set(P({"n", "b"}), 1);
    c.set(P({"n", "c"}), 2);
    a.set(P({"deep", "x", "y"}), 3);
    a.del(P({"deep", "x", "y"}));
    // Each node receives the others' updates in its own random order; c misses some.
    std::vector<std::pair<peer*, value>> msgs;
    for (peer* p : all)
      for (const auto& m : p->sent) msgs.emplace_back(p, m);
    for (peer* p : all) p->sent.clear();
    for (peer* dst : all) {
      auto order = msgs;
      std::shuffle(order.begin(), order.end(), rng);
      for (const auto& [src, m] : order) {
        if (src == dst) continue;
        if (dst == &c && src == &a && rng() % 2 == 0) continue;  // lost on the way to c
        dst->kv->receive_update(m);
      }
    }
    // Pings tell c the ticks of a (RawMsgEvent), so c can see what it lacks.
    c.kv->note_node("a", *a.kv->own_tick(), static_cast<int64_t>(a.kv->clock().peek()));
    // Recovery: c asks, the others re-send, everybody hears everything.
    for (int round = 0; round < 3 && c.kv->has_local_missing(); ++round) {
      value ask = c.kv->info_missing();
      REQUIRE(ask.is_map());
      CHECK(has_key(ask, "tock"));
      CHECK(at(ask, "node") == value("c"));
      deliver(all, ask, true);
      for (peer* p : {&a, &b}) {
        for (const value& m : p->kv->missing_data()) deliver(all, m, has_key(m, "known"));
      }
      c.kv->clear_seen_missing();
    }
    CHECK_FALSE(c.kv->has_local_missing());
    CHECK(a.dump() == b.dump());
    CHECK(b.dump() == c.dump());
    // The local change always wins locally; the merge rule then decides the same everywhere.
    CHECK(a.sent.empty());
  }
}

TEST_CASE("s2s: missing_data re-sends full chains once, then known/deleted") {
  peer a("a"), b("b"), c("c"), d("d");
  a.set(P({"x"}), 1);  // a:1
  for (auto& m : a.sent) b.kv->receive_update(m);
  b.set(P({"x"}), 2);  // b:1 <- a:1
  for (auto& m : b.sent) c.kv->receive_update(m);
  c.set(P({"x"}), 3);     // c:1 <- b:1 <- a:1
  c.set(P({"gone"}), 4);  // c:2
  c.del(P({"gone"}));     // c:3
  c.set(P({"y"}), 5);     // c:4
  c.set(P({"y"}), 6);     // c:5 (c:4 superseded)
  // d lacks everything and asks.
  d.kv->note_node("c", 5, std::nullopt);
  d.kv->note_node("a", 1, std::nullopt);
  d.kv->note_node("b", 1, std::nullopt);
  value ask = d.kv->info_missing();
  REQUIRE(ask.is_map());
  CHECK(d.kv->info_missing().is_nil());                     // already asked
  CHECK(at(d.kv->info_missing(true), "missing") == M({}));  // forced: `missing: {}`
  info_result ir = c.kv->process_info(ask);
  CHECK(at(ir.to_value(), "resend") == value(true));
  CHECK(at(ir.to_value(), "from") == value("d"));
  std::vector<value> out = c.kv->missing_data();
  REQUIRE(out.size() == 4);  // x (once for a:1, b:1, c:1), gone (tombstone), y, info
  CHECK(at(out[0], "path") == P({"x"}));
  chain ch;
  std::string err;
  REQUIRE(chain::deserialize(out[0], ch, err));
  CHECK(ch.size() == 3);  // the full chain, not 2 links
  CHECK(at(out[0], "node") == value("c"));
  CHECK_FALSE(has_key(out[1], "value"));  // the tombstone
  value info = out[3];
  // c:2 (gone's set, replaced by its deletion c:3) and c:4 (y's first value) are superseded.
  CHECK_MESSAGE(at(info, "known") == M({{"c", A({2, 4})}}), debug_string(info));
  CHECK(at(info, "deleted") == M({}));
  for (const auto& m : out) {
    if (has_key(m, "known"))
      d.kv->process_info(m);
    else
      CHECK(d.kv->receive_update(m).accepted());
  }
  CHECK_FALSE(d.kv->has_local_missing());
  CHECK(d.dump() == c.dump());
  // Everything was answered: a second round sends nothing.
  CHECK(c.kv->missing_data().empty());
}

TEST_CASE("s2s: reports covering all of a node's ticks are answered once per entry, fast") {
  // Fuzz review (issue 6): missing_data and report_deleted kept the entries already handled in
  // a vector and searched it for each tick: quadratic in the entries of the reported node, so a
  // peer's `missing` or `deleted` naming all ticks of a big node blocked the single writer.
  constexpr int n = 3000;
  peer c("c");
  for (int i = 0; i < n; ++i) c.set(P({"k", i}), i);
  for (int i = 0; i < n; i += 3) c.del(P({"k", i}));  // ticks n+1 … : 1000 tombstones
  const int64_t top = n + n / 3;
  info_result ir = c.kv->process_info(
      M({{"node", "d"}, {"missing", M({{"c", A({A({1, top + 1})})}})}, {"tock", 1}}));
  REQUIRE(ir.resend_needed);
  std::vector<value> out = c.kv->missing_data();
  // Every entry (values and tombstones) once, then the info naming the superseded ticks.
  REQUIRE(out.size() == static_cast<size_t>(n + 1));
  std::set<std::string> paths;
  for (size_t i = 0; i + 1 < out.size(); ++i) paths.insert(debug_string(at(out[i], "path")));
  CHECK(paths.size() == static_cast<size_t>(n));
  CHECK(has_key(out.back(), "known"));
  // A `deleted` report of every tick purges exactly the tombstones.
  info_result del =
      c.kv->process_info(M({{"node", "d"}, {"deleted", M({{"c", A({A({1, top + 1})})}})}}));
  CHECK(del.purged == static_cast<size_t>(n / 3));
  CHECK(c.dump().size() == static_cast<size_t>(n - n / 3));
}

TEST_CASE("s2s: purge keeps valued ancestors, watched entries and re-set tombstones") {
  peer a("a"), b("b");
  a.set(P({"p"}), "parent");
  a.set(P({"p", "q", "r"}), "leaf");
  a.del(P({"p", "q", "r"}));  // a:3, chain a:3 (a:2 superseded)
  a.set(P({"w", "z"}), 1);
  a.del(P({"w", "z"}));  // a:5
  // A watch on w.z pins it.
  action_result wr = a.kv->handle(7, M({{"action", "watch"}, {"path", P({"w", "z"})}, {"seq", 1}}));
  CHECK(wr.open);
  node_set ns;
  ns["a"].add(3);
  ns["a"].add(5);
  CHECK(a.kv->purge_deleted(ns) == 2);
  tree& t = a.kv->data();
  CHECK(t.follow(t.root(), array{value("p"), value("q")}, false, 0) == nullptr);  // chopped
  entry* p = t.follow(t.root(), array{value("p")}, false, 0);
  REQUIRE(p != nullptr);  // the original's _chop removed it too
  CHECK(p->data() == value("parent"));
  entry* wz = t.follow(t.root(), array{value("w"), value("z")}, false, 0);
  REQUIRE(wz != nullptr);  // pinned by the watch
  CHECK(wz->event_chain().empty());
  a.set(P({"w", "z"}), 2);  // the watch still works
  CHECK(at(at(a.state("present"), "present"), "a") == A({1, 6}));

  // The re-created tombstone hazard: b deletes k, then re-sets it before the purge. The purge
  // of the deletion's ticks must not destroy the new value.
  b.set(P({"k"}), 1);  // b:1
  b.del(P({"k"}));     // b:2, deleted {1, 2}
  b.set(P({"k"}), 2);  // b:3, chain without the deleted links
  node_set del = b.kv->data().take_deleted();
  CHECK(*del.find("b") == range_set{{2, 3}});  // b:1 was superseded by b:2
  b.kv->purge_deleted(del);
  entry* k = b.kv->data().follow(b.kv->data().root(), array{value("k")}, false, 0);
  REQUIRE(k != nullptr);
  CHECK(k->data() == value(2));
  // A deleted tick on a live chain (a concurrent modify won): purge and `deleted` leave it.
  peer c("c");
  c.set(P({"m"}), "base");  // c:1
  value base = c.sent.back();
  b.kv->receive_update(base);
  b.set(P({"m"}), "b-mod");  // b:4 <- c:1, later tock
  c.kv->clock().seen(b.kv->clock().peek() + 100);
  c.del(P({"m"}));  // c:2, tock higher: the deletion wins...
  b.kv->receive_update(c.sent.back());
  CHECK_FALSE(b.kv->data().follow(b.kv->data().root(), array{value("m")}, false, 0)->has_data());
  b.set(P({"m"}), "again");  // b:5, chain b:5 only (deleted links dropped)
  info_result r = b.kv->process_info(M({{"deleted", M({{"c", A({1, 2})}})}, {"node", "c"}}));
  CHECK(r.purged == 0);
  CHECK(b.kv->data().follow(b.kv->data().root(), array{value("m")}, false, 0)->data() ==
        value("again"));
}

TEST_CASE("s2s: garbage updates and infos never crash and never corrupt") {
  peer a("a"), b("b");
  a.set(P({"x"}), 1);
  a.set(P({"y", "z"}), 2);
  for (auto& m : a.sent) b.kv->receive_update(m);
  std::vector<std::string> before = b.dump();

  std::vector<value> bad = {
      value(),
      value(1),
      value("update"),
      A({}),
      M({}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({"x"})}, {"value", 1}}),             // no tock
      M({{"node", "a"}, {"tick", 9}, {"path", "x"}, {"value", 1}, {"tock", 1}}),     // str path
      M({{"node", 7}, {"tick", 9}, {"path", P({"x"})}, {"value", 1}, {"tock", 1}}),  // int node
      M({{"node", "a"}, {"tick", "9"}, {"path", P({"x"})}, {"tock", 1}}),            // str tick
      M({{"node", "a"}, {"tick", -4}, {"path", P({"x"})}, {"tock", 1}}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({"x"})}, {"tock", -1}}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({"x"})}, {"tock", 1.5}}),
      M({{"node", "a"}, {"tick", value(uint64_t{1} << 62)}, {"path", P({"x"})}, {"tock", 1}}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({"x"})}, {"tock", value(uint64_t{1} << 63)}}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({"x", value()})}, {"tock", 1}}),  // None inside
      M({{"node", "a"}, {"tick", 9}, {"path", P({M({})})}, {"tock", 1}}),
      M({{"node", "a"}, {"tick", 9}, {"path", P({std::nan("")})}, {"tock", 1}}),
      M({{"node", "a"}, {"tick", 9}, {"prev", 5}, {"path", P({"x"})}, {"tock", 1}}),
      M({{"node", "a"},
         {"tick", 9},
         {"prev", M({{"node", "a"}, {"tick", 2}})},
         {"path", P({"x"})},
         {"tock", 1}}),  // node twice
      M({{"chain", value()}, {"path", P({"x"})}, {"tock", 1}, {"value", 3}}),
      M({{"chain", "a"}, {"path", P({"x"})}, {"tock", 1}, {"value", 3}}),
      M({{"tick", 3}, {"path", P({"x"})}, {"tock", 1}, {"value", 3}}),
  };
  for (const auto& m : bad) {
    CAPTURE(debug_string(m));
    CHECK(b.kv->receive_update(m).status == update_status::malformed);
    CHECK_NOTHROW(b.kv->process_info(m));
  }
  std::vector<value> bad_info = {
      M({{"ticks", 5}}),
      M({{"ticks", M({{1, 2}, {"q", "x"}, {"r", -1}, {"s", value(uint64_t{1} << 62)}})}}),
      M({{"missing", A({1})}}),
      M({{"missing", M({{"a", "x"}})}}),
      M({{"missing", M({{"a", A({A({5, 1})})}})}}),
      M({{"known", M({{"a", A({A({1, 2, 3})})}})}}),
      M({{"deleted", M({{"a", M({})}})}}),
      M({{"node_drop", "a"}}),
      M({{"node_drop", A({1, value(), "b", "zzz"})}}),
      M({{"node", 5}, {"tock", "x"}}),
  };
  for (const auto& m : bad_info) {
    CAPTURE(debug_string(m));
    CHECK_NOTHROW(b.kv->process_info(m));
    CHECK_NOTHROW(b.kv->process_state(m));
  }
  CHECK(b.dump() == before);

  // Random maps built from the field names and random values.
  std::mt19937 rng(4711);
  std::vector<value> atoms = {value(),
                              value(true),
                              value(0),
                              value(-1),
                              value(3),
                              value(1.5),
                              value("a"),
                              value("b"),
                              value("x"),
                              P({"x"}),
                              P({}),
                              A({1, 2}),
                              A({A({1, 3})}),
                              M({{"a", A({1})}}),
                              M({{"node", "a"}}),
                              value(uint64_t{1} << 60),
                              P({value(), "x"})};
  std::vector<const char*> keys = {"node",       "tick",      "prev",           "path",
                                   "value",      "tock",      "chain",          "ticks",
                                   "missing",    "known",     "deleted",        "node_drop",
                                   "superseded", "new_value", "remote_missing", "nodes"};
  auto rnd = [&](auto& self, int depth) -> value {
    if (depth > 2 || rng() % 3 != 0) return atoms[rng() % atoms.size()];
    map m;
    int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i)
      m.emplace_back(value(keys[rng() % keys.size()]), self(self, depth + 1));
    return value(std::move(m));
  };
  for (int i = 0; i < 3000; ++i) {
    map m;
    int n = static_cast<int>(rng() % 7);
    for (int k = 0; k < n; ++k) m.emplace_back(value(keys[rng() % keys.size()]), rnd(rnd, 0));
    value msg(std::move(m));
    CHECK_NOTHROW(b.kv->receive_update(msg));
    CHECK_NOTHROW(b.kv->process_info(msg));
    if (i % 3 == 0) CHECK_NOTHROW(b.kv->missing_data());
  }
  // Still consistent: get_tree answers, every present tick maps to an entry that holds it.
  std::vector<std::string> after = b.dump();
  CHECK_FALSE(after.empty());
  for (const auto& n : b.kv->data().nodes().all())
    for (const auto& [tick, e] : n->entries) {
      const chain_link* l = e->event_chain().find(n->name);
      REQUIRE(l != nullptr);
      CHECK(l->tick == tick);
      CHECK(n->present.contains(tick));
    }
}
