// A blocking client of the MoaT-KV client protocol (server-internals §7), used by the command
// line, `moatkv bench` and the tests. Works against any MoaT-KV server, the original included.
//
// Connection sequence as the original client: read the greeting (seq 0), send the hello
// {seq: 0, qlen: min(greeting qlen, 99)}; then requests carry increasing `seq`. Streamed
// replies ({state: start} … {state: end}) are acknowledged with {seq, state: ack, ack: wseq}
// once more than qlen/3 messages were read since the last ack, so the server's window moves.
//
// With client_options::tls the connection speaks TLS (tls_channel over the socket): the
// handshake runs while the greeting is awaited, and every later byte is encrypted.
//
// Not thread-safe: one connection per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"
#include "transport/tls_channel.hpp"

namespace moatkv {

/// Transport problems (connect, timeout, closed, undecodable bytes).
struct client_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A reply with an `error` key.
struct server_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct client_options {
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  std::optional<tls_client_config> tls;  // kv.conn.ssl (none: clear text)
};

class client_connection {
 public:
  using clock = std::chrono::steady_clock;

  /// Connect and complete the greeting/hello exchange (after the TLS handshake, if configured).
  /// Throws client_error; tls_error when the TLS files cannot be used.
  client_connection(const std::string& host, uint16_t port, const client_options& opts);
  client_connection(const std::string& host, uint16_t port,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : client_connection(host, port, client_options{timeout, std::nullopt}) {}
  ~client_connection();
  client_connection(const client_connection&) = delete;
  client_connection& operator=(const client_connection&) = delete;

  const value& greeting() const { return greeting_; }
  int64_t qlen() const { return qlen_; }

  /// Send a request map (`seq` is assigned and returned) without waiting.
  int64_t send_request(const std::string& action, map params);
  /// Send any map as is (no seq added).
  void send_raw(const value& msg);
  /// Wait for the next message from the server. Acks streamed messages as needed.
  value read_message();
  /// The next message if it is already complete in the receive buffer (no I/O), else nullopt.
  /// A pipelining client drains these before it blocks again.
  std::optional<value> poll_message();
  /// Reads what the socket holds now, without waiting; false when it held nothing. Throws
  /// client_error when the server closed the connection. For callers that wait on fd()
  /// themselves (the client library's I/O thread).
  bool receive_available();

  /// While corked, sends collect in a buffer; uncork() sends them in one write. A pipelining
  /// client corks around a burst of requests, so a burst costs one system call, not one each.
  void cork() { corked_ = true; }
  void uncork();

  /// Send a request and wait for its single reply (other messages are kept for later reads
  /// of their own seq). Throws server_error when the reply carries `error`.
  value request(const std::string& action, map params);

  /// Send a request and hand every streamed message (records, and state messages other than
  /// start/end) to `on_message` until {state: end}. `on_message` returns false to stop reading.
  /// Throws server_error on an error message.
  void stream(const std::string& action, map params,
              const std::function<bool(const value&)>& on_message);

  /// Holds back (or releases) the acks of stream `seq`: while held, the server sends at most
  /// a window more of it and keeps the rest (or ends the stream when it keeps too much).
  /// Releasing sends the ack that was held back. For a consumer that falls behind.
  void hold_acks(int64_t seq, bool hold);

  /// Read the next message belonging to `seq` (buffering others).
  value read_for(int64_t seq);

  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  int fd() const { return fd_; }

  /// The Diffie-Hellman key agreed on this connection (empty: none yet). Kept here because the
  /// server allows one `diffie_hellman` per connection and both the password login and
  /// `auth_set` need it (client_auth.hpp: ensure_session_key).
  const std::string& session_key() const { return session_key_; }
  void set_session_key(std::string key) { session_key_ = std::move(key); }

 private:
  bool fill(clock::time_point deadline);
  /// One recv (flags: 0 waits up to SO_RCVTIMEO, MSG_DONTWAIT not at all) into the decoder;
  /// false when nothing came. Throws client_error on close or failure.
  bool receive(int flags);
  void write_all(const std::string& bytes);
  void send_bytes(const char* data, size_t size);
  [[noreturn]] void throw_closed() const;
  std::string tls_hint() const;
  void note_streamed(const value& msg);

  int fd_ = -1;
  std::unique_ptr<tls_channel> tls_;  // null: clear text
  bool greeted_ = false;
  std::chrono::milliseconds timeout_;
  stream_decoder decoder_;
  value greeting_;
  int64_t qlen_ = 0;
  int64_t next_seq_ = 1;
  struct ack_state {
    int64_t last_read = 0;
    int64_t last_acked = 0;
    int64_t qlen = 0;  // the request's own window (0: the connection's)
  };
  std::map<int64_t, ack_state> acks_;
  std::set<int64_t> held_;  // streams whose acks wait (hold_acks)
  std::multimap<int64_t, value> buffered_;
  std::string session_key_;
  std::chrono::milliseconds rcv_timeout_{-1};  // SO_RCVTIMEO as last set
  bool corked_ = false;
  std::string out_;  // corked sends
};

/// Convenience: an int field of a map, or `dflt`.
int64_t int_field(const value& m, const char* key, int64_t dflt = 0);

}  // namespace moatkv
