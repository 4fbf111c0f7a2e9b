#include <doctest/doctest.h>

#include "actors/tree_store/range_set.hpp"
#include "messages/msgpack_codec.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

TEST_CASE("range set: adding ticks merges adjacent and overlapping intervals") {
  range_set r;
  r.add(1);
  r.add(3);
  r.add(5);
  r.add(4);
  r.add(6);
  CHECK(r.size() == 2);
  CHECK(r.count() == 5);
  CHECK(r.contains(1));
  CHECK_FALSE(r.contains(2));
  CHECK(r.contains(6));
  CHECK_FALSE(r.contains(7));
  r.add(2);
  CHECK(r.size() == 1);
  CHECK(r.ranges().front() == range_set::range{1, 7});
}

TEST_CASE("range set: removal splits intervals") {
  range_set r{{1, 10}};
  r.remove(5);
  CHECK(r == range_set{{1, 5}, {6, 10}});
  r.remove(0, 2);
  r.remove(9, 20);
  CHECK(r == range_set{{2, 5}, {6, 9}});
}

TEST_CASE("range set: union, difference and intersection") {
  range_set a{{1, 5}, {10, 15}};
  range_set b{{3, 12}};
  CHECK((a + b) == range_set{{1, 15}});
  CHECK((a - b) == range_set{{1, 3}, {12, 15}});
  CHECK((a & b) == range_set{{3, 5}, {10, 12}});
  CHECK((a & range_set{}).empty());
}

TEST_CASE("range set wire form: {1, 3..6} is [1, [3, 7]]") {
  range_set r;
  for (int t : {1, 3, 4, 5, 6}) r.add(t);
  value w = r.to_value();
  CHECK(w == A({1, A({3, 7})}));
  // 92 01 92 03 07
  CHECK(encode(w) == std::string("\x92\x01\x92\x03\x07", 5));
  range_set back;
  std::string err;
  REQUIRE(range_set::from_value(w, back, err));
  CHECK(back == r);
}

TEST_CASE("range set decoding accepts unnormalised input and normalises it") {
  range_set r;
  std::string err;
  REQUIRE(range_set::from_value(A({A({5, 8}), 1, 2, A({3, 6}), 8}), r, err));
  CHECK(r == range_set{{1, 9}});
  CHECK(r.to_value() == A({A({1, 9})}));
  CHECK_FALSE(range_set::from_value(value("x"), r, err));
  CHECK_FALSE(range_set::from_value(A({A({1, 2, 3})}), r, err));
  CHECK_FALSE(range_set::from_value(A({value("a")}), r, err));
}

TEST_CASE("node set wire form is a map name -> range set state") {
  node_set ns;
  ns.add("b", 3);
  ns.add("a", 1);
  ns.add("a", 2);
  CHECK(ns.to_value() == M({{"b", A({3})}, {"a", A({A({1, 3})})}}));
  node_set back;
  std::string err;
  REQUIRE(node_set::from_value(ns.to_value(), back, err));
  CHECK(*back.find("a") == range_set{{1, 3}});
  CHECK_FALSE(node_set::from_value(M({{1, A({1})}}), back, err));
}
