// Command-line output (batteries §8.4): yprint and its PyYAML-compatible YAML. The expected texts
// of untagged data are what PyYAML 6 safe_dump(default_flow_style=False, sort_keys=False,
// allow_unicode=True) prints with moat's str representer.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "apps/yaml_output.hpp"

using namespace moatkv;

namespace {
value B(std::string s) {
  return value(bin{std::move(s)});
}
const double inf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("yprint: numbers plainly, str and bytes as repr, the rest as YAML") {
  CHECK(yprint(value(123)) == "123\n");
  CHECK(yprint(value(-5)) == "-5\n");
  CHECK(yprint(value(1.5)) == "1.5\n");
  CHECK(yprint(value(1e20)) == "1e+20\n");
  CHECK(yprint(value(true)) == "True\n");  // bool is an int in Python: print(True)
  CHECK(yprint(value("there")) == "'there'\n");
  CHECK(yprint(value(B(std::string("a\0", 2)))) == "b'a\\x00'\n");
  CHECK(yprint(value(nullptr)) == "null\n...\n");
  CHECK(yprint(value::make_path({"a", "b"})) == "!P a.b\n...\n");
  CHECK(yprint(value(map{{"a", 1}})) == "a: 1\n");
  CHECK(yprint(value(array{1, "a"})) == "- 1\n- a\n");
}

TEST_CASE("yaml_dump: nested block style, insertion order, number and null forms") {
  value v = map{{"b", 1},
                {"a", map{{"x", array{1, array{2, 3}, map{{"c", "x"}}}}, {"y", nullptr}}},
                {"d", array{}},
                {"e", map{}},
                {"f", true},
                {"g", 1.5},
                {"h", 1e20},
                {"i", inf},
                {"j", std::nan("")},
                {"k", -inf}};
  CHECK(yaml_dump(v) ==
        "b: 1\na:\n  x:\n  - 1\n  - - 2\n    - 3\n  - c: x\n  y: null\nd: []\ne: {}\nf: true\n"
        "g: 1.5\nh: 1.0e+20\ni: .inf\nj: .nan\nk: -.inf\n");
  CHECK(yaml_dump(value(array{array{1, 2}, array{}, map{{"a", 1}, {"b", array{2}}}})) ==
        "- - 1\n  - 2\n- []\n- a: 1\n  b:\n  - 2\n");
  CHECK(yaml_dump(value(true)) == "true\n...\n");
  CHECK(yaml_dump(value(123)) == "123\n...\n");
  CHECK(yaml_dump(value(array{})) == "[]\n");
}

TEST_CASE("yaml_dump: strings are plain only when they read back as the same string") {
  array items = {"yes",       "1.5",        "123",    "null", "",
                 "~",         "a: b",       "a:b",    "- x",  "x #y",
                 "x#y",       " lead",      "trail ", "it's", "tab\there",
                 "h\xc3\xa9", "2001-12-14", "0o17",   "0x1F", "1_000",
                 "<<",        "=",          "---x",   "@x",   std::string("a\0", 2)};
  CHECK(yaml_dump(value(items)) ==
        "- 'yes'\n- '1.5'\n- '123'\n- 'null'\n- ''\n- '~'\n- 'a: b'\n- a:b\n- '- x'\n- 'x #y'\n"
        "- x#y\n- ' lead'\n- 'trail '\n- it's\n- \"tab\\there\"\n- h\xc3\xa9\n- '2001-12-14'\n"
        "- 0o17\n- '0x1F'\n- '1_000'\n- '<<'\n- '='\n- '---x'\n- '@x'\n- \"a\\0\"\n");
}

TEST_CASE("yaml_dump: multi-line strings in | style with PyYAML's chomping hints") {
  value v = map{{"m", "a\nb"}, {"n", "a\nb\n"}, {"o", "a\n\n"}, {"p", " x\ny"}, {"q", "trail \nx"}};
  CHECK(yaml_dump(v) ==
        "m: |-\n  a\n  b\nn: |\n  a\n  b\no: |+\n  a\n\np: |2-\n   x\n  y\n"
        "q: \"trail \\nx\"\n");
}

TEST_CASE("yaml_dump: long scalars fold at 80 columns like PyYAML") {
  std::string words;
  for (int i = 0; i < 30; ++i) words += "word ";
  std::string ws;
  for (int i = 0; i < 60; ++i) ws += "w ";
  value v = map{{"p", words + "end"}, {"q", "it's " + words}, {"r", "\x01" + ws}};
  CHECK(yaml_dump(v) ==
        "p: word word word word word word word word word word word word word word word word\n"
        "  word word word word word word word word word word word word word word end\n"
        "q: 'it''s word word word word word word word word word word word word word word word\n"
        "  word word word word word word word word word word word word word word word '\n"
        "r: \"\\x01w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w w\\\n"
        "  \\ w w w w w w w w w w w w w w w w w w w w w w w \"\n");
}

TEST_CASE("yaml_dump: complex and non-string keys") {
  value v = map{{"a\nb", 1}, {std::string(130, 'x'), 2}, {5, 3},      {nullptr, 4},
                {"", 5},     {array{1, 2}, 6},           {array{}, 7}};
  CHECK(yaml_dump(v) == "? |-\n  a\n  b\n: 1\n? " + std::string(130, 'x') +
                            "\n: 2\n5: 3\nnull: 4\n? ''\n: 5\n? - 1\n  - 2\n: 6\n[]: 7\n");
}

TEST_CASE("yaml_dump: tags for bytes, Paths and other extension types") {
  std::string big;
  for (int c = 128; c < 170; ++c) big += static_cast<char>(c);
  value v = map{{"a", B("abc")},
                {"b", B(std::string("\x00\xff", 2))},
                {"c", B(big)},
                {"d", B("")},
                {"e", B("\x01x")},
                {"f", value::make_path({"a", "b"})},
                {"g", value::make_path({nullptr, "x y", 1})},
                {value::make_path({"k", 1}), value::make_path({})},
                {"h", value(ext_data{5, std::string("\x01\x02", 2)})}};
  CHECK(yaml_dump(v) ==
        "a: !bin abc\n"
        "b: !hex 00:ff\n"
        "c: !!binary |\n  gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6ip\n"
        "d: !bin ''\n"
        "e: !bin \"\\x01x\"\n"
        "f: !P a.b\n"
        "g: !P :n.x:_y:1\n"
        "!P k:1: !P ':'\n"
        "h: !ext 5 01:02\n");
  // A recursive get without -d prints one-key maps keyed by Paths (batteries §8.4).
  value rec = array{map{{value::make_path({"a", "b"}), 1}}};
  CHECK(yaml_dump(rec) == "- !P a.b: 1\n");
}
