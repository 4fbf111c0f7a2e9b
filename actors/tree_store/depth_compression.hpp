// Depth compression of streamed paths (server-internals §7.5): PathShortener / PathLongener.
//
// A shortener is created per stream (get_tree, watch, delete_tree, save) with the stream's
// prefix. For each record with a `path`, it requires the path to start with the prefix, takes
// the rest `s`, and sends `path = s[d:]`, `depth = d`, where d is the length of the common
// prefix of `s` and the previous record's `s` (element comparison is Python equality).
// The longener reverses it: full = last_full[:len(prefix) + depth] + path.
//
// Wire type (the original's Path-slicing quirk, §1.3): the emitted `path` is an ext-3 Path
// only when the record's path is itself a Path (no chroot: `paths_are_paths`), the prefix
// is empty and depth is 0; otherwise it is a plain array.
//
// Deliberate difference: with a chroot the original uses the unchopped request path as the
// prefix and then fails with "Wrong prefix"; callers here pass the chopped prefix.
//
// Ownership: a shortener belongs to one stream (the kv_store's watch record, or the stack of
// one get_tree call); it is not shared between streams.
#pragma once

#include <cstdint>
#include <string>

#include "messages/value.hpp"

namespace moatkv {

class path_shortener {
 public:
  explicit path_shortener(array prefix = {}, bool paths_are_paths = true)
      : prefix_(std::move(prefix)), paths_are_paths_(paths_are_paths) {}

  /// Shorten a full path (relative to the connection's root). False if it lacks the prefix.
  bool shorten(const array& full, value& path_out, int64_t& depth_out);

  /// Rewrite `record["path"]` in place and append `depth`. Records without `path` pass
  /// unchanged. False (and `error` set) if the path is not a sequence or lacks the prefix.
  bool apply(value& record, std::string& error);

  const array& prefix() const { return prefix_; }

 private:
  array prefix_;
  array last_;  // previous record's path without the prefix
  bool paths_are_paths_;
};

class path_longener {
 public:
  explicit path_longener(array prefix = {}) : prefix_(std::move(prefix)), last_(prefix_) {}

  /// Expand a (path, depth) pair into the full path. False if depth is out of range.
  bool expand(const array& path, int64_t depth, array& full_out);

  /// Rewrite `record["path"]` to the full path (as an ext-3 Path) and remove `depth`.
  /// Records without `path` pass unchanged.
  bool apply(value& record, std::string& error);

 private:
  array prefix_;
  array last_;
};

}  // namespace moatkv
