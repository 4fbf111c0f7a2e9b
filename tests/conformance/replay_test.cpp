// Conformance: replays the captured client traffic of the original MoaT-KV server
// (tests/conformance/data/client-wire-messages.tsv, decoded in
// ../reference/client-wire-transcript.txt) against a fresh moatkv node and requires the same
// replies. This proves that the `moat kv` command line and the Python client library, sending
// exactly these bytes, get answers they cannot tell from the original's (server-internals §7).
//
// What is replayed: the whole transcript on one node, as it was captured ("AUTH SCENARIO (same
// server)" follows the rest); a second test case replays only the part before the auth scenario.
// The node is started as the original was: `server -I Init node1`.
// One raw TCP connection per transcript `conn`, opened in transcript order; each C->S message is
// sent byte for byte. For each S->C row the next message with the expected `seq` is read from
// that connection (messages of other seqs are kept for later rows: across seqs the order of
// replies is not part of the protocol) and compared:
//   * the same set of keys;
//   * every value equal with Python equality (messages/value.hpp) and of the same msgpack kinds
//     (bool is not int, str is not bin, a Path is not an array), except:
//       - `tock`: present where expected and an integer; the values differ from the original's
//         but must relate the same way: an expected tock always maps to the same actual tock and
//         vice versa (an entry's tock in a set reply reappears in later reads of that entry);
//       - `version` of the greeting: we send our real version;
//   * fresh tocks (greetings and `state` messages) strictly grow per connection, in arrival order.
// A missing reply (5 s per message) fails the test, and so does any message the transcript does
// not have (checked when the client closes its side).
//
// After a C->S <EOF> the original still sent `{state: end}` for the streams that were open
// (watch of .moat.kv.config) before closing. Those are not required from our node, which may
// close at once: after our EOF the test only requires that the node closes the connection.
//
// Deliberate deviations of our node, handled explicitly below (see `known deviations`).
//
// The password exchanges cannot be replayed byte for byte: the Diffie-Hellman keys are random.
// The replay re-derives them as the original's client does (batteries §1.4): its
// `diffie_hellman` carries a fresh public key of ours (same group, same other fields), the
// node's reply gives the session key, and every boxed `password` is re-boxed with that key,
// for the password the scenario's command line names (`password=test123`, `password=wrong`).
// The reply's `pubkey` is then compared by kind (bytes), not by value.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/auth/password_crypto.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/value.hpp"
#include "tests/conformance/transcript.hpp"
#include "tests/integration/node_process.hpp"

namespace moatkv::test {
namespace {

constexpr auto reply_timeout = std::chrono::seconds(5);

// ---------------------------------------------------------------------------------------------
// The transcript

using row = transcript_row;

bool contains_auth(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s.find("auth") != std::string::npos;
}

// Rows of the TSV; without `with_auth` only those before the first scenario whose name
// contains "auth".
std::vector<row> load_rows(bool with_auth) {
  std::vector<row> rows = load_transcript();
  if (!with_auth)
    rows.erase(std::find_if(rows.begin(), rows.end(),
                            [](const row& r) { return contains_auth(r.scenario); }),
               rows.end());
  return rows;
}

std::vector<row> load_non_auth_rows() {
  return load_rows(false);
}

// ---------------------------------------------------------------------------------------------
// The replay

struct replay {
  explicit replay(node_process& n) : node(n) {}
  node_process& node;

  struct connection {
    std::unique_ptr<message_socket> sock;
    std::deque<value> pending;  // arrived, not yet matched to a transcript row
    std::optional<int64_t> last_fresh_tock;
    bool send_closed = false;             // we sent our <EOF>
    bool stopped = false;                 // not replayed further (deviation, or a missing reply)
    std::map<int64_t, value> requests;    // seq -> last request sent with it
    std::optional<auth::dh_exchange> dh;  // our side of a re-derived diffie_hellman
    std::optional<int64_t> dh_seq;
    std::string session_key;
  };
  std::optional<std::string> auth_current;  // set by set_auth_typ requests (deviation c)
  int64_t tick_shift = 0;                   // ticks the original used and we did not (deviation a)
  std::map<std::string, connection> conns;
  std::map<int64_t, int64_t> tock_map, tock_map_back;  // expected <-> actual
  int compared = 0;
  std::vector<const row*> skipped_after_eof;  // replies the original sent after the client's EOF

  // Checks on every message as it arrives (arrival order matters for fresh tocks).
  void arrived(connection& c, const row& r, const value& msg) {
    if (!msg.is_map()) {
      FAIL_CHECK(where(r) << ": the node sent a non-map message: " << debug_string(msg));
      return;
    }
    bool greeting = int_of(field(msg, "seq")) == 0 && field(msg, "node");
    if (greeting || field(msg, "state")) {
      std::optional<int64_t> t = int_of(field(msg, "tock"));
      if (!t) {
        FAIL_CHECK(where(r) << ": fresh message without an integer tock: " << debug_string(msg));
      } else {
        if (c.last_fresh_tock && *t <= *c.last_fresh_tock)
          FAIL_CHECK(where(r) << ": fresh tock " << *t << " does not grow (previous fresh tock on "
                              << "this connection: " << *c.last_fresh_tock
                              << "): " << debug_string(msg));
        c.last_fresh_tock = *t;
      }
    }
    c.pending.push_back(msg);
  }

  // The next message of `c` whose seq equals `seq`, waiting up to reply_timeout.
  std::optional<value> next_with_seq(connection& c, const row& r, const value& seq) {
    auto deadline = clock::now() + reply_timeout;
    for (;;) {
      for (auto it = c.pending.begin(); it != c.pending.end(); ++it) {
        const value* s = field(*it, "seq");
        if (s && *s == seq) {
          value v = std::move(*it);
          c.pending.erase(it);
          return v;
        }
      }
      value msg;
      if (c.sock->read_message(msg, deadline) != message_socket::got::message) return std::nullopt;
      arrived(c, r, msg);
    }
  }

  std::string pending_text(const connection& c) const {
    std::string s;
    for (const auto& m : c.pending) s += "\n    " + debug_string(m);
    return s.empty() ? " (none)" : s;
  }

  void compare(const row& r, const value& expected, const value& actual) {
    ++compared;
    bool greeting = int_of(field(expected, "seq")) == 0;
    std::vector<std::string> problems =
        differences(expected, actual,
                    [&](const std::string& key, const value& ev, const value& av,
                        std::vector<std::string>& out) {
                      if (key == "version" && greeting) return true;  // we send our real version
                      if (key == "pubkey") {  // re-derived: random bytes of our own exchange
                        if (!av.is_bin() || av.as_bin().empty())
                          out.push_back("pubkey is not bytes: " + debug_string(av));
                        return true;
                      }
                      if (key == "tock") {
                        check_tock(ev, av, out);
                        return true;
                      }
                      return false;
                    });
    if (!problems.empty())
      FAIL_CHECK(where(r) << ": reply differs" << difference_text(expected, actual, problems));
  }

  // An expected tock always maps to the same actual tock and vice versa.
  void check_tock(const value& ev, const value& av, std::vector<std::string>& out) {
    std::optional<int64_t> e = int_of(&ev), a = int_of(&av);
    if (!a) {
      out.push_back("tock is not an integer: " + debug_string(av));
    } else if (e) {
      auto fw = tock_map.emplace(*e, *a).first;
      auto bw = tock_map_back.emplace(*a, *e).first;
      if (fw->second != *a)
        out.push_back("tock " + std::to_string(*a) + " where the original repeated its tock " +
                      std::to_string(*e) + " (which was our tock " + std::to_string(fw->second) +
                      " before)");
      else if (bw->second != *e)
        out.push_back("tock " + std::to_string(*a) +
                      " repeats an earlier tock that the original had as " +
                      std::to_string(bw->second) + ", here it is " + std::to_string(*e));
    }
  }

  // ------------------------------------------------------------------------------------------
  // known deviations

  // (a) server-internals §7.8, `delete_tree`, BUG note: the original deletes every entry of the
  //     subtree whose data "is not None" — intermediate entries without a value and existing
  //     tombstones included, nil-valued entries never. We delete exactly the entries that hold a
  //     value. In the LIB SESSION the subtree `wire` then holds three values (wire.b.c, wire.b.d
  //     and the nil at wire.1.True), so the reply is `changed: 3` where the original said 7.
  // (c) batteries §1.5, `auth_info` DEFECT: the original looks up (None,None,"auth") and always
  //     answers {}. We answer a get_value of (None,"auth"), i.e. {value: {current: METHOD},
  //     tock: the entry's tock} once set_auth_typ chose one (the replay tracks the requests it
  //     sent); the tock is then the entry's, not a fresh one, so it is only checked to be an int.
  // Every `tick` of node1 in a later reply (greetings, chains) is lower by tick_shift.
  value shift_ticks(value v) const {
    if (v.is_map()) {
      for (auto& [k, x] : v.as_map()) {
        std::optional<int64_t> t = int_of(&x);
        if (k == value("tick") && t && *t > tick_shift)
          x = value(*t - tick_shift);
        else
          x = shift_ticks(std::move(x));
      }
    }
    return v;
  }

  value adjust_expected(const connection& c, const value& original) {
    value expected = tick_shift > 0 ? shift_ticks(original) : original;
    std::optional<int64_t> seq = int_of(field(expected, "seq"));
    if (!seq) return expected;
    auto req = c.requests.find(*seq);
    if (req != c.requests.end() && str_field_is(req->second, "action", "auth_info") &&
        auth_current) {
      value adjusted = expected;
      map_set(adjusted.as_map(), value("value"), value(map{{"current", *auth_current}}));
      map_set(adjusted.as_map(), value("tock"), value());
      return adjusted;
    }
    if (req == c.requests.end() || !str_field_is(req->second, "action", "delete_tree"))
      return expected;
    const value* path = field(req->second, "path");
    if (!path || !path->is_sequence() || !(*path == value(array{value("wire")})) ||
        int_of(field(expected, "changed")) != 7)
      return expected;
    value adjusted = expected;
    map_set(adjusted.as_map(), value("changed"), value(3));
    // Each deletion is an event with its own tick: from here on our node's ticks are 4 lower.
    tick_shift += 7 - 3;
    return adjusted;
  }

  // (b) server-internals §7.2: an unknown action escapes the handler and the original kills the
  //     connection (`{error}` without seq, then close). We reply `{seq, error}` and keep the
  //     connection usable, as §7.2 and ARCHITECTURE.md ("bad input is an error reply, never a
  //     crash") recommend. The transcript's conn12 is not replayed beyond that request; instead
  //     our behaviour is asserted: an error reply for that seq, then a working `get_tock`.
  void unknown_action(connection& c, const row& r) {
    c.sock->send_bytes(r.bytes);
    c.stopped = true;
    value seq = *field(r.msg, "seq");
    std::optional<value> reply = next_with_seq(c, r, seq);
    REQUIRE_MESSAGE(reply.has_value(),
                    where(r) << ": no reply to an unknown action within 5 s"
                             << (c.sock->eof() ? " (the node closed the connection)" : ""));
    INFO(where(r) << ": reply to an unknown action: " << debug_string(*reply));
    const value* err = field(*reply, "error");
    CHECK((err && err->is_str() && !err->as_str().empty()));
    CHECK(!field(*reply, "state"));

    int64_t next_seq = *int_of(&seq) + 1;
    c.sock->send_bytes(encode(value(map{{"action", "get_tock"}, {"seq", next_seq}})));
    std::optional<value> tock = next_with_seq(c, r, value(next_seq));
    REQUIRE_MESSAGE(tock.has_value(), where(r) << ": no reply to get_tock after the unknown action"
                                               << (c.sock->eof() ? " (connection closed)" : ""));
    INFO("get_tock reply: " << debug_string(*tock));
    CHECK(!field(*tock, "error"));
    CHECK(int_of(field(*tock, "tock")).has_value());
  }

  // The password the scenario's command line uses ("... password=test123 ...").
  static std::string scenario_password(const row& r) {
    auto at = r.scenario.find("password=");
    if (at == std::string::npos) return {};
    std::string pw = r.scenario.substr(at + 9);
    return pw.substr(0, pw.find(' '));
  }

  // A C->S message of a password exchange, re-derived (see the file comment).
  std::string rederive(connection& c, const row& r) {
    value msg = r.msg;
    map& m = msg.as_map();
    if (str_field_is(msg, "action", "diffie_hellman")) {
      int64_t length = int_of(field(msg, "length")).value_or(1024);
      c.dh.emplace(auth::dh_group_for_length(length));
      c.dh_seq = int_of(field(msg, "seq"));
      map_set(m, value("pubkey"), value(bin{c.dh->public_key()}));
      return encode(msg);
    }
    if (const value* pw = field(msg, "password"); pw && pw->is_bin()) {
      REQUIRE_MESSAGE(!c.session_key.empty(), where(r) << ": a boxed password before any DH");
      std::string clear = scenario_password(r);
      REQUIRE_MESSAGE(!clear.empty(), where(r) << ": no password=... in the scenario name");
      map_set(m, value("password"), value(bin{auth::wrap_password(c.session_key, clear)}));
      return encode(msg);
    }
    return r.bytes;
  }

  // ------------------------------------------------------------------------------------------

  void run(const std::vector<row>& rows) {
    for (const row& r : rows) {
      auto [it, created] = conns.try_emplace(r.conn);
      connection& c = it->second;
      if (created) c.sock = message_socket::connect_to(node.host(), node.port());
      if (c.stopped) continue;

      if (r.direction == "C->S") {
        if (r.eof) {
          // Every message the node sent on this connection must have been in the transcript.
          CHECK_MESSAGE(c.pending.empty(),
                        where(r) << ": messages the transcript does not have:" << pending_text(c));
          c.pending.clear();
          c.sock->shutdown_write();
          c.send_closed = true;
          continue;
        }
        if (str_field_is(r.msg, "action", "no_such_action")) {
          unknown_action(c, r);
          continue;
        }
        if (std::optional<int64_t> seq = int_of(field(r.msg, "seq")); seq && field(r.msg, "action"))
          c.requests[*seq] = r.msg;
        if (str_field_is(r.msg, "action", "set_auth_typ"))
          if (const value* t = field(r.msg, "typ"); t && t->is_str()) auth_current = t->as_str();
        c.sock->send_bytes(rederive(c, r));
        continue;
      }

      // S->C
      if (r.eof) {
        // After our EOF the node must close (messages before the close, e.g. the original's
        // `{state: end}` for open streams, are allowed but not required).
        auto deadline = clock::now() + reply_timeout;
        value ignored;
        while (!c.sock->eof() &&
               c.sock->read_message(ignored, deadline) == message_socket::got::message) {
        }
        CHECK_MESSAGE(c.sock->eof(), where(r)
                                         << ": the node did not close the connection within 5 s"
                                         << (c.send_closed ? " after the client's EOF" : ""));
        c.stopped = true;
        continue;
      }
      if (c.send_closed) {  // `{state: end}` after the client's EOF: not required
        skipped_after_eof.push_back(&r);
        continue;
      }

      const value* seq = field(r.msg, "seq");
      REQUIRE_MESSAGE(seq != nullptr,
                      where(r) << ": transcript reply without seq: " << debug_string(r.msg));
      value expected = adjust_expected(c, r.msg);
      std::optional<value> actual = next_with_seq(c, r, *seq);
      if (!actual) {
        FAIL_CHECK(where(r) << ": no reply with seq " << debug_string(*seq) << " within 5 s"
                            << (c.sock->eof() ? " (the node closed the connection)" : "")
                            << "\n  expected: " << debug_string(expected)
                            << "\n  other messages received:" << pending_text(c));
        c.stopped = true;  // the rest of this connection would only cascade
        continue;
      }
      compare(r, expected, *actual);
      if (c.dh && c.dh_seq && int_of(seq) == c.dh_seq) {
        const value* pk = field(*actual, "pubkey");
        REQUIRE_MESSAGE((pk && pk->is_bin()), where(r)
                                                  << ": no pubkey in " << debug_string(*actual));
        c.session_key = c.dh->shared_key(pk->as_bin());
      }
    }
  }
};

}  // namespace

TEST_CASE("the transcript holds the expected non-auth part") {
  std::vector<row> rows = load_non_auth_rows();
  std::map<std::string, int> per_conn;
  for (const auto& r : rows) per_conn[r.conn]++;
  CHECK(per_conn.size() == 12);  // 11 CLI connections and the LIB SESSION
  CHECK(rows.front().conn == "conn1");
  CHECK(rows.back().conn == "conn12");
  CHECK(std::none_of(rows.begin(), rows.end(),
                     [](const row& r) { return contains_auth(r.scenario); }));
}

TEST_CASE("the transcript's auth scenario: root and password logins, users, a wrong password") {
  std::vector<row> rows = load_rows(true);
  size_t auth_rows = std::count_if(rows.begin(), rows.end(),
                                   [](const row& r) { return contains_auth(r.scenario); });
  CHECK(auth_rows == 56);  // 8 connections of the AUTH SCENARIO
  node_process node("node1", {"-I", "Init"});
  {
    replay rp(node);
    rp.run(rows);
    MESSAGE("compared " << rp.compared << " replies");
    CHECK(rp.auth_current == std::optional<std::string>("password"));
    for (const row* r : rp.skipped_after_eof) {
      INFO(where(*r) << ": " << debug_string(r->msg));
      CHECK(str_field_is(r->msg, "state", "end"));
    }
  }
  CHECK_MESSAGE(node.running(), "the node exited during the replay");
  CHECK_MESSAGE(node.stop() == 0, "the node did not stop cleanly on SIGTERM within 5 s");
}

TEST_CASE("replay of the original's client traffic (non-auth part) against a fresh node") {
  std::vector<row> rows = load_non_auth_rows();
  node_process node("node1", {"-I", "Init"});
  {
    replay rp(node);
    rp.run(rows);
    MESSAGE("compared " << rp.compared << " replies");
    // The replies not required after the client's EOF are, as the file comment says, only the
    // original's `{state: end}` messages of open streams.
    CHECK(!rp.skipped_after_eof.empty());
    for (const row* r : rp.skipped_after_eof) {
      INFO(where(*r) << ": " << debug_string(r->msg));
      CHECK(str_field_is(r->msg, "state", "end"));
    }
  }  // all connections closed
  CHECK_MESSAGE(node.running(), "the node exited during the replay");
  CHECK_MESSAGE(node.stop() == 0, "the node did not stop cleanly on SIGTERM within 5 s");
}

}  // namespace moatkv::test
