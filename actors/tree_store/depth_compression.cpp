#include "actors/tree_store/depth_compression.hpp"

#include "actors/tree_store/wire_util.hpp"

namespace moatkv {

bool path_shortener::shorten(const array& full, value& path_out, int64_t& depth_out) {
  if (full.size() < prefix_.size()) return false;
  for (size_t i = 0; i < prefix_.size(); ++i)
    if (full[i] != prefix_[i]) return false;
  array s(full.begin() + static_cast<std::ptrdiff_t>(prefix_.size()), full.end());
  size_t d = std::min(s.size(), last_.size());
  for (size_t i = 0; i < d; ++i)
    if (s[i] != last_[i]) {
      d = i;
      break;
    }
  array rest(s.begin() + static_cast<std::ptrdiff_t>(d), s.end());
  last_ = std::move(s);
  depth_out = static_cast<int64_t>(d);
  if (paths_are_paths_ && prefix_.empty() && d == 0)
    path_out = value::make_path(std::move(rest));
  else
    path_out = value(std::move(rest));
  return true;
}

bool path_shortener::apply(value& record, std::string& error) {
  if (!record.is_map()) return true;
  map& m = record.as_map();
  for (auto& [k, v] : m) {
    if (!(k.is_str() && k.as_str() == "path")) continue;
    if (!v.is_sequence()) {
      error = "path is not a sequence: " + debug_string(v);
      return false;
    }
    value out;
    int64_t depth = 0;
    array full = v.elements();
    if (!shorten(full, out, depth)) {
      error = "Wrong prefix: has " + debug_string(v) + ", want " + debug_string(value(prefix_));
      return false;
    }
    v = std::move(out);
    map_set(m, value("depth"), value(depth));
    return true;
  }
  return true;
}

bool path_longener::expand(const array& path, int64_t depth, array& full_out) {
  if (depth < 0 || prefix_.size() + static_cast<uint64_t>(depth) > last_.size()) return false;
  array full(last_.begin(), last_.begin() + static_cast<std::ptrdiff_t>(prefix_.size() + depth));
  full.insert(full.end(), path.begin(), path.end());
  last_ = full;
  full_out = std::move(full);
  return true;
}

bool path_longener::apply(value& record, std::string& error) {
  if (!record.is_map()) return true;
  map& m = record.as_map();
  const value* p = map_find(m, "path");
  const value* d = map_find(m, "depth");
  if (p == nullptr || d == nullptr) return true;
  int64_t depth = 0;
  if (!p->is_sequence() || !wire::to_int(*d, depth)) {
    error = "bad path/depth in " + debug_string(record);
    return false;
  }
  array full;
  if (!expand(p->elements(), depth, full)) {
    error = "depth out of range in " + debug_string(record);
    return false;
  }
  map_set(m, value("path"), value::make_path(std::move(full)));
  map_erase(m, "depth");
  return true;
}

}  // namespace moatkv
