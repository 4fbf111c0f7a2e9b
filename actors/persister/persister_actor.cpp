#include "actors/persister/persister_actor.hpp"

#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/persister/record_file.hpp"
#include "actors/persister/state_dir.hpp"
#include "messages/persist_messages.hpp"

namespace moatkv {

sync_mode parse_sync_mode(const std::string& s) {
  if (s == "ack") return sync_mode::ack;
  if (s == "interval") return sync_mode::interval;
  if (s == "none") return sync_mode::none;
  throw std::invalid_argument("sync mode must be ack, interval or none, not '" + s + "'");
}

namespace {

struct persister_state {
  persister_options opts;
  caf::actor store;
  std::unique_ptr<record_file_writer> state_log;
  std::unique_ptr<record_file_writer> client_log;
  uint64_t written_lsn = 0;  // highest lsn appended to the state log
  uint64_t synced_lsn = 0;   // highest lsn reported as durable
  bool flush_queued = false;
  bool dirty = false;  // appended since the last sync
  // The snapshot being written in parts (snapshot.<gen>.mpk.tmp until complete).
  std::unique_ptr<record_file_writer> snapshot_tmp;
  uint64_t snapshot_gen = 0;
  // Flush the client log after a second of quiet, as the original does.
  bool client_dirty = false;

  persister_state() = default;
  persister_state(const persister_state&) = delete;
  persister_state& operator=(const persister_state&) = delete;
  ~persister_state() {
    // Whatever the OS still buffers goes to disk on a clean stop.
    try {
      if (state_log) state_log->sync();
      if (client_log) client_log->sync();
    } catch (const std::exception& e) {
      spdlog::error("persister: final sync: {}", e.what());
    }
  }
};

using persister_actor = caf::stateful_actor<persister_state>;

void sync_state_log(persister_actor* self) {
  auto& st = self->state;
  if (st.state_log && st.dirty) {
    st.state_log->sync();
    st.dirty = false;
  }
  if (st.written_lsn > st.synced_lsn) {
    st.synced_lsn = st.written_lsn;
    self->send(st.store, persist_synced_atom::value, st.synced_lsn);
  }
}

void sync_client_log(persister_actor* self) {
  auto& st = self->state;
  if (st.client_log && st.client_dirty) st.client_log->sync();
  st.client_dirty = false;
}

// A failed write to the state log ends the actor (and the node, see the header).
template <typename Fn>
void or_die(persister_actor* self, const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::critical("persister: {}: {}", what, e.what());
    self->quit(caf::make_error(caf::sec::runtime_error, std::string(what) + ": " + e.what()));
  }
}

caf::behavior persister_impl(persister_actor* self, persister_options opts, caf::actor store) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.store = std::move(store);
  if (!st.opts.state_dir.empty()) {
    or_die(self, "opening the state log", [&] {
      st.state_log = std::make_unique<record_file_writer>(
          log_file(st.opts.state_dir, st.opts.generation), false);
    });
  }
  // One timer for the interval sync and the client log's idle flush.
  self->delayed_send(self, std::chrono::seconds(1), persist_tick_atom::value);
  return {
      [self](persist_write_atom, int sink, uint64_t lsn, const std::string& bytes) {
        auto& st = self->state;
        if (sink == 1) {
          if (!st.client_log) return;
          try {
            st.client_log->append(bytes);
            st.client_dirty = true;
          } catch (const std::exception& e) {
            // The client log is an extra: stop it, keep the node.
            spdlog::error("persister: client log {}: {}; logging stopped", st.client_log->path(),
                          e.what());
            st.client_log.reset();
          }
          return;
        }
        if (!st.state_log) return;
        or_die(self, "writing the state log", [&] {
          st.state_log->append(bytes);
          st.dirty = true;
        });
        if (lsn > st.written_lsn) st.written_lsn = lsn;
        if (st.opts.sync == sync_mode::ack && !st.flush_queued) {
          // Behind every write already queued: they all share one fdatasync (group commit).
          st.flush_queued = true;
          self->send(self, persist_flush_atom::value);
        }
      },
      [self](persist_flush_atom) {
        self->state.flush_queued = false;
        or_die(self, "syncing the state log", [&] { sync_state_log(self); });
      },
      [self](persist_tick_atom) {
        auto& st = self->state;
        if (st.opts.sync == sync_mode::interval && st.dirty)
          or_die(self, "syncing the state log", [&] { sync_state_log(self); });
        try {
          sync_client_log(self);
        } catch (const std::exception& e) {
          spdlog::error("persister: client log: {}; logging stopped", e.what());
          st.client_log.reset();
        }
        self->delayed_send(self, std::chrono::seconds(1), persist_tick_atom::value);
      },
      [self](persist_rotate_atom, uint64_t gen) {
        // The new log starts before the snapshot it belongs to is complete; until that is on
        // disk, the old snapshot plus both logs are the state (state_dir.hpp).
        auto& st = self->state;
        if (st.opts.state_dir.empty()) return;
        or_die(self, "starting a new log", [&] {
          sync_state_log(self);
          st.state_log =
              std::make_unique<record_file_writer>(log_file(st.opts.state_dir, gen), true);
          st.opts.generation = gen;
        });
      },
      [self](persist_snapshot_atom, uint64_t gen, const std::string& snapshot) {
        auto& st = self->state;
        if (st.opts.state_dir.empty()) return;
        or_die(self, "writing a snapshot", [&] {
          if (!st.snapshot_tmp || st.snapshot_gen != gen) {
            st.snapshot_tmp = std::make_unique<record_file_writer>(
                snapshot_file(st.opts.state_dir, gen) + ".tmp", true);
            st.snapshot_gen = gen;
          }
          st.snapshot_tmp->append(snapshot);
        });
      },
      [self](persist_snapshot_done_atom, uint64_t gen) {
        auto& st = self->state;
        if (st.opts.state_dir.empty() || !st.snapshot_tmp || st.snapshot_gen != gen) return;
        or_die(self, "writing a snapshot", [&] {
          auto t0 = std::chrono::steady_clock::now();
          st.snapshot_tmp->sync();
          std::string tmp = st.snapshot_tmp->path();
          double mb = static_cast<double>(st.snapshot_tmp->size()) / 1e6;
          st.snapshot_tmp.reset();
          rename_durably(tmp, snapshot_file(st.opts.state_dir, gen));
          size_t removed = remove_old_generations(st.opts.state_dir, gen);
          double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          spdlog::info(
              "persister: snapshot {} on disk ({:.1f} MB, synced in {:.2f} s), {} old files "
              "removed",
              gen, mb, secs, removed);
        });
      },
      [self](persist_open_atom, const std::string& path, const std::string& first) -> std::string {
        auto& st = self->state;
        try {
          if (st.client_log) st.client_log->sync();
          st.client_log.reset();
          auto w = std::make_unique<record_file_writer>(path, true);
          w->append(first);
          w->sync();
          st.client_log = std::move(w);
          return {};
        } catch (const std::exception& e) {
          return e.what();
        }
      },
      [self](persist_close_atom) -> bool {
        auto& st = self->state;
        bool had = st.client_log != nullptr;
        try {
          if (st.client_log) st.client_log->sync();
        } catch (const std::exception& e) {
          spdlog::error("persister: client log: {}", e.what());
        }
        st.client_log.reset();
        return had;
      },
      [](persist_save_atom, const std::string& path, const std::string& bytes) -> std::string {
        try {
          write_file_atomically(path, bytes);
          return {};
        } catch (const std::exception& e) {
          return e.what();
        }
      },
      [self](persist_finish_atom) -> bool {
        or_die(self, "syncing the state log", [&] { sync_state_log(self); });
        try {
          sync_client_log(self);
        } catch (const std::exception&) {
        }
        return true;
      },
  };
}

}  // namespace

caf::actor spawn_persister(caf::local_actor* store, persister_options opts) {
  return store->spawn<caf::detached + caf::linked>(persister_impl, std::move(opts),
                                                   caf::actor_cast<caf::actor>(store));
}

}  // namespace moatkv
