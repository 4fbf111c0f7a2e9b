// The records of save files and change logs (server-internals §6), built from and applied to a
// kv_store. Plain C++: the tree_store actor calls these as the single writer; tests call them
// directly.
//
// Written (all through one path_shortener with an empty prefix per file, §7.5):
//   1. state record: the `get_state(nodes, known, deleted)` reply {nodes, known, deleted, node,
//      tock}, empty maps included;
//   2. entry record (a save): `Entry.serialize(nchain=-1)` {value, chain, tock, path, depth},
//      only entries that hold a value, in tree order;
//   3. update record (a log): the flat `update` {node, tick, prev…, path, depth, value?, tock},
//      full chain; a deletion has no `value`.
// Loading (`load(path, local, authoritative)`): a record with `path` (or `node` and `tick`) is
// an update (entry or flat, deletions included); one with `info` is processed as an info; one
// with `nodes`, `known`, `deleted` or `tock` is a state record. Deliberate fix of the original:
// it took incremental deletion records for state records, losing the deletion and leaving its
// path longener behind, so the paths of later records were expanded wrongly.
//
// State-directory snapshots add tombstones (entries with a chain but no value) after the
// entries, as flat update records with depth 0, so that a restarted node still knows what it
// deleted. The original's loader takes them for state records (tock only) and, since they
// come last with full paths, loads everything else correctly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "actors/tree_store/depth_compression.hpp"
#include "messages/value.hpp"

namespace moatkv {

class kv_store;
class entry;

/// The state record (kind 1).
value state_record(kv_store& store);

struct save_options {
  bool full = false;        // also the meta tree (`save {full: true}`, logs with `fetch`)
  bool tombstones = false;  // state-directory snapshots only, see above
};

/// A save built in steps, so that the single writer can interleave it with other work (a
/// snapshot of a million entries would otherwise stall every client for a second). Between
/// steps the tree may change, but no entry may be removed (the caller finishes the save before
/// anything that purges tombstones): the result is then a fuzzy snapshot, each entry as it was
/// when visited, which together with the log begun before the first step loads to the right
/// tree (applying an update is idempotent, and older states lose against newer ones).
class save_writer {
 public:
  /// Writes the state record at once.
  save_writer(kv_store& store, const save_options& opts);
  /// Visits up to `max_entries` more entries, appending their records to buffer(). True when
  /// the save is complete.
  bool step(size_t max_entries);
  /// The encoded records so far (the caller may take or clear them between steps).
  std::string& buffer() { return out_; }
  size_t entries() const { return entries_; }
  size_t records() const { return records_; }

 private:
  kv_store& store_;
  save_options opts_;
  std::string out_;
  std::vector<std::pair<const entry*, size_t>> stack_;  // (entry, depth) still to visit
  array path_;                                          // the path of the entry last visited
  path_shortener shortener_;
  bool tombstone_pass_ = false;
  size_t entries_ = 0;
  size_t records_ = 0;
};

/// A whole save: state record, then the records described above. Each record is handed to
/// `sink` as msgpack bytes. Returns the number of entry records.
size_t write_save(kv_store& store, const save_options& opts,
                  const std::function<void(std::string_view record)>& sink);
/// The same into one buffer.
std::string encode_save(kv_store& store, const save_options& opts, size_t* entries = nullptr);

/// The update record (kind 3) for entry `e` after a change, depth-compressed by `shortener`
/// (the file's). Precondition: e has a chain.
value update_record(const entry& e, path_shortener& shortener);

/// What loading did, summed over the files given to one loader.
struct load_stats {
  size_t records = 0;
  size_t updates = 0;        // entry and update records applied (accepted or not)
  size_t accepted = 0;       // ... of which changed the tree
  size_t state_records = 0;  // state and info records
  size_t skipped = 0;        // records that were no record or failed to apply (see warning)
};

/// Applies the records of one or more files, in order, to a store (§6 `load`).
class record_loader {
 public:
  explicit record_loader(kv_store& store) : store_(store) {}

  /// A new file starts: its depth compression starts afresh.
  void start_file();
  /// Apply one record. False if it was skipped; `error` says why (for a warning).
  bool apply(value record, std::string& error);
  const load_stats& stats() const { return stats_; }

 private:
  kv_store& store_;
  path_longener longener_;
  load_stats stats_;
};

}  // namespace moatkv
