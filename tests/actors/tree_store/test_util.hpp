// Helpers for the tree_store tests: building request maps and paths tersely.
#pragma once

#include <initializer_list>
#include <string>

#include "actors/tree_store/actions.hpp"
#include "messages/value.hpp"

namespace moatkv::test {

inline value P(std::initializer_list<value> elems) {
  return value::make_path(array(elems));
}
inline value A(std::initializer_list<value> elems) {
  return value(array(elems));
}
inline value M(std::initializer_list<map_item> items) {
  return value(map(items));
}

inline bool has_key(const value& m, const char* key) {
  return m.find(key) != nullptr;
}
inline const value& at(const value& m, const char* key) {
  static const value missing = value("<missing>");
  const value* v = m.find(key);
  return v ? *v : missing;
}
inline int64_t int_at(const value& m, const char* key) {
  int64_t out = -999;
  at(m, key).get_int(out);
  return out;
}
/// The single reply of a non-streamed request.
inline value single(kv_store& kv, uint64_t conn, const value& req) {
  action_result r = kv.handle(conn, req);
  if (r.stream || r.messages.size() != 1) return value("<not a single reply>");
  return r.messages.front();
}

}  // namespace moatkv::test
