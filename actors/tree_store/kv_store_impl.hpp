// Internals of kv_store shared by its implementation files (actions.cpp: data actions and
// server-to-server; access_actions.cpp: logins, users, ACL checks). Not part of the interface.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "actors/acl/acl_matcher.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/range_set.hpp"
#include "actors/tree_store/tree.hpp"
#include "actors/tree_store/wire_util.hpp"

namespace moatkv {

namespace store_detail {

/// An error reply; `text` is the complete `error` string (`Type('message')`).
struct client_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(std::string_view type, std::string_view text) {
  throw client_error(wire::py_exc(type, text));
}

inline value error_reply(std::string text) {
  return value(map{{value("error"), value(std::move(text))}});
}

// --- request fields ---------------------------------------------------------------------------

inline const value* field(const map& msg, std::string_view name) {
  return map_find(msg, name);
}

inline bool has(const map& msg, std::string_view name) {
  return field(msg, name) != nullptr;
}

/// An integer field; missing or nil gives `def`.
inline int64_t int_field(const map& msg, std::string_view name, int64_t def) {
  const value* v = field(msg, name);
  if (v == nullptr || v->is_nil()) return def;
  int64_t out = 0;
  if (!wire::to_int(*v, out))
    fail("TypeError", std::string(name) + " must be an integer, not " + debug_string(*v));
  return out;
}

inline bool bool_field(const map& msg, std::string_view name, bool def) {
  const value* v = field(msg, name);
  return v == nullptr ? def : wire::truthy(*v);
}

/// A path field: a Path or an array. A string is refused (the original would walk its
/// characters one by one).
inline array path_field(const map& msg, std::string_view name = "path") {
  const value* v = field(msg, name);
  if (v == nullptr) fail("ValueError", "The request needs a '" + std::string(name) + "'");
  if (v->is_sequence()) return v->elements();
  if (v->is_str())
    fail("TypeError",
         std::string(name) + " must be a Path or an array, not a string: " + debug_string(*v));
  fail("TypeError", std::string(name) + " must be a Path or an array, not " + debug_string(*v));
}

/// Remove `key` from a map (a reply record whose value the reader may not see).
inline void drop_key(map& m, std::string_view key) {
  std::erase_if(
      m, [key](const map_item& kv) { return kv.first.is_str() && kv.first.as_str() == key; });
}

inline std::string fmt(const array& path) {
  return tree::format_path(path);
}

/// repr(KeyError(path)) with the path printed as moat.util does: KeyError(P('a.b')).
[[noreturn]] inline void key_error(const array& path) {
  throw client_error("KeyError(P(" + wire::py_str_repr(fmt(path)) + "))");
}

inline std::string data_repr(const entry& e) {
  return e.has_data() ? debug_string(e.data()) : std::string("\xe2\x80\xb9NotGiven\xe2\x80\xba");
}

// --- walks (iterative: the tree may be deeper than the stack) ---------------------------------

/// The original's `Entry.walk` as used by get_tree and watch: pre-order, children in insertion
/// order; `visit` is called from `min_depth` on; no descent below `max_depth` (negative:
/// unlimited). Children named None are skipped, except directly below the start when `full`.
template <class Visit>
void walk(entry& top, int64_t min_depth, int64_t max_depth, bool full, Visit visit) {
  struct frame {
    entry* e;
    int64_t depth;
  };
  std::vector<frame> stack{{&top, 0}};
  while (!stack.empty()) {
    frame f = stack.back();
    stack.pop_back();
    if (min_depth <= f.depth) visit(*f.e);
    if (max_depth == f.depth) continue;
    const auto& kids = f.e->children();
    for (size_t i = kids.size(); i-- > 0;) {
      if (kids[i]->name().is_nil() && !(full && f.depth == 0)) continue;
      stack.push_back(frame{kids[i].get(), f.depth + 1});
    }
  }
}

/// Every entry below and including `top`, pre-order, all children (delete_tree).
template <class Visit>
void walk_all(entry& top, Visit visit) {
  std::vector<entry*> stack{&top};
  while (!stack.empty()) {
    entry* e = stack.back();
    stack.pop_back();
    visit(*e);
    const auto& kids = e->children();
    for (size_t i = kids.size(); i-- > 0;) stack.push_back(kids[i].get());
  }
}

struct conn_state {
  entry* root = nullptr;  // chroot entry
  size_t chop = 0;        // length of the chroot path

  // --- login and access (batteries §1, §2; ARCHITECTURE.md "Security defaults") ---
  bool must_login = false;  // the greeting asked for a login and none succeeded yet
  bool restricted = false;  // bound to an ACL: every data action goes through ACL checks
  value acl_name;           // with `restricted`: the ACL is (acl_base, None, "acl", acl_name)
  entry* acl_base = nullptr;
  array acl_prefix;         // path from acl_base to `root` (a chroot after the login)
  bool dh_started = false;  // diffie_hellman was called (once per connection)
  std::string session_key;  // its SecretBox key (32 bytes) once computed
  std::string user;         // "METHOD user IDENT", for logs

  bool admin() const { return !must_login && !restricted; }

  /// The super-user's state at `r` (a connection that needs no login).
  static conn_state at(entry* r) {
    conn_state cs;
    cs.root = r;
    return cs;
  }
};

/// How an ACL walk treats missing entries (batteries §2.3 `create`).
enum class walk_mode {
  lookup,  // create=False: a missing entry ends the walk (no `n` check)
  create,  // create=True: `n` at the parent, then the entry is created
  check,   // create=None: `n` at the parent, nothing is created; the walk goes on without entries
};

struct watch_rec {
  uint64_t conn = 0;
  int64_t seq = 0;
  entry* top = nullptr;
  size_t top_depth = 0;
  size_t chop = 0;
  int64_t min_depth = 0;
  int64_t max_depth = -1;
  int64_t nchain = 0;
  path_shortener shortener;
  bool restricted = false;  // the connection is bound to an ACL: events are filtered (§2.4)
};

}  // namespace store_detail

using namespace store_detail;

// ---------------------------------------------------------------------------------------------

struct kv_store::impl {
  impl(std::string name, std::shared_ptr<tock_clock> c)
      : node(std::move(name)), clock(c), t(moatkv::node_name(node), std::move(c)) {}

  std::string node;
  std::shared_ptr<tock_clock> clock;
  tree t;
  watch_emitter emit;
  update_emitter uemit;
  int64_t change_length = 5;
  // Ticks asked for (or seen asked for by others) since the last reset: not asked again.
  node_set seen_missing;
  // Highest tick peers reported for this node while it was not ready (see actions.hpp).
  std::optional<int64_t> own_floor;
  std::map<std::pair<uint64_t, int64_t>, std::unique_ptr<watch_rec>> watches;
  std::unordered_map<const entry*, std::vector<watch_rec*>> watched;
  std::unordered_map<uint64_t, conn_state> conns;
  auth_options auth_opts;
  size_t max_path_depth = default_max_path_depth;

  conn_state unregistered;  // what `conn` gives for an unknown id

  /// A connection's state; one never registered (unit tests) is the super-user at the root.
  /// The reference stays valid while the connection exists (unordered_map nodes are stable).
  const conn_state& conn(uint64_t id) {
    auto it = conns.find(id);
    if (it != conns.end()) return it->second;
    unregistered = conn_state::at(&t.root());
    return unregistered;
  }
  conn_state& conn_ref(uint64_t id) {
    return conns.try_emplace(id, conn_state::at(&t.root())).first->second;
  }

  // nulls_ok for data actions (§7.4): the connection is the super-root user (no auth yet).
  static int client_nulls_ok(const conn_state& cs) { return cs.chop > 0 ? 0 : 1; }

  entry& follow(entry& start, const array& path, bool create, int nulls_ok) {
    follow_error err = follow_error::none;
    entry* e = t.follow(start, path, create, nulls_ok, &err);
    if (e != nullptr) return *e;
    if (err == follow_error::null_element) fail("ValueError", "Null path element");
    key_error(path);
  }

  void require_ready() {
    if (!t.own_node().tick) fail("RuntimeError", "This node is not ready yet (it has no tick)");
  }

  bool is_pinned(const entry* e) const {
    if (watched.count(e) != 0) return true;
    for (const auto& [id, cs] : conns)
      if (cs.root == e || cs.acl_base == e) return true;
    return false;
  }

  // Peer input may raise the own node's tick while we are not ready: keep it aside (own_floor)
  // so that readiness stays explicit and tick numbers are never reused.
  struct own_tick_guard {
    impl& i;
    bool was_ready;
    explicit own_tick_guard(impl& x) : i(x), was_ready(x.t.own_node().tick.has_value()) {}
    ~own_tick_guard() {
      if (was_ready) return;
      auto& tick = i.t.own_node().tick;
      if (!tick) return;
      if (!i.own_floor || *i.own_floor < *tick) i.own_floor = tick;
      tick.reset();
    }
  };
  void make_ready() {
    auto& tick = t.own_node().tick;
    if (!tick) tick = own_floor.value_or(0);
  }

  value finish(value msg);
  void add_node_drop(map& m);
  update_result receive_update(value msg);
  info_result process_info(const value& msg, bool local);

  void on_change(const change_event& ev);
  void deliver(watch_rec& w, const entry& e);
  void remove_watch(std::pair<uint64_t, int64_t> key);

  // Data actions (actions.cpp). `acl` is the connection's ACL position at `root`, nullptr for
  // a user without an ACL (then no check runs: the fast path).
  action_result dispatch(uint64_t conn_id, const map& msg, const std::string& action);
  value get_value(const conn_state& cs, const map& msg, entry& root, int nulls_ok,
                  const acl_checker* acl);
  value set_value(const map& msg, entry& root, int nulls_ok, bool deleting, const acl_checker* acl);
  action_result delete_tree(const conn_state& cs, const map& msg, const acl_checker* acl);
  action_result get_tree(const conn_state& cs, const map& msg, entry& root, size_t chop,
                         const acl_checker* acl);
  action_result watch(uint64_t conn_id, const conn_state& cs, const map& msg,
                      const acl_checker* acl);
  value enumerate(const map& msg, entry& root, int nulls_ok, const acl_checker* acl);
  value get_state(const map& msg);
  value chroot(uint64_t conn_id, const conn_state& cs, const map& msg, const acl_checker* acl);

  // Access control (access_actions.cpp).
  /// The connection's ACL position at its root (precondition: cs.restricted).
  acl_checker user_acl(const conn_state& cs);
  /// The same at the entry the user logged in at (before any chroot).
  acl_checker acl_at_base(const conn_state& cs);
  /// §2.3 follow_acl: walk `path` from `start`, checking `x` (existing) or `n` (missing) at
  /// each parent position, then `final_flag` (0: none; 'W': `w` if the target has data, else
  /// `c`) at the target. `acl` ends at the target's position. Returns the target, or nullptr
  /// if it is missing (lookup: at the first missing element; check: any missing element).
  /// Throws ACLError / ValueError("Null path element").
  entry* follow_acl(entry& start, const array& path, walk_mode mode, int nulls_ok, acl_checker& acl,
                    char final_flag);
  /// Whether watch `w` may see entry `e` at all, and its value (§2.4 watch events).
  bool event_visible(const watch_rec& w, const entry& e, bool& show_value);
  action_result test_acl(const conn_state& cs, const map& msg);
  // Logins and users (batteries §1).
  action_result auth(uint64_t conn_id, const conn_state& cs, const map& msg);
  action_result diffie_hellman(uint64_t conn_id, const map& msg);
  action_result auth_set(uint64_t conn_id, const conn_state& cs, const map& msg);
  value auth_get(const conn_state& cs, const map& msg);
  action_result auth_list(const conn_state& cs, const map& msg);
  value auth_info(const conn_state& cs, const map& msg);
  value set_auth_typ(const conn_state& cs, const map& msg);
  /// Completes a verified login on `conn_id` (chroot, ACL binding); `user` is the record.
  action_result finish_login(uint64_t conn_id, const array& root, entry& user, std::string who);
};

/// The ACLError reply text (batteries §2.6): the matched ACL entry (or None) and the flag.
std::string acl_error_text(const acl_checker& acl, char flag);

/// An ACL refusal (test_acl turns it into `access: false`).
struct acl_denied : client_error {
  using client_error::client_error;
};

/// Throws ACLError unless `acl` allows `flag`.
inline void acl_check(const acl_checker& acl, char flag) {
  if (!acl.allows(flag)) throw acl_denied(acl_error_text(acl, flag));
}

}  // namespace moatkv
