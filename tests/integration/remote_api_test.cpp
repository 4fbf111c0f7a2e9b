// The remote actor interface (issue 7) against a real node process: C++ clients attach through
// the CAF middleman (the client library's caf transport, transport/kv_client.hpp, or the typed
// interface itself) and see the same store as msgpack clients, get watch notifications as
// messages in order, are refused before a required login, meet the limits of msgpack clients,
// and see a stopping node end their session. (A killed node and reconnecting: kv_client_test.)
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/auth/password_crypto.hpp"
#include "messages/remote_api.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"
#include "transport/kv_client.hpp"

namespace moatkv::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

value path_of(array elems) {
  return value::make_path(std::move(elems));
}

// A standalone node with its remote actors on a free loopback port.
struct remote_node {
  uint16_t remote_port = free_loopback_port();
  node_process node{"remote1",
                    {"-I", "Init", "-C", "kv.server.remote.host=127.0.0.1", "-C",
                     "kv.server.remote.port=" + std::to_string(remote_port)}};

  kv_client_options caf_options(std::optional<std::string> auth = std::nullopt) const {
    kv_client_options o;
    o.transport = client_transport::caf;
    o.port = remote_port;
    o.timeout = 5s;
    o.reconnect = false;
    if (auth) o.auth = parse_auth_spec(*auth);
    return o;
  }
  std::unique_ptr<kv_client> attach(std::optional<std::string> auth = std::nullopt) const {
    return std::make_unique<kv_client>(caf_options(std::move(auth)));
  }
  client_connection connect() { return client_connection(node.host(), node.port()); }
};

// The typed interface without the client library, which logs in before anything else: what a
// program that skips the login gets from the node.
struct raw_session {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<caf::scoped_actor> self;
  remote_session_actor session;
  value greeting;

  explicit raw_session(uint16_t port) {
    cfg.load<caf::io::middleman>();
    add_remote_api_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    auto api = sys->middleman().remote_actor<remote_api_actor>("127.0.0.1", port);
    REQUIRE_MESSAGE(api, sys->render(api.error()));
    self = std::make_unique<caf::scoped_actor>(*sys);
    (*self)
        ->request(*api, 5s, rk_attach_atom::value)
        .receive(
            [&](caf::actor& s, packed_value& g) {
              session = caf::actor_cast<remote_session_actor>(s);
              greeting = unpack(g);
            },
            [&](caf::error& e) { FAIL("attach failed: " << sys->render(e)); });
  }
  ~raw_session() {
    session = nullptr;
    self.reset();
    sys.reset();
  }
  // The refusal text of a get (empty: it was served).
  std::string get_refusal(const value& path) {
    std::string out;
    (*self)
        ->request(session, 5s, rk_get_atom::value, pack(path), pack(value()))
        .receive([](packed_value&) {}, [&](caf::error& e) { out = remote_error_text(e); });
    return out;
  }
};

std::string server_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const server_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE_FIXTURE(remote_node, "remote actors: what one transport writes, the other reads") {
  auto rc = attach();
  CHECK(rc->greeting().find("node")->as_str() == "remote1");

  // Actor interface -> msgpack.
  value r = rc->set(path_of({"ra", "one"}), value(42));
  CHECK(r.find("changed") != nullptr);
  client_connection mc = connect();
  value got = mc.request("get_value", {{"path", path_of({"ra", "one"})}});
  REQUIRE(got.find("value"));
  CHECK(*got.find("value") == value(42));

  // msgpack -> actor interface, with the chain (nchain as the msgpack protocol has it).
  mc.request("set_value", {{"path", path_of({"ra", "two"})}, {"value", "zwei"}});
  got = rc->get(path_of({"ra", "two"}), {{"nchain", 2}});
  REQUIRE(got.find("value"));
  CHECK(*got.find("value") == value("zwei"));
  REQUIRE(got.find("chain"));
  CHECK(got.find("chain")->find("node")->as_str() == "remote1");
  CHECK(rc->get(path_of({"ra", "nothing"})).find("value") == nullptr);

  // prev: a conditional set is refused with the msgpack protocol's error.
  std::string err = server_error_of([&] {
    rc->set(path_of({"ra", "one"}), value(43), {{"prev", 41}});
  });
  CHECK(err.find("ClientError") != std::string::npos);
  CHECK(*rc->get(path_of({"ra", "one"})).find("value") == value(42));

  // get_tree: full paths, in tree order; enum.
  rc->set(path_of({"ra", "two", "deep"}), value(array{1, 2}));
  std::vector<value> tree = rc->get_tree(path_of({"ra"}));
  std::vector<std::pair<value, value>> recs;
  for (const auto& m : tree)
    if (const value* p = m.find("path")) recs.emplace_back(*p, *m.find("value"));
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].first == path_of({"ra", "one"}));
  CHECK(recs[1].first == path_of({"ra", "two"}));
  CHECK(recs[2].first == path_of({"ra", "two", "deep"}));
  CHECK(recs[2].second == value(array{1, 2}));
  value names = rc->enumerate(path_of({"ra"}));
  CHECK(*names.find("result") == value(array{"one", "two"}));

  // delete over actors, gone over msgpack; delete_tree.
  rc->remove(path_of({"ra", "one"}));
  CHECK(mc.request("get_value", {{"path", path_of({"ra", "one"})}}).find("value") == nullptr);
  rc->remove_tree(path_of({"ra"}));
  CHECK(rc->get_tree(path_of({"ra"})).empty());

  value state = rc->get_state({{"nodes", true}});
  CHECK(state.find("node")->as_str() == "remote1");

  // Bad requests are refusals, not crashes: the session and the node go on.
  err = server_error_of([&] { rc->get(value(5)); });
  CHECK(!err.empty());
  CHECK(rc->get(path_of({"ra", "two"})).find("value") == nullptr);  // deleted above
  CHECK(node.running());
}

TEST_CASE_FIXTURE(remote_node, "remote actors: watch notifications arrive as messages, in order") {
  auto rc = attach();
  rc->set(path_of({"w", "x"}), value(-1));
  auto w = rc->watch_tree(path_of({"w"}), {{"fetch", true}});
  // The fetch: the current record, then uptodate.
  auto first = w->next(5s);
  REQUIRE(first);
  CHECK(*first->find("path") == path_of({"w", "x"}));
  CHECK(*first->find("value") == value(-1));
  auto up = w->next(5s);
  REQUIRE(up);
  CHECK(*up->find("state") == value("uptodate"));

  client_connection mc = connect();
  for (int i = 0; i < 100; ++i)
    mc.request("set_value", {{"path", path_of({"w", "x"})}, {"value", i}});
  for (int i = 0; i < 100; ++i) {
    auto ev = w->next(5s);
    REQUIRE_MESSAGE(ev, "event " << i << " did not arrive");
    CHECK(*ev->find("path") == path_of({"w", "x"}));
    CHECK_MESSAGE(*ev->find("value") == value(i), "event " << i << ": " << debug_string(*ev));
  }
  w->stop();
  CHECK(w->ended());
  // Nothing more after the end.
  mc.request("set_value", {{"path", path_of({"w", "x"})}, {"value", 1000}});
  CHECK(!w->next(200ms));

  // A watcher that goes away takes its watch with it; the session keeps working.
  { auto w2 = rc->watch_tree(path_of({"w"})); }
  mc.request("set_value", {{"path", path_of({"w", "x"})}, {"value", 1001}});
  CHECK(*rc->get(path_of({"w", "x"})).find("value") == value(1001));
}

TEST_CASE("remote actors: with auth on, nothing is served before the login") {
  remote_node rn;
  {
    client_connection admin = rn.connect();
    admin.request("auth_set", {{"typ", "root"}, {"ident", "*"}});
    const std::string& key = ensure_session_key(admin);
    admin.request("auth_set", {{"typ", "password"},
                               {"ident", "joe"},
                               {"password", value(bin{auth::wrap_password(key, "test123")})}});
    admin.request("set_value", {{"path", path_of({"sec"})}, {"value", "secret"}});
    admin.request("set_auth_typ", {{"typ", "password"}});
  }
  raw_session raw(rn.remote_port);
  const value* methods = raw.greeting.find("auth");
  REQUIRE(methods);
  CHECK(methods->elements().front() == value("password"));
  CHECK(raw.get_refusal(path_of({"sec"})) == "NoAuthError()");
  // The client library logs in before anything else: a wrong password is refused, the right
  // one opens the session, none at all is the original client's ClientAuthRequiredError.
  CHECK(server_error_of([&] {
          rn.attach("password name=joe password=wrong1");
        }).find("AuthFailedError") != std::string::npos);
  CHECK_THROWS_WITH_AS(rn.attach(), doctest::Contains("ClientAuthRequiredError"),
                       client_auth_error);
  auto rc = rn.attach("password name=joe password=test123");
  CHECK(*rc->get(path_of({"sec"})).find("value") == value("secret"));
  // Another attach is another connection: it has to log in itself.
  CHECK(raw_session(rn.remote_port).get_refusal(path_of({"sec"})) == "NoAuthError()");
}

TEST_CASE_FIXTURE(remote_node, "remote actors: a node stopping with clients attached ends them") {
  auto rc = attach();
  auto w = rc->watch_tree(path_of({"s"}));
  auto t0 = steady::now();
  CHECK(node.stop() == 0);  // SIGTERM: a clean exit, not the SIGKILL after the grace period
  CHECK(steady::now() - t0 < 3s);
  auto end = w->next(2s);  // the end, with the reason
  REQUIRE(end);
  CHECK(*end->find("state") == value("end"));
  CHECK(end->find("error") != nullptr);
  CHECK(w->ended());
  CHECK(rc->wait_disconnected(1s));
}

TEST_CASE("remote actors: the limits of msgpack clients apply to sessions") {
  uint16_t rport = free_loopback_port();
  node_process node{"limits1",
                    {"-I", "Init", "-C", "kv.server.remote.port=" + std::to_string(rport), "-C",
                     "kv.server.limits.streams=2", "-C", "kv.server.limits.connections=2"}};
  kv_client_options o;
  o.transport = client_transport::caf;
  o.port = rport;
  o.reconnect = false;
  kv_client rc(o);
  auto w1 = rc.watch_tree(path_of({"a"}));
  auto w2 = rc.watch_tree(path_of({"b"}));
  CHECK(server_error_of([&] { rc.watch_tree(path_of({"c"})); }).find("too many open watches") !=
        std::string::npos);
  w2->stop();
  auto w3 = rc.watch_tree(path_of({"c"}));  // a stopped watch frees its place
  // Two connections: this session and one more, of either kind.
  client_connection mc(node.host(), node.port());
  CHECK_THROWS_WITH_AS(kv_client{o}, doctest::Contains("too many connections"), client_error);
}

TEST_CASE("remote actors: bad kv.server.remote settings stop the node with a clear error") {
  command_result r = run_moatkv({"server", "bad1", "-C", "kv.server.remote.port=70000"});
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.err.find("kv.server.remote.port") != std::string::npos, r.describe());
  r = run_moatkv({"server", "bad2", "-C", "kv.server.remote=27587"});
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.err.find("kv.server.remote must be a map") != std::string::npos, r.describe());
  // A port given explicitly must be free.
  remote_node taken;
  r = run_moatkv({"server", "bad3", "-C", "kv.server.bind_default.port=0", "-C",
                  "kv.server.remote.port=" + std::to_string(taken.remote_port)});
  CHECK(r.exit_code != 0);
  CHECK_MESSAGE(r.err.find("kv.server.remote") != std::string::npos, r.describe());
}

}  // namespace moatkv::test
