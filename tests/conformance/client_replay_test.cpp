// Conformance, client side: the client library's msgpack transport (transport/kv_client.hpp)
// replays the "LIB SESSION" of the captured traffic
// (tests/conformance/data/client-wire-messages.tsv, conn12; decoded in
// ../reference/client-wire-transcript.txt), one session of the original's Python client library.
// replay_test.cpp plays that session's client bytes against our node; here the test plays the
// *server*: a fake server on a free loopback port sends the transcript's S->C messages of conn12
// and checks every C->S message the library sends, while the test body makes, through the library's
// typed API, the calls the Python session made, in order.
//
// Rules of the comparison:
//   * The Python client opened a watch of `.moat.kv.config` (seq 1) at connect and stopped it at
//     the end; our library does not. The fake server skips those rows: the watch request, every
//     S->C message of its seq, and the `stop` whose task it is.
//   * Requests are matched by order: the n-th request the library sends is the transcript's n-th
//     (other than the skipped ones). Transcript seq N <-> library seq is recorded from that; the
//     S->C messages are sent with their `seq` rewritten (re-encoded, key order kept), and the
//     `task` of a `stop` request is expected to be the library's seq of the watch. The library's
//     request seqs must be integers and grow; otherwise `seq` is not compared.
//   * Every C->S message (the hello included, its seq 0 too) must have the same set of keys as
//     the transcript's and equal values of the same msgpack kinds (bool is not int, str is not
//     bin, a Path is not an array). A message whose `action` differs from the expected one is
//     reported and skipped (the server keeps waiting for the expected one).
//   * Acks ({seq, state: ack, ack: N}) depend on timing: they are accepted whenever they come,
//     but only for a seq on which `wseq`s were sent, with N at most the highest wseq sent on it,
//     and strictly increasing per seq.
//   * The results the library hands back are compared the same way (keys, values, kinds) with the
//     transcript's reply minus `seq`. Records of get_tree and the watch must carry the full path
//     (request path + the path rebuilt from `path`/`depth` as server-internals §7.5's
//     PathLongener does) as a Path, and no `depth`, `seq` or `wseq`; the watch's messages arrive
//     in the transcript's order. State messages of the watch ({state: uptodate}) must carry the
//     same `state`, no seq/wseq, and any other key they keep must be equal to the transcript's.
//     After watch::stop() the watch has ended (ended() is true once the following reply came)
//     and hands out no further record.
//   * The unknown action `no_such_action` gets the original's connection-level error (no seq)
//     and EOF: the library must fail that pending request with a transport or server error (not
//     a timeout), and see the connection as lost; after the server's EOF the library closes too.
//   * The fake server never waits without a deadline (5 s per expected message; the library's
//     timeout is 3 s); on a missing message or a closed connection it stops, and the body's calls
//     then fail.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"
#include "tests/conformance/transcript.hpp"
#include "transport/kv_client.hpp"

namespace moatkv::test {
namespace {

using namespace std::chrono_literals;
constexpr auto read_timeout = 5s;        // of the fake server, per expected message
constexpr auto library_timeout = 3s;     // of every library request
constexpr auto watch_next_timeout = 3s;  // watch::next in the body

// ---------------------------------------------------------------------------------------------
// The transcript's LIB SESSION

using row = transcript_row;

std::vector<row> load_lib_session() {
  std::vector<row> rows;
  for (row& r : load_transcript()) {
    if (r.conn != "conn12") continue;
    if (r.scenario.rfind("LIB SESSION", 0) != 0)
      throw std::runtime_error(where(r) + ": conn12 is not the LIB SESSION");
    rows.push_back(std::move(r));
  }
  return rows;
}

value without(value m, std::initializer_list<const char*> keys) {
  if (m.is_map())
    for (const char* k : keys) map_erase(m.as_map(), k);
  return m;
}

value P(std::initializer_list<value> elems) {
  return value::make_path(array(elems));
}

// The Python client's watch of the configuration, which our library does not open.
bool is_config_watch(const value& m) {
  if (!str_field_is(m, "action", "watch")) return false;
  const value* p = field(m, "path");
  return p && p->is_sequence() && !p->elements().empty() && p->elements()[0] == value(".moat");
}

// ---------------------------------------------------------------------------------------------
// Comparison

void check_same(const std::string& what, const value& expected, const value& actual) {
  std::vector<std::string> diffs = differences(expected, actual);
  if (!diffs.empty()) FAIL_CHECK(what << " differs" << difference_text(expected, actual, diffs));
}

// ---------------------------------------------------------------------------------------------
// What the library should hand back, from the transcript

struct transcript {
  explicit transcript(const std::vector<row>& rows) {
    for (const row& r : rows)
      if (r.direction == "S->C" && !r.eof)
        if (std::optional<int64_t> seq = int_of(field(r.msg, "seq"))) by_seq[*seq].push_back(r.msg);
  }
  std::map<int64_t, std::vector<value>> by_seq;  // S->C messages per transcript seq

  value greeting() const { return by_seq.at(0).at(0); }

  // The single reply to transcript seq `seq`, without `seq` (as the library hands it back).
  value reply(int64_t seq) const {
    const auto& msgs = by_seq.at(seq);
    REQUIRE(msgs.size() == 1);
    return without(msgs[0], {"seq"});
  }

  // The messages of a stream (without start and end), as the library should hand them back:
  // records with the full path (`prefix` + what §7.5's PathLongener rebuilds), no depth, seq,
  // wseq; state messages without seq, wseq.
  std::vector<value> stream(int64_t seq, const value& prefix) const {
    std::vector<value> out;
    array last;  // the previous record's path below the prefix
    for (const value& m : by_seq.at(seq)) {
      if (str_field_is(m, "state", "start") || str_field_is(m, "state", "end")) continue;
      value rec = without(m, {"seq", "wseq", "depth"});
      if (const value* p = field(m, "path"); p && p->is_sequence()) {
        size_t depth = static_cast<size_t>(int_of(field(m, "depth")).value_or(0));
        REQUIRE(depth <= last.size());
        array rel(last.begin(), last.begin() + static_cast<std::ptrdiff_t>(depth));
        rel.insert(rel.end(), p->elements().begin(), p->elements().end());
        last = rel;
        array full = prefix.elements();
        full.insert(full.end(), rel.begin(), rel.end());
        map_set(rec.as_map(), value("path"), value::make_path(std::move(full)));
      }
      out.push_back(std::move(rec));
    }
    return out;
  }
};

// A state message of the watch: same `state`, no seq/wseq, other keys kept equal.
void check_state_message(const std::string& what, const value& expected, const value& actual) {
  INFO(what << ": expected " << debug_string(expected) << ", got " << debug_string(actual));
  CHECK(actual.is_map());
  if (!actual.is_map()) return;
  CHECK(str_field_is(actual, "state", expected.find("state")->as_str()));
  CHECK(!actual.find("seq"));
  CHECK(!actual.find("wseq"));
  for (const auto& [k, v] : actual.as_map()) {
    const value* e = expected.find(k);
    CHECK_MESSAGE(e, "extra key '" << key_text(k) << "'");
    if (e) CHECK_MESSAGE(differences(*e, v).empty(), "key '" << key_text(k) << "' differs");
  }
}

// ---------------------------------------------------------------------------------------------
// The fake server: plays conn12's S->C side, checks the C->S side.

class fake_server {
 public:
  explicit fake_server(std::vector<row> script) : script_(std::move(script)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 4) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      int e = errno;
      close(listen_fd_);
      throw std::runtime_error(std::string("listen on 127.0.0.1: ") + std::strerror(e));
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~fake_server() {
    abort_ = true;
    join();
    conn_.reset();
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;

  uint16_t port() const { return port_; }
  /// Waits for the end of the script (every wait in it has a deadline).
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // After join():
  std::vector<std::string> problems() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return problems_;
  }
  int compared() const { return compared_; }
  bool finished() const { return finished_; }
  /// Acks the library sent on the stream of transcript seq `tseq`.
  int acks_for(int64_t tseq) const {
    auto s = lib_seq_.find(tseq);
    if (s == lib_seq_.end()) return 0;
    auto a = acks_.find(s->second);
    return a == acks_.end() ? 0 : a->second;
  }

 private:
  using got = message_socket::got;

  void problem(std::string text) {
    std::lock_guard<std::mutex> lock(mutex_);
    problems_.push_back(std::move(text));
  }

  void run() {
    try {
      finished_ = run_script();
    } catch (const std::exception& e) {
      problem(std::string("fake server: ") + e.what());
    }
    if (conn_) conn_->shutdown_both();
  }

  bool run_script() {
    auto deadline = clock::now() + read_timeout;
    for (;;) {
      if (abort_) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        problem("the library did not connect within 5 s");
        return false;
      }
      pollfd p{listen_fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
      if (r > 0) break;
    }
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
    conn_ = std::make_unique<message_socket>(fd);
    for (const row& r : script_) {
      bool ok = r.direction == "S->C" ? send_row(r) : expect_row(r);
      if (!ok) return false;
    }
    return true;
  }

  void check_ack(const value& m) {
    std::optional<int64_t> seq = int_of(field(m, "seq")), ack = int_of(field(m, "ack"));
    bool shape = m.as_map().size() == 3 && seq && ack;
    if (!shape) {
      problem("malformed ack (expected {seq, state: 'ack', ack: N}): " + debug_string(m));
      return;
    }
    auto sent = max_wseq_sent_.find(*seq);
    if (sent == max_wseq_sent_.end()) {
      problem("ack on seq " + std::to_string(*seq) +
              ", where no wseq was sent: " + debug_string(m));
      return;
    }
    if (*ack > sent->second)
      problem("ack " + std::to_string(*ack) + " on seq " + std::to_string(*seq) +
              " beyond the highest wseq sent on it (" + std::to_string(sent->second) + ")");
    auto last = last_ack_.find(*seq);
    if (last != last_ack_.end() && *ack <= last->second)
      problem("ack " + std::to_string(*ack) + " on seq " + std::to_string(*seq) +
              " does not grow (previous ack: " + std::to_string(last->second) + ")");
    last_ack_[*seq] = *ack;
    ++acks_[*seq];
  }

  // The next message of the library that is not an ack (acks are checked as they come).
  got next_request(value& out, clock::time_point deadline) {
    for (;;) {
      got g = conn_->read_message(out, deadline, &abort_);
      if (g != got::message) return g;
      if (str_field_is(out, "state", "ack")) {
        check_ack(out);
        continue;
      }
      return g;
    }
  }

  bool send_row(const row& r) {
    if (r.eof) {
      conn_->shutdown_write();
      return true;
    }
    value msg = r.msg;
    if (std::optional<int64_t> tseq = int_of(field(msg, "seq")); tseq && *tseq != 0) {
      if (skipped_.count(*tseq)) return true;
      auto s = lib_seq_.find(*tseq);
      if (s == lib_seq_.end()) {
        problem(where(r) + ": not sent, the library sent no request for transcript seq " +
                std::to_string(*tseq) + ": " + debug_string(msg));
        return true;
      }
      map_set(msg.as_map(), value("seq"), value(s->second));
      if (std::optional<int64_t> w = int_of(field(msg, "wseq")))
        max_wseq_sent_[s->second] = std::max(max_wseq_sent_[s->second], *w);
    }
    try {
      conn_->send_bytes(encode(msg));
    } catch (const std::runtime_error& e) {
      problem(where(r) + ": send failed (" + e.what() + "): " + debug_string(msg));
      return false;
    }
    return true;
  }

  bool expect_row(const row& r) {
    auto deadline = clock::now() + read_timeout;
    value got_msg;
    if (r.eof) {  // after the server's EOF, the library closes its side
      for (;;) {
        got g = next_request(got_msg, deadline);
        if (g == got::closed) return true;
        if (g == got::timeout) {
          problem(where(r) +
                  ": the library did not close the connection within 5 s after the "
                  "server's EOF");
          return false;
        }
        problem(where(r) + ": a message the transcript does not have (after the server's EOF): " +
                debug_string(got_msg));
      }
    }
    const value& m = r.msg;
    if (str_field_is(m, "state", "ack")) return true;  // acks are checked whenever they come
    std::optional<int64_t> tseq = int_of(field(m, "seq"));
    if (!tseq) throw std::runtime_error(where(r) + ": C->S message without seq");
    if (is_config_watch(m)) {
      skipped_.insert(*tseq);
      return true;
    }
    if (str_field_is(m, "action", "stop"))
      if (std::optional<int64_t> task = int_of(field(m, "task")); task && skipped_.count(*task)) {
        skipped_.insert(*tseq);
        return true;
      }
    const value* want_action = field(m, "action");
    for (;;) {
      got g = next_request(got_msg, deadline);
      if (g != got::message) {
        problem(where(r) + ": " +
                (g == got::timeout ? "no message from the library within 5 s"
                                   : "the library closed the connection") +
                "; expected " + debug_string(m));
        return false;
      }
      const value* action = field(got_msg, "action");
      bool same_action = want_action ? action && *action == *want_action : !action;
      if (same_action) break;
      problem(where(r) + ": a message the transcript does not have: " + debug_string(got_msg) +
              "\n  (expected: " + debug_string(m) + ")");
    }
    ++compared_;
    if (*tseq == 0) {  // the hello, seq included
      if (auto d = differences(m, got_msg); !d.empty())
        problem(where(r) + ": the hello differs" + difference_text(m, got_msg, d));
      return true;
    }
    std::optional<int64_t> seq = int_of(field(got_msg, "seq"));
    if (!seq || *seq <= last_lib_seq_) {
      problem(where(r) + ": the request's seq is not an integer greater than the previous " +
              "request's (" + std::to_string(last_lib_seq_) + "): " + debug_string(got_msg));
    } else {
      lib_seq_[*tseq] = *seq;
      last_lib_seq_ = *seq;
    }
    value expected = without(m, {"seq"});
    if (std::optional<int64_t> task = int_of(field(m, "task"))) {
      auto s = lib_seq_.find(*task);
      if (s != lib_seq_.end()) map_set(expected.as_map(), value("task"), value(s->second));
    }
    value actual = without(got_msg, {"seq"});
    if (auto d = differences(expected, actual); !d.empty())
      problem(where(r) + ": the library's request differs from the Python client's (seq not " +
              "compared)" + difference_text(expected, actual, d));
    return true;
  }

  std::vector<row> script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> abort_{false};

  // Used by the server thread only (read by the test after join()).
  std::unique_ptr<message_socket> conn_;  // the library's connection, once accepted
  bool finished_ = false;
  int compared_ = 0;
  std::set<int64_t> skipped_;           // transcript seqs of the config watch and its stop
  std::map<int64_t, int64_t> lib_seq_;  // transcript seq -> library seq
  int64_t last_lib_seq_ = 0;
  std::map<int64_t, int64_t> max_wseq_sent_;  // library seq -> highest wseq sent
  std::map<int64_t, int64_t> last_ack_;       // library seq -> last ack
  std::map<int64_t, int> acks_;               // library seq -> acks received

  mutable std::mutex mutex_;
  std::vector<std::string> problems_;
};

// Reads the next `n` messages of a watch and compares them with `expected[from, from+n)`.
void check_watch_messages(kv_client::watch& w, const std::vector<value>& expected, size_t from,
                          size_t n) {
  for (size_t i = from; i < from + n && i < expected.size(); ++i) {
    std::string what = "watch message " + std::to_string(i + 1);
    std::optional<value> got = w.next(watch_next_timeout);
    if (!got) {
      FAIL_CHECK(what << ": nothing within 3 s (ended: " << w.ended()
                      << "); expected: " << debug_string(expected[i]));
      return;
    }
    if (expected[i].find("state"))
      check_state_message(what, expected[i], *got);
    else
      check_same(what, expected[i], *got);
  }
}

}  // namespace

TEST_CASE("client-side replay: the client library's msgpack transport against the LIB SESSION") {
  std::vector<row> rows = load_lib_session();
  REQUIRE(rows.size() == 65);
  const transcript t(rows);

  // What the library must hand back, derived from the transcript (§7.5), and the full paths
  // spelled out as a check of that derivation.
  const std::vector<value> tree_records = t.stream(10, P({"wire"}));
  const std::vector<value> watch_messages = t.stream(14, P({"wire"}));
  {
    std::vector<value> paths;
    for (const value& r : tree_records) paths.push_back(*r.find("path"));
    CHECK(paths == std::vector<value>{P({"wire", "a"}), P({"wire", "b", "c"}),
                                      P({"wire", "b", "d"}), P({"wire", 1, true})});
    paths.clear();
    for (const value& r : watch_messages)
      paths.push_back(r.find("path") ? *r.find("path") : value("uptodate"));
    CHECK(paths == std::vector<value>{P({"wire", "a"}), P({"wire", "b", "c"}),
                                      P({"wire", "b", "d"}), P({"wire", 1, true}),
                                      value("uptodate"), P({"wire", "w"}), P({"wire", "w"})});
  }
  REQUIRE(watch_messages.size() == 7);

  fake_server server(rows);
  kv_client_options o;
  o.transport = client_transport::msgpack;
  o.host = "127.0.0.1";
  o.port = server.port();
  o.timeout = library_timeout;
  o.reconnect = false;

  std::string step;
  std::unique_ptr<kv_client> client;
  std::unique_ptr<kv_client::watch> w;
  try {
    step = "connect";
    client = std::make_unique<kv_client>(o);
    check_same("the greeting", t.greeting(), client->greeting());

    step = "get wire.missing";
    check_same(step, t.reply(2), client->get(P({"wire", "missing"})));

    step = "set wire.a=42 nchain 2";
    value r3 = client->set(P({"wire", "a"}), 42, map{{"nchain", 2}});
    check_same(step, t.reply(3), r3);
    value chain9 = r3.is_map() && r3.find("chain") ? *r3.find("chain") : value();

    step = "set wire.a=43 nchain 1 with the chain";
    check_same(step, t.reply(4),
               client->set(P({"wire", "a"}), 43, map{{"nchain", 1}, {"chain", chain9}}));

    step = "set wire.a=44 with the old chain";
    {
      std::string want = t.reply(5).find("error")->as_str();
      try {
        value r = client->set(P({"wire", "a"}), 44, map{{"chain", chain9}});
        FAIL_CHECK(step << ": no server_error, the library returned " << debug_string(r));
      } catch (const server_error& e) {
        CHECK(std::string(e.what()) == want);
      }
    }

    step = "set wire.b.c to a map";
    check_same(step, t.reply(6),
               client->set(P({"wire", "b", "c"}),
                           value(map{{"x", 1}, {"y", array{value(1), value(2), value("three")}}})));

    step = "set wire.b.d to bytes";
    check_same(step, t.reply(7),
               client->set(P({"wire", "b", "d"}), value(bin{std::string("\x00\x01"
                                                                        "bytes",
                                                                        7)})));

    step = "set wire.1.True to nil";
    check_same(step, t.reply(8), client->set(P({"wire", 1, true}), value()));

    step = "get wire.a nchain 3";
    check_same(step, t.reply(9), client->get(P({"wire", "a"}), map{{"nchain", 3}}));

    step = "get_tree wire";
    {
      std::vector<value> records = client->get_tree(P({"wire"}));
      CHECK_MESSAGE(records.size() == tree_records.size(),
                    step << ": " << records.size() << " records, expected " << tree_records.size());
      for (size_t i = 0; i < std::min(records.size(), tree_records.size()); ++i)
        check_same(step + ", record " + std::to_string(i + 1), tree_records[i], records[i]);
    }

    step = "enum wire (with_data false, empty true)";
    check_same(step, t.reply(11),
               client->enumerate(P({"wire"}), map{{"with_data", false}, {"empty", true}}));

    step = "enum wire.b (with_data true, empty false)";
    check_same(step, t.reply(12),
               client->enumerate(P({"wire", "b"}), map{{"with_data", true}, {"empty", false}}));

    step = "get_tock";
    check_same(step, t.reply(13), client->request("get_tock", {}));

    step = "watch wire (fetch, nchain 1, max_depth 3)";
    w = client->watch_tree(P({"wire"}), map{{"fetch", true}, {"nchain", 1}, {"max_depth", 3}});
    REQUIRE(w);
    check_watch_messages(*w, watch_messages, 0, 5);  // four records and {state: uptodate}

    step = "set wire.w while watching";
    check_same(step, t.reply(15), client->set(P({"wire", "w"}), "watched"));
    check_watch_messages(*w, watch_messages, 5, 1);

    step = "delete_value wire.w while watching";
    check_same(step, t.reply(16), client->remove(P({"wire", "w"})));
    check_watch_messages(*w, watch_messages, 6, 1);  // the deletion record: no `value`

    step = "stop the watch";
    w->stop();

    step = "delete_value wire.a nchain 2";
    check_same(step, t.reply(18), client->remove(P({"wire", "a"}), map{{"nchain", 2}}));
    CHECK_MESSAGE(w->ended(), "the watch has not ended after stop()");
    if (std::optional<value> late = w->next(200ms))
      CHECK_MESSAGE(str_field_is(*late, "state", "end"),
                    "a watch message after stop(): " << debug_string(*late));

    step = "delete_tree wire";
    {
      std::vector<value> r = client->remove_tree(P({"wire"}));
      CHECK(r.size() == 1);
      if (!r.empty()) check_same(step, t.reply(19), r[0]);
    }

    step = "get wire.b.c";
    check_same(step, t.reply(20), client->get(P({"wire", "b", "c"})));

    step = "no_such_action (the original's connection-level error and EOF)";
    {
      auto done = std::make_shared<std::promise<kv_error>>();
      client->request_async("no_such_action", {},
                            [done](value, const kv_error& err) { done->set_value(err); });
      std::future<kv_error> f = done->get_future();
      REQUIRE_MESSAGE(f.wait_for(10s) == std::future_status::ready,
                      "the request to no_such_action did not end within 10 s");
      kv_error err = f.get();
      MESSAGE("no_such_action failed with kind " << static_cast<int>(err.what) << ": " << err.text);
      CHECK_MESSAGE((err.what == kv_error::kind::transport || err.what == kv_error::kind::server),
                    "no_such_action: expected a transport or server error, got kind "
                        << static_cast<int>(err.what) << " (" << err.text << ")");
      CHECK_MESSAGE(client->wait_disconnected(5s), "the library still sees the connection as up");
      CHECK(!client->connected());
    }
  } catch (const std::exception& e) {
    FAIL_CHECK("step \"" << step << "\": " << e.what());
  }
  w.reset();
  client.reset();
  server.join();

  for (const std::string& p : server.problems()) FAIL_CHECK(p);
  CHECK_MESSAGE(server.finished(), "the fake server did not get through the transcript");
  MESSAGE("compared " << server.compared() << " C->S messages; acks on get_tree: "
                      << server.acks_for(10) << ", on the watch: " << server.acks_for(14));
  // The Python client acknowledged both streams (qlen 10: more than 3 messages read).
  WARN_MESSAGE(server.acks_for(10) > 0, "the library sent no ack on the get_tree stream");
  WARN_MESSAGE(server.acks_for(14) > 0, "the library sent no ack on the watch stream");
}

}  // namespace moatkv::test
