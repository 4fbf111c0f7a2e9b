#include "actors/gossip/deleter.hpp"

namespace moatkv {

std::optional<deleter::group_change> deleter::configure(const std::optional<value>& entry) {
  if (config_ == entry || (config_ && entry && same_type_equal(*config_, *entry)))
    return std::nullopt;
  config_ = entry;
  std::vector<std::string> nodes;
  if (entry && entry->is_map())
    if (const value* n = entry->find("nodes"); n && n->is_array())
      for (const auto& x : n->as_array())
        if (x.is_str()) nodes.push_back(x.as_str());
  n_nodes_ = static_cast<int64_t>(nodes.size());
  reset_counters();
  if (n_nodes_ == 0) deleted_.clear();  // no group: tombstones are kept, nothing to track
  bool member = false;
  for (const auto& n : nodes) member = member || n == own_name_;
  return group_change{member, n_nodes_};
}

void deleter::add_deleted(uint64_t tock, node_set deleted) {
  if (n_nodes_ == 0 || !deleted.any()) return;
  deleted_.emplace_back(tock, std::move(deleted));
}

std::vector<node_set> deleter::purge_to(uint64_t tock) {
  std::vector<node_set> out;
  while (!deleted_.empty() && deleted_.front().first < tock) {
    out.push_back(std::move(deleted_.front().second));
    deleted_.pop_front();
  }
  return out;
}

std::vector<node_set> deleter::on_tag(uint64_t tock, size_t history_size, value& actor_value) {
  std::vector<node_set> out;
  if (n_nodes_ > 0 && static_cast<int64_t>(history_size) == n_nodes_) {
    ++n_tags_;
    if (n_tags_ > 2 && !tags_.empty()) out = purge_to(tags_.front());
  }
  tags_.push_back(tock);
  while (tags_.size() > 4) tags_.pop_front();
  actor_value = value(array{value(tags_.front()), value(tags_.back())});
  return out;
}

deleter::ping_outcome deleter::on_ping(const value& msg) {
  ping_outcome out;
  const value* v = msg.is_map() ? msg.find("value") : nullptr;
  const value* h = msg.is_map() ? msg.find("history") : nullptr;
  int64_t oldest, newest;
  if (!v || !v->is_array() || v->as_array().size() != 2 || !v->as_array()[0].get_int(oldest) ||
      !v->as_array()[1].get_int(newest) || !h || !h->is_array() ||
      static_cast<int64_t>(h->as_array().size()) < n_nodes_ || n_nodes_ == 0) {
    reset_counters();
    return out;
  }
  if (++n_pings_ <= n_nodes_) return out;
  uint64_t mx = max_seen_;
  max_seen_ = std::max(max_seen_, static_cast<uint64_t>(std::max<int64_t>(newest, 0)));
  if (oldest > 0 && mx > 0 && static_cast<uint64_t>(oldest) > mx) {
    out.resync = true;
    return out;
  }
  out.purge = purge_to(static_cast<uint64_t>(std::max<int64_t>(oldest, 0)));
  return out;
}

}  // namespace moatkv
