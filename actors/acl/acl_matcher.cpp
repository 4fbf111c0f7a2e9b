#include "actors/acl/acl_matcher.hpp"

#include <cstdint>
#include <unordered_set>

namespace moatkv {

namespace {

const value& plus_name() {
  static const value v("+");
  return v;
}
const value& hash_name() {
  static const value v("#");
  return v;
}

}  // namespace

node_finder::node_finder(const entry* root) {
  if (root) candidates_.emplace_back(root, false);
}

node_finder node_finder::step(const value& name) const {
  node_finder out;
  if (candidates_.empty()) return out;
  // The duplicate check: a linear scan while the list is short (the usual case, no
  // allocation), then a set keyed by the pointer with `keep` in its lowest bit (entries are
  // aligned, so that bit is free).
  constexpr size_t linear_limit = 16;
  std::unordered_set<uintptr_t> seen;
  auto key = [](const entry* e, bool keep) {
    return reinterpret_cast<uintptr_t>(e) | (keep ? 1u : 0u);
  };
  auto add = [&](const entry* e, bool keep) {
    auto& cs = out.candidates_;
    if (cs.size() < linear_limit) {
      for (const auto& c : cs) {
        if (c.first == e && c.second == keep) return;
      }
    } else {
      if (seen.empty()) {
        for (const auto& c : cs) seen.insert(key(c.first, c.second));
      }
      if (!seen.insert(key(e, keep)).second) return;
    }
    cs.emplace_back(e, keep);
  };
  const bool is_none = name.is_nil();
  for (const auto& [node, keep] : candidates_) {
    if (const entry* c = node->child(name)) add(c, false);
    if (is_none) continue;  // None only matches a literal None child
    if (const entry* c = node->child(plus_name())) add(c, false);
    if (const entry* c = node->child(hash_name())) add(c, true);
    if (keep) add(node, true);  // an earlier '#' absorbs this level too
  }
  return out;
}

const entry* node_finder::result() const {
  for (const auto& [node, keep] : candidates_) {
    if (node->has_data()) return node;
  }
  return nullptr;
}

bool acl_entry_grants(const entry& e, char flag) {
  if (!e.has_data() || !e.data().is_str()) return false;
  return e.data().as_str().find(flag) != std::string::npos;
}

acl_checker acl_checker::unrestricted() {
  return acl_checker(false, nullptr);
}

acl_checker::acl_checker(const entry* acl_root) : acl_checker(true, acl_root) {}

acl_checker acl_checker::step(const value& name) const {
  if (!restricted_) return acl_checker(false, finder_, blocked_);
  acl_checker out(true, finder_.step(name), blocked_);
  out.at_root_ = false;
  return out;
}

void acl_checker::block(char flag) {
  blocked_.set(static_cast<unsigned char>(flag));
}

bool acl_checker::allows(char flag) const {
  if (blocked_.test(static_cast<unsigned char>(flag))) return false;
  if (!restricted_) return flag != 'a';
  const entry* m = finder_.result();
  // The ACL's own node without a value: entering the top level is not a decision (what lies
  // below is judged by its own entries), so traversal is allowed there. Not for a missing
  // ACL tree, which grants nothing.
  if (!m && at_root_ && !finder_.dead()) return flag == 'x' || flag == 'n' || flag == 'e';
  if (!m) return false;  // our rule: no matching ACL entry means no access
  return acl_entry_grants(*m, flag);
}

const entry* acl_checker::matched() const {
  return restricted_ ? finder_.result() : nullptr;
}

}  // namespace moatkv
