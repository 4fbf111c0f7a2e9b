// Multipart framing of server-to-server `update` / `info` messages (server-internals §3.2).
//
// Format (the original's `_pack_multiple`): a packed message longer than 450 bytes is cut into
// chunks of `450 - 15 - len(node name)` bytes, each sent as the map
//     {"_p0": [node name, part seq, index, chunk (bin)]}
// with index 1, 2, …, and the LAST chunk's index negated. `part seq` counts per sender from 1.
// A message that itself has top-level keys _p0 … _p(j-1) is escaped first: they move to
// _p1 … _pj and _p0 becomes "". The receiver reassembles, then un-escapes any map with _p0.
//
// Deliberate differences: incomplete sets expire (the original keeps them forever), the number
// of pending sets, of parts per set and the bytes held are bounded, and malformed parts throw
// `multipart_error` (the caller logs and drops them). Parts are kept sparsely: memory follows
// the bytes received, not the indices claimed (a 20-byte part with index 20000 costs 20 bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "messages/value.hpp"

namespace moatkv {

struct multipart_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr size_t multipart_max_len = 450;  // the original's SERF_MAXLEN

/// Encode `msg` for sending: one payload if it fits in `max_len` bytes, else the parts.
/// `part_seq` is the sender's counter (incremented when a message is split).
std::vector<std::string> pack_multipart(const value& msg, const std::string& node,
                                        uint64_t& part_seq, size_t max_len = multipart_max_len);

/// Reassembles parts from all senders.
class multipart_assembler {
 public:
  struct limits {
    double expiry_seconds = 60;    // an incomplete set older than this is dropped
    size_t max_pending = 1000;     // incomplete sets kept at most (oldest dropped first)
    int64_t max_parts = 20000;     // parts of one message (≈ 8.7 MB)
    size_t max_bytes = 64u << 20;  // held over all incomplete sets, 64 per part (oldest dropped)
  };
  multipart_assembler() = default;
  explicit multipart_assembler(limits l) : limits_(l) {}

  /// Feed one decoded payload received at time `now` (seconds, any monotonic origin).
  /// Returns the complete, un-escaped message, or nullopt while parts are missing.
  /// Throws multipart_error for malformed parts (wrong types, absurd indices, undecodable).
  std::optional<value> feed(value msg, double now);

  size_t pending() const { return sets_.size(); }
  /// What the incomplete sets hold: part data plus a fixed cost per part.
  size_t pending_bytes() const { return bytes_; }

 private:
  struct part_set {
    std::map<int64_t, std::string> parts;  // index (1-based) -> data
    int64_t last = 0;                      // the negated index, once seen
    double first_seen = 0;
    size_t bytes = 0;  // the parts' sizes plus their bookkeeping
  };
  using set_map = std::map<std::pair<std::string, int64_t>, part_set>;
  void expire(double now);
  set_map::iterator erase(set_map::iterator it);
  void drop_oldest(const set_map::iterator& keep);

  limits limits_;
  set_map sets_;
  size_t bytes_ = 0;
};

}  // namespace moatkv
