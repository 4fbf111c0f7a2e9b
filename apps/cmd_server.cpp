// `moatkv server NAME`: run a node until SIGINT/SIGTERM.
#include <csignal>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/tree_store/tock_clock.hpp"
#include "actors/tree_store/tree_store_actor.hpp"
#include "apps/commands.hpp"
#include "messages/literal.hpp"
#include "transport/client_listener.hpp"

namespace moatkv {

namespace {

struct server_options {
  std::string name;
  std::optional<std::string> init;
  bool eval = false;
};

int run_server(const global_options& g, const server_options& so) {
  node_config cfg = g.config();
  std::string backend = cfg.get_string("kv.server.backend", "none");
  if (backend != "none")
    throw config_error("kv.server.backend '" + backend +
                       "' is not available yet: this build runs standalone only (backend: none)");

  tree_store_options topts;
  topts.node_name = so.name;
  topts.client_qlen = cfg.get_int("kv.server.buffer", 10);
  topts.standalone = true;
  if (so.init) {
    topts.has_init = true;
    if (*so.init == "-")
      topts.init_value = value();
    else if (so.eval)
      topts.init_value = parse_literal(*so.init);
    else
      topts.init_value = value(*so.init);
  }
  listener_options lopts;
  lopts.host = cfg.get_string("kv.server.bind_default.host", "127.0.0.1");
  int64_t port = cfg.get_int("kv.server.bind_default.port", 27586);
  if (port < 0 || port > 65535) throw config_error("kv.server.bind_default.port out of range");
  lopts.port = static_cast<uint16_t>(port);
  lopts.session.server_qlen = topts.client_qlen;

  // Signals are taken by sigwait below; block them before CAF starts its threads.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  caf::actor_system_config ccfg;
  ccfg.load<caf::io::middleman>();
  // Measured (DEPENDENCIES.md): the sharing scheduler has a third of the work-stealing latency
  // for request/reply round trips on 2 cores.
  ccfg.set("scheduler.policy", caf::atom("sharing"));
  caf::actor_system sys{ccfg};
  auto clock = std::make_shared<tock_clock>();
  caf::actor store = spawn_tree_store(sys, topts, clock);
  listener_handle lh = start_client_listener(sys, lopts, store, clock);
  if (!lh.actor) {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    throw config_error(lh.error);
  }
  spdlog::info("moatkv node {} serving clients on {}:{}", so.name, lopts.host, lh.port);
  std::cout << "moatkv node " << so.name << " serving on " << lopts.host << ":" << lh.port
            << std::endl;
  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("signal {}: shutting down", sig);
  caf::anon_send_exit(lh.actor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  return 0;
}

}  // namespace

void add_server_command(CLI::App& app, global_options& g) {
  auto so = std::make_shared<server_options>();
  auto* cmd = app.add_subcommand("server", "Run a MoaT-KV node");
  cmd->add_option("NAME", so->name, "This node's name (unique in the cluster)")->required();
  cmd->add_option("-I,--init", so->init,
                  "Initial value of the root entry; makes the node ready at once ('-' = None)");
  cmd->add_flag("-e,--eval", so->eval, "Parse the -I value as a literal (number, 'str', (1,2), …)");
  cmd->callback([&g, so] {
    spdlog::set_level(g.verbose >= 2 ? spdlog::level::debug
                      : g.verbose    ? spdlog::level::info
                                     : spdlog::level::warn);
    command_status = run_server(g, *so);
  });
}

}  // namespace moatkv
