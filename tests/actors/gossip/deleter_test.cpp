// The deleter group's purge rule (server-internals §5.8), driven by hand.
#include <doctest/doctest.h>

#include "actors/gossip/deleter.hpp"

using namespace moatkv;

namespace {
node_set ticks(const char* node, std::initializer_list<int64_t> ts) {
  node_set s;
  for (auto t : ts) s.add(node, t);
  return s;
}
value group(std::initializer_list<const char*> names) {
  array a;
  for (auto n : names) a.emplace_back(n);
  return value(map{{"nodes", a}});
}
}  // namespace

TEST_CASE("deleter: without a group nothing is kept; membership enables the actor") {
  deleter d("a");
  d.add_deleted(5, ticks("a", {1}));
  CHECK(d.pending() == 0);
  auto ch = d.configure(group({"a", "b"}));
  REQUIRE(ch);
  CHECK(ch->enable);
  CHECK(ch->length == 2);
  CHECK_FALSE(d.configure(group({"a", "b"})));  // unchanged
  auto other = d.configure(group({"b", "c", "x"}));
  REQUIRE(other);
  CHECK_FALSE(other->enable);
  CHECK(other->length == 3);
  auto gone = d.configure(std::nullopt);
  REQUIRE(gone);
  CHECK(gone->length == 0);
}

TEST_CASE("deleter: the third full-group tag purges what is older than the oldest tag") {
  deleter d("a");
  d.configure(group({"a", "b"}));
  d.add_deleted(10, ticks("a", {1}));
  d.add_deleted(30, ticks("b", {2}));
  value v;
  CHECK(d.on_tag(20, 2, v).empty());
  CHECK(v == value(array{20, 20}));
  CHECK(d.on_tag(40, 1, v).empty());  // history does not cover the group: not counted
  CHECK(d.on_tag(50, 2, v).empty());
  auto purged = d.on_tag(60, 2, v);  // third counted tag: purge below tags[0] = 20
  REQUIRE(purged.size() == 1);
  CHECK(purged[0].find("a"));
  CHECK(d.pending() == 1);
  CHECK(v == value(array{20, 60}));
}

TEST_CASE("deleter: another member's pings purge, or ask for a resync after a gap") {
  deleter d("a");
  d.configure(group({"a", "b"}));
  d.add_deleted(10, ticks("a", {1}));
  d.add_deleted(100, ticks("a", {2}));
  value ping(map{{"value", array{50, 60}}, {"history", array{"b", "a"}}});
  CHECK(d.on_ping(ping).purge.empty());  // first n_nodes pings only count
  CHECK(d.on_ping(ping).purge.empty());
  auto out = d.on_ping(ping);
  REQUIRE(out.purge.size() == 1);  // below 50: the record at tock 10
  CHECK_FALSE(out.resync);
  value jump(map{{"value", array{200, 210}}, {"history", array{"b", "a"}}});
  CHECK(d.on_ping(jump).resync);  // its oldest tag (200) is past the newest we saw (60)
  CHECK(d.pending() == 1);
  value short_hist(map{{"value", array{300, 310}}, {"history", array{"b"}}});
  CHECK(d.on_ping(short_hist).purge.empty());  // not the whole group: counters reset
}
