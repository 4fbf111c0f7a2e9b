// Files of concatenated msgpack records: save files, change logs and state-directory files
// (server-internals §6: no header, no framing, one StdMsgpack object after the other).
//
// The reader maps the file and decodes one record at a time, so a 100 MB snapshot costs no
// heap beyond the record being decoded. It tells the two kinds of damage apart:
//   * a cut tail (a crash in the middle of a write): the last record is incomplete at the end
//     of the file -> `truncated`, with the offset where the incomplete record starts;
//   * damage in the middle: bytes that are no msgpack object, or an object that is not a map
//     -> `damaged` at the record's offset. `resync` then looks for the next offset where a
//     plausible record (a map with `path`, `tock`, `nodes` or `info`) decodes, so a caller that
//     was asked to skip damage can go on.
//
// The writer appends whole records with write(2) and makes them durable with fdatasync(2);
// it never leaves a partial record behind except when the process dies mid-write, which the
// reader reports as a cut tail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "messages/value.hpp"

namespace moatkv {

/// A file that cannot be opened, read or written; the message names the file and the cause.
struct record_file_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class record_file_reader {
 public:
  enum class status { record, end, truncated, damaged };

  /// Maps `path` read-only. Throws record_file_error (with strerror) if it cannot.
  explicit record_file_reader(const std::string& path);
  ~record_file_reader();
  record_file_reader(const record_file_reader&) = delete;
  record_file_reader& operator=(const record_file_reader&) = delete;

  /// The next record. `record`: `out` is set and offset() is where it started. `end`: no more
  /// bytes. `truncated` / `damaged`: offset() is where the bad record starts, error() says
  /// what was wrong; calling next() again returns `end` unless resync() was called.
  status next(value& out);
  /// After `damaged`: move to the next offset after the damage where a plausible record
  /// decodes. False (and the reader is at its end) if there is none. Also allowed after
  /// `truncated`, because damage that inflates a length looks like a cut tail; after a real
  /// cut tail it normally finds nothing. Without preceding damage it searches from the
  /// current position.
  bool resync();

  size_t offset() const { return record_start_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;           // next byte to decode
  size_t record_start_ = 0;  // start of the record last returned (or of the damage)
  bool stopped_ = false;     // after truncated / damaged
  std::string error_;
};

class record_file_writer {
 public:
  /// Opens `path` for appending (created with mode 0644 if missing; `truncate` empties it).
  /// Throws record_file_error.
  record_file_writer(const std::string& path, bool truncate);
  ~record_file_writer();
  record_file_writer(const record_file_writer&) = delete;
  record_file_writer& operator=(const record_file_writer&) = delete;

  /// Append encoded records (whole records only). Throws record_file_error on a write error.
  void append(std::string_view bytes);
  /// fdatasync: everything appended so far is on disk when this returns.
  void sync();
  /// Bytes in the file (what was there when opened plus what was appended).
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// Write `bytes` to `path` atomically: a temporary file beside it, fdatasync, rename over
/// `path`, fsync of the directory. A crash leaves either the old file or the new one.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// Rename `from` (complete and synced) over `to`, then fsync the directory. On failure `from`
/// is removed and record_file_error thrown.
void rename_durably(const std::string& from, const std::string& to);
/// fsync the directory that holds `path`.
void sync_directory_of(const std::string& path);

}  // namespace moatkv
