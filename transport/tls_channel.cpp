#include "transport/tls_channel.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace moatkv {

namespace {

// A TLS stream always opens with a record header: content type 22 (handshake) from the
// client, 22 or 21 (an alert refusing the ClientHello) from the server. OpenSSL needs five
// bytes before it judges the header; checking the first byte ourselves turns away a
// clear-text peer as soon as it sends anything.
constexpr unsigned char record_handshake = 22;
constexpr unsigned char record_alert = 21;

// Drains OpenSSL's (thread-local) error queue into one line.
std::string openssl_errors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    if (!out.empty()) out += "; ";
    if (const char* reason = ERR_reason_error_string(code)) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      out += buf;
    }
    if ((flags & ERR_TXT_STRING) && data && *data) {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out;
}

// OpenSSL's own message for a missing file is "system lib"; say which file and why.
void check_readable(const std::string& file, const char* what) {
  if (file.empty()) throw tls_error(std::string("no TLS ") + what + " file given");
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f)
    throw tls_error("cannot read TLS " + std::string(what) + " " + file + ": " +
                    std::strerror(errno));
  std::fclose(f);
}

struct ctx_deleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_deleter>;

ctx_ptr new_ctx(const SSL_METHOD* method) {
  ERR_clear_error();
  ctx_ptr ctx(SSL_CTX_new(method));
  if (!ctx) throw tls_error("cannot create a TLS context: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Client-initiated TLS 1.2 renegotiation only costs the server CPU; nothing here needs it.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

void use_cert_and_key(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  check_readable(cert, "certificate");
  check_readable(key, "key");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    throw tls_error("TLS certificate " + cert +
                    " is not a usable PEM certificate: " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // Loading already compares the key with the certificate; that is the likelier mistake.
    unsigned long last = ERR_peek_last_error();
    bool mismatch =
        ERR_GET_LIB(last) == ERR_LIB_X509 && (ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH ||
                                              ERR_GET_REASON(last) == X509_R_KEY_TYPE_MISMATCH);
    throw tls_error("TLS key " + key +
                    (mismatch ? " does not belong to the certificate " + cert
                              : std::string(" is not a usable PEM private key")) +
                    ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw tls_error("TLS key " + key + " does not belong to the certificate " + cert + ": " +
                    openssl_errors());
}

bool is_ip_address(const std::string& s) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

std::shared_ptr<tls_context> tls_context::server(const tls_server_config& cfg) {
  ctx_ptr ctx = new_ctx(TLS_server_method());
  use_cert_and_key(ctx.get(), cfg.cert_file, cfg.key_file);
  // Clients here open one long connection; tickets and a session cache would be unused state.
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return std::shared_ptr<tls_context>(new tls_context(ctx.release(), true, false));
}

std::shared_ptr<tls_context> tls_context::client(const tls_client_config& cfg) {
  ctx_ptr ctx = new_ctx(TLS_client_method());
  if (cfg.verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    ERR_clear_error();
    if (!cfg.ca_file.empty()) {
      check_readable(cfg.ca_file, "CA");
      if (SSL_CTX_load_verify_locations(ctx.get(), cfg.ca_file.c_str(), nullptr) != 1)
        throw tls_error("TLS CA file " + cfg.ca_file +
                        " holds no usable PEM certificate: " + openssl_errors());
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      throw tls_error("cannot load the system's TLS trust store: " + openssl_errors());
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.cert_file.empty())
    use_cert_and_key(ctx.get(), cfg.cert_file, cfg.key_file.empty() ? cfg.cert_file : cfg.key_file);
  return std::shared_ptr<tls_context>(new tls_context(ctx.release(), false, cfg.verify));
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

tls_channel::tls_channel(std::shared_ptr<const tls_context> ctx, const std::string& peer_name)
    : ctx_(std::move(ctx)) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx_->ctx_);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (!ssl_ || !rbio || !wbio) {
    BIO_free(rbio);
    BIO_free(wbio);
    failed_ = true;
    error_ = "cannot create a TLS connection: " + openssl_errors();
    return;
  }
  // An empty read BIO means "wait for more", not end of stream.
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(ssl_, rbio, wbio);
  if (ctx_->is_server()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!peer_name.empty()) {
    bool ip = is_ip_address(peer_name);
    if (!ip) SSL_set_tlsext_host_name(ssl_, peer_name.c_str());  // SNI is for names only
    if (ctx_->verifies_peer()) {
      int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), peer_name.c_str())
                  : SSL_set1_host(ssl_, peer_name.c_str());
      if (ok != 1) {
        failed_ = true;
        error_ = "cannot check the server certificate against '" + peer_name + "'";
        return;
      }
    }
  }
  std::string none;
  advance(none);  // the ClientHello
}

tls_channel::~tls_channel() {
  SSL_free(ssl_);  // frees both BIOs
}

void tls_channel::fail(int ret, const char* during) {
  int kind = SSL_get_error(ssl_, ret);
  std::string why = openssl_errors();
  long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    why += why.empty() ? "" : ": ";
    why += X509_verify_cert_error_string(verify);
  }
  if (why.empty())
    why = kind == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream"
                                    : "TLS error " + std::to_string(kind);
  failed_ = true;
  error_ = std::string("TLS ") + during + " failed: " + why;
}

void tls_channel::advance(std::string& plain) {
  ERR_clear_error();
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int kind = SSL_get_error(ssl_, r);
      if (kind != SSL_ERROR_WANT_READ && kind != SSL_ERROR_WANT_WRITE) fail(r, "handshake");
      return;
    }
    handshake_done_ = true;
    if (!pending_plain_.empty()) {
      std::string held = std::move(pending_plain_);
      pending_plain_.clear();
      write_plain(held);
      if (failed_) return;
    }
  }
  char buf[16384];
  for (;;) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      plain.append(buf, static_cast<size_t>(r));
      continue;
    }
    int kind = SSL_get_error(ssl_, r);
    if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE) return;
    if (kind == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return;
    }
    fail(r, "read");
    return;
  }
}

std::string tls_channel::feed_encrypted(std::string_view bytes) {
  std::string plain;
  if (failed_ || bytes.empty()) return plain;
  if (!seen_input_) {
    seen_input_ = true;
    auto first = static_cast<unsigned char>(bytes.front());
    if (ctx_->is_server() && first != record_handshake) {
      failed_ = true;
      error_ = "the client did not start a TLS handshake (a clear-text client?)";
      return plain;
    }
    if (!ctx_->is_server() && first != record_handshake && first != record_alert) {
      failed_ = true;
      error_ = "the server did not answer with TLS (a clear-text server?)";
      return plain;
    }
  }
  // A memory BIO takes everything; the loop only splits inputs beyond INT_MAX.
  while (!bytes.empty()) {
    int chunk = static_cast<int>(std::min<size_t>(bytes.size(), 1u << 30));
    int n = BIO_write(SSL_get_rbio(ssl_), bytes.data(), chunk);
    if (n <= 0) {
      failed_ = true;
      error_ = "cannot buffer TLS input: " + openssl_errors();
      return plain;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  advance(plain);
  return plain;
}

void tls_channel::write_plain(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  if (!handshake_done_) {
    pending_plain_.append(bytes);
    return;
  }
  ERR_clear_error();
  while (!bytes.empty()) {
    int chunk = static_cast<int>(std::min<size_t>(bytes.size(), 1u << 30));
    int n = SSL_write(ssl_, bytes.data(), chunk);
    if (n <= 0) {  // a memory BIO never asks to retry a write
      fail(n, "write");
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool tls_channel::has_encrypted() const {
  return ssl_ && BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0;
}

std::string tls_channel::take_encrypted() {
  std::string out;
  if (!ssl_) return out;
  BIO* wbio = SSL_get_wbio(ssl_);
  size_t n = BIO_ctrl_pending(wbio);
  if (n == 0) return out;
  out.resize(n);
  int got = BIO_read(wbio, out.data(), static_cast<int>(n));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

}  // namespace moatkv
