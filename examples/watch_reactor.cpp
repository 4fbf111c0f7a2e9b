// watch_reactor: a C++ actor attached to a node's remote actor interface (issue 7) that watches
// a subtree and reacts to its changes.
//
//   usage: watch_reactor HOST PORT PATH [--count N]
//
// For every entry PATH.X… with a numeric value it writes derived.X… = value * 2 and prints
//   reacted: sensors.a = 21 -> derived.a = 42
// It exits 0 after N reactions (with --count), and 1 as soon as the node is gone ("node gone")
// or a request fails.
//
// The actor, as a picture:
//
//   attaching ──session──▶ watching ──{state: uptodate}──▶ reacting ──N reactions──▶ exit 0
//       │                      │                               │
//       └──────────── down_msg of the node, or an error ───────┴──▶ exit 1
//
// Everything goes through the typed interface of messages/remote_api.hpp: attach to the
// published remote_api actor, which answers with a session; the session serves get / set /
// watch requests and sends the watch's messages to the actor that asked for the watch. The
// session belongs to this actor: when it exits, the node closes the session and its watch.
// The watch is started with `fetch`, so the entries that exist already are reacted to first
// (then {state: uptodate}); a reactor that starts late misses nothing.
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>

#include "messages/path_syntax.hpp"
#include "messages/remote_api.hpp"

using namespace moatkv;

namespace {

// Every remote request needs a timeout: a request to a node that died waits for it otherwise.
constexpr auto request_timeout = std::chrono::seconds(5);

struct reactor_state {
  remote_session_actor session;
  value watched;      // the watched path
  int64_t limit = 0;  // exit after this many reactions; 0: never
  int64_t started = 0, done = 0;
  static inline const char* name = "watch_reactor";
};

using reactor_actor = caf::stateful_actor<reactor_state>;

// Twice a number (int or float; bools and ints whose double does not fit are no numbers here).
std::optional<value> doubled(const value& v) {
  int64_t i = 0;
  constexpr int64_t max = std::numeric_limits<int64_t>::max() / 2;
  if (v.is_int() && v.get_int(i) && i <= max && i >= -max) return value(i * 2);
  if (v.is_float()) return value(v.as_double() * 2);
  return std::nullopt;
}

// An error handler for a request: say what failed, and exit with the error.
auto fail(reactor_actor* self, std::string what) {
  return [self, what](caf::error& err) {
    std::cerr << what << " failed: " << self->system().render(err) << std::endl;
    self->quit(err);
  };
}

// One message of the watch: a record {path, value, …} or a state message {state: …}.
void react(reactor_actor* self, const value& msg) {
  auto& st = self->state;
  if (!msg.is_map()) return;
  const value* path = msg.find("path");
  if (!path) {
    if (const value* s = msg.find("state"); s && *s == value("uptodate"))
      std::cout << "watching " << format_path(st.watched) << std::endl;
    return;
  }
  // PATH.X… -> derived.X…; the watched entry itself has no X.
  const array& elems = path->elements();
  const size_t n = st.watched.elements().size();
  if (elems.size() <= n) return;
  array target{"derived"};
  target.insert(target.end(), elems.begin() + static_cast<std::ptrdiff_t>(n), elems.end());
  value derived = value::make_path(std::move(target));

  const value* v = msg.find("value");  // none: the entry was deleted
  std::optional<value> result = v ? doubled(*v) : std::nullopt;
  if (!result || (st.limit > 0 && st.started >= st.limit)) return;
  ++st.started;
  // The reply says the write is done: only then does the reaction count.
  self->request(st.session, request_timeout, rk_set_atom::value, pack(derived), pack(*result),
                pack(value()))
      .then(
          [self, line = format_path(*path) + " = " + debug_string(*v) + " -> " +
                        format_path(derived) + " = " + debug_string(*result)](packed_value&) {
            std::cout << "reacted: " << line << std::endl;
            if (++self->state.done == self->state.limit) self->quit();
          },
          fail(self, "set " + format_path(derived)));
}

caf::behavior watch_reactor(reactor_actor* self, remote_api_actor api, value watched,
                            int64_t limit) {
  self->state.watched = std::move(watched);
  self->state.limit = limit;
  // The node's published actor goes down when the node dies or the connection breaks.
  self->monitor(api);
  self->set_down_handler([self](caf::down_msg&) {
    std::cout << "node gone" << std::endl;
    self->quit(caf::exit_reason::user_shutdown);
  });
  self->request(api, request_timeout, rk_attach_atom::value)
      .then(
          [self](caf::actor& session, packed_value& greeting) {
            if (const value g = unpack(greeting); const value* node = g.find("node"))
              std::cout << "attached to node " << debug_string(*node) << std::endl;
            self->state.session = caf::actor_cast<remote_session_actor>(session);
            value opts(map{{"fetch", true}});
            self->request(self->state.session, request_timeout, rk_watch_atom::value,
                          pack(self->state.watched), pack(opts))
                .then([](int64_t) {}, fail(self, "watch"));
          },
          fail(self, "attach"));
  return {
      [self](rk_wevent_atom, int64_t, packed_value& msg) { react(self, unpack(msg)); },
      [self](rk_wend_atom, int64_t, packed_value& info) {
        std::cerr << "watch ended: " << debug_string(unpack(info)) << std::endl;
        self->quit(caf::exit_reason::user_shutdown);
      },
  };
}

int usage() {
  std::cerr << "usage: watch_reactor HOST PORT PATH [--count N]" << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) return usage();
  int64_t limit = 0;
  value watched;
  uint16_t port = 0;
  try {
    port = static_cast<uint16_t>(std::stoul(argv[2]));
    watched = parse_path(argv[3]);
    if (argc == 6) {
      if (std::string(argv[4]) != "--count") return usage();
      limit = std::stoll(argv[5]);
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return usage();
  }
  // Watching the root would watch derived.… too, and react to its own writes forever.
  if (watched.elements().empty() || limit < 0) return usage();

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  add_remote_api_types(cfg);  // as the node does: else the typed remote_actor is refused
  caf::actor_system sys{cfg};
  auto api = sys.middleman().remote_actor<remote_api_actor>(argv[1], port);
  if (!api) {
    std::cerr << "cannot attach to " << argv[1] << ":" << port << ": " << sys.render(api.error())
              << std::endl;
    return 1;
  }
  auto reactor = sys.spawn(watch_reactor, *api, watched, limit);
  // main only waits for the reactor's exit: a clean quit() is success, any reason a failure.
  caf::scoped_actor self{sys};
  self->monitor(reactor);
  int status = 1;
  self->receive([&](caf::down_msg& dm) { status = dm.reason ? 1 : 0; });
  return status;
}
