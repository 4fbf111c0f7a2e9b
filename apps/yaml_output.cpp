#include "apps/yaml_output.hpp"

#include <cmath>
#include <cstdio>
#include <regex>
#include <string_view>
#include <vector>

#include "messages/path_syntax.hpp"

namespace moatkv {

namespace {

// PyYAML works on code points (columns, character classes); invalid UTF-8 becomes U+FFFD.
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    out += cp;
    i += len;
  }
  return out;
}

bool is_break(char32_t c) {
  return c == U'\n' || c == U'\x85' || c == U'\u2028' || c == U'\u2029';
}
bool is_ws_or_end(char32_t c) {
  return c == 0 || c == U' ' || c == U'\t' || c == U'\r' || is_break(c);
}
bool in(char32_t c, std::u32string_view set) {
  return set.find(c) != std::u32string_view::npos;
}

struct analysis {
  bool empty = false, multiline = false;
  bool allow_flow_plain = true, allow_block_plain = true, allow_single_quoted = true,
       allow_block = true;
};

// Emitter.analyze_scalar with allow_unicode=True.
analysis analyze(const std::u32string& s) {
  analysis a;
  if (s.empty()) {
    a.empty = true;
    a.allow_flow_plain = false;
    a.allow_block = false;
    return a;
  }
  bool block_ind = false, flow_ind = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false,
       break_space = false, space_break = false;
  if (s.rfind(U"---", 0) == 0 || s.rfind(U"...", 0) == 0) block_ind = flow_ind = true;
  bool preceded_ws = true;
  bool followed_ws = s.size() == 1 || is_ws_or_end(s[1]);
  bool prev_space = false, prev_break = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t ch = s[i];
    if (i == 0) {
      if (in(ch, U"#,[]{}&*!|>'\"%@`")) flow_ind = block_ind = true;
      if (ch == U'?' || ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'-' && followed_ws) flow_ind = block_ind = true;
    } else {
      if (in(ch, U",?[]{}")) flow_ind = true;
      if (ch == U':') {
        flow_ind = true;
        if (followed_ws) block_ind = true;
      }
      if (ch == U'#' && preceded_ws) flow_ind = block_ind = true;
    }
    if (is_break(ch)) line_breaks = true;
    if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) {
      bool unicode = (ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF) ||
                      (ch >= 0xE000 && ch <= 0xFFFD) || (ch >= 0x10000 && ch < 0x10FFFF)) &&
                     ch != 0xFEFF;
      if (!unicode) special = true;
    }
    if (ch == U' ') {
      if (i == 0) leading_space = true;
      if (i == s.size() - 1) trailing_space = true;
      if (prev_break) break_space = true;
      prev_space = true;
      prev_break = false;
    } else if (is_break(ch)) {
      if (i == 0) leading_break = true;
      if (i == s.size() - 1) trailing_break = true;
      if (prev_space) space_break = true;
      prev_space = false;
      prev_break = true;
    } else {
      prev_space = prev_break = false;
    }
    preceded_ws = is_ws_or_end(ch);
    followed_ws = i + 2 >= s.size() || is_ws_or_end(s[i + 2]);
  }
  a.multiline = line_breaks;
  if (leading_space || leading_break || trailing_space || trailing_break)
    a.allow_flow_plain = a.allow_block_plain = false;
  if (trailing_space) a.allow_block = false;
  if (break_space) a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = false;
  if (space_break || special)
    a.allow_flow_plain = a.allow_block_plain = a.allow_single_quoted = a.allow_block = false;
  if (line_breaks) a.allow_flow_plain = a.allow_block_plain = false;
  if (flow_ind) a.allow_flow_plain = false;
  if (block_ind) a.allow_block_plain = false;
  return a;
}

// Would a plain scalar with this text read back as a str? (PyYAML's YAML 1.1 implicit resolvers.)
bool resolves_to_str(const std::string& s) {
  static const std::regex special(
      "yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
      "|[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?"
      "|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
      "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*"
      "|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)"
      "|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
      "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
      "|<<|~|null|Null|NULL|=|!|&|\\*"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \\t]+)[0-9][0-9]?"
      ":[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?");
  return !s.empty() && !std::regex_match(s, special);
}

// A scalar as the representer hands it to the emitter.
struct scalar {
  std::string tag;  // written before the value ("" = implicit type, no tag)
  std::string text;
  bool plain_ok = true;  // plain style keeps the meaning (str: resolves back to a str)
  bool literal = false;  // the representer asks for `|` style
};

std::string hex_colon(std::string_view b) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (char c : b) {
    if (!out.empty()) out += ':';
    out += d[static_cast<unsigned char>(c) >> 4];
    out += d[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

std::string base64_lines(std::string_view s) {
  // base64.encodebytes: 76 characters per line, each line ending in a newline.
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string flat;
  for (size_t i = 0; i < s.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(s[i]) << 16;
    if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    if (i + 2 < s.size()) v |= static_cast<unsigned char>(s[i + 2]);
    flat += a[(v >> 18) & 63];
    flat += a[(v >> 12) & 63];
    flat += i + 1 < s.size() ? a[(v >> 6) & 63] : '=';
    flat += i + 2 < s.size() ? a[v & 63] : '=';
  }
  std::string out;
  for (size_t i = 0; i < flat.size(); i += 76) out += flat.substr(i, 76) + "\n";
  return out;
}

scalar tagged(std::string tag, std::string text) {
  scalar s{std::move(tag), std::move(text), true, false};
  // An empty tagged scalar is quoted: a bare `!bin` would be unreadable in a flow of keys.
  if (s.text.empty()) s.plain_ok = false;
  return s;
}

scalar represent(const value& v) {
  switch (v.type()) {
    case kind::nil:
      return {"", "null"};
    case kind::boolean:
      return {"", v.as_bool() ? "true" : "false"};
    case kind::int64:
      return {"", std::to_string(v.as_int64())};
    case kind::uint64:
      return {"", std::to_string(v.as_uint64())};
    case kind::float64: {
      double d = v.as_double();
      if (std::isnan(d)) return {"", ".nan"};
      if (std::isinf(d)) return {"", d > 0 ? ".inf" : "-.inf"};
      // SafeRepresenter.represent_float: repr, lowercased, "1e+20" made "1.0e+20".
      std::string r = python_float_repr(d);
      if (r.find('.') == std::string::npos && r.find('e') != std::string::npos)
        r.insert(r.find('e'), ".0");
      return {"", r};
    }
    case kind::str: {
      const std::string& s = v.as_str();
      scalar out{"", s, resolves_to_str(s), s.find('\n') != std::string::npos};
      return out;
    }
    case kind::bin: {
      const std::string& b = v.as_bin();
      bool ascii = true;
      for (char c : b)
        if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
      if (ascii) return tagged("!bin", b);
      if (b.size() < 33) return tagged("!hex", hex_colon(b));
      return {"!!binary", base64_lines(b), false, true};
    }
    case kind::path:
      return tagged("!P", format_path(v));
    case kind::ext: {
      std::string text = std::to_string(v.as_ext().type);
      if (!v.as_ext().bytes.empty()) text += " " + hex_colon(v.as_ext().bytes);
      return tagged("!ext", text);
    }
    default:
      return {};
  }
}

// A port of the parts of PyYAML's Emitter that block-style safe_dump output uses.
class emitter {
 public:
  std::string out;

  void document(const value& v) {
    node(v, /*root=*/true, false, false);
    write_indent();
    if (open_ended_) {
      write_indicator("...", true);
      write_indent();
    }
  }

 private:
  int column_ = 0;
  int indent_ = -1;  // -1 = None
  std::vector<int> indents_;
  bool whitespace_ = true, indention_ = true, open_ended_ = false;
  bool root_ = false, mapping_ctx_ = false, simple_key_ = false;
  int flow_level_ = 0;
  static constexpr int best_indent = 2;
  static constexpr int best_width = 80;

  void node(const value& v, bool root, bool mapping, bool simple_key) {
    root_ = root;
    mapping_ctx_ = mapping;
    simple_key_ = simple_key;
    if (v.is_array()) {
      if (v.as_array().empty()) return empty_flow('[', ']');
      return block_sequence(v.as_array());
    }
    if (v.is_map()) {
      if (v.as_map().empty()) return empty_flow('{', '}');
      return block_mapping(v.as_map());
    }
    emit_scalar(represent(v));
  }

  void increase_indent(bool flow, bool indentless = false) {
    indents_.push_back(indent_);
    if (indent_ < 0) {
      indent_ = flow ? best_indent : 0;
    } else if (!indentless) {
      indent_ += best_indent;
    }
  }
  void pop_indent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }

  void empty_flow(char open, char close) {
    write_indicator(std::string(1, open), true, true);
    ++flow_level_;
    increase_indent(true);
    pop_indent();
    --flow_level_;
    write_indicator(std::string(1, close), false);
  }

  void block_sequence(const array& a) {
    bool indentless = mapping_ctx_ && !indention_;
    increase_indent(false, indentless);
    for (const value& item : a) {
      write_indent();
      write_indicator("-", true, false, true);
      node(item, false, false, false);
    }
    pop_indent();
  }

  bool simple_key(const value& k) {
    if (k.is_array()) return k.as_array().empty();
    if (k.is_map()) return k.as_map().empty();
    scalar s = represent(k);
    std::u32string text = decode_utf8(s.text);
    size_t length = text.size() + s.tag.size();
    return length < 128 && !text.empty() && !analyze(text).multiline;
  }

  void block_mapping(const map& m) {
    increase_indent(false);
    for (const auto& [k, val] : m) {
      write_indent();
      if (simple_key(k)) {
        node(k, false, true, true);
        write_indicator(":", false);
      } else {
        write_indicator("?", true, false, true);
        node(k, false, true, false);
        write_indent();
        write_indicator(":", true, false, true);
      }
      node(val, false, true, false);
    }
    pop_indent();
  }

  void emit_scalar(const scalar& s) {
    increase_indent(true);
    std::u32string text = decode_utf8(s.text);
    analysis a = analyze(text);
    char style = choose_style(s, a);
    // Only scalars with an explicit tag carry one: str, int, float, bool and null never need it
    // because plain style is only chosen for them when the text resolves back to their type.
    if (!s.tag.empty()) write_indicator(s.tag, true);
    bool split = !simple_key_;
    if (style == '"')
      write_double_quoted(text, split);
    else if (style == '\'')
      write_single_quoted(text, split);
    else if (style == '|')
      write_literal(text);
    else
      write_plain(text, split);
    pop_indent();
  }

  char choose_style(const scalar& s, const analysis& a) const {
    if (!s.literal && s.plain_ok) {
      if (!(simple_key_ && (a.empty || a.multiline)) &&
          ((flow_level_ && a.allow_flow_plain) || (!flow_level_ && a.allow_block_plain)))
        return 0;
    }
    if (s.literal) {
      if (!flow_level_ && !simple_key_ && a.allow_block) return '|';
      return '"';
    }
    if (a.allow_single_quoted && !(simple_key_ && a.multiline)) return '\'';
    return '"';
  }

  void write(std::u32string_view data) {
    for (char32_t c : data) append_utf8(out, c);
    column_ += static_cast<int>(data.size());
  }

  void write_indicator(const std::string& ind, bool need_whitespace, bool whitespace = false,
                       bool indention = false) {
    if (!(whitespace_ || !need_whitespace)) {
      out += ' ';
      ++column_;
    }
    out += ind;
    column_ += static_cast<int>(ind.size());
    whitespace_ = whitespace;
    indention_ = indention_ && indention;
    open_ended_ = false;
  }

  void write_indent() {
    int indent = indent_ < 0 ? 0 : indent_;
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) write_line_break();
    if (column_ < indent) {
      whitespace_ = true;
      out.append(static_cast<size_t>(indent - column_), ' ');
      column_ = indent;
    }
  }

  void write_line_break(char32_t br = U'\n') {
    whitespace_ = true;
    indention_ = true;
    column_ = 0;
    append_utf8(out, br);
  }

  void write_plain(const std::u32string& text, bool split) {
    if (root_) open_ended_ = true;
    if (text.empty()) return;
    if (!whitespace_) write(U" ");
    whitespace_ = false;
    indention_ = false;
    bool spaces = false, breaks = false;
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      char32_t ch = end < text.size() ? text[end] : 0;
      bool none = end == text.size();
      if (spaces) {
        if (none || ch != U' ') {
          if (start + 1 == end && column_ > best_width && split) {
            write_indent();
            whitespace_ = false;
            indention_ = false;
          } else {
            write(std::u32string_view(text).substr(start, end - start));
          }
          start = end;
        }
      } else if (breaks) {
        if (none || !is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (size_t k = start; k < end; ++k) write_line_break(text[k]);
          write_indent();
          whitespace_ = false;
          indention_ = false;
          start = end;
        }
      } else if (none || ch == U' ' || is_break(ch)) {
        write(std::u32string_view(text).substr(start, end - start));
        start = end;
      }
      if (!none) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
  }

  void write_single_quoted(const std::u32string& text, bool split) {
    write_indicator("'", true);
    bool spaces = false, breaks = false;
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      bool none = end == text.size();
      char32_t ch = none ? 0 : text[end];
      if (spaces) {
        if (none || ch != U' ') {
          if (start + 1 == end && column_ > best_width && split && start != 0 &&
              end != text.size()) {
            write_indent();
          } else {
            write(std::u32string_view(text).substr(start, end - start));
          }
          start = end;
        }
      } else if (breaks) {
        if (none || !is_break(ch)) {
          if (text[start] == U'\n') write_line_break();
          for (size_t k = start; k < end; ++k) write_line_break(text[k]);
          write_indent();
          start = end;
        }
      } else if (none || ch == U' ' || is_break(ch) || ch == U'\'') {
        if (start < end) {
          write(std::u32string_view(text).substr(start, end - start));
          start = end;
        }
      }
      if (ch == U'\'' && !none) {
        write(U"''");
        start = end + 1;
      }
      if (!none) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
      ++end;
    }
    write_indicator("'", false);
  }

  static const char* escape_for(char32_t ch) {
    switch (ch) {
      case 0:
        return "0";
      case 0x07:
        return "a";
      case 0x08:
        return "b";
      case 0x09:
        return "t";
      case 0x0A:
        return "n";
      case 0x0B:
        return "v";
      case 0x0C:
        return "f";
      case 0x0D:
        return "r";
      case 0x1B:
        return "e";
      case U'"':
        return "\"";
      case U'\\':
        return "\\";
      case 0x85:
        return "N";
      case 0xA0:
        return "_";
      case 0x2028:
        return "L";
      case 0x2029:
        return "P";
      default:
        return nullptr;
    }
  }

  void write_double_quoted(const std::u32string& text, bool split) {
    write_indicator("\"", true);
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      bool none = end == text.size();
      char32_t ch = none ? 0 : text[end];
      if (none || in(ch, U"\"\\\x85\u2028\u2029\uFEFF") ||
          !((ch >= 0x20 && ch <= 0x7E) || (ch >= 0xA0 && ch <= 0xD7FF) ||
            (ch >= 0xE000 && ch <= 0xFFFD))) {
        if (start < end) {
          write(std::u32string_view(text).substr(start, end - start));
          start = end;
        }
        if (!none) {
          std::string data = "\\";
          if (const char* e = escape_for(ch)) {
            data += e;
          } else {
            char buf[16];
            if (ch <= 0xFF)
              std::snprintf(buf, sizeof buf, "x%02X", static_cast<unsigned>(ch));
            else if (ch <= 0xFFFF)
              std::snprintf(buf, sizeof buf, "u%04X", static_cast<unsigned>(ch));
            else
              std::snprintf(buf, sizeof buf, "U%08X", static_cast<unsigned>(ch));
            data += buf;
          }
          out += data;
          column_ += static_cast<int>(data.size());
          start = end + 1;
        }
      }
      if (0 < end && end + 1 < text.size() && (ch == U' ' || start >= end) &&
          column_ + static_cast<int>(end - start) > best_width && split) {
        std::u32string data = text.substr(start, end - start) + U"\\";
        if (start < end) start = end;
        write(data);
        write_indent();
        whitespace_ = false;
        indention_ = false;
        if (text[start] == U' ') write(U"\\");
      }
      ++end;
    }
    write_indicator("\"", false);
  }

  void write_literal(const std::u32string& text) {
    std::string hints;
    if (!text.empty()) {
      if (text[0] == U' ' || is_break(text[0])) hints += std::to_string(best_indent);
      if (!is_break(text.back()))
        hints += '-';
      else if (text.size() == 1 || is_break(text[text.size() - 2]))
        hints += '+';
    }
    write_indicator("|" + hints, true);
    if (!hints.empty() && hints.back() == '+') open_ended_ = true;
    write_line_break();
    bool breaks = true;
    size_t start = 0, end = 0;
    while (end <= text.size()) {
      bool none = end == text.size();
      char32_t ch = none ? 0 : text[end];
      if (breaks) {
        if (none || !is_break(ch)) {
          for (size_t k = start; k < end; ++k) write_line_break(text[k]);
          if (!none) write_indent();
          start = end;
        }
      } else if (none || is_break(ch)) {
        write(std::u32string_view(text).substr(start, end - start));
        if (none) write_line_break();
        start = end;
      }
      if (!none) breaks = is_break(ch);
      ++end;
    }
  }
};

}  // namespace

std::string yaml_dump(const value& v) {
  emitter e;
  e.document(v);
  return e.out;
}

std::string yprint(const value& v) {
  // Python's print(data) for int/float (bool is an int there: True), repr for str/bytes.
  switch (v.type()) {
    case kind::boolean:
    case kind::int64:
    case kind::uint64:
    case kind::float64:
    case kind::str:
    case kind::bin:
      return python_repr(v) + "\n";
    default:
      return yaml_dump(v);
  }
}

value without_keys(const value& msg, std::initializer_list<std::string_view> drop) {
  if (!msg.is_map()) return msg;
  map out;
  for (const auto& [k, v] : msg.as_map()) {
    bool skip = false;
    for (auto d : drop) skip = skip || (k.is_str() && k.as_str() == d);
    if (!skip) out.emplace_back(k, v);
  }
  return value(std::move(out));
}

}  // namespace moatkv
