// Logins, users and ACLs through the command line only (batteries.md §1, §2, §8.1), against a
// real node: every step is a separate `moatkv -p PORT [-a SPEC] auth|acl|data …` process whose
// exit status, stdout and stderr are checked — the sequence of the original's captured AUTH
// SCENARIO (client-wire-transcript.txt), then users, parameters and ACLs on top of it.
//
// A node that requires a login refuses everything but `auth` / `diffie_hellman` before it; a
// client without -a stops with ClientAuthRequiredError (status 1), a wrong password with the
// node's AuthFailedError (status 1), an unusable spec with status 2.
//
// The last case is a two-node cluster (mosquitto): a node joining a password-protected peer
// downloads its tree only with `kv.conn.auth`; without it its log names the peer and the reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/client_ok.hpp"
#include "tests/integration/cluster_helpers.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"
#include "tests/temp_dir.hpp"

namespace moatkv::test {
namespace {

const std::string joe = "password name=joe password=test123";
const std::string admin = "password name=admin password=admin123";

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::vector<std::string> with_auth(const std::string& spec, std::vector<std::string> args) {
  args.insert(args.begin(), {"-a", spec});
  return args;
}

// A command that must fail with `status`, its stderr containing every one of `texts`.
command_result fails(const node_process& node, const std::vector<std::string>& args, int status,
                     const std::vector<std::string>& texts) {
  command_result r = node.client(args);
  std::string cmd = "moatkv";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << ": " << r.describe());
  CHECK(r.exit_code == status);
  for (const auto& t : texts) CHECK_MESSAGE(contains(r.err, t), "stderr lacks: " << t);
  return r;
}

// The transcript's start: a root user, logins required (root), then a password user joe and
// the switch to password logins. Leaves an `admin` password user without an ACL, too.
void set_up_password_logins(const node_process& node) {
  CHECK(ok(node, {"auth", "-m", "root", "user", "add"}).out == "*\n");
  CHECK(ok(node, {"auth", "-m", "root", "init"}).out == "Authorization switched to root\n");
  CHECK(ok(node, with_auth("root", {"auth", "-m", "password", "user", "add", "name=joe",
                                    "password=test123"}))
            .out == "joe\n");
  ok(node, with_auth("root",
                     {"auth", "-m", "password", "user", "add", "name=admin", "password=admin123"}));
  CHECK(ok(node, with_auth("root", {"auth", "-m", "password", "init", "-s"})).out ==
        "Authorization switched to password\n");
}

}  // namespace

TEST_CASE("auth: root logins from the command line (the original's scenario)") {
  node_process node("authroot", {"-I", "Init"});
  // Without a configured method there is nothing to switch to.
  fails(node, {"auth", "-m", "root", "init"}, 2, {"has no users yet"});
  CHECK(ok(node, {"auth", "-m", "root", "user", "add"}).out == "*\n");
  // No login needed yet: a given -a is ignored, as the original client does.
  CHECK(ok(node, with_auth("password name=joe password=whatever", {"data", ":"})).out ==
        "'Init'\n");
  CHECK(ok(node, {"auth", "-m", "root", "init"}).out == "Authorization switched to root\n");

  fails(node, {"data", ":", "get"}, 1, {"ClientAuthRequiredError", "log in using: root"});
  CHECK(ok(node, with_auth("root", {"data", ":", "get"})).out == "'Init'\n");
  fails(node, with_auth(joe, {"data", ":", "get"}), 1,
        {"ClientAuthMethodError", "You cannot use 'password' auth"});
  // Specs the original's client schemas refuse: usage errors, nothing is sent.
  fails(node, with_auth("root name=joe", {"data", ":", "get"}), 2, {"takes no parameters"});
  fails(node, with_auth("password name=joe password=abc", {"data", ":", "get"}), 2,
        {"at least 5 characters"});
  fails(node, with_auth("kerberos", {"data", ":", "get"}), 2, {"unknown auth method"});

  fails(node, with_auth("root", {"auth", "init"}), 2, {"already set up"});
  CHECK(ok(node, with_auth("root", {"auth", "list"})).out == "root\n");
  CHECK(ok(node, with_auth("root", {"auth", "user", "list"})).out == "*\n");
  CHECK(ok(node, with_auth("root", {"auth", "user", "get", "*"})).out == "{}\n");
  CHECK(ok(node, with_auth("root", {"-v", "auth", "user", "auth"})).out == "OK.\n");

  // Turning logins off again: new connections need no login.
  CHECK(ok(node, with_auth("root", {"auth", "-m", "-", "init", "-s"})).out ==
        "Authorization turned off.\n");
  CHECK(ok(node, {"data", ":", "get"}).out == "'Init'\n");
}

TEST_CASE("auth: password users (Diffie-Hellman), user list/get/mod and test logins") {
  node_process node("authpw", {"-I", "Init"});
  set_up_password_logins(node);

  CHECK(ok(node, with_auth(joe, {"data", ":", "get"})).out == "'Init'\n");
  fails(node, with_auth("password name=joe password=wrong", {"data", ":", "get"}), 1,
        {"AuthFailedError(", "Password hashes do not match", "joe"});
  fails(node, with_auth("password name=nobody password=test123", {"data", ":", "get"}), 1, {});
  fails(node, with_auth("root", {"data", ":", "get"}), 1, {"ClientAuthMethodError"});
  // The auth commands use the current method without -m.
  {
    command_result r = ok(node, with_auth(joe, {"auth", "list"}));
    CHECK(contains(r.out, "password\n"));
    CHECK(contains(r.out, "root\n"));
  }
  {
    command_result r = ok(node, with_auth(joe, {"auth", "user", "list"}));
    CHECK(contains(r.out, "joe\n"));
    CHECK(contains(r.out, "admin\n"));
    r = ok(node, with_auth(joe, {"auth", "user", "list", "-v"}));
    CHECK(contains(r.out, "ident: joe\n"));
    CHECK(contains(r.out, "typ: password\n"));
  }
  CHECK(ok(node, with_auth(joe, {"auth", "user", "get", "joe"})).out == "name: joe\n");
  fails(node, with_auth(joe, {"auth", "user", "get", "nobody"}), 1, {});
  // A user that exists already: auth_set with chain nil ("must be new") is refused.
  fails(node, with_auth(joe, {"auth", "user", "add", "name=joe", "password=other12"}), 1, {});
  fails(node, with_auth(joe, {"auth", "user", "add", "name=joe"}), 2, {"needs password="});

  // Test logins on a connection (verified, the connection stays as it is).
  CHECK(ok(node, with_auth(joe, {"-v", "auth", "user", "auth", "-a", admin})).out == "OK.\n");
  fails(node, with_auth(joe, {"auth", "user", "auth", "-a", "password name=admin password=nonono"}),
        1, {"AuthFailedError("});

  // A new password: the login with the old one fails from now on. Both the login and the
  // auth_set use the connection's one Diffie-Hellman key.
  CHECK(ok(node, with_auth(joe, {"auth", "user", "mod", "joe", "password=newpass1"})).out ==
        "joe\n");
  fails(node, with_auth(joe, {"data", ":", "get"}), 1, {"Password hashes do not match"});
  const std::string joe2 = "password name=joe password=newpass1";
  CHECK(ok(node, with_auth(joe2, {"data", ":", "get"})).out == "'Init'\n");
  // -m prints the reply of the write.
  {
    command_result r =
        ok(node, with_auth(joe2, {"-m", "auth", "user", "mod", "joe", "password=test123"}));
    CHECK(contains(r.out, "changed: true"));
    CHECK(contains(r.out, "ident: joe"));
  }
  CHECK(ok(node, with_auth(joe, {"data", ":", "get"})).out == "'Init'\n");
}

TEST_CASE("auth + acl: an ACL bound to a user restricts what the user can do") {
  node_process node("authacl", {"-I", "Init"});
  set_up_password_logins(node);
  ok(node, with_auth(admin, {"data", "one.two", "set", "-e", ":", "12"}));
  ok(node, with_auth(admin, {"data", "other", "set", "-e", ":", "1"}));

  // acl set: replace, add, remove; old and new flags printed as YAML.
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "x", "joeacl", ":"})).out ==
        "old: ''\nnew: x\n");
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "rw", "joeacl", "one"})).out ==
        "old: ''\nnew: rw\n");
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "+xw", "joeacl", "one"})).out ==
        "old: rw\nnew: rwx\n");
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "-w", "joeacl", "one"})).out ==
        "old: rwx\nnew: rx\n");
  CHECK(ok(node, with_auth(admin, {"acl", "set", "joeacl", "one.two"})).out ==
        "old: ''\nnew: x\n");  // default +x
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "r", "joeacl", "one.two"})).out ==
        "old: x\nnew: r\n");
  fails(node, with_auth(admin, {"acl", "set", "-a", "rq", "joeacl", "one"}), 2,
        {"unknown ACL flag", "q"});
  ok(node, with_auth(admin, {"acl", "set", "-a", "rwc", "joeacl", "scratch"}));
  CHECK(ok(node, with_auth(admin, {"acl", "set", "-a", "-", "joeacl", "scratch"})).out ==
        "old: rwc\nnew: '-'\n");
  CHECK(ok(node, with_auth(admin, {"acl", "get", "joeacl", "scratch"})).out.empty());

  CHECK(ok(node, with_auth(admin, {"acl", "get", "joeacl", "one"})).out == "'rx'\n");
  CHECK(ok(node, with_auth(admin, {"acl", "list"})).out == "- joeacl\n");
  {
    command_result r = ok(node, with_auth(admin, {"acl", "dump", "joeacl", ":"}));
    CHECK(contains(r.out, "- !P one: rx\n"));
    CHECK(contains(r.out, "- !P one.two: r\n"));
  }
  // test_acl with another ACL: '+' allowed, '-' denied.
  CHECK(ok(node, with_auth(admin, {"acl", "test", "-a", "joeacl", "-m", "r", "one.two"})).out ==
        "+\n");
  CHECK(ok(node, with_auth(admin, {"acl", "test", "-a", "joeacl", "-m", "w", "one.two"})).out ==
        "-\n");
  CHECK(ok(node, with_auth(admin, {"acl", "test", "-a", "joeacl", "-m", "r", "other"})).out ==
        "-\n");
  fails(node, with_auth(admin, {"acl", "test", "-m", "rw", "one"}), 2, {"one letter"});

  fails(node, with_auth(admin, {"auth", "user", "param", "nobody", "acl", "joeacl"}), 2,
        {"There is no password user 'nobody'"});
  // Bind the ACL to joe; it applies from joe's next login.
  CHECK(ok(node, with_auth(admin, {"auth", "user", "param", "joe", "acl", "joeacl"})).out ==
        "joe acl joeacl\n");
  CHECK(ok(node, with_auth(joe, {"data", "one.two"})).out == "12\n");
  fails(node, with_auth(joe, {"data", "other", "get"}), 1, {"ACLError("});
  fails(node, with_auth(joe, {"data", "one.two", "set", "-e", ":", "13"}), 1, {"ACLError("});
  CHECK(ok(node, with_auth(admin, {"data", "one.two"})).out == "12\n");  // unchanged
  // Unbinding (KEY '-') gives joe everything again at the next login.
  CHECK(ok(node, with_auth(admin, {"auth", "user", "param", "joe", "acl", "-"})).out ==
        "joe acl -\n");
  CHECK(ok(node, with_auth(joe, {"data", "other"})).out == "1\n");
}

TEST_CASE("auth: a node joining a password-protected peer logs in with kv.conn.auth") {
  mosquitto_process broker;
  temp_dir dir;
  uint16_t p1 = free_loopback_port(), p2 = free_loopback_port(), p3 = free_loopback_port();
  while (p2 == p1) p2 = free_loopback_port();
  while (p3 == p1 || p3 == p2) p3 = free_loopback_port();
  cluster_node_config cfg;
  cfg.mqtt_uri = broker.uri();
  cfg.hostmap = {{"n1", p1}, {"n2", p2}, {"n3", p3}};

  cluster_node n1(dir, "n1", p1, cfg, "Init");
  // Logins on n1, through its command line; then data only a login can read.
  auto on_n1 = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-p", std::to_string(p1)});
    command_result r = run_moatkv(args);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
  };
  on_n1({"auth", "-m", "password", "user", "add", "name=joe", "password=test123"});
  on_n1({"auth", "-m", "password", "init"});
  on_n1({"-a", joe, "data", "secret.x", "set", "-v", ":", "only for joe"});

  // The joining nodes' configs: node_yaml's `kv:` map plus kv.conn.auth (n2 only).
  auto start = [&](const std::string& name, uint16_t port, const std::string& extra) {
    std::string file = dir.write(name + ".yaml", node_yaml(cfg) + extra);
    child_process::options opts;
    opts.capture_stderr = true;
    return std::make_unique<child_process>(
        std::vector<std::string>{moatkv_binary(), "-v", "-c", file, "server", name, "-C",
                                 "kv.server.bind_default.host=127.0.0.1", "-C",
                                 "kv.server.bind_default.port=" + std::to_string(port)},
        opts);
  };

  // Without a login the fetch fails, and the log says from whom and why.
  auto n3 = start("n3", p3, "");
  bool refused = n3->wait_for_stdout(
      [](const std::string& out) {
        return std::regex_search(out, std::regex("fetch from n1 .*ClientAuthRequiredError"));
      },
      30s);
  CHECK_MESSAGE(refused, "n3's log:\n" << n3->stdout_text() << n3->stderr_text());
  n3->stop();

  // With kv.conn.auth it logs in (DH + password) and serves n1's data, users included.
  auto n2 = start("n2", p2, "  conn:\n    auth: \"" + joe + "\"\n");
  bool serving = n2->wait_for_stdout_text("moatkv node n2 serving on", 40s);
  REQUIRE_MESSAGE(serving, "n2's log:\n" << n2->stdout_text() << n2->stderr_text());
  command_result r = run_moatkv({"-p", std::to_string(p2), "-a", joe, "data", "secret.x", "get"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "'only for joe'\n");
  r = run_moatkv({"-p", std::to_string(p2), "data", "secret.x", "get"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "ClientAuthRequiredError"));
  n2->stop();
}

}  // namespace moatkv::test
