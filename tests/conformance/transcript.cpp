#include "tests/conformance/transcript.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/hex.hpp"

#ifndef MOATKV_CONFORMANCE_DATA
#error "MOATKV_CONFORMANCE_DATA (folder of the captured traces) must be defined"
#endif

namespace moatkv::test {

// ---------------------------------------------------------------------------------------------
// The transcript

std::vector<transcript_row> load_transcript() {
  std::string file = std::string(MOATKV_CONFORMANCE_DATA) + "/client-wire-messages.tsv";
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::vector<transcript_row> rows;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.empty() || text[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(text);
    std::string col;
    while (std::getline(ss, col, '\t')) cols.push_back(col);
    if (cols.size() < 4)
      throw std::runtime_error(file + ":" + std::to_string(line) + ": short row");
    transcript_row r;
    r.line = line;
    r.scenario = cols[0];
    r.conn = cols[1];
    r.direction = cols[2];
    if (r.direction != "C->S" && r.direction != "S->C")
      throw std::runtime_error(file + ":" + std::to_string(line) + ": bad direction");
    std::string hex = cols.size() > 4 ? cols[4] : "";
    r.eof = hex.empty();
    if (!r.eof) {
      r.bytes = unhex(hex);
      r.msg = decode(r.bytes);
      if (!r.msg.is_map())
        throw std::runtime_error(file + ":" + std::to_string(line) + ": not a map");
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string where(const transcript_row& r) {
  return "TSV line " + std::to_string(r.line) + ", scenario \"" + r.scenario + "\", " + r.conn;
}

// ---------------------------------------------------------------------------------------------
// Fields of a message

const value* field(const value& m, const char* key) {
  return m.is_map() ? m.find(key) : nullptr;
}

bool str_field_is(const value& m, const char* key, std::string_view want) {
  const value* v = field(m, key);
  return v && v->is_str() && v->as_str() == want;
}

std::optional<int64_t> int_of(const value* v) {
  int64_t i;
  if (v && v->is_int() && v->get_int(i)) return i;
  return std::nullopt;
}

std::string key_text(const value& k) {
  return k.is_str() ? k.as_str() : debug_string(k);
}

// ---------------------------------------------------------------------------------------------
// Comparison

std::string kind_difference(const value& a, const value& b, const std::string& at) {
  if (std::string(kind_name(a)) != kind_name(b))
    return (at.empty() ? "top level" : at) + ": " + kind_name(a) + " vs " + kind_name(b);
  if (a.is_sequence()) {
    const array &x = a.elements(), &y = b.elements();
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
      if (auto d = kind_difference(x[i], y[i], at + "[" + std::to_string(i) + "]"); !d.empty())
        return d;
  } else if (a.is_map()) {
    for (const auto& [k, v] : a.as_map())
      if (const value* w = map_find(b.as_map(), k))
        if (auto d = kind_difference(v, *w, at + "[" + debug_string(k) + "]"); !d.empty()) return d;
  }
  return {};
}

std::vector<std::string> differences(const value& expected, const value& actual,
                                     const key_rule& rule) {
  std::vector<std::string> out;
  if (!expected.is_map() || !actual.is_map()) {
    if (!(expected == actual))
      out.push_back("expected " + debug_string(expected) + ", got " + debug_string(actual));
    else if (auto d = kind_difference(expected, actual); !d.empty())
      out.push_back("equal value of another msgpack kind (expected vs actual " + d + ")");
    return out;
  }
  for (const auto& [k, ev] : expected.as_map()) {
    const value* av = actual.find(k);
    std::string key = key_text(k);
    if (!av) {
      out.push_back("missing key '" + key + "' (expected " + debug_string(ev) + ")");
    } else if (rule && rule(key, ev, *av, out)) {
      // judged by the rule
    } else if (!(ev == *av)) {
      out.push_back("'" + key + "': expected " + debug_string(ev) + ", got " + debug_string(*av));
    } else if (auto d = kind_difference(ev, *av); !d.empty()) {
      // E.g. `path` (§1.3, §7.5: ext 3 only for an empty prefix and depth 0, else an array),
      // or `changed: true` vs `changed: 1`: equal in Python, different on the wire.
      out.push_back("'" + key + "': equal value of another msgpack kind (expected vs actual " + d +
                    "): expected " + debug_string(ev) + ", got " + debug_string(*av));
    }
  }
  for (const auto& [k, av] : actual.as_map())
    if (!expected.find(k)) out.push_back("extra key '" + key_text(k) + "' = " + debug_string(av));
  return out;
}

std::string difference_text(const value& expected, const value& actual,
                            const std::vector<std::string>& diffs) {
  std::string s =
      "\n  expected: " + debug_string(expected) + "\n  actual:   " + debug_string(actual);
  for (const auto& d : diffs) s += "\n  - " + d;
  return s;
}

// ---------------------------------------------------------------------------------------------
// message_socket

message_socket::message_socket(int fd) : fd_(fd) {
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::unique_ptr<message_socket> message_socket::connect_to(const std::string& host, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  auto sock = std::make_unique<message_socket>(fd);  // closes fd if the connect fails
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    throw std::runtime_error("not an IPv4 address: " + host);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " +
                             std::strerror(errno));
  return sock;
}

message_socket::~message_socket() {
  if (fd_ >= 0) close(fd_);
}

void message_socket::send_bytes(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void message_socket::shutdown_write() {
  shutdown(fd_, SHUT_WR);
}

void message_socket::shutdown_both() {
  shutdown(fd_, SHUT_RDWR);
}

message_socket::got message_socket::read_message(value& out, clock::time_point deadline,
                                                 const std::atomic<bool>* abort) {
  for (;;) {
    if (decoder_.next(out)) return got::message;
    if (eof_ || (abort && *abort)) return got::closed;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return got::timeout;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)) + 1);
    if (r <= 0) continue;  // the checks above end the loop
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0)
      decoder_.feed(buf, static_cast<size_t>(n));
    else if (n == 0 || (errno != EINTR && errno != EAGAIN))
      eof_ = true;
  }
}

}  // namespace moatkv::test
