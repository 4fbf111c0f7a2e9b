// tls_channel: a server and a client channel talking through memory, as the session broker and
// the blocking client use them, with certificates made at test time.
#include <doctest/doctest.h>

#include <string>

#include "tests/temp_dir.hpp"
#include "tests/test_certs.hpp"
#include "transport/tls_channel.hpp"

using namespace moatkv;

namespace {

// Moves bytes both ways until neither side has anything to send; returns the plaintext each
// side received on the way.
struct wire {
  wire(tls_channel& s, tls_channel& c) : server(s), client(c) {}
  tls_channel& server;
  tls_channel& client;
  std::string to_server, to_client;  // plaintext received

  void pump() {
    for (int round = 0; round < 100; ++round) {
      std::string c = client.take_encrypted();
      std::string s = server.take_encrypted();
      if (c.empty() && s.empty()) return;
      if (!c.empty()) to_server += server.feed_encrypted(c);
      if (!s.empty()) to_client += client.feed_encrypted(s);
    }
    FAIL("the channels did not settle");
  }
};

struct fixture {
  test::temp_dir dir{"moatkv-tls"};
  test::test_cert cert = test::make_test_cert(dir);
  std::shared_ptr<tls_context> server_ctx = tls_context::server({cert.cert_file, cert.key_file});

  std::shared_ptr<tls_context> client_ctx(const std::string& ca, bool verify = true) {
    tls_client_config c;
    c.ca_file = ca;
    c.verify = verify;
    return tls_context::client(c);
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "TLS: handshake, then data both ways") {
  tls_channel server(server_ctx);
  tls_channel client(client_ctx(cert.cert_file), "127.0.0.1");
  CHECK(client.has_encrypted());  // the ClientHello goes out at once
  CHECK_FALSE(server.has_encrypted());
  wire w{server, client};
  w.pump();
  REQUIRE_MESSAGE(server.handshake_done(), server.error());
  REQUIRE_MESSAGE(client.handshake_done(), client.error());
  CHECK(w.to_server.empty());
  CHECK(w.to_client.empty());

  const std::string hello("\x82\xa3seq\x00\xa4qlen\x0a", 11);  // {seq: 0, qlen: 10}
  client.write_plain(hello);
  w.pump();
  CHECK(w.to_server == hello);

  // More than one TLS record (16 KiB each) and every byte value.
  std::string big;
  for (int i = 0; i < 100000; ++i) big += static_cast<char>(i * 7);
  server.write_plain(big);
  server.write_plain("tail");
  w.pump();
  CHECK(w.to_client == big + "tail");
  CHECK_FALSE(server.failed());
  CHECK_FALSE(client.failed());
}

TEST_CASE_FIXTURE(fixture, "TLS: data written before the handshake is held until it is done") {
  tls_channel server(server_ctx);
  tls_channel client(client_ctx(cert.cert_file), "localhost");
  client.write_plain("early from the client");
  server.write_plain("greeting");  // the session sends its greeting only after the handshake,
                                   // but the channel must not lose it either way
  wire w{server, client};
  w.pump();
  REQUIRE(client.handshake_done());
  CHECK(w.to_server == "early from the client");
  CHECK(w.to_client == "greeting");
}

TEST_CASE_FIXTURE(fixture, "TLS: a clear-text client fails the server channel at its first byte") {
  tls_channel server(server_ctx);
  CHECK(server.feed_encrypted("\x82").empty());  // a msgpack map, as a clear client's hello
  CHECK(server.failed());
  CHECK_FALSE(server.handshake_done());
  CHECK(server.error().find("did not start a TLS handshake") != std::string::npos);
  // Failed is final.
  CHECK(server.feed_encrypted("\x16\x03\x01").empty());
  CHECK(server.failed());
}

TEST_CASE_FIXTURE(fixture,
                  "TLS: garbage after a handshake record header fails with OpenSSL's reason") {
  tls_channel server(server_ctx);
  std::string junk("\x16\x03\x01\x00\x10", 5);
  junk += std::string(16, '\xff');
  CHECK(server.feed_encrypted(junk).empty());
  REQUIRE(server.failed());
  CHECK(server.error().rfind("TLS handshake failed: ", 0) == 0);
  CHECK(server.error().size() > std::string("TLS handshake failed: ").size());
}

TEST_CASE_FIXTURE(fixture, "TLS: a client fails when the server answers in clear text") {
  tls_channel client(client_ctx(cert.cert_file), "127.0.0.1");
  (void)client.take_encrypted();
  client.feed_encrypted("\x85\xa3seq\x00");  // the start of a clear greeting
  CHECK(client.failed());
  CHECK(client.error().find("clear-text server") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "TLS: a certificate from another CA fails verification") {
  test::test_cert other = test::make_test_cert(dir, "other");
  tls_channel server(server_ctx);
  tls_channel client(client_ctx(other.cert_file), "127.0.0.1");
  wire w{server, client};
  w.pump();
  CHECK_FALSE(client.handshake_done());
  REQUIRE(client.failed());
  INFO(client.error());
  CHECK(client.error().find("certificate verify failed") != std::string::npos);
  // The client's alert reaches the server, which fails too instead of waiting.
  CHECK(server.failed());
}

TEST_CASE_FIXTURE(fixture, "TLS: the certificate must name the host") {
  tls_channel server(server_ctx);
  tls_channel client(client_ctx(cert.cert_file), "db.example.org");
  wire w{server, client};
  w.pump();
  REQUIRE(client.failed());
  INFO(client.error());
  CHECK(client.error().find("hostname mismatch") != std::string::npos);

  tls_channel server2(server_ctx);
  tls_channel client2(client_ctx(cert.cert_file), "127.0.0.2");
  wire w2{server2, client2};
  w2.pump();
  REQUIRE(client2.failed());
  CHECK(client2.error().find("IP address mismatch") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "TLS: verify: false accepts any certificate") {
  test::test_cert other = test::make_test_cert(dir, "other");
  tls_channel server(server_ctx);
  tls_channel client(client_ctx(other.cert_file, false), "db.example.org");
  wire w{server, client};
  w.pump();
  CHECK_MESSAGE(client.handshake_done(), client.error());
}

TEST_CASE_FIXTURE(fixture, "TLS: a client certificate is offered when configured") {
  test::test_cert mine = test::make_test_cert(dir, "client");
  tls_client_config c;
  c.ca_file = cert.cert_file;
  c.cert_file = mine.cert_file;
  c.key_file = mine.key_file;
  tls_channel server(server_ctx);
  tls_channel client(tls_context::client(c), "localhost");
  wire w{server, client};
  w.pump();
  CHECK_MESSAGE(client.handshake_done(), client.error());
}

TEST_CASE_FIXTURE(fixture, "TLS: contexts name the file that is wrong") {
  std::string missing = dir.file("nope.pem");
  try {
    tls_context::server({missing, cert.key_file});
    FAIL("a missing certificate was accepted");
  } catch (const tls_error& e) {
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
    CHECK(std::string(e.what()).find("No such file") != std::string::npos);
  }
  std::string junk = dir.write("junk.pem", "not a certificate\n");
  CHECK_THROWS_AS(tls_context::server({junk, cert.key_file}), tls_error);
  CHECK_THROWS_AS(tls_context::server({cert.cert_file, junk}), tls_error);
  test::test_cert other = test::make_test_cert(dir, "other");
  try {
    tls_context::server({cert.cert_file, other.key_file});
    FAIL("a key of another certificate was accepted");
  } catch (const tls_error& e) {
    CHECK(std::string(e.what()).find("does not belong") != std::string::npos);
  }
  tls_client_config c;
  c.ca_file = junk;
  CHECK_THROWS_AS(tls_context::client(c), tls_error);
  c.ca_file = missing;
  CHECK_THROWS_AS(tls_context::client(c), tls_error);
}
