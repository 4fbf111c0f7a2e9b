// `moatkv log dest [-i] FILE | save [-f] FILE | stop`: the original's `moat kv log` commands.
// The FILE is written by the node, on the node's machine, so a relative name is made absolute
// here: the user means the directory they are in, not the node's.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "apps/yaml_output.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

namespace {

struct log_options {
  std::string file;
  bool incremental = false;
  bool full = false;
};

std::string absolute(const std::string& file) {
  return std::filesystem::absolute(file).lexically_normal().string();
}

void print_result(const global_options& g, const value& reply) {
  if (!g.metadata) return;
  map out;
  for (const auto& [k, v] : reply.as_map())
    if (!(k.is_str() && k.as_str() == "seq")) out.emplace_back(k, v);
  std::cout << yaml_dump(value(std::move(out)));
}

}  // namespace

void add_log_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<log_options>();
  auto* log = app.add_subcommand("log", "Save the node's data to a file, or log its changes");
  log->require_subcommand(1);
  auto connect = [&g] { return g.connect(); };

  auto* dest = log->add_subcommand(
      "dest", "Log every change to FILE (replaces a running log); first the current data");
  dest->add_flag("-i,--incremental", o->incremental,
                 "Do not write the current data first, only a state record and the changes");
  dest->add_option("FILE", o->file, "File on the node's machine")->required();
  dest->callback([&g, o, connect] {
    auto c = connect();
    print_result(g, c->request("log", {{"path", absolute(o->file)}, {"fetch", !o->incremental}}));
  });

  auto* save = log->add_subcommand("save", "Write a snapshot of the node's data to FILE");
  save->add_flag("-f,--full", o->full, "Include the internal data (the meta tree) too");
  save->add_option("FILE", o->file, "File on the node's machine")->required();
  save->callback([&g, o, connect] {
    auto c = connect();
    print_result(g, c->request("save", {{"path", absolute(o->file)}, {"full", o->full}}));
  });

  auto* stop = log->add_subcommand("stop", "Stop logging changes");
  stop->callback([&g, connect] {
    auto c = connect();
    print_result(g, c->request("log", {}));
  });
}

}  // namespace moatkv
