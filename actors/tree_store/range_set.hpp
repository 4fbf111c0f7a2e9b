// Tick range sets and node sets (server-internals §1.4).
//
// A `range_set` is a sorted list of disjoint, non-adjacent half-open intervals [lo, hi) of
// ticks. Every mutating operation keeps that invariant, so two range sets holding the same
// ticks are equal element by element.
//
// Wire form (the original's `RangeSet.__getstate__`): an array whose items are either an int
// `x` (meaning [x, x+1)) or a 2-array `[lo, hi)`; {1, 3,4,5,6} is `[1, [3, 7]]`.
// Decoding accepts ints and 2-element arrays (or Paths) in any order, overlapping or adjacent,
// and normalises them. Deliberate difference: the original keeps unnormalised input as given;
// we normalise, which only changes how a set is re-sent, not which ticks it holds.
//
// A `node_set` is the wire map `node name (str) -> range_set state`, insertion-ordered like
// the original's NodeSet (a defaultdict).
//
// Ownership: plain values; the node table (tree_store actor) owns the long-lived ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/value.hpp"

namespace moatkv {

class range_set {
 public:
  struct range {
    int64_t lo;  // inclusive
    int64_t hi;  // exclusive
    friend bool operator==(const range&, const range&) = default;
  };

  range_set() = default;
  range_set(std::initializer_list<range> rs);

  void add(int64_t tick) { add(tick, tick + 1); }
  void add(int64_t lo, int64_t hi);
  void remove(int64_t tick) { remove(tick, tick + 1); }
  void remove(int64_t lo, int64_t hi);
  bool contains(int64_t tick) const;
  void clear() { ranges_.clear(); }

  range_set& operator+=(const range_set& other);  // union
  range_set& operator-=(const range_set& other);  // difference
  range_set& operator&=(const range_set& other);  // intersection
  friend range_set operator+(range_set a, const range_set& b) { return a += b; }
  friend range_set operator-(range_set a, const range_set& b) { return a -= b; }
  friend range_set operator&(range_set a, const range_set& b) { return a &= b; }
  friend bool operator==(const range_set&, const range_set&) = default;

  bool empty() const { return ranges_.empty(); }
  /// Number of intervals (Python `len(RangeSet)`).
  size_t size() const { return ranges_.size(); }
  /// Number of ticks.
  uint64_t count() const;

  const std::vector<range>& ranges() const { return ranges_; }
  auto begin() const { return ranges_.begin(); }
  auto end() const { return ranges_.end(); }

  /// The wire form: [x | [lo, hi], ...].
  value to_value() const;
  /// Parse the wire form; false (and `error` set) if it is not an array of ints / int pairs.
  static bool from_value(const value& v, range_set& out, std::string& error);

 private:
  std::vector<range> ranges_;
};

/// name -> range_set, insertion-ordered.
class node_set {
 public:
  range_set& operator[](std::string_view name);
  const range_set* find(std::string_view name) const;
  void add(std::string_view name, int64_t tick) { (*this)[name].add(tick); }
  /// True if some range set is non-empty (the original's `NodeSet.__bool__`).
  bool any() const;
  void clear() { items_.clear(); }
  const std::vector<std::pair<std::string, range_set>>& items() const { return items_; }

  /// {name: range_set state}; with `skip_empty`, names with an empty set are left out.
  value to_value(bool skip_empty = false) const;
  /// Parse {str: range_set state}; false (and `error` set) on anything else.
  static bool from_value(const value& v, node_set& out, std::string& error);

 private:
  std::vector<std::pair<std::string, range_set>> items_;
};

}  // namespace moatkv
