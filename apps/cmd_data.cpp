// `moatkv data PATH [get|set|delete|list|monitor]`: the original's `moat kv data` commands
// (batteries.md §8.1, output §8.4). They talk to the node through the client library
// (transport/kv_client.hpp) over --transport: msgpack or the remote actor interface (caf), with
// the same output for both.
#include <algorithm>
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "apps/yaml_output.hpp"
#include "messages/literal.hpp"
#include "messages/path_syntax.hpp"
#include "transport/client_connection.hpp"
#include "transport/kv_client.hpp"

namespace moatkv {

namespace {

struct data_options {
  std::string path;
  // get / list
  bool recursive = false;
  std::optional<std::string> as_dict;
  std::optional<int64_t> max_depth, min_depth;
  // set
  std::vector<std::string> set_str, set_eval, set_path;  // flattened NAME VALUE pairs
  // monitor
  bool state = false;
};

// Every data command talks to the node through the client library, over --transport. One-shot
// commands do not reconnect: a lost connection is an error (exit 1), as is a lost monitor.
std::unique_ptr<kv_client> connect(const global_options& g) {
  kv_client_options opts = g.client_library_options(g.config());
  opts.reconnect = false;
  return std::make_unique<kv_client>(std::move(opts));
}

// A record's path relative to the request's `base` (the library hands back full paths).
value relative_path(const value& msg, const array& base) {
  const value* p = msg.find("path");
  if (!p || !p->is_sequence())
    throw client_error("the server sent a record without a path: " + debug_string(msg));
  const array& full = p->elements();
  if (full.size() < base.size() || !std::equal(base.begin(), base.end(), full.begin()))
    throw client_error("the server sent a path outside the request: " + debug_string(*p));
  return value::make_path(
      array(full.begin() + static_cast<std::ptrdiff_t>(base.size()), full.end()));
}

void print_value(const global_options& g, const value& path, kv_client& c) {
  value reply = c.request("get_value", {{"path", path}, {"nchain", g.metadata ? 3 : 0}});
  if (g.metadata) {
    std::cout << yaml_dump(without_keys(reply, {"seq"}));
    return;
  }
  const value* v = reply.find("value");
  if (!v) {
    std::cerr << "No data at " << format_path(path) << "\n";
    command_status = 1;
    return;
  }
  std::cout << yprint(*v);
}

void get_recursive(const global_options& g, const data_options& o, const value& path, kv_client& c,
                   bool list) {
  map params{{"path", path}, {"nchain", g.metadata ? 3 : 0}};
  if (list) {
    params.emplace_back("min_depth", o.min_depth.value_or(1));
    params.emplace_back("max_depth", o.max_depth.value_or(1));
    params.emplace_back("empty", true);
  } else {
    if (o.max_depth) params.emplace_back("max_depth", *o.max_depth);
    if (o.min_depth) params.emplace_back("min_depth", *o.min_depth);
  }
  const array& base = path.elements();
  map nested;  // -d KEY
  c.stream("get_tree", std::move(params), [&](const value& msg) {
    value rel = relative_path(msg, base);
    const value* v = msg.find("value");
    value shown =
        g.metadata ? without_keys(msg, {"seq", "wseq", "path", "depth"}) : (v ? *v : value());
    if (list && !o.as_dict) {
      std::cout << format_path(rel) << "\n";
      return true;
    }
    if (!g.metadata && !v && !list) return true;
    if (o.as_dict) {
      map* cur = &nested;
      for (const auto& e : rel.elements()) {
        const value* child = map_find(*cur, e);
        if (!child) {
          cur->emplace_back(e, map{});
          child = &cur->back().second;
        }
        if (!child->is_map()) return true;  // a value where a subtree should be: skip
        cur = &const_cast<value*>(child)->as_map();
      }
      if (v || g.metadata) map_set(*cur, value(*o.as_dict), shown);
      return true;
    }
    std::cout << yaml_dump(value(array{value(map{{rel, shown}})}));
    std::cout.flush();
    return true;
  });
  if (o.as_dict) std::cout << yaml_dump(value(std::move(nested)));
}

// Apply NAME=VALUE edits to `current` (NAME is a path inside the value; `:` is the whole value).
// Returns nullopt when the result is "nothing" (then the entry is deleted).
std::optional<value> apply_edits(std::optional<value> current,
                                 const std::vector<std::pair<value, std::optional<value>>>& edits) {
  for (const auto& [name, val] : edits) {
    const array& keys = name.elements();
    if (keys.empty()) {
      current = val;
      continue;
    }
    if (!current || !current->is_map()) current = value(map{});
    map* cur = &current->as_map();
    for (size_t i = 0; i + 1 < keys.size(); ++i) {
      value* child = const_cast<value*>(map_find(*cur, keys[i]));
      if (!child || !child->is_map()) {
        map_set(*cur, keys[i], map{});
        child = const_cast<value*>(map_find(*cur, keys[i]));
      }
      cur = &child->as_map();
    }
    if (val) {
      map_set(*cur, keys.back(), *val);
    } else {
      for (auto it = cur->begin(); it != cur->end(); ++it)
        if (it->first == keys.back()) {
          cur->erase(it);
          break;
        }
    }
  }
  return current;
}

void set_value(const global_options& g, const data_options& o, const value& path, kv_client& c) {
  std::vector<std::pair<value, std::optional<value>>> edits;
  auto pairs = [](const std::vector<std::string>& flat, auto conv) {
    std::vector<std::pair<value, std::optional<value>>> out;
    for (size_t i = 0; i + 1 < flat.size(); i += 2)
      out.emplace_back(parse_path(flat[i]), conv(flat[i + 1]));
    return out;
  };
  for (auto& e :
       pairs(o.set_str, [](const std::string& s) { return std::optional<value>(value(s)); }))
    edits.push_back(e);
  for (auto& e : pairs(o.set_eval, [](const std::string& s) {
         return s == "-" ? std::nullopt : std::optional<value>(parse_literal(s));
       }))
    edits.push_back(e);
  for (auto& e :
       pairs(o.set_path, [](const std::string& s) { return std::optional<value>(parse_path(s)); }))
    edits.push_back(e);
  if (edits.empty()) throw CLI::ValidationError("set", "give at least one of -v, -e, -p");

  value cur = c.request("get_value", {{"path", path}, {"nchain", 2}});
  std::optional<value> current;
  if (const value* v = cur.find("value")) current = *v;
  // A deleted entry keeps its chain as a tombstone, but for a write it is new: chain nil.
  value chain = current && cur.find("chain") ? *cur.find("chain") : value();
  std::optional<value> next = apply_edits(current, edits);
  int nchain = g.metadata ? 3 : 0;
  value reply =
      next ? c.request("set_value",
                       {{"path", path}, {"value", *next}, {"nchain", nchain}, {"chain", chain}})
           : c.request("delete_value", {{"path", path}, {"nchain", nchain}, {"chain", chain}});
  if (g.metadata) std::cout << yaml_dump(without_keys(reply, {"seq"}));
}

void delete_value(const global_options& g, const data_options& o, const value& path, kv_client& c) {
  int nchain = g.metadata ? 3 : 0;
  if (!o.recursive) {
    value reply = c.request("delete_value", {{"path", path}, {"nchain", nchain}});
    if (g.metadata) std::cout << yaml_dump(without_keys(reply, {"seq"}));
    return;
  }
  map opts;
  if (nchain != 0) opts.emplace_back("nchain", nchain);
  std::vector<value> records = c.remove_tree(path, std::move(opts));
  if (!g.metadata) {
    // Without nchain the node sends one {changed: N}.
    for (const value& r : records) std::cout << yaml_dump(without_keys(r, {"seq"}));
    return;
  }
  // -m: a record per deleted entry (chain, old_value, tock), as `get -r -m` prints them.
  const array& base = path.elements();
  array out;
  for (const value& r : records) {
    if (!r.find("path")) {
      out.push_back(without_keys(r, {"seq"}));
      continue;
    }
    out.push_back(
        value(map{{relative_path(r, base), without_keys(r, {"seq", "wseq", "path", "depth"})}}));
  }
  std::cout << yaml_dump(value(std::move(out)));
}

// Prints each watch message as a YAML document ending in `---`: {path, value} (-m: with chain
// and tock; the path in full), or {state: uptodate}. Runs until interrupted; when the
// connection is lost, or the node ends the watch, it fails (exit 1).
void monitor(const global_options& g, const data_options& o, const value& path, kv_client& c) {
  std::unique_ptr<kv_client::watch> w =
      c.watch_tree(path, {{"nchain", g.metadata ? 3 : 0}, {"fetch", o.state}, {"max_depth", -1}});
  for (;;) {
    std::optional<value> msg = w->next(std::chrono::milliseconds(500));
    if (!msg) {
      if (w->ended() || !c.connected()) throw client_error("the connection to the node was lost");
      continue;
    }
    map out;
    if (const value* s = msg->find("state")) {
      if (s->is_str() && s->as_str() == "end") {
        const value* err = msg->find("error");
        std::string text = !err            ? "the node ended the watch"
                           : err->is_str() ? err->as_str()
                                           : debug_string(*err);
        // Without reconnecting, a lost connection ends the watch with its reason.
        if (!c.connected()) throw client_error(text);
        throw server_error(text);
      }
      if (s->is_str() && s->as_str() == "start") continue;
      out.emplace_back("state", *s);
    } else {
      const value* p = msg->find("path");
      out.emplace_back("path", value::make_path(p && p->is_sequence() ? p->elements() : array{}));
      for (const char* k : {"value", "chain", "tock"})
        if (const value* v = msg->find(k); v && (g.metadata || std::string(k) == "value"))
          out.emplace_back(k, *v);
    }
    std::cout << yaml_dump(value(std::move(out))) << "---" << std::endl;
  }
}

}  // namespace

void add_data_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<data_options>();
  auto* data =
      app.add_subcommand("data", "Read and write entries (without a subcommand: print the value)");
  data->add_option("PATH", o->path, "Path of the entry, e.g. a.b.c or : for the root")->required();
  data->require_subcommand(0, 1);

  auto* get = data->add_subcommand("get", "Print the value (-r: the whole subtree)");
  get->add_flag("-r,--recursive", o->recursive, "Print the subtree below PATH");
  get->add_option("-d,--as-dict", o->as_dict, "With -r: print a nested map, values under KEY");
  get->add_option("-m,--maxdepth", o->max_depth, "With -r: at most this many levels below PATH");
  get->add_option("-M,--mindepth", o->min_depth, "With -r: at least this many levels below PATH");

  auto* list = data->add_subcommand("list", "List the children of PATH");
  list->add_option("-d,--as-dict", o->as_dict, "Print a nested map, values under KEY");
  list->add_option("-m,--maxdepth", o->max_depth, "At most this many levels (default 1)");
  list->add_option("-M,--mindepth", o->min_depth, "At least this many levels (default 1)");

  auto* set = data->add_subcommand(
      "set", "Change the value (NAME ':' is the whole value, else a key path inside it)");
  set->add_option("-v,--value", o->set_str, "NAME STR: set NAME to the string STR")
      ->expected(2)
      ->allow_extra_args(false);
  set->add_option(
         "-e,--eval", o->set_eval,
         "NAME LITERAL: set NAME to a literal (123, 'x', (1,2), {'a': 1}); '-' deletes NAME")
      ->expected(2)
      ->allow_extra_args(false);
  set->add_option("-p,--path", o->set_path, "NAME PATH: set NAME to a Path")
      ->expected(2)
      ->allow_extra_args(false);

  auto* del = data->add_subcommand("delete", "Delete the value (-r: every value in the subtree)");
  del->add_flag("-r,--recursive", o->recursive, "Delete every value below PATH too");

  auto* mon = data->add_subcommand(
      "monitor",
      "Print changes below PATH as they happen, until interrupted (exit 1 if the connection to "
      "the node is lost: no reconnect)");
  mon->add_flag("-s,--state", o->state, "First print the current state, then 'uptodate'");

  data->callback([&g, o, get, list, set, del, mon] {
    value path = parse_path(o->path);
    auto c = connect(g);
    if (get->parsed() && o->recursive)
      get_recursive(g, *o, path, *c, false);
    else if (list->parsed())
      get_recursive(g, *o, path, *c, true);
    else if (set->parsed())
      set_value(g, *o, path, *c);
    else if (del->parsed())
      delete_value(g, *o, path, *c);
    else if (mon->parsed())
      monitor(g, *o, path, *c);
    else
      print_value(g, path, *c);
  });
}

}  // namespace moatkv
