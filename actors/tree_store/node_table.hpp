// The node table: what this server knows about every node's ticks (server-internals §2.1).
//
// Ownership: one per tree, owned by the tree_store actor (single writer, no locking).
//
// Per node:
//   tick        highest tick seen (nullopt = unknown / not initialised)
//   present     ticks that occur in the chain of some local entry (tombstones included)
//   deleted     ticks of deletions not yet purged
//   superseded  ticks that once existed but are on no chain any more (the wire calls it `known`)
//   reported    ticks another node reported missing (`remote_missing`)
//   entries     tick -> the entry whose chain holds (node, tick)
//
// Invariants kept by the operations below: a tick is never both present and superseded;
// `entries` has a key exactly for the present ticks that some live entry holds.
//
// Nodes keep their creation order (the original iterates a dict), which is the order of
// `get_state` replies.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/tree_store/chain.hpp"
#include "actors/tree_store/range_set.hpp"

namespace moatkv {

class entry;  // tree.hpp

struct node_info {
  node_name name;
  std::optional<int64_t> tick;
  range_set present;
  range_set deleted;
  range_set superseded;
  range_set reported;
  std::unordered_map<int64_t, entry*> entries;
  uint64_t tock = 0;  // last tock seen in a ping of this node (informational)

  /// `[1, tick] - present - superseded`; empty unless tick >= 1.
  range_set local_missing() const;
};

class node_table {
 public:
  /// Look up or create a node; raise its tick to `tick` if given and larger. Creating a node
  /// removes it from `node_drop`.
  node_info& get(node_name name, std::optional<int64_t> tick = std::nullopt);
  node_info& get(std::string_view name, std::optional<int64_t> tick = std::nullopt) {
    return get(node_name(name), tick);
  }
  node_info* find(node_name name);
  const node_info* find(node_name name) const;
  node_info* find(std::string_view name) { return find(node_name(name)); }

  /// (node, tick) occurs in `e`'s chain (e may be null); `local`: do not clear `reported`.
  void seen(node_name node, int64_t tick, entry* e, bool local = false);
  /// (node, tick) is on no chain any more.
  void supersede(node_name node, int64_t tick);
  /// (node, tick) belongs to a deletion; returns the entry holding it, if any.
  entry* mark_deleted(node_name node, int64_t tick);
  /// (node, tick) belonged to a deletion that is now purged: it leaves present, deleted and
  /// reported and becomes superseded. Returns the entry that held it (removed from `entries`).
  entry* clear_deleted(node_name node, int64_t tick);
  /// Note the links of an incoming chain: create the nodes, raise their ticks, and clear
  /// `reported` for each tick > 0 (the side effects of the original's deserialisation).
  /// Links without a tick take the node's known tick, as in the original.
  void note_chain(chain& c);

  /// Remove a node (kill_node / node_drop) and remember its name in `node_drop`.
  void drop(node_name name);

  const std::vector<std::unique_ptr<node_info>>& all() const { return nodes_; }
  const std::vector<std::string>& node_drop() const { return node_drop_; }

 private:
  std::vector<std::unique_ptr<node_info>> nodes_;
  std::unordered_map<const std::string*, node_info*> by_name_;
  std::vector<std::string> node_drop_;
};

}  // namespace moatkv
