#include "actors/tree_store/chain.hpp"

#include <memory>
#include <mutex>
#include <unordered_set>

#include "actors/tree_store/wire_util.hpp"

namespace moatkv {

namespace {

struct name_pool {
  std::mutex mutex;
  // Node-based container: element addresses stay valid for the process lifetime.
  std::unordered_set<std::string> names;
};

name_pool& pool() {
  static name_pool* p = new name_pool;  // never destroyed: names outlive every chain
  return *p;
}

}  // namespace

node_name::node_name(std::string_view name) {
  auto& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p_ = &*p.names.emplace(name).first;
}

const chain_link* chain::find(node_name node) const {
  for (const auto& l : links_)
    if (l.node == node) return &l;
  return nullptr;
}

bool chain::same_head(const chain& other) const {
  if (empty() || other.empty()) return false;
  return head() == other.head();
}

bool chain::descends_from(const chain& other) const {
  if (other.empty()) return true;
  if (empty()) return false;  // Python: `None > x` is `x < None`, which is False
  if (same_head(other)) return false;
  const chain_link* found = find(other.head().node);
  return found != nullptr && found->tick >= other.head().tick;
}

bool chain::precedes(const chain& other) const {
  if (other.empty()) return false;
  if (empty()) return true;  // Python: `None < x` is `x > None`, which is True
  if (same_head(other)) return false;
  const chain_link* found = other.find(head().node);
  return found != nullptr && head().tick <= found->tick;
}

chain chain::filter(node_name node) const {
  return without([node](const chain_link& l) { return l.node == node; });
}

chain chain::attach(const chain_link& head, const chain& prev) {
  std::vector<chain_link> out;
  out.reserve(prev.size() + 1);
  out.push_back(head);
  for (const auto& l : prev.links_)
    if (l.node != head.node) out.push_back(l);
  return chain(std::move(out));
}

value chain::serialize(int64_t nchain) const {
  // Built from the end so that each level can embed the one below it.
  size_t n = links_.size();
  if (nchain > 0 && static_cast<uint64_t>(nchain) < n) n = static_cast<size_t>(nchain);
  bool truncated = n < links_.size();
  value below;  // nil = the real end
  for (size_t i = n; i-- > 0;) {
    const chain_link& l = links_[i];
    map m;
    m.reserve(3);
    m.emplace_back(value("node"), value(l.node.str()));
    if (l.tick != no_tick) m.emplace_back(value("tick"), value(l.tick));
    if (i + 1 == n) {
      if (!truncated) m.emplace_back(value("prev"), value());
    } else {
      m.emplace_back(value("prev"), std::move(below));
    }
    below = value(std::move(m));
  }
  return below;
}

bool chain::deserialize(const value& msg, chain& out, std::string& error) {
  out = chain();
  const value* cur = &msg;
  if (cur->is_map()) {
    if (const value* c = cur->find("chain")) cur = c;
  }
  std::vector<chain_link> links;
  while (!cur->is_nil()) {
    if (!cur->is_map()) {
      error = "a chain must be a map, not " + debug_string(*cur);
      return false;
    }
    const value* node = cur->find("node");
    const value* tick = cur->find("tick");
    const value* prev = cur->find("prev");
    if (node == nullptr) {
      if ((tick != nullptr && !tick->is_nil()) || (prev != nullptr && !prev->is_nil())) {
        error = "a chain link without 'node' must not have 'tick' or 'prev'";
        return false;
      }
      break;
    }
    if (!node->is_str()) {
      error = "a chain's node name must be a string, not " + debug_string(*node);
      return false;
    }
    chain_link link{node_name(node->as_str()), no_tick};
    if (tick != nullptr && !tick->is_nil()) {
      int64_t t = 0;
      if (!wire::to_int(*tick, t) || t < 0) {
        error = "a chain's tick must be a non-negative integer, not " + debug_string(*tick);
        return false;
      }
      link.tick = t;
    }
    for (const auto& l : links)
      if (l.node == link.node) {
        error = "node " + link.node.str() + " occurs twice in a chain";
        return false;
      }
    links.push_back(link);
    if (prev == nullptr) break;  // truncated
    cur = prev;
  }
  out = chain(std::move(links));
  return true;
}

std::string chain::repr() const {
  if (empty()) return "None";
  std::string out = "<NodeEvent ";
  bool first = true;
  for (const auto& l : links_) {
    if (!first) out += ' ';
    first = false;
    out += l.node.str();
    out += ':';
    // Python: `self.tick or "-"`, so tick 0 shows as "-" too.
    out += (l.tick == no_tick || l.tick == 0) ? std::string("-") : std::to_string(l.tick);
  }
  out += " (";
  out += head().tick == no_tick ? std::string("'-'") : std::to_string(head().tick);
  out += ",)>";
  return out;
}

}  // namespace moatkv
