#include "messages/msgpack_codec.hpp"

#include <algorithm>
#include <cstring>
#include <random>
#include <unordered_map>

#include <msgpack.hpp>

namespace moatkv {

namespace {

// Adapter so that msgpack-c's packer appends to a std::string.
struct string_sink {
  std::string& out;
  void write(const char* p, size_t n) { out.append(p, n); }
};

void pack(msgpack::packer<string_sink>& pk, std::string& out, const value& v) {
  switch (v.type()) {
    case kind::nil:
      pk.pack_nil();
      break;
    case kind::boolean:
      v.as_bool() ? pk.pack_true() : pk.pack_false();
      break;
    case kind::int64:
      pk.pack_int64(v.as_int64());
      break;
    case kind::uint64:
      pk.pack_uint64(v.as_uint64());
      break;
    case kind::float64:
      pk.pack_double(v.as_double());
      break;
    case kind::str:
      pk.pack_str(static_cast<uint32_t>(v.as_str().size()));
      pk.pack_str_body(v.as_str().data(), static_cast<uint32_t>(v.as_str().size()));
      break;
    case kind::bin:
      pk.pack_bin(static_cast<uint32_t>(v.as_bin().size()));
      pk.pack_bin_body(v.as_bin().data(), static_cast<uint32_t>(v.as_bin().size()));
      break;
    case kind::array:
      pk.pack_array(static_cast<uint32_t>(v.as_array().size()));
      for (const auto& e : v.as_array()) pack(pk, out, e);
      break;
    case kind::map:
      pk.pack_map(static_cast<uint32_t>(v.as_map().size()));
      for (const auto& [k, val] : v.as_map()) {
        pack(pk, out, k);
        pack(pk, out, val);
      }
      break;
    case kind::path: {
      const path_data& p = v.as_path();
      std::string payload;
      if (!p.mark.empty()) encode(payload, value(p.mark));
      for (const auto& e : p.elems) encode(payload, e);
      pk.pack_ext(payload.size(), p.mark.empty() ? ext_code::path : ext_code::marked_path);
      pk.pack_ext_body(payload.data(), static_cast<uint32_t>(payload.size()));
      break;
    }
    case kind::ext: {
      const ext_data& e = v.as_ext();
      pk.pack_ext(e.bytes.size(), e.type);
      pk.pack_ext_body(e.bytes.data(), static_cast<uint32_t>(e.bytes.size()));
      break;
    }
  }
}

bool valid_utf8(const char* s, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

// Maps up to this size deduplicate their keys by linear search (cheaper than an index).
constexpr uint32_t small_map = 16;

// hash_value mixed with a per-process random seed: the index of large maps must not have
// buckets a peer can aim at (hash_value of an integer is the integer).
uint64_t seeded_hash(const value& v) {
  static const uint64_t seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  uint64_t x = hash_value(v) ^ seed;  // splitmix64's finalizer
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

array decode_elements(std::string_view payload, const decode_limits& limits, size_t depth);

// Builds `value`s straight from msgpack-c's parser events, for one-shot and stream decoding.
// Why not msgpack-c's msgpack::object: its visitor allocates the declared size of every array
// and map as soon as the header is read (a 5-byte header claiming 4 million map entries: 200 MB,
// 64 nested ones from 320 bytes: 12 GB of address space, held while a client trickles the
// rest). Here containers grow with the elements that actually arrive.
class value_builder {
 public:
  value_builder(const decode_limits& limits, size_t base_depth)
      : limits_(limits), base_depth_(base_depth) {}

  // msgpack-c's visitor interface (msgpack/v2/null_visitor.hpp).
  void init() {
    stack_.clear();
    root_ = value();
    insufficient_ = false;
  }
  bool visit_nil() { return put(value()); }
  bool visit_boolean(bool v) { return put(value(v)); }
  bool visit_positive_integer(uint64_t v) { return put(value(static_cast<unsigned long long>(v))); }
  bool visit_negative_integer(int64_t v) { return put(value(static_cast<long long>(v))); }
  bool visit_float32(float v) { return put(value(static_cast<double>(v))); }
  bool visit_float64(double v) { return put(value(v)); }
  bool visit_str(const char* p, uint32_t size) {
    if (size > limits_.max_bytes) throw decode_error("msgpack: str size overflow");
    if (!valid_utf8(p, size)) throw decode_error("msgpack: str is not valid UTF-8");
    return put(value(std::string(p, size)));
  }
  bool visit_bin(const char* p, uint32_t size) {
    if (size > limits_.max_bytes) throw decode_error("msgpack: bin size overflow");
    return put(value(bin{std::string(p, size)}));
  }
  bool visit_ext(const char* p, uint32_t size) {  // p[0] is the type, then the payload
    if (size > limits_.max_bytes) throw decode_error("msgpack: ext size overflow");
    if (size == 0) throw decode_error("msgpack: ext without a type");
    auto type = static_cast<int8_t>(p[0]);
    std::string_view payload(p + 1, size - 1);
    if (type == ext_code::path)
      return put(value::make_path(decode_elements(payload, limits_, depth())));
    if (type == ext_code::marked_path) {
      array all = decode_elements(payload, limits_, depth());
      if (all.empty() || !all.front().is_str())
        throw decode_error("msgpack: marked path without a mark");
      std::string mark = all.front().as_str();
      all.erase(all.begin());
      return put(value::make_path(std::move(all), std::move(mark)));
    }
    return put(value(ext_data{type, std::string(payload)}));
  }
  bool start_array(uint32_t n) {
    if (n > limits_.max_container) throw decode_error("msgpack: array size overflow");
    check_depth();
    frame f;
    f.v = value(array{});
    f.v.as_array().reserve(std::min<uint32_t>(n, reserve_cap));
    stack_.push_back(std::move(f));
    return true;
  }
  bool start_array_item() { return true; }
  bool end_array_item() { return true; }
  bool end_array() { return pop(); }
  bool start_map(uint32_t n) {
    if (n > limits_.max_container) throw decode_error("msgpack: map size overflow");
    check_depth();
    frame f;
    f.v = value(map{});
    f.v.as_map().reserve(std::min<uint32_t>(n, reserve_cap));
    stack_.push_back(std::move(f));
    return true;
  }
  bool start_map_key() { return true; }
  bool end_map_key() { return true; }
  bool start_map_value() { return true; }
  bool end_map_value() { return true; }
  bool end_map() { return pop(); }
  void parse_error(size_t, size_t) { throw decode_error("msgpack: parse error"); }
  void insufficient_bytes(size_t, size_t) { insufficient_ = true; }
  bool referenced() const { return false; }  // str/bin/ext bytes are always copied
  void set_referenced(bool) {}

  bool insufficient() const { return insufficient_; }
  value take() { return std::move(root_); }

 private:
  // Reserve no more than this for a container up front: its header may lie.
  static constexpr uint32_t reserve_cap = 1024;

  struct frame {
    value v;  // the array or map being filled
    value key;
    bool has_key = false;
    // Large maps: key hash -> position, so duplicates are found in linear time (map_set's
    // linear search made a 900 KB map of 150 000 keys take 70 s).
    std::unordered_multimap<uint64_t, size_t> index;
    size_t comparisons = 0;
  };

  size_t depth() const { return base_depth_ + stack_.size(); }
  void check_depth() const {
    if (depth() > limits_.max_depth) throw decode_error("msgpack: nesting too deep");
  }

  bool put(value v) {
    check_depth();
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    frame& f = stack_.back();
    if (f.v.is_array()) {
      f.v.as_array().push_back(std::move(v));
    } else if (!f.has_key) {
      f.key = std::move(v);
      f.has_key = true;
    } else {
      map_insert(f, std::move(f.key), std::move(v));
      f.has_key = false;
    }
    return true;
  }

  bool pop() {
    value v = std::move(stack_.back().v);
    stack_.pop_back();
    return put(std::move(v));
  }

  // Duplicate keys: the last value wins, at the first key's position.
  static void map_insert(frame& f, value k, value v) {
    map& m = f.v.as_map();
    if (m.size() < small_map && f.index.empty()) {
      map_set(m, std::move(k), std::move(v));
      return;
    }
    if (f.index.empty())
      for (size_t i = 0; i < m.size(); ++i) f.index.emplace(seeded_hash(m[i].first), i);
    uint64_t h = seeded_hash(k);
    for (auto [it, end] = f.index.equal_range(h); it != end; ++it) {
      // Keys that hash alike without being equal (NaN: equal to nothing; timestamps: equal
      // by time) could make this quadratic again: a few per key are allowed, no more.
      if (++f.comparisons > 8 * (m.size() + 1))
        throw decode_error("msgpack: too many map keys that are alike but not equal");
      if (m[it->second].first == k) {
        m[it->second].second = std::move(v);
        return;
      }
    }
    f.index.emplace(h, m.size());
    m.emplace_back(std::move(k), std::move(v));
  }

  decode_limits limits_;
  size_t base_depth_;
  std::vector<frame> stack_;
  value root_;
  bool insufficient_ = false;
};

struct no_hook {
  void operator()(char*) const {}
};

// msgpack-c's incremental parser with the value builder as its visitor (the way its own
// unpacker combines the parser with msgpack::object's visitor).
class stream_parser : public msgpack::v2::parser<stream_parser, no_hook>, public value_builder {
  using parser_t = msgpack::v2::parser<stream_parser, no_hook>;

 public:
  explicit stream_parser(const decode_limits& l)
      : parser_t(hook_, 64 * 1024), value_builder(l, 0) {}
  value_builder& visitor() { return *this; }

 private:
  no_hook hook_;
};

// One object from bytes[offset...]: true and `offset` advanced past it, or false if the bytes
// end first. Throws decode_error on invalid bytes.
bool parse_one(std::string_view bytes, size_t& offset, value& out, const decode_limits& limits,
               size_t base_depth) {
  value_builder b(limits, base_depth);
  size_t off = offset;
  bool ok;
  try {
    ok = msgpack::parse(bytes.data(), bytes.size(), off, b);
  } catch (const decode_error&) {
    throw;
  } catch (const std::exception& e) {  // bad_alloc, or anything msgpack-c itself throws
    throw decode_error(std::string("msgpack: ") + e.what());
  }
  if (!ok) {
    if (b.insufficient()) return false;
    throw decode_error("msgpack: parse error");
  }
  out = b.take();
  offset = off;
  return true;
}

array decode_elements(std::string_view payload, const decode_limits& limits, size_t depth) {
  if (depth > limits.max_depth) throw decode_error("msgpack: nesting too deep");
  array elems;
  size_t off = 0;
  while (off < payload.size()) {
    value v;
    if (!parse_one(payload, off, v, limits, depth + 1))
      throw decode_error("msgpack: bad path element: insufficient bytes");
    elems.push_back(std::move(v));
  }
  return elems;
}

}  // namespace

void encode(std::string& out, const value& v) {
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pack(pk, out, v);
}

void encode_map_header(std::string& out, size_t pairs) {
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_map(static_cast<uint32_t>(pairs));
}

std::string encode(const value& v) {
  std::string out;
  encode(out, v);
  return out;
}

value decode(std::string_view bytes, const decode_limits& limits) {
  size_t off = 0;
  value out;
  if (!parse_one(bytes, off, out, limits, 0)) throw decode_error("msgpack: insufficient bytes");
  if (off != bytes.size()) throw decode_error("msgpack: trailing bytes after the object");
  return out;
}

bool decode_prefix(std::string_view bytes, size_t& offset, value& out,
                   const decode_limits& limits) {
  // A cut header, a cut str/bin/ext payload or a container with missing elements all look like
  // the end of the bytes: false. An array or map count above the limits is an error as soon
  // as its header is read; a str/bin/ext length only once the payload is there.
  return parse_one(bytes, offset, out, limits, 0);
}

array decode_path_elements(std::string_view payload, const decode_limits& limits) {
  return decode_elements(payload, limits, 0);
}

struct stream_decoder::impl {
  stream_parser p;
  explicit impl(const decode_limits& l) : p(l) {}
};

stream_decoder::stream_decoder(const decode_limits& limits)
    : impl_(std::make_unique<impl>(limits)) {}
stream_decoder::~stream_decoder() = default;

void stream_decoder::feed(const char* data, size_t size) {
  impl_->p.reserve_buffer(size);
  std::memcpy(impl_->p.buffer(), data, size);
  impl_->p.buffer_consumed(size);
}

bool stream_decoder::next(value& out) {
  try {
    if (!impl_->p.next()) return false;
  } catch (const decode_error&) {
    throw;
  } catch (const std::exception& e) {
    throw decode_error(std::string("msgpack: ") + e.what());
  }
  out = impl_->p.take();
  impl_->p.reset();  // the parser's state and the builder's, for the next object
  return true;
}

size_t stream_decoder::pending_bytes() const {
  // msgpack-c parses an unfinished object as far as its bytes go: the bytes it already parsed
  // (and holds as objects) count too, else a caller's size limit misses an endless array.
  return impl_->p.message_size();
}

}  // namespace moatkv
