#include "messages/path_syntax.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "messages/literal.hpp"

namespace moatkv {

namespace {

[[noreturn]] void fail(std::string_view text, const std::string& what, size_t at) {
  throw path_syntax_error("bad path \"" + std::string(text) + "\": " + what + " at offset " +
                          std::to_string(at));
}

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's int(text, base) for base 2 and 16: surrounding whitespace, a sign, the optional
// 0b / 0x prefix and single underscores between digits. Returns false when malformed.
bool python_int(std::string_view s, int base, value& out, bool& overflow) {
  overflow = false;
  size_t b = 0, e = s.size();
  while (b < e && is_ws(s[b])) ++b;
  while (e > b && is_ws(s[e - 1])) --e;
  s = s.substr(b, e - b);
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  char pfx = base == 16 ? 'x' : 'b';
  bool underscore_ok = false;
  if (s.size() >= 2 && s[0] == '0' && (s[1] | 0x20) == pfx) {
    s.remove_prefix(2);
    underscore_ok = true;  // "0x_1f" is valid
  }
  if (s.empty()) return false;
  uint64_t r = 0;
  bool any = false;
  for (char c : s) {
    if (c == '_') {
      if (!underscore_ok) return false;
      underscore_ok = false;
      continue;
    }
    int d = (c >= '0' && c <= '9')                   ? c - '0'
            : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                     : 99;
    if (d >= base) return false;
    if (r > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) /
                static_cast<uint64_t>(base)) {
      overflow = true;
      return false;
    }
    r = r * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    any = true;
    underscore_ok = true;
  }
  if (!any || !underscore_ok) return false;  // no digits, or a trailing underscore
  if (!neg) {
    out = value(static_cast<unsigned long long>(r));
    return true;
  }
  if (r > (uint64_t{1} << 63)) {
    overflow = true;
    return false;
  }
  out = value(static_cast<long long>(uint64_t{0} - r));
  return true;
}

// bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs.
bool from_hex(std::string_view s, std::string& out) {
  auto hv = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < s.size();) {
    if (is_ws(s[i])) {
      ++i;
      continue;
    }
    if (i + 1 >= s.size() || hv(s[i]) < 0 || hv(s[i + 1]) < 0) return false;
    out += static_cast<char>(hv(s[i]) * 16 + hv(s[i + 1]));
    i += 2;
  }
  return true;
}

const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// base64.b64decode without validate: characters outside the alphabet are skipped, padding is
// required ("AP8" is an error, "AP8=" is b"\x00\xff").
bool from_base64(std::string_view s, std::string& out) {
  uint32_t acc = 0;
  int n = 0, pad = 0;
  for (char c : s) {
    if (c == '=') {
      if (n == 2 || n == 3) ++pad;
      if ((n == 2 && pad == 2) || (n == 3 && pad == 1)) {
        if (n == 2) out += static_cast<char>(acc >> 4);
        if (n == 3) {
          out += static_cast<char>(acc >> 10);
          out += static_cast<char>((acc >> 2) & 0xFF);
        }
        acc = 0;
        n = 0;
        pad = 0;
      }
      continue;
    }
    const char* p = c ? std::strchr(b64_alphabet, c) : nullptr;
    if (!p) continue;
    acc = (acc << 6) | static_cast<uint32_t>(p - b64_alphabet);
    if (++n == 4) {
      out += static_cast<char>(acc >> 16);
      out += static_cast<char>((acc >> 8) & 0xFF);
      out += static_cast<char>(acc & 0xFF);
      acc = 0;
      n = 0;
    }
    pad = 0;
  }
  return n == 0;
}

std::string to_base64(std::string_view s) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(s[i]) << 16) |
                 (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    for (int k = 3; k >= 0; --k) out += b64_alphabet[(v >> (6 * k)) & 63];
  }
  if (i + 1 == s.size()) {
    uint32_t v = static_cast<unsigned char>(s[i]) << 16;
    out += b64_alphabet[(v >> 18) & 63];
    out += b64_alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    uint32_t v =
        (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8);
    out += b64_alphabet[(v >> 18) & 63];
    out += b64_alphabet[(v >> 12) & 63];
    out += b64_alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// How the text collected for the current element is turned into a value when it ends.
enum class conv { text, literal, int2, int16, hex_bytes, ascii_bytes, b64_bytes };

// Where the parser stands between tokens (the original's `part` = False / None / True / str).
enum class state {
  start,      // nothing yet: a string or an escape element may follow, not a dot
  after_dot,  // a string must follow (an escape element or the end is an error)
  need_sep,   // after :t :f :n :e or :mX: a dot or an escape element must follow
  collecting  // inside an element whose text is being collected
};

class path_parser {
 public:
  explicit path_parser(std::string_view text) : text_(text) {}

  value parse() {
    if (text_.empty()) throw path_syntax_error("bad path \"\": the empty string is not a path");
    if (text_ == ":") return value::make_path({});
    // ":mX:" is the empty path marked X (the original special-cases it the same way).
    if (text_.size() > 3 && text_.substr(0, 2) == ":m" && text_.back() == ':' &&
        text_.substr(2, text_.size() - 3).find_first_of(":._") == std::string_view::npos)
      return value::make_path({}, std::string(text_.substr(2, text_.size() - 3)));

    bool esc = false;
    size_t esc_pos = 0;
    for (size_t pos = 0; pos < text_.size();) {
      size_t len = 1;
      char c = text_[pos];
      if (c != ':' && c != '.' && c != '_') {
        while (pos + len < text_.size() && text_[pos + len] != ':' && text_[pos + len] != '.' &&
               text_[pos + len] != '_')
          ++len;
      }
      std::string_view tok = text_.substr(pos, len);
      if (esc) {
        esc = false;
        escape(tok, esc_pos);
      } else if (tok == ".") {
        if (state_ == state::start || state_ == state::after_dot) fail(text_, "empty element", pos);
        finish();
        state_ = state::after_dot;
      } else if (tok == ":") {
        esc = true;
        esc_pos = pos;
      } else {
        add(tok, pos);
      }
      pos += len;
    }
    if (esc) fail(text_, "dangling ':'", esc_pos);
    if (state_ == state::after_dot) fail(text_, "empty element", text_.size());
    finish();
    return value::make_path(std::move(elems_), std::move(mark_));
  }

 private:
  void escape(std::string_view tok, size_t at) {
    char c = tok[0];
    if (tok == ":" || tok == ".") return add(tok, at);
    if (tok == "_") return add(" ", at);
    if (tok == "e") return constant(value(""), at);
    if (tok == "t") return constant(value(true), at);
    if (tok == "f") return constant(value(false), at);
    if (tok == "n") return constant(value(nullptr), at);
    no_dot_before(tok, at);
    if (c == 'm' && tok.size() > 1) {
      finish();
      std::string m(tok.substr(1));
      if (!mark_.empty() && mark_ != m)
        fail(text_, "conflicting marks '" + mark_ + "' and '" + m + "'", at);
      mark_ = std::move(m);
      state_ = state::need_sep;
      return;
    }
    finish();
    conv mode = conv::literal;
    bool prefixed = true;
    switch (c) {
      case 'i':
        mode = conv::literal;
        break;
      case 'b':
        mode = conv::int2;
        break;
      case 'x':
        mode = conv::int16;
        break;
      case 'y':
        mode = conv::hex_bytes;
        break;
      case 'v':
        mode = conv::ascii_bytes;
        break;
      case 's':
        mode = conv::b64_bytes;
        break;
      default:
        prefixed = false;
    }
    part_ = std::string(prefixed ? tok.substr(1) : tok);
    mode_ = mode;
    elem_pos_ = at;
    state_ = state::collecting;
  }

  void no_dot_before(std::string_view tok, size_t at) const {
    if (state_ == state::after_dot)
      fail(text_, "a dot before the escape element ':" + std::string(tok) + "'", at);
  }

  void constant(value v, size_t at) {
    std::string_view tok = text_.substr(at + 1, 1);
    no_dot_before(tok, at);
    finish();
    elems_.push_back(std::move(v));
    state_ = state::need_sep;
  }

  void add(std::string_view s, size_t at) {
    if (state_ == state::need_sep) fail(text_, "missing '.' before a string element", at);
    if (state_ != state::collecting) {
      part_.clear();
      mode_ = conv::text;
      elem_pos_ = at;
      state_ = state::collecting;
    }
    part_ += s;
  }

  // Ends the element being collected, if any, converting its text.
  void finish() {
    if (state_ != state::collecting) return;
    state_ = state::need_sep;
    std::string bytes;
    bool overflow = false;
    value v;
    switch (mode_) {
      case conv::text:
        elems_.emplace_back(std::move(part_));
        break;
      case conv::literal:
        try {
          elems_.push_back(parse_literal(part_));
        } catch (const literal_error& e) {
          fail(text_, "cannot read '" + part_ + "' as a literal (" + e.what() + ")", elem_pos_);
        }
        break;
      case conv::int2:
      case conv::int16:
        if (!python_int(part_, mode_ == conv::int2 ? 2 : 16, v, overflow))
          fail(text_,
               overflow ? "integer '" + part_ + "' out of range"
                        : "bad " + std::string(mode_ == conv::int2 ? "binary" : "hex") +
                              " integer '" + part_ + "'",
               elem_pos_);
        elems_.push_back(std::move(v));
        break;
      case conv::hex_bytes:
        if (!from_hex(part_, bytes)) fail(text_, "bad hex bytes '" + part_ + "'", elem_pos_);
        elems_.emplace_back(bin{std::move(bytes)});
        break;
      case conv::ascii_bytes:
        for (char ch : part_)
          if (static_cast<unsigned char>(ch) >= 0x80)
            fail(text_, "non-ASCII character in ':v' bytes", elem_pos_);
        elems_.emplace_back(bin{std::move(part_)});
        break;
      case conv::b64_bytes:
        if (!from_base64(part_, bytes))
          fail(text_, "bad base64 '" + part_ + "' (incorrect padding)", elem_pos_);
        elems_.emplace_back(bin{std::move(bytes)});
        break;
    }
    part_.clear();
  }

  std::string_view text_;
  state state_ = state::start;
  std::string part_;
  conv mode_ = conv::text;
  size_t elem_pos_ = 0;
  array elems_;
  std::string mark_;
};

// `_escol` of the original: ':' -> '::', '.' -> ':.', ' ' -> ':_'.
void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == ':')
      out += "::";
    else if (c == '.')
      out += ":.";
    else if (c == ' ')
      out += ":_";
    else
      out += c;
  }
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

}  // namespace

value parse_path(std::string_view text) {
  return path_parser(text).parse();
}

std::string format_path(const value& path) {
  if (!path.is_sequence())
    throw std::invalid_argument("format_path: not a Path or array: " + debug_string(path));
  std::string res;
  if (path.is_path() && !path.as_path().mark.empty()) res += ":m" + path.as_path().mark;
  const array& elems = path.elements();
  if (elems.empty()) res += ':';
  for (const value& x : elems) {
    switch (x.type()) {
      case kind::str:
        if (x.as_str().empty()) {
          res += ":e";
        } else {
          if (!res.empty()) res += '.';
          append_escaped(res, x.as_str());
        }
        break;
      case kind::boolean:
        res += x.as_bool() ? ":t" : ":f";
        break;
      case kind::nil:
        res += ":n";
        break;
      case kind::bin: {
        const std::string& b = x.as_bin();
        bool printable = true;
        for (char c : b)
          if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) >= 127)
            printable = false;
        if (printable) {
          res += ":v";
          append_escaped(res, b);
        } else {
          res += ":s" + to_base64(b);
        }
        break;
      }
      case kind::array: {
        // See the file comment for the three deviations from the original here.
        const array& a = x.as_array();
        std::string r;
        if (a.empty()) r = "()";
        for (size_t i = 0; i < a.size(); ++i) {
          if (i) r += ',';
          r += python_repr(a[i]);
        }
        if (a.size() == 1) r += ',';
        res += ':';
        if (std::string_view("ibxyvsm").find(r[0]) != std::string_view::npos) res += 'i';
        append_escaped(res, r);
        break;
      }
      default: {
        std::string r = python_repr(x);
        res += ':';
        if (is_alpha(r[0])) res += 'i';
        append_escaped(res, r);
      }
    }
  }
  return res;
}

}  // namespace moatkv
