#include "transport/remote_client.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/msgpack_codec.hpp"
#include "messages/remote_api.hpp"

namespace moatkv {

namespace {

// A failed request as the exception client_connection would throw.
[[noreturn]] void throw_error(caf::actor_system& sys, const caf::error& err,
                              std::chrono::milliseconds timeout) {
  std::string text = remote_error_text(err);
  if (!text.empty()) throw server_error(text);
  if (err == caf::sec::request_timeout)
    throw client_error("no reply from the node within " + std::to_string(timeout.count()) + " ms");
  throw client_error("remote request failed: " + sys.render(err));
}

}  // namespace

struct remote_client::impl {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<caf::scoped_actor> self;     // the session's owner; sends every request
  std::unique_ptr<caf::scoped_actor> monitor;  // gets the node's down_msg
  remote_api_actor api;
  remote_session_actor session;
  value greeting;
  std::chrono::milliseconds timeout;
  bool down = false;
  // The Diffie-Hellman key of this session: the node allows one exchange per connection.
  std::string session_key;

  ~impl() {
    // Handles and actors before the system: its destructor waits for its actors.
    session = nullptr;
    api = nullptr;
    monitor.reset();
    self.reset();
    sys.reset();
  }

  // One request from the owner, its packed reply unpacked.
  template <class... Ts>
  value call(Ts&&... xs) {
    value out;
    caf::error failed;
    (*self)
        ->request(session, timeout, std::forward<Ts>(xs)...)
        .receive([&](packed_value& p) { out = unpack(p); },
                 [&](caf::error& e) { failed = std::move(e); });
    if (failed) throw_error(*sys, failed, timeout);
    return out;
  }
};

remote_client::remote_client(const std::string& host, uint16_t port, remote_client_options opts)
    : impl_(std::make_unique<impl>()) {
  impl& d = *impl_;
  d.timeout = opts.timeout;
  d.cfg.load<caf::io::middleman>();
  add_remote_api_types(d.cfg);
  // As the node: the sharing scheduler has a third of the round-trip latency of work
  // stealing on small machines (DEPENDENCIES.md), and a client needs few threads.
  d.cfg.set("scheduler.policy", caf::atom("sharing"));
  d.cfg.set("scheduler.max-threads", 2);
  d.sys = std::make_unique<caf::actor_system>(d.cfg);
  auto api = d.sys->middleman().remote_actor<remote_api_actor>(host, port);
  if (!api)
    throw client_error("cannot attach to the remote actors on " + host + ":" +
                       std::to_string(port) + ": " + d.sys->render(api.error()));
  d.api = *api;
  d.self = std::make_unique<caf::scoped_actor>(*d.sys);
  d.monitor = std::make_unique<caf::scoped_actor>(*d.sys);
  (*d.monitor)->monitor(d.api);
  caf::error failed;
  (*d.self)
      ->request(d.api, d.timeout, rk_attach_atom::value)
      .receive(
          [&](caf::actor& s, packed_value& greeting) {
            d.session = caf::actor_cast<remote_session_actor>(s);
            d.greeting = unpack(greeting);
          },
          [&](caf::error& e) { failed = std::move(e); });
  if (failed) throw_error(*d.sys, failed, d.timeout);
}

remote_client::~remote_client() = default;

const value& remote_client::greeting() const {
  return impl_->greeting;
}

void remote_client::set_timeout(std::chrono::milliseconds t) {
  impl_->timeout = t;
}

value remote_client::get(const value& path, const value& opts) {
  return impl_->call(rk_get_atom::value, pack(path), pack(opts));
}

value remote_client::set(const value& path, const value& v, const value& opts) {
  return impl_->call(rk_set_atom::value, pack(path), pack(v), pack(opts));
}

value remote_client::remove(const value& path, const value& opts) {
  return impl_->call(rk_del_atom::value, pack(path), pack(opts));
}

value remote_client::remove_tree(const value& path, const value& opts) {
  return impl_->call(rk_deltree_atom::value, pack(path), pack(opts));
}

value remote_client::get_tree(const value& path, const value& opts) {
  return impl_->call(rk_tree_atom::value, pack(path), pack(opts));
}

value remote_client::enumerate(const value& path, const value& opts) {
  return impl_->call(rk_enum_atom::value, pack(path), pack(opts));
}

value remote_client::get_state(const value& opts) {
  return impl_->call(rk_state_atom::value, pack(opts));
}

value remote_client::diffie_hellman(const value& request) {
  return impl_->call(rk_dh_atom::value, pack(request));
}

void remote_client::auth(const value& request) {
  impl_->call(rk_login_atom::value, pack(request));
}

void remote_client::login(const auth_spec& spec) {
  // The same messages as client_auth's authenticate, over this session.
  std::string& key = impl_->session_key;
  if (spec.method == "password" && key.empty())
    key = dh_session_key([&](map fields) { return diffie_hellman(value(std::move(fields))); });
  auth(value(auth_request(spec, key)));
}

bool remote_client::wait_down(std::chrono::milliseconds timeout) {
  impl& d = *impl_;
  if (d.down) return true;
  (*d.monitor)->receive([&](caf::down_msg&) { d.down = true; }, caf::after(timeout) >> [] {});
  return d.down;
}

// --- watches ---------------------------------------------------------------------------------

struct remote_client::watch::impl {
  caf::actor_system* sys = nullptr;
  std::unique_ptr<caf::scoped_actor> self;  // the watcher: the notifications wait here
  remote_session_actor session;
  std::chrono::milliseconds timeout;
  int64_t id = 0;
  bool ended = false;
  value end_info;
};

remote_client::watch::watch(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

remote_client::watch::~watch() {
  // The session sees its watcher go and cancels the watch.
  impl_->session = nullptr;
  impl_->self.reset();
}

int64_t remote_client::watch::id() const {
  return impl_->id;
}

bool remote_client::watch::ended() const {
  return impl_->ended;
}

const value& remote_client::watch::end_info() const {
  return impl_->end_info;
}

std::optional<value> remote_client::watch::next(std::chrono::milliseconds timeout) {
  impl& d = *impl_;
  if (d.ended) return std::nullopt;
  std::optional<value> out;
  bool waiting = true;
  // Notifications of other watches cannot arrive here: each watch has its own watcher.
  while (waiting) {
    (*d.self)->receive(
        [&](rk_wevent_atom, int64_t, packed_value& p) {
          out = unpack(p);
          waiting = false;
        },
        [&](rk_wend_atom, int64_t, packed_value& p) {
          d.ended = true;
          d.end_info = unpack(p);
          waiting = false;
        },
        [&](caf::down_msg&) {  // the session, and with it the node, is gone
          d.ended = true;
          d.end_info = value(map{{"error", "RuntimeError('the node is gone')"}});
          waiting = false;
        },
        caf::after(timeout) >> [&] { waiting = false; });
  }
  return out;
}

bool remote_client::watch::stop() {
  impl& d = *impl_;
  if (d.ended) return false;
  bool running = false;
  caf::error failed;
  (*d.self)
      ->request(d.session, d.timeout, rk_unwatch_atom::value, d.id)
      .receive([&](bool r) { running = r; }, [&](caf::error& e) { failed = std::move(e); });
  if (failed) throw_error(*d.sys, failed, d.timeout);
  return running;
}

std::unique_ptr<remote_client::watch> remote_client::watch_tree(const value& path,
                                                                const value& opts) {
  impl& d = *impl_;
  auto w = std::make_unique<watch::impl>();
  w->sys = d.sys.get();
  w->self = std::make_unique<caf::scoped_actor>(*d.sys);
  w->session = d.session;
  w->timeout = d.timeout;
  caf::error failed;
  (*w->self)
      ->request(d.session, d.timeout, rk_watch_atom::value, pack(path), pack(opts))
      .receive([&](int64_t id) { w->id = id; }, [&](caf::error& e) { failed = std::move(e); });
  if (failed) throw_error(*d.sys, failed, d.timeout);
  // A watch whose session or node went away ends instead of waiting forever.
  (*w->self)->monitor(d.session);
  return std::unique_ptr<watch>(new watch(std::move(w)));
}

}  // namespace moatkv
