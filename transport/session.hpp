// One client connection of the msgpack protocol (server-internals §7.1–§7.7).
//
// A CAF broker per connection. It decodes the byte stream, keeps the seq table, runs streams
// with `wseq`/`ack` flow control and `stop`, and forwards every request to the tree_store,
// whose replies it frames (adding `seq`, `wseq`, and a fresh `tock` where a message has none).
//
// Stream states (per seq):
//
//     request sent ──reply(stream)──▶ sending ──all sent, not open──▶ ended
//          │                            │  ▲
//          │ stop                       │  └── ack (window opens) / watch event (queued)
//          ▼                            ▼ stop, or buffer full (error)
//     cancelled ──reply──▶ ended      ended ({state: end} queued after what was sent)
//
// Bad input never takes the node down: a message that is not a map, lacks `seq`, or has a
// malformed field gets an error reply on its seq; bytes that are not msgpack close this
// connection only (after an {error} message).
//
// With TLS (session_options::tls) every byte in and out passes a tls_channel; the greeting
// waits for the handshake, and a client that does not complete it (clear text, garbage, or
// silence for tls_handshake_timeout) is closed with a warning.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/io/fwd.hpp>

namespace moatkv {

class tls_context;
class tock_clock;

struct session_options {
  int64_t server_qlen = 10;           // kv.server.buffer
  size_t max_stream_backlog = 10000;  // queued messages of one stream before it is aborted
  // Bytes waiting to be sent to a client that does not read, before its streams are aborted:
  // the bound for streams without flow control (qlen 0), whose messages are not queued above.
  size_t max_write_backlog = 64u << 20;
  size_t max_message_bytes = 16u << 20;  // kv.server.limits.message_bytes
  size_t max_watches = 1000;             // kv.server.limits.streams: open watches/monitors
  // kv.server.limits.connections: sessions beyond this are refused; `connections` counts them
  // (shared by the listener's sessions; null: no limit).
  int64_t max_connections = 1000;
  std::shared_ptr<std::atomic<int64_t>> connections;
  caf::actor gossip;  // the node's gossip actor, for msg_send / msg_monitor (none: standalone)
  std::shared_ptr<const tls_context> tls;  // kv.server.bind_default.ssl (null: clear text)
  std::chrono::milliseconds tls_handshake_timeout{5000};
};

/// A fresh connection number for the tree_store (never 0; unique in the process, whatever kind
/// of connection asks: the remote actor sessions of transport/remote_api.hpp use it too).
uint64_t new_connection_id();

/// Fork a session broker that takes over `hdl`; it is linked to `listener`, so stopping the
/// listener ends every session (the actor system cannot shut down while one lives).
void start_session(caf::io::broker* listener, caf::io::connection_handle hdl, caf::actor store,
                   std::shared_ptr<tock_clock> clock, session_options opts);

}  // namespace moatkv
