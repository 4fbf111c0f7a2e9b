// Path string syntax (batteries §8.2): every example of the reference, errors, formatting.
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "messages/path_syntax.hpp"

using namespace moatkv;

namespace {
value P(array elems, std::string mark = {}) {
  return value::make_path(std::move(elems), mark);
}
value B(std::string s) {
  return value(bin{std::move(s)});
}

// Same elements, same kinds (1 and True and 1.0 are equal in Python, so compare kinds too),
// same mark.
bool same(const value& got, const value& want) {
  if (!got.is_path() || !want.is_path()) return false;
  if (got.as_path().mark != want.as_path().mark) return false;
  const array& a = got.as_path().elems;
  const array& b = want.as_path().elems;
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_type_equal(a[i], b[i])) return false;
  return true;
}

#define CHECK_PATH(text, want)                                                        \
  do {                                                                                \
    value got_ = parse_path(text);                                                    \
    INFO("parsed ", text, " as ", debug_string(got_), " mark=", got_.as_path().mark); \
    CHECK(same(got_, want));                                                          \
  } while (0)

std::string error_of(std::string_view text) {
  try {
    parse_path(text);
  } catch (const path_syntax_error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("verified examples of batteries §8.2") {
  CHECK_PATH(":.moat.kv.run", P({".moat", "kv", "run"}));
  CHECK_PATH("answers.life etc:.", P({"answers", "life etc."}));
  CHECK_PATH(":n:x10", P({nullptr, 16}));
  CHECK_PATH(":1:.5", P({1.5}));
  CHECK_PATH(":yab12", P({B("\xab\x12")}));
  CHECK_PATH(":mr.foo.bar", P({"foo", "bar"}, "r"));
  CHECK_PATH("a_b", P({"a_b"}));
  CHECK_PATH("::x", P({":x"}));
  // server-internals §1.3
  CHECK_PATH("moat.kv", P({"moat", "kv"}));
  CHECK_PATH(":.moat.kv.config", P({".moat", "kv", "config"}));
  CHECK_PATH(":n.auth", P({nullptr, "auth"}));
}

TEST_CASE("escapes inside string elements") {
  CHECK_PATH("a::b", P({"a:b"}));
  CHECK_PATH("a:.b", P({"a.b"}));
  CHECK_PATH("a:_b", P({"a b"}));
  CHECK_PATH("_", P({"_"}));
  CHECK_PATH("a.b::c d", P({"a", "b:c d"}));
}

TEST_CASE("escape elements and the separator rule") {
  CHECK_PATH(":", P({}));
  CHECK_PATH(":t", P({true}));
  CHECK_PATH(":f", P({false}));
  CHECK_PATH(":e", P({""}));
  CHECK_PATH("a:t", P({"a", true}));
  CHECK_PATH("a.b:1.c", P({"a", "b", 1, "c"}));
  CHECK_PATH(":n.acl.foo", P({nullptr, "acl", "foo"}));
  CHECK_PATH(":t.x", P({true, "x"}));
  CHECK_PATH(":e.a", P({"", "a"}));
  CHECK_PATH(":xff", P({255}));
  CHECK_PATH(":x-10", P({-16}));
  CHECK_PATH(":b101", P({5}));
  CHECK_PATH(":vabc", P({B("abc")}));
  CHECK_PATH(":vx:_y", P({B("x y")}));
  CHECK_PATH(":v", P({B("")}));
  CHECK_PATH(":sAP8=", P({B(std::string("\x00\xff", 2))}));
  CHECK_PATH(":123", P({123}));
  CHECK_PATH(":-1", P({-1}));
  CHECK_PATH(":i-1", P({-1}));
  CHECK_PATH(":'str'", P({"str"}));
  CHECK_PATH(":'a:_b'", P({"a b"}));
  CHECK_PATH(":(1,2)", P({array{1, 2}}));
  CHECK_PATH(":1,2", P({array{1, 2}}));
  CHECK_PATH(":18446744073709551615", P({18446744073709551615ULL}));
  CHECK_PATH(":mr:", P({}, "r"));
  CHECK_PATH(":mr", P({}, "r"));
  CHECK_PATH(":mr:mr.a", P({"a"}, "r"));
}

TEST_CASE("errors say what is wrong and where") {
  CHECK(error_of("") == "bad path \"\": the empty string is not a path");
  CHECK(error_of("a..b") == "bad path \"a..b\": empty element at offset 2");
  CHECK(error_of(".a") == "bad path \".a\": empty element at offset 0");
  CHECK(error_of("a.") == "bad path \"a.\": empty element at offset 2");
  CHECK(error_of("a.:t") == "bad path \"a.:t\": a dot before the escape element ':t' at offset 2");
  CHECK(error_of("a.:e.b") ==
        "bad path \"a.:e.b\": a dot before the escape element ':e' at offset 2");
  CHECK(error_of("a.:1") == "bad path \"a.:1\": a dot before the escape element ':1' at offset 2");
  CHECK(error_of("a:") == "bad path \"a:\": dangling ':' at offset 1");
  CHECK(error_of(":t_x") == "bad path \":t_x\": missing '.' before a string element at offset 2");
  CHECK(error_of(":mr:mq") == "bad path \":mr:mq\": conflicting marks 'r' and 'q' at offset 3");
  CHECK(error_of(":xzz") == "bad path \":xzz\": bad hex integer 'zz' at offset 0");
  CHECK(error_of(":b102") == "bad path \":b102\": bad binary integer '102' at offset 0");
  CHECK(error_of(":yabc") == "bad path \":yabc\": bad hex bytes 'abc' at offset 0");
  CHECK(error_of(":sAP8") ==
        "bad path \":sAP8\": bad base64 'AP8' (incorrect padding) at offset 0");
  CHECK(error_of(":x10000000000000000") ==
        "bad path \":x10000000000000000\": integer '10000000000000000' out of range at offset 0");
  // unknown / unevaluable tokens
  for (const char* bad : {":true", ":n1", ":1+2", ":i", ":abc", ":x", ":m"}) {
    INFO(bad);
    std::string e = error_of(bad);
    bool named =
        e.find("cannot read") != std::string::npos || e.find("bad hex") != std::string::npos;
    CHECK(named);
  }
  CHECK(error_of(":true") ==
        "bad path \":true\": cannot read 'true' as a literal (bad literal \"true\": name 'true' is "
        "not a literal at offset 0) at offset 0");
  // the dot of a float must be escaped: "a:1.5" is ("a", 1, "5")
  CHECK_PATH("a:1.5", P({"a", 1, "5"}));
}

TEST_CASE("formatting follows str(Path)") {
  // The example of batteries §8.2.
  value ex =
      P({"a", 1.5, nullptr, true, B("x y"), B(std::string("\x00\xff", 2)), "", "a.b:c d", -3});
  CHECK(format_path(ex) == "a:1:.5:n:t:vx:_y:sAP8=:e.a:.b::c:_d:-3");
  CHECK(same(parse_path("a:1:.5:n:t:vx:_y:sAP8=:e.a:.b::c:_d:-3"), ex));

  CHECK(format_path(P({})) == ":");
  CHECK(format_path(P({}, "r")) == ":mr:");
  CHECK(format_path(P({"foo", "bar"}, "r")) == ":mr.foo.bar");
  CHECK(format_path(P({".moat", "kv", "run"})) == ":.moat.kv.run");
  CHECK(format_path(P({nullptr, "acl", "foo"})) == ":n.acl.foo");
  CHECK(format_path(P({false, 16})) == ":f:16");
  CHECK(format_path(P({array{1, 2}})) == ":1,2");
  CHECK(format_path(P({array{"a", "b c"}})) == ":'a','b:_c'");
  CHECK(format_path(P({1e20, 0.1, -0.0})) == ":1e+20:0:.1:-0:.0");
  CHECK(format_path(P({std::numeric_limits<double>::infinity()})) == ":iinf");
  CHECK(format_path(P({map{{"a", 1}}})) == ":{'a':::_1}");
  CHECK(format_path(P({B("a.b")})) == ":va:.b");
  CHECK(format_path(P({"x_y"})) == "x_y");
  // Our fixes: these parse back; the original prints ":1", "" and ":b'x',1".
  CHECK(format_path(P({array{1}})) == ":1,");
  CHECK(format_path(P({array{}})) == ":()");
  CHECK(format_path(P({array{B("x"), 1}})) == ":ib'x',1");
  // An array formats like an unmarked Path; other values are rejected.
  CHECK(format_path(value(array{"a", 1})) == "a:1");
  CHECK_THROWS_AS(format_path(value("a.b")), std::invalid_argument);
}

TEST_CASE("canonical strings round-trip") {
  for (const char* s : {":",
                        ":mr:",
                        ":.moat.kv.run",
                        "answers.life:_etc:.",
                        ":n:16",
                        ":1:.5",
                        ":sqxI=",
                        ":mr.foo.bar",
                        "a_b",
                        "::x",
                        "a:1:.5:n:t:vx:_y:sAP8=:e.a:.b::c:_d:-3",
                        ":1,2",
                        ":1,",
                        ":()",
                        ":e:e",
                        ":'a:.b','c'",
                        ":18446744073709551615",
                        ":-9223372036854775808",
                        ":ib'x',1",
                        ":{'a':::_(1,:_2)}",
                        ":0:.0001:1e-05:1e+16:1000000000000000:.0"}) {
    INFO(s);
    CHECK(format_path(parse_path(s)) == s);
  }
  // Values survive format -> parse.
  value v = P({"", " lead", "trail ", "x:y", 0, -1, 2.5, B(""), B("\x01"),
               array{array{1, "a"}, nullptr}, map{{1, "x"}}, true},
              "q");
  CHECK(same(parse_path(format_path(v)), v));
}
