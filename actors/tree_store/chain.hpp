// Change chains (server-internals §1.5, §2.2).
//
// A chain records which (node, tick) events led to an entry's current state, most recent
// first, with at most one link per node. The original keeps a linked list of NodeEvent
// objects; we keep a short vector of links. Node names are interned (`node_name`), so a link
// is 16 bytes and comparing node names is a pointer comparison.
//
// Semantics (identical to the original):
//   * `a == b` compares the heads only (node and tick).
//   * `a.descends_from(b)` is the original's `a > b`: b is empty, or a's link for b's head
//     node has a tick >= b's head tick (and a != b).
//   * `a.precedes(b)` is the original's `a < b`: b's link for a's head node has a tick >= a's
//     head tick (and a != b). An empty `a` precedes everything (Python `None < x` is
//     evaluated as `x > None`, which is True).
//   * Chains are never truncated in memory; `serialize(n)` truncates: `prev: nil` marks the
//     real end, a missing `prev` marks truncation. A truncated chain and a complete one are
//     indistinguishable after `deserialize`.
//
// Deliberate differences: `deserialize` is pure (no node-table side effects; the caller
// notes the links in the node table when it wants to), rejects non-str node names, non-int
// ticks and chains naming a node twice, instead of asserting or corrupting state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/value.hpp"

namespace moatkv {

/// An interned node name: cheap to copy and compare; lives for the whole process.
class node_name {
 public:
  node_name() = default;
  explicit node_name(std::string_view name);
  const std::string& str() const { return *p_; }
  bool valid() const { return p_ != nullptr; }
  friend bool operator==(node_name a, node_name b) { return a.p_ == b.p_; }
  friend bool operator!=(node_name a, node_name b) { return a.p_ != b.p_; }

 private:
  const std::string* p_ = nullptr;
};

/// Tick of a link that carries none on the wire (the original's `tick: None`).
inline constexpr int64_t no_tick = -1;

struct chain_link {
  node_name node;
  int64_t tick = no_tick;
  friend bool operator==(const chain_link&, const chain_link&) = default;
};

class chain {
 public:
  chain() = default;
  /// A one-link chain.
  chain(node_name node, int64_t tick) : links_{chain_link{node, tick}} {}
  explicit chain(std::vector<chain_link> links) : links_(std::move(links)) {}

  /// No chain at all (the original's `None`).
  bool empty() const { return links_.empty(); }
  /// Precondition: !empty().
  const chain_link& head() const { return links_.front(); }
  const std::vector<chain_link>& links() const { return links_; }
  size_t size() const { return links_.size(); }
  /// The link of `node`, or nullptr.
  const chain_link* find(node_name node) const;

  /// Head equality; false if either is empty.
  bool same_head(const chain& other) const;
  friend bool operator==(const chain& a, const chain& b) { return a.same_head(b); }
  friend bool operator!=(const chain& a, const chain& b) { return !a.same_head(b); }
  /// The original's `self > other`: this is based on `other` (other is stale).
  bool descends_from(const chain& other) const;
  /// The original's `self < other`: `other` is based on this.
  bool precedes(const chain& other) const;

  /// The chain without `node`'s link.
  chain filter(node_name node) const;
  /// `head` followed by `prev` without head's node (`NodeEvent.attach`).
  static chain attach(const chain_link& head, const chain& prev);
  /// Drop every link for which `drop(link)` is true, keeping the order.
  template <class Pred>
  chain without(Pred drop) const {
    std::vector<chain_link> out;
    for (const auto& l : links_)
      if (!drop(l)) out.push_back(l);
    return chain(std::move(out));
  }

  /// Wire form with at most `nchain` links (negative: all). Precondition: !empty() and
  /// nchain != 0 (the original raises "A chopped-off NodeEvent must not be sent").
  value serialize(int64_t nchain = -1) const;
  /// Parse a chain: from `msg["chain"]` if `msg` is a map that has that key, else from `msg`
  /// itself (a flat update message). A map without `node` (or nil) is the empty chain.
  /// Returns false (and sets `error`) on malformed input.
  static bool deserialize(const value& msg, chain& out, std::string& error);

  /// The original's repr: `<NodeEvent node1:10 node2:3 (10,)>`.
  std::string repr() const;

 private:
  std::vector<chain_link> links_;
};

}  // namespace moatkv
