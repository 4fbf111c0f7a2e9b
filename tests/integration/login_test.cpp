// Logins against a real node process, over the client protocol (issue 5): bad or missing
// logins get clear errors and never take the node down, failed logins are slowed down and
// logged, the backend actions and the meta tree are closed to users bound to an ACL, and a
// restricted watcher sees only what its ACL lets it read.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "actors/auth/password_crypto.hpp"
#include "messages/msgpack_codec.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/request_error.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A node with a root user, a password user joe (password "test123") and a _test user "guest"
// bound to ACL "lim", with `password` as the current method.
struct auth_node {
  node_process node{"login1", {"-I", "Init"}};

  auth_node() {
    client_connection admin(node.host(), node.port());
    admin.request("auth_set", {{"typ", "root"}, {"ident", "*"}});
    const std::string& key = ensure_session_key(admin);
    admin.request("auth_set", {{"typ", "password"},
                               {"ident", "joe"},
                               {"password", value(bin{auth::wrap_password(key, "test123")})}});
    admin.request("auth_set", {{"typ", "_test"}, {"ident", "guest"}});
    admin.request("set_internal", {{"path", value(array{"auth", "_test", "user", "guest", "acl"})},
                                   {"value", value(map{{"key", "lim"}})}});
    admin.request("set_internal", {{"path", value(array{"acl", "lim", "pub"})}, {"value", "rxe"}});
    admin.request("set_internal",
                  {{"path", value(array{"acl", "lim", "pub", "#"})}, {"value", "rxe"}});
    admin.request("set_internal",
                  {{"path", value(array{"acl", "lim", "pub", "hidden"})}, {"value", "e"}});
    admin.request("set_auth_typ", {{"typ", "password"}});
  }

  std::unique_ptr<client_connection> connect() {
    return std::make_unique<client_connection>(node.host(), node.port());
  }
  std::unique_ptr<client_connection> login_as(const std::string& spec) {
    auto c = connect();
    auth_spec s = parse_auth_spec(spec);
    login(*c, &s);
    return c;
  }
};

}  // namespace

TEST_CASE_FIXTURE(auth_node,
                  "login: nothing before the login; bad auth messages get clear errors") {
  auto c = connect();
  const value& auth = *c->greeting().find("auth");
  CHECK(auth.elements().front() == value("password"));

  CHECK(error_text(*c, "get_value", {{"path", value::make_path({})}}) == "NoAuthError()");
  CHECK(error_text(*c, "msg_send", {{"topic", "x"}, {"data", 1}}) == "NoAuthError()");
  CHECK(stream_error(*c, "auth", {{"typ", "password"}}).starts_with("ValueError("));
  CHECK(stream_error(*c, "auth", {{"typ", "root"}, {"ident", "*"}}) ==
        "RuntimeError('Wrong auth type', 'password')");
  CHECK(stream_error(*c, "auth", {{"typ", "password"}, {"ident", "joe"}, {"password", 5}})
            .starts_with("ValueError("));
  // Without diffie_hellman there is no key to open the password box with.
  CHECK(stream_error(*c, "auth",
                     {{"typ", "password"}, {"ident", "joe"}, {"password", value(bin{"x"})}})
            .find("diffie_hellman") != std::string::npos);
  // A second diffie_hellman.
  ensure_session_key(*c);
  CHECK(error_text(*c, "diffie_hellman", {{"pubkey", value(bin{"\x05"})}, {"length", 1024}}) ==
        "RuntimeError(\"Can't call dh twice\")");
  // The connection still logs in and works; so do new ones.
  auth_spec joe = parse_auth_spec("password name=joe password=test123");
  authenticate(*c, joe);
  CHECK(c->request("get_value", {{"path", value::make_path({})}}).find("value")->as_str() ==
        "Init");
  CHECK(node.running());
}

TEST_CASE_FIXTURE(auth_node, "login: wrong passwords are refused, logged and slowed down") {
  auto attempt = [&](const char* pw) {
    auto c = connect();
    ensure_session_key(*c);
    const std::string& key = c->session_key();
    auto t0 = steady::now();
    std::string err = stream_error(*c, "auth",
                                   {{"typ", "password"},
                                    {"ident", "joe"},
                                    {"password", value(bin{auth::wrap_password(key, pw)})}});
    return std::make_pair(err, steady::now() - t0);
  };
  auto [e1, t1] = attempt("wrong1");
  CHECK(e1 == "AuthFailedError('Password hashes do not match', 'joe')");
  auto [e2, t2] = attempt("wrong2");
  CHECK(e2 == "AuthFailedError('Password hashes do not match', 'joe')");
  CHECK(t2 >= 200ms);  // the second attempt waited behind the first failure (250 ms)
  auto [e3, t3] = attempt("wrong3");
  CHECK(t3 >= 450ms);  // then 500 ms
  // Meanwhile the node serves others at once.
  auto admin_side = login_as("password name=joe password=test123");
  CHECK(admin_side->request("get_tock", {}).find("tock"));
  // The log names the user, the address and the count.
  node.stop();
  std::string log = node.output();
  INFO(log);
  CHECK(log.find("login as password user joe refused (3 in a row") != std::string::npos);
  CHECK(log.find("from 127.0.0.1") != std::string::npos);
}

TEST_CASE_FIXTURE(auth_node,
                  "login: a user bound to an ACL: no meta tree, no backend, filtered watch") {
  {
    auto joe = login_as("password name=joe password=test123");
    joe->request("auth_set", {{"typ", "_test"}, {"ident", "boss"}});  // no ACL
    joe->request("set_auth_typ", {{"typ", "_test"}});                 // guest logs in with _test
    joe->request("set_value", {{"path", value::make_path({"pub", "a"})}, {"value", 1}});
  }
  auto guest = login_as("_test name=guest");
  CHECK(error_text(*guest, "set_internal",
                   {{"path", value(array{"acl", "lim", "#"})}, {"value", "rwdcxena"}})
            .starts_with("ACLError("));
  CHECK(error_text(*guest, "auth_set", {{"typ", "_test"}, {"ident", "mallory"}})
            .starts_with("ACLError("));
  CHECK(error_text(*guest, "set_auth_typ", {{"typ", nullptr}}).starts_with("ACLError("));
  CHECK(error_text(*guest, "msg_monitor", {{"topic", "#"}}).starts_with("ACLError("));
  CHECK(error_text(*guest, "save", {{"path", "/tmp/x"}}).starts_with("ACLError("));
  CHECK(guest->request("get_value", {{"path", value::make_path({"pub", "a"})}})
            .find("value")
            ->as_int64() == 1);

  // The watcher: pub.* readable, pub.hidden only by name (e), elsewhere nothing.
  int64_t seq = guest->send_request(
      "watch", {{"path", value::make_path({})}, {"fetch", false}, {"max_depth", -1}});
  value start = guest->read_for(seq);
  REQUIRE(start.find("state"));
  {
    auto writer = login_as("_test name=boss");
    writer->request("set_value", {{"path", value::make_path({"secret"})}, {"value", "s"}});
    writer->request("set_value", {{"path", value::make_path({"pub", "hidden"})}, {"value", "h"}});
    writer->request("set_value", {{"path", value::make_path({"pub", "b"})}, {"value", 2}});
  }
  CHECK(error_text(*guest, "get_value", {{"path", value::make_path({"secret"})}})
            .starts_with("ACLError("));
  value ev1 = guest->read_for(seq);
  value ev2 = guest->read_for(seq);
  INFO(debug_string(ev1) << " / " << debug_string(ev2));
  // "secret" is not visible at all; pub.hidden without its value; pub.b with it.
  CHECK(*ev1.find("path") == value::make_path({"pub", "hidden"}));
  CHECK(!ev1.find("value"));
  CHECK(ev2.find("path")->elements().back() == value("b"));  // depth-compressed: ("b",)
  CHECK(*ev2.find("value") == value(2));
  CHECK(node.running());
}

}  // namespace moatkv::test
