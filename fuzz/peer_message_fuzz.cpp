// libFuzzer target: what other nodes send, as the node handles it.
//
// The input is a msgpack stream of frames [topic, payload] or [topic, payload, dt]:
//   * topic "moat/kv/update|info|ping|del": a backend message, handled as
//     actors/gossip/gossip_actor.cpp on_received does (decode, ping / delete actors, multipart
//     reassembly, then on_update → kv_store::apply_update and on_info → note_node +
//     process_info, with the resend round it may ask for);
//   * topic "fetch/get_tree", "fetch/get_tree_internal": one record of a peer's get_tree
//     stream during a join, handled as peer_fetch.cpp does (path_longener, apply_update);
//   * topic "fetch/get_state": the peer's get_state reply (process_state).
// payload: bin or str = the raw bytes as received (decoded here, as the gossip actor does);
// any other value is encoded first (so mutations of structured seeds stay well-framed).
// dt (seconds, default 0.05, clamped to [0, 600]) advances the harness clock before the frame,
// which drives the multipart expiry, the ping actors' timers and the 10 s deletion collect.
//
// The timer-driven work of the gossip actor that feeds on this input runs here too: the ping
// actor's timers (raw events → note_node, tag → info_missing), the deleter's collect and
// purges, and at the end the recovery messages (info_ticks, info_missing, missing_data); every
// message the node would publish is packed with pack_multipart. The store is named "n3" (a
// name the reference traces use, so "own" messages occur), is ready and holds a few entries.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "actors/gossip/deleter.hpp"
#include "actors/gossip/multipart.hpp"
#include "actors/gossip/ping_actor.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/range_set.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

namespace {

using namespace moatkv;

constexpr const char* own_name = "n3";
constexpr size_t max_frames = 200;  // per input: keeps every run fast

value P(array elems) {
  return value::make_path(std::move(elems));
}

struct harness {
  std::shared_ptr<tock_clock> clock = std::make_shared<tock_clock>();
  kv_store store{own_name, clock};
  multipart_assembler assembler;
  uint64_t part_seq = 0;
  size_t published = 0;
  double now = 0;
  double next_collect = 10;
  std::unique_ptr<ping_actor> ping;
  std::unique_ptr<ping_actor> del_ping;
  deleter del{own_name};
  path_longener data_longener{array{}};
  path_longener meta_longener{array{value()}};
  bool resend_wanted = false;
  bool missing_wanted = false;

  harness() {
    store.set_watch_emitter([](uint64_t, int64_t, value) {});
    store.set_update_emitter([this](value u) { publish(u); });
    store.init_own_tick();
    auto req = [&](map m) { store.handle(0, value(std::move(m))); };
    req({{"action", "set_value"}, {"path", P({"demo", "a"})}, {"value", 123}});
    req({{"action", "set_value"}, {"path", P({"demo", "b"})}, {"value", "x"}});
    req({{"action", "delete_value"}, {"path", P({"demo", "b"})}});
    // A deleter group, so the collect and purge paths run.
    req({{"action", "set_internal"},
         {"path", P({"actor", "del"})},
         {"value", map{{"nodes", array{"n1", "n2", "n3"}}}}});

    ping_actor::hooks h;
    h.send = [this](const value& msg) { published += encode(msg).size() > 0; };
    h.on_event = [this](const ping_actor::event& ev) { on_ping_event(ev); };
    h.random = [] { return 0.5; };
    ping = std::make_unique<ping_actor>(own_name, ping_config::server_ping(), h);
    ping_actor::hooks dh;
    dh.send = h.send;
    dh.on_event = [this](const ping_actor::event& ev) { on_del_event(ev); };
    dh.random = h.random;
    del_ping = std::make_unique<ping_actor>(own_name, ping_config::server_delete(), dh,
                                            /*enabled=*/false, /*send_raw=*/false);
    ping->start(now);
    del_ping->start(now);
  }

  // gossip_actor publish(): chunked as with kv.server.backend mqtt/serf.
  void publish(const value& msg) {
    for (auto& payload : pack_multipart(msg, own_name, part_seq)) published += payload.size() > 0;
  }

  void purge(const std::vector<node_set>& sets) {
    for (const auto& ns : sets) store.purge_deleted(ns);
  }

  // gossip_actor handle_ping_event.
  void on_ping_event(const ping_actor::event& ev) {
    if (std::holds_alternative<ping_actor::tag_event>(ev)) {
      missing_wanted = true;  // send_missing(false), after the hook returns
    } else if (auto* raw = std::get_if<ping_actor::raw_event>(&ev)) {
      if (auto p = ping_sender_of(raw->msg)) store.note_node(p->name, p->tick, p->tock);
    } else if (std::holds_alternative<ping_actor::recover_event>(ev)) {
      resend_wanted = true;  // the recovery ends in a resend round
    }
  }

  // gossip_actor handle_del_event.
  void on_del_event(const ping_actor::event& ev) {
    if (std::holds_alternative<ping_actor::tag_event>(ev)) {
      value v;
      purge(del.on_tag(clock->next(), del_ping->history().size(), v));
      del_ping->set_value(std::move(v));
    } else if (auto* p = std::get_if<ping_actor::ping_event>(&ev)) {
      purge(del.on_ping(p->msg).purge);
    }
  }

  // gossip_actor collect_atom: deletions to the deleter, its group from (None, "actor", "del").
  void collect() {
    action_result r =
        store.handle(0, value(map{{"action", "get_internal"}, {"path", P({"actor", "del"})}}));
    const value* cfg = r.messages.empty() ? nullptr : r.messages[0].find("value");
    std::optional<value> config;
    if (cfg) config = *cfg;
    if (auto change = del.configure(config)) {
      if (change->enable)
        del_ping->enable(now, change->length);
      else
        del_ping->disable(change->length);
    }
    node_set ns;
    std::string err;
    if (node_set::from_value(store.data().take_deleted().to_value(), ns, err))
      del.add_deleted(clock->next(), std::move(ns));
  }

  // Timers that are due: the ping actors (with the fresh [tock, tick] first), the collect.
  void advance(double dt) {
    now += dt;
    while (now >= next_collect) {
      collect();
      next_collect += 10;
    }
    if (auto d = ping->next_deadline(); d && *d <= now) {
      ping->set_value(store.ping_value());
      ping->on_timer(now);
    }
    if (auto d = del_ping->next_deadline(); d && *d <= now) del_ping->on_timer(now);
    flush_wanted();
  }

  // Work the hooks asked for (the actor posts it to itself).
  void flush_wanted() {
    if (missing_wanted) {
      missing_wanted = false;
      if (value m = store.info_missing(false); m.is_map()) publish(m);
    }
    if (resend_wanted) {
      resend_wanted = false;
      for (const auto& m : store.missing_data()) publish(m);
    }
  }

  // gossip_actor on_update.
  void on_update(value msg) {
    if (const value* n = msg.find("node");
        n && n->is_str() && n->as_str() == own_name && !msg.find("chain"))
      return;
    store.apply_update(msg);
  }

  // gossip_actor on_info.
  void on_info(value msg) {
    const value* n = msg.find("node");
    if (n && n->is_str() && n->as_str() == own_name) return;
    int64_t tick;
    if (n && n->is_str() && !n->as_str().empty() && msg.find("tick") &&
        msg.find("tick")->get_int(tick) && tick >= 0)
      store.note_node(n->as_str(), static_cast<uint64_t>(tick), std::nullopt);
    info_result res = store.process_info(msg);
    encode(res.to_value());  // the reply travels back to the gossip actor as a value
    if (res.resend_needed) resend_wanted = true;
  }

  // gossip_actor on_received.
  void received(const std::string& topic, const std::string& payload) {
    static const std::string prefix = "moat/kv/";
    if (topic.starts_with("fetch/")) return fetched(topic.substr(6), payload);
    if (topic.compare(0, prefix.size(), prefix) != 0) return;
    std::string action = topic.substr(prefix.size());
    value msg;
    try {
      msg = decode(payload);
    } catch (const decode_error&) {
      return;
    }
    if (action == "del") {
      del_ping->receive(msg, now);
      return;
    }
    if (action == "ping") {
      ping->receive(msg, now);
      return;
    }
    if (action != "update" && action != "info") return;
    if (!msg.is_map()) return;
    std::optional<value> whole;
    try {
      whole = assembler.feed(std::move(msg), now);
    } catch (const std::exception&) {
      return;
    }
    if (!whole || (whole->is_map() && whole->as_map().empty())) return;
    if (action == "update")
      on_update(std::move(*whole));
    else
      on_info(std::move(*whole));
  }

  // peer_fetch.cpp fetch_tree / get_state. The client connection decodes the stream and hands
  // every message that is not an error, start or end to the callback.
  void fetched(const std::string& what, const std::string& payload) {
    value rec;
    try {
      rec = decode(payload);
    } catch (const decode_error&) {
      return;
    }
    if (what == "get_state") {
      store.process_state(rec);
      return;
    }
    if (what != "get_tree" && what != "get_tree_internal") return;
    if (!rec.is_map() || rec.find("error")) return;
    if (const value* s = rec.find("state");
        s && s->is_str() && (s->as_str() == "start" || s->as_str() == "end"))
      return;
    std::string error;
    path_longener& l = what == "get_tree" ? data_longener : meta_longener;
    if (!l.apply(rec, error)) return;  // the fetch fails with an error
    store.apply_update(rec);
  }

  // What a node sends during and after a recovery (§5.6, §5.7).
  void finish() {
    publish(store.info_ticks());
    if (value m = store.info_missing(true); m.is_map()) publish(m);
    for (const auto& m : store.missing_data()) publish(m);
    store.clear_seen_missing();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  harness h;
  decode_limits limits;
  limits.max_bytes = 1u << 20;
  stream_decoder frames(limits);
  frames.feed(reinterpret_cast<const char*>(data), size);
  size_t n = 0;
  try {
    value f;
    while (n < max_frames && frames.next(f)) {
      if (!f.is_array() || f.as_array().size() < 2 || !f.as_array()[0].is_str()) continue;
      ++n;
      const array& a = f.as_array();
      double dt = 0.05;
      if (a.size() > 2 && a[2].is_number()) {
        int64_t i;
        dt = a[2].get_int(i) ? static_cast<double>(i) : a[2].is_float() ? a[2].as_double() : 0;
        if (!std::isfinite(dt)) dt = 0;
        dt = std::clamp(dt, 0.0, 600.0);
      }
      h.advance(dt);
      const value& p = a[1];
      std::string payload = p.is_bin() ? p.as_bin() : p.is_str() ? p.as_str() : encode(p);
      h.received(a[0].as_str(), payload);
      h.flush_wanted();
    }
  } catch (const decode_error&) {
    // The framing is the harness's, not the node's: stop at the first bad frame.
  }
  h.finish();
  return 0;
}
