// Messages between the tree_store actor and its persister (actors/persister/persister_actor.hpp).
//
//   tree_store -> persister : (persist_write_atom, int sink, uint64 lsn, string bytes)
//                             append encoded records to a sink (0 = state-directory log,
//                             1 = the client-requested log of action `log`); lsn > 0 asks for
//                             a (persist_synced_atom, lsn) once the bytes are on disk
//   persister -> tree_store : (persist_synced_atom, uint64 lsn)  everything up to lsn is durable
//   tree_store -> persister : (persist_rotate_atom, uint64 gen)
//                             switch the state log to log <gen> (snapshot <gen> follows)
//   tree_store -> persister : (persist_snapshot_atom, uint64 gen, string chunk)
//                             append the next part of snapshot <gen> (to a temporary file)
//   tree_store -> persister : (persist_snapshot_done_atom, uint64 gen)
//                             snapshot <gen> is complete: sync it, rename it into place,
//                             then delete older generations
//   tree_store -> tree_store: (persist_step_atom)   the next step of a snapshot in progress
//   tree_store -> persister : (persist_open_atom, string path, string first_records) -> string
//                             start the client log at path ("" = started, else the error)
//   tree_store -> persister : (persist_close_atom) -> bool          stop the client log
//   tree_store -> persister : (persist_save_atom, string path, string bytes) -> string
//                             write a save file atomically ("" = done, else the error)
//   tree_store -> persister : (persist_finish_atom) -> bool   flush and sync all (shutdown)
//   anyone -> tree_store    : (persist_finish_atom) -> bool   flush the store's buffers, then
//                             finish the persister; answered when all is on disk
#pragma once

#include <caf/atom.hpp>

namespace moatkv {

using persist_write_atom = caf::atom_constant<caf::atom("p_write")>;
using persist_synced_atom = caf::atom_constant<caf::atom("p_synced")>;
using persist_rotate_atom = caf::atom_constant<caf::atom("p_rotate")>;
using persist_snapshot_atom = caf::atom_constant<caf::atom("p_snap")>;
using persist_snapshot_done_atom = caf::atom_constant<caf::atom("p_snapend")>;
using persist_step_atom = caf::atom_constant<caf::atom("p_step")>;
using persist_open_atom = caf::atom_constant<caf::atom("p_open")>;
using persist_close_atom = caf::atom_constant<caf::atom("p_close")>;
using persist_save_atom = caf::atom_constant<caf::atom("p_save")>;
using persist_finish_atom = caf::atom_constant<caf::atom("p_finish")>;
using persist_flush_atom = caf::atom_constant<caf::atom("p_flush")>;
using persist_tick_atom = caf::atom_constant<caf::atom("p_tick")>;

}  // namespace moatkv
