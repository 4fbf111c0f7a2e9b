// The merge rule (server-internals §2.5 with our fixes), exercised with kv_store instances
// that stand for nodes and exchange `update` messages (shape A, §3.4).
#include <doctest/doctest.h>

#include <memory>

#include "actors/tree_store/tree.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {

struct node {
  std::unique_ptr<kv_store> kv;
  explicit node(const char* name)
      : kv(std::make_unique<kv_store>(name, std::make_shared<tock_clock>())) {
    kv->init_own_tick();
  }
  void set(const value& path, const value& v) {
    value r = single(*kv, 1, M({{"action", "set_value"}, {"path", path}, {"value", v}}));
    REQUIRE_MESSAGE(!has_key(r, "error"), debug_string(r));
  }
  void del(const value& path) {
    value r = single(*kv, 1, M({{"action", "delete_value"}, {"path", path}}));
    REQUIRE_MESSAGE(!has_key(r, "error"), debug_string(r));
  }
  entry* find(const value& path) {
    return kv->data().follow(kv->data().root(), path.elements(), false, 2);
  }
  /// The update message this node would broadcast for `path`.
  value update(const value& path, int64_t nchain = 5) {
    return tree::update_message(*find(path), nchain);
  }
  /// (has value, value, chain head, tock) for comparing two nodes' states.
  std::string state(const value& path) {
    entry* e = find(path);
    if (!e) return "<none>";
    std::string s = e->has_data() ? debug_string(e->data()) : "<deleted>";
    return s + " " + e->event_chain().repr() + " @" + std::to_string(e->tock());
  }
};

const value X = P({"x"});

}  // namespace

TEST_CASE("merge: an update is applied once; its duplicate changes nothing") {
  node a("a"), b("b");
  a.set(X, 1);
  value u = a.update(X);
  CHECK(b.kv->apply_update(u));
  std::string before = b.state(X);
  CHECK_FALSE(b.kv->apply_update(u));
  CHECK(b.state(X) == before);
  CHECK(b.state(X) == a.state(X));
}

TEST_CASE("merge: a stale update is rejected") {
  node a("a"), b("b");
  a.set(X, 1);
  value u1 = a.update(X);
  a.set(X, 2);
  value u2 = a.update(X);
  CHECK(b.kv->apply_update(u2));
  CHECK_FALSE(b.kv->apply_update(u1));
  CHECK(b.find(X)->data() == value(2));
  CHECK(b.state(X) == a.state(X));
}

TEST_CASE("merge: an update based on the local state (a descendant) is accepted") {
  node a("a"), b("b");
  a.set(X, 1);
  REQUIRE(b.kv->apply_update(a.update(X)));
  b.set(X, 2);  // chain b:1, a:1
  CHECK(a.kv->apply_update(b.update(X)));
  CHECK(a.find(X)->data() == value(2));
  CHECK(a.state(X) == b.state(X));
  // a's old link a:1 stays on the chain (it is b's prev), so it is still present.
  CHECK(a.kv->data().nodes().find(node_name("a"))->present.contains(1));
}

TEST_CASE("merge: concurrent updates end the same on both nodes, whatever the order") {
  node a("a"), b("b");
  a.set(X, "from a");
  b.set(X, "from b");
  b.set(X, "from b, later");  // b's tock is now higher
  value ua = a.update(X), ub = b.update(X);
  a.kv->apply_update(ub);
  b.kv->apply_update(ua);
  CHECK(a.state(X) == b.state(X));
  CHECK(a.find(X)->data() == value("from b, later"));
}

TEST_CASE("merge: an exact tock tie is broken the same way on both nodes") {
  node a("a"), b("b");
  // Identical histories give identical tocks.
  a.set(X, "A");
  b.set(X, "B");
  REQUIRE(a.find(X)->tock() == b.find(X)->tock());
  value ua = a.update(X), ub = b.update(X);
  bool a_took = a.kv->apply_update(ub);
  bool b_took = b.kv->apply_update(ua);
  CHECK(a_took != b_took);  // exactly one side gives way
  CHECK(a.state(X) == b.state(X));
  // (tock, head node name, head tick): "b" > "a".
  CHECK(a.find(X)->data() == value("B"));
}

TEST_CASE("merge: a delete racing a modify ends the same on every node, in any arrival order") {
  node a("a"), b("b"), c("c"), d("d");
  a.set(X, 1);
  value u0 = a.update(X);
  for (node* n : {&b, &c, &d}) REQUIRE(n->kv->apply_update(u0));

  SUBCASE("the modify has the higher tock") {
    a.del(X);
    b.set(P({"other"}), 0);  // advance b's clock
    b.set(X, 2);
  }
  SUBCASE("the delete has the higher tock") {
    b.set(X, 2);
    a.set(P({"other"}), 0);
    a.del(X);
  }
  value del = a.update(X), mod = b.update(X);
  a.kv->apply_update(mod);
  b.kv->apply_update(del);
  c.kv->apply_update(del);
  c.kv->apply_update(mod);
  d.kv->apply_update(mod);
  d.kv->apply_update(del);
  CHECK(a.state(X) == b.state(X));
  CHECK(a.state(X) == c.state(X));
  CHECK(a.state(X) == d.state(X));
}

TEST_CASE("merge: re-setting a deleted entry drops the deleted links from its chain") {
  node a("a"), b("b");
  b.set(X, 1);  // chain b:1
  REQUIRE(a.kv->apply_update(b.update(X)));
  a.del(X);  // chain a:1, b:1 — both links deleted
  value deletion = a.update(X);
  auto& an = a.kv->data().nodes();
  CHECK(an.find(node_name("b"))->deleted.contains(1));
  a.set(X, 2);
  entry* e = a.find(X);
  CHECK(e->event_chain().size() == 1);
  CHECK(e->event_chain().head().node == node_name("a"));
  // Purging b:1 later cannot reach the live entry any more.
  CHECK(an.find(node_name("b"))->entries.count(1) == 0);
  // A node that never saw the deletion sees a concurrent update with a newer tock: it wins.
  CHECK(b.kv->apply_update(a.update(X)));
  // The deletion arriving late is stale there.
  CHECK_FALSE(b.kv->apply_update(deletion));
  CHECK(a.state(X) == b.state(X));
  CHECK(b.find(X)->data() == value(2));
}
