#include "transport/client_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace moatkv {

namespace {

int connect_to(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res);
  if (rc != 0) throw client_error("cannot resolve " + host + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = strerror(errno);
      close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n != 1 || err != 0) {
      last_error = n == 1 ? strerror(err) : "timed out";
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Reads block (with SO_RCVTIMEO as their limit): one system call per wait instead of a
    // failed recv, a poll and the recv again. Sends stay non-blocking (MSG_DONTWAIT).
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  throw client_error("cannot connect to " + host + ":" + port_str + ": " + last_error);
}

}  // namespace

int64_t int_field(const value& m, const char* key, int64_t dflt) {
  if (!m.is_map()) return dflt;
  const value* v = m.find(key);
  int64_t out;
  return v && v->get_int(out) ? out : dflt;
}

client_connection::client_connection(const std::string& host, uint16_t port,
                                     const client_options& opts)
    : timeout_(opts.timeout) {
  // The context first: a bad CA or certificate file is a configuration error, not a network one.
  std::shared_ptr<tls_context> ctx;
  if (opts.tls) ctx = tls_context::client(*opts.tls);
  fd_ = connect_to(host, port, timeout_);
  try {
    if (ctx) {
      tls_ = std::make_unique<tls_channel>(
          ctx, opts.tls->server_name.empty() ? host : opts.tls->server_name);
      if (tls_->failed()) throw client_error(tls_->error());
      write_all({});  // the ClientHello; the rest of the handshake runs inside read_message
    }
    greeting_ = read_message();
    if (greeting_.is_map() && !greeting_.find("seq"))
      if (const value* e = greeting_.find("error"); e && e->is_str())
        throw client_error("the server refused the connection: " + e->as_str());
    if (!greeting_.is_map() || int_field(greeting_, "seq", -1) != 0)
      throw client_error("the server did not send a MoaT-KV greeting");
  } catch (...) {
    close(fd_);  // the destructor does not run for a half-built object
    fd_ = -1;
    throw;
  }
  greeted_ = true;
  int64_t q = int_field(greeting_, "qlen", 0);
  if (q > 0) {
    qlen_ = std::min<int64_t>(q, 99);
    send_raw(value(map{{"seq", 0}, {"qlen", qlen_}}));
  }
}

client_connection::~client_connection() {
  if (fd_ >= 0) close(fd_);
}

void client_connection::write_all(const std::string& bytes) {
  if (corked_) {
    out_ += bytes;
    return;
  }
  if (!tls_) return send_bytes(bytes.data(), bytes.size());
  tls_->write_plain(bytes);
  if (tls_->failed()) throw client_error(tls_->error());
  std::string encrypted = tls_->take_encrypted();
  send_bytes(encrypted.data(), encrypted.size());
}

void client_connection::send_bytes(const char* data, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::send(fd_, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, static_cast<int>(timeout_.count())) != 1)
        throw client_error("timed out writing to the server");
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    throw client_error(std::string("write to the server failed: ") + strerror(errno));
  }
}

void client_connection::send_raw(const value& msg) {
  write_all(encode(msg));
}

int64_t client_connection::send_request(const std::string& action, map params) {
  int64_t seq = next_seq_++;
  map msg;
  msg.reserve(params.size() + 2);
  msg.emplace_back("action", action);
  for (auto& kv : params) msg.push_back(std::move(kv));
  msg.emplace_back("seq", seq);
  send_raw(value(std::move(msg)));
  return seq;
}

bool client_connection::fill(clock::time_point deadline) {
  for (;;) {
    // The deadline is at most timeout_ away (read_message), so waiting in slices of timeout_
    // ends in time, and the socket option changes only when the timeout does.
    if (rcv_timeout_ != timeout_) {
      auto ms = std::max<int64_t>(timeout_.count(), 1);
      timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      rcv_timeout_ = timeout_;
    }
    if (receive(0)) return true;
    if (clock::now() >= deadline) return false;  // SO_RCVTIMEO ran out
  }
}

bool client_connection::receive_available() {
  return receive(MSG_DONTWAIT);
}

bool client_connection::receive(int flags) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, flags);
    if (n > 0 && tls_) {
      std::string plain = tls_->feed_encrypted(std::string_view(buf, static_cast<size_t>(n)));
      if (tls_->failed()) throw client_error(tls_->error());
      if (tls_->has_encrypted()) write_all({});  // handshake records
      decoder_.feed(plain.data(), plain.size());
      return true;
    }
    if (n > 0) {
      decoder_.feed(buf, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) throw_closed();
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    throw client_error(std::string("read from the server failed: ") + strerror(errno) + tls_hint());
  }
}

// A TLS-only node closes a clear-text client (which waits for the greeting in silence) after
// its handshake timeout; the bare symptom would not tell the user what to change.
std::string client_connection::tls_hint() const {
  return greeted_ || tls_ ? "" : " (does it require TLS? see kv.conn.ssl)";
}

void client_connection::throw_closed() const {
  if (greeted_) throw client_error("the server closed the connection");
  if (tls_ && !tls_->handshake_done())
    throw client_error("the server closed the connection during the TLS handshake");
  throw client_error("the server closed the connection before its greeting" + tls_hint());
}

void client_connection::note_streamed(const value& msg) {
  // Acknowledge windowed streams as the original client does (more than qlen/3 unacked).
  if (!msg.is_map()) return;
  int64_t wseq = int_field(msg, "wseq", -1);
  if (wseq < 0) return;
  int64_t seq = int_field(msg, "seq", -1);
  ack_state& a = acks_[seq];
  int64_t window = a.qlen > 0 ? a.qlen : qlen_;  // a request's own qlen overrides (§7.6)
  a.last_read = std::max(a.last_read, wseq);
  if (held_.count(seq)) return;
  if (window > 0 && a.last_read - a.last_acked > window / 3) {
    a.last_acked = a.last_read;
    send_raw(value(map{{"seq", seq}, {"state", "ack"}, {"ack", a.last_read}}));
  }
}

void client_connection::hold_acks(int64_t seq, bool hold) {
  if (hold) {
    held_.insert(seq);
    return;
  }
  if (!held_.erase(seq)) return;
  auto it = acks_.find(seq);
  if (it == acks_.end() || it->second.last_read <= it->second.last_acked) return;
  it->second.last_acked = it->second.last_read;
  send_raw(value(map{{"seq", seq}, {"state", "ack"}, {"ack", it->second.last_read}}));
}

void client_connection::uncork() {
  corked_ = false;
  if (out_.empty()) return;
  std::string bytes = std::move(out_);
  out_.clear();
  write_all(bytes);
}

std::optional<value> client_connection::poll_message() {
  value msg;
  try {
    if (!decoder_.next(msg)) return std::nullopt;
  } catch (const decode_error& e) {
    throw client_error(std::string("undecodable data from the server: ") + e.what());
  }
  note_streamed(msg);
  return msg;
}

value client_connection::read_message() {
  if (corked_) uncork();  // waiting for replies to requests not sent would never end
  auto deadline = clock::now() + timeout_;
  value msg;
  try {
    while (!decoder_.next(msg)) {
      if (!fill(deadline))
        throw client_error(greeted_ ? "timed out waiting for the server"
                                    : "timed out waiting for the server's greeting" + tls_hint());
    }
  } catch (const decode_error& e) {
    throw client_error(std::string("undecodable data from the server: ") + e.what());
  }
  note_streamed(msg);
  return msg;
}

value client_connection::read_for(int64_t seq) {
  auto it = buffered_.find(seq);
  if (it != buffered_.end()) {
    value v = std::move(it->second);
    buffered_.erase(it);
    return v;
  }
  for (;;) {
    value msg = read_message();
    int64_t s = int_field(msg, "seq", -1);
    if (s == seq) return msg;
    if (s < 0 && msg.is_map() && msg.find("error"))  // connection-level error
      throw server_error(debug_string(*msg.find("error")));
    buffered_.emplace(s, std::move(msg));
  }
}

value client_connection::request(const std::string& action, map params) {
  int64_t seq = send_request(action, std::move(params));
  value reply = read_for(seq);
  if (const value* err = reply.find("error"))
    throw server_error(err->is_str() ? err->as_str() : debug_string(*err));
  return reply;
}

void client_connection::stream(const std::string& action, map params,
                               const std::function<bool(const value&)>& on_message) {
  int64_t q = 0;
  for (const auto& [k, v] : params)
    if (k.is_str() && k.as_str() == "qlen") v.get_int(q);
  int64_t seq = send_request(action, std::move(params));
  if (q > 0) acks_[seq].qlen = q;
  for (;;) {
    value msg = read_for(seq);
    if (const value* err = msg.find("error"))
      throw server_error(err->is_str() ? err->as_str() : debug_string(*err));
    const value* state = msg.find("state");
    if (state && state->is_str()) {
      if (state->as_str() == "start") continue;
      if (state->as_str() == "end") {
        acks_.erase(seq);
        return;
      }
    }
    if (!on_message(msg)) return;
  }
}

}  // namespace moatkv
