// One connection of a kv_client (transport/kv_client.hpp), by transport. Internal to the client
// library: the kv_client's I/O thread is its only user.
//
// A link speaks msgpack-protocol messages whatever the transport: `send` takes a request's
// action and parameters and returns the request's seq; `poll_message` hands back what arrived
// for the requests, as maps carrying that `seq`. Single replies are one map; streams (get_tree,
// delete_tree, watch, auth) are {state: start}, their records and {state: end}, or a map with
// `error`. Records have their full `path` (relative to the connection's root) and no `depth`.
// A message without `seq` with `error` is the server's connection-level error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "messages/value.hpp"

namespace moatkv {

struct kv_client_options;

class client_link {
 public:
  virtual ~client_link() = default;

  virtual const value& greeting() const = 0;
  /// Readable when poll_message may have something (the socket, or an eventfd).
  virtual int wait_fd() const = 0;
  /// Sends (or queues until flush) a request; returns its seq. Throws client_error.
  virtual int64_t send(const std::string& action, map params) = 0;
  /// Sends what `send` queued.
  virtual void flush() = 0;
  /// The next message that arrived, without waiting; nullopt when there is none now.
  /// Throws client_error once the connection is gone.
  virtual std::optional<value> poll_message() = 0;
  /// Flow control of stream `seq` for a consumer that falls behind (msgpack: acks held back,
  /// so the server keeps the rest; caf: the interface has none, a no-op).
  virtual void hold(int64_t /*seq*/, bool /*hold*/) {}
};

/// Connects and completes the greeting (msgpack: and the hello, TLS first if configured).
/// Throws client_error. No login: the kv_client does it over the link.
std::unique_ptr<client_link> open_msgpack_link(const kv_client_options& opts);
std::unique_ptr<client_link> open_caf_link(const kv_client_options& opts);

}  // namespace moatkv
