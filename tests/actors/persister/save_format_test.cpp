// Save files and change logs (server-internals §6, §7.5): saves and logs written by
// save_format round-trip through record_loader / load_file into an equal store; files built by
// hand in the original's format load; our output has the original's wire shape; damaged files
// are handled as file_loader.hpp describes.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../tree_store/test_util.hpp"
#include "actors/persister/file_loader.hpp"
#include "actors/persister/save_format.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/msgpack_codec.hpp"
#include "tests/temp_dir.hpp"

using namespace moatkv;
using namespace moatkv::test;
namespace fs = std::filesystem;

namespace {

#define CHECK_VALUE(a, b) CHECK_MESSAGE((a) == (b), debug_string(a) << "  !=  " << debug_string(b))


void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

// A store with its own clock.
struct store {
  std::shared_ptr<tock_clock> clock = std::make_shared<tock_clock>();
  kv_store kv;
  explicit store(const char* name) : kv(name, clock) {}
};

value put(kv_store& kv, const value& path, const value& v, const char* action = "set_value") {
  value r = single(kv, 1, M({{"action", action}, {"path", path}, {"value", v}}));
  CHECK_MESSAGE(!has_key(r, "error"), debug_string(r));
  return r;
}

value del(kv_store& kv, const value& path, const char* action = "delete_value") {
  value r = single(kv, 1, M({{"action", action}, {"path", path}}));
  CHECK_MESSAGE(!has_key(r, "error"), debug_string(r));
  return r;
}

// A wire chain {node, tick, prev: {...}} ending in prev: nil, most recent link first.
value chain_of(std::initializer_list<std::pair<const char*, int64_t>> links) {
  std::vector<std::pair<const char*, int64_t>> v(links);
  value below;
  for (auto it = v.rbegin(); it != v.rend(); ++it)
    below = M({{"node", it->first}, {"tick", it->second}, {"prev", below}});
  return below;
}

// A flat update (§3.4 shape A / §6 update record): {node, tick, prev, path, depth?, value?,
// tock}.
value flat_update(const value& chain, const value& path, std::optional<value> v, int64_t tock,
                  std::optional<int64_t> depth = std::nullopt) {
  value m = chain;
  m.as_map().emplace_back(value("path"), path);
  if (depth) m.as_map().emplace_back(value("depth"), value(*depth));
  if (v) m.as_map().emplace_back(value("value"), *v);
  m.as_map().emplace_back(value("tock"), value(tock));
  return m;
}

void receive(kv_store& kv, const value& update) {
  update_result r = kv.receive_update(update);
  CHECK_MESSAGE(r.accepted(), debug_string(update) << ": " << r.error);
}

std::string chain_text(const chain& c) {
  std::string out;
  for (const auto& l : c.links()) out += l.node.str() + ":" + std::to_string(l.tick) + " ";
  return out;
}

// What a test compares of an entry that holds a value or a chain.
struct entry_state {
  std::optional<value> data;
  std::string chain;
  uint64_t tock = 0;
};

// path (as debug text) -> state, for every entry with a value or a chain.
std::map<std::string, entry_state> dump(kv_store& kv, bool meta = true) {
  std::map<std::string, entry_state> out;
  std::vector<const entry*> stack{&kv.data().root()};
  while (!stack.empty()) {
    const entry* e = stack.back();
    stack.pop_back();
    for (const auto& c : e->children()) stack.push_back(c.get());
    if (!meta && e->is_meta()) continue;
    if (!e->has_data() && e->event_chain().empty()) continue;
    out[debug_string(value(e->path()))] =
        entry_state{e->maybe_data(), chain_text(e->event_chain()), e->tock()};
  }
  return out;
}

void check_same_tree(kv_store& want, kv_store& got, bool meta = true) {
  auto w = dump(want, meta);
  auto g = dump(got, meta);
  CHECK(w.size() == g.size());
  for (const auto& [path, ws] : w) {
    INFO("path " << path);
    auto it = g.find(path);
    REQUIRE_MESSAGE(it != g.end(), "missing in the loaded store");
    const entry_state& gs = it->second;
    CHECK(ws.data.has_value() == gs.data.has_value());
    if (ws.data && gs.data) CHECK_VALUE(*ws.data, *gs.data);
    CHECK(ws.chain == gs.chain);
    CHECK(ws.tock == gs.tock);
  }
  for (const auto& [path, gs] : g) CHECK_MESSAGE(w.count(path) == 1, "extra entry " << path);
}

value get_state(kv_store& kv) {
  return single(kv, 1,
                M({{"action", "get_state"},
                   {"nodes", true},
                   {"known", true},
                   {"present", true},
                   {"deleted", true}}));
}

const entry* lookup(kv_store& kv, const value& path) {
  return kv.data().follow(kv.data().root(), path.elements(), false, 2);
}

// Split a file image into its records.
std::vector<value> records_of(const std::string& bytes) {
  std::vector<value> out;
  stream_decoder d;
  d.feed(bytes.data(), bytes.size());
  value v;
  while (d.next(v)) out.push_back(v);
  CHECK(d.pending_bytes() == 0);
  return out;
}

std::vector<std::string> keys(const value& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m.as_map()) out.push_back(k.is_str() ? k.as_str() : "?");
  return out;
}
using K = std::vector<std::string>;

struct load_result {
  bool whole = false;
  std::vector<std::string> warnings;
  size_t done_reports = 0;
};

load_result load(record_loader& loader, const std::string& file, bool skip_damaged = false) {
  load_result r;
  file_load_options o;
  o.skip_damaged = skip_damaged;
  o.warn = [&](const std::string& w) { r.warnings.push_back(w); };
  o.progress = [&](const load_progress& p) {
    if (p.done) ++r.done_reports;
  };
  r.whole = load_file(loader, file, o);
  return r;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Store A of the round-trip tests: own node "a", values at several depths (an int path
// element, a bin value, nil, the root value, the meta tree), chains over three nodes,
// two tombstones, and superseded / deleted ticks of a fourth node from process_state.
void build_store_a(kv_store& a) {
  a.init_own_tick();
  put(a, P({}), "root-value");                                         // a1
  put(a, P({"top"}), 1);                                               // a2
  put(a, P({"top", "mid"}), M({{"k", A({1, 2})}}));                    // a3
  put(a, P({"top", "mid", "leaf"}), bin{std::string("\0\1\xff", 3)});  // a4
  put(a, P({"top", 7, "x"}), nullptr);                                 // a5
  put(a, P({"top", 7, "y"}), 2.5);                                     // a6
  put(a, P({"other"}), "o");                                           // a7
  put(a, P({"top", "mid"}), "mid2");                                   // a8, supersedes a3
  put(a, P({"x"}), "meta-x", "set_internal");                          // a9, at (None, "x")
  put(a, P({"gone"}), "soon");                                         // a10
  del(a, P({"gone"}));                                                 // a11, a tombstone
  int64_t t = static_cast<int64_t>(a.clock().peek()) + 10;
  receive(a, flat_update(chain_of({{"b", 1}, {"a", 2}}), P({"top"}), value("from-b"), t));
  receive(
      a, flat_update(chain_of({{"c", 4}, {"b", 1}, {"a", 2}}), P({"top"}), value("from-c"), t + 1));
  receive(a, flat_update(chain_of({{"b", 2}}), P({"remote", "deep", 3}), value(42), t + 2));
  receive(a, flat_update(chain_of({{"b", 3}}), P({nullptr, "acl", "y"}), value("rw"), t + 3));
  // c deletes "other": a tombstone with a two-node chain.
  receive(a, flat_update(chain_of({{"c", 5}, {"a", 7}}), P({"other"}), std::nullopt, t + 4));
  put(a, P({"remote", "deep", 3}), 43);  // a12, chain a12 b2
  info_result r =
      a.process_state(M({{"nodes", M({{"d", 12}, {"b", 7}})},
                         {"known", M({{"d", A({1, A({3, 5})})}, {"b", A({A({5, 7})})}})},
                         {"deleted", M({{"d", A({A({10, 12})})}})}}));
  CHECK(r.errors.empty());
}

}  // namespace

TEST_CASE("save round trip: a full save with tombstones loads into an equal store") {
  store a("a");
  build_store_a(a.kv);
  // Sanity of the setup.
  REQUIRE(a.kv.own_tick() == 12u);
  REQUIRE(lookup(a.kv, P({"other"})) != nullptr);
  REQUIRE(chain_text(lookup(a.kv, P({"top"}))->event_chain()) == "c:4 b:1 a:2 ");
  value sa = get_state(a.kv);
  REQUIRE(at(sa, "deleted") == M({{"a", A({7, 11})}, {"c", A({5})}, {"d", A({A({10, 12})})}}));

  size_t entries = 0;
  std::string bytes = encode_save(a.kv, save_options{true, true}, &entries);
  // root, top, top.mid, top.mid.leaf, top.7.x, top.7.y, remote.deep.3 and the meta entries
  // (None, x) and (None, acl, y): each once.
  CHECK(entries == 9);

  temp_dir tmp;
  const std::string file = tmp.file("save");
  write_raw(file, bytes);

  SUBCASE("into a store with the same name") {
    store b("a");
    record_loader loader(b.kv);
    load_result lr = load(loader, file);
    CHECK(lr.whole);
    CHECK(lr.warnings.empty());
    CHECK(lr.done_reports == 1);
    CHECK(loader.stats().state_records == 1);
    CHECK(loader.stats().updates == 9 + 2);  // entries + tombstones
    CHECK(loader.stats().accepted == 9 + 2);
    CHECK(loader.stats().skipped == 0);

    check_same_tree(a.kv, b.kv);
    // The tombstones, with their chains.
    const entry* gone = lookup(b.kv, P({"gone"}));
    REQUIRE(gone != nullptr);
    CHECK_FALSE(gone->has_data());
    CHECK(chain_text(gone->event_chain()) == "a:11 ");
    const entry* other = lookup(b.kv, P({"other"}));
    REQUIRE(other != nullptr);
    CHECK_FALSE(other->has_data());
    CHECK(chain_text(other->event_chain()) == "c:5 a:7 ");
    // Values of every kind, the int path element, the meta tree.
    CHECK_VALUE(lookup(b.kv, P({}))->data(), value("root-value"));
    CHECK_VALUE(lookup(b.kv, P({"top", "mid", "leaf"}))->data(),
                value(bin{std::string("\0\1\xff", 3)}));
    CHECK(lookup(b.kv, P({"top", "mid", "leaf"}))->data().is_bin());
    CHECK(lookup(b.kv, P({"top", 7, "x"}))->data().is_nil());
    CHECK(lookup(b.kv, P({"top", 7, "y"}))->data().is_float());
    CHECK_VALUE(lookup(b.kv, P({nullptr, "x"}))->data(), value("meta-x"));
    CHECK_VALUE(lookup(b.kv, P({nullptr, "acl", "y"}))->data(), value("rw"));
    CHECK_VALUE(at(single(b.kv, 1, M({{"action", "get_internal"}, {"path", P({"x"})}})), "value"),
                value("meta-x"));

    // The data is this node's own past: it may become ready on it, and continues its ticks.
    CHECK(b.kv.knows_own_tick());
    CHECK_FALSE(b.kv.ready());
    b.kv.init_own_tick();
    CHECK(b.kv.own_tick() == a.kv.own_tick());
    value sb = get_state(b.kv);
    CHECK_VALUE(at(sb, "nodes"), at(sa, "nodes"));
    CHECK_VALUE(at(sb, "known"), at(sa, "known"));
    CHECK_VALUE(at(sb, "present"), at(sa, "present"));
    CHECK_VALUE(at(sb, "deleted"), at(sa, "deleted"));
    CHECK(b.clock->peek() >= lookup(a.kv, P({"other"}))->tock());
    value r = put(b.kv, P({"new"}), 1);
    CHECK(int_at(at(r, "chain"), "tick") == 13);
  }

  SUBCASE("into a store with another name") {
    store z("z");
    record_loader loader(z.kv);
    load_result lr = load(loader, file);
    CHECK(lr.whole);
    CHECK(lr.warnings.empty());
    check_same_tree(a.kv, z.kv);
    CHECK_FALSE(z.kv.knows_own_tick());
    value sz = get_state(z.kv);
    value nodes = at(sz, "nodes");
    CHECK(at(nodes, "z").is_nil());
    map_erase(nodes.as_map(), "z");
    CHECK_VALUE(nodes, at(sa, "nodes"));
    CHECK_VALUE(at(sz, "known"), at(sa, "known"));
    CHECK_VALUE(at(sz, "present"), at(sa, "present"));
    CHECK_VALUE(at(sz, "deleted"), at(sa, "deleted"));
  }

  SUBCASE("full: false leaves out the meta tree") {
    size_t n = 0;
    std::string part = encode_save(a.kv, save_options{false, true}, &n);
    CHECK(n == 7);
    path_longener longener;
    for (value rec : records_of(part)) {
      std::string error;
      REQUIRE(longener.apply(rec, error));
      const value* p = rec.find("path");
      if (p == nullptr) continue;
      CHECK_MESSAGE((p->elements().empty() || !p->elements()[0].is_nil()), debug_string(rec));
    }
    write_raw(file, part);
    store b("b");
    record_loader loader(b.kv);
    CHECK(load(loader, file).whole);
    check_same_tree(a.kv, b.kv, /*meta=*/false);
    CHECK(lookup(b.kv, P({nullptr, "x"})) == nullptr);
    CHECK(lookup(b.kv, P({nullptr, "acl"})) == nullptr);
    CHECK(dump(b.kv).size() == dump(b.kv, false).size());
  }

  SUBCASE("without tombstones, the deleted entries are not in the file") {
    std::string part = encode_save(a.kv, save_options{true, false});
    write_raw(file, part);
    store b("b");
    record_loader loader(b.kv);
    CHECK(load(loader, file).whole);
    CHECK(loader.stats().updates == 9);
    CHECK(lookup(b.kv, P({"gone"})) == nullptr);
    CHECK(lookup(b.kv, P({"other"})) == nullptr);
  }
}

TEST_CASE("save wire shape: state record, entry records, depth compression, ext-3 paths") {
  store a("a");
  build_store_a(a.kv);
  std::vector<value> recs = records_of(encode_save(a.kv, save_options{true, true}));
  REQUIRE(recs.size() == 1 + 9 + 2);

  const value& st = recs[0];
  CHECK(keys(st) == K{"nodes", "known", "deleted", "node", "tock"});
  CHECK_VALUE(at(st, "node"), value("a"));
  CHECK(at(st, "nodes").is_map());
  CHECK_VALUE(at(at(st, "nodes"), "a"), value(12));
  // Deleted ticks are superseded too (Node.report_deleted).
  CHECK_VALUE(at(at(st, "known"), "d"), A({1, A({3, 5}), A({10, 12})}));
  CHECK_VALUE(at(at(st, "deleted"), "d"), A({A({10, 12})}));

  // The entry records, expanded as a loader does, name each valued entry once, in tree order.
  path_longener longener;
  std::vector<std::string> paths;
  bool compressed_sibling = false;
  size_t tombstones = 0;
  for (size_t i = 1; i < recs.size(); ++i) {
    const value& r = recs[i];
    INFO("record " << i << ": " << debug_string(r));
    const value& path = at(r, "path");
    int64_t depth = int_at(r, "depth");
    if (has_key(r, "value")) {
      CHECK(keys(r) == K{"value", "chain", "tock", "path", "depth"});
      CHECK(at(r, "chain").is_map());
    } else {
      // A tombstone: a flat update record with the full path.
      ++tombstones;
      CHECK(keys(r) == K{"node", "tick", "prev", "path", "tock", "depth"});
      CHECK(depth == 0);
    }
    if (depth == 0) {
      CHECK(path.is_path());
    } else {
      CHECK(path.is_array());
      if (path.elements().size() == 1) compressed_sibling = true;
    }
    value x = r;
    std::string error;
    REQUIRE(longener.apply(x, error));
    paths.push_back(debug_string(at(x, "path")));
    const entry* e = lookup(a.kv, at(x, "path"));
    REQUIRE(e != nullptr);
    // The record holds the entry's state: value, full chain, tock.
    if (has_key(r, "value")) CHECK_VALUE(at(r, "value"), e->data());
    value wire_chain = r;
    if (has_key(r, "chain")) {
      wire_chain = at(r, "chain");
    } else {
      for (const char* k : {"path", "tock", "depth"}) map_erase(wire_chain.as_map(), k);
    }
    CHECK_VALUE(wire_chain, e->event_chain().serialize(-1));
    CHECK(static_cast<uint64_t>(int_at(r, "tock")) == e->tock());
  }
  CHECK(tombstones == 2);
  CHECK(compressed_sibling);
  // The root first (path (), a Path), every entry once.
  CHECK(at(recs[1], "path") == P({}));
  CHECK(at(recs[1], "path").is_path());
  std::vector<std::string> sorted = paths;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  // top.mid.leaf follows top.mid as depth 2 ["leaf"].
  bool leaf_seen = false;
  for (const value& r : recs)
    if (at(r, "path") == A({"leaf"})) {
      leaf_seen = true;
      CHECK(int_at(r, "depth") == 2);
      CHECK(at(r, "path").is_array());
    }
  CHECK(leaf_seen);
  // The int path element survives as an int.
  CHECK(std::find(paths.begin(), paths.end(), debug_string(P({"top", 7, "x"}))) != paths.end());
}

TEST_CASE("log replay: an incremental log rebuilds the tree, deletions included") {
  store l("a");
  l.kv.init_own_tick();
  std::string log = encode(state_record(l.kv));
  path_shortener shortener;
  size_t nrec = 0;
  l.kv.data().add_change_listener([&](const change_event& ev) {
    if (ev.e.event_chain().empty()) return;
    encode(log, update_record(ev.e, shortener));
    ++nrec;
  });

  put(l.kv, P({"x", "b", "s"}), 1);
  put(l.kv, P({"y", "a", "q"}), 2);
  put(l.kv, P({"x", "b", "t"}), 3);
  put(l.kv, P({"x", "b", "t"}), 4);  // overwrite
  // The original's bug case: a deletion record, then records with depth > 0 that are
  // relative to the deleted path.
  del(l.kv, P({"y", "a", "q"}));
  put(l.kv, P({"y", "a", "r"}), 5);
  put(l.kv, P({"y", "a", "r", "deeper"}), 6);
  del(l.kv, P({"y", "a", "r", "deeper"}));
  put(l.kv, P({"y", "a", "r", "other"}), 7);
  put(l.kv, P({"z", 1}), bin{"b"});
  put(l.kv, P({"acl"}), "meta", "set_internal");
  int64_t t = static_cast<int64_t>(l.clock->peek()) + 5;
  receive(l.kv, flat_update(chain_of({{"b", 1}}), P({"y", "a", "s"}), value("remote"), t));
  receive(l.kv, flat_update(chain_of({{"b", 2}}), P({"y", "a", "s"}), std::nullopt, t + 1));
  receive(l.kv, flat_update(chain_of({{"b", 3}, {"a", 5}}), P({"y", "a", "q"}), value(8), t + 2));
  put(l.kv, P({"y", "a", "q", "kid"}), 9);
  CHECK(nrec == 15);

  // The records as written: the deletion of y.a.q is relative to x.b.t, y.a.r to it.
  std::vector<value> recs = records_of(log);
  REQUIRE(recs.size() == 16);
  CHECK(keys(recs[5]) == K{"node", "tick", "prev", "path", "tock", "depth"});
  CHECK_VALUE(at(recs[5], "path"), P({"y", "a", "q"}));
  CHECK(int_at(recs[5], "depth") == 0);
  CHECK_VALUE(at(recs[6], "path"), A({"r"}));
  CHECK(int_at(recs[6], "depth") == 2);
  CHECK(keys(recs[6]) == K{"node", "tick", "prev", "path", "value", "tock", "depth"});

  temp_dir tmp;
  const std::string file = tmp.file("log");
  write_raw(file, log);
  store r("a");
  record_loader loader(r.kv);
  load_result lr = load(loader, file);
  CHECK(lr.whole);
  CHECK(lr.warnings.empty());
  CHECK(loader.stats().updates == 15);
  CHECK(loader.stats().state_records == 1);
  CHECK(loader.stats().skipped == 0);
  check_same_tree(l.kv, r.kv);
  // Everything landed on the right path (a longener left behind by the deletion would put
  // y.a.r at x.b.r).
  CHECK(lookup(r.kv, P({"x", "b", "r"})) == nullptr);
  REQUIRE(lookup(r.kv, P({"y", "a", "r"})) != nullptr);
  CHECK_VALUE(lookup(r.kv, P({"y", "a", "r"}))->data(), value(5));
  CHECK_FALSE(lookup(r.kv, P({"y", "a", "r", "deeper"}))->has_data());
  CHECK_VALUE(lookup(r.kv, P({"y", "a", "q"}))->data(), value(8));
  CHECK(chain_text(lookup(r.kv, P({"y", "a", "q"}))->event_chain()) ==
        chain_text(lookup(l.kv, P({"y", "a", "q"}))->event_chain()));
  CHECK_FALSE(lookup(r.kv, P({"y", "a", "s"}))->has_data());
  CHECK(r.kv.knows_own_tick());
  r.kv.init_own_tick();
  CHECK(r.kv.own_tick() == l.kv.own_tick());
}

TEST_CASE("log replay: a save followed by the updates in one file") {
  store f("a");
  f.kv.init_own_tick();
  put(f.kv, P({"cfg"}), M({{"a", 1}}));
  put(f.kv, P({"data", "one"}), 1);
  put(f.kv, P({"data", "two"}), 2);
  put(f.kv, P({"data", "two", "sub"}), 3);
  put(f.kv, P({"auth"}), "pw", "set_internal");
  receive(f.kv, flat_update(chain_of({{"b", 1}, {"a", 3}}), P({"data", "two"}), value(22),
                            static_cast<int64_t>(f.clock->peek()) + 3));
  // As the `log` action with `fetch` writes it: a state record, then a full save.
  std::string file_bytes = encode(state_record(f.kv)) + encode_save(f.kv, save_options{true});
  path_shortener shortener;
  f.kv.data().add_change_listener([&](const change_event& ev) {
    if (!ev.e.event_chain().empty()) encode(file_bytes, update_record(ev.e, shortener));
  });
  put(f.kv, P({"data", "one"}), 11);                // overwrite of a saved entry
  del(f.kv, P({"data", "two", "sub"}));             // deletion of a saved entry
  put(f.kv, P({"data", "two", "sub", "more"}), 4);  // depth > 0 after the deletion
  del(f.kv, P({"cfg"}));
  put(f.kv, P({"new", "entry"}), "n");
  put(f.kv, P({"auth"}), "pw2", "set_internal");
  receive(f.kv, flat_update(chain_of({{"b", 2}, {"a", 6}}), P({"data", "one"}), std::nullopt,
                            static_cast<int64_t>(f.clock->peek()) + 3));
  put(f.kv, P({"data", "one", "x"}), 5);

  temp_dir tmp;
  const std::string file = tmp.file("log");
  write_raw(file, file_bytes);
  store r("a");
  record_loader loader(r.kv);
  load_result lr = load(loader, file);
  CHECK(lr.whole);
  CHECK(lr.warnings.empty());
  CHECK(loader.stats().state_records == 2);
  CHECK(loader.stats().updates == 5 + 8);
  CHECK(loader.stats().skipped == 0);
  check_same_tree(f.kv, r.kv);
  CHECK_VALUE(lookup(r.kv, P({"data", "two", "sub", "more"}))->data(), value(4));
  CHECK_FALSE(lookup(r.kv, P({"data", "two", "sub"}))->has_data());
  CHECK_VALUE(lookup(r.kv, P({nullptr, "auth"}))->data(), value("pw2"));
  CHECK_VALUE(lookup(r.kv, P({"data", "one", "x"}))->data(), value(5));
}

TEST_CASE("load a file in the original's format, built without our writer") {
  const bin blob{std::string("\x00\x10 raw", 6)};
  std::string bytes;
  // 1. A legacy state record.
  encode(bytes, M({{"nodes", M({{"py1", 10}, {"py2", 5}})},
                   {"known", M({{"py1", A({1, A({3, 5})})}})},
                   {"deleted", M({{"py2", A({4})}})},
                   {"node", "py1"},
                   {"tock", 50}}));
  // 2. Entry records with depth compression: a Path at depth 0, then plain arrays.
  encode(bytes, M({{"value", "v-a"},
                   {"chain", chain_of({{"py1", 2}})},
                   {"tock", 20},
                   {"path", P({"app", "a"})},
                   {"depth", 0}}));
  encode(bytes, M({{"value", 5},
                   {"chain", chain_of({{"py2", 1}, {"py1", 5}})},
                   {"tock", 25},
                   {"path", A({"b"})},
                   {"depth", 1}}));
  encode(bytes, M({{"value", blob},
                   {"chain", chain_of({{"py1", 6}})},
                   {"tock", 30},
                   {"path", A({"c", 1})},
                   {"depth", 2}}));
  encode(bytes, M({{"value", nullptr},
                   {"chain", chain_of({{"py1", 7}})},
                   {"tock", 31},
                   {"path", A({2})},
                   {"depth", 3}}));
  encode(bytes, M({{"value", "acl-data"},
                   {"chain", chain_of({{"py1", 8}})},
                   {"tock", 32},
                   {"path", P({nullptr, "acl"})},
                   {"depth", 0}}));
  // 3. An info record.
  encode(bytes,
         M({{"info", M({{"nodes", M({{"py3", 7}})}, {"known", M({{"py3", A({A({1, 8})})}})}})}}));
  // 4. Incremental update records: with a value, a deletion, then depth > 0 after it.
  encode(bytes, M({{"node", "py2"},
                   {"tick", 6},
                   {"prev", chain_of({{"py1", 2}})},
                   {"path", P({"app", "a"})},
                   {"depth", 0},
                   {"value", "v-a2"},
                   {"tock", 60}}));
  encode(bytes, M({{"node", "py1"},
                   {"tick", 11},
                   {"prev", chain_of({{"py2", 1}})},
                   {"path", A({"b"})},
                   {"depth", 1},
                   {"tock", 61}}));
  encode(bytes, M({{"node", "py1"},
                   {"tick", 12},
                   {"prev", nullptr},
                   {"path", A({"d"})},
                   {"depth", 2},
                   {"value", "under-b"},
                   {"tock", 62}}));

  temp_dir tmp;
  const std::string file = tmp.file("legacy");
  write_raw(file, bytes);

  store s("cpp");
  record_loader loader(s.kv);
  load_result lr = load(loader, file);
  CHECK(lr.whole);
  CHECK(lr.warnings.empty());
  CHECK(loader.stats().records == 10);
  CHECK(loader.stats().state_records == 2);
  CHECK(loader.stats().updates == 8);
  CHECK(loader.stats().accepted == 8);

  auto check_entry = [&](const value& path, std::optional<value> v, const char* chain,
                         uint64_t tock) {
    INFO("path " << debug_string(path));
    const entry* e = lookup(s.kv, path);
    REQUIRE(e != nullptr);
    CHECK(e->has_data() == v.has_value());
    if (v && e->has_data()) CHECK_VALUE(e->data(), *v);
    CHECK(chain_text(e->event_chain()) == chain);
    CHECK(e->tock() == tock);
  };
  check_entry(P({"app", "a"}), value("v-a2"), "py2:6 py1:2 ", 60);
  check_entry(P({"app", "b"}), std::nullopt, "py1:11 py2:1 ", 61);
  check_entry(P({"app", "b", "c", 1}), value(blob), "py1:6 ", 30);
  check_entry(P({"app", "b", "c", 2}), value(nullptr), "py1:7 ", 31);
  check_entry(P({"app", "b", "d"}), value("under-b"), "py1:12 ", 62);
  check_entry(P({nullptr, "acl"}), value("acl-data"), "py1:8 ", 32);
  // Not expanded against the wrong (pre-deletion) path.
  CHECK(lookup(s.kv, P({"app", "a", "d"})) == nullptr);
  CHECK(dump(s.kv).size() == 6);

  value st = get_state(s.kv);
  CHECK_VALUE(at(st, "nodes"), M({{"cpp", nullptr}, {"py1", 12}, {"py2", 6}, {"py3", 7}}));
  CHECK_VALUE(at(st, "known"),
              M({{"py1", A({1, A({3, 6})})}, {"py2", A({4})}, {"py3", A({A({1, 8})})}}));
  CHECK_VALUE(at(st, "present"), M({{"py1", A({2, A({6, 9}), A({11, 13})})}, {"py2", A({1, 6})}}));
  CHECK_VALUE(at(st, "deleted"), M({{"py1", A({11})}, {"py2", A({1, 4})}}));
  CHECK_FALSE(s.kv.knows_own_tick());
  CHECK(s.clock->peek() >= 62);

  // Loaded by the node that wrote it: its own past.
  store p("py1");
  record_loader ploader(p.kv);
  CHECK(load(ploader, file).whole);
  CHECK(p.kv.knows_own_tick());
  p.kv.init_own_tick();
  CHECK(p.kv.own_tick() == 12u);
}

TEST_CASE("load_file: a cut tail loads everything before it, with a warning") {
  store s("s");
  s.kv.init_own_tick();
  for (int i = 0; i < 5; ++i) put(s.kv, P({"f", i}), "v" + std::to_string(i));
  std::vector<size_t> starts;
  std::string bytes;
  write_save(s.kv, save_options{}, [&](std::string_view rec) {
    starts.push_back(bytes.size());
    bytes.append(rec);
  });
  REQUIRE(starts.size() == 6);
  const size_t last = starts.back();
  temp_dir tmp;
  const std::string file = tmp.file("cut");
  write_raw(file, bytes.substr(0, last + (bytes.size() - last) / 2));

  store r("r");
  record_loader loader(r.kv);
  load_result lr = load(loader, file);
  CHECK_FALSE(lr.whole);
  REQUIRE(lr.warnings.size() == 1);
  INFO(lr.warnings[0]);
  CHECK(contains(lr.warnings[0], file));
  CHECK(contains(lr.warnings[0], "offset " + std::to_string(last)));
  CHECK(loader.stats().records == 5);
  for (int i = 0; i < 4; ++i)
    CHECK_VALUE(lookup(r.kv, P({"f", i}))->data(), value("v" + std::to_string(i)));
  CHECK(lookup(r.kv, P({"f", 4})) == nullptr);

  // The whole file loads without a warning.
  write_raw(file, bytes);
  store w("w");
  record_loader wl(w.kv);
  load_result all = load(wl, file);
  CHECK(all.whole);
  CHECK(all.warnings.empty());
  check_same_tree(s.kv, w.kv);
}

TEST_CASE("load_file: damage in the middle is an error unless skip_damaged") {
  store s("s");
  s.kv.init_own_tick();
  for (int i = 0; i < 5; ++i) put(s.kv, P({"f", i}), i * 10);
  std::vector<size_t> starts;
  std::string bytes;
  write_save(s.kv, save_options{}, [&](std::string_view rec) {
    starts.push_back(bytes.size());
    bytes.append(rec);
  });
  REQUIRE(starts.size() == 6);
  // Garbage between the records of f.1 and f.2 (0xc1 is never valid msgpack).
  const size_t at_damage = starts[3];
  std::string damaged = bytes.substr(0, at_damage) + "\xc1\xc1\xc1" + bytes.substr(at_damage);
  temp_dir tmp;
  const std::string file = tmp.file("damaged");
  write_raw(file, damaged);

  SUBCASE("without skip_damaged: load_error") {
    store r("r");
    record_loader loader(r.kv);
    std::string what;
    try {
      load(loader, file);
    } catch (const load_error& e) {
      what = e.what();
    }
    INFO(what);
    REQUIRE_FALSE(what.empty());
    CHECK(contains(what, file));
    CHECK(contains(what, "offset " + std::to_string(at_damage)));
    CHECK(contains(what, "--skip-damaged"));
    CHECK(lookup(r.kv, P({"f", 2})) == nullptr);
  }
  SUBCASE("with skip_damaged: the records after the damage load") {
    store r("r");
    record_loader loader(r.kv);
    load_result lr = load(loader, file, true);
    REQUIRE(lr.warnings.size() == 1);
    INFO(lr.warnings[0]);
    CHECK(contains(lr.warnings[0], file));
    CHECK(contains(lr.warnings[0], "offset " + std::to_string(at_damage)));
    CHECK(loader.stats().records == 6);
    check_same_tree(s.kv, r.kv);
  }
}

TEST_CASE("load_file: a record that cannot be applied is skipped with a warning") {
  std::string bytes;
  encode(bytes, M({{"nodes", M({{"w", 3}})},
                   {"known", M({})},
                   {"deleted", M({})},
                   {"node", "w"},
                   {"tock", 5}}));
  encode(bytes, M({{"value", 1},
                   {"chain", chain_of({{"w", 1}})},
                   {"tock", 2},
                   {"path", P({"f", "a"})},
                   {"depth", 0}}));
  const size_t bad_at = bytes.size();
  // A bad chain: the node name is no string.
  encode(bytes,
         flat_update(M({{"node", 5}, {"tick", 2}, {"prev", nullptr}}), A({"bad"}), value(1), 3, 1));
  // No kind of record at all.
  encode(bytes, M({{"foo", 1}}));
  // Depth 2 refers to the skipped record's path, as the writer's shortener did.
  encode(bytes, M({{"value", 3},
                   {"chain", chain_of({{"w", 3}})},
                   {"tock", 4},
                   {"path", A({"child"})},
                   {"depth", 2}}));
  encode(bytes, M({{"value", 4},
                   {"chain", chain_of({{"v", 1}})},
                   {"tock", 6},
                   {"path", A({"b"})},
                   {"depth", 1}}));
  temp_dir tmp;
  const std::string file = tmp.file("bad");
  write_raw(file, bytes);

  store r("r");
  record_loader loader(r.kv);
  load_result lr = load(loader, file);
  CHECK(lr.whole);
  REQUIRE(lr.warnings.size() == 2);
  CHECK(contains(lr.warnings[0], file));
  CHECK(contains(lr.warnings[0], "offset " + std::to_string(bad_at)));
  CHECK(contains(lr.warnings[0], "not applied"));
  CHECK(contains(lr.warnings[1], "not applied"));
  CHECK(loader.stats().records == 6);
  CHECK(loader.stats().skipped == 2);
  CHECK(loader.stats().updates == 3);
  CHECK_VALUE(lookup(r.kv, P({"f", "a"}))->data(), value(1));
  CHECK_FALSE(lookup(r.kv, P({"f", "bad"}))->has_data());  // created on the way only
  CHECK_VALUE(lookup(r.kv, P({"f", "bad", "child"}))->data(), value(3));
  CHECK_VALUE(lookup(r.kv, P({"f", "b"}))->data(), value(4));
  CHECK(lookup(r.kv, P({"bad"})) == nullptr);
}
