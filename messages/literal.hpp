// Python literals: parsing (a safe replacement for `eval`) and `repr`.
//
// The original evaluates user input with Python: `eval` for `-e NAME EXPR` and friends on the
// command line (batteries §8.3) and `simpleeval` for `:EXPR` path elements (§8.2). We never
// evaluate; `parse_literal` accepts the *literal* subset of Python expressions:
//
//   expr_list := expr ("," expr)* [","]       a top-level comma makes a tuple, as in eval("1,2")
//   expr      := ("+" | "-")* atom            signs only on numbers (ints stay exact)
//   atom      := int | float | string+ | "True" | "False" | "None"
//              | "(" ")" | "(" expr ")" | "(" expr "," [expr_list] ")" | "[" [expr_list] "]"
//              | "{" [expr ":" expr ("," expr ":" expr)* [","]] "}"
//
// * ints: decimal, 0x/0o/0b, single underscores between digits; the result must fit int64 or
//   uint64 (msgpack's range), anything larger is a literal_error;
// * floats: Python's float literal syntax (1.5, .5, 1., 1e3, 1_0.5); `inf` / `nan` are names,
//   not literals, and are rejected; a literal too large for a double becomes inf as in Python;
// * strings: '…' "…" '''…''' """…""", prefixes r/u/b/br/rb (any case); Python's escapes
//   (\\ \' \" \a \b \f \n \r \t \v \ooo \xHH \uXXXX \UXXXXXXXX, backslash-newline); \N{…} is not
//   supported; unknown escapes keep the backslash (as Python does); adjacent literals concatenate;
//   bytes take ASCII characters only; f-strings are rejected;
// * tuples and lists both become arrays (msgpack has only arrays); dicts become maps (last
//   duplicate key wins, keys may be any literal); sets and complex numbers are rejected.
//
// Differences from the original: no arithmetic, names, calls or comprehensions (simpleeval in
// paths allowed `1+2`); lists and dicts are accepted in paths too. Errors say what and where.
//
// `python_repr` is the inverse direction: Python's `repr` of the object the original would hold
// for a value (arrays are tuples there, since msgpack arrays decode to tuples).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "messages/value.hpp"

namespace moatkv {

/// Thrown by parse_literal; the message names the input, the problem and the byte offset.
struct literal_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Parse a Python literal expression (see the file comment). Surrounding whitespace is allowed.
value parse_literal(std::string_view text);

/// Python `repr` of the equivalent Python object: str with Python's quote choice and escapes,
/// bytes as b'…', ints, floats as Python repr (1.0, 1e+20, inf), True/False/None, arrays as
/// tuples `(1, 2)` / `(1,)` / `()`, maps as dicts `{'a': 1}`, Paths as `P('a.b')`, timestamps
/// (ext -1) as `Timestamp(seconds=…, nanoseconds=…)`, other ext as `ExtType(code=…, data=b'…')`.
std::string python_repr(const value& v);

/// Python `repr(float)`: the shortest string that round-trips, in Python's notation.
std::string python_float_repr(double d);

/// Append the UTF-8 encoding of code point `cp`.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace moatkv
