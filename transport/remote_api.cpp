#include "transport/remote_api.hpp"

#include <map>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/tree_store/depth_compression.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/node_messages.hpp"
#include "messages/remote_api.hpp"
#include "transport/session.hpp"

namespace moatkv {

namespace {

// What a request waits for, by the seq the session gave it.
struct pending_request {
  enum class kind { single, stream, login, watch };
  kind k = kind::single;
  caf::response_promise rp;
  array prefix;        // stream / watch: the request path, to expand the streamed paths
  caf::actor watcher;  // watch: who gets the notifications
  bool cancelled = false;
};

struct watch_state {
  caf::actor watcher;
  path_longener longener;
};

struct session_state {
  uint64_t conn = 0;
  caf::actor store;
  caf::actor owner;
  caf::typed_response_promise<caf::actor, packed_value> attach_rp;
  int64_t next_seq = 1;
  std::unordered_map<int64_t, pending_request> pending;
  std::map<int64_t, watch_state> watches;
  std::unordered_set<caf::actor_addr> monitored;  // watchers (the owner aside)
  size_t max_watches = 0;
  static inline const char* name = "remote_session";
};

// A broker without connections, as the tree_store: it runs on the middleman's I/O thread with
// the tree_store and the middleman's own broker, so a request crosses no thread inside the
// node (measured on 2 cores, A/B on one build: the p50 of a get from a remote client was
// 168-206 µs with the session as a scheduled actor, 110-126 µs as a broker).
using session_actor = caf::io::stateful_broker<session_state>;

// The first `error` among a reply's messages (the original puts a stream's error inside it).
const value* find_error(const std::vector<value>& msgs) {
  for (const auto& m : msgs)
    if (m.is_map())
      if (const value* e = m.find("error")) return e;
  return nullptr;
}

std::string error_string(const value& e) {
  return e.is_str() ? e.as_str() : debug_string(e);
}

value unpack_or_nil(const packed_value& p) {
  return p.msgpack.empty() ? value() : unpack(p);
}

// Path elements of a request path (nil or absent: the root).
array path_elements(const value& p) {
  return p.is_sequence() ? p.elements() : array{};
}

void send_end(session_actor* self, const caf::actor& watcher, int64_t id, value info) {
  self->send(watcher, rk_wend_atom::value, id, pack(info));
}

void watch_watcher(session_actor* self, const caf::actor& watcher) {
  if (!watcher || watcher == self->state.owner) return;
  if (self->state.monitored.insert(watcher.address()).second) self->monitor(watcher);
}

// Builds the msgpack protocol's request map and sends it to the tree_store; the reply comes
// back as (reply_atom, reply_batch) and completes `rp`.
caf::response_promise forward(session_actor* self, pending_request::kind k, const char* action,
                              const packed_value* path, const packed_value* val,
                              const packed_value& opts, caf::actor watcher = {}) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  map req;
  try {
    value o = unpack_or_nil(opts);
    if (!o.is_nil() && !o.is_map())
      throw decode_error(std::string("the options must be a map, not ") + kind_name(o));
    if (o.is_map())
      for (auto& [key, v] : o.as_map()) {
        if (key.is_str() && (key.as_str() == "action" || key.as_str() == "seq")) continue;
        req.emplace_back(std::move(key), std::move(v));
      }
    if (path) map_set(req, value("path"), unpack_or_nil(*path));
    if (val) map_set(req, value("value"), unpack(*val));
  } catch (const decode_error& e) {
    rp.deliver(
        make_remote_error(std::string("ValueError('undecodable request: ") + e.what() + "')"));
    return rp;
  }
  int64_t seq = st.next_seq++;
  req.emplace_back("action", action);
  req.emplace_back("seq", seq);
  pending_request p;
  p.k = k;
  p.rp = rp;
  if (const value* pv = map_find(req, "path")) p.prefix = path_elements(*pv);
  p.watcher = std::move(watcher);
  st.pending.emplace(seq, std::move(p));
  request_batch batch;
  batch.requests.emplace_back(std::move(req));
  self->send(st.store, request_atom::value, st.conn, std::move(batch));
  return rp;
}

void take_reply(session_actor* self, int64_t seq, action_result& res) {
  auto& st = self->state;
  auto it = st.pending.find(seq);
  if (it == st.pending.end()) return;
  pending_request p = std::move(it->second);
  st.pending.erase(it);
  if (const value* err = find_error(res.messages)) {
    if (res.open) self->send(st.store, cancel_atom::value, st.conn, seq);
    p.rp.deliver(make_remote_error(error_string(*err)));
    return;
  }
  switch (p.k) {
    case pending_request::kind::login:
      p.rp.deliver(pack(value(map{})));
      return;
    case pending_request::kind::single: {
      value msg = res.messages.empty() ? value(map{}) : std::move(res.messages.front());
      if (!msg.is_map()) msg = value(map{{"result", std::move(msg)}});
      p.rp.deliver(pack(msg));
      return;
    }
    case pending_request::kind::stream: {
      path_longener longener(p.prefix);
      array out;
      for (auto& m : res.messages) {
        std::string error;
        if (!longener.apply(m, error)) spdlog::warn("remote session {}: {}", st.conn, error);
        out.push_back(std::move(m));
      }
      p.rp.deliver(pack(value(std::move(out))));
      return;
    }
    case pending_request::kind::watch: {
      p.rp.deliver(seq);
      watch_state w{p.watcher, path_longener(p.prefix)};
      for (auto& m : res.messages) {
        std::string error;
        if (!w.longener.apply(m, error)) spdlog::warn("remote session {}: {}", st.conn, error);
        self->send(w.watcher, rk_wevent_atom::value, seq, pack(m));
      }
      if (p.cancelled || !res.open) {
        if (res.open) self->send(st.store, cancel_atom::value, st.conn, seq);
        send_end(self, w.watcher, seq, value(map{}));
        return;
      }
      st.watches.emplace(seq, std::move(w));
      return;
    }
  }
}

void end_watch(session_actor* self, std::map<int64_t, watch_state>::iterator it, value info,
               bool tell_watcher) {
  auto& st = self->state;
  self->send(st.store, cancel_atom::value, st.conn, it->first);
  if (tell_watcher) send_end(self, it->second.watcher, it->first, std::move(info));
  st.watches.erase(it);
}

caf::behavior session_impl(session_actor* self, caf::actor store, caf::actor owner,
                           caf::typed_response_promise<caf::actor, packed_value> attach_rp,
                           remote_api_limits limits) {
  auto& st = self->state;
  st.conn = new_connection_id();
  st.store = store;
  st.owner = owner;
  st.attach_rp = std::move(attach_rp);
  st.max_watches = limits.max_watches;
  // The connection slot taken by the attach is given back however the session ends.
  if (limits.connections)
    self->attach_functor([counter = limits.connections] { counter->fetch_sub(1); });
  self->monitor(owner);
  // However the session ends, its connection and watches go with it.
  self->attach_functor(
      [store, conn = st.conn] { caf::anon_send(store, closed_atom::value, conn); });
  // The login throttle counts failures per address: the owner's CAF node is its address.
  self->send(store, hello_atom::value, st.conn, caf::actor_cast<caf::actor>(self),
             "caf:" + caf::to_string(owner.node()));
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source == st.owner.address()) {
      self->quit();
      return;
    }
    st.monitored.erase(dm.source);
    for (auto it = st.watches.begin(); it != st.watches.end();) {
      auto next = std::next(it);
      if (it->second.watcher.address() == dm.source) end_watch(self, it, value(), false);
      it = next;
    }
  });
  // The node is stopping: end the watches as a watcher would see them end anyway.
  self->set_exit_handler([self](const caf::exit_msg& em) {
    auto& st = self->state;
    while (!st.watches.empty())
      end_watch(self, st.watches.begin(),
                value(map{{"error", "RuntimeError('the node is shutting down')"}}), true);
    self->quit(em.reason);
  });
  using k = pending_request::kind;
  return {
      [self](greeting_atom, value& greeting) {
        auto& st = self->state;
        if (st.attach_rp.pending())
          st.attach_rp.deliver(caf::actor_cast<caf::actor>(self), pack(greeting));
      },
      [self](reply_atom, reply_batch& batch) {
        for (auto& [seq, res] : batch.replies) take_reply(self, seq, res);
      },
      [self](event_atom, int64_t seq, value& msg) {
        auto it = self->state.watches.find(seq);
        if (it == self->state.watches.end()) return;
        std::string error;
        if (!it->second.longener.apply(msg, error))
          spdlog::warn("remote session {}: {}", self->state.conn, error);
        self->send(it->second.watcher, rk_wevent_atom::value, seq, pack(msg));
      },
      [self](rk_login_atom, const packed_value& req) {
        return forward(self, k::login, "auth", nullptr, nullptr, req);
      },
      [self](rk_dh_atom, const packed_value& req) {
        return forward(self, k::single, "diffie_hellman", nullptr, nullptr, req);
      },
      [self](rk_get_atom, const packed_value& path, const packed_value& opts) {
        return forward(self, k::single, "get_value", &path, nullptr, opts);
      },
      [self](rk_set_atom, const packed_value& path, const packed_value& val,
             const packed_value& opts) {
        return forward(self, k::single, "set_value", &path, &val, opts);
      },
      [self](rk_del_atom, const packed_value& path, const packed_value& opts) {
        return forward(self, k::single, "delete_value", &path, nullptr, opts);
      },
      [self](rk_deltree_atom, const packed_value& path, const packed_value& opts) {
        return forward(self, k::stream, "delete_tree", &path, nullptr, opts);
      },
      [self](rk_tree_atom, const packed_value& path, const packed_value& opts) {
        return forward(self, k::stream, "get_tree", &path, nullptr, opts);
      },
      [self](rk_enum_atom, const packed_value& path, const packed_value& opts) {
        return forward(self, k::single, "enum", &path, nullptr, opts);
      },
      [self](rk_state_atom, const packed_value& opts) {
        return forward(self, k::single, "get_state", nullptr, nullptr, opts);
      },
      [self](rk_watch_atom, const packed_value& path,
             const packed_value& opts) -> caf::result<int64_t> {
        auto& st = self->state;
        size_t n = st.watches.size();
        for (const auto& [seq, p] : st.pending)
          if (p.k == k::watch) ++n;
        if (n >= st.max_watches)
          return make_remote_error(
              "RuntimeError('too many open watches on this connection: " + std::to_string(n) +
              " (kv.server.limits.streams); stop some first')");
        auto watcher = caf::actor_cast<caf::actor>(self->current_sender());
        watch_watcher(self, watcher);
        return forward(self, k::watch, "watch", &path, nullptr, opts, watcher);
      },
      [self](rk_unwatch_atom, int64_t id) {
        auto& st = self->state;
        if (auto it = st.watches.find(id); it != st.watches.end()) {
          end_watch(self, it, value(map{}), true);
          return true;
        }
        auto p = st.pending.find(id);
        if (p == st.pending.end() || p->second.k != k::watch || p->second.cancelled) return false;
        p->second.cancelled = true;  // ended as soon as the tree_store answers
        return true;
      },
  };
}

struct front_state {
  caf::actor store;
  remote_api_limits limits;
  std::unordered_set<caf::actor> sessions;
  static inline const char* name = "remote_api";
};

remote_api_actor::behavior_type front_impl(remote_api_actor::stateful_pointer<front_state> self,
                                           caf::actor store, remote_api_limits limits) {
  self->state.store = std::move(store);
  self->state.limits = std::move(limits);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& s = self->state.sessions;
    for (auto it = s.begin(); it != s.end(); ++it)
      if (it->address() == dm.source) {
        s.erase(it);
        return;
      }
  });
  // Stopping the node stops every session with it (the actor system waits for them all).
  self->set_exit_handler([self](const caf::exit_msg& em) {
    for (const auto& s : self->state.sessions) self->send_exit(s, em.reason);
    self->state.sessions.clear();
    self->quit(em.reason);
  });
  return {
      [self](rk_attach_atom) -> caf::result<caf::actor, packed_value> {
        auto owner = caf::actor_cast<caf::actor>(self->current_sender());
        if (!owner) return caf::make_error(caf::sec::invalid_argument);
        const remote_api_limits& lim = self->state.limits;
        if (lim.connections) {
          int64_t open = lim.connections->fetch_add(1);
          if (open >= lim.max_connections) {
            lim.connections->fetch_sub(1);
            spdlog::warn(
                "remote client {}: refused, {} connections are open "
                "(kv.server.limits.connections)",
                caf::to_string(owner.node()), open);
            return make_remote_error("RuntimeError('too many connections: " + std::to_string(open) +
                                     " are open (kv.server.limits.connections)')");
          }
        }
        auto rp = self->make_response_promise<caf::actor, packed_value>();
        auto s = self->system().middleman().spawn_broker(session_impl, self->state.store, owner, rp,
                                                         lim);
        self->monitor(s);
        self->state.sessions.insert(s);
        return rp;
      },
  };
}

}  // namespace

remote_api_handle start_remote_api(caf::actor_system& sys, caf::actor store,
                                   const std::string& host, uint16_t port,
                                   remote_api_limits limits) {
  remote_api_handle out;
  auto front = sys.spawn(front_impl, std::move(store), std::move(limits));
  auto published = sys.middleman().publish(front, port, host.c_str(), true);
  if (!published) {
    out.error = "cannot publish the remote actor interface on " + host + ":" +
                std::to_string(port) + ": " + sys.render(published.error());
    caf::anon_send_exit(front, caf::exit_reason::user_shutdown);
    return out;
  }
  out.actor = caf::actor_cast<caf::actor>(front);
  out.port = *published;
  return out;
}

void stop_remote_api(caf::actor_system& sys, remote_api_handle& h) {
  if (!h.actor) return;
  auto front = caf::actor_cast<remote_api_actor>(h.actor);
  sys.middleman().unpublish(front, h.port);
  caf::anon_send_exit(h.actor, caf::exit_reason::user_shutdown);
  h.actor = nullptr;
}

}  // namespace moatkv
