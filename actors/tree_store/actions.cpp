// The client actions (server-internals §7.8), executed against the tree. See actions.hpp.
//
// Reply shapes follow the original as captured in client-wire-transcript.txt: which keys are
// present, which are absent, the wire type of streamed paths (depth compression, §7.5), and
// the entry tock in get_value / set_value / streamed records.
//
// Deliberate differences from the original (besides the merge-rule fixes in tree.cpp):
//   * `delete_tree` deletes exactly the entries that hold a value (the original re-deletes
//     tombstones and intermediate entries and never deletes nil values); its streamed form has
//     no trailing `{seq, tock}` artefact.
//   * With a chroot, depth compression uses the chopped request path as the prefix (the
//     original fails with "Wrong prefix").
//   * A `chain` given by the client is only compared with the entry; it does not create nodes
//     or raise ticks in the node table (§8.10).
//   * A str where a path is expected is an error (the original iterates its characters).
//   * Unknown actions and malformed requests get an error reply, never a dropped connection.
//   * The greeting reports version [0,1,0].
// Logins, user management, test_acl and the ACL walk are in access_actions.cpp.
// Not implemented here (the session or other actors own them): stop, save, log, msg_send,
// msg_monitor, kill_node, check_deleted, fake_info*, update.
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/kv_store_impl.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "actors/tree_store/depth_compression.hpp"
#include "actors/tree_store/range_set.hpp"
#include "actors/tree_store/tree.hpp"
#include "actors/tree_store/wire_util.hpp"

namespace moatkv {

// --- watchers ---------------------------------------------------------------------------------

void kv_store::impl::on_change(const change_event& ev) {
  // The broadcaster (§5.2 step 5): every change made here, meta tree included.
  if (ev.local && uemit && !ev.e.event_chain().empty())
    uemit(tree::update_message(ev.e, change_length));
  if (watches.empty()) return;
  if (ev.e.is_meta()) return;  // client watches never see the meta tree
  // Innermost watchers first, as the original walks from the entry up to the root.
  for (const entry* p = &ev.e; p != nullptr; p = p->parent()) {
    auto it = watched.find(p);
    if (it == watched.end()) continue;
    std::vector<watch_rec*> ws = it->second;  // an emitter may cancel watches
    for (watch_rec* w : ws) {
      auto still = watches.find({w->conn, w->seq});
      if (still != watches.end() && still->second.get() == w) deliver(*w, ev.e);
    }
  }
}

void kv_store::impl::deliver(watch_rec& w, const entry& e) {
  int64_t ml = static_cast<int64_t>(e.depth()) - static_cast<int64_t>(w.top_depth);
  if (ml < w.min_depth) return;
  if (w.max_depth >= 0 && ml > w.max_depth) return;
  if (!emit) return;
  bool show_value = true;
  if (w.restricted && !event_visible(w, e, show_value)) return;
  // The entry's current state, not the event's: a later change may already have landed.
  value rec = tree::entry_record(e, w.nchain, true, w.chop);
  if (!show_value) drop_key(rec.as_map(), "value");
  std::string error;
  if (!w.shortener.apply(rec, error)) return;
  emit(w.conn, w.seq, std::move(rec));
}

void kv_store::impl::remove_watch(std::pair<uint64_t, int64_t> key) {
  auto it = watches.find(key);
  if (it == watches.end()) return;
  watch_rec* w = it->second.get();
  auto wt = watched.find(w->top);
  if (wt != watched.end()) {
    std::erase(wt->second, w);
    if (wt->second.empty()) watched.erase(wt);
  }
  watches.erase(it);
}

// --- data actions -----------------------------------------------------------------------------

value kv_store::impl::get_value(const conn_state& cs, const map& msg, entry& root, int nulls_ok,
                                const acl_checker* acl) {
  int64_t nchain = int_field(msg, "nchain", 0);
  if (has(msg, "node") && !has(msg, "path")) {
    // The entry that currently holds (node, tick).
    const value& nv = *field(msg, "node");
    if (!nv.is_str()) fail("TypeError", "node must be a string, not " + debug_string(nv));
    node_info* n = t.nodes().find(nv.as_str());
    if (n == nullptr) throw client_error("KeyError(" + wire::py_str_repr(nv.as_str()) + ")");
    int64_t tick = int_field(msg, "tick", no_tick);
    auto it = n->entries.find(tick);
    if (it == n->entries.end()) throw client_error("KeyError(" + std::to_string(tick) + ")");
    if (acl != nullptr) {
      // The original skips the ACL here; we check the entry's path like any read.
      if (!it->second->is_below(cs.root))
        throw client_error("KeyError(" + std::to_string(tick) + ")");
      acl_checker a = *acl;
      follow_acl(*cs.root, it->second->path_from(cs.root), walk_mode::lookup, 2, a, 'r');
    }
    return tree::entry_record(*it->second, nchain, true, cs.chop);
  }
  array path = path_field(msg);
  follow_error err = follow_error::none;
  entry* e;
  if (acl != nullptr) {
    acl_checker a = *acl;
    e = follow_acl(root, path, walk_mode::lookup, nulls_ok, a, 'r');
  } else {
    e = t.follow(root, path, false, nulls_ok, &err);
  }
  if (e == nullptr) {
    if (err == follow_error::null_element) fail("ValueError", "Null path element");
    map m;
    if (nchain != 0) m.emplace_back(value("chain"), value());
    return value(std::move(m));
  }
  return tree::entry_record(*e, nchain, false);
}

value kv_store::impl::set_value(const map& msg, entry& root, int nulls_ok, bool deleting,
                                const acl_checker* acl) {
  if (!deleting && !has(msg, "value"))
    fail("ClientError", "Call 'delete_value' if you want to clear the value");
  if (deleting && has(msg, "value")) fail("ClientError", "A deleted entry can't have a value");
  array path = path_field(msg);
  int64_t nchain = int_field(msg, "nchain", 1);
  bool idem = bool_field(msg, "idem", false);
  // Parse the client's chain before touching the tree.
  bool has_chain = has(msg, "chain");
  chain want;
  if (has_chain) {
    std::string error;
    if (!chain::deserialize(*field(msg, "chain"), want, error)) fail("ClientChainError", error);
  }
  require_ready();

  if (acl != nullptr) {
    // Checked without side effects first: a refused write leaves no new empty entries.
    // Deleting needs `d` (the flag's documented meaning; the original checks `W`).
    acl_checker a = *acl;
    follow_acl(root, path, walk_mode::check, nulls_ok, a, deleting ? 'd' : 'W');
  }
  entry& e = follow(root, path, true, nulls_ok);  // creates the path, as the original does
  const value* newv = deleting ? nullptr : field(msg, "value");

  // idem: nothing to do if the entry already holds the same value of the same type.
  bool same = deleting ? !e.has_data() : (e.has_data() && same_type_equal(e.data(), *newv));
  if (idem && same) {
    map m{{value("tock"), value(e.tock())}, {value("changed"), value(false)}};
    if (nchain > 0)
      m.emplace_back(value("chain"),
                     e.event_chain().empty() ? value() : e.event_chain().serialize(nchain));
    return value(std::move(m));
  }

  bool send_prev = true;
  if (const value* prev = field(msg, "prev")) {
    if (!e.has_data() || e.data() != *prev)
      fail("ClientError",
           "Data is " + data_repr(e) + " not " + debug_string(*prev) + " at " + fmt(path));
    send_prev = false;
  }
  if (has_chain) {
    if (want.empty()) {
      if (e.has_data()) fail("ClientChainError", "Entry already exists at " + fmt(path));
    } else if (!e.has_data()) {
      fail("ClientChainError", "Entry is new at " + fmt(path));
    } else if (e.event_chain() != want) {
      fail("ClientChainError",
           "Chain is " + e.event_chain().repr() + " not " + want.repr() + " for " + fmt(path));
    }
    send_prev = false;
  }

  map res;
  bool changed = deleting ? e.has_data() : (!e.has_data() || e.data() != *newv);
  res.emplace_back(value("changed"), value(changed));
  if (send_prev && e.has_data()) res.emplace_back(value("prev"), e.data());

  t.set_data(e, deleting ? std::nullopt : std::optional<value>(*newv));
  if (nchain != 0) res.emplace_back(value("chain"), e.event_chain().serialize(nchain));
  res.emplace_back(value("tock"), value(e.tock()));
  return value(std::move(res));
}

action_result kv_store::impl::delete_tree(const conn_state& cs, const map& msg,
                                          const acl_checker* acl) {
  array path = path_field(msg);
  if (path.empty()) fail("ClientError", "You can't delete the root node");
  int64_t nchain = int_field(msg, "nchain", 0);
  require_ready();
  if (acl != nullptr) {
    acl_checker a = *acl;
    follow_acl(*cs.root, path, walk_mode::check, client_nulls_ok(cs), a, 'd');
  }
  entry& top = follow(*cs.root, path, true, client_nulls_ok(cs));

  action_result r;
  path_shortener ps(top.path_from(cs.root), cs.chop == 0);
  int64_t count = 0;
  auto remove = [&](entry& e) {
    if (!e.has_data()) return;  // our fix: only entries that hold a value (nil included)
    std::optional<value> old = e.maybe_data();
    t.set_data(e, std::nullopt);
    ++count;
    if (nchain == 0) return;
    // UpdateEvent.serialize(with_old=True): {node, tick, prev.., path, old_value?, tock}
    value rec = e.event_chain().serialize(nchain);
    map& m = rec.as_map();
    array p = e.path();
    p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(cs.chop));
    m.emplace_back(value("path"), cs.chop == 0 ? value::make_path(std::move(p)) : value(p));
    if (old) m.emplace_back(value("old_value"), std::move(*old));
    m.emplace_back(value("tock"), value(e.tock()));
    std::string error;
    ps.apply(rec, error);
    r.messages.push_back(std::move(rec));
  };
  if (acl == nullptr) {
    walk_all(top, remove);
  } else {
    // §2.4, intended: an entry goes if its position allows `d`; the walk descends only where
    // `e` and `x` are allowed. Every child is stepped from its parent's position.
    acl_checker a = *acl;
    for (const auto& x : path) a = a.step(x);
    std::vector<std::pair<entry*, acl_checker>> stack;
    stack.emplace_back(&top, std::move(a));
    while (!stack.empty()) {
      auto [e, pos] = std::move(stack.back());
      stack.pop_back();
      if (pos.allows('d')) remove(*e);
      if (!pos.allows('e') || !pos.allows('x')) continue;
      const auto& kids = e->children();
      for (size_t i = kids.size(); i-- > 0;)
        stack.emplace_back(kids[i].get(), pos.step(kids[i]->name()));
    }
  }
  if (nchain == 0) {
    r.messages.push_back(value(map{{value("changed"), value(count)}}));
  } else {
    r.stream = true;
  }
  return r;
}

namespace {

/// get_tree / watch dump walk with ACL positions (§2.4, intended): no descent below an entry
/// lacking `e`; below an entry lacking `x`, `r` is blocked. An entry is sent only where its
/// position allows `r` or `e` (as `enum` shows a name only where `e` is allowed; the original
/// sends every visited entry), and without its value unless `r`.
template <class Visit>
void walk_acl(entry& top, const acl_checker& top_acl, int64_t min_depth, int64_t max_depth,
              bool full, Visit visit) {
  struct frame {
    entry* e;
    int64_t depth;
    acl_checker acl;
  };
  std::vector<frame> stack;
  stack.push_back(frame{&top, 0, top_acl});
  while (!stack.empty()) {
    frame f = std::move(stack.back());
    stack.pop_back();
    if (min_depth <= f.depth) {
      bool readable = f.acl.allows('r');
      if (readable || f.acl.allows('e')) visit(*f.e, readable);
    }
    if (max_depth == f.depth) continue;
    if (!f.acl.allows('e')) continue;
    acl_checker base = f.acl;
    if (!base.allows('x')) base.block('r');
    const auto& kids = f.e->children();
    for (size_t i = kids.size(); i-- > 0;) {
      if (kids[i]->name().is_nil() && !(full && f.depth == 0)) continue;
      stack.push_back(frame{kids[i].get(), f.depth + 1, base.step(kids[i]->name())});
    }
  }
}

}  // namespace

action_result kv_store::impl::get_tree(const conn_state& cs, const map& msg, entry& root,
                                       size_t chop, const acl_checker* acl) {
  action_result r;
  r.stream = true;
  array path = path_field(msg);
  int64_t nchain = int_field(msg, "nchain", 0);
  int64_t min_depth = int_field(msg, "min_depth", 0);
  int64_t max_depth = int_field(msg, "max_depth", -1);
  bool empty = bool_field(msg, "empty", false);
  std::optional<acl_checker> top_acl;
  entry* found = nullptr;
  if (acl != nullptr) {
    top_acl = *acl;
    found = follow_acl(root, path, walk_mode::lookup, client_nulls_ok(cs), *top_acl, 'e');
    if (found == nullptr) key_error(path);
  }
  entry& top = found != nullptr ? *found : follow(root, path, false, client_nulls_ok(cs));

  array prefix = top.path();
  prefix.erase(prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>(chop));
  path_shortener ps(std::move(prefix), chop == 0);
  auto emit_record = [&](entry& e, bool readable) {
    if (!e.has_data() && !empty) return;
    value rec = tree::entry_record(e, nchain, true, chop);
    if (!readable) drop_key(rec.as_map(), "value");
    std::string error;
    ps.apply(rec, error);
    r.messages.push_back(std::move(rec));
  };
  if (top_acl)
    walk_acl(top, *top_acl, min_depth, max_depth, empty, emit_record);
  else
    walk(top, min_depth, max_depth, empty, [&](entry& e) { emit_record(e, true); });
  return r;
}

action_result kv_store::impl::watch(uint64_t conn_id, const conn_state& cs, const map& msg,
                                    const acl_checker* acl) {
  action_result r;
  r.stream = true;
  array path = path_field(msg);
  int64_t nchain = int_field(msg, "nchain", 0);
  int64_t min_depth = int_field(msg, "min_depth", 0);
  int64_t max_depth = int_field(msg, "max_depth", -1);
  bool empty = bool_field(msg, "empty", false);
  bool fetch = bool_field(msg, "fetch", false);
  const value* seqv = field(msg, "seq");
  int64_t seq = 0;
  if (seqv == nullptr || !wire::to_int(*seqv, seq))
    fail("ValueError", "A watch needs an integer 'seq'");
  std::optional<acl_checker> top_acl;
  if (acl != nullptr) {
    top_acl = *acl;
    follow_acl(*cs.root, path, walk_mode::check, client_nulls_ok(cs), *top_acl, 'x');
  }
  entry& top = follow(*cs.root, path, true, client_nulls_ok(cs));  // creates the path

  auto w = std::make_unique<watch_rec>();
  w->conn = conn_id;
  w->seq = seq;
  w->top = &top;
  w->top_depth = top.depth();
  w->chop = cs.chop;
  w->min_depth = min_depth;
  w->max_depth = max_depth;
  w->nchain = nchain;
  w->shortener = path_shortener(top.path_from(cs.root), cs.chop == 0);
  w->restricted = acl != nullptr;

  uint64_t t0 = clock->next();
  if (fetch) {
    auto emit_record = [&](entry& e, bool readable) {
      if (!e.has_data() && !empty) return;
      if (e.tock() >= t0) return;
      value rec = tree::entry_record(e, nchain, true, cs.chop);
      if (!readable) drop_key(rec.as_map(), "value");
      std::string error;
      w->shortener.apply(rec, error);
      r.messages.push_back(std::move(rec));
    };
    if (top_acl)
      walk_acl(top, *top_acl, min_depth, max_depth, empty, emit_record);
    else
      walk(top, min_depth, max_depth, empty, [&](entry& e) { emit_record(e, true); });
    r.messages.push_back(value(map{{value("state"), value("uptodate")}}));
  }
  // Registration happens in the same call as the fetch walk: no change can slip between.
  remove_watch({conn_id, seq});
  watched[&top].push_back(w.get());
  watches[{conn_id, seq}] = std::move(w);
  r.open = true;
  return r;
}

value kv_store::impl::enumerate(const map& msg, entry& root, int nulls_ok, const acl_checker* acl) {
  array path = path_field(msg);
  bool with_data = bool_field(msg, "with_data", false);
  bool empty = bool_field(msg, "empty", false);
  std::optional<acl_checker> pos;
  entry* found = nullptr;
  if (acl != nullptr) {
    pos = *acl;
    found = follow_acl(root, path, walk_mode::lookup, nulls_ok, *pos, 'e');
    if (found == nullptr) key_error(path);
  }
  entry& e = found != nullptr ? *found : follow(root, path, false, nulls_ok);
  // §2.4, intended: each child is judged from its own position, stepped from the parent's.
  auto child_allows = [&](const entry& c, char flag) {
    return !pos || pos->step(c.name()).allows(flag);
  };
  value result;
  if (with_data) {
    bool parent_x = !pos || pos->allows('x');
    map m;
    for (const auto& c : e.children()) {
      if (!child_allows(*c, 'r')) continue;
      if (c->has_data() && parent_x)
        m.emplace_back(c->name(), c->data());
      else if (empty)
        m.emplace_back(c->name(), value());
    }
    result = value(std::move(m));
  } else {
    array a;
    for (const auto& c : e.children())
      if ((empty || c->has_data()) && child_allows(*c, 'e')) a.push_back(c->name());
    result = value(std::move(a));
  }
  return value(map{{value("result"), std::move(result)}});
}

value kv_store::impl::get_state(const map& msg) {
  bool want_nodes = bool_field(msg, "nodes", false);
  bool superseded = bool_field(msg, "known", false) || bool_field(msg, "superseded", false);
  bool present = bool_field(msg, "present", false);
  bool deleted = bool_field(msg, "deleted", false);
  bool missing = bool_field(msg, "missing", false);
  bool remote_missing = bool_field(msg, "remote_missing", false);
  bool node_drop = bool_field(msg, "node_drop", false);
  bool debug = bool_field(msg, "debug", false);

  const auto& nodes = t.nodes().all();
  auto ranges = [&](auto get) {
    map m;
    for (const auto& n : nodes) {
      range_set r = get(*n);
      if (!r.empty()) m.emplace_back(value(n->name.str()), r.to_value());
    }
    return value(std::move(m));
  };
  map res;
  if (want_nodes) {
    map m;
    for (const auto& n : nodes)
      m.emplace_back(value(n->name.str()), n->tick ? value(*n->tick) : value());
    res.emplace_back(value("nodes"), value(std::move(m)));
  }
  // As in the original, `known` and `superseded` both report the superseded set as `known`.
  if (superseded)
    res.emplace_back(value("known"), ranges([](const node_info& n) { return n.superseded; }));
  if (present)
    res.emplace_back(value("present"), ranges([](const node_info& n) { return n.present; }));
  if (deleted)
    res.emplace_back(value("deleted"), ranges([](const node_info& n) { return n.deleted; }));
  if (missing)
    res.emplace_back(value("missing"),
                     ranges([](const node_info& n) { return n.local_missing(); }));
  if (remote_missing)
    res.emplace_back(value("remote_missing"),
                     ranges([](const node_info& n) { return n.reported; }));
  if (node_drop) {
    array a;
    for (const auto& n : t.nodes().node_drop()) a.emplace_back(n);
    res.emplace_back(value("node_drop"), value(std::move(a)));
  }
  if (debug) res.emplace_back(value("debug"), value(map{}));
  res.emplace_back(value("node"), value(node));
  res.emplace_back(value("tock"), value(clock->next()));
  return value(std::move(res));
}

value kv_store::impl::chroot(uint64_t conn_id, const conn_state& cs, const map& msg,
                             const acl_checker* acl) {
  array path = path_field(msg);
  conn_state next = cs;
  if (!path.empty()) {
    if (acl != nullptr) {
      acl_checker a = *acl;
      follow_acl(*cs.root, path, walk_mode::check, 0, a, 0);
    }
    next.root = &follow(*cs.root, path, true, 0);
    next.chop = cs.chop + path.size();
    // The ACL stays where the user logged in: its positions now start at the new root.
    if (next.restricted) next.acl_prefix.insert(next.acl_prefix.end(), path.begin(), path.end());
    conns[conn_id] = next;
  }
  return tree::entry_record(*next.root, 2, true, next.chop);
}

action_result kv_store::impl::dispatch(uint64_t conn_id, const map& msg,
                                       const std::string& action) {
  const conn_state& cs = conn(conn_id);
  auto single = [](value v) {
    action_result r;
    r.messages.push_back(std::move(v));
    return r;
  };
  entry& meta = t.meta_root();

  // Before a required login only the login itself is accepted (batteries §1.1).
  if (cs.must_login) {
    if (action == "auth") return auth(conn_id, cs, msg);
    if (action == "diffie_hellman") return diffie_hellman(conn_id, msg);
    throw client_error("NoAuthError()");
  }
  std::optional<acl_checker> acl_holder;
  const acl_checker* acl = nullptr;
  if (cs.restricted) acl = &acl_holder.emplace(user_acl(cs));

  if (action == "get_value") return single(get_value(cs, msg, *cs.root, client_nulls_ok(cs), acl));
  if (action == "set_value") return single(set_value(msg, *cs.root, 2, false, acl));
  if (action == "delete_value") return single(set_value(msg, *cs.root, 2, true, acl));
  if (action == "delete_tree") return delete_tree(cs, msg, acl);
  if (action == "enum" || action == "enumerate") return single(enumerate(msg, *cs.root, 0, acl));
  if (action == "get_tock") return single(value(map{{value("tock"), value(clock->next())}}));
  if (action == "get_state") return single(get_state(msg));
  if (action == "root") return single(chroot(conn_id, cs, msg, acl));
  if (action == "test_acl") return test_acl(cs, msg);
  if (action == "auth") return auth(conn_id, cs, msg);
  if (action == "diffie_hellman") return diffie_hellman(conn_id, msg);

  bool meta_action =
      action.ends_with("_internal") || action.starts_with("auth_") || action == "set_auth_typ";
  // Our security default: the meta tree (ACLs, users, types) is not reachable for a user
  // bound to an ACL, whatever the ACL says (the original lets everybody rewrite it).
  if (meta_action && !cs.admin()) fail("ACLError", action + " is only for users without an ACL");
  if (action == "auth_set") return auth_set(conn_id, cs, msg);
  if (action == "auth_get") return single(auth_get(cs, msg));
  if (action == "auth_list") return auth_list(cs, msg);
  if (action == "auth_info") return single(auth_info(cs, msg));
  if (action == "set_auth_typ") return single(set_auth_typ(cs, msg));
  // The internal variants work relative to the meta root (None,), whatever the chroot.
  if (action == "get_internal")
    return single(get_value(conn_state::at(&meta), msg, meta, 1, nullptr));
  if (action == "set_internal") return single(set_value(msg, meta, 1, false, nullptr));
  if (action == "delete_internal") return single(set_value(msg, meta, 0, true, nullptr));
  if (action == "enum_internal") return single(enumerate(msg, meta, 1, nullptr));

  // Streamed actions: an error goes inside the stream, as the original sends it.
  if (action == "get_tree" || action == "get_tree_internal" || action == "watch") {
    try {
      if (action == "get_tree") return get_tree(cs, msg, *cs.root, cs.chop, acl);
      if (action == "get_tree_internal")
        return get_tree(conn_state::at(&meta), msg, meta, 0, nullptr);
      return watch(conn_id, cs, msg, acl);
    } catch (const client_error& e) {
      action_result r;
      r.stream = true;
      r.messages.push_back(error_reply(e.what()));
      return r;
    }
  }
  fail("KeyError", "Unknown action " + wire::py_str_repr(action));
}

// ---------------------------------------------------------------------------------------------
// kv_store

kv_store::kv_store(std::string node_name, std::shared_ptr<tock_clock> clock)
    : impl_(std::make_unique<impl>(std::move(node_name), std::move(clock))) {
  impl* p = impl_.get();
  impl_->t.add_change_listener([p](const change_event& ev) { p->on_change(ev); });
  impl_->t.set_pin_check([p](const entry* e) { return p->is_pinned(e); });
}

kv_store::~kv_store() = default;

const std::string& kv_store::node_name() const {
  return impl_->node;
}

tock_clock& kv_store::clock() {
  return *impl_->clock;
}

std::optional<uint64_t> kv_store::own_tick() const {
  const auto& tick = impl_->t.own_node().tick;
  if (!tick) return std::nullopt;
  return static_cast<uint64_t>(*tick);
}

void kv_store::init_own_tick() {
  impl_->make_ready();
}

void kv_store::set_initial_root(const value& v) {
  impl_->make_ready();
  impl_->t.set_data(impl_->t.root(), v);
}

value kv_store::greeting(int64_t qlen) const {
  const auto& tick = impl_->t.own_node().tick;
  map m{{value("seq"), value(0)},
        {value("version"), value(array{value(0), value(1), value(0)})},
        {value("node"), value(impl_->node)},
        {value("tick"), tick ? value(*tick) : value()},
        {value("tock"), value(impl_->clock->next())},
        {value("qlen"), value(qlen)}};
  // `auth`: the configured methods, the current one first (nil first if none is current).
  if (entry* auth = impl_->t.meta_root().child(value("auth"))) {
    array names;
    for (const auto& c : auth->children()) names.push_back(c->name());
    value current;
    if (auth->has_data() && auth->data().is_map()) {
      if (const value* cur = auth->data().find("current")) {
        auto it = std::find(names.begin(), names.end(), *cur);
        if (it != names.end()) {
          current = *it;
          names.erase(it);
        }
      }
    }
    names.insert(names.begin(), current);
    m.emplace_back(value("auth"), value(std::move(names)));
  }
  return value(std::move(m));
}

value kv_store::open_connection(uint64_t conn, int64_t qlen) {
  value g = greeting(qlen);
  conn_state& cs = impl_->conn_ref(conn);
  const value* auth = g.find("auth");
  cs.must_login = auth != nullptr && auth->is_sequence() && !auth->elements().empty() &&
                  !auth->elements().front().is_nil();
  return g;
}

bool kv_store::is_admin(uint64_t conn) const {
  return impl_->conn(conn).admin();
}

void kv_store::set_max_path_depth(size_t n) {
  impl_->max_path_depth = n;
}

void kv_store::set_auth_options(auth_options opts) {
  impl_->auth_opts = opts;
}

action_result kv_store::handle(uint64_t conn, const value& request) {
  try {
    if (!request.is_map()) fail("TypeError", "A request must be a map");
    const map& msg = request.as_map();
    const value* action = field(msg, "action");
    if (action == nullptr) fail("KeyError", "The request has no 'action'");
    if (!action->is_str())
      fail("TypeError", "action must be a string, not " + debug_string(*action));
    // Deeper paths are refused before anything walks them (kv.server.limits.path_depth).
    for (const char* key : {"path", "root", "chroot"}) {
      const value* p = field(msg, key);
      if (p != nullptr && p->is_sequence() && p->elements().size() > impl_->max_path_depth)
        fail("ValueError", std::string(key) + " has " + std::to_string(p->elements().size()) +
                               " elements; at most " + std::to_string(impl_->max_path_depth) +
                               " are allowed (kv.server.limits.path_depth)");
    }
    return impl_->dispatch(conn, msg, action->as_str());
  } catch (const client_error& e) {
    action_result r;
    r.messages.push_back(error_reply(e.what()));
    return r;
  } catch (const std::exception& e) {
    action_result r;
    r.messages.push_back(error_reply(wire::py_exc("RuntimeError", e.what())));
    return r;
  } catch (...) {
    action_result r;
    r.messages.push_back(error_reply(wire::py_exc("RuntimeError", "internal error")));
    return r;
  }
}

bool kv_store::cancel_watch(uint64_t conn, int64_t seq) {
  if (impl_->watches.find({conn, seq}) == impl_->watches.end()) return false;
  impl_->remove_watch({conn, seq});
  return true;
}

void kv_store::drop_connection(uint64_t conn) {
  std::vector<std::pair<uint64_t, int64_t>> keys;
  for (const auto& [k, w] : impl_->watches)
    if (k.first == conn) keys.push_back(k);
  for (const auto& k : keys) impl_->remove_watch(k);
  impl_->conns.erase(conn);
}

void kv_store::set_watch_emitter(watch_emitter emit) {
  impl_->emit = std::move(emit);
}

bool kv_store::apply_update(const value& update) {
  return receive_update(update).accepted();
}

// --- server-to-server -------------------------------------------------------------------------

namespace {

/// A tick or tock from a peer: an integer in [0, max_wire_counter].
bool wire_counter(const value& v, int64_t& out) {
  return wire::to_int(v, out) && out >= 0 && out <= max_wire_counter;
}

/// Paths from peers: None only as the first element (the original's nulls_ok=True; anything
/// else made it raise and die), no maps (unhashable in Python, so no Python node can hold
/// them) and no NaN (never equal to itself: every message would add a new child).
bool peer_path_ok(const array& path, std::string& error) {
  for (size_t i = 0; i < path.size(); ++i) {
    const value& x = path[i];
    if (x.is_nil() && i > 0) {
      error = "None is allowed only as the first path element";
      return false;
    }
    if (x.is_map()) {
      error = "a path element must not be a map";
      return false;
    }
    if (x.is_float() && std::isnan(x.as_double())) {
      error = "a path element must not be NaN";
      return false;
    }
  }
  return true;
}

/// A NodeSet from a peer, each range set clipped to the possible ticks [1, max_wire_counter].
bool peer_node_set(const value& v, node_set& out, std::string& error) {
  if (!node_set::from_value(v, out, error)) return false;
  range_set possible{{1, max_wire_counter + 1}};
  node_set clipped;
  for (const auto& [name, r] : out.items()) clipped[name] = r & possible;
  out = std::move(clipped);
  return true;
}

}  // namespace

value kv_store::impl::finish(value msg) {
  if (!msg.is_map()) return msg;
  map& m = msg.as_map();
  if (const value* tv = map_find(m, "tock")) {
    int64_t tock = 0;
    if (wire_counter(*tv, tock)) clock->seen(static_cast<uint64_t>(tock));
  } else {
    m.emplace_back(value("tock"), value(clock->next()));
  }
  if (map_find(m, "node") == nullptr) m.emplace_back(value("node"), value(node));
  if (map_find(m, "tick") == nullptr) {
    const auto& tick = t.own_node().tick;
    m.emplace_back(value("tick"), tick ? value(*tick) : value());
  }
  return msg;
}

void kv_store::impl::add_node_drop(map& m) {
  const auto& dropped = t.nodes().node_drop();
  if (dropped.empty()) return;
  array a;
  for (const auto& n : dropped) a.emplace_back(n);
  m.emplace_back(value("node_drop"), value(std::move(a)));
}

update_result kv_store::impl::receive_update(value msg) {
  update_result r;
  auto bad = [&](std::string error) {
    r.status = update_status::malformed;
    r.error = std::move(error);
    return r;
  };
  if (!msg.is_map()) return bad("an update must be a map, not " + debug_string(msg));
  // Everything is checked before anything changes.
  const value* tockv = msg.find("tock");
  int64_t tock = 0;
  if (tockv == nullptr || !wire_counter(*tockv, tock))
    return bad("an update needs a 'tock' in [0, 2^53]");
  const value* pathv = msg.find("path");
  if (pathv == nullptr || !pathv->is_sequence()) return bad("an update needs a 'path' sequence");
  const array& path = pathv->elements();
  std::string error;
  if (!peer_path_ok(path, error)) return bad(error);
  // Peers get more room than clients: refusing what another node accepted splits the tree,
  // so only paths no sane writer makes are dropped.
  if (size_t peer_limit = std::max<size_t>(max_path_depth, 4096); path.size() > peer_limit)
    return bad("the path has " + std::to_string(path.size()) + " elements, more than " +
               std::to_string(peer_limit));
  chain c;
  if (!chain::deserialize(msg, c, error)) return bad(error);
  if (c.empty()) return bad("an update needs a chain");
  if (c.size() > max_chain_links) return bad("the chain is too long");
  for (const auto& l : c.links())
    if (l.tick > max_wire_counter) return bad("a chain tick is out of range");
  // `msg` is our own copy: its value is moved, not copied, into the tree.
  std::optional<value> v;
  if (const value* x = msg.find("value"))
    v = std::move(*const_cast<value*>(x));
  else if (const value* y = msg.find("new_value"))
    v = std::move(*const_cast<value*>(y));

  own_tick_guard guard(*this);
  clock->seen(static_cast<uint64_t>(tock));
  t.nodes().note_chain(c);
  follow_error ferr = follow_error::none;
  entry* e = t.follow(t.root(), path, true, 1, &ferr);
  if (e == nullptr) return bad("the path cannot be followed");
  switch (t.apply(*e, std::move(c), std::move(v), static_cast<uint64_t>(tock))) {
    case apply_outcome::accepted:
      r.status = update_status::accepted;
      break;
    case apply_outcome::duplicate:
      r.status = update_status::duplicate;
      break;
    case apply_outcome::stale:
      r.status = update_status::stale;
      break;
    case apply_outcome::conflict_lost:
      r.status = update_status::conflict_lost;
      break;
  }
  return r;
}

// `user_info` (local == false) and `_process_info` (local == true).
info_result kv_store::impl::process_info(const value& msg, bool local) {
  info_result res;
  if (!msg.is_map()) {
    res.errors.push_back("an info must be a map, not " + debug_string(msg));
    return res;
  }
  own_tick_guard guard(*this);
  if (const value* tv = msg.find("tock")) {
    int64_t tock = 0;
    if (wire_counter(*tv, tock))
      clock->seen(static_cast<uint64_t>(tock));
    else
      res.errors.push_back("bad tock " + debug_string(*tv));
  }
  if (const value* nv = msg.find("node"); nv != nullptr && nv->is_str()) res.sender = nv->as_str();
  if (!local && res.sender == node) {
    res.own = true;
    return res;
  }
  node_table& nodes = t.nodes();

  auto node_sets = [&](const char* key, auto each) {
    const value* v = msg.find(key);
    if (v == nullptr) return false;
    node_set ns;
    std::string error;
    if (!peer_node_set(*v, ns, error)) {
      res.errors.push_back(std::string(key) + ": " + error);
      return true;
    }
    for (const auto& [name, r] : ns.items()) each(nodes.get(std::string_view(name)), r);
    return true;
  };

  // ticks (info) / nodes (state): raise the ticks.
  if (const value* v = msg.find(local ? "nodes" : "ticks")) {
    res.had_ticks = !local;
    if (!v->is_map()) {
      res.errors.push_back("ticks must be a map");
    } else {
      for (const auto& [k, tv] : v->as_map()) {
        if (!k.is_str()) {
          res.errors.push_back("a node name must be a string, not " + debug_string(k));
          continue;
        }
        int64_t tick = 0;
        if (tv.is_nil()) {
          nodes.get(std::string_view(k.as_str()));
          res.ticks.emplace_back(k.as_str(), std::nullopt);
        } else if (wire_counter(tv, tick)) {
          nodes.get(std::string_view(k.as_str()), tick);
          res.ticks.emplace_back(k.as_str(), tick);
        } else {
          res.errors.push_back("bad tick for " + k.as_str() + ": " + debug_string(tv));
        }
      }
    }
  }
  auto report_missing = [&](node_info& n, const range_set& r) {
    n.reported += r;
    if (local) return;
    seen_missing[n.name.str()] += r;
    if (!r.empty()) res.resend_needed = true;
  };
  // missing (info only; the state's remote_missing comes after deleted, as in the original).
  if (!local) res.had_missing = node_sets("missing", report_missing);
  // superseded, or (if absent) known: ticks that will never come. Present ticks stay present.
  const char* sup = msg.find("superseded") != nullptr ? "superseded" : "known";
  node_sets(sup, [&](node_info& n, const range_set& r) {
    range_set rest = r - n.present;
    n.superseded += rest;
    if (!local) n.reported -= rest;
  });
  node_sets("deleted",
            [&](node_info& n, const range_set& r) { res.purged += t.report_deleted(n.name, r); });
  if (local) node_sets("remote_missing", report_missing);
  if (const value* v = msg.find("node_drop")) {
    if (!v->is_array()) {
      res.errors.push_back("node_drop must be an array");
    } else {
      // Items that are not names (the original's `[name, nil]` bug) are ignored, as there.
      for (const auto& n : v->as_array())
        if (n.is_str() && t.drop_node(moatkv::node_name(n.as_str())))
          res.dropped.push_back(n.as_str());
    }
  }
  return res;
}

update_result kv_store::receive_update(const value& msg) {
  return receive_update(value(msg));
}

update_result kv_store::receive_update(value&& msg) {
  try {
    return impl_->receive_update(std::move(msg));
  } catch (const std::exception& e) {
    return update_result{update_status::malformed, std::string("internal error: ") + e.what()};
  }
}

void kv_store::set_update_emitter(update_emitter emit) {
  impl_->uemit = std::move(emit);
}

void kv_store::set_update_emitter(update_emitter emit, int64_t change_length) {
  set_update_emitter(std::move(emit));
  set_change_length(change_length);
}

value info_result::to_value() const {
  array d, e;
  for (const auto& n : dropped) d.emplace_back(n);
  for (const auto& x : errors) e.emplace_back(x);
  return value(map{{value("from"), value(sender)},
                   {value("own"), value(own)},
                   {value("ticks"), value(had_ticks)},
                   {value("missing"), value(had_missing)},
                   {value("resend"), value(resend_needed)},
                   {value("purged"), value(purged)},
                   {value("dropped"), value(std::move(d))},
                   {value("errors"), value(std::move(e))}});
}

void kv_store::set_change_length(int64_t n) {
  impl_->change_length = n == 0 ? 1 : n;
}

info_result kv_store::process_info(const value& info) {
  try {
    return impl_->process_info(info, false);
  } catch (const std::exception& e) {
    info_result r;
    r.errors.push_back(std::string("internal error: ") + e.what());
    return r;
  }
}

info_result kv_store::process_state(const value& state) {
  try {
    return impl_->process_info(state, true);
  } catch (const std::exception& e) {
    info_result r;
    r.errors.push_back(std::string("internal error: ") + e.what());
    return r;
  }
}

value kv_store::info_ticks() {
  map ticks;
  for (const auto& n : impl_->t.nodes().all())
    ticks.emplace_back(value(n->name.str()), n->tick ? value(*n->tick) : value());
  map m{{value("ticks"), value(std::move(ticks))}};
  impl_->add_node_drop(m);
  return impl_->finish(value(std::move(m)));
}

node_set kv_store::local_missing() const {
  node_set out;
  for (const auto& n : impl_->t.nodes().all()) {
    range_set lm = n->local_missing();  // empty unless tick >= 1
    if (!lm.empty()) out[n->name.str()] = std::move(lm);
  }
  return out;
}

bool kv_store::has_local_missing() const {
  for (const auto& n : impl_->t.nodes().all())
    if (!n->local_missing().empty()) return true;
  return false;
}

value kv_store::info_missing(bool force) {
  map missing;
  for (const auto& n : impl_->t.nodes().all()) {
    range_set lm = n->local_missing();
    if (const range_set* seen = impl_->seen_missing.find(n->name.str())) lm -= *seen;
    if (lm.empty()) continue;
    missing.emplace_back(value(n->name.str()), lm.to_value());
    impl_->seen_missing[n->name.str()] += lm;
  }
  if (missing.empty() && !force) return value();
  map m{{value("missing"), value(std::move(missing))}};
  impl_->add_node_drop(m);
  return impl_->finish(value(std::move(m)));
}

void kv_store::clear_seen_missing() {
  impl_->seen_missing.clear();
}

std::vector<value> kv_store::missing_data() {
  std::vector<value> out;
  tree& t = impl_->t;
  node_table& nodes = t.nodes();
  // Entries already resent. A set: a peer reporting all ticks of a node as missing makes us
  // resend every entry of that node, and a linear search made that quadratic (hours for a
  // million entries, with the single writer blocked).
  std::unordered_set<const entry*> sent;
  node_set known, deleted;
  for (const auto& np : nodes.all()) {
    node_info& n = *np;
    if (n.reported.empty()) continue;
    range_set want = n.reported & n.present;
    for (const auto& rg : want)
      for (int64_t tick = rg.lo; tick < rg.hi; ++tick) {
        if (!n.reported.contains(tick)) continue;  // answered by an earlier resend
        auto it = n.entries.find(tick);
        if (it == n.entries.end()) continue;
        const entry* e = it->second;
        if (!sent.insert(e).second) continue;
        // Shape B with the whole chain (our fix; the original cuts it to 2 links).
        out.push_back(impl_->finish(tree::entry_record(*e, -1, true, 0)));
        // Receivers clear remote_missing for every link, and so do we (the original does it
        // when its own broadcast comes back).
        for (const auto& l : e->event_chain().links())
          if (node_info* ln = nodes.find(l.node); ln != nullptr && l.tick != no_tick)
            ln->reported.remove(l.tick);
      }
  }
  for (const auto& np : nodes.all()) {
    node_info& n = *np;
    if (n.reported.empty()) continue;
    range_set k = n.reported & n.superseded;
    range_set d = n.reported & n.deleted;
    if (!k.empty()) known[n.name.str()] = k;
    if (!d.empty()) deleted[n.name.str()] = d;
    n.reported -= k;
    n.reported -= d;
  }
  if (known.any() || deleted.any() || !nodes.node_drop().empty()) {
    map m{{value("known"), known.to_value()}, {value("deleted"), deleted.to_value()}};
    impl_->add_node_drop(m);
    out.push_back(impl_->finish(value(std::move(m))));
  }
  return out;
}

value kv_store::ping_value() const {
  const auto& tick = impl_->t.own_node().tick;
  if (!tick) return value();
  return value(array{value(impl_->clock->peek()), value(*tick)});
}

void kv_store::note_node(std::string_view name, std::optional<int64_t> tick,
                         std::optional<int64_t> tock) {
  impl::own_tick_guard guard(*impl_);
  if (tick && (*tick < 0 || *tick > max_wire_counter)) tick.reset();
  if (tock && (*tock < 0 || *tock > max_wire_counter)) tock.reset();
  if (tock) impl_->clock->seen(static_cast<uint64_t>(*tock));
  node_info& n = impl_->t.nodes().get(name, tick);
  if (tock) n.tock = static_cast<uint64_t>(*tock);
}

void kv_store::discard_all_missing() {
  for (const auto& n : impl_->t.nodes().all()) n->superseded += n->local_missing();
}

void kv_store::mark_ready() {
  impl_->make_ready();
}

bool kv_store::ready() const {
  return impl_->t.own_node().tick.has_value();
}

bool kv_store::knows_own_tick() const {
  return ready() || impl_->own_floor.has_value();
}

size_t kv_store::purge_deleted(const node_set& ticks) {
  return impl_->t.purge_deleted(ticks);
}

value kv_store::finish_message(value msg) {
  return impl_->finish(std::move(msg));
}

tree& kv_store::data() {
  return impl_->t;
}

}  // namespace moatkv
