// The tree_store actor: the single writer of the tree (ARCHITECTURE.md, "One writer").
//
// It owns one `kv_store` and runs every client request against it in mailbox order, so the
// merge rule and the watch registration need no locks. Sessions register with a hello and get
// their replies and watch events as messages (see messages/node_messages.hpp). It is a broker
// without connections, so it runs on CAF's I/O thread beside the sessions: a client request
// crosses no thread (measured in issue 6). Slow work must therefore stay out of it: crypto runs
// on worker threads, file I/O in the persister, snapshots in steps.
//
// Persistence: it serialises every applied change (local and replicated) into the state log
// and the client-requested log, and hands the bytes to its persister (spawned detached and
// linked; actors/persister/persister_actor.hpp). With `sync ack`, a client's reply to a request
// that changed the tree is held until the persister reports its records on disk; replies that
// follow on the same connection wait behind it, so a client sees its replies in order. The
// actions `save` and `log` are handled here (they need the persister), all others in kv_store.
//
// Replication back-pressure: while the backend bridge reports a backlog of publications (the
// broker takes fewer updates than clients write), request batches that write, and everything
// after them from the same connection, wait here; other connections' reads go on. Without it
// the bridge's queue overflowed under load and dropped updates that anti-entropy then had to
// repair (issue 6: 272 000 of 1 000 000 pipelined sets, and resend storms that stalled the node).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/persister/persister_actor.hpp"
#include "messages/value.hpp"

namespace moatkv {

class kv_store;

struct tree_store_options {
  int64_t client_qlen = 10;  // kv.server.buffer: the qlen offered in the greeting
  /// The state directory's log (empty = none), the generation to append to, sync mode.
  persister_options persist;
  /// kv.server.state.snapshot_interval (s) / snapshot_records: write a new snapshot when
  /// either is reached (and something changed).
  double snapshot_interval = 3600;
  uint64_t snapshot_records = 1'000'000;
  /// kv.server.state.snapshot_step: entries a snapshot visits between two other messages.
  uint64_t snapshot_step = 20'000;
};

/// `store` is ready or not as the caller left it (loaded, initialised, or waiting for a sync).
caf::actor spawn_tree_store(caf::actor_system& sys, tree_store_options opts,
                            std::shared_ptr<kv_store> store);

}  // namespace moatkv
