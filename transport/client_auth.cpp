#include "transport/client_auth.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <regex>

#include <yaml-cpp/yaml.h>

#include "actors/auth/password_crypto.hpp"
#include "messages/literal.hpp"
#include "messages/path_syntax.hpp"

namespace moatkv {

namespace {

// Python's int(str) for the values split_arg converts: surrounding whitespace, one sign, digits
// with single underscores between them. Out of the int64 range stays a string (msgpack could not
// carry Python's big ints anyway).
bool python_int(std::string_view s, int64_t& out) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  bool neg = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  uint64_t v = 0;
  char prev = 0;
  for (char c : s) {
    if (c == '_') {
      if (prev == '_') return false;
    } else if (c >= '0' && c <= '9') {
      if (v > (std::numeric_limits<uint64_t>::max() - 9) / 10) return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    } else {
      return false;
    }
    prev = c;
  }
  uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (v > limit) return false;
  out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

value maybe_int(std::string s) {
  int64_t i;
  if (python_int(s, i)) return value(i);
  return value(std::move(s));
}

// A YAML node of the `=FILE` spec as a value: plain scalars that read as ints or booleans become
// those (as a YAML loader would), quoted scalars stay strings.
value from_yaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return value();
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return value(s);  // quoted
      int64_t i;
      if (python_int(s, i) && s.find('_') == std::string::npos) return value(i);
      if (s == "true" || s == "True") return value(true);
      if (s == "false" || s == "False") return value(false);
      if (s == "null" || s == "~") return value();
      return value(s);
    }
    case YAML::NodeType::Sequence: {
      array a;
      for (const auto& e : n) a.push_back(from_yaml(e));
      return value(std::move(a));
    }
    case YAML::NodeType::Map: {
      map m;
      for (const auto& kv : n) map_set(m, from_yaml(kv.first), from_yaml(kv.second));
      return value(std::move(m));
    }
  }
  return value();
}

const std::regex& name_pattern() {
  static const std::regex re("^[a-zA-Z][a-zA-Z0-9_]*$");
  return re;
}

// The original's jsonschema checks of the client login classes (ClientUser.schema).
void validate_login(const auth_spec& s) {
  const std::string where = "auth method '" + s.method + "'";
  if (s.method == "root") {
    if (!s.params.empty())
      throw auth_spec_error(where + " takes no parameters, got " + python_repr(value(s.params)));
    return;
  }
  const value* name = s.param("name");
  if (!name) throw auth_spec_error(where + " needs name=NAME");
  if (!name->is_str())
    throw auth_spec_error(where + ": name must be a string, not " + python_repr(*name));
  if (!std::regex_match(name->as_str(), name_pattern()))
    throw auth_spec_error(where + ": name " + python_repr(*name) +
                          " must be a letter followed by letters, digits or '_'");
  if (s.method == "_test") {
    for (const auto& [k, v] : s.params)
      if (!(k.is_str() && k.as_str() == "name"))
        throw auth_spec_error(where + " takes only name=NAME, not " + python_repr(k));
    return;
  }
  // password
  const value* pw = s.param("password");
  if (!pw) throw auth_spec_error(where + " needs password=SECRET (or password? to be asked)");
  if (!pw->is_str())
    throw auth_spec_error(where + ": the password must be a string (" + python_repr(*pw) +
                          " reads as a number; use password? to be asked for it)");
  if (pw->as_str().size() < 5)
    throw auth_spec_error(where + ": the password must have at least 5 characters");
}

array chroot_elements(const value& v) {
  if (v.is_str()) {
    try {
      return parse_path(v.as_str()).elements();
    } catch (const std::exception& e) {
      throw auth_spec_error("auth parameter chroot: " + std::string(e.what()));
    }
  }
  if (v.is_sequence()) return v.elements();
  throw auth_spec_error("auth parameter chroot must be a path, not " + python_repr(v));
}

// The `auth` request is streamed ({state: start} … {state: end}); anything in between is
// ignored, as the original's `_request(iter=False)` ignores `NoData`.
void send_auth(client_connection& conn, map params) {
  conn.stream("auth", std::move(params), [](const value&) { return true; });
}

}  // namespace

std::string terminal_prompt(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    throw auth_spec_error("cannot ask '" + prompt + "': no terminal (" + strerror(errno) +
                          "); give the value in the auth spec instead");
  termios old{};
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  [[maybe_unused]] ssize_t w = ::write(fd, prompt.data(), prompt.size());
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  ::close(fd);
  return line;
}

bool known_auth_method(std::string_view method) {
  return method == "root" || method == "_test" || method == "password";
}

std::string auth_spec::ident() const {
  if (method == "root") return "*";
  const value* n = param("name");
  return n && n->is_str() ? n->as_str() : std::string();
}

void split_arg(const std::string& token, map& kw, const prompt_function& prompt) {
  size_t eq = token.find('=');
  if (eq == std::string::npos) {
    if (token.size() < 2 || token.back() != '?')
      throw auth_spec_error("'" + token + "' is not KEY=VALUE, KEY? or KEY?=PROMPT");
    std::string key = token.substr(0, token.size() - 1);
    map_set(kw, value(key), value(prompt(key + "? ")));  // not converted, as the original
    return;
  }
  std::string key = token.substr(0, eq);
  std::string val = token.substr(eq + 1);
  if (key.empty() || key == "?") throw auth_spec_error("'" + token + "' has no KEY before '='");
  if (key.back() == '?') {
    key.pop_back();
    val = prompt(val + ": ");
  }
  map_set(kw, value(key), maybe_int(std::move(val)));
}

auth_spec parse_auth_spec(const std::string& text, const prompt_function& prompt) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  if (tokens.empty()) throw auth_spec_error("empty auth spec: give 'METHOD k=v …' or '=FILE'");
  auth_spec s;
  if (tokens.size() == 1 && tokens[0].size() > 1 && tokens[0][0] == '=') {
    std::string file = tokens[0].substr(1);
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(file);
    } catch (const YAML::BadFile&) {
      throw auth_spec_error("cannot read the auth file " + file);
    } catch (const YAML::Exception& e) {
      throw auth_spec_error("the auth file " + file + " is not valid YAML: " + e.what());
    }
    value v = from_yaml(doc);
    if (!v.is_map()) throw auth_spec_error("the auth file " + file + " must hold a YAML map");
    s.params = std::move(v.as_map());
    const value* t = s.param("type");
    if (!t || !t->is_str())
      throw auth_spec_error("the auth file " + file + " needs 'type: METHOD' (e.g. password)");
    s.method = t->as_str();
    map_erase(s.params, "type");
  } else {
    s.method = tokens[0];
    for (size_t i = 1; i < tokens.size(); ++i) split_arg(tokens[i], s.params, prompt);
  }
  if (!known_auth_method(s.method))
    throw auth_spec_error("unknown auth method '" + s.method +
                          "' (NoAuthModuleError; known: root, _test, password)");
  for (const char* k : {"chroot", "root"}) {
    if (const value* c = s.param(k)) {
      s.chroot = chroot_elements(*c);
      map_erase(s.params, k);
    }
  }
  validate_login(s);
  return s;
}

std::string dh_session_key(const std::function<value(map)>& request, int64_t length) {
  auth::dh_exchange dh(auth::dh_group_for_length(length));
  value reply = request({{"pubkey", bin{dh.public_key()}}, {"length", length}});
  const value* pk = reply.find("pubkey");
  if (!pk || !pk->is_bin())
    throw client_error("the server's diffie_hellman reply has no pubkey: " + debug_string(reply));
  try {
    return dh.shared_key(pk->as_bin());
  } catch (const auth::auth_error& e) {
    throw client_error(std::string("the server's Diffie-Hellman key is unusable: ") + e.what());
  }
}

const std::string& ensure_session_key(client_connection& conn, int64_t length) {
  if (conn.session_key().empty())
    conn.set_session_key(dh_session_key(
        [&](map fields) { return conn.request("diffie_hellman", std::move(fields)); }, length));
  return conn.session_key();
}

map auth_request(const auth_spec& spec, const std::string& session_key) {
  array root = spec.chroot;
  if (spec.method == "password") {
    map msg{{"typ", "password"},
            {"ident", spec.ident()},
            {"password", bin{auth::wrap_password(session_key, spec.param("password")->as_str())}}};
    if (!root.empty()) msg.emplace_back("root", std::move(root));
    return msg;
  }
  return {
      {"typ", spec.method}, {"root", std::move(root)}, {"ident", spec.ident()}, {"data", map{}}};
}

void authenticate(client_connection& conn, const auth_spec& spec) {
  std::string key = spec.method == "password" ? ensure_session_key(conn) : std::string();
  send_auth(conn, auth_request(spec, key));
}

bool login_needed(const value& greeting, const auth_spec* spec) {
  const value* a = greeting.is_map() ? greeting.find("auth") : nullptr;
  if (!a || !a->is_array() || a->as_array().empty() || a->as_array()[0].is_nil()) return false;
  const array& methods = a->as_array();
  std::string required =
      methods[0].is_str() ? methods[0].as_str() : python_repr(methods[0]);  // always str
  if (!spec)
    throw client_auth_error("ClientAuthRequiredError: You need to log in using: " + required +
                            " (give -a '" + required + " …' or set kv.conn.auth)");
  if (spec->method != required) {
    std::string all;
    for (const auto& m : methods)
      if (!m.is_nil())
        all += (all.empty() ? "" : ", ") + (m.is_str() ? m.as_str() : python_repr(m));
    throw client_auth_error("ClientAuthMethodError: You cannot use '" + spec->method +
                            "' auth: the server requires '" + required +
                            "' (methods configured there: " + all + ")");
  }
  return true;
}

void login(client_connection& conn, const auth_spec* spec) {
  if (login_needed(conn.greeting(), spec)) authenticate(conn, *spec);
}

}  // namespace moatkv
