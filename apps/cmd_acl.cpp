// `moatkv acl …`: the original's `moat kv acl` (moat/kv/command/acl.py, batteries.md §2, §8.1).
//
// An ACL NAME is the tree below (None,"acl",NAME); each entry's value is a string of flags from
// `rwdcxena` (§2.1), path elements may be the wildcards `+` / `#` (§0.3). A user is bound to an
// ACL with `moatkv auth user param IDENT acl NAME` (effective at the next login). The commands
// use the internal actions with paths relative to the meta root: ("acl", NAME, *PATH).
//
// Deliberate differences from the original:
//   * `set -a +xy` adds the flags (the original crashes: it adds two Python sets);
//   * `set -a -` deletes the entry (unreachable in the original, which treats a lone '-' as an
//     unknown flag); `set -a +` leaves the flags as they are;
//   * flag order: the old flags keep their order and added ones follow in the order given (the
//     original prints Python set order, i.e. an arbitrary one);
//   * `list` on a node without any ACL prints `[]` rather than the server's KeyError;
//   * `get` and `set` accept the empty path `:`, the ACL's root entry (None,"acl",NAME): its
//     flags apply to the first path element. The original refuses it, and needs it less: there
//     a position without a matching entry allows everything, while our nodes deny it
//     (acl_matcher.hpp), so an ACL needs e.g. `acl set -a x NAME :` to let its user in at all.
#include <iostream>

#include <CLI/CLI.hpp>

#include "actors/tree_store/depth_compression.hpp"
#include "apps/commands.hpp"
#include "apps/yaml_output.hpp"
#include "messages/path_syntax.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

namespace {

constexpr std::string_view acl_flags = "rwdcxena";

struct acl_options {
  std::string name, path;
  std::string modes = "+x";             // set -a
  std::optional<std::string> mode;      // test -m
  std::optional<std::string> test_acl;  // test -a
  std::optional<std::string> as_dict;   // dump -d
};

array nonempty_path(const std::string& text) {
  array p = parse_path(text).elements();
  if (p.empty()) throw usage_error("You need a non-empty path.");
  return p;
}

// ("acl", NAME, *path) as the internal actions take it.
value acl_path(const std::string& name, const array& path) {
  array full{value("acl"), value(name)};
  full.insert(full.end(), path.begin(), path.end());
  return value::make_path(std::move(full));
}

// Checks MODES' letters; returns them without duplicates, in the order given.
std::string checked_flags(std::string_view letters) {
  std::string out, bad;
  for (char ch : letters) {
    if (acl_flags.find(ch) == std::string_view::npos) {
      if (bad.find(ch) == std::string::npos) bad.push_back(ch);
    } else if (out.find(ch) == std::string::npos) {
      out.push_back(ch);
    }
  }
  if (!bad.empty())
    throw usage_error("You're trying to set an unknown ACL flag: '" + bad +
                      "' (known: " + std::string(acl_flags) + ")");
  return out;
}

void list_acls(const global_options& g, client_connection& c) {
  value r;
  try {
    r = c.request("enum_internal", {{"path", value::make_path({value("acl")})},
                                    {"nchain", g.metadata ? 3 : 0},
                                    {"empty", true}});
  } catch (const server_error& e) {
    if (!std::string_view(e.what()).starts_with("KeyError")) throw;
    r = value(map{{"result", array{}}});
  }
  if (g.metadata) {
    std::cout << yaml_dump(without_keys(r, {"seq", "wseq"}));
    return;
  }
  const value* res = r.find("result");
  std::cout << yaml_dump(res ? *res : value(array{}));
}

void get_acl(const global_options& g, const acl_options& o, client_connection& c) {
  value r = c.request("get_internal", {{"path", acl_path(o.name, parse_path(o.path).elements())},
                                       {"nchain", g.metadata ? 3 : 0}});
  if (g.metadata) {
    std::cout << yaml_dump(without_keys(r, {"seq", "wseq"}));
    return;
  }
  const value* v = r.find("value");
  if (!v) {
    if (g.verbose > 0) std::cerr << "No value.\n";
    return;
  }
  std::cout << yprint(*v);
}

void set_acl(const global_options& g, const acl_options& o, client_connection& c) {
  value path = acl_path(o.name, parse_path(o.path).elements());
  char mode = 'x';  // replace
  std::string_view letters = o.modes;
  if (!letters.empty() && (letters[0] == '+' || letters[0] == '-')) {
    mode = letters[0];
    letters.remove_prefix(1);
  }
  std::string flags = checked_flags(letters);

  value r = c.request("get_internal", {{"path", path}, {"nchain", g.metadata ? 3 : 1}});
  const value* ov = r.find("value");
  std::string old = ov && ov->is_str() ? ov->as_str() : std::string();
  for (char ch : old)
    if (acl_flags.find(ch) == std::string_view::npos) {
      std::cerr << "Warning: the ACL entry contains an unknown flag: '" << ch << "'\n";
      break;
    }
  value chain = r.find("chain") ? *r.find("chain") : value();

  std::string now;
  value reply;
  if (mode == '-' && flags.empty()) {
    reply = c.request("delete_internal", {{"path", path}, {"chain", chain}});
    now = "-";
  } else {
    if (mode == '+') {
      now = old;
      for (char ch : flags)
        if (now.find(ch) == std::string::npos) now.push_back(ch);
    } else if (mode == '-') {
      for (char ch : old)
        if (flags.find(ch) == std::string::npos) now.push_back(ch);
    } else {
      now = flags;
    }
    reply = c.request("set_internal", {{"path", path}, {"value", now}, {"chain", chain}});
  }
  map out{{"old", old}, {"new", now}};
  if (g.metadata) {
    out.emplace_back("chain", reply.find("chain") ? *reply.find("chain") : value());
    out.emplace_back("tock", reply.find("tock") ? *reply.find("tock") : value());
  }
  std::cout << yaml_dump(value(std::move(out)));
}

void test_acl(const global_options& g, const acl_options& o, client_connection& c) {
  array path = nonempty_path(o.path);
  if (o.mode && o.mode->size() != 1) throw usage_error("Mode must be one letter.");
  map params{{"path", value::make_path(std::move(path))}, {"nchain", g.metadata ? 3 : 0}};
  if (o.mode) params.emplace_back("mode", *o.mode);
  if (o.test_acl) params.emplace_back("acl", *o.test_acl);
  value r = c.request("test_acl", std::move(params));
  if (g.metadata) {
    std::cout << yaml_dump(without_keys(r, {"seq", "wseq"}));
    return;
  }
  const value* a = r.find("access");
  if (!a) throw client_error("the server's test_acl reply has no 'access': " + debug_string(r));
  if (a->is_bool())
    std::cout << (a->as_bool() ? "+" : "-") << "\n";
  else
    std::cout << (a->is_str() ? a->as_str() : python_repr(*a)) << "\n";
}

// The whole ACL (or the part below PATH), printed as `data get -r` prints a subtree.
void dump_acl(const global_options& g, const acl_options& o, client_connection& c) {
  array path = parse_path(o.path).elements();
  value base = acl_path(o.name, path);
  path_longener longener;
  map nested;
  c.stream("get_tree_internal", {{"path", base}, {"nchain", g.metadata ? 3 : 0}},
           [&](const value& msg) {
             array rel;
             const value* p = msg.find("path");
             if (!longener.expand(p && p->is_sequence() ? p->elements() : array{},
                                  int_field(msg, "depth", 0), rel))
               throw client_error("the server sent a depth beyond the previous path");
             const value* v = msg.find("value");
             if (!v && !g.metadata) return true;
             value shown = g.metadata ? without_keys(msg, {"seq", "wseq", "path", "depth"}) : *v;
             if (!o.as_dict) {
               std::cout << yaml_dump(
                   value(array{value(map{{value::make_path(std::move(rel)), shown}})}));
               return true;
             }
             map* cur = &nested;
             for (const auto& e : rel) {
               const value* child = map_find(*cur, e);
               if (!child) {
                 cur->emplace_back(e, map{});
                 child = &cur->back().second;
               }
               if (!child->is_map()) return true;
               cur = &const_cast<value*>(child)->as_map();
             }
             map_set(*cur, value(*o.as_dict), shown);
             return true;
           });
  if (o.as_dict) std::cout << yaml_dump(value(std::move(nested)));
}

}  // namespace

void add_acl_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<acl_options>();
  auto* acl = app.add_subcommand(
      "acl",
      "Manage ACLs: named trees of flag strings from 'rwdcxena' (bind one to a user "
      "with 'auth user param IDENT acl NAME')");
  acl->require_subcommand(1);

  auto* list = acl->add_subcommand("list", "List the ACL names");
  list->callback([&g] {
    auto c = g.connect();
    list_acls(g, *c);
  });

  auto* get = acl->add_subcommand(
      "get", "Print the flags stored at NAME PATH (no matching; see 'acl test')");
  get->add_option("NAME", o->name, "The ACL")->required();
  get->add_option("PATH", o->path,
                  "The entry (P() syntax; + and # are wildcards; ':' is the ACL's root entry)")
      ->required();
  get->callback([&g, o] {
    auto c = g.connect();
    get_acl(g, *o, *c);
  });

  auto* set = acl->add_subcommand("set", "Set or change the flags at NAME PATH");
  set->add_option("-a,--acl", o->modes,
                  "Flags from rwdcxena: '+xy' adds, '-xy' removes, anything else replaces; "
                  "'-' deletes the entry (default: +x)");
  set->add_option("NAME", o->name, "The ACL")->required();
  set->add_option("PATH", o->path,
                  "The entry (P() syntax; + and # are wildcards; ':' is the ACL's root entry, "
                  "whose flags apply to the first path element)")
      ->required();
  set->callback([&g, o] {
    auto c = g.connect();
    set_acl(g, *o, *c);
  });

  auto* test = acl->add_subcommand(
      "test",
      "Check PATH against your ACL (and ACL with -a): prints the matching flags, '+' "
      "(allowed) or '-' (denied)");
  test->add_option("-m,--mode", o->mode, "The flag to test (default: x with -a)");
  test->add_option("-a,--acl", o->test_acl, "Also test this ACL (default: only your own)");
  test->add_option("PATH", o->path, "The data path (P() syntax)")->required();
  test->callback([&g, o] {
    auto c = g.connect();
    test_acl(g, *o, *c);
  });

  auto* dump = acl->add_subcommand("dump", "Print the ACL NAME below PATH (':' for all)");
  dump->add_option("-d,--as-dict", o->as_dict, "Print a nested map, flags under KEY");
  dump->add_option("NAME", o->name, "The ACL")->required();
  dump->add_option("PATH", o->path, "Where to start (P() syntax; ':' = the whole ACL)")->required();
  dump->callback([&g, o] {
    auto c = g.connect();
    dump_acl(g, *o, *c);
  });
}

}  // namespace moatkv
