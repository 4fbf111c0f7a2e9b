// Tombstone purge coordination: the original's DeleteActor (server-internals §2.6, §5.8).
//
// A deletion leaves a tombstone so that late or resent updates cannot resurrect the entry.
// Tombstones may only be purged once every node of the deleter group has seen the deletion.
// The group is configured by the entry (None, "actor", "del") = {nodes: [names]}; its members
// run an enabled ping actor on `<root>/del` (others listen with a disabled one). Deletions are
// collected every 10 s with the current tock; only while the group exists (n_nodes > 0) are they
// kept, otherwise tombstones live on, as in the original.
//
//   TagEvent (we are "it"): when the ping history covers the whole group, count the tag; after
//     the third, purge everything older than the oldest of our last four tag tocks. Our ping
//     value becomes [oldest tag tock, newest tag tock].
//   PingEvent (another member is "it"): once we saw more pings than there are members, purge
//     what is older than that member's oldest tag tock — unless its oldest tag is newer than the
//     newest we saw before, which means we may have missed deletions (resync).
//
// Plain class, no CAF: the gossip actor feeds it events and executes the purges it returns.
// Deliberate difference: the original's resync (`resync_deleted`, a walk of a peer's whole tree)
// is reported to the caller, which logs it; nothing is purged in that round, which is safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "actors/tree_store/range_set.hpp"
#include "messages/value.hpp"

namespace moatkv {

class deleter {
 public:
  explicit deleter(std::string own_name) : own_name_(std::move(own_name)) {}

  /// What the delete ping actor must do after a configuration change.
  struct group_change {
    bool enable = false;  // true: enable(length); false: disable(length)
    int64_t length = 0;
  };
  /// (None, "actor", "del") changed to `entry` (nil when absent or deleted). Returns nullopt
  /// when the configuration did not change.
  std::optional<group_change> configure(const std::optional<value>& entry);

  /// Deletions were collected at `tock` (kept only while the group exists).
  void add_deleted(uint64_t tock, node_set deleted);

  /// We became "it" at `tock` with a ping history of `history_size` nodes. Returns the sets to
  /// purge now; `actor_value` is set to our new delete-actor ping value.
  std::vector<node_set> on_tag(uint64_t tock, size_t history_size, value& actor_value);

  struct ping_outcome {
    std::vector<node_set> purge;
    bool resync = false;  // we may have missed deletions: purge nothing this round
  };
  /// Another member's debounced ping (`msg` = its ping message: value, history).
  ping_outcome on_ping(const value& msg);

  int64_t group_size() const { return n_nodes_; }
  size_t pending() const { return deleted_.size(); }

 private:
  std::vector<node_set> purge_to(uint64_t tock);
  void reset_counters() {
    n_tags_ = 0;
    n_pings_ = 0;
  }

  std::string own_name_;
  std::optional<value> config_;
  int64_t n_nodes_ = 0;
  std::deque<std::pair<uint64_t, node_set>> deleted_;
  std::deque<uint64_t> tags_;  // last four tocks at which we were "it"
  uint64_t max_seen_ = 0;
  int64_t n_tags_ = 0;
  int64_t n_pings_ = 0;
};

}  // namespace moatkv
