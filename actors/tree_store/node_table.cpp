#include "actors/tree_store/node_table.hpp"

#include <algorithm>

namespace moatkv {

range_set node_info::local_missing() const {
  range_set r;
  if (!tick || *tick < 1) return r;
  r.add(1, *tick + 1);
  r -= present;
  r -= superseded;
  return r;
}

node_info& node_table::get(node_name name, std::optional<int64_t> tick) {
  if (node_info* n = find(name)) {
    if (tick && (!n->tick || *n->tick < *tick)) n->tick = tick;
    return *n;
  }
  auto n = std::make_unique<node_info>();
  n->name = name;
  n->tick = tick;
  node_info* raw = n.get();
  nodes_.push_back(std::move(n));
  by_name_.emplace(&name.str(), raw);
  std::erase(node_drop_, name.str());
  return *raw;
}

node_info* node_table::find(node_name name) {
  if (!name.valid()) return nullptr;
  auto it = by_name_.find(&name.str());
  return it == by_name_.end() ? nullptr : it->second;
}

const node_info* node_table::find(node_name name) const {
  if (!name.valid()) return nullptr;
  auto it = by_name_.find(&name.str());
  return it == by_name_.end() ? nullptr : it->second;
}

void node_table::seen(node_name node, int64_t tick, entry* e, bool local) {
  node_info& n = get(node);
  if (tick == no_tick) return;
  if (!local) n.reported.remove(tick);
  if (e != nullptr) {
    n.present.add(tick);
    n.entries[tick] = e;
    n.superseded.remove(tick);
  }
}

void node_table::supersede(node_name node, int64_t tick) {
  if (tick == no_tick) return;
  node_info& n = get(node);
  n.present.remove(tick);
  n.superseded.add(tick);
  n.entries.erase(tick);
}

entry* node_table::mark_deleted(node_name node, int64_t tick) {
  if (tick == no_tick) return nullptr;
  node_info& n = get(node);
  n.deleted.add(tick);
  auto it = n.entries.find(tick);
  return it == n.entries.end() ? nullptr : it->second;
}

entry* node_table::clear_deleted(node_name node, int64_t tick) {
  if (tick == no_tick) return nullptr;
  node_info& n = get(node);
  n.present.remove(tick);
  n.deleted.remove(tick);
  n.reported.remove(tick);
  n.superseded.add(tick);
  auto it = n.entries.find(tick);
  if (it == n.entries.end()) return nullptr;
  entry* e = it->second;
  n.entries.erase(it);
  return e;
}

void node_table::note_chain(chain& c) {
  std::vector<chain_link> links = c.links();
  bool changed = false;
  for (auto& l : links) {
    node_info& n = get(l.node, l.tick == no_tick ? std::nullopt : std::optional<int64_t>(l.tick));
    if (l.tick == no_tick && n.tick) {
      l.tick = *n.tick;
      changed = true;
    }
    if (l.tick > 0) n.reported.remove(l.tick);
  }
  if (changed) c = chain(std::move(links));
}

void node_table::drop(node_name name) {
  auto it =
      std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n->name == name; });
  if (it == nodes_.end()) return;
  by_name_.erase(&name.str());
  nodes_.erase(it);
  if (std::find(node_drop_.begin(), node_drop_.end(), name.str()) == node_drop_.end())
    node_drop_.push_back(name.str());
}

}  // namespace moatkv
