// Messages between the gossip actor and a backend bridge (MQTT or Serf). CAF 0.17 atoms.
//
// Bridges translate, nothing more (ARCHITECTURE.md): a topic is a string with `/` between its
// elements, as on MQTT ("moat/kv/update"); the Serf bridge maps it to and from the user event
// name with `.` ("moat.kv.update"). Payloads are raw bytes in a std::string.
//
//   owner  -> bridge : (publish_atom, std::string topic, std::string payload)
//                      QoS 0 / Serf event with Coalesce=false; dropped (and logged) while the
//                      link is down — the gossip protocol resyncs after a reconnect.
//   owner  -> bridge : (publish_first_atom, std::string topic, std::string payload)
//                      the same, but ahead of publications still queued for the broker (the
//                      ping protocol's messages, whose timing matters; MQTT only, Serf sends
//                      every event at once anyway)
//   owner  -> bridge : (subscribe_atom, std::string topic_filter)
//                      MQTT filter syntax (+, #); kept and re-established on every reconnect.
//                      Serf: the filter must be a plain topic or end in "/#"(all user events).
//   bridge -> owner  : (received_atom, std::string filter, std::string topic, std::string payload)
//                      every message on a subscribed topic, the node's own publications included,
//                      once per matching subscription, naming that subscription's filter: a
//                      client's `msg_monitor` may overlap the node's own topics, and the ping
//                      actor must see its own `init` exactly once (server-internals §8.18).
//   bridge -> owner  : (backlog_atom, bool high)
//                      publications waiting for the broker passed a high-water mark (true) or
//                      fell back below a low one (false): the owner should slow the writers
//                      meanwhile (MQTT only; the Serf bridge queues nothing)
//   bridge -> owner  : (link_atom, bool up)
//                      the broker/agent connection came up (after subscribing) or went down.
//                      A lost link is retried with back-off (0.1 s doubling to 5 s).
#pragma once

#include <caf/atom.hpp>

namespace moatkv {

using publish_atom = caf::atom_constant<caf::atom("bk_pub")>;
using publish_first_atom = caf::atom_constant<caf::atom("bk_pubfst")>;
using subscribe_atom = caf::atom_constant<caf::atom("bk_sub")>;
using received_atom = caf::atom_constant<caf::atom("bk_recv")>;
using backlog_atom = caf::atom_constant<caf::atom("bk_backlog")>;
using link_atom = caf::atom_constant<caf::atom("bk_link")>;

}  // namespace moatkv
