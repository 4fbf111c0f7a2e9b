// The msgpack value model of MoaT-KV.
//
// One type, `value`, holds everything the wire can carry: nil, bool, integers over the whole
// int64 and uint64 range, float64, str, bin, array, map (insertion-ordered, any key type), Path
// (ext 3 / marked ext 6), and every other extension type as opaque bytes (timestamps ext -1 and
// bignums ext 2 included) so that it round-trips byte-exactly.
//
// Equality and hashing follow the original (Python) semantics, because the tree uses values as
// child keys and `changed` / `prev` / `idem` compare values:
//   * numbers compare by numeric value across bool, int and float: 1 == 1.0 == true,
//     0 == -0.0 == false; NaN never equals anything (not even itself);
//   * str and bin never compare equal ("" != b"");
//   * arrays compare element-wise, and a Path equals an array with equal elements;
//   * maps compare as Python dicts: same keys (any order) with equal values;
//   * extension values compare by type code and bytes (timestamps by their decoded time).
// `hash_value` is consistent with this equality (equal values hash equally).
//
// Values are immutable in practice once stored in the tree; copying is a deep copy except for
// paths and extension payloads, which are shared (`shared_ptr<const …>`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moatkv {

class value;

using array = std::vector<value>;
using map_item = std::pair<value, value>;

/// A msgpack map: insertion-ordered pairs. Lookups are linear; the maps on the wire are small.
/// Use `map_find` / `map_set` to keep "last key wins" semantics.
using map = std::vector<map_item>;

/// Raw bytes (msgpack bin). Distinct from str.
struct bin {
  std::string bytes;
};

/// A path: a sequence of elements, optionally with a mark (ext 6). Immutable once built.
struct path_data {
  array elems;
  std::string mark;  // empty = unmarked (ext 3)
};

/// An extension value kept as opaque bytes (everything except Path).
struct ext_data {
  int8_t type = 0;
  std::string bytes;
};

/// Extension type codes with a meaning in MoaT-KV.
namespace ext_code {
inline constexpr int8_t timestamp = -1;
inline constexpr int8_t bignum = 2;
inline constexpr int8_t path = 3;
inline constexpr int8_t proxy = 4;
inline constexpr int8_t marked_path = 6;
}  // namespace ext_code

enum class kind : uint8_t { nil, boolean, int64, uint64, float64, str, bin, array, map, path, ext };

class value {
 public:
  value() = default;
  value(std::nullptr_t) {}
  value(bool b) : v_(b) {}
  value(int i) : v_(int64_t{i}) {}
  value(long i) : v_(int64_t{i}) {}
  value(long long i) : v_(int64_t{i}) {}
  value(unsigned i) : v_(int64_t{i}) {}
  value(unsigned long u) { set_unsigned(u); }
  value(unsigned long long u) { set_unsigned(u); }
  value(double d) : v_(d) {}
  value(const char* s) : v_(std::string(s)) {}
  value(std::string s) : v_(std::move(s)) {}
  value(std::string_view s) : v_(std::string(s)) {}
  value(bin b) : v_(std::move(b)) {}
  value(array a) : v_(std::move(a)) {}
  value(map m) : v_(std::move(m)) {}
  value(path_data p) : v_(std::make_shared<const path_data>(std::move(p))) {}
  value(std::shared_ptr<const path_data> p) : v_(std::move(p)) {}
  value(ext_data e) : v_(std::make_shared<const ext_data>(std::move(e))) {}

  /// A Path value from its elements.
  static value make_path(array elems, std::string mark = {});

  kind type() const { return static_cast<kind>(v_.index()); }
  bool is_nil() const { return type() == kind::nil; }
  bool is_bool() const { return type() == kind::boolean; }
  /// int64 or uint64 (not bool).
  bool is_int() const { return type() == kind::int64 || type() == kind::uint64; }
  bool is_float() const { return type() == kind::float64; }
  /// bool, int or float: takes part in numeric equality.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_str() const { return type() == kind::str; }
  bool is_bin() const { return type() == kind::bin; }
  bool is_array() const { return type() == kind::array; }
  bool is_map() const { return type() == kind::map; }
  bool is_path() const { return type() == kind::path; }
  bool is_ext() const { return type() == kind::ext; }
  /// An array or a Path: something usable as a sequence of path elements.
  bool is_sequence() const { return is_array() || is_path(); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int64() const { return std::get<int64_t>(v_); }
  uint64_t as_uint64() const { return std::get<uint64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  const std::string& as_str() const { return std::get<std::string>(v_); }
  const std::string& as_bin() const { return std::get<bin>(v_).bytes; }
  const array& as_array() const { return std::get<array>(v_); }
  array& as_array() { return std::get<array>(v_); }
  const map& as_map() const { return std::get<map>(v_); }
  map& as_map() { return std::get<map>(v_); }
  const path_data& as_path() const { return *std::get<std::shared_ptr<const path_data>>(v_); }
  const std::shared_ptr<const path_data>& path_ptr() const {
    return std::get<std::shared_ptr<const path_data>>(v_);
  }
  const ext_data& as_ext() const { return *std::get<std::shared_ptr<const ext_data>>(v_); }

  /// Elements of an array or a Path (precondition: is_sequence()).
  const array& elements() const;

  /// Integer view: int64, uint64 that fits, or bool (Python: True == 1). nullopt-like via ok.
  bool get_int(int64_t& out) const;

  /// Numeric view for equality: bool/int/float as double (precision loss is handled by
  /// the equality function, which compares integers exactly).
  friend bool operator==(const value& a, const value& b);
  friend bool operator!=(const value& a, const value& b) { return !(a == b); }

  /// Python `type(a) is type(b) and a == b` (used by `idem`): same kind (int64/uint64 count as
  /// one kind, arrays and Paths do not) and equal.
  friend bool same_type_equal(const value& a, const value& b);

  /// Map helpers (precondition: is_map()).
  const value* find(std::string_view key) const;
  const value* find(const char* key) const { return find(std::string_view(key)); }
  const value* find(const std::string& key) const { return find(std::string_view(key)); }
  const value* find(const value& key) const;

 private:
  void set_unsigned(unsigned long long u);

  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string, bin, array, map,
               std::shared_ptr<const path_data>, std::shared_ptr<const ext_data>>
      v_;
};

/// Hash consistent with operator== (Python semantics, see the file comment).
size_t hash_value(const value& v);

struct value_hash {
  size_t operator()(const value& v) const { return hash_value(v); }
};

/// Find a key in a map (Python equality); nullptr if absent.
const value* map_find(const map& m, const value& key);
const value* map_find(const map& m, std::string_view key);
inline const value* map_find(const map& m, const char* key) {
  return map_find(m, std::string_view(key));
}
inline const value* map_find(const map& m, const std::string& key) {
  return map_find(m, std::string_view(key));
}
/// Set a key: replace the value of an existing equal key in place, else append.
void map_set(map& m, value key, value val);
/// Remove a key if present; returns whether it was there.
bool map_erase(map& m, std::string_view key);

/// The wire kind's name ("int", "str", "Path", …) for error messages.
const char* kind_name(const value& v);

/// Python `repr` of the value, for logs and error messages (see python_repr in literal.hpp).
std::string debug_string(const value& v);

}  // namespace moatkv
