// TLS for the client protocol: an OpenSSL `SSL` object over two memory BIOs, so the byte
// transport stays with the caller (a CAF broker on the node, a blocking socket in the client).
//
//     network ──feed_encrypted()──▶ [rbio] SSL [wbio] ──take_encrypted()──▶ network
//                       ◀── plaintext ──┘     ▲
//                                  write_plain() (held back until the handshake is done)
//
// Contract:
//   * A tls_context is immutable once built and may be shared by any number of channels on any
//     threads; a tls_channel belongs to one thread at a time (one session, one connection).
//   * After every feed_encrypted() or write_plain() the caller sends take_encrypted() to the
//     peer: the handshake, alerts and records all come out there.
//   * failed() is final: the channel produces nothing more but a pending alert, and error()
//     says why in words a user can act on.
//   * TLS 1.2 is the minimum on both sides. The server asks for no client certificate.
//
// No CAF here, and no OpenSSL types in this header: the SSL objects are opaque pointers.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

struct ssl_ctx_st;
struct ssl_st;

namespace moatkv {

/// A context could not be built (missing or unreadable file, key not matching the certificate).
struct tls_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// kv.server.bind_default.ssl: {cert: FILE, key: FILE}
struct tls_server_config {
  std::string cert_file;  // PEM, the certificate followed by any intermediates
  std::string key_file;   // PEM private key
};

/// kv.conn.ssl: true | {ca: FILE, cert: FILE, key: FILE, verify: bool}
struct tls_client_config {
  bool verify = true;       // false: accept any server certificate (explicitly configured only)
  std::string ca_file;      // empty: the system's trust store
  std::string cert_file;    // optional client certificate (PEM) ...
  std::string key_file;     // ... and its key (defaults to cert_file when empty)
  std::string server_name;  // name checked against the certificate and sent as SNI; empty: host
};

class tls_context {
 public:
  /// Throws tls_error naming the file that is missing or wrong.
  static std::shared_ptr<tls_context> server(const tls_server_config& cfg);
  static std::shared_ptr<tls_context> client(const tls_client_config& cfg);

  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  bool is_server() const { return server_; }
  bool verifies_peer() const { return verify_; }

 private:
  friend class tls_channel;
  tls_context(ssl_ctx_st* ctx, bool server, bool verify)
      : ctx_(ctx), server_(server), verify_(verify) {}

  ssl_ctx_st* ctx_;
  bool server_;
  bool verify_;
};

class tls_channel {
 public:
  /// A client channel checks the server certificate against `peer_name` (a host name or an IP
  /// address; SNI is sent for host names) and starts its handshake at once, so
  /// take_encrypted() holds the ClientHello. A server channel waits for the client.
  explicit tls_channel(std::shared_ptr<const tls_context> ctx, const std::string& peer_name = {});
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  /// Bytes from the peer; returns the application data they completed (often none). On a
  /// handshake or record error the channel fails and the result holds what came before.
  std::string feed_encrypted(std::string_view bytes);
  /// Application data for the peer; kept until the handshake is done, then encrypted.
  void write_plain(std::string_view bytes);
  /// Everything the channel wants sent to the peer since the last call.
  std::string take_encrypted();
  bool has_encrypted() const;

  bool handshake_done() const { return handshake_done_; }
  /// The peer ended the TLS session (close_notify): no more data will come.
  bool peer_closed() const { return peer_closed_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }

 private:
  void advance(std::string& plain);
  void fail(int ret, const char* during);

  std::shared_ptr<const tls_context> ctx_;
  ssl_st* ssl_ = nullptr;
  std::string pending_plain_;  // written before the handshake finished
  bool seen_input_ = false;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
  std::string error_;
};

}  // namespace moatkv
