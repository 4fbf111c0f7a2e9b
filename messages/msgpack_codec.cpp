#include "messages/msgpack_codec.hpp"

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

msgpack::unpack_limit to_msgpack_limit(const decode_limits& l) {
  return msgpack::unpack_limit(l.max_container, l.max_container, l.max_bytes, l.max_bytes,
                               l.max_bytes, l.max_depth);
}

value convert(const msgpack::object& o, const decode_limits& limits, size_t depth);

array decode_elements(std::string_view payload, const decode_limits& limits, size_t depth) {
  if (depth > limits.max_depth) throw decode_error("msgpack: nesting too deep");
  array elems;
  size_t off = 0;
  // One zone for all elements, cleared after each: a zone per element cost an 8 KiB chunk per
  // element (a 4096-element path from a peer: 32 MiB of allocations).
  msgpack::zone zone;
  while (off < payload.size()) {
    msgpack::object obj;
    try {
      obj = msgpack::unpack(zone, payload.data(), payload.size(), off, nullptr, nullptr,
                            to_msgpack_limit(limits));
    } catch (const std::exception& e) {
      throw decode_error(std::string("msgpack: bad path element: ") + e.what());
    }
    elems.push_back(convert(obj, limits, depth + 1));
    zone.clear();
  }
  return elems;
}

value convert(const msgpack::object& o, const decode_limits& limits, size_t depth) {
  if (depth > limits.max_depth) throw decode_error("msgpack: nesting too deep");
  switch (o.type) {
    case msgpack::type::NIL:
      return value();
    case msgpack::type::BOOLEAN:
      return value(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
      return value(static_cast<unsigned long long>(o.via.u64));
    case msgpack::type::NEGATIVE_INTEGER:
      return value(static_cast<long long>(o.via.i64));
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return value(o.via.f64);
    case msgpack::type::STR:
      if (!valid_utf8(o.via.str.ptr, o.via.str.size))
        throw decode_error("msgpack: str is not valid UTF-8");
      return value(std::string(o.via.str.ptr, o.via.str.size));
    case msgpack::type::BIN:
      return value(bin{std::string(o.via.bin.ptr, o.via.bin.size)});
    case msgpack::type::ARRAY: {
      array a;
      a.reserve(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i)
        a.push_back(convert(o.via.array.ptr[i], limits, depth + 1));
      return value(std::move(a));
    }
    case msgpack::type::MAP: {
      map m;
      m.reserve(o.via.map.size);
      if (o.via.map.size <= small_map) {
        for (uint32_t i = 0; i < o.via.map.size; ++i) {
          value k = convert(o.via.map.ptr[i].key, limits, depth + 1);
          value v = convert(o.via.map.ptr[i].val, limits, depth + 1);
          map_set(m, std::move(k), std::move(v));  // duplicate keys: last wins
        }
        return value(std::move(m));
      }
      // Large maps: map_set's linear search made decoding quadratic (a 900 KB map of 150 000
      // keys took 70 s, blocking its actor). Duplicates are found through a seeded hash index
      // instead. Keys that hash alike without being equal (NaN: equal to nothing; timestamps:
      // equal by time) could still make it quadratic, so comparisons are bounded.
      std::unordered_multimap<uint64_t, size_t> index;
      index.reserve(o.via.map.size);
      size_t comparisons = 0;
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        value k = convert(o.via.map.ptr[i].key, limits, depth + 1);
        value v = convert(o.via.map.ptr[i].val, limits, depth + 1);
        uint64_t h = seeded_hash(k);
        bool found = false;
        for (auto [it, end] = index.equal_range(h); it != end && !found; ++it) {
          if (++comparisons > 8 * size_t{o.via.map.size})
            throw decode_error("msgpack: too many map keys that are alike but not equal");
          if (m[it->second].first == k) {
            m[it->second].second = std::move(v);  // duplicate keys: last wins, first position
            found = true;
          }
        }
        if (!found) {
          index.emplace(h, m.size());
          m.emplace_back(std::move(k), std::move(v));
        }
      }
      return value(std::move(m));
    }
    case msgpack::type::EXT: {
      int8_t type = o.via.ext.type();
      std::string_view payload(o.via.ext.data(), o.via.ext.size);
      if (type == ext_code::path) return value::make_path(decode_elements(payload, limits, depth));
      if (type == ext_code::marked_path) {
        array all = decode_elements(payload, limits, depth);
        if (all.empty() || !all.front().is_str())
          throw decode_error("msgpack: marked path without a mark");
        std::string mark = all.front().as_str();
        all.erase(all.begin());
        return value::make_path(std::move(all), std::move(mark));
      }
      return value(ext_data{type, std::string(payload)});
    }
  }
  throw decode_error("msgpack: unknown object type");
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
  msgpack::object_handle oh;
  try {
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         to_msgpack_limit(limits));
  } catch (const std::exception& e) {
    throw decode_error(std::string("msgpack: ") + e.what());
  }
  if (off != bytes.size()) throw decode_error("msgpack: trailing bytes after the object");
  return convert(oh.get(), limits, 0);
}

bool decode_prefix(std::string_view bytes, size_t& offset, value& out,
                   const decode_limits& limits) {
  size_t off = offset;
  msgpack::object_handle oh;
  try {
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         to_msgpack_limit(limits));
  } catch (const msgpack::insufficient_bytes&) {
    // msgpack-c reports every cut object this way: a cut header, a cut str/bin/ext payload
    // or a container with missing elements. An array or map count above the limits is an
    // error as soon as its header is read; a str/bin/ext length only once the payload is there.
    return false;
  } catch (const std::exception& e) {
    throw decode_error(std::string("msgpack: ") + e.what());
  }
  out = convert(oh.get(), limits, 0);
  offset = off;
  return true;
}

array decode_path_elements(std::string_view payload, const decode_limits& limits) {
  return decode_elements(payload, limits, 0);
}

struct stream_decoder::impl {
  decode_limits limits;
  msgpack::unpacker unpacker;
  explicit impl(const decode_limits& l)
      : limits(l), unpacker(nullptr, nullptr, 64 * 1024, to_msgpack_limit(l)) {}
};

stream_decoder::stream_decoder(const decode_limits& limits)
    : impl_(std::make_unique<impl>(limits)) {}
stream_decoder::~stream_decoder() = default;

void stream_decoder::feed(const char* data, size_t size) {
  impl_->unpacker.reserve_buffer(size);
  std::memcpy(impl_->unpacker.buffer(), data, size);
  impl_->unpacker.buffer_consumed(size);
}

bool stream_decoder::next(value& out) {
  msgpack::object_handle oh;
  try {
    if (!impl_->unpacker.next(oh)) return false;
  } catch (const std::exception& e) {
    throw decode_error(std::string("msgpack: ") + e.what());
  }
  out = convert(oh.get(), impl_->limits, 0);
  return true;
}

size_t stream_decoder::pending_bytes() const {
  // msgpack-c parses an unfinished object as far as its bytes go: the bytes it already parsed
  // (and holds as objects) count too, else a caller's size limit misses an endless array.
  return impl_->unpacker.message_size();
}

}  // namespace moatkv
