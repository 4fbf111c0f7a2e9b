#include "messages/literal.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <system_error>

#include "messages/path_syntax.hpp"

namespace moatkv {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) {
  return is_ident_start(c) || is_digit(c);
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// Decodes one UTF-8 sequence at s[i]; invalid bytes come back as U+FFFD, one byte each, so that
// repr never fails on a str that did not come from the (validating) decoder.
uint32_t next_utf8(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 1) return s[i++], b0;
  if (len == 0 || i + len > s.size()) return ++i, 0xFFFD;
  uint32_t cp = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return ++i, 0xFFFD;
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

// A signed integer under construction: msgpack's range is [-2^63, 2^64 - 1].
struct int_result {
  bool negative = false;
  uint64_t magnitude = 0;
};

class parser {
 public:
  explicit parser(std::string_view text) : text_(text) {}

  value parse() {
    skip_ws();
    if (at_end()) fail(pos_, "empty expression");
    value v = parse_expr_list(/*top=*/true);
    skip_ws();
    if (!at_end()) unexpected();
    return v;
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw literal_error("bad literal " + quote(text_) + ": " + what + " at offset " +
                        std::to_string(at));
  }

  static std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

  [[noreturn]] void unexpected() const {
    char c = text_[pos_];
    if (std::string_view("+-*/%@&|^~<>=!.").find(c) != std::string_view::npos)
      fail(pos_, std::string("unexpected '") + c + "' (operators are not supported)");
    if (c == '(') fail(pos_, "unexpected '(' (calls are not supported)");
    if (c == '[') fail(pos_, "unexpected '[' (subscripts are not supported)");
    fail(pos_, std::string("unexpected '") + c + "'");
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip_ws() {
    while (!at_end() && is_space(text_[pos_])) ++pos_;
  }
  bool accept(char c) {
    skip_ws();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const std::string& context) {
    skip_ws();
    if (at_end()) fail(pos_, std::string("missing '") + c + "' " + context);
    if (peek() != c) {
      if (std::string_view("+-*/%@&|^~<>=!").find(peek()) != std::string_view::npos) unexpected();
      fail(pos_, std::string("expected '") + c + "' " + context + ", found '" + peek() + "'");
    }
    ++pos_;
  }

  // Comma-separated items up to a closing bracket (or the end of input when top). `comma` tells
  // whether a comma was seen, which is what makes a parenthesised expression a tuple.
  array parse_items(bool top, bool& comma) {
    array items;
    comma = false;
    items.push_back(parse_expr());
    while (true) {
      skip_ws();
      if (peek() != ',') break;
      ++pos_;
      comma = true;
      skip_ws();
      if (at_end() || (!top && (peek() == ')' || peek() == ']'))) break;
      items.push_back(parse_expr());
    }
    return items;
  }

  value parse_expr_list(bool top) {
    bool comma = false;
    array items = parse_items(top, comma);
    if (!comma) return std::move(items.front());
    return value(std::move(items));
  }

  value parse_expr() {
    skip_ws();
    size_t start = pos_;
    bool negative = false;
    bool signed_ = false;
    while (!at_end() && (peek() == '-' || peek() == '+')) {
      if (peek() == '-') negative = !negative;
      signed_ = true;
      ++pos_;
      skip_ws();
    }
    if (!signed_) return parse_atom();
    size_t atom_pos = pos_;
    if (at_end()) fail(pos_, "missing operand after sign");
    value v = parse_atom();
    // Python applies unary minus to bool too (-True == -1); we keep to real numbers, where the
    // sign cannot change the type, and say so.
    if (v.is_float()) return negative ? value(-v.as_double()) : v;
    if (!v.is_int()) fail(atom_pos, "a sign needs a number");
    int_result r;
    if (v.type() == kind::uint64) {
      r.magnitude = v.as_uint64();
    } else if (v.as_int64() < 0) {
      r.negative = true;
      r.magnitude = uint64_t{0} - static_cast<uint64_t>(v.as_int64());
    } else {
      r.magnitude = static_cast<uint64_t>(v.as_int64());
    }
    if (negative) r.negative = !r.negative && r.magnitude != 0;
    return make_int(r, start);
  }

  value make_int(const int_result& r, size_t at) const {
    if (!r.negative) return value(static_cast<unsigned long long>(r.magnitude));
    constexpr uint64_t min_magnitude = uint64_t{1} << 63;
    if (r.magnitude > min_magnitude)
      fail(at, "integer out of range (below -2**63, msgpack cannot carry it)");
    return value(static_cast<long long>(uint64_t{0} - r.magnitude));
  }

  value parse_atom() {
    skip_ws();
    if (at_end()) fail(pos_, "missing value");
    char c = peek();
    size_t start = pos_;
    if (is_digit(c) || (c == '.' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1])))
      return parse_number();
    if (c == '\'' || c == '"') return parse_strings();
    if (is_ident_start(c)) {
      size_t end = pos_;
      while (end < text_.size() && is_ident_char(text_[end])) ++end;
      std::string_view word = text_.substr(pos_, end - pos_);
      if (end < text_.size() && (text_[end] == '\'' || text_[end] == '"') && word.size() <= 2) {
        std::string lower;
        for (char ch : word) lower += static_cast<char>(ch | 0x20);
        if (lower == "r" || lower == "u" || lower == "b" || lower == "br" || lower == "rb")
          return parse_strings();
        if (lower.find('f') != std::string::npos) fail(start, "f-strings are not literals");
      }
      pos_ = end;
      if (word == "True") return value(true);
      if (word == "False") return value(false);
      if (word == "None") return value(nullptr);
      fail(start, "name '" + std::string(word) + "' is not a literal");
    }
    if (c == '(') {
      ++pos_;
      if (accept(')')) return value(array{});
      value inner = parse_expr_list(false);
      expect(')', "to close '(' at offset " + std::to_string(start));
      return inner;
    }
    if (c == '[') {
      ++pos_;
      if (accept(']')) return value(array{});
      bool comma = false;
      array items = parse_items(false, comma);
      expect(']', "to close '[' at offset " + std::to_string(start));
      return value(std::move(items));
    }
    if (c == '{') return parse_dict();
    unexpected();
  }

  value parse_dict() {
    size_t start = pos_;
    ++pos_;
    map m;
    if (accept('}')) return value(std::move(m));
    while (true) {
      value key = parse_expr();
      skip_ws();
      if (peek() == ',' || peek() == '}')
        fail(pos_, "sets are not supported (msgpack has no set type)");
      expect(':', "after a dict key");
      value val = parse_expr();
      map_set(m, std::move(key), std::move(val));
      skip_ws();
      if (accept('}')) break;
      expect(',', "or '}' in dict started at offset " + std::to_string(start));
      if (accept('}')) break;
    }
    return value(std::move(m));
  }

  value parse_number() {
    size_t start = pos_;
    auto digits = [&](auto ok) {
      // A run of digits with single underscores between them, as Python allows.
      size_t begin = pos_;
      while (!at_end()) {
        if (ok(peek())) {
          ++pos_;
        } else if (peek() == '_' && pos_ > begin && pos_ + 1 < text_.size() &&
                   ok(text_[pos_ + 1])) {
          ++pos_;
        } else {
          break;
        }
      }
      return pos_ > begin;
    };
    auto dec = [](char ch) { return is_digit(ch); };
    if (peek() == '0' && pos_ + 1 < text_.size()) {
      char p = static_cast<char>(text_[pos_ + 1] | 0x20);
      int base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (base) {
        pos_ += 2;
        if (peek() == '_') ++pos_;
        size_t dstart = pos_;
        if (!digits([base](char ch) { return digit_value(ch) < base; }))
          fail(dstart, "missing digits after base prefix");
        check_number_end(start);
        return make_int({false, accumulate(start, dstart, pos_, base)}, start);
      }
    }
    bool is_float = false;
    if (peek() != '.') digits(dec);
    size_t int_end = pos_;
    if (peek() == '.') {
      is_float = true;
      ++pos_;
      if (is_digit(peek())) digits(dec);
    }
    if ((peek() | 0x20) == 'e') {
      size_t save = pos_;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits(dec)) {
        is_float = true;
      } else {
        pos_ = save;
      }
    }
    if ((peek() | 0x20) == 'j') fail(pos_, "complex numbers are not supported");
    check_number_end(start);
    if (!is_float) {
      std::string_view d = text_.substr(start, int_end - start);
      // Python 3 forbids leading zeros in decimal ints ("012"), except for zero itself.
      bool all_zero = d.find_first_not_of("0_") == std::string_view::npos;
      if (d.size() > 1 && d[0] == '0' && !all_zero)
        fail(start, "leading zeros in a decimal integer are not allowed");
      return make_int({false, accumulate(start, start, int_end, 10)}, start);
    }
    std::string clean;
    for (size_t i = start; i < pos_; ++i)
      if (text_[i] != '_') clean += text_[i];
    double d = 0;
    auto [ptr, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), d);
    if (ec == std::errc::result_out_of_range) {
      // Python rounds overflow to inf and underflow to 0.0; decide by the decimal exponent.
      size_t e = clean.find_first_of("eE");
      long exp10 = e == std::string::npos ? 0 : std::strtol(clean.c_str() + e + 1, nullptr, 10);
      std::string mant = clean.substr(0, e);
      size_t dot = mant.find('.');
      size_t first = mant.find_first_not_of("0.");
      long lead = static_cast<long>(dot == std::string::npos ? mant.size() : dot) -
                  static_cast<long>(first == std::string::npos ? 0 : first);
      d = exp10 + lead > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    } else if (ec != std::errc() || ptr != clean.data() + clean.size()) {
      fail(start, "malformed number");
    }
    return value(d);
  }

  void check_number_end(size_t start) const {
    if (!at_end() && (is_ident_char(peek()) || peek() == '.'))
      fail(start, "malformed number '" + std::string(text_.substr(start, pos_ - start + 1)) + "'");
  }

  uint64_t accumulate(size_t start, size_t from, size_t to, int base) const {
    uint64_t r = 0;
    for (size_t i = from; i < to; ++i) {
      if (text_[i] == '_') continue;
      auto dv = static_cast<uint64_t>(digit_value(text_[i]));
      if (r > (std::numeric_limits<uint64_t>::max() - dv) / static_cast<uint64_t>(base))
        fail(start, "integer out of range (above 2**64-1, msgpack cannot carry it)");
      r = r * static_cast<uint64_t>(base) + dv;
    }
    return r;
  }

  // One or more adjacent string literals, concatenated (Python: 'a' "b" == 'ab').
  value parse_strings() {
    std::string out;
    int kind_seen = 0;  // 1 = str, 2 = bytes
    while (true) {
      skip_ws();
      size_t lit_start = pos_;
      bool raw = false, bytes = false;
      while (!at_end() && is_ident_start(peek())) {
        char p = static_cast<char>(peek() | 0x20);
        if (p == 'r')
          raw = true;
        else if (p == 'b')
          bytes = true;
        else if (p != 'u')
          break;
        ++pos_;
      }
      if (at_end() || (peek() != '\'' && peek() != '"')) {
        pos_ = lit_start;
        break;
      }
      int k = bytes ? 2 : 1;
      if (kind_seen && kind_seen != k) fail(lit_start, "cannot mix bytes and str literals");
      kind_seen = k;
      parse_one_string(out, raw, bytes);
    }
    return kind_seen == 2 ? value(bin{std::move(out)}) : value(std::move(out));
  }

  void parse_one_string(std::string& out, bool raw, bool bytes) {
    size_t start = pos_;
    char q = peek();
    bool triple = text_.substr(pos_, 3) == std::string(3, q);
    pos_ += triple ? 3 : 1;
    while (true) {
      if (at_end()) fail(start, "unterminated string");
      char c = text_[pos_];
      if (c == q && (!triple || text_.substr(pos_, 3) == std::string(3, q))) {
        pos_ += triple ? 3 : 1;
        return;
      }
      if (c == '\n' && !triple) fail(start, "unterminated string (newline inside quotes)");
      if (bytes && static_cast<unsigned char>(c) >= 0x80)
        fail(pos_, "bytes can only contain ASCII literal characters");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= text_.size()) fail(start, "unterminated string");
      char e = text_[pos_ + 1];
      if (raw) {
        // Raw strings keep the backslash; it still protects the next character from closing.
        out += c;
        out += e;
        pos_ += 2;
        continue;
      }
      size_t esc = pos_;
      pos_ += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
          put(out, hex_escape(esc, 2), bytes, esc);
          break;
        case 'u':
        case 'U':
          if (bytes) {
            out += '\\';
            out += e;
          } else {
            put(out, hex_escape(esc, e == 'u' ? 4 : 8), bytes, esc);
          }
          break;
        case 'N':
          if (bytes) {
            out += "\\N";
          } else {
            fail(esc, "\\N{...} escapes are not supported");
          }
          break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && peek() >= '0' && peek() <= '7'; ++k, ++pos_)
              cp = cp * 8 + static_cast<uint32_t>(peek() - '0');
            put(out, cp, bytes, esc);
          } else {
            // Python keeps unknown escapes verbatim (with a warning).
            out += '\\';
            pos_ = esc + 1;
          }
      }
    }
  }

  uint32_t hex_escape(size_t esc, int n) {
    uint32_t cp = 0;
    for (int k = 0; k < n; ++k, ++pos_) {
      if (at_end() || digit_value(peek()) >= 16)
        fail(esc, "truncated \\" + std::string(1, text_[esc + 1]) + " escape");
      cp = cp * 16 + static_cast<uint32_t>(digit_value(peek()));
    }
    return cp;
  }

  void put(std::string& out, uint32_t cp, bool bytes, size_t esc) const {
    if (bytes) {
      if (cp > 0xFF) fail(esc, "octal escape out of range for bytes");
      out += static_cast<char>(cp);
      return;
    }
    if (cp > 0x10FFFF) fail(esc, "escape beyond U+10FFFF");
    if (cp >= 0xD800 && cp <= 0xDFFF) fail(esc, "surrogate code points cannot be encoded as UTF-8");
    append_utf8(out, cp);
  }

  std::string_view text_;
  size_t pos_ = 0;
};

const char hexdigits[] = "0123456789abcdef";

void append_hex2(std::string& out, unsigned v) {
  out += "\\x";
  out += hexdigits[(v >> 4) & 15];
  out += hexdigits[v & 15];
}

// Python's str.isprintable for non-ASCII code points, approximately: the separators and format /
// control characters that matter in practice; unassigned code points count as printable.
bool printable(uint32_t cp) {
  if (cp < 0xA0) return cp >= 0x20 && cp < 0x7F;
  if (cp == 0xA0 || cp == 0xAD) return false;
  if ((cp >= 0x600 && cp <= 0x605) || cp == 0x61C || cp == 0x6DD || cp == 0x70F) return false;
  if (cp == 0x1680 || cp == 0x180E) return false;
  if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F)) return false;
  if ((cp >= 0x205F && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F)) return false;
  if (cp == 0x3000 || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB)) return false;
  if (cp >= 0xD800 && cp <= 0xF8FF) return false;  // surrogates, private use
  if (cp >= 0xF0000) return false;                 // private use planes
  if (cp == 0x110BD || cp == 0x110CD || (cp >= 0x1D173 && cp <= 0x1D17A)) return false;
  if (cp == 0xE0001 || (cp >= 0xE0020 && cp <= 0xE007F)) return false;
  return true;
}

void repr_str(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = has_single && !has_double ? '"' : '\'';
  out += q;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_utf8(s, i);
    if (cp == static_cast<uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (printable(cp)) {
      append_utf8(out, cp);
    } else if (cp <= 0xFF) {
      append_hex2(out, cp);
    } else {
      int n = cp <= 0xFFFF ? 4 : 8;
      out += n == 4 ? "\\u" : "\\U";
      for (int k = n - 1; k >= 0; --k) out += hexdigits[(cp >> (4 * k)) & 15];
    }
  }
  out += q;
}

void repr_bytes(std::string& out, std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char q = has_single && !has_double ? '"' : '\'';
  out += 'b';
  out += q;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == q || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7F) {
      append_hex2(out, c);
    } else {
      out += ch;
    }
  }
  out += q;
}

uint64_t big_endian(std::string_view b) {
  uint64_t r = 0;
  for (char c : b) r = (r << 8) | static_cast<unsigned char>(c);
  return r;
}

void repr_append(std::string& out, const value& v) {
  switch (v.type()) {
    case kind::nil:
      out += "None";
      break;
    case kind::boolean:
      out += v.as_bool() ? "True" : "False";
      break;
    case kind::int64:
      out += std::to_string(v.as_int64());
      break;
    case kind::uint64:
      out += std::to_string(v.as_uint64());
      break;
    case kind::float64:
      out += python_float_repr(v.as_double());
      break;
    case kind::str:
      repr_str(out, v.as_str());
      break;
    case kind::bin:
      repr_bytes(out, v.as_bin());
      break;
    case kind::array: {
      const array& a = v.as_array();
      out += '(';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ", ";
        repr_append(out, a[i]);
      }
      if (a.size() == 1) out += ',';
      out += ')';
      break;
    }
    case kind::map: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.as_map()) {
        if (!first) out += ", ";
        first = false;
        repr_append(out, k);
        out += ": ";
        repr_append(out, val);
      }
      out += '}';
      break;
    }
    case kind::path:
      // Path.__repr__ is f"P({str(self)!r})".
      out += "P(";
      repr_str(out, format_path(v));
      out += ')';
      break;
    case kind::ext: {
      const ext_data& e = v.as_ext();
      const std::string& b = e.bytes;
      if (e.type == ext_code::timestamp && (b.size() == 4 || b.size() == 8 || b.size() == 12)) {
        // msgpack-python decodes ext -1 to Timestamp(seconds, nanoseconds).
        int64_t sec = 0;
        uint64_t nsec = 0;
        if (b.size() == 4) {
          sec = static_cast<int64_t>(big_endian(b));
        } else if (b.size() == 8) {
          uint64_t x = big_endian(b);
          nsec = x >> 34;
          sec = static_cast<int64_t>(x & ((uint64_t{1} << 34) - 1));
        } else {
          nsec = big_endian(std::string_view(b).substr(0, 4));
          sec = static_cast<int64_t>(big_endian(std::string_view(b).substr(4)));
        }
        out += "Timestamp(seconds=" + std::to_string(sec) +
               ", nanoseconds=" + std::to_string(nsec) + ")";
        break;
      }
      out += "ExtType(code=" + std::to_string(e.type) + ", data=";
      repr_bytes(out, b);
      out += ')';
      break;
    }
  }
}

}  // namespace

value parse_literal(std::string_view text) {
  return parser(text).parse();
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // Shortest round-trip digits and exponent, then Python's layout: fixed notation when the
  // decimal exponent is in [-4, 16), else d.ddde±XX (at least two exponent digits).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
             digits.substr(static_cast<size_t>(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += exp < 0 ? "e-" : "e+";
  std::string e = std::to_string(exp < 0 ? -exp : exp);
  if (e.size() < 2) e = "0" + e;
  return out + e;
}

std::string python_repr(const value& v) {
  std::string out;
  repr_append(out, v);
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace moatkv
