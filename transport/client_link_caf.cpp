// The caf transport of the client library: a node's remote actor interface
// (messages/remote_api.hpp), spoken by a forwarder actor in a small actor system of the link's
// own. The forwarder attaches (so the node's session lives exactly as long as it does), turns
// the kv_client's requests into the typed messages, and turns replies, watch notifications and
// the node's down_msg back into msgpack-protocol messages in an inbox the I/O thread reads.
#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <mutex>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/msgpack_codec.hpp"
#include "messages/remote_api.hpp"
#include "transport/client_link.hpp"
#include "transport/kv_client.hpp"

namespace moatkv {

namespace {

// Messages from the forwarder to the I/O thread; the eventfd is readable while any wait.
struct inbox {
  std::mutex mx;
  std::deque<value> messages;
  std::string closed;  // non-empty: the connection is gone, and why
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  ~inbox() {
    if (efd >= 0) close(efd);
  }
  void signal() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(efd, &one, sizeof one);
  }
  void push(value msg) {
    std::lock_guard<std::mutex> lock(mx);
    messages.push_back(std::move(msg));
    signal();
  }
  void close_with(std::string why) {
    std::lock_guard<std::mutex> lock(mx);
    if (closed.empty()) closed = std::move(why);
    signal();
  }
};

using send_atom = caf::atom_constant<caf::atom("kvc_send")>;

struct forwarder_state {
  std::shared_ptr<inbox> box;
  remote_api_actor api;
  remote_session_actor session;
  std::map<int64_t, int64_t> watch_seq;         // node's watch id -> request seq
  std::map<int64_t, int64_t> seq_watch;         // request seq -> node's watch id
  std::map<int64_t, std::vector<value>> early;  // events of ids not known yet
  static inline const char* name = "kv_client_forwarder";
};

using forwarder = caf::stateful_actor<forwarder_state>;

value map_take(map& m, std::string_view key) {
  for (auto it = m.begin(); it != m.end(); ++it)
    if (it->first.is_str() && it->first.as_str() == key) {
      value v = std::move(it->second);
      m.erase(it);
      return v;
    }
  return value();
}

value with_seq(value msg, int64_t seq) {
  if (!msg.is_map()) msg = value(map{{"result", std::move(msg)}});
  map& m = msg.as_map();
  map_erase(m, "seq");
  map_erase(m, "wseq");
  m.emplace_back("seq", seq);
  return msg;
}

value state_msg(int64_t seq, const char* state) {
  return value(map{{"state", state}, {"seq", seq}});
}

std::string error_text(forwarder* self, const caf::error& e) {
  std::string text = remote_error_text(e);
  return text.empty() ? "remote request failed: " + self->system().render(e) : text;
}

caf::behavior forwarder_actor(forwarder* self, std::shared_ptr<inbox> box, remote_api_actor api,
                              std::chrono::milliseconds timeout) {
  self->state.box = std::move(box);
  self->state.api = api;
  self->set_down_handler([self](caf::down_msg&) {
    self->state.box->close_with("the node is gone (down_msg)");
    self->quit();
  });
  // Undecodable bytes from the node end the link rather than leave the I/O thread waiting.
  self->set_exception_handler([self](std::exception_ptr& ep) -> caf::error {
    std::string why = "the caf transport failed";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      why += std::string(": ") + e.what();
    } catch (...) {
    }
    self->state.box->close_with(why);
    return caf::exit_reason::unhandled_exception;
  });
  auto fail = [self](int64_t seq) {
    return [self, seq](caf::error& e) {
      self->state.box->push(value(map{{"error", error_text(self, e)}, {"seq", seq}}));
    };
  };
  auto single = [self](int64_t seq) {
    return [self, seq](packed_value& p) { self->state.box->push(with_seq(unpack(p), seq)); };
  };
  // A streamed reply (an array of messages) as the msgpack protocol sends it.
  auto streamed = [self](int64_t seq) {
    return [self, seq](packed_value& p) {
      auto& box = *self->state.box;
      box.push(state_msg(seq, "start"));
      value all = unpack(p);
      if (all.is_array())
        for (auto& m : all.as_array()) {
          const value* st = m.is_map() ? m.find("state") : nullptr;
          if (st && st->is_str() && (st->as_str() == "start" || st->as_str() == "end")) continue;
          box.push(with_seq(std::move(m), seq));
        }
      box.push(state_msg(seq, "end"));
    };
  };
  auto event = [self](int64_t id, value msg) {
    auto& st = self->state;
    auto it = st.watch_seq.find(id);
    if (it == st.watch_seq.end()) {
      st.early[id].push_back(std::move(msg));
      return;
    }
    st.box->push(with_seq(std::move(msg), it->second));
  };
  constexpr auto inf = caf::infinite;
  return {
      [=](rk_attach_atom) {
        auto rp = self->make_response_promise();
        self->request(self->state.api, timeout, rk_attach_atom::value)
            .then(
                [=](caf::actor& s, packed_value& greeting) mutable {
                  self->state.session = caf::actor_cast<remote_session_actor>(s);
                  self->monitor(s);
                  self->monitor(self->state.api);
                  rp.deliver(std::move(greeting));
                },
                [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
        return rp;
      },
      [=](send_atom, int64_t seq, const std::string& action, const packed_value& packed) {
        auto& st = self->state;
        map params = unpack(packed).as_map();
        value path = map_take(params, "path");
        auto& s = st.session;
        auto opts = [&] { return pack(value(params)); };
        if (action == "get_value") {
          self->request(s, inf, rk_get_atom::value, pack(path), opts())
              .then(single(seq), fail(seq));
        } else if (action == "set_value") {
          value v = map_take(params, "value");
          self->request(s, inf, rk_set_atom::value, pack(path), pack(v), opts())
              .then(single(seq), fail(seq));
        } else if (action == "delete_value") {
          self->request(s, inf, rk_del_atom::value, pack(path), opts())
              .then(single(seq), fail(seq));
        } else if (action == "delete_tree") {
          // As over msgpack: with nchain a stream of the deleted entries, else one {changed}.
          int64_t nchain = 0;
          if (const value* n = map_find(params, "nchain")) n->get_int(nchain);
          if (nchain > 0) {
            self->request(s, inf, rk_deltree_atom::value, pack(path), opts())
                .then(streamed(seq), fail(seq));
          } else {
            self->request(s, inf, rk_deltree_atom::value, pack(path), opts())
                .then(
                    [self, seq](packed_value& p) {
                      value all = unpack(p);
                      value first = all.is_array() && !all.as_array().empty()
                                        ? std::move(all.as_array().front())
                                        : value(map{});
                      self->state.box->push(with_seq(std::move(first), seq));
                    },
                    fail(seq));
          }
        } else if (action == "get_tree") {
          self->request(s, inf, rk_tree_atom::value, pack(path), opts())
              .then(streamed(seq), fail(seq));
        } else if (action == "enum") {
          self->request(s, inf, rk_enum_atom::value, pack(path), opts())
              .then(single(seq), fail(seq));
        } else if (action == "get_state") {
          self->request(s, inf, rk_state_atom::value, opts()).then(single(seq), fail(seq));
        } else if (action == "diffie_hellman") {
          self->request(s, inf, rk_dh_atom::value, opts()).then(single(seq), fail(seq));
        } else if (action == "auth") {
          // A stream in the msgpack protocol: {state: start} … {state: end}.
          self->request(s, inf, rk_login_atom::value, opts())
              .then(
                  [self, seq](packed_value&) {
                    self->state.box->push(state_msg(seq, "start"));
                    self->state.box->push(state_msg(seq, "end"));
                  },
                  fail(seq));
        } else if (action == "watch") {
          self->request(s, inf, rk_watch_atom::value, pack(path), opts())
              .then(
                  [self, seq](int64_t id) {
                    auto& st = self->state;
                    st.watch_seq[id] = seq;
                    st.seq_watch[seq] = id;
                    st.box->push(state_msg(seq, "start"));
                    if (auto it = st.early.find(id); it != st.early.end()) {
                      for (auto& m : it->second) st.box->push(with_seq(std::move(m), seq));
                      st.early.erase(it);
                    }
                  },
                  fail(seq));
        } else if (action == "stop") {
          int64_t task = 0;
          if (const value* t = map_find(params, "task")) t->get_int(task);
          auto it = st.seq_watch.find(task);
          if (it == st.seq_watch.end()) {
            st.box->push(value(map{{"result", false}, {"seq", seq}}));
            return;
          }
          self->request(s, inf, rk_unwatch_atom::value, it->second)
              .then(
                  [self, seq](bool r) {
                    self->state.box->push(value(map{{"result", r}, {"seq", seq}}));
                  },
                  fail(seq));
        } else {
          st.box->push(value(map{{"error", "the remote actor interface has no action '" + action +
                                               "' (use the msgpack transport)"},
                                 {"seq", seq}}));
        }
      },
      [=](rk_wevent_atom, int64_t id, packed_value& p) { event(id, unpack(p)); },
      [=](rk_wend_atom, int64_t id, packed_value& p) {
        auto& st = self->state;
        value info = unpack(p);
        map end{{"state", "end"}};
        if (info.is_map())
          if (const value* e = info.find("error")) end.emplace_back("error", *e);
        event(id, value(std::move(end)));
        if (auto it = st.watch_seq.find(id); it != st.watch_seq.end()) {
          st.seq_watch.erase(it->second);
          st.watch_seq.erase(it);
        }
      },
  };
}

class caf_link final : public client_link {
 public:
  explicit caf_link(const kv_client_options& o) : box_(std::make_shared<inbox>()) {
    if (box_->efd < 0) throw client_error("cannot create an eventfd for the caf transport");
    cfg_.load<caf::io::middleman>();
    add_remote_api_types(cfg_);
    // As the node: the sharing scheduler has a third of the round-trip latency of work
    // stealing on small machines (DEPENDENCIES.md), and a client needs few threads.
    cfg_.set("scheduler.policy", caf::atom("sharing"));
    cfg_.set("scheduler.max-threads", 2);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    auto api = sys_->middleman().remote_actor<remote_api_actor>(o.host, o.port);
    if (!api)
      throw client_error("cannot attach to the remote actors on " + o.host + ":" +
                         std::to_string(o.port) + ": " + sys_->render(api.error()));
    fwd_ = sys_->spawn(forwarder_actor, box_, *api, o.timeout);
    try {
      attach(o);
    } catch (...) {
      caf::anon_send_exit(fwd_, caf::exit_reason::user_shutdown);  // else ~actor_system waits
      throw;
    }
  }

  void attach(const kv_client_options& o) {
    caf::scoped_actor self{*sys_};
    caf::error failed;
    self->request(fwd_, o.timeout + std::chrono::milliseconds(100), rk_attach_atom::value)
        .receive([&](packed_value& g) { greeting_ = unpack(g); },
                 [&](caf::error& e) { failed = std::move(e); });
    if (failed) {
      // A refusal by the node ("too many connections"), worded as over msgpack.
      if (std::string refusal = remote_error_text(failed); !refusal.empty())
        throw client_error("the server refused the connection: " + refusal);
      std::string text =
          failed == caf::sec::request_timeout
              ? "no reply from the node within " + std::to_string(o.timeout.count()) + " ms"
              : sys_->render(failed);
      throw client_error("cannot attach to the remote actors on " + o.host + ":" +
                         std::to_string(o.port) + ": " + text);
    }
  }

  ~caf_link() override {
    // The forwarder before the system: the system's destructor waits for its actors. With the
    // forwarder goes the node's session, and with it its watches.
    caf::anon_send_exit(fwd_, caf::exit_reason::user_shutdown);
    fwd_ = nullptr;
    sys_.reset();
  }

  const value& greeting() const override { return greeting_; }
  int wait_fd() const override { return box_->efd; }

  int64_t send(const std::string& action, map params) override {
    int64_t seq = next_seq_++;
    caf::anon_send(fwd_, send_atom::value, seq, action, pack(value(std::move(params))));
    return seq;
  }

  void flush() override {}

  std::optional<value> poll_message() override {
    std::lock_guard<std::mutex> lock(box_->mx);
    if (box_->messages.empty()) {
      uint64_t n;
      [[maybe_unused]] auto r = read(box_->efd, &n, sizeof n);  // drained: not readable
      if (!box_->closed.empty()) throw client_error(box_->closed);
      return std::nullopt;
    }
    value msg = std::move(box_->messages.front());
    box_->messages.pop_front();
    return msg;
  }

 private:
  std::shared_ptr<inbox> box_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::actor fwd_;
  value greeting_;
  int64_t next_seq_ = 1;
};

}  // namespace

std::unique_ptr<client_link> open_caf_link(const kv_client_options& opts) {
  return std::make_unique<caf_link>(opts);
}

}  // namespace moatkv
