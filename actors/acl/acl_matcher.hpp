// The ACL matcher: the wildcard path matcher (batteries §0.3, `NodeFinder`) and the ACL
// checker built on it (batteries §2.1, §2.2). Pure structures over the entry tree, no CAF.
//
// Lifetime: both hold `const entry*` into the tree. An entry can be removed by the tombstone
// purge (tree.hpp, "Entry lifetime"), so a finder or checker must not be kept across a call
// that processes peer input; the session steps a fresh one from the ACL root per request.
// Edits *inside* the ACL tree are seen at once (the finder reads the tree on every step),
// which is the original's behaviour (§1.6).
//
// Deliberate difference from the original (ARCHITECTURE.md, "Security defaults"): a checker
// bound to an ACL denies every flag where no ACL entry matches (the original allows all).
#pragma once

#include <bitset>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "actors/tree_store/tree.hpp"
#include "messages/value.hpp"

namespace moatkv {

/// §0.3: an ordered list of candidates (node, keep), initially [(root, false)]. `keep` marks
/// a `#` node that may absorb further levels. Stepping is a copy, so a walk can branch (every
/// child of an enumeration is stepped from its parent's state, fixing the original's in-place
/// stepping, §2.4 [DEFECT] 1).
class node_finder {
 public:
  /// `root` may be nullptr (no such ACL/match/conv tree): nothing ever matches.
  explicit node_finder(const entry* root);

  /// A copy stepped by one path element. Per candidate, in order: the exact child `name`
  /// (not kept), then unless `name` is None: child "+" (not kept), child "#" (kept), and the
  /// candidate itself if kept. Duplicate (node, keep) pairs are dropped after their first
  /// occurrence: that never changes `result()` (a duplicate's successors all come after the
  /// first copy's), but bounds the list by twice the tree size — without it a hostile ACL of
  /// nested `#` entries makes the list grow combinatorially with the path length.
  node_finder step(const value& name) const;

  /// The first candidate (in list order) that holds data, or nullptr. Entries without data
  /// (intermediate or deleted) are skipped; data `None` counts as data.
  const entry* result() const;

  /// True if no candidate is left: no deeper path can match either (lets walks stop early).
  bool dead() const { return candidates_.empty(); }
  /// Number of candidates (bounded by twice the matcher tree's size, see `step`).
  size_t size() const { return candidates_.size(); }

 private:
  node_finder() = default;
  std::vector<std::pair<const entry*, bool>> candidates_;
};

/// §2.2: the connection's ACL position. Either unrestricted (a user without an ACL or with
/// key "*": everything but `a`) or a node_finder over (None,"acl",NAME).
class acl_checker {
 public:
  /// The unrestricted ACL (the original's NullACL): allows every flag except `a`.
  static acl_checker unrestricted();
  /// A restricted ACL rooted at (None,"acl",NAME). nullptr means the ACL tree is missing:
  /// every flag is denied (login maps a missing ACL to `unrestricted()` itself, §1.6).
  explicit acl_checker(const entry* acl_root);

  /// A copy stepped by one path element; it inherits the blocked set.
  acl_checker step(const value& name) const;

  /// Deny `flag` here and at every position stepped from this copy (get_tree/watch block
  /// `r` below a level lacking `x`; test_acl blocks `a`).
  void block(char flag);

  /// 1. blocked -> false; 2. unrestricted -> flag != 'a'; 3. no matching ACL entry -> false
  /// (our rule), except `x`, `n` and `e` at the ACL's own node (not stepped yet), whose
  /// value is usually unset: there they only open the top level, whose entries are judged by
  /// their own ACL entries; 4. else whether `flag` occurs in the matched entry's string value (a
  /// non-string value grants no flag). The pseudo-flag `W` must be resolved to `w`/`c` by the
  /// caller (§2.3), it is never in an entry's flag string.
  bool allows(char flag) const;

  /// The matched ACL entry (for the ACLError text and test_acl's reply), or nullptr if none
  /// matches or the checker is unrestricted.
  const entry* matched() const;

  /// False for the unrestricted ACL: meta-tree and user-management actions are only for users
  /// without an ACL (ARCHITECTURE.md, "Security defaults").
  bool restricted() const { return restricted_; }

 private:
  acl_checker(bool restricted, const entry* root) : restricted_(restricted), finder_(root) {}
  acl_checker(bool restricted, node_finder finder, std::bitset<256> blocked)
      : restricted_(restricted), finder_(std::move(finder)), blocked_(blocked) {}

  bool restricted_;
  bool at_root_ = true;  // not stepped yet: the position of the ACL's own node
  node_finder finder_;   // unused (empty) when unrestricted
  std::bitset<256> blocked_;
};

/// Whether the ACL entry `e` (with data) grants `flag`: its value is a string containing it.
bool acl_entry_grants(const entry& e, char flag);

}  // namespace moatkv
