// msgpack encoding and decoding of `value` (server-internals §1.1, §1.2).
//
// Encoding follows the original's StdMsgpack: str as str, bin as bin, floats always as float64,
// integers in their smallest form, Path as ext 3 (ext 6 when marked) whose payload is the
// concatenation of the elements' encodings, other extension values verbatim.
//
// Decoding accepts any msgpack (float32 becomes float64), keeps unknown extension types as
// opaque bytes, turns ext 3 / ext 6 into Paths, requires valid UTF-8 in str, and lets the last
// of duplicate map keys win (found through a hash index in maps of more than 16 keys, so
// decoding stays linear; a large map with many keys that are alike but never equal, such as
// NaNs, is refused). Malformed input throws `decode_error`, never crashes; sizes and nesting
// depth are bounded (`decode_limits`).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "messages/value.hpp"

namespace moatkv {

struct decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct decode_limits {
  size_t max_depth = 64;            // nesting of arrays, maps and paths
  size_t max_container = 1u << 22;  // elements of one array or map
  size_t max_bytes = 64u << 20;     // one str, bin or ext payload
};

/// Append the msgpack encoding of `v` to `out`.
void encode(std::string& out, const value& v);
std::string encode(const value& v);
/// Append a map header for `pairs` key/value pairs (the caller encodes them after it): for
/// writers that build a record from parts they do not want to copy into a `value` first.
void encode_map_header(std::string& out, size_t pairs);

/// Decode exactly one complete msgpack object. Trailing bytes are an error.
value decode(std::string_view bytes, const decode_limits& limits = {});

/// Decode one complete msgpack object starting at `offset`; on success advance `offset` past it.
/// Returns false (offset unchanged) if the bytes end before the object is complete, which is
/// how a cut tail of a file looks. Throws decode_error on bytes that can never form a valid
/// object (offset unchanged).
bool decode_prefix(std::string_view bytes, size_t& offset, value& out,
                   const decode_limits& limits = {});

/// Decode the concatenated encodings of path elements (the payload of ext 3).
array decode_path_elements(std::string_view payload, const decode_limits& limits = {});

/// Incremental decoder for a byte stream of concatenated msgpack objects (a TCP connection,
/// a save file). Feed chunks of any size; `next` yields complete objects in order.
class stream_decoder {
 public:
  explicit stream_decoder(const decode_limits& limits = {});
  ~stream_decoder();
  stream_decoder(const stream_decoder&) = delete;
  stream_decoder& operator=(const stream_decoder&) = delete;

  void feed(const char* data, size_t size);
  /// True and sets `out` when a complete object is available; false when more bytes are needed.
  /// Throws decode_error on bytes that can never form a valid object.
  bool next(value& out);
  /// Bytes fed but not yet returned as complete objects, the parsed part of an unfinished one
  /// included: what a size limit on one message must compare.
  size_t pending_bytes() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace moatkv
