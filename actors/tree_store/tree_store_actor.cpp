#include "actors/tree_store/tree_store_actor.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/auth/login_throttle.hpp"
#include "actors/persister/save_format.hpp"
#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/tree.hpp"
#include "actors/tree_store/wire_util.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/node_messages.hpp"
#include "messages/persist_messages.hpp"

namespace moatkv {

namespace {

// A log file fed with update records: the state directory's log (sink 0) or the log a client
// asked for with action `log` (sink 1). Records collect in `buffer` while one message is
// handled and go to the persister in one piece afterwards.
struct log_sink {
  int id = 0;
  path_shortener shortener;  // one per file (§6)
  std::string buffer;
  uint64_t records_since_state = 0;
  bool state_due = false;  // the periodic state record (60 s), as the original writes it
};

// The original writes a fresh state record every 60 s or after 1000 records.
constexpr uint64_t state_record_every = 1000;
constexpr auto state_record_interval = std::chrono::seconds(60);

struct held_reply {
  uint64_t lsn;
  uint64_t conn;
  int64_t seq;
  action_result result;
};

struct tree_store_state {
  std::shared_ptr<kv_store> store;
  std::unordered_map<uint64_t, caf::actor> sessions;
  tree_store_options opts;
  // Watch events raised while a request runs wait here, so the request's own reply reaches
  // its client first (as in the original: a set's reply, then the watchers' events).
  bool in_request = false;
  std::vector<std::tuple<uint64_t, int64_t, value>> held_events;

  caf::actor persister;
  std::optional<log_sink> state_log;   // with a state directory
  std::optional<log_sink> client_log;  // action `log`
  uint64_t generation = 0;
  uint64_t records_since_snapshot = 0;
  bool snapshot_due = false;
  bool flush_queued = false;                  // a persist_flush_atom is in our mailbox
  std::unique_ptr<save_writer> snapshot_job;  // a snapshot being built, see start_snapshot
  std::chrono::steady_clock::time_point snapshot_started;
  uint64_t snapshot_bytes = 0;      // handed to the persister so far
  bool node_table_touched = false;  // a store call ran since the last state record
  // sync ack: replies wait for their log records (lsn) to be on disk.
  uint64_t next_lsn = 0;
  uint64_t synced_lsn = 0;
  std::deque<held_reply> held_replies;
  std::unordered_map<uint64_t, size_t> held_per_conn;

  // Logins: the clients' addresses, the failed-login throttle, and the threads that run slow
  // crypto (started on first use; two, as the machines we target have two cores).
  std::unordered_map<uint64_t, std::string> addresses;
  auth::login_throttle throttle;
  std::vector<caf::actor> crypto_workers;
  size_t next_worker = 0;

  // While a session's request batch runs: its connection, and the replies collected for it
  // (sent as one message; connection numbers start at 1).
  uint64_t batch_conn = 0;
  reply_batch batch_replies;

  // Replication back-pressure (see the header): batches held while the broker lags, in
  // arrival order, and how many each connection has there.
  bool backlog = false;
  struct held_batch {
    uint64_t conn;
    request_batch batch;
    std::optional<int64_t> cancel_seq;  // a cancel_atom that must not overtake the batches
  };
  std::deque<held_batch> held_batches;
  std::unordered_map<uint64_t, size_t> held_batches_per_conn;
};

// A broker without connections: it runs on the middleman's I/O thread, where the client
// sessions run too. Measured (issue 6): a request then costs no thread hand-off at all — the
// session's message to the store and the store's reply are queued within that thread (CAF's
// multiplexer posts them internally) instead of waking a scheduler worker and then the I/O
// thread again through its pipe. That halves a single request's latency on 2 cores.
using tree_store_actor = caf::io::stateful_broker<tree_store_state>;

// Sends the replies collected while a request batch ran (see the request_atom handler).
void flush_replies(tree_store_actor* self) {
  auto& st = self->state;
  if (st.batch_replies.replies.empty()) return;
  auto it = st.sessions.find(st.batch_conn);
  if (it != st.sessions.end())
    self->send(it->second, reply_atom::value, std::move(st.batch_replies));
  st.batch_replies.replies.clear();
}

void deliver_event(tree_store_actor* self, uint64_t conn, int64_t seq, value msg) {
  flush_replies(self);  // a request's reply goes out before the events it caused
  auto it = self->state.sessions.find(conn);
  if (it != self->state.sessions.end())
    self->send(it->second, event_atom::value, seq, std::move(msg));
}

void send_reply(tree_store_actor* self, uint64_t conn, int64_t seq, action_result res) {
  auto& st = self->state;
  if (conn == st.batch_conn) {
    st.batch_replies.replies.emplace_back(seq, std::move(res));
    return;
  }
  auto it = st.sessions.find(conn);
  if (it != st.sessions.end()) {
    reply_batch one;
    one.replies.emplace_back(seq, std::move(res));
    self->send(it->second, reply_atom::value, std::move(one));
  }
}

action_result single(value msg) {
  action_result r;
  r.messages.push_back(std::move(msg));
  return r;
}

value error_value(std::string_view type, std::string_view text) {
  return value(map{{value("error"), value(wire::py_exc(type, text))}});
}

// delayed_send takes integral durations only (CAF 0.17).
std::chrono::milliseconds ms_of(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool ack_mode(const tree_store_state& st) {
  return st.state_log && st.opts.persist.sync == sync_mode::ack;
}

void append_record(log_sink& sink, const value& rec) {
  encode(sink.buffer, rec);
  ++sink.records_since_state;
}

// Hand the buffered records of `sink` to the persister; returns the lsn asked for (0: none).
uint64_t flush_sink(tree_store_actor* self, log_sink& sink) {
  auto& st = self->state;
  bool had_records = !sink.buffer.empty();
  if (sink.records_since_state >= state_record_every ||
      (sink.state_due && (sink.records_since_state > 0 || st.node_table_touched))) {
    encode(sink.buffer, state_record(*st.store));
    sink.records_since_state = 0;
    sink.state_due = false;
  }
  if (sink.buffer.empty()) return 0;
  uint64_t lsn = 0;
  if (sink.id == 0 && had_records && ack_mode(st)) lsn = ++st.next_lsn;
  self->send(st.persister, persist_write_atom::value, sink.id, lsn, std::move(sink.buffer));
  sink.buffer.clear();
  return lsn;
}

// A snapshot is built in steps between other messages (save_writer), so that a big tree
// does not stall clients. The new log starts first: every change from then on is in it,
// whatever state the snapshot catches its entry in.
void start_snapshot(tree_store_actor* self) {
  auto& st = self->state;
  ++st.generation;
  self->send(st.persister, persist_rotate_atom::value, st.generation);
  // The new log file starts its depth compression afresh.
  st.state_log->shortener = path_shortener();
  st.state_log->records_since_state = 0;
  st.records_since_snapshot = 0;
  st.snapshot_due = false;
  st.snapshot_started = std::chrono::steady_clock::now();
  st.snapshot_job = std::make_unique<save_writer>(*st.store, save_options{true, true});
  st.snapshot_bytes = 0;
  self->send(self, persist_step_atom::value);
}

// Each step's records go to the persister at once, so the snapshot is never whole in memory.
void send_snapshot_part(tree_store_actor* self) {
  auto& st = self->state;
  std::string& buf = st.snapshot_job->buffer();
  if (buf.empty()) return;
  st.snapshot_bytes += buf.size();
  self->send(st.persister, persist_snapshot_atom::value, st.generation, std::move(buf));
  buf = std::string();
}

void finish_snapshot(tree_store_actor* self) {
  auto& st = self->state;
  send_snapshot_part(self);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - st.snapshot_started).count();
  spdlog::info("tree_store: snapshot {} built: {} entries, {:.1f} MB in {:.2f} s", st.generation,
               st.snapshot_job->entries(), static_cast<double>(st.snapshot_bytes) / 1e6, secs);
  st.snapshot_job.reset();
  self->send(st.persister, persist_snapshot_done_atom::value, st.generation);
}

// Entries visited by a snapshot in progress must not be removed: whatever may purge
// tombstones (store calls: infos, the deleter) completes the snapshot first.
void complete_snapshot(tree_store_actor* self) {
  auto& st = self->state;
  if (!st.snapshot_job) return;
  while (!st.snapshot_job->step(SIZE_MAX)) {
  }
  finish_snapshot(self);
}

// Hands everything buffered to the persister. Returns the state log's lsn (0: none).
uint64_t flush_logs(tree_store_actor* self) {
  auto& st = self->state;
  st.flush_queued = false;
  uint64_t lsn = 0;
  if (st.state_log) lsn = flush_sink(self, *st.state_log);
  if (st.client_log) flush_sink(self, *st.client_log);
  if (st.state_log || st.client_log) st.node_table_touched = false;
  if (st.state_log && !st.snapshot_job &&
      (st.records_since_snapshot >= st.opts.snapshot_records ||
       (st.snapshot_due && st.records_since_snapshot > 0)))
    start_snapshot(self);
  return lsn;
}

// After every message that may have changed the tree: records collect while more messages
// wait, and one flush message queued behind them hands them over in one piece (one write(2),
// and with sync ack one group commit, for a whole burst of pipelined requests).
void schedule_flush(tree_store_actor* self) {
  auto& st = self->state;
  bool pending = (st.state_log && !st.state_log->buffer.empty()) ||
                 (st.client_log && !st.client_log->buffer.empty());
  if (st.flush_queued || !pending) return;
  st.flush_queued = true;
  self->send(self, persist_flush_atom::value);
}

void release_replies(tree_store_actor* self) {
  auto& st = self->state;
  while (!st.held_replies.empty() && st.held_replies.front().lsn <= st.synced_lsn) {
    held_reply h = std::move(st.held_replies.front());
    st.held_replies.pop_front();
    auto it = st.held_per_conn.find(h.conn);
    if (it != st.held_per_conn.end() && --it->second == 0) st.held_per_conn.erase(it);
    send_reply(self, h.conn, h.seq, std::move(h.result));
  }
}

// --- client requests --------------------------------------------------------------------------

void complete_request(tree_store_actor* self, uint64_t conn, int64_t seq, action_result res,
                      size_t logged_before);

// A crypto worker: runs deferred_work on its own thread. (It takes its index as an argument:
// CAF 0.17 dereferences a null pointer when spawning a function actor without arguments,
// which UBSan reports.)
caf::behavior crypto_worker_impl(caf::event_based_actor*, int) {
  return {[](deferred_work& w) -> value {
    try {
      return w.fn();
    } catch (const std::exception& e) {
      return value(map{{value("worker_error"), value(std::string(e.what()))}});
    }
  }};
}

caf::actor crypto_worker(tree_store_actor* self) {
  auto& st = self->state;
  if (st.crypto_workers.empty()) {
    for (int i = 0; i < 2; ++i)
      st.crypto_workers.push_back(self->spawn<caf::detached + caf::linked>(crypto_worker_impl, i));
  }
  return st.crypto_workers[st.next_worker++ % st.crypto_workers.size()];
}

// A deferred step (DH, Argon2id): the work runs on a crypto worker, the rest back here.
void run_deferred(tree_store_actor* self, uint64_t conn, int64_t seq,
                  std::shared_ptr<action_result::deferred_step> step) {
  self->request(crypto_worker(self), caf::infinite, deferred_work{step->work})
      .then(
          [self, conn, seq, step](value& v) {
            auto& st = self->state;
            if (const value* err = v.is_map() ? v.find("worker_error") : nullptr) {
              spdlog::error("tree_store: crypto failed: {}", err->as_str());
              send_reply(self, conn, seq, single(error_value("RuntimeError", err->as_str())));
              return;
            }
            size_t logged_before = st.state_log ? st.state_log->buffer.size() : 0;
            action_result next;
            st.in_request = true;
            try {
              next = step->resume(std::move(v));
            } catch (const std::exception& e) {
              next = single(error_value("RuntimeError", e.what()));
            }
            st.in_request = false;
            complete_request(self, conn, seq, std::move(next), logged_before);
          },
          [self, conn, seq](caf::error& err) {
            send_reply(self, conn, seq,
                       single(error_value("RuntimeError", self->system().render(err))));
          });
}

// The throttle's key for an `auth` request: the same text kv_store reports as login_user.
std::string login_key(const value& req) {
  const value* typ = req.find("typ");
  const value* ident = req.find("ident");
  if (!typ || !typ->is_str() || !ident || !ident->is_str()) return "?";
  return typ->as_str() + " user " + ident->as_str();
}

// Logs a login attempt and feeds the throttle.
void note_login(tree_store_actor* self, uint64_t conn, const action_result& res) {
  auto& st = self->state;
  const std::string& addr = st.addresses[conn];
  if (res.login == action_result::login_outcome::succeeded) {
    st.throttle.succeeded(res.login_user, addr);
    spdlog::info("client {} from {}: logged in as {}{}", conn, addr, res.login_user,
                 res.login_restricted ? " (bound to an ACL)" : "");
    if (!res.login_detail.empty())
      spdlog::warn("client {}: {} is bound to an ACL, but {}", conn, res.login_user,
                   res.login_detail);
  } else if (res.login == action_result::login_outcome::failed) {
    int n = st.throttle.failed(res.login_user, addr, auth::login_throttle::clock::now());
    spdlog::warn(
        "client {} from {}: login as {} refused ({} in a row; later attempts are "
        "slowed down): {}",
        conn, addr, res.login_user, n, res.login_detail);
  }
}

// After kv_store handled a request: defer slow work, or deliver (or hold) the reply.
void complete_request(tree_store_actor* self, uint64_t conn, int64_t seq, action_result res,
                      size_t logged_before) {
  auto& st = self->state;
  if (res.deferred) {
    run_deferred(self, conn, seq, std::move(res.deferred));
  } else {
    note_login(self, conn, res);
    bool logged = st.state_log && st.state_log->buffer.size() > logged_before;
    schedule_flush(self);
    if (ack_mode(st) && (logged || st.held_per_conn.count(conn) > 0)) {
      // Not acknowledged before its record is on disk; later replies queue behind it.
      // The buffered records get lsn next_lsn + 1 when they are flushed.
      uint64_t lsn = st.next_lsn + (st.state_log->buffer.empty() ? 0 : 1);
      st.held_replies.push_back({lsn, conn, seq, std::move(res)});
      ++st.held_per_conn[conn];
    } else {
      send_reply(self, conn, seq, std::move(res));
    }
  }
  for (auto& [c, s, m] : st.held_events) deliver_event(self, c, s, std::move(m));
  st.held_events.clear();
}

void run_request(tree_store_actor* self, uint64_t conn, int64_t seq, const value& req) {
  auto& st = self->state;
  size_t logged_before = st.state_log ? st.state_log->buffer.size() : 0;
  st.in_request = true;
  action_result res = st.store->handle(conn, req);
  st.in_request = false;
  complete_request(self, conn, seq, std::move(res), logged_before);
}

// Action `save {path, full}` (§6): the records are built here, written by the persister.
void handle_save(tree_store_actor* self, uint64_t conn, int64_t seq, const value& req) {
  auto& st = self->state;
  const value* path = req.find("path");
  if (path == nullptr || !path->is_str() || path->as_str().empty()) {
    send_reply(self, conn, seq,
               single(error_value("TypeError", "save needs a 'path' (file name)")));
    return;
  }
  const value* full = req.find("full");
  save_options so;
  so.full = full != nullptr && wire::truthy(*full);
  auto t0 = std::chrono::steady_clock::now();
  size_t entries = 0;
  std::string bytes = encode_save(*st.store, so, &entries);
  std::string file = path->as_str();
  self->request(st.persister, caf::infinite, persist_save_atom::value, file, std::move(bytes))
      .then([self, conn, seq, file, entries, t0](const std::string& err) {
        if (!err.empty()) {
          send_reply(self, conn, seq, single(error_value("OSError", err)));
          return;
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        spdlog::info("tree_store: saved {} entries to {} in {:.2f} s", entries, file, secs);
        send_reply(self, conn, seq, single(value(map{{value("result"), value(true)}})));
      });
}

// Action `log {path, fetch}`: start logging every change to `path` (nil: stop logging).
void handle_log(tree_store_actor* self, uint64_t conn, int64_t seq, const value& req) {
  auto& st = self->state;
  const value* path = req.find("path");
  if (path == nullptr || path->is_nil()) {
    flush_logs(self);
    st.client_log.reset();
    self->request(st.persister, caf::infinite, persist_close_atom::value)
        .then([self, conn, seq](bool) {
          send_reply(self, conn, seq, single(value(map{{value("result"), value(true)}})));
        });
    return;
  }
  if (!path->is_str() || path->as_str().empty()) {
    send_reply(self, conn, seq,
               single(error_value("TypeError", "log needs a 'path' (file name) or None")));
    return;
  }
  flush_logs(self);  // what the previous log still buffers goes to it, not to the new one
  const value* fetch = req.find("fetch");
  std::string first = encode(state_record(*st.store));
  if (fetch != nullptr && wire::truthy(*fetch)) first += encode_save(*st.store, save_options{true});
  // From now on every change goes to the new sink; the persister opens the file before it
  // sees the first of them (messages from one sender arrive in order).
  st.client_log.emplace();
  st.client_log->id = 1;
  std::string file = path->as_str();
  self->request(st.persister, caf::infinite, persist_open_atom::value, file, std::move(first))
      .then([self, conn, seq, file](const std::string& err) {
        if (!err.empty()) {
          self->state.client_log.reset();
          send_reply(self, conn, seq, single(error_value("OSError", err)));
          return;
        }
        spdlog::info("tree_store: logging changes to {}", file);
        send_reply(self, conn, seq, single(value(map{{value("result"), value(true)}})));
      });
}

// One client request of a batch: `save` and `log` need the persister, `auth` may have to wait
// for its throttle slot; everything else runs in kv_store.
void handle_request(tree_store_actor* self, uint64_t conn, const value& req) {
  auto& st = self->state;
  int64_t seq = 0;
  if (const value* s = req.find("seq")) s->get_int(seq);
  if (const value* a = req.is_map() ? req.find("action") : nullptr; a && a->is_str()) {
    const std::string& action = a->as_str();
    if (action == "save" || action == "log") {
      if (!st.store->is_admin(conn))
        return send_reply(
            self, conn, seq,
            single(error_value("ACLError", action + " is only for users without an ACL")));
      return action == "save" ? handle_save(self, conn, seq, req)
                              : handle_log(self, conn, seq, req);
    }
    if (action == "auth") {
      // Failed logins slow down later attempts for the same user and address.
      auto now = auth::login_throttle::clock::now();
      auto slot = st.throttle.admit(login_key(req), st.addresses[conn], now);
      if (slot - now >= std::chrono::milliseconds(1)) {
        self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(slot - now),
                           login_slot_atom::value, conn, req);
        return;
      }
    }
  }
  run_request(self, conn, seq, req);
}

// A session's batch, in order; its replies go out as one message.
void run_batch(tree_store_actor* self, uint64_t conn, const request_batch& batch) {
  auto& st = self->state;
  st.batch_conn = conn;
  for (const value& req : batch.requests) handle_request(self, conn, req);
  flush_replies(self);
  st.batch_conn = 0;
}

// Whether a batch has a request that changes the tree and so publishes updates (the ones
// replication back-pressure holds; reads go on).
bool writes(const request_batch& batch) {
  static const std::set<std::string, std::less<>> writing{
      "set_value",       "delete_value", "delete_tree", "set_internal",
      "delete_internal", "auth_set",     "set_auth_typ"};
  for (const value& req : batch.requests)
    if (const value* a = req.is_map() ? req.find("action") : nullptr;
        a && a->is_str() && writing.count(a->as_str()) > 0)
      return true;
  return false;
}

caf::behavior tree_store_impl(tree_store_actor* self, tree_store_options opts,
                              std::shared_ptr<kv_store> store) {
  auto& st = self->state;
  st.opts = opts;
  st.store = std::move(store);
  st.generation = opts.persist.generation;
  st.persister = spawn_persister(self, opts.persist);
  if (!opts.persist.state_dir.empty()) {
    st.state_log.emplace();
    st.state_log->id = 0;
  }
  st.store->set_watch_emitter([self](uint64_t conn, int64_t seq, value msg) {
    if (self->state.in_request)
      self->state.held_events.emplace_back(conn, seq, std::move(msg));
    else
      deliver_event(self, conn, seq, std::move(msg));
  });
  // Every applied change, local or replicated, goes to the logs.
  st.store->data().add_change_listener([self](const change_event& ev) {
    auto& st = self->state;
    if (ev.e.event_chain().empty()) return;
    if (st.state_log) {
      append_record(*st.state_log, update_record(ev.e, st.state_log->shortener));
      ++st.records_since_snapshot;
    }
    if (st.client_log) append_record(*st.client_log, update_record(ev.e, st.client_log->shortener));
  });
  self->delayed_send(self, state_record_interval, persist_tick_atom::value);
  if (st.state_log && opts.snapshot_interval > 0)
    self->delayed_send(self, ms_of(opts.snapshot_interval), persist_rotate_atom::value);
  self->set_down_handler([self](const caf::down_msg& dm) {
    // A session that died without saying goodbye: forget its connection.
    for (auto it = self->state.sessions.begin(); it != self->state.sessions.end(); ++it) {
      if (it->second.address() == dm.source) {
        self->state.store->drop_connection(it->first);
        self->state.addresses.erase(it->first);
        self->state.sessions.erase(it);
        return;
      }
    }
  });
  return {
      [self](hello_atom, uint64_t conn, caf::actor session, std::string& address) {
        self->monitor(session);
        self->state.sessions[conn] = session;
        self->state.addresses[conn] = std::move(address);
        self->send(session, greeting_atom::value,
                   self->state.store->open_connection(conn, self->state.opts.client_qlen));
      },
      [self](request_atom, uint64_t conn, request_batch& batch) {
        auto& st = self->state;
        if (st.sessions.find(conn) == st.sessions.end()) return;
        if (st.held_batches_per_conn.count(conn) > 0 || (st.backlog && writes(batch))) {
          ++st.held_batches_per_conn[conn];
          st.held_batches.push_back({conn, std::move(batch), std::nullopt});
          return;
        }
        run_batch(self, conn, batch);
      },
      [self](replication_backlog_atom, bool high) {
        auto& st = self->state;
        st.backlog = high;
        if (high) return;
        // Run everything that waited, in order. Their updates reach the bridge only after this
        // handler, so a new backlog they cause holds later batches, not these. Batches of
        // connections that closed meanwhile are dropped: their writes were never acknowledged.
        auto held = std::move(st.held_batches);
        st.held_batches.clear();
        st.held_batches_per_conn.clear();
        for (auto& h : held) {
          if (st.sessions.find(h.conn) == st.sessions.end()) continue;
          if (h.cancel_seq) {
            st.store->cancel_watch(h.conn, *h.cancel_seq);
            continue;
          }
          run_batch(self, h.conn, h.batch);
        }
      },
      [self](login_slot_atom, uint64_t conn, const value& req) {
        if (self->state.sessions.find(conn) == self->state.sessions.end()) return;
        int64_t seq = 0;
        if (const value* s = req.find("seq")) s->get_int(seq);
        run_request(self, conn, seq, req);
      },
      [self](persist_synced_atom, uint64_t lsn) {
        auto& st = self->state;
        if (lsn > st.synced_lsn) st.synced_lsn = lsn;
        release_replies(self);
      },
      [self](cancel_atom, uint64_t conn, int64_t seq) {
        auto& st = self->state;
        if (st.held_batches_per_conn.count(conn) > 0) {  // its watch may still be held
          ++st.held_batches_per_conn[conn];
          st.held_batches.push_back({conn, request_batch{}, seq});
          return;
        }
        st.store->cancel_watch(conn, seq);
      },
      [self](store_call_atom, store_call& call) -> value {
        auto& st = self->state;
        complete_snapshot(self);
        value result;
        try {
          result = call.fn(*st.store);
        } catch (const std::exception& e) {
          // A store call is internal code; log loudly but keep the single writer alive.
          spdlog::error("tree_store: store call failed: {}", e.what());
          result = value(map{{"error", std::string(e.what())}});
        }
        st.node_table_touched = true;
        schedule_flush(self);
        return result;
      },
      [self](closed_atom, uint64_t conn) {
        auto it = self->state.sessions.find(conn);
        if (it != self->state.sessions.end()) {
          self->demonitor(it->second);
          self->state.sessions.erase(it);
        }
        self->state.store->drop_connection(conn);
        self->state.addresses.erase(conn);
      },
      [self](persist_flush_atom) { flush_logs(self); },
      [self](persist_step_atom) {
        auto& st = self->state;
        if (!st.snapshot_job) return;
        // About 10-20 ms of work per step by default; waiting requests are served in between.
        if (st.snapshot_job->step(st.opts.snapshot_step)) {
          finish_snapshot(self);
        } else {
          send_snapshot_part(self);
          self->send(self, persist_step_atom::value);
        }
      },
      [self](session_count_atom) { return static_cast<int64_t>(self->state.sessions.size()); },
      [self](persist_tick_atom) {
        auto& st = self->state;
        if (st.state_log) st.state_log->state_due = true;
        if (st.client_log) st.client_log->state_due = true;
        flush_logs(self);
        self->delayed_send(self, state_record_interval, persist_tick_atom::value);
      },
      [self](persist_rotate_atom) {
        auto& st = self->state;
        st.snapshot_due = true;
        flush_logs(self);
        self->delayed_send(self, ms_of(st.opts.snapshot_interval), persist_rotate_atom::value);
      },
      [self](persist_finish_atom) -> caf::result<bool> {
        // Clean shutdown: a last state record, everything to the persister, then its sync.
        auto& st = self->state;
        complete_snapshot(self);
        if (st.state_log) st.state_log->state_due = true;
        st.node_table_touched = true;
        flush_logs(self);
        auto rp = self->make_response_promise<bool>();
        self->request(st.persister, caf::infinite, persist_finish_atom::value)
            .then([rp](bool ok) mutable { rp.deliver(ok); });
        return rp;
      },
  };
}

}  // namespace

caf::actor spawn_tree_store(caf::actor_system& sys, tree_store_options opts,
                            std::shared_ptr<kv_store> store) {
  return sys.middleman().spawn_broker(tree_store_impl, std::move(opts), std::move(store));
}

}  // namespace moatkv
