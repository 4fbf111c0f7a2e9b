// The remote actor endpoint of a node (issue 7): the `remote_api` actor, published through the
// CAF middleman (config kv.server.remote), and the sessions it spawns.
//
// Each attach spawns one session actor that is, towards the tree_store, exactly what a client
// connection of the msgpack protocol is (transport/session.cpp): it registers with a hello
// under its own connection number, turns every typed request into the request map a msgpack
// client sends (with a `seq` of its own), and turns the replies and watch events back into
// typed replies and notifications. So logins, ACLs, watches and errors have one
// implementation; when the node requires a login, the tree_store refuses everything else on
// the session's connection until one succeeded (NoAuthError()).
//
// Why a session actor per attach, handed to the client, rather than one actor serving every
// remote client: the tree_store answers a connection's requests by seq to the actor that
// registered it, and keeps login state per connection. A session handle is an unforgeable
// capability for that state (a connection number in each request could be guessed), and the
// published actor does nothing but spawn, so no request takes an extra hop.
//
// Session lifetime:
//
//     attach ──▶ hello sent ──greeting──▶ serving ──owner down / node stops──▶ gone
//                                          (closed_atom to the tree_store, watches ended)
//
// The owner is the actor that attached; the session monitors it (a remote owner goes down when
// its process ends or its connection is lost) and every actor that holds a watch (its watches
// are cancelled when it goes). The limits of msgpack clients apply: a session counts as a
// connection (kv.server.limits.connections) and holds at most kv.server.limits.streams watches.
// Watch notifications have no flow control yet: a watcher that does not keep up grows the
// middleman's send buffer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace moatkv {

struct remote_api_handle {
  caf::actor actor;  // the published remote_api actor (as a dynamically typed handle)
  uint16_t port = 0;
  std::string error;  // set when publishing failed (then `actor` is not running)
};

struct remote_api_limits {
  size_t max_watches = 1000;  // kv.server.limits.streams, per session
  // kv.server.limits.connections, counted together with the msgpack sessions (null: none)
  int64_t max_connections = 1000;
  std::shared_ptr<std::atomic<int64_t>> connections;
};

/// Spawns the remote_api actor for `store` and publishes it on host:port (reuse_addr).
remote_api_handle start_remote_api(caf::actor_system& sys, caf::actor store,
                                   const std::string& host, uint16_t port,
                                   remote_api_limits limits = {});

/// Unpublishes it and ends it and all its sessions (each says closed_atom to the tree_store).
void stop_remote_api(caf::actor_system& sys, remote_api_handle& h);

}  // namespace moatkv
