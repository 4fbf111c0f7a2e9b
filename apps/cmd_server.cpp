// `moatkv server NAME`: run a node until SIGINT/SIGTERM.
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <map>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/gossip/gossip_actor.hpp"
#include "actors/tree_store/tock_clock.hpp"
#include "actors/tree_store/tree_store_actor.hpp"
#include "apps/commands.hpp"
#include "messages/literal.hpp"
#include "messages/node_messages.hpp"
#include "messages/path_syntax.hpp"
#include "transport/client_listener.hpp"
#include "transport/mqtt_bridge.hpp"
#include "transport/serf_bridge.hpp"

namespace moatkv {

namespace {

struct server_options {
  std::string name;
  std::optional<std::string> init;
  bool eval = false;
  bool authoritative = false;
  bool force = false;
};

// kv.server.root: a path string ("moat.kv", the original's `!P moat.kv`) or a list.
std::string root_topic(const node_config& cfg) {
  YAML::Node r = cfg.get("kv.server.root");
  array elems;
  if (r.IsSequence()) {
    for (const auto& e : r) elems.emplace_back(e.as<std::string>());
  } else {
    elems = parse_path(r.IsScalar() ? r.as<std::string>() : "moat.kv").elements();
  }
  std::string topic;
  for (const auto& e : elems) {
    if (!topic.empty()) topic += '/';
    topic += e.is_str() ? e.as_str() : format_path(value(array{e}));
  }
  if (topic.empty()) throw config_error("kv.server.root must not be empty");
  return topic;
}

// kv.hostmap: name -> [host, port] | "host" | "host:port" (§5.5).
std::map<std::string, std::pair<std::string, uint16_t>> hostmap(const node_config& cfg,
                                                                uint16_t dflt_port) {
  std::map<std::string, std::pair<std::string, uint16_t>> out;
  YAML::Node hm = cfg.get("kv.hostmap");
  if (!hm.IsDefined() || !hm.IsMap()) return out;
  for (auto it = hm.begin(); it != hm.end(); ++it) {
    std::string name = it->first.as<std::string>();
    const YAML::Node v = it->second;  // a copy: it->second is a temporary of the iterator
    try {
      if (v.IsSequence() && v.size() == 2) {
        out[name] = {v[0].as<std::string>(), static_cast<uint16_t>(v[1].as<int>())};
      } else if (v.IsScalar()) {
        std::string s = v.as<std::string>();
        auto colon = s.rfind(':');
        if (colon == std::string::npos)
          out[name] = {s, dflt_port};
        else
          out[name] = {s.substr(0, colon), static_cast<uint16_t>(std::stoi(s.substr(colon + 1)))};
      } else {
        throw config_error("");
      }
    } catch (const std::exception&) {
      throw config_error("kv.hostmap." + name + " must be [host, port], \"host\" or \"host:port\"");
    }
  }
  return out;
}

int run_server(const global_options& g, const server_options& so) {
  node_config cfg = g.config();
  std::string backend = cfg.get_string("kv.server.backend", "none");
  if (backend != "none" && backend != "mqtt" && backend != "serf")
    throw config_error("kv.server.backend must be none, mqtt or serf, not '" + backend + "'");

  tree_store_options topts;
  topts.node_name = so.name;
  topts.client_qlen = cfg.get_int("kv.server.buffer", 10);
  topts.standalone = backend == "none";
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
  caf::actor gossip;
  if (backend != "none") {
    gossip_options gopts;
    gopts.node_name = so.name;
    gopts.root_topic = root_topic(cfg);
    gopts.chunk_messages = backend == "serf";
    gopts.ping_cycle = cfg.get_double("kv.server.ping.cycle", 10);
    gopts.ping_gap = cfg.get_double("kv.server.ping.gap", 2);
    gopts.delete_cycle = cfg.get_double("kv.server.delete.cycle", 100);
    gopts.delete_gap = cfg.get_double("kv.server.delete.gap", 10);
    gopts.change_length = static_cast<int>(cfg.get_int("kv.server.change.length", 5));
    gopts.default_port = static_cast<uint16_t>(cfg.get_int("kv.conn.port", 27586));
    gopts.hostmap = hostmap(cfg, gopts.default_port);
    gopts.domain = cfg.get_string("kv.domain", "");
    gopts.authoritative = so.authoritative;
    gopts.force = so.force;
    std::function<caf::actor(caf::actor)> make_bridge;
    if (backend == "mqtt") {
      mqtt_bridge_options mo;
      mo.uri = cfg.get_string("kv.server.mqtt.uri", "mqtt://localhost:1883");
      mo.client_id = "moatkv-" + so.name + "-" + std::to_string(::getpid());
      make_bridge = [&sys, mo](caf::actor owner) { return spawn_mqtt_bridge(sys, mo, owner); };
    } else {
      serf_bridge_options sopt;
      sopt.host = cfg.get_string("kv.server.serf.host", "127.0.0.1");
      sopt.port = static_cast<uint16_t>(cfg.get_int("kv.server.serf.port", 7373));
      make_bridge = [&sys, sopt](caf::actor owner) { return spawn_serf_bridge(sys, sopt, owner); };
    }
    gossip = spawn_gossip(sys, gopts, store, make_bridge);
    // Serve clients only once the node has its data (§5.2 step 11).
    caf::scoped_actor waiter{sys};
    bool ready = false;
    timespec poll_interval{0, 0};
    while (!ready) {
      waiter->request(gossip, std::chrono::milliseconds(200), ready_atom::value)
          .receive([&](bool) { ready = true; }, [](const caf::error&) {});
      if (!ready && sigtimedwait(&sigs, nullptr, &poll_interval) > 0) {
        spdlog::info("stopped before the node became ready");
        caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
        caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
        return 1;
      }
    }
  }
  lopts.session.gossip = gossip;
  listener_handle lh = start_client_listener(sys, lopts, store, clock);
  if (!lh.actor) {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
    throw config_error(lh.error);
  }
  spdlog::info("moatkv node {} serving clients on {}:{}", so.name, lopts.host, lh.port);
  std::cout << "moatkv node " << so.name << " serving on " << lopts.host << ":" << lh.port
            << std::endl;
  // Serve until a signal, or until the store or the gossip actor fails: a node that no longer
  // replicates must not go on answering clients as if it did.
  caf::scoped_actor watcher{sys};
  watcher->monitor(store);
  if (gossip) watcher->monitor(gossip);
  int status = 0;
  timespec interval{0, 200'000'000};
  for (;;) {
    int sig = sigtimedwait(&sigs, nullptr, &interval);
    if (sig > 0) {
      spdlog::info("signal {}: shutting down", sig);
      break;
    }
    bool failed = false;
    watcher->receive([&](caf::down_msg&) { failed = true; },
                     caf::after(std::chrono::seconds(0)) >> [] {});
    if (failed) {
      spdlog::critical("node {}: an essential actor failed; stopping", so.name);
      std::cerr << "moatkv: node " << so.name << " stopped: an essential actor failed\n";
      status = 1;
      break;
    }
  }
  caf::anon_send_exit(lh.actor, caf::exit_reason::user_shutdown);
  if (gossip) caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  return status;
}

}  // namespace

void add_server_command(CLI::App& app, global_options& g) {
  auto so = std::make_shared<server_options>();
  auto* cmd = app.add_subcommand("server", "Run a MoaT-KV node");
  cmd->add_option("NAME", so->name, "This node's name (unique in the cluster)")->required();
  cmd->add_option("-I,--init", so->init,
                  "Initial value of the root entry; makes the node ready at once ('-' = None)");
  cmd->add_flag("-e,--eval", so->eval, "Parse the -I value as a literal (number, 'str', (1,2), …)");
  cmd->add_flag("-a,--authoritative", so->authoritative,
                "Treat fetched data as complete: ticks still missing count as superseded");
  cmd->add_flag("-f,--force", so->force,
                "Become ready even if ticks are still missing after a fetch");
  cmd->callback([&g, so] {
    spdlog::set_level(g.verbose >= 2 ? spdlog::level::debug
                      : g.verbose    ? spdlog::level::info
                                     : spdlog::level::warn);
    command_status = run_server(g, *so);
  });
}

}  // namespace moatkv
