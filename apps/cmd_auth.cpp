// `moatkv auth [-m METHOD|-] …`: the original's `moat kv auth` (moat/kv/command/auth.py,
// batteries.md §1.5, §1.6, §8.1): methods, switching the node to a method, users and their
// parameters.
//
// Server actions used: auth_info (a get_value of (None,"auth"): {value: {current: METHOD}}),
// enum_internal of ("auth",) (the configured methods), set_auth_typ, auth_list (stream), auth_get,
// auth_set (a password travels wrapped with the connection's Diffie-Hellman key), get_internal /
// set_internal / delete_internal of ("auth", METHOD, "user", IDENT, TYPE) for user parameters.
//
// The method: -m METHOD; else the node's current method; else the only configured one.
//
// Deliberate differences from the original, where it is broken or unhelpful:
//   * `auth list` without -m lists every configured method (the original prints only the one
//     method it would use, and fails when there are several);
//   * `init` checks that the method has users before switching (the node refuses anyway; this
//     says how to add one);
//   * `user get` / `user mod` work for password users (the original expects a `name` in the
//     auth_get reply that its server never sends);
//   * `user add` / `user mod` / `user param` with -m print the server's reply (the original
//     crashes: its send returns nothing);
//   * `user param` refuses a user that does not exist;
//   * `user list -v` separates the records with `---` so that the output is one YAML stream;
//   * `_test` users are written with a plain auth_set like `root` ones, not the original's
//     streamed name dialogue (a protocol test of the original, not a real method).
#include <iostream>
#include <regex>

#include <CLI/CLI.hpp>

#include "actors/auth/password_crypto.hpp"
#include "apps/commands.hpp"
#include "apps/yaml_output.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

namespace {

struct auth_options {
  std::optional<std::string> method;  // -m (on `auth`)
  bool switch_method = false;         // init -s
  bool verbose = false;               // user list -v
  bool fresh = false;                 // user param -n
  std::string ident, type, key;
  std::vector<std::string> args;
  std::string test_auth = "root";  // user auth -a
};

// The node's current method: auth_info replies like get_value of (None,"auth"), the record
// under `value` (as the original's client expects); a bare record is accepted too.
std::optional<std::string> current_method(client_connection& c) {
  value r = c.request("auth_info", {});
  const value* rec = r.find("value");
  if (!rec || !rec->is_map()) rec = &r;
  const value* cur = rec->find("current");
  if (cur && cur->is_str()) return cur->as_str();
  return std::nullopt;
}

// The methods with records below (None,"auth"). A node without that entry has none.
std::vector<std::string> configured_methods(client_connection& c) {
  value r;
  try {
    r = c.request("enum_internal", {{"path", value::make_path({value("auth")})},
                                    {"with_data", false},
                                    {"empty", true},
                                    {"nchain", 0}});
  } catch (const server_error& e) {
    if (std::string_view(e.what()).starts_with("KeyError")) return {};
    throw;
  }
  std::vector<std::string> out;
  if (const value* res = r.find("result"); res && res->is_array())
    for (const auto& m : res->as_array())
      if (m.is_str()) out.push_back(m.as_str());
  return out;
}

// The method a command works on (`one_auth` of the original). nullopt: `-m -` (no method).
std::optional<std::string> chosen_method(client_connection& c, const auth_options& o) {
  if (o.method) {
    if (*o.method == "-") return std::nullopt;
    if (!known_auth_method(*o.method))
      throw usage_error("unknown auth method '" + *o.method + "' (known: root, _test, password)");
    return o.method;
  }
  if (auto cur = current_method(c)) return cur;
  auto all = configured_methods(c);
  if (all.size() == 1) return all[0];
  std::string why = "no method is configured yet";
  if (!all.empty()) {
    why = "several are configured:";
    for (const auto& m : all) why += " " + m;
  }
  throw usage_error("You need to set the auth method with -m METHOD (" + why + ")");
}

std::string required_method(client_connection& c, const auth_options& o) {
  auto m = chosen_method(c, o);
  if (!m) throw usage_error("this command needs an auth method, not '-m -'");
  return *m;
}

// One auth_list record per user of the method.
void for_each_user(client_connection& c, const std::string& method, int nchain,
                   const std::function<void(const value&)>& fn) {
  c.stream("auth_list", {{"typ", method}, {"kind", "user"}, {"nchain", nchain}},
           [&](const value& r) {
             fn(r);
             return true;
           });
}

const std::regex& name_pattern() {
  static const std::regex re("^[a-zA-Z][a-zA-Z0-9_]*$");
  return re;
}

// The original's user-maker schemas (gen_schema for `add`, mod_schema for `mod`).
void validate_user(const std::string& method, const map& kw, bool initial) {
  auto has = [&](const char* k) { return map_find(kw, k) != nullptr; };
  if (method == "root") {
    if (!kw.empty())
      throw usage_error("root users take no parameters, got " + python_repr(value(kw)));
    return;
  }
  if (initial && !has("name")) throw usage_error("a " + method + " user needs name=NAME");
  if (const value* n = map_find(kw, "name")) {
    if (!n->is_str() || !std::regex_match(n->as_str(), name_pattern()))
      throw usage_error("name " + python_repr(*n) +
                        " must be a letter followed by letters, digits or '_'");
  }
  if (method == "_test") {
    for (const auto& [k, v] : kw)
      if (!(k.is_str() && k.as_str() == "name"))
        throw usage_error("_test users take only name=NAME, not " + python_repr(k));
    return;
  }
  if (initial && !has("password"))
    throw usage_error("a password user needs password=SECRET (or password? to be asked)");
  if (const value* p = map_find(kw, "password")) {
    if (!p->is_str())
      throw usage_error("the password must be a string (" + python_repr(*p) +
                        " reads as a number; use password? to be asked for it)");
    if (p->as_str().size() < 5) throw usage_error("the password must have at least 5 characters");
  }
}

std::string user_ident(const std::string& method, const map& kw) {
  if (method == "root") return "*";
  const value* n = map_find(kw, "name");
  return n && n->is_str() ? n->as_str() : std::string();
}

// auth_set of a user record; `chain` nil = must be new.
value send_user(client_connection& c, const std::string& method, const map& kw,
                const value& chain) {
  std::string ident = user_ident(method, kw);
  if (method == "password") {
    map msg{{"ident", ident}, {"typ", method}, {"kind", "user"}, {"chain", chain}};
    if (const value* p = map_find(kw, "password"))
      msg.emplace_back("password", bin{auth::wrap_password(ensure_session_key(c), p->as_str())});
    return c.request("auth_set", std::move(msg));
  }
  return c.request(
      "auth_set",
      {{"typ", method}, {"kind", "user"}, {"ident", ident}, {"chain", chain}, {"data", map{}}});
}

// What `user get` shows and `user mod` starts from: the original's maker `export()`.
map export_user(const std::string& method, const std::string& ident) {
  if (method == "root") return {};
  return {{"name", ident}};
}

void print_reply_with_ident(const value& reply, const std::string& ident) {
  value out = without_keys(reply, {"seq"});
  if (out.is_map()) map_set(out.as_map(), value("ident"), value(ident));
  std::cout << yaml_dump(out);
}

void add_or_modify(const global_options& g, const auth_options& o, client_connection& c,
                   const std::optional<std::string>& modify) {
  std::string method = required_method(c, o);
  map kw;
  value old_chain;
  if (modify) {
    value r = c.request("auth_get",
                        {{"typ", method}, {"kind", "user"}, {"ident", *modify}, {"nchain", 2}});
    if (const value* ch = r.find("chain")) old_chain = *ch;
    kw = export_user(method, *modify);
  }
  for (const auto& a : o.args) split_arg(a, kw, terminal_prompt);
  validate_user(method, kw, !modify);
  std::string ident = user_ident(method, kw);
  bool renamed = !modify || ident != *modify;
  if (modify && renamed && method == "password" && !map_find(kw, "password"))
    throw usage_error("renaming a password user needs password=… (the node keeps only a hash)");
  value reply = send_user(c, method, kw, renamed ? value() : old_chain);
  if (g.metadata)
    print_reply_with_ident(reply, ident);
  else
    std::cout << ident << "\n";
}

void user_param(const global_options& g, const auth_options& o, client_connection& c) {
  std::string method = required_method(c, o);
  // The original writes below any IDENT; a record below a missing user would create a user
  // entry without data, which the node may then count as "this method has users".
  try {
    c.request("auth_get", {{"typ", method}, {"kind", "user"}, {"ident", o.ident}, {"nchain", 0}});
  } catch (const server_error& e) {
    if (!std::string_view(e.what()).starts_with("KeyError")) throw;
    throw usage_error("There is no " + method + " user '" + o.ident + "'");
  }
  value path = value::make_path(
      {value("auth"), value(method), value("user"), value(o.ident), value(o.type)});
  value r = c.request("get_internal", {{"path", path}, {"nchain", 3}});
  const value* old = r.find("value");
  value chain = r.find("chain") ? *r.find("chain") : value();
  map kw;
  if (o.fresh || !old || !old->is_map())
    chain = value();  // a new record: must not exist yet
  else
    kw = old->as_map();
  value reply;
  if (o.key == "-") {
    if (!o.args.empty()) throw usage_error("You can't set params when deleting");
    reply = c.request("delete_internal", {{"path", path}, {"chain", chain}});
  } else {
    map_set(kw, value("key"), value(o.key));
    for (const auto& a : o.args) split_arg(a, kw, terminal_prompt);
    reply = c.request("set_internal", {{"path", path}, {"value", kw}, {"chain", chain}});
  }
  if (g.metadata)
    std::cout << yaml_dump(without_keys(reply, {"seq"}));
  else
    std::cout << o.ident << " " << o.type << " " << o.key << "\n";
}

}  // namespace

void add_auth_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<auth_options>();
  auto* auth = app.add_subcommand(
      "auth", "Manage logins: auth methods, users and their parameters (ACL, converters)");
  auth->add_option("-m,--method", o->method,
                   "Auth method to work on (root, password, _test; '-' = none, for init). "
                   "Default: the node's current method, else the only configured one");
  auth->require_subcommand(1);

  auto* list =
      auth->add_subcommand("list", "List the configured auth methods (with -m: just that method)");
  list->callback([&g, o] {
    auto c = g.connect();
    if (o->method) {
      std::cout << *o->method << "\n";
      return;
    }
    for (const auto& m : configured_methods(*c)) std::cout << m << "\n";
  });

  auto* init = auth->add_subcommand(
      "init", "Require logins with the method (-m - turns logins off); new connections only");
  init->add_flag("-s,--switch", o->switch_method, "Switch even though a method is already active");
  init->callback([&g, o] {
    auto c = g.connect();
    auto current = current_method(*c);
    if (current && !o->switch_method)
      throw usage_error("Authentication is already set up (method " + *current +
                        "); use init -s to switch");
    auto method = chosen_method(*c, *o);
    if (method) {
      bool any = false;
      for_each_user(*c, *method, 0, [&](const value&) { any = true; });
      if (!any)
        throw usage_error("The method " + *method + " has no users yet: add one first (moatkv " +
                          "auth -m " + *method + " user add …), or nobody could log in");
    }
    c->request("set_auth_typ", {{"typ", method ? value(*method) : value()}});
    if (method)
      std::cout << "Authorization switched to " << *method << "\n";
    else
      std::cout << "Authorization turned off.\n";
  });

  auto* user = auth->add_subcommand("user", "Manage users of the method");
  user->require_subcommand(1);

  auto* ulist = user->add_subcommand("list", "List the users (names; -v or -m: the records)");
  ulist->add_flag("-v,--verbose", o->verbose, "Print the complete records");
  ulist->callback([&g, o] {
    auto c = g.connect();
    std::string method = required_method(*c, *o);
    bool first = true;
    for_each_user(*c, method, g.metadata ? 3 : 0, [&](const value& r) {
      if (g.metadata || o->verbose) {
        if (!first) std::cout << "---\n";
        std::cout << yaml_dump(without_keys(r, {"seq", "wseq", "tock"}));
      } else if (const value* id = r.find("ident")) {
        std::cout << (id->is_str() ? id->as_str() : python_repr(*id)) << "\n";
      }
      first = false;
    });
  });

  auto* get = user->add_subcommand("get", "Show a user (fails if there is none)");
  get->add_option("IDENT", o->ident, "The user's name ('*' for root)")->required();
  get->callback([&g, o] {
    auto c = g.connect();
    std::string method = required_method(*c, *o);
    value r = c->request("auth_get",
                         {{"typ", method}, {"kind", "user"}, {"ident", o->ident}, {"nchain", 2}});
    map out = export_user(method, o->ident);
    if (g.metadata)
      if (const value* ch = r.find("chain")) out.emplace_back("chain", *ch);
    std::cout << yaml_dump(value(std::move(out)));
  });

  auto* add =
      user->add_subcommand("add",
                           "Add a user: root: no parameters; password: name=NAME password=SECRET "
                           "(password? asks without echo); _test: name=NAME");
  add->add_option("ARGS", o->args, "KEY=VALUE, KEY? or KEY?=PROMPT");
  add->callback([&g, o] {
    auto c = g.connect();
    add_or_modify(g, *o, *c, std::nullopt);
  });

  auto* mod = user->add_subcommand(
      "mod", "Change a user (password=NEW sets a new password; name=NEW copies it to a new name)");
  mod->add_option("IDENT", o->ident, "The user's name ('*' for root)")->required();
  mod->add_option("ARGS", o->args, "KEY=VALUE, KEY? or KEY?=PROMPT");
  mod->callback([&g, o] {
    auto c = g.connect();
    add_or_modify(g, *o, *c, o->ident);
  });

  auto* param = user->add_subcommand(
      "param",
      "Set a user's parameter record TYPE (acl: the ACL to apply, '*' = none; conv: "
      "the converter group) to {key: KEY, K: V…}; KEY '-' deletes it. Takes effect at "
      "the next login");
  param->add_flag("-n,--new", o->fresh, "Ignore the previous content of the record");
  param->add_option("IDENT", o->ident, "The user's name")->required();
  param->add_option("TYPE", o->type, "The parameter record: acl, conv")->required();
  param->add_option("KEY", o->key, "Its key (an ACL name, a converter group; '-' deletes)")
      ->required();
  param->add_option("ARGS", o->args, "More KEY=VALUE pairs for the record");
  param->callback([&g, o] {
    auto c = g.connect();
    user_param(g, *o, *c);
  });

  auto* uauth = user->add_subcommand(
      "auth", "Test a login on this connection without changing it (prints OK. with -v)");
  uauth->add_option("-a,--auth", o->test_auth,
                    "The login to test: 'METHOD k=v …' or '=FILE' (default: root)");
  uauth->callback([&g, o] {
    auth_spec spec = parse_auth_spec(o->test_auth);
    auto c = g.connect();
    authenticate(*c, spec);
    if (g.verbose > 0) std::cout << "OK.\n";
  });
}

}  // namespace moatkv
