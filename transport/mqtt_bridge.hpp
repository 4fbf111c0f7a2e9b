// The MQTT backend bridge: one broker connection (paho-mqtt-c MQTTAsync, MQTT 3.1.1, QoS 0,
// clean session) turned into the messages of messages/backend_messages.hpp.
//
// Contract (see backend_messages.hpp for the message shapes):
//   * `publish`   -> QoS 0, retain off. Sent while the broker connection is established; while it
//                    is down the message is dropped and counted (one warning per outage). A topic
//                    with a wildcard, or a publish paho refuses (buffer full), is dropped as well.
//   * `subscribe` -> the filter is kept for the bridge's lifetime and re-subscribed after every
//                    reconnect; a filter already held is ignored, a malformed one (`#` not last,
//                    `+`/`#` sharing a level with other characters) is logged and ignored (a
//                    broker would close the connection over it, on every reconnect).
//   * `received`  -> every message on a subscribed topic, own publications included, once per
//                    matching filter held. The broker sends one copy per client even when filters
//                    overlap (mosquitto 2.0, MQTT 3.1.1: measured), so the bridge fans it out.
//   * `link`      -> true once connected and every held filter is acknowledged; false when the
//                    connection is lost (never twice in a row, and never before a first true).
//   * The bridge monitors its owner and exits with it. A broker absent at start is a lost link.
//
// Threads: paho runs its callbacks on its own threads. A callback only reads an immutable
// context (the bridge's weak address) and hands what it got to the actor with `anon_send`; all
// state lives in the actor. paho 1.3 runs every callback with its global mutex held and
// `MQTTAsync_destroy` takes that mutex, so once destroy returns no callback is running and none
// can start; the context is freed only after that (see `paho_client` in the .cpp).
//
// Reconnect logic (back-off 0.1 s doubling to 5 s, reset once the link is up):
//
//        spawn
//          |
//          v        connect fails / broker absent
//    +-> connecting ------------------------------+
//    |     | connected                            |
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
  std::string client_id;  // empty: generated unique
  int max_buffered = 100000;
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
