// The C++ client library of moatkv: one API over two transports.
//
//   msgpack  the MoaT-KV client protocol over TCP (server-internals §7): works with any MoaT-KV
//            server, the original included; TLS with kv_client_options::tls.
//   caf      a node's remote actor interface (messages/remote_api.hpp) through the CAF
//            middleman: `kv.server.remote`, default port 27587.
//
// A kv_client owns one I/O thread. Requests made from any thread are handed to it; it sends
// them, matches replies, runs the handlers, times requests out and reconnects:
//
//   * Every request has a deadline (options.timeout, counted from the call). When it passes,
//     the handler gets a `timeout` error; a late reply is dropped.
//   * When the connection is lost, every pending request fails with a `transport` error (the
//     node may or may not have carried it out), and the thread reconnects with back-off
//     (backoff_initial, doubling up to backoff_max), logging in again with options.auth.
//     Requests made while disconnected wait for the next connection, within their deadline.
//   * Watches are started again after a reconnect, with `fetch`: the handler gets every entry
//     that changed or appeared meanwhile, and a deletion record (no `value`) for every entry it
//     had seen that is gone — so no change is missed (an entry's last state, not every
//     intermediate one). For that a watch remembers the paths and values it delivered.
//
// Messages look the same over both transports: maps as the msgpack protocol has them, except
// that records of get_tree, delete_tree and watches carry their `path` in full (relative to
// the connection's root, like request paths) and no `depth`, and carry no `seq`/`wseq`.
//
// The asynchronous calls take handlers; they run on the I/O thread, one at a time. A handler
// must not wait for this client (no blocking call of this client from a handler: it would
// wait for itself). The blocking calls are the asynchronous ones plus a wait; they throw
// client_error (transport, timeout) or server_error (the node refused: the text of `error`),
// as client_connection does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/value.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"
#include "transport/tls_channel.hpp"

namespace moatkv {

enum class client_transport { msgpack, caf };

/// "msgpack" / "caf"; nullopt for anything else.
std::optional<client_transport> parse_client_transport(std::string_view name);
const char* client_transport_name(client_transport t);

struct kv_client_options {
  client_transport transport = client_transport::msgpack;
  std::string host = "127.0.0.1";
  uint16_t port = 27586;  // msgpack: kv.conn.port; caf: kv.server.remote.port (27587)
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // of every request
  std::optional<tls_client_config> tls;                          // msgpack only: kv.conn.ssl
  std::optional<auth_spec> auth;  // the login, after every (re)connect
  bool reconnect = true;          // false: a lost connection stays lost
  std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(100);
  std::chrono::milliseconds backoff_max = std::chrono::seconds(5);
  // A watch without a handler whose reader falls behind: past this many unread messages the
  // client stops acknowledging them (msgpack), so the node keeps the rest — and ends the watch
  // with "Queue filled" if that grows too long too — until the reader is down to half. Over
  // caf the interface has no flow control: the messages wait here.
  size_t watch_queue_high = 10000;
};

/// How a request failed (none: it did not).
struct kv_error {
  enum class kind { none, transport, timeout, server };
  kind what = kind::none;
  std::string text;
  explicit operator bool() const { return what != kind::none; }
};

/// The end of a request: its reply (a single reply: the reply map without `seq`; a stream: {})
/// or an error.
using reply_handler = std::function<void(value reply, const kv_error& err)>;
/// One message of a stream or watch.
using message_handler = std::function<void(const value& msg)>;

class kv_client {
 public:
  /// Connects (and logs in). Throws client_error when the first connection fails, a
  /// client_auth_error / server_error when the login does; reconnecting is for later losses.
  explicit kv_client(kv_client_options opts);
  /// Stops the I/O thread; pending requests fail ("the client is closed"), watches end.
  ~kv_client();
  kv_client(const kv_client&) = delete;
  kv_client& operator=(const kv_client&) = delete;

  const kv_client_options& options() const;
  /// The greeting of the current (or last) connection.
  value greeting() const;
  bool connected() const;
  /// Connections made so far (1 + reconnects).
  uint64_t connections() const;
  /// Waits until the client is connected (again) or `timeout` passed; returns connected().
  bool wait_connected(std::chrono::milliseconds timeout) const;
  /// Waits until the connection is lost (or `timeout` passed); returns whether it was. With the
  /// caf transport this is the node's down_msg.
  bool wait_disconnected(std::chrono::milliseconds timeout) const;

  // --- asynchronous -------------------------------------------------------------------------

  /// Any request of the msgpack protocol: `action` plus its parameters (no seq). Over caf only
  /// the actions of the remote interface exist (get_value, set_value, delete_value,
  /// delete_tree, get_tree, enum, get_state, watch, diffie_hellman, auth); others fail with a
  /// server error naming the action.
  void request_async(const std::string& action, map params, reply_handler done);
  /// A streamed request (get_tree, delete_tree with nchain, …): `each` gets every message
  /// between {state: start} and {state: end}, then `done` gets {} or the error.
  void stream_async(const std::string& action, map params, message_handler each,
                    reply_handler done);

  // The data requests, as the original's Python client sends them (`opts`: nchain, chain,
  // prev, idem, depth, min_depth, max_depth, empty, with_data, …, added to the request).
  void get_async(const value& path, map opts, reply_handler done);
  void set_async(const value& path, const value& v, map opts, reply_handler done);
  void remove_async(const value& path, map opts, reply_handler done);

  // --- blocking -----------------------------------------------------------------------------

  value request(const std::string& action, map params);
  /// `each` returns false to stop reading (the rest of the stream is dropped).
  void stream(const std::string& action, map params, const std::function<bool(const value&)>& each);

  /// {value, chain?, tock}; without `value` when the entry has none.
  value get(const value& path, map opts = {});
  /// {changed, prev?, chain?, tock}.
  value set(const value& path, const value& v, map opts = {});
  value remove(const value& path, map opts = {});
  /// The records of delete_tree; with nchain unset the node sends one {changed: N} reply,
  /// returned as the only element.
  std::vector<value> remove_tree(const value& path, map opts = {});
  /// The records of get_tree, paths in full.
  std::vector<value> get_tree(const value& path, map opts = {});
  /// {result: [names]} (with_data: {result: {name: value}}).
  value enumerate(const value& path, map opts = {});
  value get_state(map opts = {});

  // --- watches ------------------------------------------------------------------------------

  class watch {
   public:
    ~watch();  // stops the watch
    watch(const watch&) = delete;
    watch& operator=(const watch&) = delete;

    /// Without a handler, the messages wait here: the next one (a record, {state: uptodate},
    /// and last {state: end} with `error` when the node ended it), or nullopt when nothing
    /// came within `timeout` or the watch ended.
    std::optional<value> next(std::chrono::milliseconds timeout);
    bool ended() const;
    /// Messages waiting for `next`.
    size_t queued() const;
    /// Ends the watch; the handler gets nothing more (the queue keeps what came before).
    void stop();

    struct state;

   private:
    friend class kv_client;
    explicit watch(std::shared_ptr<state> s);
    std::shared_ptr<state> state_;
  };

  /// Watches `path` (opts: fetch, nchain, min_depth, max_depth, …). With a handler, messages
  /// go to it on the I/O thread; without, to watch::next. Throws as the blocking calls when
  /// the node refuses the watch.
  std::unique_ptr<watch> watch_tree(const value& path, map opts = {},
                                    message_handler on_message = {});

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace moatkv
