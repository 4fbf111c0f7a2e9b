// libFuzzer target: the bytes a client sends on one connection, as the node handles them.
//
// The path mirrors transport/session.cpp and actors/tree_store/tree_store_actor.cpp without
// CAF: a stream_decoder with the session's limits is fed the input in TCP-sized pieces; every
// decoded message that the session would forward to the tree_store (a map with an integer
// `seq` and a string `action`, not the session's own `stop` / `msg_send` / `msg_monitor`, not
// a seq in use) goes to kv_store::handle, and a `deferred` step (Diffie-Hellman, Argon2id) runs
// synchronously, as the crypto worker and the resume would. `save` / `log` build their records
// in memory, as the tree_store does before handing them to the persister. Every change is also
// encoded as the state log would record it. The session's own answers (errors, acks) need no
// store and are not modelled.
//
// Each input gets a fresh store with a few entries (values, a tombstone, an ACL, a `_test` user
// bound to it, a peer's update), so that replays are deterministic and inputs cannot grow one
// shared state. Work per input is bounded: at most `max_requests` requests reach the store.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "actors/persister/save_format.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/tree.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"

namespace {

using namespace moatkv;

constexpr uint64_t conn_id = 1;
constexpr int64_t client_qlen = 10;             // kv.server.buffer default
constexpr size_t max_requests = 200;            // per input: keeps every run fast
constexpr size_t max_deferred = 4;              // resume steps that defer again
constexpr size_t max_message_bytes = 1u << 20;  // smaller than the default 16 MiB: same code

value P(array elems) {
  return value::make_path(std::move(elems));
}

// A store that is not empty: data, a tombstone, a second node, meta entries. Built through the
// same entry points a node uses (client requests, a peer's update).
void populate(kv_store& store) {
  store.init_own_tick();
  auto req = [&](map m) { store.handle(0, value(std::move(m))); };
  req({{"action", "set_value"}, {"path", P({"demo", "a"})}, {"value", 123}});
  req({{"action", "set_value"},
       {"path", P({"demo", "b"})},
       {"value", map{{"x", "hello"}, {"y", 2}}}});
  req({{"action", "set_value"}, {"path", P({"demo", "c"})}, {"value", "gone"}});
  req({{"action", "delete_value"}, {"path", P({"demo", "c"})}});
  req({{"action", "set_value"}, {"path", P({"demo", 1, true, 2.5})}, {"value", bin{"\x01\x02"}}});
  // An ACL "ro" (read demo.*, nothing else) and a `_test` user bound to it.
  req({{"action", "set_internal"}, {"path", P({"acl", "ro", "demo", "#"})}, {"value", "rx"}});
  req({{"action", "set_internal"},
       {"path", P({"auth", "_test", "user", "joe"})},
       {"value", map{}}});
  req({{"action", "set_internal"},
       {"path", P({"auth", "_test", "user", "joe", "acl"})},
       {"value", map{{"key", "ro"}}}});
  // A peer's change with a two-link chain.
  store.receive_update(
      value(map{{"path", P({"peer", "x"})},
                {"value", "from n1"},
                {"chain", map{{"node", "n1"},
                              {"tick", 5},
                              {"prev", map{{"node", "fz"}, {"tick", 1}, {"prev", value()}}}}},
                {"tock", 40}}));
}

// The state log's view of every change (tree_store_actor: add_change_listener).
struct change_log {
  path_shortener shortener;
  size_t bytes = 0;
};

// handle() plus the deferred steps, as tree_store_actor's run_request / run_deferred do.
action_result run_request(kv_store& store, const value& req) {
  action_result res = store.handle(conn_id, req);
  for (size_t n = 0; res.deferred && n < max_deferred; ++n) {
    auto step = std::move(res.deferred);
    value v;
    try {
      v = step->work();  // crypto_worker_impl catches what the work throws
    } catch (const std::exception&) {
      return action_result{};
    }
    try {
      res = step->resume(std::move(v));  // run_deferred catches what resume throws
    } catch (const std::exception&) {
      return action_result{};
    }
  }
  return res;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto clock = std::make_shared<tock_clock>();
  kv_store store("fz", clock);
  size_t events = 0, updates = 0;
  store.set_watch_emitter([&](uint64_t, int64_t, value) { ++events; });
  store.set_update_emitter([&](value u) { updates += encode(u).size() > 0; });
  populate(store);

  change_log log;
  store.data().add_change_listener([&](const change_event& ev) {
    if (ev.e.event_chain().empty()) return;
    log.bytes += encode(update_record(ev.e, log.shortener)).size();
  });

  store.open_connection(conn_id, client_qlen);
  decode_limits limits;
  limits.max_bytes = max_message_bytes;
  stream_decoder decoder(limits);
  std::set<int64_t> open_streams;  // watches: their seq stays in use until stopped
  size_t requests = 0;

  // TCP delivers the bytes in pieces of any size; vary them so partial objects are exercised.
  static constexpr size_t piece_sizes[] = {1, 7, 64, 4096, 65536};
  size_t offset = 0, piece = 0;
  bool closed = false;
  while (offset < size && !closed && requests < max_requests) {
    size_t n = std::min(size - offset, piece_sizes[piece++ % std::size(piece_sizes)]);
    decoder.feed(reinterpret_cast<const char*>(data) + offset, n);
    offset += n;
    try {
      value msg;
      while (requests < max_requests && decoder.next(msg)) {
        // session.cpp handle_message: what never reaches the tree_store.
        if (!msg.is_map()) continue;
        const value* seqv = msg.find("seq");
        int64_t seq;
        if (!seqv || !seqv->get_int(seq)) continue;
        const value* action = msg.find("action");
        if (!action || !action->is_str()) continue;  // acks, hello, stream input
        const std::string& a = action->as_str();
        if (a == "stop") {
          int64_t task;
          if (const value* t = msg.find("task"); t && t->get_int(task) && open_streams.erase(task))
            store.cancel_watch(conn_id, task);
          continue;
        }
        if (a == "msg_send" || a == "msg_monitor") continue;  // the gossip actor's business
        if (open_streams.count(seq)) continue;                // "seq N is in use"
        ++requests;
        // tree_store_actor: save / log build their records there, for admins only.
        if (a == "save" || a == "log") {
          if (!store.is_admin(conn_id)) continue;
          const value* full = msg.find(a == "save" ? "full" : "fetch");
          save_options so;
          so.full = full && full->is_bool() && full->as_bool();
          std::string bytes = a == "log" ? encode(state_record(store)) : std::string();
          if (a == "save" || so.full) bytes += encode_save(store, so);
          continue;
        }
        action_result res = run_request(store, msg);
        if (res.stream && res.open) open_streams.insert(seq);
        for (const auto& m : res.messages) encode(m);  // the session encodes every reply
      }
    } catch (const decode_error&) {
      closed = true;  // the session answers with an error and closes
    }
    if (decoder.pending_bytes() > max_message_bytes) closed = true;
  }
  store.drop_connection(conn_id);
  return 0;
}
