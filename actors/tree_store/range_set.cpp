#include "actors/tree_store/range_set.hpp"

#include <algorithm>

#include "actors/tree_store/wire_util.hpp"

namespace moatkv {

range_set::range_set(std::initializer_list<range> rs) {
  for (const auto& r : rs) add(r.lo, r.hi);
}

void range_set::add(int64_t lo, int64_t hi) {
  if (lo >= hi) return;
  // First interval that could touch [lo, hi): the first whose hi >= lo.
  auto first = std::lower_bound(ranges_.begin(), ranges_.end(), lo,
                                [](const range& r, int64_t v) { return r.hi < v; });
  auto last = first;
  while (last != ranges_.end() && last->lo <= hi) {
    lo = std::min(lo, last->lo);
    hi = std::max(hi, last->hi);
    ++last;
  }
  if (first == last) {
    ranges_.insert(first, range{lo, hi});
  } else {
    *first = range{lo, hi};
    ranges_.erase(first + 1, last);
  }
}

void range_set::remove(int64_t lo, int64_t hi) {
  if (lo >= hi) return;
  std::vector<range> out;
  out.reserve(ranges_.size() + 1);
  for (const auto& r : ranges_) {
    if (r.hi <= lo || r.lo >= hi) {
      out.push_back(r);
      continue;
    }
    if (r.lo < lo) out.push_back(range{r.lo, lo});
    if (r.hi > hi) out.push_back(range{hi, r.hi});
  }
  ranges_ = std::move(out);
}

bool range_set::contains(int64_t tick) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), tick,
                             [](int64_t v, const range& r) { return v < r.hi; });
  return it != ranges_.end() && it->lo <= tick;
}

range_set& range_set::operator+=(const range_set& other) {
  for (const auto& r : other.ranges_) add(r.lo, r.hi);
  return *this;
}

range_set& range_set::operator-=(const range_set& other) {
  for (const auto& r : other.ranges_) remove(r.lo, r.hi);
  return *this;
}

range_set& range_set::operator&=(const range_set& other) {
  std::vector<range> out;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < other.ranges_.size()) {
    const range& a = ranges_[i];
    const range& b = other.ranges_[j];
    int64_t lo = std::max(a.lo, b.lo), hi = std::min(a.hi, b.hi);
    if (lo < hi) out.push_back(range{lo, hi});
    if (a.hi < b.hi)
      ++i;
    else
      ++j;
  }
  ranges_ = std::move(out);
  return *this;
}

uint64_t range_set::count() const {
  uint64_t n = 0;
  for (const auto& r : ranges_) n += static_cast<uint64_t>(r.hi - r.lo);
  return n;
}

value range_set::to_value() const {
  array out;
  out.reserve(ranges_.size());
  for (const auto& r : ranges_) {
    if (r.hi == r.lo + 1)
      out.emplace_back(r.lo);
    else
      out.emplace_back(array{value(r.lo), value(r.hi)});
  }
  return value(std::move(out));
}

bool range_set::from_value(const value& v, range_set& out, std::string& error) {
  out.clear();
  if (!v.is_sequence()) {
    error = "a range set must be an array, not " + debug_string(v);
    return false;
  }
  for (const auto& item : v.elements()) {
    int64_t lo = 0, hi = 0;
    if (wire::to_int(item, lo)) {
      if (lo == INT64_MAX) {
        error = "range set tick out of range";
        return false;
      }
      out.add(lo);
      continue;
    }
    if (item.is_sequence() && item.elements().size() == 2 && wire::to_int(item.elements()[0], lo) &&
        wire::to_int(item.elements()[1], hi)) {
      out.add(lo, hi);
      continue;
    }
    error = "bad range set item " + debug_string(item);
    return false;
  }
  return true;
}

range_set& node_set::operator[](std::string_view name) {
  for (auto& [n, r] : items_)
    if (n == name) return r;
  items_.emplace_back(std::string(name), range_set{});
  return items_.back().second;
}

const range_set* node_set::find(std::string_view name) const {
  for (const auto& [n, r] : items_)
    if (n == name) return &r;
  return nullptr;
}

bool node_set::any() const {
  for (const auto& [n, r] : items_)
    if (!r.empty()) return true;
  return false;
}

value node_set::to_value(bool skip_empty) const {
  map out;
  for (const auto& [n, r] : items_) {
    if (skip_empty && r.empty()) continue;
    out.emplace_back(value(n), r.to_value());
  }
  return value(std::move(out));
}

bool node_set::from_value(const value& v, node_set& out, std::string& error) {
  out.clear();
  if (!v.is_map()) {
    error = "a node set must be a map, not " + debug_string(v);
    return false;
  }
  for (const auto& [k, r] : v.as_map()) {
    if (!k.is_str()) {
      error = "node names must be strings, not " + debug_string(k);
      return false;
    }
    range_set rs;
    if (!range_set::from_value(r, rs, error)) return false;
    out[k.as_str()] += rs;
  }
  return true;
}

}  // namespace moatkv
