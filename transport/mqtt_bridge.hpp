// The MQTT backend bridge: two broker connections (paho-mqtt-c MQTTAsync, MQTT 3.1.1, QoS 0,
// clean session), one that subscribes and one that publishes, turned into the messages of
// messages/backend_messages.hpp.
//
// Why two: paho 1.3 reads a socket only while it has no unfinished write ("don't accept work
// from a client unless it is accepting work back", Socket.c isReady). With one connection, a
// broker that reads our publications more slowly than we write them (a busy mosquitto) stops us
// from reading, mosquitto's queue towards us passes max_queued_messages (1000) and it drops QoS 0
// messages to us: peers' updates, pings and infos are lost until the congestion ends (measured
// under scripts/loadtest: 200 000-380 000 drops in 2-3 minutes). The subscribing connection
// never writes anything but keep-alives, so it is always read.
//
// Contract (see backend_messages.hpp for the message shapes):
//   * `publish`   -> QoS 0, retain off, in order. Queued in the actor (at most `max_buffered`) and
//                    handed to paho `paho_window` at a time: paho scans its whole command list
//                    under its global mutex for every command (1.3 MQTTAsync_processCommand), so
//                    a long list there costs O(n) per publication and starves its receive thread;
//                    paho reports each written publication, which frees a place in the window.
//                    While the link is down, a publication is dropped and counted (one warning per
//                    outage; queued ones are dropped when it goes down); a full queue drops its
//                    oldest publication for each new one (one warning until it has drained); a
//                    topic with a wildcard, or a publish paho refuses, is dropped as well.
//   * `subscribe` -> the filter is kept for the bridge's lifetime and re-subscribed after every
//                    reconnect; a filter already held is ignored, a malformed one (`#` not last,
//                    `+`/`#` sharing a level with other characters) is logged and ignored (a
//                    broker would close the connection over it, on every reconnect).
//   * `received`  -> every message on a subscribed topic, own publications included, once per
//                    matching filter held. The broker sends one copy per client even when filters
//                    overlap (mosquitto 2.0, MQTT 3.1.1: measured), so the bridge fans it out.
//   * `link`      -> true once both connections are up and every held filter is acknowledged;
//                    false when either is lost (never twice in a row, and never before a first
//                    true).
//   * The bridge monitors its owner and exits with it. A broker absent at start is a lost link.
//
// Threads: paho runs its callbacks on its own threads. A callback only reads an immutable
// context (the bridge's weak address and which connection) and hands what it got to the actor
// with `anon_send`; all state lives in the actor. paho 1.3 runs every callback with its global
// mutex held and `MQTTAsync_destroy` takes that mutex, so once destroy returns no callback is
// running and none can start; the context is freed only after that (see `paho_client` in the
// .cpp).
//
// Reconnect logic (back-off 0.1 s doubling to 5 s, reset once the link is up). The two
// connections go down together: when one is lost the other is closed as well (the publisher
// has no keep-alive of its own; the subscriber's guards both). `connecting` starts a connect for
// each connection that is neither connected nor connecting, and leaves when both are connected
// (one whose connect succeeded while the other's failed is kept for the next attempt):
//
//        spawn
//          |
//          v        a connect fails / broker absent / a connection lost
//    +-> connecting ------------------------------+
//    |     | both connected                       |
//    |     v                                      v
//    |   subscribing --- connection lost --->  waiting (timer: back-off, then doubled)
//    |     | all filters acknowledged             ^    |
//    |     v                                      |    | timer fires
//    |    up ---------- connection lost ----------+    |   (link false sent on the edge
//    |                  (link false)                   |    up -> waiting only)
//    +-------------------------------------------------+
#pragma once

#include <string>
#include <string_view>

#include <caf/fwd.hpp>

namespace moatkv {

struct mqtt_bridge_options {
  std::string uri = "mqtt://localhost:1883";
  std::string client_id;      // empty: generated unique; the publishing connection adds ".pub"
  int max_buffered = 100000;  // publications queued while paho's window is full
  int paho_window = 128;      // publications handed to paho and not yet written
  // Back-pressure: (backlog_atom, true) to the owner once this many publications wait, and
  // (backlog_atom, false) once no more than backlog_low do. Both well below max_buffered, so
  // that the owner can slow the writers before anything has to be dropped.
  int backlog_high = 20000;
  int backlog_low = 5000;
};

/// Spawn the bridge; it connects at once and talks to `owner` (see the file comment).
caf::actor spawn_mqtt_bridge(caf::actor_system& sys, mqtt_bridge_options opts, caf::actor owner);

/// MQTT 3.1.1 topic syntax (§4.7), shared with the Serf bridge's local filtering.
namespace mqtt_topic {
/// A topic one may publish on: non-empty, no wildcard, no NUL.
bool topic_valid(std::string_view topic);
/// A subscription filter: `+` and `#` each fill a whole level, `#` only as the last level.
bool filter_valid(std::string_view filter);
/// Whether `topic` matches the (valid) `filter`; "a/#" also matches "a", and first-level
/// wildcards do not match topics starting with '$'.
bool matches(std::string_view filter, std::string_view topic);
}  // namespace mqtt_topic

}  // namespace moatkv
