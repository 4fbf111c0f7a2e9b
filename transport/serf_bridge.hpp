// The Serf backend bridge: one connection to a Serf agent's RPC port (msgpack over TCP) turned
// into the messages of messages/backend_messages.hpp.
//
// Contract (see backend_messages.hpp for the message shapes):
//   * Topic <-> user event name: '/' <-> '.' ("moat/kv/update" is the event "moat.kv.update").
//   * `publish`   -> `event` {Name, Payload (bin), Coalesce: false}. Dropped and counted while the
//                    link is down (one warning per outage); dropped with a warning when the
//                    event exceeds Serf's default limit of 512 bytes, or the topic is not a valid
//                    MQTT topic name. The agent applies the limit to the *encoded* event (name +
//                    payload + ~35 bytes of msgpack: measured, name + payload = 512 is refused),
//                    so the bridge checks the worst-case encoded size: name + payload <= 472
//                    always passes; the gossip layer's 450-byte chunks under a short event name
//                    fit.
//   * `subscribe` -> one `stream` per filter, re-established after every reconnect. A plain topic
//                    streams "user:<name>" (the agent filters); any filter with a wildcard
//                    ("moat/kv/#", "#", "a/+/b") streams "user" and the bridge keeps the events
//                    that match the filter. A filter already held is ignored.
//   * `received`  -> every user event matching a filter, own events included, once per filter.
//   * `link`      -> true after the handshake and every stream's acknowledgement; false when the
//                    connection is lost, the agent answers garbage, or a handshake/stream reply
//                    does not come within 5 s (never twice in a row, never before a first true).
//   * The bridge monitors its owner and exits with it. An agent absent at start is a lost link.
//
// Wire format (Serf agent RPC, DEPENDENCIES.md): every request is a header map {Command, Seq}
// followed by a body map for the commands that have one; every response is a header map
// {Error, Seq}, followed by a body only for some: here only the records of an acknowledged
// `stream` (its first response is a bare header). The bridge remembers what each Seq was.
//
// Implementation: a CAF io broker (spawned by the middleman; the actor system must have loaded
// `caf::io::middleman`). All state lives in the one broker, with no thread or lock of ours; the
// framing is `stream_decoder` over `new_data_msg`. Its one cost: CAF 0.17 connects a scribe
// with a blocking connect() on the middleman's thread. The RPC address of a Serf agent is local
// (loopback: the connect completes or is refused at once), so this is accepted and documented;
// a remote RPC address that drops SYNs would stall the middleman for the kernel's connect
// timeout.
//
// Reconnect logic (back-off 0.1 s doubling to 5 s, reset once the link is up):
//
//        spawn
//          |
//          v     connect refused
//    +-> connect -----------------------------------------+
//    |     | TCP up: send handshake                       |
//    |     v                                              v
//    |   handshaking --- error / garbage / closed /    waiting (timer: back-off, then doubled)
//    |     | ok: send one `stream` per filter  5 s ---->   ^   |
//    |     v                                              |   | timer fires
//    |   subscribing --- same --------------------------->|   |
//    |     | every stream acknowledged                    |   |
//    |     v                                              |   |
//    |    up ----------- closed / garbage --------------->+   |
//    |                   (link false)                         |
//    +--------------------------------------------------------+
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

namespace moatkv {

struct serf_bridge_options {
  std::string host = "127.0.0.1";
  uint16_t port = 7373;
};

/// Spawn the bridge (a middleman broker); it connects at once and talks to `owner`.
caf::actor spawn_serf_bridge(caf::actor_system& sys, serf_bridge_options opts, caf::actor owner);

}  // namespace moatkv
