// The C++ client library (transport/kv_client.hpp) against real node processes, over both
// transports: what one transport writes the other reads, watch messages arrive in order, a
// killed node is noticed within a second and fails pending requests instead of hanging, and
// the client reconnects when the node is back, with its watch started again by a fetch that
// reports what changed meanwhile.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "transport/kv_client.hpp"

namespace moatkv::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

value path_of(array elems) {
  return value::make_path(std::move(elems));
}

// A standalone node with both interfaces on loopback ports fixed at construction, so that a
// restarted node is where its clients expect it.
struct two_port_node {
  uint16_t port = free_loopback_port();
  uint16_t remote_port = free_loopback_port();
  std::unique_ptr<node_process> node;

  two_port_node() { start(); }
  void start() {
    node = std::make_unique<node_process>(
        "lib1", std::vector<std::string>{"-I", "Init", "-C",
                                         "kv.server.bind_default.port=" + std::to_string(port),
                                         "-C", "kv.server.remote.host=127.0.0.1", "-C",
                                         "kv.server.remote.port=" + std::to_string(remote_port)});
  }
  kv_client_options options(client_transport t) const {
    kv_client_options o;
    o.transport = t;
    o.host = "127.0.0.1";
    o.port = t == client_transport::caf ? remote_port : port;
    o.timeout = 3s;
    return o;
  }
  std::unique_ptr<kv_client> client(client_transport t) const {
    return std::make_unique<kv_client>(options(t));
  }
};

// A field of a reply, or nil when it is missing (a failed check, not a crash).
value at(const value& m, const char* key) {
  const value* v = m.is_map() ? m.find(key) : nullptr;
  return v ? *v : value();
}

const client_transport both[] = {client_transport::msgpack, client_transport::caf};

client_transport other(client_transport t) {
  return t == client_transport::caf ? client_transport::msgpack : client_transport::caf;
}

}  // namespace

TEST_CASE_FIXTURE(two_port_node, "client library: what one transport writes, the other reads") {
  for (client_transport t : both) {
    CAPTURE(std::string(client_transport_name(t)));
    auto w = client(t);
    auto r = client(other(t));
    CHECK(w->greeting().find("node")->as_str() == "lib1");
    std::string top = client_transport_name(t);

    value reply = w->set(path_of({top, "a"}), value(42), {{"nchain", 2}});
    CHECK(at(reply, "changed") == value(true));
    REQUIRE(reply.find("chain"));
    value got = r->get(path_of({top, "a"}), {{"nchain", 2}});
    CHECK(at(got, "value") == value(42));
    CHECK(at(got, "chain") == at(reply, "chain"));
    CHECK(!got.find("seq"));

    // A chain that is not the entry's is refused over both.
    value stale = value(map{{"node", "lib1"}, {"tick", 999}, {"prev", value()}});
    CHECK_THROWS_AS(w->set(path_of({top, "a"}), value(43), {{"chain", stale}}), server_error);

    w->set(path_of({top, "b", "c"}), value(map{{"x", 1}}));
    w->set(path_of({top, "b", "d"}), value(bin{std::string("\x00\x01", 2)}));
    std::vector<value> tree = r->get_tree(path_of({top}));
    REQUIRE(tree.size() == 3);
    CHECK(at(tree[0], "path") == path_of({top, "a"}));
    CHECK(at(tree[1], "path") == path_of({top, "b", "c"}));
    CHECK(at(tree[2], "path") == path_of({top, "b", "d"}));
    CHECK(at(tree[2], "value") == value(bin{std::string("\x00\x01", 2)}));
    CHECK(!tree[1].find("depth"));
    CHECK(at(r->enumerate(path_of({top})), "result") == value(array{"a", "b"}));

    // Asynchronous: the handler gets the reply.
    std::promise<value> p;
    r->get_async(path_of({top, "b", "c"}), {},
                 [&](value v, const kv_error& e) { p.set_value(e ? value(e.text) : v); });
    auto f = p.get_future();
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(at(f.get(), "value") == value(map{{"x", 1}}));

    CHECK(at(r->remove(path_of({top, "a"})), "changed") == value(true));
    CHECK(!w->get(path_of({top, "a"})).find("value"));
    std::vector<value> gone = w->remove_tree(path_of({top}));
    REQUIRE(gone.size() == 1);
    CHECK_MESSAGE(at(gone[0], "changed") == value(2), debug_string(gone[0]));
    CHECK(r->get_tree(path_of({top})).empty());
    CHECK(w->get_state().find("node")->as_str() == "lib1");
  }
  // What the remote interface does not offer is refused by name, and the client goes on.
  auto c = client(client_transport::caf);
  CHECK_THROWS_WITH_AS(c->request("get_tock", {}), doctest::Contains("get_tock"), server_error);
  CHECK(c->set(path_of({"x"}), value(1)).find("tock"));
}

TEST_CASE_FIXTURE(two_port_node, "client library: watch messages arrive in order") {
  for (client_transport t : both) {
    CAPTURE(std::string(client_transport_name(t)));
    std::string top = std::string("w_") + client_transport_name(t);
    auto c = client(t);
    auto writer = client(other(t));
    c->set(path_of({top, "x"}), value(-1));
    auto w = c->watch_tree(path_of({top}), {{"fetch", true}});
    auto first = w->next(5s);
    REQUIRE(first);
    CHECK(at(*first, "path") == path_of({top, "x"}));
    CHECK(at(*first, "value") == value(-1));
    auto up = w->next(5s);
    REQUIRE(up);
    CHECK(at(*up, "state") == value("uptodate"));
    for (int i = 0; i < 100; ++i) writer->set(path_of({top, "x"}), value(i));
    for (int i = 0; i < 100; ++i) {
      auto ev = w->next(5s);
      REQUIRE_MESSAGE(ev, "event " << i << " did not arrive");
      CHECK(at(*ev, "path") == path_of({top, "x"}));
      CHECK_MESSAGE(at(*ev, "value") == value(i), "event " << i << ": " << debug_string(*ev));
      CHECK(!ev->find("seq"));
    }
    w->stop();
    writer->set(path_of({top, "x"}), value(1000));
    CHECK(!w->next(300ms));

    // A handler gets the messages on the client's thread, in order.
    std::mutex mx;
    std::condition_variable cv;
    std::vector<value> seen;
    auto w2 = c->watch_tree(path_of({top}), {}, [&](const value& m) {
      std::lock_guard<std::mutex> lock(mx);
      seen.push_back(m);
      cv.notify_all();
    });
    for (int i = 0; i < 20; ++i) writer->set(path_of({top, "y"}), value(i));
    std::unique_lock<std::mutex> lock(mx);
    cv.wait_for(lock, 5s, [&] { return seen.size() >= 20; });
    REQUIRE(seen.size() == 20);
    for (int i = 0; i < 20; ++i) CHECK(at(seen[i], "value") == value(i));
  }
}

TEST_CASE_FIXTURE(two_port_node,
                  "client library: a watch reader that falls behind holds the node back") {
  // msgpack: past watch_queue_high unread messages the client stops acknowledging, so the node
  // sends at most a window more; reading on releases the rest, in order and complete.
  kv_client_options o = options(client_transport::msgpack);
  o.watch_queue_high = 50;
  kv_client c(o);
  auto writer = client(client_transport::msgpack);
  auto w = c.watch_tree(path_of({"slow"}));
  constexpr int n = 500;
  for (int i = 0; i < n; ++i) writer->set(path_of({"slow", "x"}), value(i));
  // A request on the watching connection: its reply comes after every watch message the node
  // sent before it (one connection, in order), so what is queued then is all that came.
  c.get(path_of({"slow", "x"}));
  size_t waiting = w->queued();
  CHECK(waiting >= 50);
  CHECK_MESSAGE(waiting <= 50 + 99, "the node kept sending: " << waiting << " queued");
  for (int i = 0; i < n; ++i) {
    auto ev = w->next(5s);
    REQUIRE_MESSAGE(ev, "event " << i << " did not arrive");
    CHECK_MESSAGE(at(*ev, "value") == value(i), "event " << i << ": " << debug_string(*ev));
  }
}

TEST_CASE_FIXTURE(two_port_node,
                  "client library: a killed node fails requests at once, and the client "
                  "reconnects when it is back") {
  for (client_transport t : both) {
    CAPTURE(std::string(client_transport_name(t)));
    kv_client_options o = options(t);
    o.timeout = 2s;
    o.backoff_initial = 100ms;
    o.backoff_max = 500ms;
    kv_client c(o);
    std::string top = std::string("r_") + client_transport_name(t);
    CHECK(c.connections() == 1);
    c.set(path_of({top, "a"}), value(1));
    c.set(path_of({top, "b"}), value(2));
    auto w = c.watch_tree(path_of({top}), {{"fetch", true}});
    for (int i = 0; i < 3; ++i) REQUIRE(w->next(5s));  // a, b, uptodate

    // A hung node (stopped) cannot answer: a request fails with a timeout error after 2 s.
    REQUIRE(::kill(node->pid(), SIGSTOP) == 0);
    auto failure_of = [&](const value& path) {
      return std::async(std::launch::async, [&c, path] {
        try {
          c.get(path);
        } catch (const client_error& e) {
          return std::string(e.what());
        }
        return std::string("no error");
      });
    };
    auto t0 = steady::now();
    auto hung = failure_of(path_of({top, "a"}));
    REQUIRE(hung.wait_for(4s) == std::future_status::ready);
    CHECK(steady::now() - t0 >= 1900ms);
    CHECK_MESSAGE(hung.get().find("no reply from the server within 2000 ms") != std::string::npos,
                  "a request to a hung node");
    // A dead node: the client notices within a second (over caf: the node's down_msg) and a
    // pending request fails at once, not at its timeout.
    auto pending = failure_of(path_of({top, "b"}));
    std::this_thread::sleep_for(200ms);  // the request is on its way (nothing to poll)
    REQUIRE(::kill(node->pid(), SIGKILL) == 0);
    auto killed = steady::now();
    CHECK(c.wait_disconnected(1s));
    CHECK(steady::now() - killed < 1s);
    REQUIRE(pending.wait_for(1s) == std::future_status::ready);
    std::string err = pending.get();
    CHECK_MESSAGE(err.find("connection lost") != std::string::npos, err);
    node->stop();

    // While the node is away, requests wait for it within their timeout, then fail.
    t0 = steady::now();
    CHECK_THROWS_WITH_AS(c.get(path_of({top, "a"})), doctest::Contains("not connected"),
                         client_error);
    CHECK(steady::now() - t0 >= 1900ms);

    // The node comes back empty (in memory, -I): the client reconnects by itself, the watch is
    // started again and reports what changed: a and b are gone, c is new.
    start();
    kv_client other_writer(options(client_transport::msgpack));
    other_writer.set(path_of({top, "c"}), value(3));
    REQUIRE(c.wait_connected(10s));
    CHECK(c.connections() == 2);
    CHECK(at(c.get(path_of({top, "c"})), "value") == value(3));
    std::set<std::string> changes;
    auto deadline = steady::now() + 5s;
    while (changes.size() < 3 && steady::now() < deadline) {
      auto m = w->next(500ms);
      if (!m || !m->find("path")) continue;
      const value* v = m->find("value");
      changes.insert(debug_string(at(*m, "path")) + "=" + (v ? debug_string(*v) : "deleted"));
    }
    CHECK(changes == std::set<std::string>{debug_string(path_of({top, "a"})) + "=deleted",
                                           debug_string(path_of({top, "b"})) + "=deleted",
                                           debug_string(path_of({top, "c"})) + "=3"});
    // And later changes arrive as before.
    other_writer.set(path_of({top, "d"}), value(4));
    std::optional<value> d;
    while ((d = w->next(3s)) && !d->find("path")) {
    }
    REQUIRE(d);
    CHECK(at(*d, "path") == path_of({top, "d"}));
  }
}

}  // namespace moatkv::test
