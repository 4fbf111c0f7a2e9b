// The persister: the one actor that writes the node's files (ARCHITECTURE.md, `persister`).
//
// The tree_store serialises records (it owns the tree) and sends the bytes here; this actor
// runs detached, on its own thread, so that write(2) and fdatasync(2) never stall the single
// writer or the scheduler. Protocol: messages/persist_messages.hpp.
//
// Sync modes of the state-directory log (`--sync`, kv.server.state.sync):
//   ack      a client's change is answered only after its record is on disk. Group commit:
//            the first write that asks for a sync queues a flush message behind itself; all
//            writes that arrive before the flush is processed share its one fdatasync.
//   interval fdatasync at least once a second while there are unsynced writes.
//   none     write(2) only: the records survive a crash of the node, not of the machine.
// A write error on the state log stops this actor, and with it (linked) the tree_store and
// the node: a node that cannot persist must not acknowledge changes.
#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

namespace moatkv {

enum class sync_mode { ack, interval, none };

/// "ack" / "interval" / "none"; throws std::invalid_argument otherwise.
sync_mode parse_sync_mode(const std::string& s);

struct persister_options {
  std::string state_dir;    // "" = no state directory (only save / client logs)
  uint64_t generation = 0;  // the state log to append to: log.<generation>.mpk
  sync_mode sync = sync_mode::ack;
};

/// Spawn detached and linked to `store`, which receives the persist_synced messages.
caf::actor spawn_persister(caf::local_actor* store, persister_options opts);

}  // namespace moatkv
