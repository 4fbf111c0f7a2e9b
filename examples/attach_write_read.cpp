// attach_write_read: the blocking C++ client of a node's remote actor interface
// (transport/remote_client.hpp) in a few lines. It attaches, writes some values under PREFIX,
// reads each back, lists the subtree and exits 0; 1 if anything failed.
//
//   usage: attach_write_read HOST PORT [PREFIX]      (PREFIX defaults to `example`)
//
// remote_client runs its own small actor system, so a program needs no CAF code of its own;
// watch_reactor.cpp shows the same interface used from an actor.
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "messages/path_syntax.hpp"
#include "transport/remote_client.hpp"

using namespace moatkv;

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: attach_write_read HOST PORT [PREFIX]" << std::endl;
    return 2;
  }
  try {
    const value prefix = parse_path(argc == 4 ? argv[3] : "example");
    auto under = [&](array rest) {
      array elems = prefix.elements();
      elems.insert(elems.end(), rest.begin(), rest.end());
      return value::make_path(std::move(elems));
    };
    const std::vector<std::pair<value, value>> entries = {
        {under({"answer"}), 42},
        {under({"greeting"}), "hello"},
        {under({"nested", "list"}), array{1, 2.5, "three"}},
    };

    // Every request has a timeout (10 s by default): nothing here can hang on a dead node.
    remote_client kv(argv[1], static_cast<uint16_t>(std::stoul(argv[2])));
    if (const value* node = kv.greeting().find("node"))
      std::cout << "attached to node " << debug_string(*node) << std::endl;

    for (const auto& [path, v] : entries) {
      kv.set(path, v);
      std::cout << "set " << format_path(path) << " = " << debug_string(v) << std::endl;
    }
    for (const auto& [path, v] : entries) {
      value reply = kv.get(path);  // {value, tock}, or {} when the entry has no value
      const value* got = reply.find("value");
      std::cout << "get " << format_path(path) << " -> "
                << (got ? debug_string(*got) : "(no value)") << std::endl;
      if (!got || *got != v) {
        std::cerr << "read back something else than was written" << std::endl;
        return 1;
      }
    }
    // get_tree: one record per entry, with its full path, in tree order.
    std::cout << "tree of " << format_path(prefix) << ":" << std::endl;
    const value tree = kv.get_tree(prefix);  // kept: a loop over a temporary's member dangles
    for (const value& rec : tree.as_array()) {
      const value* p = rec.find("path");
      const value* v = rec.find("value");
      if (p && v) std::cout << "  " << format_path(*p) << " = " << debug_string(*v) << std::endl;
    }
  } catch (const std::exception& e) {  // client_error, server_error, a bad argument
    std::cerr << "attach_write_read: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
