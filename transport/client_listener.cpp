#include "transport/client_listener.hpp"

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

namespace moatkv {

namespace {

caf::behavior listener_impl(caf::io::broker* self, caf::io::doorman_ptr doorman, caf::actor store,
                            std::shared_ptr<tock_clock> clock, session_options opts) {
  self->add_doorman(std::move(doorman));
  return {
      [=](const caf::io::new_connection_msg& msg) {
        start_session(self, msg.handle, store, clock, opts);
      },
      [](const caf::io::acceptor_closed_msg&) { spdlog::error("client listener closed"); },
  };
}

}  // namespace

listener_handle start_client_listener(caf::actor_system& sys, listener_options opts,
                                      caf::actor store, std::shared_ptr<tock_clock> clock) {
  listener_handle out;
  // Like middleman::spawn_server, but bound to the configured address instead of all of them.
  auto& mm = sys.middleman();
  auto doorman = mm.backend().new_tcp_doorman(opts.port, opts.host.c_str(), true);
  if (!doorman) {
    out.error = "cannot listen on " + opts.host + ":" + std::to_string(opts.port) + ": " +
                sys.render(doorman.error());
    return out;
  }
  out.port = (*doorman)->port();
  out.actor =
      mm.spawn_broker(listener_impl, *doorman, std::move(store), std::move(clock), opts.session);
  return out;
}

}  // namespace moatkv
