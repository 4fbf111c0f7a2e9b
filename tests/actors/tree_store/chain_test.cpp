#include <doctest/doctest.h>

#include "actors/tree_store/chain.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {
chain_link L(const char* n, int64_t t) {
  return chain_link{node_name(n), t};
}
chain C(std::initializer_list<chain_link> links) {
  return chain(std::vector<chain_link>(links));
}
}  // namespace

TEST_CASE("chain serialisation: prev nil at the real end, prev omitted at truncation") {
  chain c = C({L("a", 3), L("b", 1)});
  CHECK(c.serialize(-1) == M({{"node", "a"},
                              {"tick", 3},
                              {"prev", M({{"node", "b"}, {"tick", 1}, {"prev", nullptr}})}}));
  CHECK(c.serialize(2) == c.serialize(-1));
  CHECK(c.serialize(5) == c.serialize(-1));
  value one = c.serialize(1);
  CHECK(one == M({{"node", "a"}, {"tick", 3}}));
  CHECK_FALSE(has_key(one, "prev"));
  // A single-link chain ends for real even with nchain 1.
  CHECK(C({L("a", 3)}).serialize(1) == M({{"node", "a"}, {"tick", 3}, {"prev", nullptr}}));
}

TEST_CASE("chain deserialisation: flat message, chain sub-map, no node") {
  chain c;
  std::string err;
  value flat = M({{"node", "a"},
                  {"tick", 3},
                  {"prev", M({{"node", "b"}, {"tick", 1}})},
                  {"path", P({"x"})},
                  {"value", 1},
                  {"tock", 9}});
  REQUIRE(chain::deserialize(flat, c, err));
  CHECK(c.links() == std::vector<chain_link>{L("a", 3), L("b", 1)});
  // Truncated and complete chains are the same after decoding.
  CHECK(c.serialize(-1) == C({L("a", 3), L("b", 1)}).serialize(-1));

  value nested = M({{"value", 1},
                    {"chain", M({{"node", "x"}, {"tick", 7}, {"prev", nullptr}})},
                    {"node", "sender"},
                    {"tick", 99}});
  REQUIRE(chain::deserialize(nested, c, err));
  CHECK(c.links() == std::vector<chain_link>{L("x", 7)});

  REQUIRE(chain::deserialize(M({{"value", 1}}), c, err));
  CHECK(c.empty());
  REQUIRE(chain::deserialize(value(), c, err));
  CHECK(c.empty());
  REQUIRE(chain::deserialize(M({{"chain", nullptr}, {"node", "n"}}), c, err));
  CHECK(c.empty());

  CHECK_FALSE(chain::deserialize(M({{"node", 5}}), c, err));
  CHECK_FALSE(chain::deserialize(M({{"node", "a"}, {"tick", "x"}}), c, err));
  CHECK_FALSE(chain::deserialize(M({{"tick", 3}}), c, err));
  CHECK_FALSE(chain::deserialize(
      M({{"node", "a"}, {"tick", 2}, {"prev", M({{"node", "a"}, {"tick", 1}})}}), c, err));
}

TEST_CASE("chain equality compares heads only") {
  CHECK(C({L("a", 3), L("b", 1)}) == C({L("a", 3)}));
  CHECK(C({L("a", 3)}) != C({L("a", 4)}));
  CHECK(C({L("a", 3)}) != C({L("b", 3)}));
  CHECK(C({L("a", 3)}) != chain());
  CHECK_FALSE(chain() == chain());
}

TEST_CASE("chain order: descends_from is the original's a > b, precedes is a < b") {
  chain base = C({L("a", 1)});
  chain child = C({L("b", 5), L("a", 1)});
  chain later_a = C({L("a", 2)});
  chain other = C({L("c", 1)});
  CHECK(child.descends_from(base));
  CHECK(base.precedes(child));
  CHECK_FALSE(base.descends_from(child));
  CHECK_FALSE(child.precedes(base));
  // Same node, higher tick: based on it.
  CHECK(later_a.descends_from(base));
  CHECK(base.precedes(later_a));
  // Equal chains are neither.
  CHECK_FALSE(base.descends_from(C({L("a", 1)})));
  CHECK_FALSE(base.precedes(C({L("a", 1)})));
  // Unrelated chains are concurrent.
  CHECK_FALSE(other.descends_from(base));
  CHECK_FALSE(other.precedes(base));
  // Empty chains: everything descends from nothing; nothing descends... from an empty one.
  CHECK(base.descends_from(chain()));
  CHECK_FALSE(chain().descends_from(base));
  CHECK(chain().precedes(base));
  CHECK_FALSE(base.precedes(chain()));
}

TEST_CASE("chain filter and attach keep one link per node") {
  chain c = C({L("b", 5), L("a", 1), L("c", 2)});
  CHECK(c.filter(node_name("a")).links() == std::vector<chain_link>{L("b", 5), L("c", 2)});
  chain n = chain::attach(L("a", 7), c);
  CHECK(n.links() == std::vector<chain_link>{L("a", 7), L("b", 5), L("c", 2)});
  CHECK(n.descends_from(c));
}

TEST_CASE("chain repr follows the original's NodeEvent repr") {
  CHECK(C({L("node1", 10)}).repr() == "<NodeEvent node1:10 (10,)>");
  CHECK(C({L("a", 2), L("b", 1)}).repr() == "<NodeEvent a:2 b:1 (2,)>");
}
