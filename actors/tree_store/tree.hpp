// The entry tree and the merge rule (server-internals §2.3–§2.7).
//
// Ownership: one `tree` per node, owned by the tree_store actor (through `kv_store`), which is
// its single writer. The tree also owns the node table, the node's own tick and the set of
// ticks deleted since the deleter last collected them.
//
// Structure: the root entry (path ()) always has the child `None`, the meta root, under which
// the internal data lives (auth, acl, type, ...). Children keep insertion order and are found
// by Python equality of their names (1 == 1.0 == True, "" != b"", NaN never matches): a short
// linear scan, plus a hash index (value_hash) once an entry has many children. The stored
// name is the first one inserted.
//
// Entry lifetime: entries are removed only by the tombstone purge (`purge_entry`, called by
// `purge_deleted` and `report_deleted`, server-internals §2.6). A purge removes only leaves
// without data, chain or children that the pin check (set by kv_store: watch tops, chroot
// roots) does not hold, and before that clears every node-table reference to them (the
// invariant `entries[t] == e` ⇒ (node, t) is on e's chain). So an `entry*` held by a watch,
// a chroot or the node table stays valid; any other holder must not keep one across a call
// that processes peer input (`kv_store::process_info`, `purge_deleted`).
//
// An entry holds: data (absent = NotGiven = no value / deleted; nil is a value), tock (of the
// update that last set it; new intermediate entries inherit the parent's tock) and chain.
//
// The merge rule (`apply`) is the original's `Entry.apply` with three deliberate fixes, all
// explained next to the code in tree.cpp:
//   (a) equal tocks are broken by (tock, head node name, head tick), the same on every node;
//   (b) a tombstone takes part in conflict resolution like a value;
//   (c) re-setting a deleted entry drops the deleted links from the new chain.
//
// tick/tock (§2.7): a local change bumps the own tick and reads the clock three times
// (`next_event` entry, the event's tock, `next_event` exit), as the original does.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/tree_store/chain.hpp"
#include "actors/tree_store/node_table.hpp"
#include "actors/tree_store/range_set.hpp"
#include "actors/tree_store/tock_clock.hpp"
#include "messages/value.hpp"

namespace moatkv {

class entry {
 public:
  entry(value name, entry* parent, uint64_t tock)
      : name_(std::move(name)), parent_(parent), tock_(tock) {}
  ~entry();  // iterative: a very deep tree must not overflow the stack
  entry(const entry&) = delete;
  entry& operator=(const entry&) = delete;

  const value& name() const { return name_; }
  entry* parent() const { return parent_; }
  bool has_data() const { return data_.has_value(); }
  /// Precondition: has_data().
  const value& data() const { return *data_; }
  const std::optional<value>& maybe_data() const { return data_; }
  uint64_t tock() const { return tock_; }
  const class chain& event_chain() const { return chain_; }

  /// Number of path elements from the root.
  size_t depth() const;
  /// The path from the root.
  array path() const;
  /// The path relative to the ancestor `top` (precondition: top is an ancestor or self).
  array path_from(const entry* top) const;
  /// True if `ancestor` is this entry or one of its ancestors.
  bool is_below(const entry* ancestor) const;
  /// True for the meta root and everything below it (paths starting with None).
  bool is_meta() const;

  /// The child named `name` (Python equality), or nullptr.
  entry* child(const value& name) const;
  const std::vector<std::unique_ptr<entry>>& children() const { return children_; }

 private:
  friend class tree;
  entry& add_child(value name, uint64_t tock);
  /// Detach and return the child `c` (precondition: c is a child of this entry).
  std::unique_ptr<entry> remove_child(entry* c);

  value name_;
  entry* parent_;
  std::optional<value> data_;
  uint64_t tock_;
  class chain chain_;
  std::vector<std::unique_ptr<entry>> children_;
  // Built once there are more than a handful of children: name hash -> children with it.
  std::unique_ptr<std::unordered_multimap<size_t, entry*>> index_;
};

/// What `apply` did with an update.
enum class apply_outcome {
  accepted,
  duplicate,      // same chain head as the entry: nothing to do
  stale,          // the entry's chain already descends from the update
  conflict_lost,  // concurrent update, the entry's current state wins
};

/// Passed to change listeners after an accepted update, once the entry is fully updated.
struct change_event {
  entry& e;
  /// The data before the change (nullopt: there was none).
  const std::optional<value>& old_data;
  /// True for a change made on this node (set_data), false for an applied remote update.
  bool local;
};

/// Why `follow` failed.
enum class follow_error { none, missing, null_element, not_a_path };

class tree {
 public:
  using change_listener = std::function<void(const change_event&)>;

  tree(node_name own, std::shared_ptr<tock_clock> clock);
  ~tree();
  tree(const tree&) = delete;
  tree& operator=(const tree&) = delete;

  entry& root() { return *root_; }
  entry& meta_root() { return *meta_; }
  node_table& nodes() { return nodes_; }
  node_info& own_node() { return nodes_.get(own_); }
  node_name own_name() const { return own_; }
  tock_clock& clock() { return *clock_; }

  /// Walk `path` from `start`. `create`: make missing entries (tock = parent's tock), else
  /// fail with `missing`. `nulls_ok`: 0 = no None element, 1 = None only as the first
  /// element, 2 = None anywhere (the original's False / True / 2).
  entry* follow(entry& start, const array& path, bool create, int nulls_ok,
                follow_error* error = nullptr);

  /// A local change (`next_event` + `Entry.set_data`): new own tick, the entry's chain with
  /// the new head attached, a fresh tock, then `apply`. nullopt deletes. Returns false if
  /// the node has no tick yet (not ready).
  bool set_data(entry& e, std::optional<value> v);

  /// The merge rule: apply an update with chain `incoming` (non-empty), data `v` (nullopt =
  /// deletion) and tock `tock` to `e`. See tree.cpp.
  apply_outcome apply(entry& e, class chain incoming, std::optional<value> v, uint64_t tock,
                      bool local = false);

  /// Register a listener for accepted changes; returns an id for `remove_change_listener`.
  size_t add_change_listener(change_listener fn);
  void remove_change_listener(size_t id);

  /// Ticks of deletions since the last `take_deleted` (the original's `_delete_also_nodes`).
  node_set take_deleted();

  /// Entries the purge must never remove (watch tops, chroot roots); see the file comment.
  void set_pin_check(std::function<bool(const entry*)> pinned);

  /// `Entry.purge_deleted` for a tombstone: chain := none, `clear_deleted` for every link,
  /// then `chop`. Refuses (returns false) for an entry that holds a value: a deleted tick can
  /// be on a live entry's chain (a concurrent modify that won against the delete), and the
  /// original's purge would then destroy that value.
  bool purge_entry(entry& e);
  /// Remove `e` and then its ancestors while they have no data, no chain, no children and are
  /// not pinned; never the root or the meta root. Our fix of the original's `_chop`, which also
  /// removes ancestors that hold a value.
  void chop(entry& e);
  /// The DeleteActor's `purge_deleted(nodeset)`: for every (node, tick) in `ticks`, clear it
  /// (present/deleted/reported -> superseded) and purge the tombstone holding it. A tick held
  /// by a live entry only leaves `deleted` (see purge_entry). Returns the entries purged.
  size_t purge_deleted(const node_set& ticks);
  /// `Node.report_deleted` (an `info` with `deleted`, or `_process_info`): the ticks are marked
  /// deleted, tombstones holding them are purged immediately. Deliberate difference: an entry
  /// that holds a value is not touched (the original silently deletes it without telling
  /// watchers or peers); its ticks stay present and are not marked superseded. Returns the
  /// entries purged.
  size_t report_deleted(node_name node, const range_set& r);
  /// `_dropped_node`: forget `node` if it heads no entry: its links are removed from every
  /// chain and the node leaves the table (recorded in `node_drop`). False if it is unknown
  /// or still heads an entry.
  bool drop_node(node_name node);

  /// An entry record (`Entry.serialize`): {value?, chain? (nchain != 0 and a chain), tock,
  /// path?}. With `with_path`, `path` is the entry's path without its first `chop` elements:
  /// a Path when chop == 0, else an array (the original's slicing quirk).
  static value entry_record(const entry& e, int64_t nchain, bool with_path, size_t chop = 0);
  /// A server-to-server `update` message, shape A (§3.4): {node, tick, prev?, path (Path),
  /// value?, tock}, the chain truncated to `nchain` links. Precondition: e has a chain.
  static value update_message(const entry& e, int64_t nchain = 5);

  /// The path in the original's `str(Path)` syntax (e.g. `wire.a`, `wire:1:t`, `:` for ());
  /// messages/path_syntax.hpp's format_path.
  static std::string format_path(const array& path);

 private:
  void drop_old_event(const class chain& keep, const class chain& old);
  void notify(entry& e, const std::optional<value>& old_data, bool local);

  node_name own_;
  std::shared_ptr<tock_clock> clock_;
  node_table nodes_;
  std::unique_ptr<entry> root_;
  entry* meta_ = nullptr;
  node_set delete_also_;
  std::vector<std::pair<size_t, change_listener>> listeners_;
  std::function<bool(const entry*)> pinned_;
  size_t next_listener_id_ = 1;
};

}  // namespace moatkv
