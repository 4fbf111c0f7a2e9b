// A minimal blocking C++ client of a node's remote actor interface (messages/remote_api.hpp).
//
// It runs its own small actor system (CAF stays out of this header), attaches to the node's
// published `remote_api` actor, and sends every request from one actor — the session's owner:
// when this object goes, the node's session and its watches go with it. Every request has a
// timeout; none can hang after the node died (a timeout error, or the middleman's own error
// when it already knows the connection is gone).
//
// Errors, as client_connection: client_error for transport problems (cannot connect, timeout,
// node gone), server_error for refusals by the node (the text the msgpack protocol carries in
// `error`, e.g. "NoAuthError()").
//
// Threads: the requests of one client are made from one thread at a time. `wait_down` and the
// watch objects use actors of their own and may be used from other threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "messages/value.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

struct remote_client_options {
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // of every request
};

class remote_client {
 public:
  /// Connects to the remote_api actor at host:port and attaches (a session on the node).
  /// Throws client_error.
  remote_client(const std::string& host, uint16_t port, remote_client_options opts = {});
  ~remote_client();
  remote_client(const remote_client&) = delete;
  remote_client& operator=(const remote_client&) = delete;

  /// The node's greeting: {node, tick, tock, qlen, auth: [current method (or nil), …]}.
  const value& greeting() const;

  void set_timeout(std::chrono::milliseconds t);

  /// Logs in as `spec` says (root, _test, password: the latter runs diffie_hellman first),
  /// as the msgpack client's `authenticate`. Throws server_error when refused.
  void login(const auth_spec& spec);

  // The data requests. `path` is a sequence of elements (an array or a Path); `opts` a map
  // with the msgpack protocol's request keys (nchain, chain, prev, idem, depth, …), or nil.
  /// {value, chain?, tock} or {} when the entry has no value.
  value get(const value& path, const value& opts = value());
  /// {changed, prev?, chain?, tock}.
  value set(const value& path, const value& v, const value& opts = value());
  value remove(const value& path, const value& opts = value());
  /// The messages of delete_tree (with nchain: what was deleted), paths in full.
  value remove_tree(const value& path, const value& opts = value());
  /// The records of get_tree as an array, paths in full (relative to the connection's root).
  value get_tree(const value& path, const value& opts = value());
  /// enum: {result: [child names]} (with_data: {result: {name: value}}).
  value enumerate(const value& path, const value& opts = value());
  value get_state(const value& opts = value());
  /// diffie_hellman and auth as raw requests (what `login` uses).
  value diffie_hellman(const value& request);
  void auth(const value& request);

  /// A running watch: its notifications wait in an actor of its own until `next` takes them.
  class watch {
   public:
    ~watch();
    watch(const watch&) = delete;
    watch& operator=(const watch&) = delete;

    int64_t id() const;
    /// The next message of the watch (a record with full `path`, or a state message such as
    /// {state: uptodate}); nullopt once the watch ended (then `end_info` says how) or when
    /// nothing came within `timeout`.
    std::optional<value> next(std::chrono::milliseconds timeout);
    bool ended() const;
    /// {} after stop, {error: …} when the node ended it or went away.
    const value& end_info() const;
    /// Asks the node to stop the watch; the end notification follows the messages already
    /// sent. Returns whether the watch was running.
    bool stop();

    struct impl;

   private:
    friend class remote_client;
    explicit watch(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
  };

  /// Starts a watch of `path` (opts: fetch, nchain, min_depth, max_depth, …).
  std::unique_ptr<watch> watch_tree(const value& path, const value& opts = value());

  /// Waits until the node is gone (the monitor's down_msg) or `timeout` passed; returns
  /// whether it is gone. Usable from another thread while a request is pending.
  bool wait_down(std::chrono::milliseconds timeout);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace moatkv
