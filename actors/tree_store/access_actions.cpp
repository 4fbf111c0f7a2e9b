// Logins, user management and ACL checks of the client actions (batteries.md §1, §2).
//
// Who may do what:
//   * Before a required login (the greeting names a current method) only `auth` and
//     `diffie_hellman` are accepted (NoAuthError otherwise).
//   * A user without an ACL (or with ACL key "*") may do everything, as in the original.
//   * A user bound to an ACL goes through the §2.3 walk for every data action, with the
//     intended semantics where the original is defective (enum, get_tree, watch events,
//     delete_tree, chroot) and two deliberate differences (ARCHITECTURE.md, "Security
//     defaults"): where no ACL entry matches, nothing is allowed (the original allows all), and
//     the meta tree / user management (`*_internal`, `auth_*`, `set_auth_typ`) is refused.
//     Deleting a value needs `d` (the original checks `w`/`c`).
//   * A login names a user record (None,"auth",METHOD,"user",IDENT) below the login root; its
//     child "acl" = {key: NAME} binds the connection to (None,"acl",NAME) below that root. A
//     NAME whose ACL tree is missing grants nothing (the original: everything).
//
// Slow crypto (the Diffie-Hellman exponentiation, Argon2id) never runs in the single writer:
// those actions return a `deferred` step (actions.hpp) that the actor runs elsewhere.
#include <algorithm>

#include "actors/auth/password_crypto.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/kv_store_impl.hpp"

namespace moatkv {

namespace {

action_result single_result(value v) {
  action_result r;
  r.messages.push_back(std::move(v));
  return r;
}

/// A required string field.
const std::string& str_field(const map& msg, std::string_view name) {
  const value* v = field(msg, name);
  if (v == nullptr || !v->is_str())
    fail("ValueError", "The request needs a string '" + std::string(name) + "'" +
                           (v ? ", not " + debug_string(*v) : std::string()));
  return v->as_str();
}

/// The login / tenant root: `root` (what the original server reads) or `chroot` (what its
/// client sends); nil or absent = none.
array root_field(const map& msg) {
  const value* v = field(msg, "root");
  if (v == nullptr || v->is_nil()) v = field(msg, "chroot");
  if (v == nullptr || v->is_nil()) return {};
  if (!v->is_sequence())
    fail("TypeError", "root must be a Path or an array, not " + debug_string(*v));
  return v->elements();
}

/// The record kind of user management (`kind`, default "user").
std::string kind_field(const map& msg) {
  const value* k = field(msg, "kind");
  return k == nullptr || k->is_nil() ? std::string("user") : str_field(msg, "kind");
}

/// The user names the original's client schemas accept for `_test` and `password`:
/// ^[a-zA-Z][a-zA-Z0-9_]*$. Checked by hand: libstdc++'s std::regex recurses once per
/// character and overflows the stack on a long name (100 000 characters crash the node).
bool valid_user_name(const std::string& s) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto rest = [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '_'; };
  return !s.empty() && alpha(s.front()) && std::all_of(s.begin() + 1, s.end(), rest);
}

bool known_method(const std::string& m) {
  return m == "root" || m == "_test" || m == "password";
}

/// (root..., None, "auth", more...)
array auth_path(const array& root, std::initializer_list<value> more) {
  array p = root;
  p.emplace_back();
  p.emplace_back("auth");
  p.insert(p.end(), more.begin(), more.end());
  return p;
}

/// The stored password record (bin: the original's SHA-256 digest; str: Argon2id).
std::string stored_password(const entry& user) {
  if (!user.has_data() || !user.data().is_map()) return {};
  const value* pw = user.data().find("password");
  if (pw == nullptr) return {};
  if (pw->is_bin()) return pw->as_bin();
  if (pw->is_str()) return pw->as_str();
  return {};
}

value flags_of(const entry* matched) {
  if (matched == nullptr || !matched->has_data() || !matched->data().is_str()) return value(true);
  return matched->data();
}

}  // namespace

std::string acl_error_text(const acl_checker& acl, char flag) {
  const entry* m = acl.matched();
  std::string what = "None";
  if (m != nullptr) {
    what = "<AclEntry:" + tree::format_path(m->path()) + " =" +
           (m->has_data() ? debug_string(m->data()) : std::string("?")) + ">";
  }
  return "ACLError(" + what + ", " + wire::py_str_repr(std::string(1, flag)) + ")";
}

// --- ACL walks --------------------------------------------------------------------------------

acl_checker kv_store::impl::acl_at_base(const conn_state& cs) {
  entry* base = cs.acl_base != nullptr ? cs.acl_base : &t.root();
  const entry* acl_root = nullptr;
  if (entry* meta = base->child(value()))
    if (entry* acls = meta->child(value("acl"))) acl_root = acls->child(cs.acl_name);
  return acl_checker(acl_root);
}

acl_checker kv_store::impl::user_acl(const conn_state& cs) {
  acl_checker acl = acl_at_base(cs);
  for (const auto& x : cs.acl_prefix) acl = acl.step(x);
  return acl;
}

entry* kv_store::impl::follow_acl(entry& start, const array& path, walk_mode mode, int nulls_ok,
                                  acl_checker& acl, char final_flag) {
  entry* e = &start;
  for (size_t i = 0; i < path.size(); ++i) {
    const value& x = path[i];
    if (x.is_nil() && !(nulls_ok == 2 || (nulls_ok == 1 && i == 0)))
      fail("ValueError", "Null path element");
    entry* c = e != nullptr ? e->child(x) : nullptr;
    if (c == nullptr) {
      if (mode == walk_mode::lookup) return nullptr;
      acl_check(acl, 'n');  // at the parent's position
      if (mode == walk_mode::create) c = t.follow(*e, array{x}, true, 2);
    } else {
      acl_check(acl, 'x');
    }
    acl = acl.step(x);
    e = c;
  }
  if (final_flag == 'W') final_flag = (e != nullptr && e->has_data()) ? 'w' : 'c';
  if (final_flag != 0) acl_check(acl, final_flag);
  return e;
}

bool kv_store::impl::event_visible(const watch_rec& w, const entry& e, bool& show_value) {
  auto it = conns.find(w.conn);
  if (it == conns.end()) return false;
  const conn_state& cs = it->second;
  entry* base = cs.acl_base != nullptr ? cs.acl_base : &t.root();
  if (!w.top->is_below(base) || !e.is_below(w.top)) return false;
  // To the watch top: allowed when the watch started (its ACL may have changed since; the
  // checks below use the current ACL tree).
  acl_checker acl = acl_at_base(cs);
  for (const auto& x : w.top->path_from(base)) acl = acl.step(x);
  // From the top to the entry: no level may lack `e`; below a level lacking `x` no value.
  for (const auto& x : e.path_from(w.top)) {
    if (!acl.allows('e')) return false;
    if (!acl.allows('x')) acl.block('r');
    acl = acl.step(x);
  }
  // Seen at all only where `r` or `e` is allowed (walk_acl in actions.cpp).
  show_value = acl.allows('r');
  return show_value || acl.allows('e');
}

action_result kv_store::impl::test_acl(const conn_state& cs, const map& msg) {
  array path = path_field(msg);
  char mode = 'x';
  if (const value* m = field(msg, "mode"); m != nullptr && !m->is_nil()) {
    if (!m->is_str() || m->as_str().size() != 1 ||
        std::string_view("rwdcxena").find(m->as_str()[0]) == std::string_view::npos)
      fail("ValueError", "mode must be one of the flags rwdcxena, not " + debug_string(*m));
    mode = m->as_str()[0];
  }
  acl_checker user = cs.restricted ? user_acl(cs) : acl_checker::unrestricted();
  value access;
  try {
    follow_acl(*cs.root, path, walk_mode::check, 2, user, 0);
    bool may_read_acls = user.allows('a');
    if (const value* name = field(msg, "acl"); name != nullptr && !name->is_nil()) {
      entry* base = cs.acl_base != nullptr ? cs.acl_base : cs.root;
      const entry* acl_root = nullptr;
      if (entry* meta = base->child(value()))
        if (entry* acls = meta->child(value("acl"))) acl_root = acls->child(*name);
      acl_checker other(acl_root);
      if (!may_read_acls) other.block('a');
      follow_acl(*cs.root, path, walk_mode::check, 2, other, mode);
      access = may_read_acls ? flags_of(other.matched()) : value(true);
    } else {
      access = may_read_acls ? flags_of(user.matched()) : value(true);
    }
  } catch (const acl_denied&) {
    access = value(false);  // either walk: intentionally indistinguishable (§2.5)
  }
  return single_result(value(map{{value("access"), std::move(access)}}));
}

// --- logins -----------------------------------------------------------------------------------

action_result kv_store::impl::finish_login(uint64_t conn_id, const array& root, entry& user,
                                           std::string who) {
  action_result r;
  r.stream = true;
  r.login = action_result::login_outcome::succeeded;
  r.login_user = who;
  conn_state& c = conn_ref(conn_id);
  if (!c.must_login) {
    // Already logged in (or no login needed): the request only verified the credentials.
    r.login_restricted = c.restricted;
    return r;
  }
  entry* new_root = root.empty() ? c.root : &follow(*c.root, root, true, 0);
  c.must_login = false;
  c.root = new_root;
  c.chop += root.size();
  c.user = std::move(who);
  // The user's ACL: the child "acl" = {key: NAME} of the user record (§1.6); "*" or none is
  // unrestricted.
  if (entry* aux = user.child(value("acl"));
      aux != nullptr && aux->has_data() && aux->data().is_map()) {
    const value* key = aux->data().find("key");
    if (key != nullptr && !key->is_nil() && !(key->is_str() && key->as_str() == "*")) {
      c.restricted = true;
      c.acl_name = *key;
      c.acl_base = new_root;
      c.acl_prefix.clear();
      entry* meta = new_root->child(value());
      entry* acls = meta != nullptr ? meta->child(value("acl")) : nullptr;
      if (acls == nullptr || acls->child(*key) == nullptr)
        r.login_detail = "its ACL " + debug_string(*key) + " does not exist: no access";
    }
  }
  r.login_restricted = c.restricted;
  return r;
}

action_result kv_store::impl::auth(uint64_t conn_id, const conn_state& cs, const map& msg) {
  action_result r;
  r.stream = true;
  std::string who = "?";
  auto refuse = [&](std::string text) {
    r.messages.push_back(error_reply(text));
    r.login = action_result::login_outcome::failed;
    r.login_user = who;
    r.login_detail = std::move(text);
    return r;
  };
  try {
    const std::string& typ = str_field(msg, "typ");
    const std::string& ident = str_field(msg, "ident");
    who = typ + " user " + ident;
    array root = root_field(msg);
    entry* methods = t.follow(*cs.root, auth_path(root, {}), false, 2);
    if (methods == nullptr) fail("AuthFailedError", "No users are configured at " + fmt(root));
    if (cs.must_login) {
      const value* current = methods->has_data() && methods->data().is_map()
                                 ? methods->data().find("current")
                                 : nullptr;
      if (current == nullptr || !current->is_str() || current->as_str() != typ)
        throw client_error("RuntimeError('Wrong auth type', " +
                           (current != nullptr ? debug_string(*current) : std::string("None")) +
                           ")");
    }
    entry* u = t.follow(*methods, array{value(typ), value("user"), value(ident)}, false, 0);
    if (u == nullptr || !u->has_data())
      throw client_error("AuthFailedError('Unknown user', " + wire::py_str_repr(ident) + ")");
    if (typ == "root") {
      if (const value* d = field(msg, "data");
          d != nullptr && !d->is_nil() && !(d->is_map() && d->as_map().empty()))
        fail("ValueError", "root logins take no data");
      return finish_login(conn_id, root, *u, who);
    }
    if (typ == "_test") return finish_login(conn_id, root, *u, who);
    if (typ != "password") fail("ValueError", "Unknown auth method " + wire::py_str_repr(typ));

    const value* wire_pw = field(msg, "password");
    if (wire_pw == nullptr || !wire_pw->is_bin())
      fail("ValueError", "A password login needs 'password' (the boxed digest, bin)");
    const std::string& key = conn_ref(conn_id).session_key;
    if (key.empty()) fail("RuntimeError", "A password login needs diffie_hellman first");
    std::string digest;
    try {
      digest = auth::unwrap_password_digest(key, wire_pw->as_bin());
    } catch (const auth::auth_error& e) {
      throw client_error("AuthFailedError(" + wire::py_str_repr(e.what()) + ", " +
                         wire::py_str_repr(ident) + ")");
    }
    std::string record = stored_password(*u);
    std::string mismatch =
        "AuthFailedError('Password hashes do not match', " + wire::py_str_repr(ident) + ")";
    if (record.size() == 32) {  // the original's digest: cheap to compare here
      if (!auth::verify_password_record(record, digest)) return refuse(mismatch);
      return finish_login(conn_id, root, *u, who);
    }
    // Argon2id: verified off the single writer; the user is looked up again afterwards.
    array user_path = u->path();
    auto step = std::make_shared<action_result::deferred_step>();
    step->work = [record, digest] { return value(auth::verify_password_record(record, digest)); };
    step->resume = [this, conn_id, root, user_path, who, mismatch](value ok) {
      action_result out;
      out.stream = true;
      out.login_user = who;
      if (conns.find(conn_id) == conns.end()) return out;  // gone meanwhile: no outcome
      out.login = action_result::login_outcome::failed;
      entry* user = t.follow(t.root(), user_path, false, 2);
      if (!ok.is_bool() || !ok.as_bool() || user == nullptr) {
        out.login_detail = mismatch;
        out.messages.push_back(error_reply(mismatch));
        return out;
      }
      try {
        return finish_login(conn_id, root, *user, who);
      } catch (const client_error& e) {
        out.login_detail = e.what();
        out.messages.push_back(error_reply(e.what()));
        return out;
      }
    };
    action_result d;
    d.deferred = std::move(step);
    return d;
  } catch (const client_error& e) {
    return refuse(e.what());
  }
}

action_result kv_store::impl::diffie_hellman(uint64_t conn_id, const map& msg) {
  conn_state& c = conn_ref(conn_id);
  if (c.dh_started) fail("RuntimeError", "Can't call dh twice");
  const value* pk = field(msg, "pubkey");
  if (pk == nullptr || !pk->is_bin() || pk->as_bin().empty() || pk->as_bin().size() > 1024)
    fail("ValueError", "diffie_hellman needs 'pubkey': the public key as bytes (at most 1024)");
  int64_t length = int_field(msg, "length", 1024);
  if (length <= 0 || length > 8192) fail("ValueError", "length must be in 1..8192");
  int group = auth::dh_group_for_length(length);
  c.dh_started = true;
  auto step = std::make_shared<action_result::deferred_step>();
  step->work = [group, peer = pk->as_bin()] {
    try {
      auth::dh_exchange ex(group);
      std::string key = ex.shared_key(peer);
      return value(map{{value("pubkey"), value(bin{ex.public_key()})},
                       {value("key"), value(bin{std::move(key)})}});
    } catch (const std::exception& e) {
      return value(map{{value("error"), value(std::string(e.what()))}});
    }
  };
  step->resume = [this, conn_id](value v) {
    action_result r;
    auto it = conns.find(conn_id);
    if (it == conns.end()) return r;  // gone meanwhile
    if (const value* err = v.find("error"); err != nullptr) {
      r.messages.push_back(error_reply(wire::py_exc("MalformedPublicKey", err->as_str())));
      return r;
    }
    it->second.session_key = v.find("key")->as_bin();
    r.messages.push_back(value(map{{value("pubkey"), *v.find("pubkey")}}));
    return r;
  };
  action_result r;
  r.deferred = std::move(step);
  return r;
}

// --- user management --------------------------------------------------------------------------

action_result kv_store::impl::auth_set(uint64_t conn_id, const conn_state& cs, const map& msg) {
  const std::string& typ = str_field(msg, "typ");
  if (!known_method(typ)) fail("ValueError", "Unknown auth method " + wire::py_str_repr(typ));
  std::string kind = kind_field(msg);
  std::string ident = typ == "root" ? "*" : str_field(msg, "ident");
  if (typ != "root" && !valid_user_name(ident))
    fail("ValueError",
         "A user name must match ^[a-zA-Z][a-zA-Z0-9_]*$, not " + wire::py_str_repr(ident));
  array root = root_field(msg);
  array path = auth_path(root, {value(typ), value(kind), value(ident)});

  // The saved record minus `drop`, with the message's fields over it (batteries §1.5).
  map record;
  if (entry* old = t.follow(*cs.root, path, false, 2);
      old != nullptr && old->has_data() && old->data().is_map())
    record = old->data().as_map();
  if (const value* drop = field(msg, "drop"); drop != nullptr && drop->is_sequence())
    for (const auto& k : drop->elements())
      if (k.is_str()) drop_key(record, k.as_str());

  // The set itself, run now or after the password hash is computed.
  map set_msg{{value("path"), value(path)}};
  if (const value* c = field(msg, "chain")) set_msg.emplace_back(value("chain"), *c);
  if (const value* n = field(msg, "nchain")) set_msg.emplace_back(value("nchain"), *n);
  // (A connection that was never registered is the super-user at the root: unit tests.)
  bool registered = conns.count(conn_id) != 0;
  auto do_set = [this, conn_id, set_msg, registered](map rec) mutable {
    entry* at = &t.root();
    if (registered) {
      auto it = conns.find(conn_id);
      if (it == conns.end()) return action_result{};  // gone meanwhile
      at = it->second.root;
    }
    set_msg.emplace_back(value("value"), value(std::move(rec)));
    return single_result(set_value(set_msg, *at, 2, false, nullptr));
  };

  const value* wire_pw = typ == "password" ? field(msg, "password") : nullptr;
  if (typ != "password" || wire_pw == nullptr) {
    if (typ == "password" && map_find(record, "password") == nullptr)
      fail("ValueError", "A new password user needs a password");
    return do_set(std::move(record));
  }
  if (!wire_pw->is_bin()) fail("ValueError", "'password' must be the boxed digest (bin)");
  const std::string& key = conn_ref(conn_id).session_key;
  if (key.empty()) fail("RuntimeError", "Setting a password needs diffie_hellman first");
  std::string digest;
  try {
    digest = auth::unwrap_password_digest(key, wire_pw->as_bin());
  } catch (const auth::auth_error& e) {
    fail("ValueError", e.what());
  }
  drop_key(record, "password");
  bool legacy = auth_opts.legacy_hash;
  auto step = std::make_shared<action_result::deferred_step>();
  step->work = [digest, legacy] {
    std::string stored = auth::password_record(digest, legacy);
    return legacy ? value(bin{std::move(stored)}) : value(std::move(stored));
  };
  step->resume = [do_set, record](value stored) mutable {
    map rec = record;
    rec.emplace_back(value("password"), std::move(stored));
    try {
      return do_set(std::move(rec));
    } catch (const client_error& e) {
      return single_result(error_reply(e.what()));
    }
  };
  action_result r;
  r.deferred = std::move(step);
  return r;
}

value kv_store::impl::auth_get(const conn_state& cs, const map& msg) {
  const std::string& typ = str_field(msg, "typ");
  std::string kind = kind_field(msg);
  const std::string& ident = str_field(msg, "ident");
  int64_t nchain = int_field(msg, "nchain", 0);
  array path = auth_path(root_field(msg), {value(typ), value(kind), value(ident)});
  entry* e = t.follow(*cs.root, path, false, 2);
  if (e == nullptr || !e->has_data()) key_error(path);
  map out{{value("typ"), value(typ)}, {value("kind"), value(kind)}, {value("ident"), value(ident)}};
  if (nchain != 0) out.emplace_back(value("chain"), e->event_chain().serialize(nchain));
  return value(std::move(out));
}

action_result kv_store::impl::auth_list(const conn_state& cs, const map& msg) {
  const std::string& typ = str_field(msg, "typ");
  std::string kind = kind_field(msg);
  if (const value* id = field(msg, "ident"); id != nullptr && !id->is_nil())
    return single_result(auth_get(cs, msg));
  int64_t nchain = int_field(msg, "nchain", 0);
  action_result r;
  r.stream = true;
  entry* users =
      t.follow(*cs.root, auth_path(root_field(msg), {value(typ), value(kind)}), false, 2);
  if (users == nullptr) return r;
  for (const auto& c : users->children()) {
    if (!c->has_data()) continue;
    map m{{value("typ"), value(typ)}, {value("kind"), value(kind)}, {value("ident"), c->name()}};
    if (nchain != 0) m.emplace_back(value("chain"), c->event_chain().serialize(nchain));
    r.messages.push_back(value(std::move(m)));
  }
  return r;
}

value kv_store::impl::auth_info(const conn_state& cs, const map& msg) {
  // Intended behaviour: a get_value of (None,"auth") ({value: {current: …}, tock}), which the
  // original's client reads as reply.value; the original looks in the wrong place
  // ((None,None,"auth")) and always answers {}.
  entry* a = t.follow(*cs.root, auth_path({}, {}), false, 2);
  int64_t nchain = int_field(msg, "nchain", 0);
  if (a == nullptr || !a->has_data()) {
    map m;
    if (nchain != 0) m.emplace_back(value("chain"), value());
    return value(std::move(m));
  }
  return tree::entry_record(*a, nchain, false);
}

value kv_store::impl::set_auth_typ(const conn_state& cs, const map& msg) {
  const value* typ = field(msg, "typ");
  if (typ == nullptr) fail("ValueError", "set_auth_typ needs 'typ' (a method, or nil)");
  array path = auth_path(root_field(msg), {});
  map record;
  if (entry* a = t.follow(*cs.root, path, false, 2);
      a != nullptr && a->has_data() && a->data().is_map())
    record = a->data().as_map();
  drop_key(record, "current");
  if (!typ->is_nil()) {
    if (!typ->is_str()) fail("TypeError", "typ must be a string or nil");
    entry* users = t.follow(*cs.root, auth_path(root_field(msg), {*typ, value("user")}), false, 2);
    bool any = false;
    if (users != nullptr)
      for (const auto& c : users->children()) any = any || c->has_data();
    if (!any)
      throw client_error("RuntimeError(\"You didn't configure this method yet:\", " +
                         wire::py_str_repr(typ->as_str()) + ")");
    record.emplace_back(value("current"), *typ);
  }
  map set_msg{{value("path"), value(path)}, {value("value"), value(std::move(record))}};
  return set_value(set_msg, *cs.root, 2, false, nullptr);
}

}  // namespace moatkv
