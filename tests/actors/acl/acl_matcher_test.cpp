// The ACL matcher (batteries §0.3, §2.2, ARCHITECTURE.md "Security defaults"): the wildcard
// node_finder and the acl_checker, over small ACL trees built in a real `tree`.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/acl/acl_matcher.hpp"
#include "actors/tree_store/tree.hpp"

using namespace moatkv;

namespace {

const value None;  // nil, the meta-root element

/// A tree with the ACL root (None,"acl","u"); entries are set relative to it.
struct acl_tree {
  tree t{node_name("acl_test"), std::make_shared<tock_clock>()};
  entry* root = nullptr;

  acl_tree() {
    t.own_node().tick = 0;  // ready: set_data needs a tick
    root = t.follow(t.root(), array{None, "acl", "u"}, true, 2);
    REQUIRE(root != nullptr);
  }
  entry* make(const array& rel) {
    entry* e = t.follow(*root, rel, true, 2);
    REQUIRE(e != nullptr);
    return e;
  }
  void set(const array& rel, const value& v) { REQUIRE(t.set_data(*make(rel), v)); }
  void del(const array& rel) { REQUIRE(t.set_data(*make(rel), std::nullopt)); }
  entry* find(const array& rel) { return t.follow(*root, rel, false, 2); }

  node_finder walk(const array& path) const {
    node_finder f(root);
    for (const auto& e : path) f = f.step(e);
    return f;
  }
  acl_checker checker(const array& path) const {
    acl_checker c(root);
    for (const auto& e : path) c = c.step(e);
    return c;
  }
  /// The matched entry's path relative to the ACL root, for readable failures.
  std::string match(const array& path) const {
    const entry* r = walk(path).result();
    return r ? debug_string(value(r->path_from(root))) : "<none>";
  }
};

/// The flags (of the CLI's `rwdcxena`) the checker allows.
std::string granted(const acl_checker& c) {
  std::string out;
  for (char f : std::string("rwdcxena")) {
    if (c.allows(f)) out += f;
  }
  return out;
}

std::string str(const array& path) {
  return debug_string(value(path));
}

struct match_case {
  array path;
  std::optional<array> want;  // the matched entry, relative to the ACL root; nullopt: none
};

void check_matches(acl_tree& a, const std::vector<match_case>& cases) {
  for (const auto& c : cases) {
    std::string want = c.want ? str(*c.want) : "<none>";
    CHECK_MESSAGE(a.match(c.path) == want, "path ", str(c.path));
    if (c.want) {
      const entry* r = a.walk(c.path).result();
      CHECK_MESSAGE(r == a.find(*c.want), "path ", str(c.path));
    }
  }
}

}  // namespace

TEST_CASE("acl node_finder: exact beats + beats #") {
  acl_tree a;
  a.set({"a", "b"}, "exact");
  a.set({"a", "+"}, "plus");
  a.set({"a", "#"}, "hash");
  a.set({"+", "b"}, "plus-b");
  check_matches(a, {
                       {{"a", "b"}, array{"a", "b"}},
                       {{"a", "c"}, array{"a", "+"}},
                       {{"a", "c", "d"}, array{"a", "#"}},
                       {{"a", "b", "d"}, array{"a", "#"}},
                       {{"x", "b"}, array{"+", "b"}},
                       {{"x", "c"}, std::nullopt},
                       {{"a"}, std::nullopt},  // (a) holds no data
                       {{}, std::nullopt},     // nor does the ACL root
                   });
}

TEST_CASE("acl node_finder: exact, + and # at the same level under a #") {
  acl_tree a;
  a.set({"#"}, "h");
  a.set({"#", "#"}, "hh");
  a.set({"#", "+"}, "hp");
  a.set({"#", "b"}, "hb");
  check_matches(a, {
                       {{"a", "b"}, array{"#", "b"}},       // exact beats +
                       {{"a", "c"}, array{"#", "+"}},       // + beats #
                       {{"a", "c", "d"}, array{"#", "#"}},  // new # beats continuing the first
                       {{"a"}, array{"#"}},
                   });
  acl_tree b;
  b.set({"#"}, "h");
  b.set({"#", "#"}, "hh");
  // A new '#' at this level comes before the earlier '#' absorbing it.
  check_matches(b, {
                       {{"a", "c"}, array{"#", "#"}},
                       {{"a", "c", "d", "e"}, array{"#", "#"}},
                       {{"a"}, array{"#"}},
                   });
}

TEST_CASE("acl node_finder: # needs at least one element") {
  acl_tree a;
  a.set({"a", "#"}, "h");
  a.set({"a", "#", "z"}, "hz");
  check_matches(a, {
                       {{"a"}, std::nullopt},
                       {{"a", "x"}, array{"a", "#"}},
                       {{"a", "x", "y", "w"}, array{"a", "#"}},
                       {{"a", "z"}, array{"a", "#"}},  // '#' cannot match zero before "z"
                       {{"a", "x", "z"}, array{"a", "#", "z"}},
                       {{"a", "x", "y", "z"}, array{"a", "#", "z"}},
                       {{"a", "x", "z", "q"}, array{"a", "#"}},
                   });
}

TEST_CASE("acl node_finder: several #") {
  acl_tree a;
  a.set({"#", "x", "#"}, "hxh");
  check_matches(a, {
                       {{"a", "x", "b"}, array{"#", "x", "#"}},
                       {{"a", "b", "x", "c", "d"}, array{"#", "x", "#"}},
                       {{"x", "x", "x"}, array{"#", "x", "#"}},
                       {{"a", "x"}, std::nullopt},  // the second '#' needs an element too
                       {{"x", "b"}, std::nullopt},  // the first '#' needs one before "x"
                       {{"a", "b", "c"}, std::nullopt},
                   });
}

TEST_CASE("acl node_finder: an earlier, more specific level wins") {
  acl_tree a;
  a.set({"a", "+"}, "a-plus");
  a.set({"+", "b"}, "plus-b");
  a.set({"#"}, "h");
  a.set({"+", "#"}, "plus-hash");
  check_matches(a, {
                       // "a" exact at level 1 beats "+" at level 1, although "b" is exact.
                       {{"a", "b"}, array{"a", "+"}},
                       {{"c", "b"}, array{"+", "b"}},
                       // '+' at level 1 beats '#' at level 1.
                       {{"c", "d"}, array{"+", "#"}},
                       {{"c"}, array{"#"}},
                       {{"a", "b", "c"}, array{"+", "#"}},
                   });
}

TEST_CASE("acl node_finder: entries without data are skipped") {
  acl_tree a;
  a.set({"a", "b", "c"}, "abc");  // (a,b) is an intermediate entry without data
  a.set({"+", "b"}, "plus-b");
  a.set({"d", "e"}, "de");
  a.set({"+", "e"}, "plus-e");
  a.del({"d", "e"});      // a tombstone counts as no data
  a.set({"n"}, value());  // data None is data: it matches (and grants nothing)
  a.set({"+"}, "plus");
  check_matches(a, {
                       {{"a", "b"}, array{"+", "b"}},
                       {{"a", "b", "c"}, array{"a", "b", "c"}},
                       {{"d", "e"}, array{"+", "e"}},
                       {{"n"}, array{"n"}},
                       {{"m"}, array{"+"}},
                   });
}

TEST_CASE("acl node_finder: None only matches a literal None") {
  acl_tree a;
  a.set({"+"}, "p");
  a.set({"#"}, "h");
  a.set({"x", "#"}, "xh");
  a.set({None, "y"}, "ny");
  check_matches(a, {
                       {{None}, std::nullopt},            // (None) has no data; no wildcard
                       {{None, "y"}, array{None, "y"}},   // literal None child
                       {{None, "z"}, std::nullopt},       // wildcards below None still work,
                       {{"x", None}, std::nullopt},       // but '+'/'#' never take a None
                       {{"x", "q", None}, std::nullopt},  // nor does continuing a '#'
                       {{"x", "q"}, array{"x", "#"}},
                   });
  CHECK(a.walk({"x", "q", None}).dead());
}

TEST_CASE("acl node_finder: literal + and #, Python equality of names") {
  acl_tree a;
  a.set({"+"}, "p");
  a.set({"a"}, "A");
  a.set({1, "#"}, "one");
  check_matches(a, {
                       {{"+"}, array{"+"}},
                       {{"a"}, array{"a"}},
                       {{"#"}, array{"+"}},
                       {{true, "x"}, array{1, "#"}},  // True == 1
                       {{1.0, "x"}, array{1, "#"}},
                       {{"1", "x"}, std::nullopt},  // "1" != 1
                   });
  // A literal "+" reaches the child "+" both exactly and as a wildcard: one candidate.
  CHECK(a.walk({"+"}).size() == 1);
}

TEST_CASE("acl node_finder: missing root, stepping copies, duplicates collapse") {
  node_finder none(nullptr);
  CHECK(none.result() == nullptr);
  CHECK(none.step("a").dead());

  acl_tree a;
  a.set({"a"}, "A");
  node_finder f(a.root);
  node_finder fa = f.step("a");
  CHECK(fa.result() == a.find({"a"}));
  CHECK(f.result() == nullptr);  // stepping did not change the original
  CHECK(f.step("b").result() == nullptr);

  // Nested '#' entries: without dropping duplicate candidates the list grows with the
  // binomial coefficient C(path length, depth); with it, by at most twice the tree size.
  acl_tree h;
  array deep;
  for (int i = 0; i < 20; ++i) deep.push_back("#");  // deep enough for > 16 candidates
  h.set(deep, "deep");
  node_finder g(h.root);
  size_t most = 0;
  for (int i = 0; i < 40; ++i) {
    g = g.step(value("e" + std::to_string(i)));
    REQUIRE(g.size() <= 2 * 21);
    most = std::max(most, g.size());
  }
  CHECK(most > 16);
  CHECK(g.result() == h.find(deep));
}

TEST_CASE("acl checker: flags of the matched entry, no match means no access") {
  acl_tree a;
  a.set({"a"}, "rx");
  a.set({"a", "+"}, "wc");
  a.set({"a", "b"}, "");   // matched, grants nothing: no fallback to (a,+)
  a.set({"n"}, 42);        // not a string: no flags
  a.set({"s"}, bin{"r"});  // bytes are not a flag string either
  a.set({"all"}, "rwdcxena");
  a.set({"all", "#"}, "e");

  struct flag_case {
    array path;
    std::string want;
  };
  const std::vector<flag_case> cases = {
      {{}, "xen"},  // the ACL root holds no data: only traversal into the top level
      {{"a"}, "rx"},
      {{"a", "c"}, "wc"},
      {{"a", "b"}, ""},
      {{"z"}, ""},  // no ACL entry matches: no access (the original would allow all)
      {{"a", "c", "d"}, ""},
      {{"n"}, ""},
      {{"s"}, ""},
      {{"all"}, "rwdcxena"},
      {{"all", "x", "y"}, "e"},
      {{None}, ""},
  };
  for (const auto& c : cases) {
    acl_checker k = a.checker(c.path);
    CHECK_MESSAGE(granted(k) == c.want, "path ", str(c.path));
    CHECK(k.restricted());
  }
  CHECK(a.checker({"a", "c"}).matched() == a.find({"a", "+"}));
  CHECK(a.checker({"z"}).matched() == nullptr);

  // The ACL root's own value is the default at the top (an AclName can hold data).
  a.set({}, "x");
  CHECK(granted(a.checker({})) == "x");
  CHECK(granted(a.checker({"z"})) == "");  // the root's value does not apply below it

  // A missing ACL tree: a restricted checker over nothing denies everything.
  acl_checker missing(nullptr);
  CHECK(granted(missing) == "");
  CHECK(granted(missing.step("a")) == "");
  CHECK(missing.matched() == nullptr);
}

TEST_CASE("acl checker: edits to an existing ACL entry take effect at once") {
  acl_tree a;
  a.set({"a"}, "r");
  acl_checker k = a.checker({"a"});
  CHECK(granted(k) == "r");
  a.set({"a"}, "rw");
  CHECK(granted(k) == "rw");
  a.del({"a"});
  CHECK(granted(k) == "");
}

TEST_CASE("acl checker: blocked flags are inherited by steps, not by the parent") {
  acl_tree a;
  a.set({"#"}, "rwx");
  acl_checker top = a.checker({"a"});
  acl_checker k = top;
  k.block('r');
  CHECK(granted(top) == "rwx");
  CHECK(granted(k) == "wx");
  acl_checker below = k.step("b").step("c");
  CHECK(granted(below) == "wx");
  below.block('x');
  CHECK(granted(below) == "w");
  CHECK(granted(k.step("b")) == "wx");
  CHECK(granted(top.step("b")) == "rwx");
  // Blocking a flag the entry does not grant changes nothing else.
  k.block('d');
  CHECK(granted(k) == "wx");
}

TEST_CASE("acl checker: unrestricted allows all but 'a'") {
  acl_checker u = acl_checker::unrestricted();
  CHECK_FALSE(u.restricted());
  CHECK(granted(u) == "rwdcxen");
  CHECK_FALSE(u.allows('a'));
  CHECK(u.matched() == nullptr);
  acl_checker s = u.step("x").step(None).step("+").step(3);
  CHECK(granted(s) == "rwdcxen");
  CHECK_FALSE(s.restricted());
  s.block('w');
  CHECK(granted(s) == "rdcxen");
  CHECK(granted(s.step("y")) == "rdcxen");
  CHECK(granted(u) == "rwdcxen");
}
