#include "messages/value.hpp"

#include "messages/literal.hpp"

#include <cmath>
#include <cstring>
#include <functional>

namespace moatkv {

namespace {

// A number reduced to one canonical form for exact comparison and hashing.
struct numeric {
  enum class form { signed_int, unsigned_int, real, nan } f;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
};

numeric to_numeric(const value& v) {
  numeric n{numeric::form::signed_int};
  switch (v.type()) {
    case kind::boolean:
      n.i = v.as_bool() ? 1 : 0;
      return n;
    case kind::int64:
      n.i = v.as_int64();
      return n;
    case kind::uint64:
      n.f = numeric::form::unsigned_int;
      n.u = v.as_uint64();
      return n;
    default:
      break;
  }
  double d = v.as_double();
  if (std::isnan(d)) return numeric{numeric::form::nan};
  // Integral floats in range compare exactly with integers (Python semantics).
  if (std::trunc(d) == d) {
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
      n.i = static_cast<int64_t>(d);
      return n;
    }
    if (d >= 0 && d < 18446744073709551616.0) {
      n.f = numeric::form::unsigned_int;
      n.u = static_cast<uint64_t>(d);
      return n;
    }
  }
  n.f = numeric::form::real;
  n.d = d;
  return n;
}

bool numeric_equal(const value& a, const value& b) {
  numeric x = to_numeric(a), y = to_numeric(b);
  if (x.f == numeric::form::nan || y.f == numeric::form::nan) return false;
  if (x.f != y.f) return false;  // canonical forms differ => values differ
  switch (x.f) {
    case numeric::form::signed_int:
      return x.i == y.i;
    case numeric::form::unsigned_int:
      return x.u == y.u;
    default:
      return x.d == y.d;
  }
}

// Decode a msgpack timestamp payload into (seconds, nanoseconds); false if malformed.
bool decode_timestamp(const std::string& b, int64_t& sec, uint32_t& nsec) {
  auto be = [&](size_t off, size_t n) {
    uint64_t r = 0;
    for (size_t k = 0; k < n; ++k) r = (r << 8) | static_cast<uint8_t>(b[off + k]);
    return r;
  };
  if (b.size() == 4) {
    sec = static_cast<int64_t>(be(0, 4));
    nsec = 0;
    return true;
  }
  if (b.size() == 8) {
    uint64_t x = be(0, 8);
    nsec = static_cast<uint32_t>(x >> 34);
    sec = static_cast<int64_t>(x & 0x3ffffffffULL);
    return true;
  }
  if (b.size() == 12) {
    nsec = static_cast<uint32_t>(be(0, 4));
    sec = static_cast<int64_t>(be(4, 8));
    return true;
  }
  return false;
}

bool ext_equal(const ext_data& a, const ext_data& b) {
  if (a.type != b.type) return false;
  if (a.type == ext_code::timestamp) {
    int64_t s1, s2;
    uint32_t n1, n2;
    if (decode_timestamp(a.bytes, s1, n1) && decode_timestamp(b.bytes, s2, n2))
      return s1 == s2 && n1 == n2;
  }
  return a.bytes == b.bytes;
}

bool map_equal(const map& a, const map& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, v] : a) {
    const value* other = map_find(b, k);
    if (!other || !(*other == v)) return false;
  }
  return true;
}

bool sequence_equal(const array& a, const array& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}

size_t mix(size_t h, size_t x) {
  return h ^ (x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

}  // namespace

value value::make_path(array elems, std::string mark) {
  return value(path_data{std::move(elems), std::move(mark)});
}

void value::set_unsigned(unsigned long long u) {
  if (u <= static_cast<unsigned long long>(INT64_MAX))
    v_ = static_cast<int64_t>(u);
  else
    v_ = static_cast<uint64_t>(u);
}

const array& value::elements() const {
  return is_path() ? as_path().elems : as_array();
}

bool value::get_int(int64_t& out) const {
  switch (type()) {
    case kind::boolean:
      out = as_bool() ? 1 : 0;
      return true;
    case kind::int64:
      out = as_int64();
      return true;
    case kind::float64: {
      double d = as_double();
      if (std::trunc(d) == d && d >= -9e18 && d <= 9e18) {
        out = static_cast<int64_t>(d);
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

bool operator==(const value& a, const value& b) {
  if (a.is_number() || b.is_number()) return a.is_number() && b.is_number() && numeric_equal(a, b);
  if (a.is_sequence() && b.is_sequence()) {
    if (a.is_path() && b.is_path() && a.as_path().mark != b.as_path().mark) return false;
    return sequence_equal(a.elements(), b.elements());
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case kind::nil:
      return true;
    case kind::str:
      return a.as_str() == b.as_str();
    case kind::bin:
      return a.as_bin() == b.as_bin();
    case kind::map:
      return map_equal(a.as_map(), b.as_map());
    case kind::ext:
      return ext_equal(a.as_ext(), b.as_ext());
    default:
      return false;
  }
}

bool same_type_equal(const value& a, const value& b) {
  auto norm = [](kind k) { return k == kind::uint64 ? kind::int64 : k; };
  return norm(a.type()) == norm(b.type()) && a == b;
}

const value* value::find(std::string_view key) const {
  return map_find(as_map(), key);
}
const value* value::find(const value& key) const {
  return map_find(as_map(), key);
}

size_t hash_value(const value& v) {
  switch (v.type()) {
    case kind::nil:
      return 0x5bd1e995;
    case kind::boolean:
    case kind::int64:
    case kind::uint64:
    case kind::float64: {
      numeric n = to_numeric(v);
      switch (n.f) {
        case numeric::form::signed_int:
          return std::hash<int64_t>{}(n.i);
        case numeric::form::unsigned_int:
          return std::hash<uint64_t>{}(n.u);
        case numeric::form::real:
          return std::hash<double>{}(n.d);
        default:
          return 0x7ff8;  // NaN: equal to nothing, any constant is consistent
      }
    }
    case kind::str:
      return std::hash<std::string_view>{}(v.as_str());
    case kind::bin:
      return mix(0xb1, std::hash<std::string_view>{}(v.as_bin()));
    case kind::array:
    case kind::path: {
      // Arrays and Paths with equal elements are equal, so they hash alike (marks ignored).
      size_t h = 0xa77a;
      for (const auto& e : v.elements()) h = mix(h, hash_value(e));
      return h;
    }
    case kind::map: {
      size_t h = 0x3a9;  // order-independent: dict equality ignores order
      for (const auto& [k, val] : v.as_map()) h += mix(hash_value(k), hash_value(val));
      return h;
    }
    case kind::ext:
      if (v.as_ext().type == ext_code::timestamp) return 0x7173;  // equal by time, not bytes
      return mix(static_cast<size_t>(v.as_ext().type),
                 std::hash<std::string_view>{}(v.as_ext().bytes));
  }
  return 0;
}

const value* map_find(const map& m, const value& key) {
  for (const auto& [k, v] : m)
    if (k == key) return &v;
  return nullptr;
}

const value* map_find(const map& m, std::string_view key) {
  for (const auto& [k, v] : m)
    if (k.is_str() && k.as_str() == key) return &v;
  return nullptr;
}

void map_set(map& m, value key, value val) {
  for (auto& [k, v] : m)
    if (k == key) {
      v = std::move(val);
      return;
    }
  m.emplace_back(std::move(key), std::move(val));
}

bool map_erase(map& m, std::string_view key) {
  for (auto it = m.begin(); it != m.end(); ++it)
    if (it->first.is_str() && it->first.as_str() == key) {
      m.erase(it);
      return true;
    }
  return false;
}

std::string debug_string(const value& v) {
  return python_repr(v);
}

const char* kind_name(const value& v) {
  switch (v.type()) {
    case kind::nil:
      return "nil";
    case kind::boolean:
      return "bool";
    case kind::int64:
    case kind::uint64:
      return "int";
    case kind::float64:
      return "float";
    case kind::str:
      return "str";
    case kind::bin:
      return "bin";
    case kind::array:
      return "array";
    case kind::map:
      return "map";
    case kind::path:
      return "Path";
    case kind::ext:
      return "ext";
  }
  return "?";
}

}  // namespace moatkv
