// What both replays of the captured client traffic of the original MoaT-KV server
// (tests/conformance/data/client-wire-messages.tsv, decoded in
// ../reference/client-wire-transcript.txt) use: replay_test.cpp plays its client side against
// our node, client_replay_test.cpp its server side against our client library.
//   * the rows of the TSV (load_transcript);
//   * the comparison of a message with the transcript's: the same set of keys, every value equal
//     with Python equality (messages/value.hpp) and of the same msgpack kinds (differences);
//   * a TCP connection that carries msgpack messages (message_socket).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

namespace moatkv::test {

using clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// The transcript

// One row of the TSV: scenario, conn, direction, time, hex of one msgpack message (empty: <EOF>).
struct transcript_row {
  int line = 0;  // in the TSV, for messages
  std::string scenario, conn, direction;
  bool eof = false;
  std::string bytes;  // exact wire bytes (empty for <EOF>)
  value msg;          // decoded (nil for <EOF>)
};

/// Every row of the TSV, in order. Throws std::runtime_error on a short row, a direction other
/// than C->S / S->C, or a message that is not a map.
std::vector<transcript_row> load_transcript();

/// "TSV line N, scenario "...", connN", for messages.
std::string where(const transcript_row& r);

// ---------------------------------------------------------------------------------------------
// Fields of a message

const value* field(const value& m, const char* key);
bool str_field_is(const value& m, const char* key, std::string_view want);
std::optional<int64_t> int_of(const value* v);
/// A map key as text: a string as it is, anything else as debug_string.
std::string key_text(const value& k);

// ---------------------------------------------------------------------------------------------
// Comparison

/// Where two equal values first differ in msgpack kind (int64 and uint64 are one kind: the
/// encoder picks the smaller form), e.g. "[1]: int vs bool"; empty if the kinds agree throughout.
std::string kind_difference(const value& a, const value& b, const std::string& at = "");

/// A rule for one key present in both messages: returns true if it judged the key (adding any
/// problem to `problems`), false to leave it to the default (equality and msgpack kinds).
using key_rule = std::function<bool(const std::string& key, const value& expected,
                                    const value& actual, std::vector<std::string>& problems)>;

/// The differences of two messages: key sets, Python equality and msgpack kinds of every value
/// (except the keys `rule` judges); empty if they are the same.
std::vector<std::string> differences(const value& expected, const value& actual,
                                     const key_rule& rule = {});

/// "\n  expected: ...\n  actual:   ..." and one "\n  - ..." line per difference.
std::string difference_text(const value& expected, const value& actual,
                            const std::vector<std::string>& diffs);

// ---------------------------------------------------------------------------------------------
// A TCP connection that carries msgpack messages: bytes out, decoded messages in.

class message_socket {
 public:
  enum class got { message, timeout, closed };

  /// Owns `fd`, a connected TCP socket, and sets TCP_NODELAY on it.
  explicit message_socket(int fd);
  /// Connects to an IPv4 address; throws std::runtime_error if that fails.
  static std::unique_ptr<message_socket> connect_to(const std::string& host, uint16_t port);
  ~message_socket();
  message_socket(const message_socket&) = delete;
  message_socket& operator=(const message_socket&) = delete;

  /// Sends every byte; throws std::runtime_error("send: ...") if that fails.
  void send_bytes(std::string_view bytes);
  void shutdown_write();
  void shutdown_both();

  /// The next decoded message into `out`; timeout at `deadline`; closed when the peer closed
  /// (then `eof()`) or `*abort` is set (looked at at least every 100 ms).
  /// Throws decode_error on bytes that are not msgpack.
  got read_message(value& out, clock::time_point deadline,
                   const std::atomic<bool>* abort = nullptr);
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool eof_ = false;
  stream_decoder decoder_;
};

}  // namespace moatkv::test
