// The client actions of the MoaT-KV protocol, executed against the tree (server-internals §7.8).
//
// Ownership: one `kv_store` per node, owned by the tree_store actor, which is its single writer.
// The class is plain C++ (no CAF) so the protocol semantics test without actors.
//
// The session (transport/session.cpp) does the framing: it assigns `seq`, adds `wseq` and the
// `tock` of messages that have none, runs flow control and `stop`. Everything else — what a
// request means and what its replies contain, including depth compression of streamed paths —
// happens here.
//
// Server-to-server side (server-internals §2.6, §3.4, §4.6, §5.3, §5.7): the gossip actor feeds
// every decoded (multipart-reassembled) `update` and `info` payload to `apply_update` /
// `process_info`, the ping actor's raw messages to `note_node`, and sends what the builders
// (`info_ticks`, `info_missing`, `missing_data`) and the update emitter produce. kv_store
// owns all protocol state these need (node table, `seen_missing`); the actor owns only timing
// (when to send, recovery steps, delays). Contracts:
//   * Nothing here throws on peer input and no peer message can crash the node: malformed
//     input gives a status (update_result / info_result.errors) for the caller to log.
//   * Every message a builder returns is complete: like the original's `_send_event`, `tock`
//     (fresh), `node` (own name) and `tick` (own tick, nil while not ready) are appended when
//     absent, in that order.
//   * Emitters are called synchronously from inside a kv_store call; they must not call back
//     into the kv_store (queue the message and send it afterwards).
//   * Readiness: the own tick stays nil until `init_own_tick`, `set_initial_root` or
//     `mark_ready` (successful sync). Peers may report a tick for this node before that (a
//     node restarting with a name the cluster knows): it is remembered and becomes the own
//     tick on readiness, so tick numbers are never reused.
// Deliberate differences from the original (besides those of tree.hpp):
//   * `missing_data` re-sends entries with the FULL chain (the original cuts it to 2 links, so
//     ticks deeper in a chain can stay missing forever); it sends `node_drop` in the
//     `known/deleted` info (the original computes and drops it); ticks answered as known or
//     deleted leave `remote_missing` (the original re-announces them in every later round).
//   * `deleted` reports never touch an entry that holds a value (tree::report_deleted).
//   * Limits on peer input: ticks and tocks above `max_wire_counter`, chains longer than
//     `max_chain_links`, paths with None after the first element or with map/NaN elements are
//     refused.
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

class tree;      // actors/tree_store/tree.hpp
class node_set;  // actors/tree_store/range_set.hpp

/// Ticks and tocks on the wire above this are refused (2^53: unreachable by counting, and
/// safe for peers that hold them in doubles).
inline constexpr int64_t max_wire_counter = int64_t{1} << 53;
/// Chains from peers with more links than this are refused.
inline constexpr size_t max_chain_links = 4096;
/// Paths (client requests and peer updates) with more elements are refused unless configured
/// otherwise (kv.server.limits.path_depth).
inline constexpr size_t default_max_path_depth = 256;

/// What `apply_update` did with a server-to-server `update`.
enum class update_status {
  accepted,       // applied (the entry changed)
  duplicate,      // the entry already holds exactly this event
  stale,          // the entry already holds a later state
  conflict_lost,  // a concurrent update; the entry's state won
  malformed,      // dropped without any effect; `error` says why
};

struct update_result {
  update_status status = update_status::malformed;
  std::string error;
  bool accepted() const { return status == update_status::accepted; }
};

/// What `process_info` / `process_state` did.
struct info_result {
  /// The message was our own (`node` == own name): nothing was done (tock_seen aside).
  bool own = false;
  /// `node` of the message ("" if absent or not a string).
  std::string sender;
  /// The message had `ticks` (recovery signal 1) / `missing` (recovery signal 2).
  bool had_ticks = false;
  bool had_missing = false;
  /// `ticks` as received and accepted: name -> tick (nullopt = nil).
  std::vector<std::pair<std::string, std::optional<int64_t>>> ticks;
  /// Some tick was reported missing: run `missing_data()` after the resend delay (§5.7).
  bool resend_needed = false;
  /// Tombstones purged by `deleted`.
  size_t purged = 0;
  /// Nodes forgotten by `node_drop`.
  std::vector<std::string> dropped;
  /// Parts of the message that were malformed and skipped (the rest was processed).
  std::vector<std::string> errors;

  /// For passing through an actor as a `value`: {from, own, ticks, missing, resend (bools),
  /// purged, dropped: [names], errors: [texts]}.
  value to_value() const;
};

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

  /// Work too slow for the single writer (Diffie-Hellman, Argon2id): when set, `messages` is
  /// empty and the caller runs `deferred->work()` on another thread, then
  /// `deferred->resume(result)` back in the store's thread, which gives the real result (and
  /// may defer again). `resume` checks that the connection still exists.
  struct deferred_step {
    std::function<value()> work;
    std::function<action_result(value)> resume;
  };
  std::shared_ptr<deferred_step> deferred;

  /// Set by `auth` (batteries §1.3): the outcome of a login attempt, for the failed-login
  /// slowdown and the log, and the connection's access afterwards (the session gates the
  /// backend actions msg_send / msg_monitor on it).
  enum class login_outcome { none, succeeded, failed };
  login_outcome login = login_outcome::none;
  std::string login_user;    // "METHOD user IDENT"
  std::string login_detail;  // why it failed
  bool login_restricted = false;
};

/// Options of the auth battery (config `kv.auth.*`).
struct auth_options {
  /// `kv.auth.password.legacy_hash`: store new password records as the original's raw
  /// SHA-256 digest (for clusters that still run Python nodes) instead of Argon2id.
  bool legacy_hash = false;
};

class kv_store {
 public:
  /// Called for every message of an open watch stream after the request returned:
  /// (connection id, request seq, message map).
  using watch_emitter = std::function<void(uint64_t conn, int64_t seq, value message)>;
  /// Called with the `update` message (shape A) of every change made on this node.
  using update_emitter = std::function<void(value update)>;

  kv_store(std::string node_name, std::shared_ptr<tock_clock> clock);
  ~kv_store();
  kv_store(const kv_store&) = delete;
  kv_store& operator=(const kv_store&) = delete;

  const std::string& node_name() const;
  tock_clock& clock();

  /// Own tick; nullopt while the node is not ready (no data yet).
  std::optional<uint64_t> own_tick() const;
  /// Make the node ready on its own (standalone, or `-I` without peers): if unset, tick := the
  /// highest tick peers reported for this node, else 0.
  void init_own_tick();
  /// `server -I VALUE`: init_own_tick, then set the root's value as the next event (tick 1).
  void set_initial_root(const value& v);

  /// The greeting map (seq 0): {seq:0, version, node, tick, tock, qlen, auth?}.
  value greeting(int64_t qlen) const;
  /// Register a new client connection and return its greeting. If the greeting names a
  /// current auth method, the connection must log in (`auth`) before anything else
  /// (batteries §1.1); otherwise it is the super-user at once.
  value open_connection(uint64_t conn, int64_t qlen);
  /// True if the connection is logged in (or needs no login) and not bound to an ACL: the
  /// meta tree, user management, save/log and the backend actions are for such users only.
  bool is_admin(uint64_t conn) const;
  void set_auth_options(auth_options opts);
  /// kv.server.limits.path_depth: requests and peer updates with longer paths are refused.
  void set_max_path_depth(size_t n);

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

  // --- server-to-server ---------------------------------------------------------------------

  /// The receiver side of an `update` (§3.4 `user_update`): shape A (flat chain at the top
  /// level) or shape B (an entry record with `chain`; resends, and `get_tree` sync records
  /// whose path the caller has expanded with a path_longener). Feeds `tock` to the clock,
  /// notes every chain link in the node table (nodes created, ticks raised, remote_missing
  /// cleared), creates the path (None allowed as the first element only) and applies the merge
  /// rule. Malformed input changes nothing. Does not call the update emitter.
  update_result receive_update(const value& msg);
  /// The same, taking the message's value instead of copying it (file loads).
  update_result receive_update(value&& msg);

  /// Called for every change applied whose chain head is this node — the local changes
  /// (set/delete/delete_tree, the *_internal variants, the init event), never changes from
  /// peers — with the §3.4 shape A message, the chain cut to `change_length` links.
  void set_update_emitter(update_emitter emit);
  void set_update_emitter(update_emitter emit, int64_t change_length);
  /// `server.change.length` (default 5); negative = whole chains. 0 is taken as 1.
  void set_change_length(int64_t n);

  /// The receiver side of an `info` (§3.4), in the order ticks, missing, superseded/known,
  /// deleted, node_drop. Our own info (`node` == own name) is ignored. Received `missing`
  /// ranges also go into `seen_missing` (we need not ask for them again).
  info_result process_info(const value& info);
  /// `_process_info` (§5.3, local semantics): a `get_state` reply from a sync or a loaded
  /// state record: nodes -> ticks, known -> superseded (local: remote_missing untouched),
  /// deleted, remote_missing -> reported, node_drop. Not ignored when `node` is ours.
  info_result process_state(const value& state);

  /// Recovery step 1: `info {ticks: {name: tick|nil, every known node}, node_drop?}`.
  value info_ticks();
  /// Ticks we lack, for every node with tick >= 1: `[1, tick] − present − superseded`.
  node_set local_missing() const;
  bool has_local_missing() const;
  /// `_send_missing`: `info {missing: local_missing − seen_missing, node_drop?}`; the sent
  /// ranges join seen_missing. nil when nothing is missing, unless `force` (step 2 sends
  /// `missing: {}`).
  value info_missing(bool force = false);
  /// Forget seen_missing (end of a recovery, each round of do_send_missing).
  void clear_seen_missing();
  /// The resend round `_send_missing_data` (§5.7), in send order: for every tick others
  /// reported missing that we hold, the entry as an `update` shape B with the FULL chain (each
  /// entry once; its links leave remote_missing); then `info {known, deleted, node_drop?}`
  /// (both keys always present) for the reported ticks we know as superseded / deleted, if
  /// any. Everything answered leaves remote_missing. Empty if nothing was reported.
  std::vector<value> missing_data();

  /// The ping actor's value: `[tock, tick]`, nil while not ready.
  value ping_value() const;
  /// A raw ping-actor message (§4.6 RawMsgEvent): create node `name`, raise its tick, feed
  /// the tock to the clock and remember it as the node's tock.
  void note_node(std::string_view name, std::optional<int64_t> tick,
                 std::optional<int64_t> tock = std::nullopt);
  /// `_discard_all_missing` (authoritative sync/load): every locally missing tick becomes
  /// superseded.
  void discard_all_missing();
  /// A successful sync (§5.3 step 6): the own tick becomes the highest tick peers reported
  /// for us, or 0; same as init_own_tick.
  void mark_ready();
  bool ready() const;
  /// True if the node is ready or some input (a peer, a loaded file) named a tick of this
  /// node: then the data describes this node's own past and it may become ready on it.
  bool knows_own_tick() const;

  /// The DeleteActor's purge (§2.6 step 3); returns the number of entries purged.
  size_t purge_deleted(const node_set& ticks);

  /// Append `tock` (fresh), `node` and `tick` where absent, as `_send_event` does.
  value finish_message(value msg);

  tree& data();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace moatkv
