// The client actions of the MoaT-KV protocol, executed against the tree (server-internals §7.8).
//
// Ownership: one `kv_store` per node, owned by the tree_store actor, which is its single writer.
// The class is plain C++ (no CAF) so the protocol semantics test without actors.
//
// The session (transport/session.cpp) does the framing: it assigns `seq`, adds `wseq` and the
// `tock` of messages that have none, runs flow control and `stop`. Everything else — what a
// request means and what its replies contain, including depth compression of streamed paths —
// happens here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/tree_store/tock_clock.hpp"
#include "messages/value.hpp"

namespace moatkv {

class tree;  // actors/tree_store/tree.hpp

/// What one client request produces.
struct action_result {
  /// false: `messages` holds exactly one reply map (a single reply).
  /// true: a stream — the session sends {state:"start"}, then `messages` in order, then
  /// {state:"end"} unless `open` is set.
  bool stream = false;
  /// true for a stream that stays open after `messages` (a watch): later messages arrive
  /// through the watch emitter until the watch is cancelled.
  bool open = false;
  /// Reply maps without `seq` / `wseq`. A map may carry its own `tock`; the session adds a
  /// fresh one to maps that do not.
  std::vector<value> messages;
};

class kv_store {
 public:
  /// Called for every message of an open watch stream after the request returned:
  /// (connection id, request seq, message map).
  using watch_emitter = std::function<void(uint64_t conn, int64_t seq, value message)>;

  kv_store(std::string node_name, std::shared_ptr<tock_clock> clock);
  ~kv_store();
  kv_store(const kv_store&) = delete;
  kv_store& operator=(const kv_store&) = delete;

  const std::string& node_name() const;
  tock_clock& clock();

  /// Own tick; nullopt while the node is not ready (no data yet).
  std::optional<uint64_t> own_tick() const;
  /// Make the node ready on its own (standalone, or `-I` without peers): tick := 0 if unset.
  void init_own_tick();
  /// `server -I VALUE`: tick := 0, then set the root's value as event tick 1.
  void set_initial_root(const value& v);

  /// The greeting map (seq 0): {seq:0, version, node, tick, tock, qlen}.
  value greeting(int64_t qlen) const;

  /// Run one client request of connection `conn` (the decoded request map, `seq` included).
  /// Never throws: problems become a single reply {error: "..."}.
  action_result handle(uint64_t conn, const value& request);

  /// Cancel the watch of request `seq` on connection `conn`; false if there was none.
  bool cancel_watch(uint64_t conn, int64_t seq);
  /// Forget everything about a closed connection (its watches, its chroot).
  void drop_connection(uint64_t conn);

  void set_watch_emitter(watch_emitter emit);

  /// Apply a server-to-server `update` message (flat or with `chain`), §2.5 merge rule.
  /// Returns false if it was rejected as stale or as the losing side of a conflict.
  bool apply_update(const value& update);

  tree& data();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace moatkv
