// The layout of a node's state directory (`moatkv server --state DIR`).
//
//   DIR/snapshot.<G>.mpk   a complete save (full, with tombstones) of generation G, written
//                          atomically (temporary file + rename), so it is whole or absent;
//   DIR/log.<G>.mpk        every change applied after snapshot G, as update records, with a
//                          state record now and then (the original's log format).
//
// Both are files in the original's format (server-internals §6): `moat kv server -l` loads
// them. A node starts from the newest snapshot plus the logs of its generation and later,
// then writes snapshot G+1 (a compaction on every start) and logs into log.<G+1>. Once a
// snapshot is on disk, the files of older generations are deleted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moatkv {

struct state_dir_plan {
  /// The newest snapshot, if any.
  std::optional<std::string> snapshot;
  /// Logs to replay after it, oldest first.
  std::vector<std::string> logs;
  /// Highest generation seen (0 in an empty directory): the next one is this + 1.
  uint64_t generation = 0;
};

/// Creates `dir` if missing; throws std::runtime_error if it is unusable.
state_dir_plan plan_state_dir(const std::string& dir);

std::string snapshot_file(const std::string& dir, uint64_t generation);
std::string log_file(const std::string& dir, uint64_t generation);

/// Delete the snapshots and logs of generations below `keep` (and stale temporary files).
/// Returns the number of files removed.
size_t remove_old_generations(const std::string& dir, uint64_t keep);

}  // namespace moatkv
