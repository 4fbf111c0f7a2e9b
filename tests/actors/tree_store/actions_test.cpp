// The client actions, replaying client-wire-transcript.txt (the demo CLI commands and the
// LIB SESSION) through kv_store::handle and checking the reply shapes.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "actors/tree_store/tree.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {

struct emitted {
  uint64_t conn;
  int64_t seq;
  value msg;
};

struct server {
  std::shared_ptr<tock_clock> clock = std::make_shared<tock_clock>();
  kv_store kv{"node1", clock};
  std::vector<emitted> out;
  server() {
    kv.set_watch_emitter([this](uint64_t c, int64_t s, value m) {
      out.push_back({c, s, std::move(m)});
    });
    kv.set_initial_root("Init");  // `server -I Init node1`
  }
  value one(uint64_t conn, std::initializer_list<map_item> req) {
    return single(kv, conn, value(map(req)));
  }
  action_result run(uint64_t conn, std::initializer_list<map_item> req) {
    return kv.handle(conn, value(map(req)));
  }
};

std::vector<std::string> keys(const value& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m.as_map()) out.push_back(k.as_str());
  return out;
}
using K = std::vector<std::string>;

const value node1_chain(int64_t tick) {
  return M({{"node", "node1"}, {"tick", tick}, {"prev", nullptr}});
}

}  // namespace

TEST_CASE("greeting and the initial root value (server -I Init)") {
  server s;
  value g = s.kv.greeting(10);
  CHECK(keys(g) == K{"seq", "version", "node", "tick", "tock", "qlen"});
  CHECK(at(g, "version") == A({0, 1, 0}));
  CHECK(at(g, "node") == value("node1"));
  CHECK(at(g, "tick") == value(1));
  CHECK(at(g, "tock") == value(5));  // as in the transcript: root 1, init event 2..4
  CHECK(at(g, "qlen") == value(10));
  value r = s.one(1, {{"path", P({})}, {"nchain", false}, {"action", "get_value"}, {"seq", 2}});
  CHECK(r == M({{"value", "Init"}, {"tock", 3}}));

  kv_store fresh("n", std::make_shared<tock_clock>());
  CHECK(at(fresh.greeting(10), "tick").is_nil());
  CHECK(!fresh.own_tick());
}

TEST_CASE("demo CLI: set, get, get_tree, list, monitor, delete, delete -r") {
  server s;
  // The CLI's own config watch: nothing there, just the marker; the stream stays open.
  action_result cfg = s.run(1, {{"action", "watch"},
                                {"nchain", 3},
                                {"path", P({".moat", "kv", "config"})},
                                {"fetch", true},
                                {"seq", 1}});
  CHECK(cfg.stream);
  CHECK(cfg.open);
  REQUIRE(cfg.messages.size() == 1);
  CHECK(cfg.messages[0] == M({{"state", "uptodate"}}));

  // demo.a set -e : 123
  CHECK(s.one(2, {{"path", P({"demo", "a"})}, {"nchain", 2}, {"action", "get_value"}}) ==
        M({{"chain", nullptr}}));
  value r = s.one(2, {{"path", P({"demo", "a"})},
                      {"value", 123},
                      {"nchain", false},
                      {"chain", nullptr},
                      {"action", "set_value"}});
  CHECK(keys(r) == K{"changed", "tock"});
  CHECK(at(r, "changed") == value(true));
  int64_t tock_a = int_at(r, "tock");
  // -m demo.a get
  r = s.one(3, {{"path", P({"demo", "a"})}, {"nchain", 3}, {"action", "get_value"}});
  CHECK(r == M({{"value", 123}, {"chain", node1_chain(2)}, {"tock", tock_a}}));
  // "chain: None" = must be new: now refused.
  r = s.one(
      3, {{"path", P({"demo", "a"})}, {"value", 1}, {"chain", nullptr}, {"action", "set_value"}});
  CHECK(at(r, "error") == value("ClientChainError('Entry already exists at demo.a')"));

  s.one(4, {{"path", P({"demo", "b"})},
            {"value", M({{"x", "hello"}, {"y", 2}})},
            {"nchain", false},
            {"chain", nullptr},
            {"action", "set_value"}});
  s.one(5, {{"path", P({"demo", "b", "c"})},
            {"value", "some text"},
            {"nchain", false},
            {"chain", nullptr},
            {"action", "set_value"}});

  // demo get -rd_
  action_result t = s.run(6, {{"path", P({"demo"})}, {"long_path", true}, {"action", "get_tree"}});
  CHECK(t.stream);
  CHECK_FALSE(t.open);
  REQUIRE(t.messages.size() == 3);
  CHECK(keys(t.messages[0]) == K{"value", "tock", "path", "depth"});
  CHECK(t.messages[0] == M({{"value", 123}, {"tock", tock_a}, {"path", A({"a"})}, {"depth", 0}}));
  CHECK(at(t.messages[1], "path") == A({"b"}));
  CHECK(at(t.messages[1], "depth") == value(0));
  CHECK(at(t.messages[2], "value") == value("some text"));
  CHECK(at(t.messages[2], "path") == A({"c"}));
  CHECK(at(t.messages[2], "depth") == value(1));
  CHECK(at(t.messages[2], "path").is_array());

  // demo list = get_tree min_depth 1 max_depth 1 empty
  t = s.run(7, {{"path", P({"demo"})},
                {"max_depth", 1},
                {"min_depth", 1},
                {"empty", true},
                {"action", "get_tree"}});
  REQUIRE(t.messages.size() == 2);
  CHECK(at(t.messages[0], "path") == A({"a"}));
  CHECK(at(t.messages[1], "path") == A({"b"}));

  // demo monitor (no fetch): stream open, nothing yet.
  action_result w = s.run(8, {{"action", "watch"},
                              {"path", P({"demo"})},
                              {"nchain", false},
                              {"fetch", false},
                              {"max_depth", -1},
                              {"seq", 2}});
  CHECK(w.stream);
  CHECK(w.open);
  CHECK(w.messages.empty());
  s.out.clear();

  // demo.a set -e : 124 (with the chain just read)
  r = s.one(9, {{"path", P({"demo", "a"})},
                {"value", 124},
                {"nchain", false},
                {"chain", node1_chain(2)},
                {"action", "set_value"}});
  CHECK(keys(r) == K{"changed", "tock"});
  REQUIRE(s.out.size() == 1);
  CHECK(s.out[0].conn == 8);
  CHECK(s.out[0].seq == 2);
  CHECK(s.out[0].msg ==
        M({{"value", 124}, {"tock", at(r, "tock")}, {"path", A({"a"})}, {"depth", 0}}));

  // demo.a delete
  r = s.one(10, {{"path", P({"demo", "a"})}, {"nchain", false}, {"action", "delete_value"}});
  CHECK(keys(r) == K{"changed", "prev", "tock"});
  CHECK(at(r, "prev") == value(124));
  REQUIRE(s.out.size() == 2);
  CHECK(s.out[1].msg == M({{"tock", at(r, "tock")}, {"path", A({})}, {"depth", 1}}));

  // demo.b delete -r
  r = s.one(11, {{"path", P({"demo", "b"})}, {"nchain", false}, {"action", "delete_tree"}});
  CHECK(r == M({{"changed", 2}}));
  REQUIRE(s.out.size() == 4);
  CHECK(keys(s.out[2].msg) == K{"tock", "path", "depth"});
  CHECK(at(s.out[2].msg, "path") == A({"b"}));
  CHECK(at(s.out[2].msg, "depth") == value(0));
  CHECK(at(s.out[3].msg, "path") == A({"c"}));
  CHECK(at(s.out[3].msg, "depth") == value(1));

  // The connection closes: its watches go.
  s.kv.drop_connection(8);
  s.one(12, {{"path", P({"demo", "z"})}, {"value", 1}, {"action", "set_value"}});
  CHECK(s.out.size() == 4);
}

TEST_CASE("LIB SESSION of the transcript") {
  server s;
  const uint64_t c = 12;
  CHECK(s.one(c, {{"path", P({"wire", "missing"})},
                  {"nchain", 0},
                  {"action", "get_value"},
                  {"seq", 2}}) == M({}));

  value r =
      s.one(c, {{"path", P({"wire", "a"})}, {"value", 42}, {"nchain", 2}, {"action", "set_value"}});
  CHECK(keys(r) == K{"changed", "chain", "tock"});
  int64_t t1 = int_at(at(r, "chain"), "tick");
  CHECK(at(r, "chain") == node1_chain(t1));

  r = s.one(c, {{"path", P({"wire", "a"})},
                {"value", 43},
                {"nchain", 1},
                {"chain", node1_chain(t1)},
                {"action", "set_value"}});
  CHECK(at(r, "changed") == value(true));
  CHECK(at(r, "chain") == node1_chain(t1 + 1));
  int64_t tock_43 = int_at(r, "tock");

  r = s.one(c, {{"path", P({"wire", "a"})},
                {"value", 44},
                {"nchain", 0},
                {"chain", node1_chain(t1)},
                {"action", "set_value"}});
  CHECK(r ==
        M({{"error", "ClientChainError('Chain is <NodeEvent node1:" + std::to_string(t1 + 1) +
                         " (" + std::to_string(t1 + 1) + ",)> not <NodeEvent node1:" +
                         std::to_string(t1) + " (" + std::to_string(t1) + ",)> for wire.a')"}}));

  r = s.one(c, {{"path", P({"wire", "b", "c"})},
                {"value", M({{"x", 1}, {"y", A({1, 2, "three"})}})},
                {"nchain", 0},
                {"action", "set_value"}});
  CHECK(keys(r) == K{"changed", "tock"});
  s.one(c, {{"path", P({"wire", "b", "d"})},
            {"value", bin{std::string("\0\1bytes", 7)}},
            {"nchain", 0},
            {"action", "set_value"}});
  s.one(
      c,
      {{"path", P({"wire", 1, true})}, {"value", nullptr}, {"nchain", 0}, {"action", "set_value"}});

  r = s.one(c, {{"path", P({"wire", "a"})}, {"nchain", 3}, {"action", "get_value"}});
  CHECK(r == M({{"value", 43}, {"chain", node1_chain(t1 + 1)}, {"tock", tock_43}}));

  action_result t =
      s.run(c, {{"path", P({"wire"})}, {"long_path", true}, {"nchain", 0}, {"action", "get_tree"}});
  REQUIRE(t.messages.size() == 4);
  CHECK(at(t.messages[0], "path") == A({"a"}));
  CHECK(at(t.messages[1], "path") == A({"b", "c"}));
  CHECK(at(t.messages[1], "depth") == value(0));
  CHECK(at(t.messages[2], "path") == A({"d"}));
  CHECK(at(t.messages[2], "depth") == value(1));
  CHECK(at(t.messages[3], "value").is_nil());
  CHECK(at(t.messages[3], "path") == A({1, true}));
  CHECK(at(t.messages[3], "depth") == value(0));

  CHECK(s.one(c,
              {{"path", P({"wire"})}, {"with_data", false}, {"empty", true}, {"action", "enum"}}) ==
        M({{"result", A({"a", "b", 1})}}));
  CHECK(s.one(c, {{"path", P({"wire", "b"})},
                  {"with_data", true},
                  {"empty", false},
                  {"action", "enum"}}) ==
        M({{"result", M({{"c", M({{"x", 1}, {"y", A({1, 2, "three"})}})},
                         {"d", bin{std::string("\0\1bytes", 7)}}})}}));
  CHECK(s.one(c, {{"path", P({"wire"})}, {"action", "enum"}}) == M({{"result", A({"a"})}}));

  value tk = s.one(c, {{"action", "get_tock"}});
  CHECK(keys(tk) == K{"tock"});
  CHECK(int_at(tk, "tock") > tock_43);

  // watch with fetch: the current state, then the marker; the stream stays open.
  action_result w = s.run(c, {{"action", "watch"},
                              {"path", P({"wire"})},
                              {"iter", true},
                              {"long_path", true},
                              {"fetch", true},
                              {"nchain", 1},
                              {"max_depth", 3},
                              {"seq", 14}});
  CHECK(w.open);
  REQUIRE(w.messages.size() == 5);
  CHECK(keys(w.messages[0]) == K{"value", "chain", "tock", "path", "depth"});
  CHECK(w.messages[0] == M({{"value", 43},
                            {"chain", node1_chain(t1 + 1)},
                            {"tock", tock_43},
                            {"path", A({"a"})},
                            {"depth", 0}}));
  CHECK(at(w.messages[2], "path") == A({"d"}));
  CHECK(w.messages[4] == M({{"state", "uptodate"}}));
  s.out.clear();

  r = s.one(
      c,
      {{"path", P({"wire", "w"})}, {"value", "watched"}, {"nchain", 0}, {"action", "set_value"}});
  REQUIRE(s.out.size() == 1);
  CHECK(s.out[0].seq == 14);
  CHECK(keys(s.out[0].msg) == K{"value", "chain", "tock", "path", "depth"});
  CHECK(at(s.out[0].msg, "path") == A({"w"}));
  CHECK(at(s.out[0].msg, "tock") == at(r, "tock"));

  r = s.one(c, {{"path", P({"wire", "w"})}, {"nchain", 0}, {"action", "delete_value"}});
  CHECK(keys(r) == K{"changed", "prev", "tock"});
  CHECK(at(r, "prev") == value("watched"));
  REQUIRE(s.out.size() == 2);
  CHECK(keys(s.out[1].msg) == K{"chain", "tock", "path", "depth"});
  CHECK(at(s.out[1].msg, "path") == A({}));
  CHECK(at(s.out[1].msg, "depth") == value(1));

  CHECK(s.kv.cancel_watch(c, 14));
  CHECK_FALSE(s.kv.cancel_watch(c, 14));

  r = s.one(c, {{"path", P({"wire", "a"})}, {"nchain", 2}, {"action", "delete_value"}});
  CHECK(keys(r) == K{"changed", "prev", "chain", "tock"});
  CHECK(at(r, "prev") == value(43));
  CHECK(s.out.size() == 2);  // the watch is gone

  // Our fix: only the three entries holding a value (b.c, b.d, 1.True (nil)) are deleted;
  // the original reports 7 (it re-deletes tombstones and intermediate entries).
  CHECK(s.one(c, {{"path", P({"wire"})}, {"nchain", 0}, {"action", "delete_tree"}}) ==
        M({{"changed", 3}}));
  r = s.one(c, {{"path", P({"wire", "b", "c"})}, {"nchain", 0}, {"action", "get_value"}});
  CHECK(keys(r) == K{"tock"});  // a tombstone: its tock, no value

  r = s.one(c, {{"action", "no_such_action"}, {"seq", 21}});
  CHECK(at(r, "error") == value("KeyError(\"Unknown action 'no_such_action'\")"));
}

TEST_CASE("delete_tree with nchain streams deletion records") {
  server s;
  s.one(1, {{"path", P({"t", "a"})}, {"value", 1}, {"action", "set_value"}});
  s.one(1, {{"path", P({"t", "a", "b"})}, {"value", 2}, {"action", "set_value"}});
  action_result r = s.run(1, {{"path", P({"t"})}, {"nchain", 1}, {"action", "delete_tree"}});
  CHECK(r.stream);
  CHECK_FALSE(r.open);
  REQUIRE(r.messages.size() == 2);
  CHECK(keys(r.messages[0]) == K{"node", "tick", "prev", "path", "old_value", "tock", "depth"});
  CHECK(at(r.messages[0], "path") == A({"a"}));
  CHECK(at(r.messages[0], "old_value") == value(1));
  CHECK(at(r.messages[1], "path") == A({"b"}));
  CHECK(at(r.messages[1], "depth") == value(1));
  CHECK(at(s.one(1, {{"path", P({})}, {"action", "delete_tree"}}), "error") ==
        value("ClientError(\"You can't delete the root node\")"));
}

TEST_CASE("set_value / delete_value checks: prev, idem, chain, value") {
  server s;
  value p = P({"k"});
  CHECK(at(s.one(1, {{"path", p}, {"action", "set_value"}}), "error") ==
        value("ClientError(\"Call 'delete_value' if you want to clear the value\")"));
  CHECK(at(s.one(1, {{"path", p}, {"value", 1}, {"action", "delete_value"}}), "error") ==
        value("ClientError(\"A deleted entry can't have a value\")"));
  CHECK(
      at(s.one(1, {{"path", p}, {"value", 1}, {"chain", node1_chain(1)}, {"action", "set_value"}}),
         "error") == value("ClientChainError('Entry is new at k')"));
  value r = s.one(1, {{"path", p}, {"value", 1}, {"action", "set_value"}});
  CHECK(keys(r) == K{"changed", "chain", "tock"});  // nchain defaults to 1
  // Same value without idem: still a new event, changed false.
  value r2 = s.one(1, {{"path", p}, {"value", 1.0}, {"action", "set_value"}});
  CHECK(at(r2, "changed") == value(false));
  CHECK(at(r2, "prev") == value(1));
  CHECK(int_at(at(r2, "chain"), "tick") == int_at(at(r, "chain"), "tick") + 1);
  // idem: same type and equal: no event.
  value r3 = s.one(1, {{"path", p}, {"value", 1.0}, {"idem", true}, {"action", "set_value"}});
  CHECK(keys(r3) == K{"tock", "changed", "chain"});
  CHECK(at(r3, "chain") == at(r2, "chain"));
  // idem with a different type (int vs float) is a change.
  value r4 = s.one(1, {{"path", p}, {"value", 1}, {"idem", true}, {"action", "set_value"}});
  CHECK(int_at(at(r4, "chain"), "tick") == int_at(at(r2, "chain"), "tick") + 1);
  // prev
  CHECK(at(s.one(1, {{"path", p}, {"value", 2}, {"prev", 5}, {"action", "set_value"}}), "error") ==
        value("ClientError('Data is 1 not 5 at k')"));
  value r5 = s.one(1, {{"path", p}, {"value", 2}, {"prev", true}, {"action", "set_value"}});
  CHECK(keys(r5) == K{"changed", "chain", "tock"});  // prev given: no prev in the reply
  // delete of a missing entry: an event all the same, changed false.
  value r6 = s.one(1, {{"path", P({"nothing"})}, {"action", "delete_value"}});
  CHECK(at(r6, "changed") == value(false));
}

TEST_CASE("malformed requests get an error reply, never an exception") {
  server s;
  auto err = [&](const value& req) {
    action_result r = s.kv.handle(1, req);
    REQUIRE(r.messages.size() == 1);
    return at(r.messages[0], "error");
  };
  CHECK(err(value(5)).is_str());
  CHECK(err(M({{"path", P({"a"})}})).is_str());
  CHECK(err(M({{"action", 5}})).is_str());
  value e = err(M({{"action", "get_value"}, {"path", "a.b"}}));
  REQUIRE(e.is_str());
  CHECK(e.as_str().find("string") != std::string::npos);
  CHECK(err(M({{"action", "get_value"}})).is_str());
  CHECK(err(M({{"action", "set_value"}, {"path", P({"a"})}, {"value", 1}, {"nchain", "x"}}))
            .is_str());
  CHECK(err(M({{"action", "set_value"}, {"path", P({"a"})}, {"value", 1}, {"chain", 7}})).is_str());
  CHECK(err(M({{"action", "enum"}, {"path", P({nullptr})}})) ==
        value("ValueError('Null path element')"));
  CHECK(err(M({{"action", "enum"}, {"path", P({"no", "such"})}})) ==
        value("KeyError(P('no.such'))"));
  // get_tree reports errors inside its stream, as the original.
  action_result t = s.kv.handle(1, M({{"action", "get_tree"}, {"path", P({"no"})}}));
  CHECK(t.stream);
  REQUIRE(t.messages.size() == 1);
  CHECK(at(t.messages[0], "error") == value("KeyError(P('no'))"));
  // Integers may come as bools or integral floats, paths as arrays.
  value r = single(s.kv, 1,
                   M({{"action", "set_value"}, {"path", A({"f"})}, {"value", 1}, {"nchain", 2.0}}));
  CHECK(has_key(r, "chain"));
  r = single(s.kv, 1,
             M({{"action", "set_value"}, {"path", A({"f"})}, {"value", 2}, {"nchain", false}}));
  CHECK_FALSE(has_key(r, "chain"));
  CHECK(err(M({{"action", "set_value"}, {"path", A({"f"})}, {"value", 2}, {"nchain", 2.5}}))
            .is_str());
}

TEST_CASE("get_value by node and tick") {
  server s;
  value r = s.one(1, {{"path", P({"n", "x"})}, {"value", 7}, {"action", "set_value"}});
  int64_t tick = int_at(at(r, "chain"), "tick");
  value g = s.one(1, {{"node", "node1"}, {"tick", tick}, {"action", "get_value"}});
  CHECK(keys(g) == K{"value", "tock", "path"});
  CHECK(at(g, "path") == P({"n", "x"}));
  CHECK(at(g, "path").is_path());
  CHECK(at(s.one(1, {{"node", "nobody"}, {"tick", 1}, {"action", "get_value"}}), "error") ==
        value("KeyError('nobody')"));
}

TEST_CASE("watch: meta-tree changes are not sent; max_depth and min_depth filter") {
  server s;
  s.run(1, {{"action", "watch"}, {"path", P({})}, {"seq", 1}});
  s.run(1,
        {{"action", "watch"}, {"path", P({"d"})}, {"min_depth", 1}, {"max_depth", 1}, {"seq", 2}});
  s.out.clear();
  s.one(1, {{"action", "set_internal"}, {"path", P({"hidden"})}, {"value", 1}});
  CHECK(s.out.empty());
  s.one(1, {{"action", "set_value"}, {"path", P({"d"})}, {"value", 1}});            // seq 1 only
  s.one(1, {{"action", "set_value"}, {"path", P({"d", "e"})}, {"value", 1}});       // both
  s.one(1, {{"action", "set_value"}, {"path", P({"d", "e", "f"})}, {"value", 1}});  // seq 1 only
  std::vector<int64_t> seqs;
  for (const auto& e : s.out) seqs.push_back(e.seq);
  CHECK(seqs == std::vector<int64_t>{1, 2, 1, 1});
  // Root watch, empty prefix: depth-0 records are Paths.
  CHECK(at(s.out[0].msg, "path").is_path());
  CHECK(at(s.out[0].msg, "path") == P({"d"}));
}

TEST_CASE("internal actions work relative to the meta root") {
  server s;
  value r = s.one(1, {{"action", "set_internal"}, {"path", P({"acl", "x"})}, {"value", "rw"}});
  CHECK(at(r, "changed") == value(true));
  CHECK(at(s.one(1, {{"action", "get_internal"}, {"path", P({"acl", "x"})}}), "value") ==
        value("rw"));
  CHECK(at(s.one(1, {{"action", "get_value"}, {"path", P({nullptr, "acl", "x"})}}), "value") ==
        value("rw"));
  CHECK(s.one(1, {{"action", "enum_internal"}, {"path", P({"acl"})}}) == M({{"result", A({"x"})}}));
  action_result t = s.run(1, {{"action", "get_tree_internal"}, {"path", P({})}});
  REQUIRE(t.messages.size() == 1);
  CHECK(at(t.messages[0], "path") == A({"acl", "x"}));
  // Not visible in the normal get_tree.
  t = s.run(1, {{"action", "get_tree"}, {"path", P({})}});
  REQUIRE(t.messages.size() == 1);  // the root's "Init"
  r = s.one(1, {{"action", "delete_internal"}, {"path", P({"acl", "x"})}});
  CHECK(at(r, "prev") == value("rw"));
}

TEST_CASE("root (chroot) applies to later requests of that connection only") {
  server s;
  s.one(1, {{"action", "set_value"}, {"path", P({"sub", "a"})}, {"value", 1}});
  value r = s.one(2, {{"action", "root"}, {"path", P({"sub"})}});
  CHECK(at(r, "path") == A({}));
  CHECK(at(r, "path").is_array());
  CHECK(at(s.one(2, {{"action", "get_value"}, {"path", P({"a"})}}), "value") == value(1));
  CHECK_FALSE(has_key(s.one(1, {{"action", "get_value"}, {"path", P({"a"})}}), "value"));
  action_result t = s.run(2, {{"action", "get_tree"}, {"path", P({})}});
  REQUIRE(t.messages.size() == 1);
  CHECK(at(t.messages[0], "path") == A({"a"}));
  CHECK(at(t.messages[0], "path").is_array());
  s.kv.drop_connection(2);
  CHECK_FALSE(has_key(s.one(2, {{"action", "get_value"}, {"path", P({"a"})}}), "value"));
}

TEST_CASE("get_state reports the node table") {
  server s;
  s.one(1, {{"action", "set_value"}, {"path", P({"x"})}, {"value", 1}});
  s.one(1, {{"action", "set_value"}, {"path", P({"x"})}, {"value", 2}});
  s.one(1, {{"action", "delete_value"}, {"path", P({"x"})}});
  value r = s.one(1, {{"action", "get_state"},
                      {"nodes", true},
                      {"known", true},
                      {"present", true},
                      {"deleted", true},
                      {"missing", true},
                      {"remote_missing", true},
                      {"node_drop", true}});
  CHECK(keys(r) == K{"nodes", "known", "present", "deleted", "missing", "remote_missing",
                     "node_drop", "node", "tock"});
  CHECK(at(r, "nodes") == M({{"node1", 4}}));
  CHECK(at(r, "known") == M({{"node1", A({A({2, 4})})}}));
  CHECK(at(r, "present") == M({{"node1", A({1, 4})}}));
  CHECK(at(r, "deleted") == M({{"node1", A({4})}}));
  CHECK(at(r, "missing") == M({}));
  CHECK(at(r, "node_drop") == A({}));
  CHECK(at(r, "node") == value("node1"));
}
