// Python literal parsing (the replacement for eval, batteries §8.3 / §10.4) and Python repr.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "messages/literal.hpp"

using namespace moatkv;

namespace {
// Kind-exact comparison: Python's 1 == 1.0 == True would hide a wrong type.
bool same(const value& a, const value& b) {
  if (a.is_array() && b.is_array()) {
    if (a.as_array().size() != b.as_array().size()) return false;
    for (size_t i = 0; i < a.as_array().size(); ++i)
      if (!same(a.as_array()[i], b.as_array()[i])) return false;
    return true;
  }
  if (a.is_map() && b.is_map()) {
    if (a.as_map().size() != b.as_map().size()) return false;
    for (size_t i = 0; i < a.as_map().size(); ++i)
      if (!same(a.as_map()[i].first, b.as_map()[i].first) ||
          !same(a.as_map()[i].second, b.as_map()[i].second))
        return false;
    return true;
  }
  return same_type_equal(a, b);
}

#define CHECK_LIT(text, want)                          \
  do {                                                 \
    value got_ = parse_literal(text);                  \
    INFO("parsed ", text, " as ", debug_string(got_)); \
    CHECK(same(got_, want));                           \
  } while (0)

std::string error_of(std::string_view text) {
  try {
    parse_literal(text);
  } catch (const literal_error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("integers") {
  CHECK_LIT("0", value(0));
  CHECK_LIT("123", value(123));
  CHECK_LIT("-1", value(-1));
  CHECK_LIT("+5", value(5));
  CHECK_LIT("--5", value(5));
  CHECK_LIT("- 7", value(-7));
  CHECK_LIT("1_000", value(1000));
  CHECK_LIT("0x1F", value(31));
  CHECK_LIT("0X_ff", value(255));
  CHECK_LIT("0o17", value(15));
  CHECK_LIT("0b101", value(5));
  CHECK_LIT("-0x10", value(-16));
  CHECK_LIT("00", value(0));
  CHECK_LIT("18446744073709551615", value(18446744073709551615ULL));
  CHECK_LIT("-9223372036854775808", value(std::numeric_limits<int64_t>::min()));
  CHECK_LIT("-(3)", value(-3));
  CHECK(parse_literal("9223372036854775808").type() == kind::uint64);
  CHECK(error_of("18446744073709551616") ==
        "bad literal \"18446744073709551616\": integer out of range (above 2**64-1, msgpack cannot "
        "carry it) at offset 0");
  CHECK(error_of("-9223372036854775809") ==
        "bad literal \"-9223372036854775809\": integer out of range (below -2**63, msgpack cannot "
        "carry it) at offset 0");
  CHECK(error_of("012") ==
        "bad literal \"012\": leading zeros in a decimal integer are not allowed at offset 0");
  CHECK(error_of("1__0").find("malformed number") != std::string::npos);
  CHECK(error_of("1_").find("malformed number") != std::string::npos);
  CHECK(error_of("0x").find("missing digits after base prefix") != std::string::npos);
  CHECK(error_of("0b2").find("missing digits after base prefix") != std::string::npos);
  CHECK(error_of("1j") == "bad literal \"1j\": complex numbers are not supported at offset 1");
}

TEST_CASE("floats") {
  CHECK_LIT("1.5", value(1.5));
  CHECK_LIT(".5", value(0.5));
  CHECK_LIT("1.", value(1.0));
  CHECK_LIT("1e3", value(1000.0));
  CHECK_LIT("-2.5e-3", value(-0.0025));
  CHECK_LIT("1_0.2_5", value(10.25));
  CHECK_LIT("1E+2", value(100.0));
  CHECK(std::signbit(parse_literal("-0.0").as_double()));
  // Python: a literal too large for a double is inf, too small is 0.0.
  CHECK(parse_literal("1e400").as_double() == std::numeric_limits<double>::infinity());
  CHECK(parse_literal("-1e400").as_double() == -std::numeric_limits<double>::infinity());
  CHECK(parse_literal("1e-400").as_double() == 0.0);
  CHECK(error_of("inf") == "bad literal \"inf\": name 'inf' is not a literal at offset 0");
  CHECK(error_of("nan") == "bad literal \"nan\": name 'nan' is not a literal at offset 0");
  CHECK(error_of("1.5.2").find("malformed number") != std::string::npos);
}

TEST_CASE("strings and bytes") {
  CHECK_LIT("'abc'", value("abc"));
  CHECK_LIT("\"abc\"", value("abc"));
  CHECK_LIT("'it\\'s'", value("it's"));
  CHECK_LIT("\"a\\\"b\"", value("a\"b"));
  CHECK_LIT("'\\n\\t\\\\\\r\\a\\b\\f\\v'", value("\n\t\\\r\a\b\f\v"));
  CHECK_LIT("'\\x41\\101\\u00e9\\U0001F600'", value("AA\xc3\xa9\xf0\x9f\x98\x80"));
  CHECK_LIT("'\\q'", value("\\q"));  // unknown escapes are kept
  CHECK_LIT("'''a\nb'c'''", value("a\nb'c"));
  CHECK_LIT("\"\"\"x\"\"\"", value("x"));
  CHECK_LIT("r'a\\nb'", value("a\\nb"));
  CHECK_LIT("u'x'", value("x"));
  CHECK_LIT("'a' \"b\"", value("ab"));
  CHECK_LIT("'h\xc3\xa9'", value("h\xc3\xa9"));
  CHECK_LIT("b'x\\x00\\xff'", value(bin{std::string("x\x00\xff", 3)}));
  CHECK_LIT("B'\\u1234'", value(bin{"\\u1234"}));
  CHECK_LIT("rb'\\x00'", value(bin{"\\x00"}));
  CHECK_LIT("b''", value(bin{""}));
  CHECK(parse_literal("''").is_str());
  CHECK(error_of("'abc") == "bad literal \"'abc\": unterminated string at offset 0");
  CHECK(error_of("'a\nb'") ==
        "bad literal \"'a\nb'\": unterminated string (newline inside quotes) at offset 0");
  CHECK(error_of("b'\xc3\xa9'") ==
        "bad literal \"b'\xc3\xa9'\": bytes can only contain ASCII literal characters at offset 2");
  CHECK(error_of("'a' b'b'") ==
        "bad literal \"'a' b'b'\": cannot mix bytes and str literals at offset 4");
  CHECK(error_of("'\\x4'") == "bad literal \"'\\x4'\": truncated \\x escape at offset 1");
  CHECK(error_of("'\\ud800'").find("surrogate") != std::string::npos);
  CHECK(error_of("'\\N{DASH}'").find("\\N{...} escapes are not supported") != std::string::npos);
  CHECK(error_of("f'x'") == "bad literal \"f'x'\": f-strings are not literals at offset 0");
}

TEST_CASE("constants, tuples, lists and dicts") {
  CHECK_LIT("True", value(true));
  CHECK_LIT("False", value(false));
  CHECK_LIT("None", value(nullptr));
  CHECK_LIT("  42  ", value(42));
  CHECK_LIT("()", value(array{}));
  CHECK_LIT("(1)", value(1));
  CHECK_LIT("(1,)", value(array{1}));
  CHECK_LIT("(1, 'a', None)", value(array{1, "a", nullptr}));
  CHECK_LIT("1, 2", value(array{1, 2}));
  CHECK_LIT("1,", value(array{1}));
  CHECK_LIT("[]", value(array{}));
  CHECK_LIT("[1]", value(array{1}));
  CHECK_LIT("[(1, 2)]", value(array{array{1, 2}}));
  CHECK_LIT("[1, [2, 3], ]", value(array{1, array{2, 3}}));
  CHECK_LIT("{}", value(map{}));
  CHECK_LIT("{'a': 1, 2: [3], (1, 2): None, 'a': 5}",
            value(map{{"a", 5}, {2, array{3}}, {array{1, 2}, nullptr}}));
  CHECK_LIT("{\n 'x': -1.5,\n}", value(map{{"x", -1.5}}));
}

TEST_CASE("anything that is not a literal is refused with its position") {
  CHECK(error_of("") == "bad literal \"\": empty expression at offset 0");
  CHECK(error_of("   ") == "bad literal \"   \": empty expression at offset 3");
  CHECK(error_of("1+2") ==
        "bad literal \"1+2\": unexpected '+' (operators are not supported) at offset 1");
  CHECK(error_of("foo") == "bad literal \"foo\": name 'foo' is not a literal at offset 0");
  CHECK(error_of("x(1)") == "bad literal \"x(1)\": name 'x' is not a literal at offset 0");
  CHECK(error_of("(1, 2") ==
        "bad literal \"(1, 2\": missing ')' to close '(' at offset 0 at offset 5");
  CHECK(error_of("{1, 2}") ==
        "bad literal \"{1, 2}\": sets are not supported (msgpack has no set type) at offset 2");
  CHECK(error_of("-'a'") == "bad literal \"-'a'\": a sign needs a number at offset 1");
  CHECK(error_of("-True") == "bad literal \"-True\": a sign needs a number at offset 1");
  CHECK(error_of("1 2") == "bad literal \"1 2\": unexpected '2' at offset 2");
  CHECK(error_of("[1 2]") ==
        "bad literal \"[1 2]\": expected ']' to close '[' at offset 0, found '2' at offset 3");
  CHECK(error_of("{'a' 1}") ==
        "bad literal \"{'a' 1}\": expected ':' after a dict key, found '1' at offset 5");
  CHECK(error_of("__import__('os')").find("name '__import__' is not a literal") !=
        std::string::npos);
}

TEST_CASE("python_repr matches Python's repr") {
  CHECK(python_repr(value(nullptr)) == "None");
  CHECK(python_repr(value(true)) == "True");
  CHECK(python_repr(value(-5)) == "-5");
  CHECK(python_repr(value(18446744073709551615ULL)) == "18446744073709551615");
  CHECK(python_repr(value("there")) == "'there'");
  CHECK(python_repr(value("it's")) == "\"it's\"");
  CHECK(python_repr(value("it's \"x\"")) == "'it\\'s \"x\"'");
  CHECK(python_repr(value("a\\b\n\t\r\x01\x7f")) == "'a\\\\b\\n\\t\\r\\x01\\x7f'");
  CHECK(python_repr(value("h\xc3\xa9 \xe2\x82\xac")) == "'h\xc3\xa9 \xe2\x82\xac'");
  CHECK(python_repr(value("\xc2\xa0\xc2\x85\xe2\x80\x8b")) == "'\\xa0\\x85\\u200b'");
  CHECK(python_repr(value(bin{std::string("x y\x00\xff'", 6)})) == "b\"x y\\x00\\xff'\"");
  CHECK(python_repr(value(bin{"a\\\n"})) == "b'a\\\\\\n'");
  CHECK(python_repr(value(array{})) == "()");
  CHECK(python_repr(value(array{1})) == "(1,)");
  CHECK(python_repr(value(array{1, "a", array{}})) == "(1, 'a', ())");
  CHECK(python_repr(value(map{{"a", 1}, {2, nullptr}})) == "{'a': 1, 2: None}");
  CHECK(python_repr(value::make_path({"a", "b"})) == "P('a.b')");
  CHECK(python_repr(value::make_path({"a", "b c"})) == "P('a.b:_c')");
  CHECK(python_repr(value(ext_data{5, std::string("\x00\x01", 2)})) ==
        "ExtType(code=5, data=b'\\x00\\x01')");
  CHECK(python_repr(value(ext_data{-1, std::string("\x00\x00\x00\x10", 4)})) ==
        "Timestamp(seconds=16, nanoseconds=0)");
}

TEST_CASE("python_float_repr is Python's shortest round-trip repr") {
  CHECK(python_float_repr(1.0) == "1.0");
  CHECK(python_float_repr(1.5) == "1.5");
  CHECK(python_float_repr(0.1) == "0.1");
  CHECK(python_float_repr(-0.0) == "-0.0");
  CHECK(python_float_repr(1e20) == "1e+20");
  CHECK(python_float_repr(1e16) == "1e+16");
  CHECK(python_float_repr(1e15) == "1000000000000000.0");
  CHECK(python_float_repr(123456789012345678.0) == "1.2345678901234568e+17");
  CHECK(python_float_repr(0.0001) == "0.0001");
  CHECK(python_float_repr(0.00001) == "1e-05");
  CHECK(python_float_repr(1.5e-300) == "1.5e-300");
  CHECK(python_float_repr(2.5e-3) == "0.0025");
  CHECK(python_float_repr(1.0 / 3) == "0.3333333333333333");
  CHECK(python_float_repr(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(python_float_repr(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(python_float_repr(std::nan("")) == "nan");
  CHECK(python_float_repr(5e-324) == "5e-324");
  CHECK(python_float_repr(1.7976931348623157e308) == "1.7976931348623157e+308");
}
