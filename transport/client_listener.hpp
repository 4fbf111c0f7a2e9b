// The TCP accept loop of the client protocol: a broker that owns the listening socket and
// forks one session broker per accepted connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>

#include "transport/session.hpp"

namespace moatkv {

class tock_clock;

struct listener_options {
  std::string host = "127.0.0.1";
  uint16_t port = 27586;  // 0: pick a free port
  session_options session;
};

/// Start listening; returns the listener actor and the bound port, or an error text.
struct listener_handle {
  caf::actor actor;
  uint16_t port = 0;
  std::string error;
};

listener_handle start_client_listener(caf::actor_system& sys, listener_options opts,
                                      caf::actor store, std::shared_ptr<tock_clock> clock);

}  // namespace moatkv
