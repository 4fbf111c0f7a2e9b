#include "actors/tree_store/tree.hpp"

#include "messages/path_syntax.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_set>

namespace moatkv {

// ---------------------------------------------------------------------------------------------
// entry

namespace {
constexpr size_t index_threshold = 8;  // children before a hash index is built
}

size_t entry::depth() const {
  size_t d = 0;
  for (const entry* p = parent_; p != nullptr; p = p->parent_) ++d;
  return d;
}

array entry::path() const {
  return path_from(nullptr);
}

array entry::path_from(const entry* top) const {
  array out;
  for (const entry* p = this; p != top && p->parent_ != nullptr; p = p->parent_)
    out.push_back(p->name_);
  std::reverse(out.begin(), out.end());
  return out;
}

bool entry::is_below(const entry* ancestor) const {
  for (const entry* p = this; p != nullptr; p = p->parent_)
    if (p == ancestor) return true;
  return false;
}

bool entry::is_meta() const {
  const entry* p = this;
  if (p->parent_ == nullptr) return false;
  while (p->parent_->parent_ != nullptr) p = p->parent_;
  return p->name_.is_nil();
}

entry::~entry() {
  std::vector<std::unique_ptr<entry>> stack = std::move(children_);
  while (!stack.empty()) {
    std::unique_ptr<entry> e = std::move(stack.back());
    stack.pop_back();
    for (auto& c : e->children_) stack.push_back(std::move(c));
    e->children_.clear();
  }
}

entry* entry::child(const value& name) const {
  if (index_) {
    auto [lo, hi] = index_->equal_range(hash_value(name));
    for (auto it = lo; it != hi; ++it)
      if (it->second->name_ == name) return it->second;
    return nullptr;
  }
  for (const auto& c : children_)
    if (c->name_ == name) return c.get();
  return nullptr;
}

entry& entry::add_child(value name, uint64_t tock) {
  children_.push_back(std::make_unique<entry>(std::move(name), this, tock));
  entry* c = children_.back().get();
  if (index_) {
    index_->emplace(hash_value(c->name_), c);
  } else if (children_.size() > index_threshold) {
    index_ = std::make_unique<std::unordered_multimap<size_t, entry*>>();
    for (const auto& e : children_) index_->emplace(hash_value(e->name_), e.get());
  }
  return *c;
}

std::unique_ptr<entry> entry::remove_child(entry* c) {
  auto it = std::find_if(children_.begin(), children_.end(),
                         [c](const std::unique_ptr<entry>& p) { return p.get() == c; });
  if (it == children_.end()) return nullptr;
  std::unique_ptr<entry> out = std::move(*it);
  children_.erase(it);
  if (index_) {
    auto [lo, hi] = index_->equal_range(hash_value(c->name_));
    for (auto i = lo; i != hi; ++i)
      if (i->second == c) {
        index_->erase(i);
        break;
      }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// tree

tree::tree(node_name own, std::shared_ptr<tock_clock> clock) : own_(own), clock_(std::move(clock)) {
  nodes_.get(own_);
  root_ = std::make_unique<entry>(value("ROOT"), nullptr, clock_->next());
  meta_ = &root_->add_child(value(), root_->tock_);
}

tree::~tree() = default;

entry* tree::follow(entry& start, const array& path, bool create, int nulls_ok,
                    follow_error* error) {
  entry* cur = &start;
  for (const auto& name : path) {
    if (name.is_nil() && nulls_ok == 0) {
      if (error) *error = follow_error::null_element;
      return nullptr;
    }
    if (nulls_ok == 1) nulls_ok = 0;  // None allowed as the first element only
    entry* next = cur->child(name);
    if (next == nullptr) {
      if (!create) {
        if (error) *error = follow_error::missing;
        return nullptr;
      }
      next = &cur->add_child(name, cur->tock_);
    }
    cur = next;
  }
  if (error) *error = follow_error::none;
  return cur;
}

bool tree::set_data(entry& e, std::optional<value> v) {
  node_info& me = own_node();
  if (!me.tick) return false;
  // next_event: tick += 1, tock += 1, build the event.
  int64_t tick = ++*me.tick;
  clock_->next();
  nodes_.seen(own_, tick, nullptr);

  // Fix (c): a deleted entry that is set again must not keep the links of its deletion, or
  // the later purge of those ticks would destroy the new value (server-internals §2.6).
  class chain prev = e.chain_;
  if (!e.has_data() && !prev.empty()) {
    prev = prev.without([this](const chain_link& l) {
      const node_info* n = nodes_.find(l.node);
      return n != nullptr && n->deleted.contains(l.tick);
    });
  }
  // attach: the new head, then the old chain without this node's previous link.
  // (The old links that do not survive are superseded by `apply`.)
  class chain incoming = chain::attach(chain_link{own_, tick}, prev);

  uint64_t tock = clock_->next();
  apply(e, std::move(incoming), std::move(v), tock, /*local=*/true);
  clock_->next();  // next_event's exit
  return true;
}

// The merge rule. Inputs: entry E (chain C, data D, tock Tl) and an update (chain N, data V,
// tock Tn). Every node applies the same rule to the same updates, so all of them end in the
// same state whatever the arrival order:
//
//   1. N == C (same head node and tick): a duplicate; nothing changes.
//   2. C descends from N: N is stale (E already holds it or something based on it).
//   3. C is not empty and N does not descend from C: the updates are concurrent, a conflict.
//      The larger (tock, head node name, head tick) wins; if that is C, N's links that are not
//      in C are superseded and the update is rejected.
//   4. Otherwise the update is accepted: E takes V and Tn, C's links that N does not carry
//      are superseded, E's chain becomes N; for a deletion every link of N is marked deleted;
//      every link of N is noted as present on E; then the listeners are told.
//
// Differences from the original's `Entry.apply`:
//   (a) the original accepts the incoming side on a tie (Tn == Tl) — on both nodes, so they
//       swap values and diverge; we compare (tock, head node name, head tick), which is the
//       same on every node;
//   (b) the original checks for a conflict only while E holds a value, so an update racing a
//       deletion always wins where the deletion arrived first, and is decided by tocks where
//       the update arrived first; we treat a tombstone like a value (a chain is a chain);
//   (c) see set_data: re-setting a tombstone drops the deleted links.
// A local change (`local`) always wins: its chain descends from C by construction, except
// for the links dropped by (c).
apply_outcome tree::apply(entry& e, class chain n, std::optional<value> v, uint64_t tn,
                          bool local) {
  if (n.empty()) return apply_outcome::stale;
  clock_->seen(tn);
  // As in the original, creating a deletion event marks its tick deleted even if the
  // update is then rejected.
  if (!v) nodes_.mark_deleted(n.head().node, n.head().tick);

  const class chain& c = e.chain_;
  if (n == c) return apply_outcome::duplicate;          // 1
  if (c.descends_from(n)) return apply_outcome::stale;  // 2
  if (!local && !c.empty() && !c.precedes(n)) {         // 3
    auto key = [](uint64_t tock, const chain_link& h) {
      return std::make_tuple(tock, std::string_view(h.node.str()), h.tick);
    };
    if (key(tn, n.head()) < key(e.tock_, c.head())) {
      drop_old_event(c, n);
      return apply_outcome::conflict_lost;
    }
  }

  std::optional<value> old = std::move(e.data_);  // 4
  e.data_ = std::move(v);
  e.tock_ = tn;
  drop_old_event(n, c);
  e.chain_ = std::move(n);
  if (!e.data_) {
    for (const auto& l : e.chain_.links()) {
      nodes_.mark_deleted(l.node, l.tick);
      if (l.tick != no_tick) delete_also_.add(l.node.str(), l.tick);
    }
  }
  for (const auto& l : e.chain_.links()) nodes_.seen(l.node, l.tick, &e);
  notify(e, old, local);
  return apply_outcome::accepted;
}

void tree::drop_old_event(const class chain& keep, const class chain& old) {
  for (const auto& l : old.links()) {
    const chain_link* k = keep.find(l.node);
    if (k == nullptr || k->tick != l.tick) nodes_.supersede(l.node, l.tick);
  }
}

void tree::notify(entry& e, const std::optional<value>& old_data, bool local) {
  if (listeners_.empty()) return;
  change_event ev{e, old_data, local};
  // A listener may add or remove listeners; iterate over a snapshot of the ids.
  std::vector<size_t> ids;
  ids.reserve(listeners_.size());
  for (const auto& l : listeners_) ids.push_back(l.first);
  for (size_t id : ids) {
    for (auto& l : listeners_)
      if (l.first == id) {
        auto fn = l.second;  // keep it alive even if the listener removes itself
        fn(ev);
        break;
      }
  }
}

size_t tree::add_change_listener(change_listener fn) {
  size_t id = next_listener_id_++;
  listeners_.emplace_back(id, std::move(fn));
  return id;
}

void tree::remove_change_listener(size_t id) {
  std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

node_set tree::take_deleted() {
  node_set out = std::move(delete_also_);
  delete_also_.clear();
  return out;
}

void tree::set_pin_check(std::function<bool(const entry*)> pinned) {
  pinned_ = std::move(pinned);
}

bool tree::purge_entry(entry& e) {
  if (e.data_) return false;
  class chain c = std::move(e.chain_);
  e.chain_ = {};
  for (const auto& l : c.links()) {
    if (l.tick == no_tick) continue;
    node_info* n = nodes_.find(l.node);
    if (n == nullptr) continue;
    n->present.remove(l.tick);
    n->deleted.remove(l.tick);
    n->reported.remove(l.tick);
    n->superseded.add(l.tick);
    auto it = n->entries.find(l.tick);
    if (it != n->entries.end() && it->second == &e) n->entries.erase(it);
  }
  chop(e);
  return true;
}

void tree::chop(entry& e) {
  entry* cur = &e;
  while (cur != root_.get() && cur != meta_ && cur->parent_ != nullptr && !cur->data_ &&
         cur->chain_.empty() && cur->children_.empty() && !(pinned_ && pinned_(cur))) {
    entry* parent = cur->parent_;
    parent->remove_child(cur);  // destroys *cur
    cur = parent;
  }
}

namespace {
/// The distinct entries that hold one of the ticks `r` of node `n`, in tick order. (A set
/// for the "distinct": a linear search made a peer's `deleted` report covering a node's
/// 100 000 tombstones cost 10^10 steps.)
std::vector<entry*> entries_holding(const node_info& n, const range_set& r) {
  std::vector<entry*> out;
  std::unordered_set<const entry*> seen;
  for (const auto& rg : r& n.present)
    for (int64_t t = rg.lo; t < rg.hi; ++t) {
      auto it = n.entries.find(t);
      if (it != n.entries.end() && seen.insert(it->second).second) out.push_back(it->second);
    }
  return out;
}

/// The ticks of `n` in `r` that live (valued) entries hold.
range_set live_ticks(const node_info& n, const range_set& r) {
  range_set out;
  for (const auto& rg : r& n.present)
    for (int64_t t = rg.lo; t < rg.hi; ++t) {
      auto it = n.entries.find(t);
      if (it != n.entries.end() && it->second->has_data()) out.add(t);
    }
  return out;
}
}  // namespace

size_t tree::purge_deleted(const node_set& ticks) {
  size_t count = 0;
  for (const auto& [name, r] : ticks.items()) {
    node_info* n = nodes_.find(std::string_view(name));
    if (n == nullptr || r.empty()) continue;
    range_set live = live_ticks(*n, r);
    range_set gone = r - live;
    // Ticks without a local entry: clear_deleted's set operations.
    range_set unheld = gone - n->present;
    n->deleted -= r;  // a live entry's tick is no deletion any more either
    n->reported -= unheld;
    n->superseded += unheld;
    for (entry* e : entries_holding(*n, gone))
      if (purge_entry(*e)) ++count;
    // Ticks present without an entry (should not happen): plain clear_deleted.
    for (const auto& rg : gone & n->present)
      for (int64_t t = rg.lo; t < rg.hi; ++t) nodes_.clear_deleted(n->name, t);
  }
  return count;
}

size_t tree::report_deleted(node_name node, const range_set& r) {
  node_info& n = nodes_.get(node);
  if (r.empty()) return 0;
  range_set live = live_ticks(n, r);
  range_set dead = r - live;
  std::vector<entry*> tombstones = entries_holding(n, dead);
  n.deleted += dead;
  n.reported -= r;
  n.superseded += dead - n.present;
  size_t count = 0;
  for (entry* e : tombstones)
    if (purge_entry(*e)) ++count;
  return count;
}

bool tree::drop_node(node_name node) {
  if (node == own_) return false;
  node_info* n = nodes_.find(node);
  if (n == nullptr) return false;
  for (const auto& [t, e] : n->entries)
    if (!e->chain_.empty() && e->chain_.head().node == node) return false;
  for (const auto& [t, e] : n->entries) e->chain_ = e->chain_.filter(node);
  nodes_.drop(node);
  return true;
}

value tree::entry_record(const entry& e, int64_t nchain, bool with_path, size_t chop) {
  map m;
  m.reserve(4);
  if (e.has_data()) m.emplace_back(value("value"), e.data());
  if (!e.event_chain().empty() && nchain != 0)
    m.emplace_back(value("chain"), e.event_chain().serialize(nchain));
  m.emplace_back(value("tock"), value(e.tock()));
  if (with_path) {
    array p = e.path();
    if (chop == 0) {
      m.emplace_back(value("path"), value::make_path(std::move(p)));
    } else {
      p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(std::min(chop, p.size())));
      m.emplace_back(value("path"), value(std::move(p)));
    }
  }
  return value(std::move(m));
}

value tree::update_message(const entry& e, int64_t nchain) {
  value msg = e.event_chain().serialize(nchain == 0 ? -1 : nchain);
  map& m = msg.as_map();
  m.emplace_back(value("path"), value::make_path(e.path()));
  if (e.has_data()) m.emplace_back(value("value"), e.data());
  m.emplace_back(value("tock"), value(e.tock()));
  return msg;
}

std::string tree::format_path(const array& path) {
  return moatkv::format_path(value(path));
}

}  // namespace moatkv
