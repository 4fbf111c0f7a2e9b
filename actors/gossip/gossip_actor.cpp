#include "actors/gossip/gossip_actor.hpp"

#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/gossip/deleter.hpp"
#include "actors/gossip/multipart.hpp"
#include "actors/gossip/peer_fetch.hpp"
#include "actors/gossip/ping_actor.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/backend_messages.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/node_messages.hpp"

namespace moatkv {

namespace {

using ping_timer_atom = caf::atom_constant<caf::atom("g_ptimer")>;
using del_timer_atom = caf::atom_constant<caf::atom("g_dtimer")>;
using collect_atom = caf::atom_constant<caf::atom("g_collect")>;
using anti_entropy_atom = caf::atom_constant<caf::atom("g_antient")>;
using recover_atom = caf::atom_constant<caf::atom("g_recover")>;
using resend_atom = caf::atom_constant<caf::atom("g_resend")>;
using ask_missing_atom = caf::atom_constant<caf::atom("g_askmiss")>;
using local_update_atom = caf::atom_constant<caf::atom("g_local")>;

// Split recovery (§5.6): one control per RecoverEvent, stepping on timers.
//
//   step 1: wait clock·(1−2^-prio) for another local node's `ticks` ─timeout─▶ send info ticks
//   step 2: wait clock·(2−2^-prio)/2 for its `missing`          ─timeout─▶ send info missing
//   step 3: after clock·(1−2^-prio): resend what peers miss; then forget the control
struct recovery {
  int prio = 0;
  std::set<std::string> local;
  std::set<std::string> remote;
  bool signal1 = false;
  bool signal2 = false;
};

// A client's msg_monitor: messages on `filter` go to `session` as events of stream `seq`.
struct backend_monitor {
  caf::actor session;
  int64_t seq = 0;
  bool raw = false;
  std::string filter;
};

struct gossip_state {
  gossip_options opts;
  std::set<std::string> own_filters;  // root/update, root/info, root/ping
  std::vector<backend_monitor> monitors;
  caf::actor store;
  caf::actor bridge;
  std::unique_ptr<ping_actor> ping;
  multipart_assembler assembler;
  uint64_t part_seq = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  bool link_up = false;
  bool ping_started = false;
  bool ready = false;
  bool fetch_running = false;
  // Joining without data: the peers of kv.hostmap are asked at once (a probe), before the ping
  // protocol names a node with data, which takes up to a ping cycle (see maybe_probe).
  std::optional<bool> has_data;  // the store's answer, once it came
  bool probed = false;
  bool probing = false;                   // the running fetch is the probe
  std::vector<std::string> pending_good;  // a GoodNodeEvent that came during the probe
  bool asking_missing = false;            // after a fetch with gaps (do_send_missing)
  double ask_clock = 0;
  uint64_t ping_generation = 0;
  uint64_t anti_entropy_rounds = 0;
  // The deleter group (§5.8): a ping actor on <root>/del, disabled unless we are a member.
  std::unique_ptr<ping_actor> del_ping;
  uint64_t del_generation = 0;
  std::unique_ptr<deleter> del;
  bool resend_running = false;
  bool resend_again = false;
  uint64_t next_recovery = 1;
  std::map<uint64_t, recovery> recoveries;
  std::vector<caf::response_promise> ready_waiters;
  caf::actor fetcher;

  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  double rand01() { return std::uniform_real_distribution<double>(0, 1)(rng); }
  std::string topic(const char* action) const { return opts.root_topic + "/" + action; }
};

using gossip_actor = caf::stateful_actor<gossip_state>;

std::chrono::microseconds seconds(double s) {
  return std::chrono::microseconds(static_cast<int64_t>(std::max(s, 0.0) * 1e6));
}

// Run `fn` on the kv_store inside the tree_store actor, fire and forget. Sent anonymously:
// CAF returns a handler's result to the sender even for a plain send, and we want none.
void store_do(gossip_actor* self, std::function<value(kv_store&)> fn) {
  caf::anon_send(self->state.store, store_call_atom::value, store_call{std::move(fn)});
}

void publish(gossip_actor* self, const char* action, const value& msg) {
  auto& st = self->state;
  if (st.opts.chunk_messages) {
    for (auto& payload : pack_multipart(msg, st.opts.node_name, st.part_seq))
      self->send(st.bridge, publish_atom::value, st.topic(action), std::move(payload));
  } else {
    self->send(st.bridge, publish_atom::value, st.topic(action), encode(msg));
  }
}

void become_ready(gossip_actor* self) {
  auto& st = self->state;
  if (st.ready) return;
  st.ready = true;
  spdlog::info("gossip {}: ready", st.opts.node_name);
  for (auto& rp : st.ready_waiters) rp.deliver(true);
  st.ready_waiters.clear();
}

void schedule_ping(gossip_actor* self) {
  auto& st = self->state;
  if (!st.ping) return;
  auto deadline = st.ping->next_deadline();
  if (!deadline) return;
  self->delayed_send(self, seconds(*deadline - st.now()), ping_timer_atom::value,
                     ++st.ping_generation);
}

void schedule_del_ping(gossip_actor* self) {
  auto& st = self->state;
  auto deadline = st.del_ping ? st.del_ping->next_deadline() : std::nullopt;
  if (!deadline) return;
  self->delayed_send(self, seconds(*deadline - st.now()), del_timer_atom::value,
                     ++st.del_generation);
}

// Purge tombstones the deleter group agreed on.
void purge(gossip_actor* self, std::vector<node_set> sets) {
  if (sets.empty()) return;
  store_do(self, [sets = std::move(sets)](kv_store& s) {
    size_t n = 0;
    for (const auto& ns : sets) n += s.purge_deleted(ns);
    if (n > 0) spdlog::info("purged {} tombstones", n);
    return value();
  });
}

void handle_del_event(gossip_actor* self, const ping_actor::event& ev) {
  auto& st = self->state;
  if (std::holds_alternative<ping_actor::tag_event>(ev)) {
    size_t history = st.del_ping->history().size();
    self->request(st.store, caf::infinite, store_call_atom::value,
                  store_call{[](kv_store& s) { return value(s.clock().next()); }})
        .then([self, history](value& tock) {
          auto& st = self->state;
          value v;
          purge(self, st.del->on_tag(static_cast<uint64_t>(tock.as_int64()), history, v));
          st.del_ping->set_value(std::move(v));
        });
  } else if (auto* p = std::get_if<ping_actor::ping_event>(&ev)) {
    auto out = st.del->on_ping(p->msg);
    if (out.resync)
      spdlog::warn("gossip {}: the deleter group may have missed deletions; not purging",
                   st.opts.node_name);
    purge(self, std::move(out.purge));
  }
}

// §5.7 _send_missing: ask for ticks we lack (force: even if none).
void send_missing(gossip_actor* self, bool force) {
  self->request(self->state.store, caf::infinite, store_call_atom::value,
                store_call{[force](kv_store& s) { return s.info_missing(force); }})
      .then([self](value& msg) {
        if (msg.is_map()) publish(self, "info", msg);
      });
}

// §5.7 _run_send_missing: one resend round at a time; a request during a round asks for another.
void run_send_missing(gossip_actor* self, std::optional<int> prio) {
  auto& st = self->state;
  if (st.resend_running) {
    st.resend_again = true;
    return;
  }
  st.resend_running = true;
  double cycle = st.opts.ping_cycle;
  double delay = prio ? cycle * (1 - std::ldexp(1.0, -*prio) / 2 - st.rand01() / 5)
                      : cycle * (1 + st.rand01() / 3);
  self->delayed_send(self, seconds(delay), resend_atom::value);
}

void start_fetch(gossip_actor* self, std::vector<std::string> nodes, bool probe = false);

void on_recover(gossip_actor* self, const ping_actor::recover_event& ev) {
  auto& st = self->state;
  if (!st.ready) return;
  std::set<std::string> remote(ev.remote_nodes.begin(), ev.remote_nodes.end());
  // §5.6: a newer recovery covering the same remote nodes is not started twice.
  for (const auto& [id, r] : st.recoveries)
    if (r.remote == remote) return;
  recovery r;
  r.prio = static_cast<int>(std::min<int64_t>(ev.prio, 30));
  r.remote = remote;
  for (const auto& n : ev.local_nodes)
    if (!remote.count(n)) r.local.insert(n);
  uint64_t id = st.next_recovery++;
  st.recoveries[id] = r;
  double clock = st.opts.ping_cycle;
  spdlog::info("gossip {}: split recovery (prio {})", st.opts.node_name, r.prio);
  self->delayed_send(self, seconds(clock * (1 - std::ldexp(1.0, -r.prio))), recover_atom::value, id,
                     1);
}

void handle_ping_event(gossip_actor* self, const ping_actor::event& ev) {
  auto& st = self->state;
  if (std::holds_alternative<ping_actor::tag_event>(ev)) {
    send_missing(self, false);
  } else if (auto* g = std::get_if<ping_actor::good_node_event>(&ev)) {
    if (!st.ready && !st.fetch_running)
      start_fetch(self, g->nodes);
    else if (!st.ready && st.probing)
      st.pending_good = g->nodes;
  } else if (auto* r = std::get_if<ping_actor::recover_event>(&ev)) {
    on_recover(self, *r);
  } else if (auto* raw = std::get_if<ping_actor::raw_event>(&ev)) {
    // §4.6 RawMsgEvent: learn node names, ticks and tocks from every ping message.
    if (auto p = ping_sender_of(raw->msg))
      store_do(self, [p = std::move(*p)](kv_store& s) {
        s.note_node(p.name, p.tick, p.tock);
        return value();
      });
  } else if (std::holds_alternative<ping_actor::collision_event>(ev)) {
    spdlog::error("gossip {}: another node uses the name {} (own init seen twice)",
                  st.opts.node_name, st.opts.node_name);
  } else if (std::holds_alternative<ping_actor::echo_missing_event>(ev)) {
    spdlog::warn("gossip {}: own ping init not echoed by the backend", st.opts.node_name);
  }
}

// Config numbers keep their wire type (an integral gap goes out as an int, as the original's).
value config_number(double d) {
  if (d == static_cast<double>(static_cast<int64_t>(d))) return value(static_cast<int64_t>(d));
  return value(d);
}

void make_del_ping(gossip_actor* self) {
  auto& st = self->state;
  st.del = std::make_unique<deleter>(st.opts.node_name);
  ping_actor::hooks h;
  h.send = [self](const value& msg) {
    self->send(self->state.bridge, publish_first_atom::value, self->state.topic("del"),
               encode(msg));
  };
  h.on_event = [self](const ping_actor::event& ev) { handle_del_event(self, ev); };
  h.random = [self] { return self->state.rand01(); };
  ping_config cfg = ping_config::server_delete();
  cfg.cycle = config_number(st.opts.delete_cycle);
  cfg.gap = config_number(st.opts.delete_gap);
  st.del_ping = std::make_unique<ping_actor>(st.opts.node_name, cfg, std::move(h),
                                             /*enabled=*/false, /*send_raw=*/false);
}

void make_ping(gossip_actor* self) {
  auto& st = self->state;
  ping_config cfg = ping_config::server_ping();
  cfg.cycle = config_number(st.opts.ping_cycle);
  cfg.gap = config_number(st.opts.ping_gap);
  ping_actor::hooks h;
  h.send = [self](const value& msg) {
    // Ahead of queued updates: a ping held back by a backlog looks like a split to peers.
    self->send(self->state.bridge, publish_first_atom::value, self->state.topic("ping"),
               encode(msg));
  };
  h.on_event = [self](const ping_actor::event& ev) { handle_ping_event(self, ev); };
  h.random = [self] { return self->state.rand01(); };
  st.ping = std::make_unique<ping_actor>(st.opts.node_name, cfg, std::move(h));
}

void on_update(gossip_actor* self, value msg) {
  // Own updates come back from the broker: applying them would be a no-op (same chain head).
  if (const value* n = msg.find("node");
      n && n->is_str() && n->as_str() == self->state.opts.node_name && !msg.find("chain"))
    return;
  store_do(self, [m = std::move(msg)](kv_store& s) {
    s.apply_update(m);
    return value();
  });
}

void on_info(gossip_actor* self, value msg) {
  auto& st = self->state;
  if (const value* n = msg.find("node"); n && n->is_str() && n->as_str() == st.opts.node_name)
    return;  // own info
  self->request(st.store, caf::infinite, store_call_atom::value,
                store_call{[m = std::move(msg)](kv_store& s) {
                  // The sender's own tick rides on every info (§3.4): learn it, so a node whose
                  // pings we rarely see still tells us what it wrote.
                  const value* n = m.find("node");
                  int64_t tick;
                  if (n && n->is_str() && !n->as_str().empty() && m.find("tick") &&
                      m.find("tick")->get_int(tick) && tick >= 0)
                    s.note_node(n->as_str(), static_cast<uint64_t>(tick), std::nullopt);
                  return s.process_info(m).to_value();
                }})
      .then([self](value& res) {
        auto& st = self->state;
        if (!res.is_map()) return;
        std::string from;
        if (const value* f = res.find("from"); f && f->is_str()) from = f->as_str();
        bool ticks =
            res.find("ticks") && res.find("ticks")->is_bool() && res.find("ticks")->as_bool();
        bool missing =
            res.find("missing") && res.find("missing")->is_bool() && res.find("missing")->as_bool();
        bool resend =
            res.find("resend") && res.find("resend")->is_bool() && res.find("resend")->as_bool();
        for (auto& [id, r] : st.recoveries) {
          if (!r.local.count(from)) continue;
          if (ticks) r.signal1 = true;
          if (missing) r.signal2 = true;
        }
        if (resend) run_send_missing(self, std::nullopt);
      });
}

// Forward a backend message to the clients monitoring `filter` (§7.8 msg_monitor).
void forward_to_monitors(gossip_actor* self, const std::string& filter, const std::string& topic,
                         const std::string& payload) {
  auto& st = self->state;
  array elems;
  size_t start = 0;
  for (;;) {
    size_t slash = topic.find('/', start);
    elems.emplace_back(topic.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::optional<value> data;
  std::string error;
  for (const auto& m : st.monitors) {
    if (m.filter != filter) continue;
    map msg{{"topic", elems}};
    if (!m.raw && !data && error.empty()) {
      try {
        data = decode(payload);
      } catch (const decode_error& e) {
        error = e.what();
      }
    }
    if (!m.raw && data) {
      msg.emplace_back("data", *data);
    } else {
      msg.emplace_back("raw", bin{payload});
      if (!m.raw) msg.emplace_back("error", error);
    }
    self->send(m.session, event_atom::value, m.seq, value(std::move(msg)));
  }
}

void on_received(gossip_actor* self, const std::string& topic, const std::string& payload) {
  auto& st = self->state;
  const std::string prefix = st.opts.root_topic + "/";
  if (topic.compare(0, prefix.size(), prefix) != 0) return;
  std::string action = topic.substr(prefix.size());
  value msg;
  try {
    msg = decode(payload);
  } catch (const decode_error& e) {
    spdlog::warn("gossip {}: dropped undecodable message on {}: {}", st.opts.node_name, topic,
                 e.what());
    return;
  }
  if (action == "del") {
    if (st.del_ping) {
      st.del_ping->receive(msg, st.now());
      schedule_del_ping(self);
    }
    return;
  }
  if (action == "ping") {
    if (st.ping) {
      if (auto why = st.ping->receive(msg, st.now()))
        spdlog::debug("gossip {}: ignored ping message: {}", st.opts.node_name, *why);
      schedule_ping(self);
    }
    return;
  }
  if (action != "update" && action != "info") return;
  if (!msg.is_map()) {
    spdlog::warn("gossip {}: dropped a non-map message on {}", st.opts.node_name, topic);
    return;
  }
  std::optional<value> whole;
  try {
    whole = st.assembler.feed(std::move(msg), st.now());
  } catch (const std::exception& e) {  // a peer's message must never take the actor down
    spdlog::warn("gossip {}: dropped a bad part on {}: {}", st.opts.node_name, topic, e.what());
    return;
  }
  if (!whole || (whole->is_map() && whole->as_map().empty())) return;
  if (action == "update")
    on_update(self, std::move(*whole));
  else
    on_info(self, std::move(*whole));
}

// Where a peer's client port is (§5.5): the entry (None, "hostmap", NAME) = [host, port] in
// the tree (`from_tree`), else kv.hostmap, else the name itself (+ kv.domain).
std::pair<std::string, uint16_t> peer_address(const gossip_options& o, const std::string& name,
                                              const value& from_tree) {
  int64_t port;
  if (from_tree.is_array() && from_tree.as_array().size() == 2 &&
      from_tree.as_array()[0].is_str() && from_tree.as_array()[1].get_int(port) && port > 0 &&
      port < 65536)
    return {from_tree.as_array()[0].as_str(), static_cast<uint16_t>(port)};
  if (auto it = o.hostmap.find(name); it != o.hostmap.end()) return it->second;
  std::string host = name;
  if (!o.domain.empty() && host.find('.') == std::string::npos && host != "localhost")
    host += "." + o.domain;
  return {host, o.default_port};
}

// A node that joins without data asks the peers of kv.hostmap for the tree as soon as its
// broker link is up (so no update published after the peer's snapshot is missed), instead of
// waiting for a ping from a node with data: up to a ping cycle (10 s by default), most of a
// new node's sync in issue 6. Nothing changes on the wire; the original only waits.
void maybe_probe(gossip_actor* self) {
  auto& st = self->state;
  if (st.probed || st.ready || st.fetch_running || !st.link_up || st.has_data != false) return;
  std::vector<std::string> peers;
  for (const auto& [name, addr] : st.opts.hostmap)
    if (name != st.opts.node_name) peers.push_back(name);
  if (peers.empty()) return;
  st.probed = true;
  start_fetch(self, std::move(peers), true);
}

void start_fetch(gossip_actor* self, std::vector<std::string> nodes, bool probe) {
  auto& st = self->state;
  st.fetch_running = true;
  st.probing = probe;
  // Look the candidates up in the meta tree first (a node may already hold hostmap entries,
  // e.g. loaded from a file); connection id 0 is no client's.
  self->request(st.store, caf::infinite, store_call_atom::value, store_call{[nodes](kv_store& s) {
                  array found;
                  for (const auto& n : nodes) {
                    action_result r = s.handle(
                        0, value(map{{"action", "get_internal"},
                                     {"path", value::make_path({value("hostmap"), value(n)})}}));
                    const value* v = r.messages.empty() ? nullptr : r.messages[0].find("value");
                    found.push_back(v ? *v : value());
                  }
                  return value(std::move(found));
                }})
      .then([self, nodes, probe](value& found) {
        auto& st = self->state;
        std::vector<peer_address_entry> peers;
        for (size_t i = 0; i < nodes.size(); ++i) {
          if (nodes[i] == st.opts.node_name) continue;
          const value& t =
              found.is_array() && i < found.as_array().size() ? found.as_array()[i] : value();
          auto [host, port] = peer_address(st.opts, nodes[i], t);
          peers.push_back({nodes[i], host, port});
        }
        if (peers.empty()) {
          st.fetch_running = false;
          st.probing = false;
          return;
        }
        if (probe)
          spdlog::info("gossip {}: asking the peers of kv.hostmap for the tree", st.opts.node_name);
        else
          spdlog::info("gossip {}: fetching the tree from {}", st.opts.node_name,
                       peers.front().name);
        st.fetcher = spawn_peer_fetch(self->system(), st.opts.node_name, std::move(peers), st.store,
                                      caf::actor_cast<caf::actor>(self), st.opts.conn_auth,
                                      st.opts.conn_tls, probe);
      });
}

// After a fetch: ask for missing ticks until none are left (§5.7 do_send_missing).
void ask_missing_round(gossip_actor* self) {
  auto& st = self->state;
  self->request(st.store, caf::infinite, store_call_atom::value,
                store_call{[](kv_store& s) { return value(s.has_local_missing()); }})
      .then([self](value& has) {
        auto& st = self->state;
        if (!has.as_bool() || st.opts.force) {
          st.asking_missing = false;
          store_do(self, [](kv_store& s) {
            s.init_own_tick();
            return value();
          });
          become_ready(self);
          return;
        }
        send_missing(self, false);
        st.ask_clock *= 1 + st.rand01() / 2;
        self->delayed_send(self, seconds(st.ask_clock), ask_missing_atom::value);
      });
}

caf::behavior gossip_impl(gossip_actor* self, gossip_options opts, caf::actor store,
                          std::function<caf::actor(caf::actor)> make_bridge) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.store = store;
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& eptr) -> caf::error {
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      spdlog::critical("gossip actor failed: {}", e.what());
    }
    return caf::exit_reason::unhandled_exception;
  });
  st.bridge = make_bridge(caf::actor_cast<caf::actor>(self));
  self->link_to(st.bridge);
  for (const char* a : {"update", "info", "ping", "del"}) {
    st.own_filters.insert(st.topic(a));
    self->send(st.bridge, subscribe_atom::value, st.topic(a));
  }
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& ms = self->state.monitors;  // a session went away: drop its monitors
    ms.erase(
        std::remove_if(ms.begin(), ms.end(),
                       [&](const backend_monitor& m) { return m.session.address() == dm.source; }),
        ms.end());
  });
  make_ping(self);
  make_del_ping(self);
  self->delayed_send(self, std::chrono::seconds(10), collect_atom::value);
  self->delayed_send(self, seconds(st.opts.ping_cycle), anti_entropy_atom::value);
  // Local changes go out as updates; the store tells us whether we have data already.
  caf::actor me = caf::actor_cast<caf::actor>(self);
  int change_length = st.opts.change_length;
  self->request(
          store, caf::infinite, store_call_atom::value,
          store_call{[me, change_length](kv_store& s) {
            s.set_update_emitter(
                [me](value msg) { caf::anon_send(me, local_update_atom::value, std::move(msg)); },
                change_length);
            return value(s.own_tick().has_value());
          }})
      .then([self](value& has_tick) {
        self->state.has_data = has_tick.as_bool();
        if (has_tick.as_bool()) become_ready(self);
        maybe_probe(self);
      });
  return {
      [self](link_atom, bool up) {
        auto& st = self->state;
        st.link_up = up;
        spdlog::info("gossip {}: backend link {}", st.opts.node_name, up ? "up" : "down");
        if (up && !st.ping_started) {
          st.ping_started = true;
          st.ping->start(st.now());
          schedule_ping(self);
          st.del_ping->start(st.now());
          schedule_del_ping(self);
          maybe_probe(self);
        } else if (up && st.ready) {
          // Back after an outage: tell the others our ticks (so they ask for what we wrote
          // meanwhile) and what we lack (so they resend it).
          self->request(st.store, caf::infinite, store_call_atom::value,
                        store_call{[](kv_store& s) { return s.info_ticks(); }})
              .then([self](value& msg) { publish(self, "info", msg); });
          send_missing(self, true);
        }
      },
      [self](backlog_atom, bool high) {
        // The store holds client writes while the broker lags (tree_store_actor.hpp).
        self->send(self->state.store, replication_backlog_atom::value, high);
      },
      [self](received_atom, const std::string& filter, const std::string& topic,
             const std::string& payload) {
        // Protocol traffic only through our own subscriptions, so an overlapping client
        // monitor never makes the ping actor see a message twice.
        if (self->state.own_filters.count(filter)) on_received(self, topic, payload);
        if (!self->state.monitors.empty()) forward_to_monitors(self, filter, topic, payload);
      },
      [self](msg_send_atom, const std::string& topic, std::string& payload) {
        self->send(self->state.bridge, publish_atom::value, topic, std::move(payload));
      },
      [self](msg_monitor_atom, const std::string& filter, caf::actor session, int64_t seq,
             bool raw) {
        self->monitor(session);
        self->state.monitors.push_back({session, seq, raw, filter});
        self->send(self->state.bridge, subscribe_atom::value, filter);
      },
      [self](msg_unmonitor_atom, const caf::actor& session, int64_t seq) {
        auto& ms = self->state.monitors;
        ms.erase(std::remove_if(ms.begin(), ms.end(),
                                [&](const backend_monitor& m) {
                                  return m.session == session && m.seq == seq;
                                }),
                 ms.end());
      },
      [self](local_update_atom, value& msg) { publish(self, "update", msg); },
      [self](ping_timer_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.ping_generation || !st.ping) return;
        // Refresh the advertised [tock, tick] right before the actor may ping.
        self->request(st.store, caf::infinite, store_call_atom::value,
                      store_call{[](kv_store& s) { return s.ping_value(); }})
            .then([self, gen](value& v) {
              auto& st = self->state;
              if (gen != st.ping_generation) return;
              st.ping->set_value(v);
              st.ping->on_timer(st.now());
              schedule_ping(self);
            });
      },
      [self](anti_entropy_atom) {
        // Deliberate addition to the original: it asks for missing ticks only when its ping
        // turn comes (TagEvent), and a node that rarely gets a turn after a heal (§4.5's
        // starvation) can stay behind for minutes. Each cycle we ask for what we know we lack;
        // every third round we also forget what we asked before, in case the answer was lost.
        auto& st = self->state;
        self->delayed_send(self, seconds(st.opts.ping_cycle), anti_entropy_atom::value);
        if (!st.ready || !st.link_up) return;
        if (++st.anti_entropy_rounds % 3 == 0)
          store_do(self, [](kv_store& s) {
            s.clear_seen_missing();
            return value();
          });
        send_missing(self, false);
      },
      [self](del_timer_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.del_generation || !st.del_ping) return;
        st.del_ping->on_timer(st.now());
        schedule_del_ping(self);
      },
      [self](collect_atom) {
        // Every 10 s (§2.6): hand the deletions since the last round to the deleter group and
        // follow changes of its configuration (None, "actor", "del").
        self->delayed_send(self, std::chrono::seconds(10), collect_atom::value);
        self->request(self->state.store, caf::infinite, store_call_atom::value,
                      store_call{[](kv_store& s) {
                        action_result r =
                            s.handle(0, value(map{{"action", "get_internal"},
                                                  {"path", value::make_path({"actor", "del"})}}));
                        const value* cfg =
                            r.messages.empty() ? nullptr : r.messages[0].find("value");
                        array config;  // empty: no entry; else the entry's value
                        if (cfg) config.push_back(*cfg);
                        return value(array{s.data().take_deleted().to_value(),
                                           value(s.clock().next()), value(std::move(config))});
                      }})
            .then([self](value& res) {
              auto& st = self->state;
              const array& a = res.as_array();
              std::optional<value> cfg;
              if (!a[2].as_array().empty()) cfg = a[2].as_array()[0];
              if (auto change = st.del->configure(cfg)) {
                spdlog::info("gossip {}: deleter group of {} nodes, {}", st.opts.node_name,
                             change->length, change->enable ? "member" : "not a member");
                if (change->enable)
                  st.del_ping->enable(st.now(), change->length);
                else
                  st.del_ping->disable(change->length);
                schedule_del_ping(self);
              }
              node_set ns;
              std::string err;
              if (node_set::from_value(a[0], ns, err))
                st.del->add_deleted(static_cast<uint64_t>(a[1].as_int64()), std::move(ns));
            });
      },
      [self](recover_atom, uint64_t id, int step) {
        auto& st = self->state;
        auto it = st.recoveries.find(id);
        if (it == st.recoveries.end()) return;
        recovery& r = it->second;
        double clock = st.opts.ping_cycle;
        double f = std::ldexp(1.0, -r.prio);
        if (step == 1) {
          if (!r.signal1)
            self->request(st.store, caf::infinite, store_call_atom::value,
                          store_call{[](kv_store& s) { return s.info_ticks(); }})
                .then([self](value& msg) { publish(self, "info", msg); });
          self->delayed_send(self, seconds(clock * (2 - f) / 2), recover_atom::value, id, 2);
        } else if (step == 2) {
          if (!r.signal2) send_missing(self, true);
          self->delayed_send(self, seconds(clock * (1 - f)), recover_atom::value, id, 3);
        } else {
          run_send_missing(self, r.prio);
          st.recoveries.erase(it);
          store_do(self, [](kv_store& s) {
            s.clear_seen_missing();
            return value();
          });
        }
      },
      [self](resend_atom) {
        auto& st = self->state;
        self->request(st.store, caf::infinite, store_call_atom::value,
                      store_call{[](kv_store& s) { return value(s.missing_data()); }})
            .then([self](value& msgs) {
              auto& st = self->state;
              for (const auto& m : msgs.as_array())
                publish(self, m.find("path") ? "update" : "info", m);
              if (st.resend_again) {
                st.resend_again = false;
                self->delayed_send(self, seconds(st.opts.ping_gap), resend_atom::value);
              } else {
                st.resend_running = false;
              }
            });
      },
      [self](fetched_atom, bool ok, const std::string& detail) {
        auto& st = self->state;
        st.fetch_running = false;
        st.fetcher = caf::actor{};
        bool was_probe = std::exchange(st.probing, false);
        if (!ok && was_probe) {
          spdlog::info(
              "gossip {}: no peer of kv.hostmap serves yet; waiting for the ping "
              "protocol to name one",
              st.opts.node_name);
          if (!st.pending_good.empty()) start_fetch(self, std::exchange(st.pending_good, {}));
          return;
        }
        if (!ok) {
          spdlog::warn("gossip {}: fetching the tree failed: {}", st.opts.node_name, detail);
          return;  // the next GoodNodeEvent tries again
        }
        spdlog::info("gossip {}: fetched the tree ({})", st.opts.node_name, detail);
        if (st.opts.authoritative)
          store_do(self, [](kv_store& s) {
            s.discard_all_missing();
            return value();
          });
        st.asking_missing = true;
        st.ask_clock = st.opts.ping_gap;
        ask_missing_round(self);
      },
      [self](ask_missing_atom) { ask_missing_round(self); },
      [self](ready_atom) -> caf::result<bool> {
        auto& st = self->state;
        if (st.ready) return true;
        auto rp = self->make_response_promise<bool>();
        st.ready_waiters.push_back(rp);
        return rp;
      },
  };
}

}  // namespace

caf::actor spawn_gossip(caf::actor_system& sys, gossip_options opts, caf::actor tree_store,
                        std::function<caf::actor(caf::actor owner)> make_bridge) {
  return sys.spawn(gossip_impl, std::move(opts), std::move(tree_store), std::move(make_bridge));
}

}  // namespace moatkv
