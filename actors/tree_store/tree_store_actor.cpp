#include "actors/tree_store/tree_store_actor.hpp"

#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/tree_store/actions.hpp"
#include "messages/node_messages.hpp"

namespace moatkv {

namespace {

struct tree_store_state {
  std::unique_ptr<kv_store> store;
  std::unordered_map<uint64_t, caf::actor> sessions;
  tree_store_options opts;
  // Watch events raised while a request runs wait here, so the request's own reply reaches
  // its client first (as in the original: a set's reply, then the watchers' events).
  bool in_request = false;
  std::vector<std::tuple<uint64_t, int64_t, value>> held_events;
};

void deliver_event(caf::stateful_actor<tree_store_state>* self, uint64_t conn, int64_t seq,
                   value msg) {
  auto it = self->state.sessions.find(conn);
  if (it != self->state.sessions.end())
    self->send(it->second, event_atom::value, seq, std::move(msg));
}

caf::behavior tree_store_impl(caf::stateful_actor<tree_store_state>* self, tree_store_options opts,
                              std::shared_ptr<tock_clock> clock) {
  auto& st = self->state;
  st.opts = opts;
  st.store = std::make_unique<kv_store>(opts.node_name, std::move(clock));
  if (opts.has_init)
    st.store->set_initial_root(opts.init_value);
  else if (opts.standalone)
    st.store->init_own_tick();
  st.store->set_watch_emitter([self](uint64_t conn, int64_t seq, value msg) {
    if (self->state.in_request)
      self->state.held_events.emplace_back(conn, seq, std::move(msg));
    else
      deliver_event(self, conn, seq, std::move(msg));
  });
  self->set_down_handler([self](const caf::down_msg& dm) {
    // A session that died without saying goodbye: forget its connection.
    for (auto it = self->state.sessions.begin(); it != self->state.sessions.end(); ++it) {
      if (it->second.address() == dm.source) {
        self->state.store->drop_connection(it->first);
        self->state.sessions.erase(it);
        return;
      }
    }
  });
  return {
      [self](hello_atom, uint64_t conn, caf::actor session) {
        self->monitor(session);
        self->state.sessions[conn] = session;
        self->send(session, greeting_atom::value,
                   self->state.store->greeting(self->state.opts.client_qlen));
      },
      [self](request_atom, uint64_t conn, const value& req) {
        auto it = self->state.sessions.find(conn);
        if (it == self->state.sessions.end()) return;
        int64_t seq = 0;
        if (const value* s = req.find("seq")) s->get_int(seq);
        self->state.in_request = true;
        action_result res = self->state.store->handle(conn, req);
        self->state.in_request = false;
        self->send(it->second, reply_atom::value, seq, std::move(res));
        for (auto& [c, s, m] : self->state.held_events) deliver_event(self, c, s, std::move(m));
        self->state.held_events.clear();
      },
      [self](cancel_atom, uint64_t conn, int64_t seq) {
        self->state.store->cancel_watch(conn, seq);
      },
      [self](store_call_atom, store_call& call) -> value {
        try {
          return call.fn(*self->state.store);
        } catch (const std::exception& e) {
          // A store call is internal code; log loudly but keep the single writer alive.
          spdlog::error("tree_store: store call failed: {}", e.what());
          return value(map{{"error", std::string(e.what())}});
        }
      },
      [self](closed_atom, uint64_t conn) {
        auto it = self->state.sessions.find(conn);
        if (it != self->state.sessions.end()) {
          self->demonitor(it->second);
          self->state.sessions.erase(it);
        }
        self->state.store->drop_connection(conn);
      },
  };
}

}  // namespace

caf::actor spawn_tree_store(caf::actor_system& sys, tree_store_options opts,
                            std::shared_ptr<tock_clock> clock) {
  return sys.spawn(tree_store_impl, std::move(opts), std::move(clock));
}

}  // namespace moatkv
