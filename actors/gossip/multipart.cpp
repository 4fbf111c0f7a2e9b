#include "actors/gossip/multipart.hpp"

#include <algorithm>

#include "messages/msgpack_codec.hpp"

namespace moatkv {

namespace {

// Bookkeeping of one held part (map node, string header), counted against limits::max_bytes.
constexpr size_t part_overhead = 64;

std::string part_key(size_t i) {
  return "_p" + std::to_string(i);
}

bool has_key(const map& m, const std::string& k) {
  return map_find(m, k) != nullptr;
}

// Escape: _p0 … _p(j-1) → _p1 … _pj, _p0 = "".
value escape(const value& msg) {
  if (!msg.is_map() || !has_key(msg.as_map(), "_p0")) return msg;
  map m = msg.as_map();
  size_t j = 0;
  while (has_key(m, part_key(j))) ++j;
  for (size_t k = j; k > 0; --k) map_set(m, value(part_key(k)), *map_find(m, part_key(k - 1)));
  map_set(m, value("_p0"), value(""));
  return value(std::move(m));
}

// Un-escape: shift _p1 … down by one and drop the last.
void unescape(map& m) {
  size_t j = 0;
  while (has_key(m, part_key(j))) ++j;
  for (size_t k = 0; k + 1 < j; ++k) map_set(m, value(part_key(k)), *map_find(m, part_key(k + 1)));
  map_erase(m, part_key(j - 1));
}

}  // namespace

std::vector<std::string> pack_multipart(const value& msg, const std::string& node,
                                        uint64_t& part_seq, size_t max_len) {
  std::string whole = encode(escape(msg));
  if (whole.size() <= max_len) return {std::move(whole)};
  // The original measures the name in characters, not bytes; for ASCII names they agree and
  // for others we stay below the limit by using the byte length.
  size_t chunk = max_len > 15 + node.size() + 1 ? max_len - 15 - node.size() : 1;
  uint64_t seq = ++part_seq;
  int64_t n = static_cast<int64_t>((whole.size() + chunk - 1) / chunk);
  std::vector<std::string> out;
  for (int64_t i = 1; i <= n; ++i) {
    std::string piece = whole.substr(static_cast<size_t>(i - 1) * chunk, chunk);
    value part(
        map{{"_p0", array{value(node), value(seq), value(i == n ? -i : i), value(bin{piece})}}});
    out.push_back(encode(part));
  }
  return out;
}

multipart_assembler::set_map::iterator multipart_assembler::erase(set_map::iterator it) {
  bytes_ -= it->second.bytes;
  return sets_.erase(it);
}

// Drop the set that arrived first, except `keep` (the one being fed).
void multipart_assembler::drop_oldest(const set_map::iterator& keep) {
  auto oldest = sets_.end();
  for (auto j = sets_.begin(); j != sets_.end(); ++j)
    if (j != keep && (oldest == sets_.end() || j->second.first_seen < oldest->second.first_seen))
      oldest = j;
  if (oldest != sets_.end()) erase(oldest);
}

void multipart_assembler::expire(double now) {
  for (auto it = sets_.begin(); it != sets_.end();) {
    if (now - it->second.first_seen > limits_.expiry_seconds)
      it = erase(it);
    else
      ++it;
  }
}

std::optional<value> multipart_assembler::feed(value msg, double now) {
  if (!msg.is_map()) return msg;
  const value* p0 = msg.find("_p0");
  if (!p0) return msg;
  if (!(p0->is_str() && p0->as_str().empty())) {
    // A part: [name, seq, index, data].
    if (!p0->is_array() || p0->as_array().size() != 4)
      throw multipart_error("multipart: _p0 must be [node, seq, index, data]");
    const array& a = p0->as_array();
    int64_t seq, idx;
    if (!a[0].is_str() || !a[1].get_int(seq) || !a[2].get_int(idx) ||
        !(a[3].is_bin() || a[3].is_str()))
      throw multipart_error("multipart: malformed part header");
    bool last = idx < 0;
    // Range check before negating: -INT64_MIN overflows.
    if (idx < -limits_.max_parts || idx > limits_.max_parts || idx == 0)
      throw multipart_error("multipart: part index " + std::to_string(idx) + " out of range");
    if (last) idx = -idx;
    if (idx < 1 || idx > limits_.max_parts)
      throw multipart_error("multipart: part index " + std::to_string(idx) + " out of range");
    const std::string& data = a[3].is_bin() ? a[3].as_bin() : a[3].as_str();
    expire(now);
    auto key = std::make_pair(a[0].as_str(), seq);
    auto it = sets_.find(key);
    if (it == sets_.end()) {
      if (sets_.size() >= limits_.max_pending) drop_oldest(sets_.end());
      it = sets_.emplace(key, part_set{}).first;
      it->second.first_seen = now;
    }
    part_set& s = it->second;
    if (last) s.last = idx;
    // A part beyond the announced end: the set is corrupt.
    int64_t top = std::max(idx, s.parts.empty() ? int64_t{0} : s.parts.rbegin()->first);
    if (s.last != 0 && top > s.last) {
      erase(it);
      throw multipart_error("multipart: part beyond the last one");
    }
    // What a part costs: its data and the bookkeeping (so that empty parts are not free).
    auto cost = [](const std::string& d) { return d.size() + part_overhead; };
    auto [slot_it, fresh] = s.parts.try_emplace(idx);
    std::string& slot = slot_it->second;  // a repeated part replaces the earlier one
    if (!fresh) {
      s.bytes -= cost(slot);
      bytes_ -= cost(slot);
    }
    // A set that alone exceeds the bound is dropped; otherwise older sets make room.
    if (s.bytes + cost(data) > limits_.max_bytes) {
      erase(it);
      throw multipart_error("multipart: message larger than " + std::to_string(limits_.max_bytes) +
                            " bytes");
    }
    while (bytes_ + cost(data) > limits_.max_bytes) drop_oldest(it);
    slot = data;
    s.bytes += cost(data);
    bytes_ += cost(data);
    if (s.last == 0 || static_cast<int64_t>(s.parts.size()) < s.last) return std::nullopt;
    // Indices 1..last, all present (none beyond last, as checked above).
    std::string whole;
    whole.reserve(s.bytes - s.parts.size() * part_overhead);
    for (const auto& [i, part] : s.parts) whole += part;
    erase(it);
    try {
      msg = decode(whole);
    } catch (const decode_error& e) {
      throw multipart_error(std::string("multipart: reassembled message undecodable: ") + e.what());
    }
    if (!msg.is_map()) throw multipart_error("multipart: reassembled message is not a map");
    map_set(msg.as_map(), value("_p0"), value(""));
  }
  unescape(msg.as_map());
  return msg;
}

}  // namespace moatkv
