// Small helpers for reading request fields the way the original (Python) reads them.
//
// Python code treats `True` as 1 and compares `2.0 == 2`, and clients do send `nchain: False`;
// so an integer field accepts int, bool and floats with an integral value. Everything here is
// header-only and allocation-free except the error strings.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "messages/literal.hpp"
#include "messages/value.hpp"

namespace moatkv::wire {

/// int64, uint64 that fits, bool, or a float with an integral value inside int64's range.
inline bool to_int(const value& v, int64_t& out) {
  if (v.is_float()) {
    double d = v.as_double();
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 ||
        d >= 9223372036854775808.0)
      return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  return v.get_int(out);
}

/// Python truthiness of a msgpack value.
inline bool truthy(const value& v) {
  switch (v.type()) {
    case kind::nil:
      return false;
    case kind::boolean:
      return v.as_bool();
    case kind::int64:
      return v.as_int64() != 0;
    case kind::uint64:
      return v.as_uint64() != 0;
    case kind::float64:
      return v.as_double() != 0.0;
    case kind::str:
      return !v.as_str().empty();
    case kind::bin:
      return !v.as_bin().empty();
    case kind::array:
      return !v.as_array().empty();
    case kind::map:
      return !v.as_map().empty();
    case kind::path:
      return true;  // moat.util Path.__bool__ is always True
    case kind::ext:
      return true;
  }
  return true;
}

/// Python `repr()` of a str: single quotes unless the text holds ' and no ".
/// Python `repr` of a str (quote choice and escapes as Python's).
inline std::string py_str_repr(std::string_view s) {
  return python_repr(value(s));
}

inline std::string py_exc(std::string_view type, std::string_view text) {
  std::string out(type);
  out += '(';
  out += py_str_repr(text);
  out += ')';
  return out;
}

}  // namespace moatkv::wire
