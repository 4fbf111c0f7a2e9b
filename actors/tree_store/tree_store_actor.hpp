// The tree_store actor: the single writer of the tree (ARCHITECTURE.md, "One writer").
//
// It owns one `kv_store` and runs every client request against it in mailbox order, so the
// merge rule and the watch registration need no locks. Sessions register with a hello and get
// their replies and watch events as messages (see messages/node_messages.hpp).
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "messages/value.hpp"

namespace moatkv {

class tock_clock;

struct tree_store_options {
  std::string node_name;
  int64_t client_qlen = 10;  // kv.server.buffer: the qlen offered in the greeting
  bool standalone = true;    // no backend: ready at once
  bool has_init = false;     // `server -I VALUE`
  value init_value;
};

caf::actor spawn_tree_store(caf::actor_system& sys, tree_store_options opts,
                            std::shared_ptr<tock_clock> clock);

}  // namespace moatkv
