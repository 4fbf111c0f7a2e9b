// `moatkv server NAME`: run a node until SIGINT/SIGTERM.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/gossip/gossip_actor.hpp"
#include "actors/persister/file_loader.hpp"
#include "actors/persister/record_file.hpp"
#include "actors/persister/save_format.hpp"
#include "actors/persister/state_dir.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/tock_clock.hpp"
#include "actors/tree_store/tree_store_actor.hpp"
#include "apps/commands.hpp"
#include "messages/literal.hpp"
#include "messages/node_messages.hpp"
#include "messages/path_syntax.hpp"
#include "messages/persist_messages.hpp"
#include "messages/remote_api.hpp"
#include "transport/client_listener.hpp"
#include "transport/mqtt_bridge.hpp"
#include "transport/remote_api.hpp"
#include "transport/serf_bridge.hpp"
#include "transport/tls_channel.hpp"

namespace moatkv {

namespace {

struct server_options {
  std::string name;
  std::optional<std::string> init;
  bool eval = false;
  bool authoritative = false;
  bool force = false;
  std::vector<std::string> load;
  std::optional<std::string> state_dir;
  std::optional<std::string> sync;
  bool skip_damaged = false;
};

// Progress of long loads: a line that rewrites itself on a terminal, log lines otherwise.
void show_progress(const load_progress& p) {
  double mb = static_cast<double>(p.bytes) / 1e6;
  double rate = p.seconds > 0 ? static_cast<double>(p.records) / p.seconds : 0;
  if (::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\rloading %s: %zu records, %.1f / %.1f MB, %.0f records/s%s",
                 p.file.c_str(), p.records, mb, static_cast<double>(p.file_bytes) / 1e6, rate,
                 p.done ? "\n" : "");
    std::fflush(stderr);
  }
  if (p.done)
    spdlog::info("loaded {}: {} records, {:.1f} MB in {:.2f} s", p.file, p.records, mb, p.seconds);
  else if (!::isatty(STDERR_FILENO))
    spdlog::info("loading {}: {} records, {:.1f} MB, {:.0f} records/s", p.file, p.records, mb,
                 rate);
}

// One node per state directory: a second one would write its own generation and delete the
// files the first is still appending to, losing what the first acknowledges from then on.
// DIR/lock is held with flock(2) for the life of the process (the kernel releases it when
// the process ends, however it ends) and names the holder's pid.
void lock_state_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw config_error("state directory " + dir + ": " + ec.message());
  const std::string file = (std::filesystem::path(dir) / "lock").string();
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw config_error(file + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    std::string holder(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (err == EWOULDBLOCK)
      throw config_error("state directory " + dir + " is in use by another node" +
                         (holder.empty() ? std::string() : " (pid " + holder + ")"));
    throw config_error(file + ": flock: " + std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
    spdlog::warn("{}: cannot record the pid: {}", file, std::strerror(errno));
  // fd stays open on purpose: closing it would release the lock.
}

// The store before the actors start: loaded from the state directory and `-l` files, then
// made ready as the original does (its own tick from the data, `-I`, or standalone).
std::shared_ptr<kv_store> prepare_store(const server_options& so, const node_config& cfg,
                                        bool standalone, const std::optional<value>& init,
                                        std::shared_ptr<tock_clock> clock,
                                        tree_store_options& topts) {
  // The options first: a bad one must be refused before the state directory is touched (a
  // start writes a new snapshot and removes the older generations).
  std::string sync = so.sync.value_or(cfg.get_string("kv.server.state.sync", "ack"));
  try {
    topts.persist.sync = parse_sync_mode(sync);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("--sync / kv.server.state.sync: ") + e.what());
  }
  topts.snapshot_interval = cfg.get_double("kv.server.state.snapshot_interval", 3600);
  int64_t every = cfg.get_int("kv.server.state.snapshot_records", 1'000'000);
  if (every <= 0) throw config_error("kv.server.state.snapshot_records must be positive");
  topts.snapshot_records = static_cast<uint64_t>(every);
  int64_t step = cfg.get_int("kv.server.state.snapshot_step", 20'000);
  if (step <= 0) throw config_error("kv.server.state.snapshot_step must be positive");
  topts.snapshot_step = static_cast<uint64_t>(step);

  auto store = std::make_shared<kv_store>(so.name, clock);
  {
    int64_t depth = cfg.get_int("kv.server.limits.path_depth", default_max_path_depth);
    if (depth <= 0) throw config_error("kv.server.limits.path_depth must be positive");
    store->set_max_path_depth(static_cast<size_t>(depth));
  }
  {
    auth_options ao;
    YAML::Node legacy = cfg.get("kv.auth.password.legacy_hash");
    try {
      ao.legacy_hash = legacy.IsDefined() && !legacy.IsNull() && legacy.as<bool>();
    } catch (const YAML::Exception&) {
      throw config_error("kv.auth.password.legacy_hash must be true or false");
    }
    store->set_auth_options(ao);
  }
  record_loader loader(*store);
  file_load_options flo;
  flo.skip_damaged = so.skip_damaged;
  flo.progress = show_progress;
  flo.warn = [](const std::string& w) {
    spdlog::warn("{}", w);
    std::cerr << "moatkv: warning: " << w << "\n";
  };
  std::optional<std::string> dir = so.state_dir;
  if (!dir) {
    std::string d = cfg.get_string("kv.server.state.dir", "");
    if (!d.empty()) dir = d;
  }
  std::optional<state_dir_plan> plan;
  if (dir) {
    lock_state_dir(*dir);
    plan = plan_state_dir(*dir);
    if (plan->snapshot) load_file(loader, *plan->snapshot, flo);
    for (const auto& log : plan->logs) load_file(loader, log, flo);
  }
  for (const auto& f : so.load) load_file(loader, f, flo);
  const load_stats& ls = loader.stats();
  if (ls.records > 0) {
    spdlog::info(
        "loaded {} records: {} updates ({} changed the tree), {} state records, {} "
        "skipped",
        ls.records, ls.updates, ls.accepted, ls.state_records, ls.skipped);
    if (so.authoritative) store->discard_all_missing();
  }
  if (store->knows_own_tick()) {
    // The files hold this node's own past: it continues from there (§6 load, `_check_ticked`).
    if (init) spdlog::warn("-I ignored: the loaded data already has this node's state");
    store->init_own_tick();
  } else if (init) {
    store->set_initial_root(*init);
  } else if (standalone) {
    store->init_own_tick();
  }
  if (dir) {
    // A fresh generation on every start: the loaded state becomes one snapshot, and the log
    // starts empty (so a cut tail of the old log is never appended to).
    topts.persist.state_dir = *dir;
    topts.persist.generation = plan->generation + 1;
    auto t0 = std::chrono::steady_clock::now();
    size_t entries = 0;
    std::string bytes = encode_save(*store, save_options{true, true}, &entries);
    write_file_atomically(snapshot_file(*dir, topts.persist.generation), bytes);
    remove_old_generations(*dir, topts.persist.generation);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double mb = static_cast<double>(bytes.size()) / 1e6;
    spdlog::info("state {}: snapshot {} with {} entries ({:.1f} MB) in {:.2f} s", *dir,
                 topts.persist.generation, entries, mb, secs);
    if (::isatty(STDERR_FILENO) && entries > 0)
      std::fprintf(stderr, "wrote snapshot %s: %zu entries, %.1f MB in %.2f s (%.0f MB/s)\n",
                   snapshot_file(*dir, topts.persist.generation).c_str(), entries, mb, secs,
                   secs > 0 ? mb / secs : 0.0);
  }
  return store;
}

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

// kv.server.remote: where the remote actor interface is published (issue 7).
struct remote_options {
  std::string host = "127.0.0.1";
  uint16_t port = 27587;  // 0: off
  bool port_given = false;
};

remote_options remote_config(const node_config& cfg) {
  remote_options ro;
  YAML::Node r = cfg.get("kv.server.remote");
  if (!r.IsDefined() || r.IsNull()) return ro;
  if (!r.IsMap()) throw config_error("kv.server.remote must be a map {host: HOST, port: PORT}");
  ro.host = cfg.get_string("kv.server.remote.host", ro.host);
  if (ro.host.empty()) throw config_error("kv.server.remote.host must not be empty");
  YAML::Node p = r["port"];
  if (p.IsDefined() && !p.IsNull()) {
    int64_t port = cfg.get_int("kv.server.remote.port", ro.port);
    if (!p.IsScalar() || port < 0 || port > 65535)
      throw config_error("kv.server.remote.port must be 0 (off) or a port number (1-65535)");
    ro.port = static_cast<uint16_t>(port);
    ro.port_given = true;
  }
  return ro;
}

int run_server(const global_options& g, const server_options& so) {
  node_config cfg = g.config();
  std::string backend = cfg.get_string("kv.server.backend", "none");
  if (backend != "none" && backend != "mqtt" && backend != "serf")
    throw config_error("kv.server.backend must be none, mqtt or serf, not '" + backend + "'");

  tree_store_options topts;
  topts.client_qlen = cfg.get_int("kv.server.buffer", 10);
  std::optional<value> init;
  if (so.init) {
    if (*so.init == "-")
      init = value();
    else if (so.eval)
      init = parse_literal(*so.init);
    else
      init = value(*so.init);
  }
  auto clock = std::make_shared<tock_clock>();
  std::shared_ptr<kv_store> kv;
  try {
    kv = prepare_store(so, cfg, backend == "none", init, clock, topts);
  } catch (const load_error& e) {
    throw config_error(e.what());
  } catch (const record_file_error& e) {
    throw config_error(e.what());
  } catch (const std::runtime_error& e) {
    throw config_error(e.what());
  }
  listener_options lopts;
  lopts.host = cfg.get_string("kv.server.bind_default.host", "127.0.0.1");
  int64_t port = cfg.get_int("kv.server.bind_default.port", 27586);
  if (port < 0 || port > 65535) throw config_error("kv.server.bind_default.port out of range");
  lopts.port = static_cast<uint16_t>(port);
  lopts.session.server_qlen = topts.client_qlen;
  // kv.server.limits: what one client may use. Beyond them requests get clear errors.
  auto limit = [&cfg](const char* key, int64_t dflt) {
    int64_t v = cfg.get_int(std::string("kv.server.limits.") + key, dflt);
    if (v <= 0) throw config_error(std::string("kv.server.limits.") + key + " must be positive");
    return v;
  };
  lopts.session.max_message_bytes = static_cast<size_t>(limit("message_bytes", 16 << 20));
  lopts.session.max_watches = static_cast<size_t>(limit("streams", 1000));
  lopts.session.max_write_backlog = static_cast<size_t>(limit("backlog_bytes", 64 << 20));
  lopts.session.max_connections = limit("connections", 1000);
  lopts.session.connections = std::make_shared<std::atomic<int64_t>>(0);
  // kv.server.bind_default.ssl: false (clear text) or {cert: FILE, key: FILE} (TLS only). The
  // files are read now, so a bad one stops the node before it listens.
  if (YAML::Node ssl = cfg.get("kv.server.bind_default.ssl"); ssl.IsMap()) {
    tls_server_config tc{ssl["cert"].as<std::string>(""), ssl["key"].as<std::string>("")};
    try {
      lopts.session.tls = tls_context::server(tc);
    } catch (const tls_error& e) {
      throw config_error(std::string("kv.server.bind_default.ssl: ") + e.what());
    }
    spdlog::info("clients must use TLS (certificate {})", tc.cert_file);
  } else if (ssl.IsDefined() && !ssl.IsNull() && !(ssl.IsScalar() && !ssl.as<bool>(true))) {
    throw config_error("kv.server.bind_default.ssl must be false or {cert: FILE, key: FILE}");
  }
  remote_options ropts = remote_config(cfg);

  // Signals are taken by sigwait below; block them before CAF starts its threads.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  caf::actor_system_config ccfg;
  ccfg.load<caf::io::middleman>();
  add_remote_api_types(ccfg);
  // Measured (DEPENDENCIES.md): the sharing scheduler has a third of the work-stealing latency
  // for request/reply round trips on 2 cores.
  ccfg.set("scheduler.policy", caf::atom("sharing"));
  // One read per readiness event: the default (50) reads again until EAGAIN, a wasted system
  // call for every batch of requests (level-triggered epoll reports what is left anyway).
  ccfg.set("middleman.max-consecutive-reads", 1);
  caf::actor_system sys{ccfg};
  caf::actor store = spawn_tree_store(sys, topts, kv);
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
    gopts.conn_auth = cfg.get_string("kv.conn.auth", "");
    gopts.conn_tls = client_tls(cfg);
    std::function<caf::actor(caf::actor)> make_bridge;
    if (backend == "mqtt") {
      mqtt_bridge_options mo;
      mo.uri = cfg.get_string("kv.server.mqtt.uri", "mqtt://localhost:1883");
      // kv.server.mqtt.queue: publications waiting for the broker. Past `high` client writes
      // wait until no more than `low` do; past `max` the oldest are dropped (anti-entropy
      // repairs those).
      mo.max_buffered = static_cast<int>(cfg.get_int("kv.server.mqtt.queue.max", mo.max_buffered));
      mo.backlog_high = static_cast<int>(cfg.get_int("kv.server.mqtt.queue.high", mo.backlog_high));
      mo.backlog_low = static_cast<int>(cfg.get_int("kv.server.mqtt.queue.low", mo.backlog_low));
      if (!(0 <= mo.backlog_low && mo.backlog_low < mo.backlog_high &&
            mo.backlog_high <= mo.max_buffered))
        throw config_error("kv.server.mqtt.queue needs 0 <= low < high <= max (now " +
                           std::to_string(mo.backlog_low) + ", " + std::to_string(mo.backlog_high) +
                           ", " + std::to_string(mo.max_buffered) + ")");
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
  // The remote actor interface. A port set in the config must be available; the default one
  // may be taken by another node on this machine (a local cluster, tests), which then serves
  // the msgpack protocol only.
  remote_api_handle remote;
  if (ropts.port != 0) {
    remote_api_limits rlimits;
    rlimits.max_watches = lopts.session.max_watches;
    rlimits.max_connections = lopts.session.max_connections;
    rlimits.connections = lopts.session.connections;  // one count for both kinds of client
    remote = start_remote_api(sys, store, ropts.host, ropts.port, rlimits);
    if (!remote.actor && ropts.port_given) {
      caf::anon_send_exit(lh.actor, caf::exit_reason::user_shutdown);
      if (gossip) caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
      throw config_error(remote.error + " (kv.server.remote)");
    }
    if (remote.actor)
      spdlog::info("remote actors on {}:{}", ropts.host, remote.port);
    else
      spdlog::warn("{}; remote actors are off (set kv.server.remote.port)", remote.error);
  }
  // One fwrite for the whole line: with std::cout each `<<` is its own stdio write, and a log
  // line from another thread (spdlog writes to stdout too) could land in the middle of it,
  // breaking the line that scripts and tests wait for.
  std::string serving =
      "moatkv node " + so.name + " serving on " + lopts.host + ":" + std::to_string(lh.port) + "\n";
  std::fwrite(serving.data(), 1, serving.size(), stdout);
  std::fflush(stdout);
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
  // Remote sessions first: they count as connections below, and their clients get their
  // down_msg now rather than after the grace period.
  stop_remote_api(sys, remote);
  // Let sessions whose clients already hung up finish before the listener (linked to them)
  // ends: CAF 0.17 never frees a connection that is still open when its broker is killed.
  // Clients that stay connected are cut off after the grace period.
  {
    caf::scoped_actor asker{sys};
    auto grace_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (std::chrono::steady_clock::now() < grace_end) {
      int64_t open = -1;
      asker->request(store, std::chrono::milliseconds(200), session_count_atom::value)
          .receive([&](int64_t n) { open = n; }, [](const caf::error&) {});
      if (open <= 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  caf::anon_send_exit(lh.actor, caf::exit_reason::user_shutdown);
  if (gossip) caf::anon_send_exit(gossip, caf::exit_reason::user_shutdown);
  if (status == 0) {
    // Everything applied so far reaches the disk before the process ends.
    caf::scoped_actor finisher{sys};
    finisher->request(store, std::chrono::seconds(60), persist_finish_atom::value)
        .receive([](bool) {},
                 [](const caf::error& e) {
                   spdlog::error("final flush of the logs failed: {}", caf::to_string(e));
                 });
  }
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
  cmd->add_option("-l,--load", so->load,
                  "Load a save file or log before serving (repeatable; in the order given)");
  cmd->add_option("--state", so->state_dir,
                  "Keep the node's state in DIR: load it on start, log every change, write "
                  "snapshots (config kv.server.state.dir)");
  cmd->add_option("--sync", so->sync,
                  "With --state: 'ack' answers a change only once it is on disk (default), "
                  "'interval' syncs every second, 'none' leaves it to the OS "
                  "(config kv.server.state.sync)")
      ->check(CLI::IsMember({"ack", "interval", "none"}));
  cmd->add_flag("--skip-damaged", so->skip_damaged,
                "Load past damaged records in the middle of a file instead of refusing to start");
  cmd->callback([&g, so] {
    spdlog::set_level(g.verbose >= 2 ? spdlog::level::debug
                      : g.verbose    ? spdlog::level::info
                                     : spdlog::level::warn);
    command_status = run_server(g, *so);
  });
}

}  // namespace moatkv
