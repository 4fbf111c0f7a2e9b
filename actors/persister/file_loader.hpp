// Loading save files and logs into a store, with the damage rules of `server -l` / `--state`:
//   * a cut tail (crash mid-write) loads up to the last complete record, with a warning that
//     names the file and the offset;
//   * damage in the middle is an error (load_error) unless `skip_damaged`, which warns, skips
//     to the next plausible record and goes on;
//   * a record that decodes but cannot be applied is skipped with a warning.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "actors/persister/save_format.hpp"

namespace moatkv {

struct load_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct load_progress {
  std::string file;
  size_t records = 0;       // of this file so far
  uint64_t bytes = 0;       // of this file so far
  uint64_t file_bytes = 0;  // size of this file
  double seconds = 0;       // since this file started
  bool done = false;        // the last call for this file
};

struct file_load_options {
  bool skip_damaged = false;
  /// Called about every `progress_interval` and once at the end of each file.
  std::function<void(const load_progress&)> progress;
  std::chrono::milliseconds progress_interval{500};
  /// Warnings (cut tails, skipped damage, records that could not be applied).
  std::function<void(const std::string&)> warn;
};

/// Load one file through `loader` (its records are applied in file order). Returns false if
/// not all of it could be read (a cut tail, or damage skipped with `skip_damaged`). Throws
/// record_file_error if it cannot be read, load_error on damage without `skip_damaged`.
bool load_file(record_loader& loader, const std::string& path, const file_load_options& opts);

}  // namespace moatkv
