#include <doctest/doctest.h>

#include "actors/tree_store/depth_compression.hpp"
#include "test_util.hpp"

using namespace moatkv;
using namespace moatkv::test;

namespace {
struct shortened {
  value path;
  int64_t depth;
};
shortened S(path_shortener& ps, std::initializer_list<value> full) {
  shortened out;
  REQUIRE(ps.shorten(array(full), out.path, out.depth));
  return out;
}
}  // namespace

TEST_CASE("shortener: the transcript's get_tree of wire") {
  path_shortener ps(array{value("wire")});
  auto a = S(ps, {"wire", "a"});
  CHECK(a.path == A({"a"}));
  CHECK(a.path.is_array());
  CHECK(a.depth == 0);
  auto bc = S(ps, {"wire", "b", "c"});
  CHECK(bc.path == A({"b", "c"}));
  CHECK(bc.depth == 0);
  auto bd = S(ps, {"wire", "b", "d"});
  CHECK(bd.path == A({"d"}));
  CHECK(bd.depth == 1);
  auto one = S(ps, {"wire", 1, true});
  CHECK(one.path == A({1, true}));
  CHECK(one.depth == 0);
}

TEST_CASE("shortener: the transcript's watch of demo (set a, delete a, delete_tree b)") {
  path_shortener ps(array{value("demo")});
  auto s1 = S(ps, {"demo", "a"});
  CHECK((s1.path == A({"a"}) && s1.depth == 0));
  auto s2 = S(ps, {"demo", "a"});
  CHECK(s2.path == A({}));
  CHECK(s2.depth == 1);
  auto s3 = S(ps, {"demo", "b"});
  CHECK((s3.path == A({"b"}) && s3.depth == 0));
  auto s4 = S(ps, {"demo", "b", "c"});
  CHECK((s4.path == A({"c"}) && s4.depth == 1));
}

TEST_CASE("shortener: ext-3 Path only with an empty prefix and depth 0") {
  path_shortener ps;
  auto s1 = S(ps, {"a", "b"});
  CHECK(s1.path.is_path());
  auto s2 = S(ps, {"a", "c"});
  CHECK(s2.path.is_array());
  CHECK(s2.depth == 1);
  auto root = S(ps, {});
  CHECK(root.path.is_path());
  CHECK(root.path.elements().empty());
  // Below a chroot, records are never Paths.
  path_shortener chrooted({}, false);
  CHECK(S(chrooted, {"a"}).path.is_array());
}

TEST_CASE("shortener: elements compare with Python equality; a wrong prefix is refused") {
  path_shortener ps(array{value(1)});
  auto s = S(ps, {true, "x"});
  CHECK(s.path == A({"x"}));
  value out;
  int64_t d = 0;
  CHECK_FALSE(ps.shorten(array{value(2), value("x")}, out, d));
  std::string err;
  value rec = M({{"value", 1}, {"path", A({2})}});
  CHECK_FALSE(ps.apply(rec, err));
  value plain = M({{"state", "uptodate"}});
  CHECK(ps.apply(plain, err));
  CHECK_FALSE(has_key(plain, "depth"));
}

TEST_CASE("longener reverses the shortener") {
  std::vector<array> paths = {
      {value("wire"), value("a")},
      {value("wire"), value("b"), value("c")},
      {value("wire"), value("b"), value("d")},
      {value("wire"), value(1), value(true)},
      {value("wire")},
      {value("wire"), value("b"), value("c"), value("e")},
  };
  path_shortener ps(array{value("wire")});
  path_longener pl(array{value("wire")});
  for (const auto& p : paths) {
    value rec = M({{"value", 1}, {"path", value::make_path(p)}});
    std::string err;
    REQUIRE(ps.apply(rec, err));
    REQUIRE(has_key(rec, "depth"));
    REQUIRE(pl.apply(rec, err));
    CHECK(at(rec, "path") == value::make_path(p));
    CHECK_FALSE(has_key(rec, "depth"));
  }
}
