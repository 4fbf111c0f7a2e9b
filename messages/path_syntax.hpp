// The Path string syntax of moat-util `P()` / `str(Path)` (batteries §8.2, server-internals §1.3).
//
// Parsing (`parse_path`): elements are separated by `.`; `:` starts an escape. Inside a string
// element `::` is `:`, `:.` is `.`, `:_` is a space. Escape elements: `:t` True, `:f` False,
// `:n` None, `:e` "", `:xHEX` / `:bBIN` ints, `:yHEX` / `:vTEXT` / `:sB64` bytes, `:iEXPR` and
// `:EXPR` (any other token after `:`) a literal, `:mMARK` the path's mark. Tokens are maximal runs
// of `[^:._]` or a single `:`, `.`, `_`; `:t :f :n :e` must be whole tokens. A `.` separates
// elements only before a plain string element; escape elements follow without a dot. Text after
// a prefixed/evaluated escape up to the next `.` or escape element belongs to it (`:1:.5` is 1.5,
// `:vab:_c` is b"ab c"). A lone `:` is the empty path, `:mX:` the empty path marked X.
//
// Differences from the original, all deliberate:
//   * `:EXPR` / `:iEXPR` use `parse_literal` (literals, tuples, lists, dicts), never an evaluator:
//     `simpleeval` arithmetic such as `:1+2` is rejected;
//   * a `.` before *any* escape element is an error (the original rejects `a.:t`, `a.:e`, `a.:1`
//     but lets `a.:x10`, `a.:vX`, `a.:mX` through); the documented rule is applied uniformly;
//   * the root aliases `:R :P :Q :S` are not supported (unused by MoaT-KV).
//
// Formatting (`format_path`) follows `Path.__str__`, with two fixes so that the output parses
// back (the original's output for these cases does not): a one-element tuple prints as `:x,`
// (Python prints `:x`, which reads back as x), the empty tuple as `:()` (Python prints nothing),
// and a tuple whose text starts with one of the prefix letters `i b x y v s m` gets the `i`
// prefix (`:ib'x',1`). Floats that are not finite print as `:iinf` / `:inan` like the original;
// they do not parse back (inf is not a literal), as in the original.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "messages/value.hpp"

namespace moatkv {

/// Thrown by parse_path; the message quotes the input and says what is wrong at which offset,
/// e.g. `bad path "a..b": empty element at offset 2`.
struct path_syntax_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Parse a path string into a value of kind path (see the file comment).
value parse_path(std::string_view text);

/// `str(path)` of a Path (its mark included) or of an array (treated as an unmarked Path).
/// Throws std::invalid_argument for any other kind of value.
std::string format_path(const value& path);

}  // namespace moatkv
