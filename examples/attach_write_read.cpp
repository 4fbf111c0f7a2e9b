// attach_write_read: the C++ client library (transport/kv_client.hpp) in a few lines, attached
// to a node's remote actor interface. It writes some values under PREFIX, reads each back,
// lists the subtree and exits 0; 1 if anything failed.
//
//   usage: attach_write_read HOST PORT [PREFIX] [TRANSPORT]
//          PREFIX defaults to `example`; TRANSPORT is `caf` (default: PORT is the node's
//          kv.server.remote.port) or `msgpack` (PORT is its client port) — the same code runs
//          over both.
//
// The client runs its own I/O thread (and, over caf, a small actor system), so a program needs
// no CAF code of its own; watch_reactor.cpp shows the remote interface used from an actor.
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/path_syntax.hpp"
#include "transport/kv_client.hpp"

using namespace moatkv;

int main(int argc, char** argv) {
  std::optional<client_transport> transport = parse_client_transport(argc >= 5 ? argv[4] : "caf");
  if (argc < 3 || argc > 5 || !transport) {
    std::cerr << "usage: attach_write_read HOST PORT [PREFIX] [caf|msgpack]" << std::endl;
    return 2;
  }
  try {
    const value prefix = parse_path(argc >= 4 ? argv[3] : "example");
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
    kv_client_options opts;
    opts.transport = *transport;
    opts.host = argv[1];
    opts.port = static_cast<uint16_t>(std::stoul(argv[2]));
    kv_client kv(opts);
    const value greeting = kv.greeting();  // a copy: the client may reconnect meanwhile
    if (const value* node = greeting.find("node"))
      std::cout << "attached to node " << debug_string(*node) << std::endl;

    for (const auto& [path, v] : entries) {
      kv.set(path, v);
      std::cout << "set " << format_path(path) << " = " << debug_string(v) << std::endl;
    }
    for (const auto& [path, v] : entries) {
      value reply = kv.get(path);  // {value, tock}, or {tock} when the entry has no value
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
    for (const value& rec : kv.get_tree(prefix)) {
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
