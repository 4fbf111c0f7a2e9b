// What one client may use (kv.server.limits, issue 6): beyond each limit a clear error, and
// the node keeps serving everybody else.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/node_process.hpp"
#include "tests/integration/request_error.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {
namespace {

struct limited_node {
  node_process node{
      "lim1",
      {"-I", "Init", "-C", "kv.server.limits.connections=3", "-C", "kv.server.limits.streams=2",
       "-C", "kv.server.limits.path_depth=8", "-C", "kv.server.limits.message_bytes=4096"}};
  std::unique_ptr<client_connection> connect() {
    return std::make_unique<client_connection>(node.host(), node.port());
  }
};

}  // namespace

TEST_CASE_FIXTURE(limited_node, "limits: connections beyond kv.server.limits.connections") {
  std::vector<std::unique_ptr<client_connection>> open;
  for (int i = 0; i < 3; ++i) open.push_back(connect());
  std::string refused;
  try {
    connect();
  } catch (const client_error& e) {
    refused = e.what();
  }
  CHECK(refused.find("too many connections") != std::string::npos);
  CHECK(refused.find("kv.server.limits.connections") != std::string::npos);
  // The open ones still work; once one closes, its slot is free again.
  CHECK(open[0]->request("get_value", {{"path", value::make_path({})}}).find("value"));
  open.pop_back();
  std::unique_ptr<client_connection> again;
  for (int i = 0; i < 100 && !again; ++i) {
    try {
      again = connect();
    } catch (const client_error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the node sees the close
    }
  }
  REQUIRE(again);
  CHECK(again->request("get_tock", {}).find("tock"));
}

TEST_CASE_FIXTURE(limited_node, "limits: open watches per connection, path depth, message size") {
  auto c = connect();
  auto watch = [&](const char* name) {
    int64_t seq = c->send_request("watch", {{"path", value::make_path({name})}});
    value start = c->read_for(seq);
    CHECK(start.find("state"));
    return seq;
  };
  int64_t w1 = watch("a");
  watch("b");
  CHECK(
      error_text(*c, "watch", {{"path", value::make_path({"c"})}}).find("too many open watches") !=
      std::string::npos);
  // A get_tree is no watch: it ends by itself and is not limited.
  c->stream("get_tree", {{"path", value::make_path({})}}, [](const value&) { return true; });
  c->request("stop", {{"task", w1}});
  watch("c");

  // Path depth: 8 elements are fine, 9 are refused with the limit named.
  array deep;
  for (int i = 0; i < 8; ++i) deep.emplace_back("p" + std::to_string(i));
  CHECK(error_text(*c, "set_value", {{"path", value::make_path(deep)}, {"value", 1}}) == "");
  deep.emplace_back("p8");
  std::string too_deep =
      error_text(*c, "set_value", {{"path", value::make_path(deep)}, {"value", 1}});
  CHECK(too_deep.starts_with("ValueError("));
  CHECK(too_deep.find("kv.server.limits.path_depth") != std::string::npos);

  // A message above 4096 bytes closes that connection with an error; others go on.
  auto big = connect();
  big->send_request("set_value",
                    {{"path", value::make_path({"big"})}, {"value", std::string(5000, 'x')}});
  bool refused = false;
  try {
    value m = big->read_message();  // {error} without seq, then the node closes
    const value* e = m.find("error");
    refused = e && e->is_str() && e->as_str().find("request too large") != std::string::npos &&
              e->as_str().find("kv.server.limits.message_bytes") != std::string::npos;
  } catch (const std::exception& e) {
    INFO(e.what());
  }
  CHECK(refused);
  CHECK(c->request("get_value", {{"path", value::make_path({"big"})}}).find("value") == nullptr);
  CHECK(node.running());
}

TEST_CASE("limits: a watcher that stops reading gets its stream ended; writers go on") {
  node_process node("slow1", {"-I", "Init"});
  client_connection watcher(node.host(), node.port());
  REQUIRE(watcher.qlen() > 0);  // flow control: the node holds what the window does not allow
  int64_t seq = watcher.send_request("watch", {{"path", value::make_path({"w"})}});
  REQUIRE(watcher.read_for(seq).find("state"));
  // The watcher reads nothing more. A writer changes the watched subtree 10 500 times: more
  // than the 10 000 events a stream may keep waiting.
  client_connection writer(node.host(), node.port());
  constexpr int n = 10500;
  int64_t last = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    last =
        writer.send_request("set_value", {{"path", value::make_path({"w", i % 50})}, {"value", i}});
  value reply;
  do reply = writer.read_message();
  while (int_field(reply, "seq", -1) != last);
  CHECK(!reply.find("error"));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("writer: " << n << " sets in " << secs << " s while the watcher was stuck");
  // When the watcher reads again, it finds its stream ended with an error (after what its
  // window had let through), and the connection itself still works.
  std::string error;
  bool ended = false;
  for (int i = 0; i < 200 && !ended; ++i) {
    value m = watcher.read_for(seq);
    if (const value* e = m.find("error"); e && e->is_str()) error = e->as_str();
    if (const value* st = m.find("state"); st && st->is_str() && st->as_str() == "end")
      ended = true;
  }
  CHECK(ended);
  CHECK(error.find("Queue filled") != std::string::npos);
  CHECK(watcher.request("get_value", {{"path", value::make_path({"w", 1})}}).find("value"));
  CHECK(node.running());
}

TEST_CASE("limits: without flow control, a watcher that stops reading is bounded in bytes") {
  // kv.server.buffer 0: no window, so events go straight into the connection's send buffer.
  node_process node("slow2", {"-I", "Init", "-C", "kv.server.buffer=0", "-C",
                              "kv.server.limits.backlog_bytes=1048576"});
  client_connection watcher(node.host(), node.port());
  REQUIRE(watcher.qlen() == 0);
  int64_t seq = watcher.send_request("watch", {{"path", value::make_path({"w"})}});
  REQUIRE(watcher.read_for(seq).find("state"));
  // 20 MB of events: far more than the kernel's socket buffers and the 1 MiB backlog.
  client_connection writer(node.host(), node.port());
  constexpr int n = 10000;
  const std::string blob(2000, 'x');
  int64_t last = 0;
  for (int i = 0; i < n; ++i)
    last = writer.send_request("set_value",
                               {{"path", value::make_path({"w", i % 50})}, {"value", blob}});
  value reply;
  do reply = writer.read_message();
  while (int_field(reply, "seq", -1) != last);
  CHECK(!reply.find("error"));
  std::string error;
  bool ended = false;
  int events = 0;
  for (int i = 0; i <= n && !ended; ++i) {
    value m = watcher.read_for(seq);
    if (m.find("value")) ++events;
    if (const value* e = m.find("error"); e && e->is_str()) error = e->as_str();
    if (const value* st = m.find("state"); st && st->is_str() && st->as_str() == "end")
      ended = true;
  }
  MESSAGE("the stuck watcher got " << events << " of " << n << " events before the end");
  CHECK(ended);
  CHECK(events < n);
  CHECK(error.find("Queue filled") != std::string::npos);
  CHECK(watcher.request("get_value", {{"path", value::make_path({"w", 1})}}).find("value"));
  CHECK(node.running());
}

}  // namespace moatkv::test
