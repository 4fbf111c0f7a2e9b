// The gossip actor: the server-to-server protocol of one node (server-internals §3–§5).
//
// It owns the backend bridge (MQTT or Serf), the ping actor state machine and the multipart
// reassembly, and asks the tree_store (the single writer) to apply what peers send and to
// produce what this node must send. Protocol logic lives here; bridges only move bytes.
//
//   bridge ──received(update)──▶ multipart ──▶ tree_store.apply_update
//   bridge ──received(info)────▶ multipart ──▶ tree_store.process_info ──▶ recovery / resend
//   bridge ──received(ping)────▶ ping_actor ──events──▶ fetch (sync) / recover / send_missing
//   tree_store ──local update──▶ multipart (when the backend needs it) ──▶ bridge.publish
//
// Startup (§5.2): subscribe, start the ping actor once the link is up; a node that has data
// (init, load, or standalone) is ready at once; otherwise it waits for a peer's ping with a
// value (GoodNodeEvent), fetches the tree from that peer through the client protocol, asks for
// missing ticks until none are left (or `force`), then becomes ready. `ready_atom` requests are
// answered once the node is ready (the server binds its client listener only then).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "transport/tls_channel.hpp"

namespace moatkv {

struct gossip_options {
  std::string node_name;
  std::string root_topic = "moat/kv";  // kv.server.root, elements joined with '/'
  bool chunk_messages = false;         // split update/info at 450 bytes (needed for Serf)
  double ping_cycle = 10;              // kv.server.ping.cycle
  double ping_gap = 2;                 // kv.server.ping.gap
  double delete_cycle = 100;           // kv.server.delete.cycle (the deleter group's ping)
  double delete_gap = 10;              // kv.server.delete.gap
  int change_length = 5;               // kv.server.change.length: chain links in updates
  // Where to fetch the tree from when joining (§5.5): kv.hostmap, kv.domain, kv.conn.port.
  std::map<std::string, std::pair<std::string, uint16_t>> hostmap;
  std::string domain;
  uint16_t default_port = 27586;
  bool authoritative = false;  // server --authoritative
  bool force = false;          // server --force
  std::string conn_auth;       // kv.conn.auth: the login for peers we fetch from (client_auth.hpp)
  std::optional<tls_client_config> conn_tls;  // kv.conn.ssl: TLS to those peers
};

/// Spawns the gossip actor; `make_bridge(owner)` spawns the backend bridge with the gossip
/// actor as its owner.
caf::actor spawn_gossip(caf::actor_system& sys, gossip_options opts, caf::actor tree_store,
                        std::function<caf::actor(caf::actor owner)> make_bridge);

}  // namespace moatkv
