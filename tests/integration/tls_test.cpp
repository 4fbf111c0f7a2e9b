// TLS on the client protocol, end to end: a real `moatkv server` with
// kv.server.bind_default.ssl = {cert, key} (a certificate made at test time), reached by the
// blocking client and by the command line with kv.conn.ssl. Clients that do not speak TLS are
// turned away with a clear message, and the node keeps serving.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "messages/msgpack_codec.hpp"
#include "tests/integration/client_ok.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/temp_dir.hpp"
#include "tests/test_certs.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {
namespace {

struct tls_node {
  temp_dir dir{"moatkv-tls"};
  test_cert cert = make_test_cert(dir);
  node_process node{"tlsnode",
                    {"-I", "Init", "-C", "kv.server.bind_default.ssl.cert=" + cert.cert_file, "-C",
                     "kv.server.bind_default.ssl.key=" + cert.key_file}};

  client_options tls_options() const {
    client_options o;
    o.tls = tls_client_config{};
    o.tls->ca_file = cert.cert_file;
    return o;
  }

  // A TLS client sets and reads back a value.
  void round_trip(const std::string& key, int64_t v) const {
    client_connection c(node.host(), node.port(), tls_options());
    CHECK(int_field(c.greeting(), "seq", -1) == 0);
    c.request("set_value", {{"path", value::make_path({"tls", key})}, {"value", v}});
    value got = c.request("get_value", {{"path", value::make_path({"tls", key})}});
    REQUIRE(got.find("value"));
    CHECK(*got.find("value") == value(v));
  }
};

// A plain TCP connection to the node, for bytes no client would send.
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Whether the peer closed `fd` within `limit` (EOF or reset), ignoring anything it sent first.
bool closed_within(int fd, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
  }
}

}  // namespace

TEST_CASE_FIXTURE(tls_node, "TLS: a TLS client is greeted and sets and gets values") {
  round_trip("a", 42);
  round_trip("b", 43);  // a second connection on the same node
}

TEST_CASE_FIXTURE(tls_node, "TLS: a clear-text client is refused with a hint at kv.conn.ssl") {
  try {
    client_connection c(node.host(), node.port(), 10s);
    FAIL("a clear-text client was greeted by a TLS-only node");
  } catch (const client_error& e) {
    std::string what = e.what();
    INFO(what);
    CHECK(what.find("before its greeting") != std::string::npos);
    CHECK(what.find("kv.conn.ssl") != std::string::npos);
  }
  CHECK(node.running());
  round_trip("after-clear", 1);
}

TEST_CASE_FIXTURE(tls_node,
                  "TLS: clear msgpack bytes are dropped at once, well before the timeout") {
  int fd = raw_connect(node.port());
  std::string hello = encode(value(map{{"seq", 0}, {"qlen", 10}}));
  REQUIRE(::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(hello.size()));
  // The handshake timeout is 5 s; a clear-text byte must not wait for it.
  CHECK(closed_within(fd, 3s));
  ::close(fd);
  round_trip("after-raw", 2);
}

TEST_CASE_FIXTURE(tls_node,
                  "TLS: a client that says nothing is closed after the handshake timeout") {
  int fd = raw_connect(node.port());
  CHECK(closed_within(fd, 15s));
  ::close(fd);
  CHECK(node.running());
}

TEST_CASE_FIXTURE(tls_node, "TLS: a client with the wrong CA fails verification") {
  temp_dir other_dir{"moatkv-tls-other"};
  test_cert other = make_test_cert(other_dir, "other");
  client_options o;
  o.tls = tls_client_config{};
  o.tls->ca_file = other.cert_file;
  try {
    client_connection c(node.host(), node.port(), o);
    FAIL("a server certificate from another CA was accepted");
  } catch (const client_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("certificate verify failed") != std::string::npos);
  }
  round_trip("after-bad-ca", 3);
}

TEST_CASE_FIXTURE(tls_node, "TLS: the command line with kv.conn.ssl") {
  const std::string ca = "kv.conn.ssl.ca=" + cert.cert_file;
  ok(node, {"-C", ca, "data", "tls.cli", "set", "-e", ":", "7"});
  CHECK(ok(node, {"-C", ca, "data", "tls.cli"}).out == "7\n");

  // The same through a config file.
  std::string cfg = dir.write("client.yaml", "kv:\n  conn:\n    ssl:\n      ca: " + cert.cert_file +
                                                 "\n      verify: true\n");
  CHECK(ok(node, {"-c", cfg, "data", "tls.cli"}).out == "7\n");

  command_result wrong = node.client(
      {"-C", "kv.conn.ssl.verify=false", "-C", "kv.conn.ssl.cafile=x", "data", "tls.cli"});
  CHECK(wrong.exit_code == 2);
  CHECK(wrong.err.find("kv.conn.ssl.cafile") != std::string::npos);

  command_result clear = node.client({"data", "tls.cli"});
  INFO(clear.describe());
  CHECK(clear.exit_code == 1);
  CHECK(clear.err.find("does it require TLS? see kv.conn.ssl") != std::string::npos);
}

TEST_CASE_FIXTURE(tls_node, "TLS: a TLS client against a clear-text node gets a handshake error") {
  node_process clear("clearnode", {"-I", "Init"});
  try {
    client_connection c(clear.host(), clear.port(), tls_options());
    FAIL("a TLS client talked to a clear-text node");
  } catch (const client_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("did not answer with TLS") != std::string::npos);
  }
  command_result r = clear.client({"-C", "kv.conn.ssl=true", "data", "x"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("did not answer with TLS") != std::string::npos);
}

TEST_CASE("TLS: a node with an unusable certificate exits with status 2 before listening") {
  temp_dir dir{"moatkv-tls"};
  std::string missing = dir.file("missing.crt");
  std::string junk = dir.write("junk.key", "not a key\n");
  command_result r = run_moatkv(
      {"server", "badtls", "-C", "kv.server.bind_default.host=127.0.0.1", "-C",
       "kv.server.bind_default.port=0", "-C", "kv.server.bind_default.ssl.cert=" + missing, "-C",
       "kv.server.bind_default.ssl.key=" + junk},
      std::nullopt, 20s);
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("serving on") == std::string::npos);
  CHECK(r.err.find(missing) != std::string::npos);

  command_result r2 = run_moatkv({"server", "badtls", "-C", "kv.server.bind_default.port=0", "-C",
                                  "kv.server.bind_default.ssl=yes please"},
                                 std::nullopt, 20s);
  INFO(r2.describe());
  CHECK(r2.exit_code == 2);
  CHECK(r2.err.find("kv.server.bind_default.ssl must be") != std::string::npos);
}

}  // namespace moatkv::test
