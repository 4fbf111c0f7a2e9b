#include "transport/session.hpp"

#include <atomic>
#include <deque>
#include <map>
#include <set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/tree_store/tock_clock.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/node_messages.hpp"
#include "messages/path_syntax.hpp"
#include "transport/tls_channel.hpp"

namespace moatkv {

namespace {

// Shared by every kind of connection (msgpack sessions, remote actor sessions): the tree_store
// keys its connection state by this number.
std::atomic<uint64_t> next_connection_id{1};

// Sent to itself by a TLS session: the handshake did not finish in time.
using tls_timeout_atom = caf::atom_constant<caf::atom("tlstimeout")>;

struct stream_state {
  int64_t qlen = 0;         // 0: no flow control
  int64_t next_wseq = 1;    // wseq of the next message sent
  int64_t acked = 0;        // highest wseq the client acknowledged
  bool open = false;        // a watch: more messages may come from the tree_store
  bool monitor = false;     // a msg_monitor: the messages come from the gossip actor
  bool ending = false;      // {state: end} is queued; nothing else may be added
  std::deque<value> queue;  // framed except for wseq/tock, waiting for the window
};

// Holds one of the listener's connection slots while the session lives.
struct connection_slot {
  std::shared_ptr<std::atomic<int64_t>> counter;
  connection_slot() = default;
  connection_slot(const connection_slot&) = delete;
  connection_slot& operator=(const connection_slot&) = delete;
  ~connection_slot() {
    if (counter) counter->fetch_sub(1);
  }
};

struct session_state {
  connection_slot slot;
  uint64_t conn = 0;
  caf::io::connection_handle hdl;
  caf::actor store;
  std::shared_ptr<tock_clock> clock;
  session_options opts;
  std::unique_ptr<stream_decoder> decoder;
  bool hello_done = false;
  int64_t qlen = 0;
  std::set<int64_t> pending;                // requests sent to the tree_store, no reply yet
  std::set<int64_t> pending_watches;        // the watches among them
  std::set<int64_t> cancelled;              // stopped while pending
  std::map<int64_t, int64_t> request_qlen;  // pending requests that carry their own qlen
  std::map<int64_t, stream_state> streams;
  bool closing = false;
  // msg_send / msg_monitor bypass the tree's ACLs: only for a logged-in user without an ACL
  // (set from the greeting, then from each successful `auth` reply). Until the greeting came
  // from the tree_store nobody knows, so a client that sends at once is refused.
  bool needs_login = true;
  bool restricted = false;
  request_batch outbox;                // requests decoded from the current read, for the tree_store
  std::unique_ptr<tls_channel> tls;    // null: clear text
  std::optional<value> held_greeting;  // arrived before the TLS handshake was done
};

using session_broker = caf::io::stateful_broker<session_state>;

// Hands the requests collected from one read to the tree_store in one message. Called at the
// end of each read and before anything else goes to the tree_store, so it sees the client's
// order.
void send_requests(session_broker* self) {
  auto& st = self->state;
  if (st.outbox.requests.empty()) return;
  self->send(st.store, request_atom::value, st.conn, std::move(st.outbox));
  st.outbox.requests.clear();
}

void write_msg(session_broker* self, value msg) {
  if (!msg.find("tock")) msg.as_map().emplace_back("tock", self->state.clock->next());
  std::string bytes = encode(msg);
  if (tls_channel* tls = self->state.tls.get()) {
    tls->write_plain(bytes);
    bytes = tls->take_encrypted();
  }
  self->write(self->state.hdl, bytes.size(), bytes.data());
}

// Sends what the TLS channel produced on its own (handshake records, alerts).
void send_tls_output(session_broker* self) {
  std::string bytes = self->state.tls->take_encrypted();
  if (!bytes.empty()) self->write(self->state.hdl, bytes.size(), bytes.data());
}

void send_single(session_broker* self, int64_t seq, value msg) {
  if (!msg.is_map()) msg = value(map{{"result", std::move(msg)}});
  if (!msg.find("seq")) msg.as_map().emplace_back("seq", seq);
  write_msg(self, std::move(msg));
}

void send_error(session_broker* self, const value* seq, std::string text) {
  map m{{"error", std::move(text)}};
  if (seq) m.emplace_back("seq", *seq);
  write_msg(self, value(std::move(m)));
}

// Send what the window allows; drop the stream once its end went out.
void pump(session_broker* self, int64_t seq) {
  auto it = self->state.streams.find(seq);
  if (it == self->state.streams.end()) return;
  stream_state& s = it->second;
  while (!s.queue.empty() && (s.qlen <= 0 || s.next_wseq - s.acked < s.qlen)) {
    value msg = std::move(s.queue.front());
    s.queue.pop_front();
    map& m = msg.as_map();
    if (!msg.find("seq")) m.emplace_back("seq", seq);
    if (s.qlen > 0) m.emplace_back("wseq", s.next_wseq);
    ++s.next_wseq;
    write_msg(self, std::move(msg));
  }
  self->flush(self->state.hdl);
  // A finished stream stays registered until its end is sent, so late acks still find it.
  if (s.ending && s.queue.empty()) self->state.streams.erase(it);
}

void end_stream(session_broker* self, int64_t seq, std::optional<std::string> error = {}) {
  auto it = self->state.streams.find(seq);
  if (it == self->state.streams.end() || it->second.ending) return;
  stream_state& s = it->second;
  if (s.open && s.monitor)
    self->send(self->state.opts.gossip, msg_unmonitor_atom::value,
               caf::actor_cast<caf::actor>(self), seq);
  else if (s.open) {
    send_requests(self);
    self->send(self->state.store, cancel_atom::value, self->state.conn, seq);
  }
  s.open = false;
  if (error) s.queue.emplace_back(map{{"error", *error}});
  s.queue.emplace_back(map{{"state", "end"}});
  s.ending = true;
  pump(self, seq);
}

void enqueue(session_broker* self, int64_t seq, value msg) {
  auto it = self->state.streams.find(seq);
  if (it == self->state.streams.end() || it->second.ending) return;
  stream_state& s = it->second;
  // A watcher that stopped reading: end its stream instead of buffering without bound. With
  // flow control the messages wait in its queue; without, in the connection's send buffer,
  // which grows only while the client does not take what was sent before.
  if (s.queue.size() >= self->state.opts.max_stream_backlog ||
      (s.qlen <= 0 && self->wr_buf(self->state.hdl).size() > self->state.opts.max_write_backlog)) {
    s.queue.clear();
    end_stream(self, seq, "RuntimeError('Aborted. Queue filled?')");
    return;
  }
  s.queue.push_back(std::move(msg));
  pump(self, seq);
}

void start_stream(session_broker* self, int64_t seq, int64_t request_qlen, action_result res) {
  stream_state s;
  s.qlen = request_qlen > 0 ? request_qlen : self->state.qlen;
  if (s.qlen > 0 && s.qlen < 4) s.qlen = 4;  // the original refuses < 4; clamp instead
  s.open = res.open;
  s.queue.emplace_back(map{{"state", "start"}});
  for (auto& m : res.messages) s.queue.push_back(std::move(m));
  self->state.streams[seq] = std::move(s);
  if (!res.open) {
    self->state.streams[seq].queue.emplace_back(map{{"state", "end"}});
    self->state.streams[seq].ending = true;
  }
  pump(self, seq);
}

// Watches and monitors stay open: a connection may hold kv.server.limits.streams of them
// (open or asked for). Beyond that the request gets an error reply and nothing else changes.
bool too_many_watches(session_broker* self, int64_t seq) {
  auto& st = self->state;
  size_t n = st.pending_watches.size();
  for (const auto& [s, stream] : st.streams)
    if (stream.open) ++n;
  if (n < st.opts.max_watches) return false;
  send_single(self, seq,
              value(map{{"error", "RuntimeError('too many open watches on this connection: " +
                                      std::to_string(n) +
                                      " (kv.server.limits.streams); stop some first')"}}));
  self->flush(st.hdl);
  return true;
}

// A backend topic from a request (`topic`): a str is one element, or with `parse` a P() path;
// an array gives the elements. Elements must be str or int; joined with '/' (MQTT form).
std::optional<std::string> request_topic(const value& t, bool parse, std::string& error) {
  array elems;
  try {
    if (t.is_str())
      elems = parse ? parse_path(t.as_str()).elements() : array{t};
    else if (t.is_sequence())
      elems = t.elements();
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
  if (elems.empty()) {
    error = "topic must be a non-empty string or array";
    return std::nullopt;
  }
  std::string out;
  for (const auto& e : elems) {
    if (!out.empty()) out += '/';
    int64_t i;
    if (e.is_str() && !e.as_str().empty()) {
      out += e.as_str();
    } else if (e.is_int() && e.get_int(i)) {
      out += std::to_string(i);
    } else {
      error = "topic elements must be non-empty strings or integers";
      return std::nullopt;
    }
  }
  return out;
}

// msg_send / msg_monitor: pass-through to the backend (server-internals §7.8).
void handle_backend_action(session_broker* self, int64_t seq, const value& msg, bool send) {
  auto& st = self->state;
  auto fail = [&](const std::string& text) {
    send_single(self, seq, value(map{{"error", text}}));
    self->flush(st.hdl);
  };
  if (st.needs_login) return fail("NoAuthError()");
  if (st.restricted)
    return fail("ACLError('msg_send and msg_monitor are only for users without an ACL')");
  if (!st.opts.gossip)
    return fail("RuntimeError('this node has no backend (kv.server.backend: none)')");
  const value* t = msg.find("topic");
  std::string error;
  auto topic = t ? request_topic(*t, !send, error) : std::nullopt;
  if (!topic)
    return fail("ValueError('msg_" + std::string(send ? "send" : "monitor") + ": " +
                (t ? error : std::string("topic is missing")) + "')");
  if (send) {
    std::string payload;
    if (const value* raw = msg.find("raw"); raw && (raw->is_bin() || raw->is_str()))
      payload = raw->is_bin() ? raw->as_bin() : raw->as_str();
    else if (const value* data = msg.find("data"))
      payload = encode(*data);
    else
      return fail("ValueError('msg_send needs data or raw')");
    self->send(st.opts.gossip, msg_send_atom::value, *topic, std::move(payload));
    send_single(self, seq, value(map{}));
    self->flush(st.hdl);
    return;
  }
  bool raw = false;
  if (const value* r = msg.find("raw"); r && r->is_bool()) raw = r->as_bool();
  if (st.streams.count(seq) || st.pending.count(seq))
    return fail("ValueError('seq " + std::to_string(seq) + " is in use')");
  if (too_many_watches(self, seq)) return;
  action_result res;
  res.stream = true;
  res.open = true;
  start_stream(self, seq, 0, std::move(res));
  st.streams[seq].monitor = true;
  self->send(st.opts.gossip, msg_monitor_atom::value, *topic, caf::actor_cast<caf::actor>(self),
             seq, raw);
}

// One decoded client message.
void handle_message(session_broker* self, value msg) {
  auto& st = self->state;
  if (!msg.is_map()) {
    send_error(self, nullptr, std::string("a request must be a map, not ") + kind_name(msg));
    return;
  }
  const value* seqv = msg.find("seq");
  int64_t seq;
  if (!seqv || !seqv->get_int(seq)) {
    send_error(self, seqv,
               seqv ? "the request's seq must be an integer" : "the request has no seq");
    return;
  }
  if (seq == 0 && !st.hello_done) {
    st.hello_done = true;
    int64_t q = 0;
    if (const value* qv = msg.find("qlen")) qv->get_int(q);
    st.qlen = std::min(std::max<int64_t>(q, 0), st.opts.server_qlen);
    if (st.qlen > 0 && st.qlen < 4) st.qlen = 4;
    return;
  }
  // Messages for a running stream: acks, the client's end, errors.
  if (auto it = st.streams.find(seq); it != st.streams.end() && !msg.find("action")) {
    const value* state = msg.find("state");
    if (state && state->is_str() && state->as_str() == "ack") {
      int64_t a;
      if (const value* av = msg.find("ack"); av && av->get_int(a))
        it->second.acked = std::max(it->second.acked, a);
      pump(self, seq);
    }
    return;  // {state: end} or other input on an output-only stream: nothing to do
  }
  const value* action = msg.find("action");
  if (!action || !action->is_str()) {
    // A late ack for a stream that already finished is harmless; anything else is an error.
    const value* state = msg.find("state");
    if (state && state->is_str() && (state->as_str() == "ack" || state->as_str() == "end")) return;
    send_error(self, seqv, action ? "the action must be a string" : "the request has no action");
    return;
  }
  if (action->as_str() == "stop") {
    int64_t task;
    const value* tv = msg.find("task");
    if (!tv || !tv->get_int(task)) {
      send_single(self, seq, value(map{{"error", "ValueError('stop needs an integer task')"}}));
      return;
    }
    bool running = false;
    if (auto it = st.streams.find(task); it != st.streams.end() && !it->second.ending) {
      running = true;
      end_stream(self, task);
    } else if (st.pending.count(task)) {
      running = true;
      st.cancelled.insert(task);
    }
    send_single(self, seq, value(map{{"result", running}}));
    self->flush(st.hdl);
    return;
  }
  if (action->as_str() == "msg_send" || action->as_str() == "msg_monitor") {
    handle_backend_action(self, seq, msg, action->as_str() == "msg_send");
    return;
  }
  if (st.pending.count(seq) || st.streams.count(seq)) {
    send_single(self, seq,
                value(map{{"error", "ValueError('seq " + std::to_string(seq) + " is in use')"}}));
    return;
  }
  bool is_watch = action->as_str() == "watch";
  if (is_watch && too_many_watches(self, seq)) return;
  st.pending.insert(seq);
  if (is_watch) st.pending_watches.insert(seq);
  int64_t q;  // a request's own qlen overrides the connection's for its stream
  if (const value* qv = msg.find("qlen"); qv && qv->get_int(q) && q > 0) st.request_qlen[seq] = q;
  st.outbox.requests.push_back(std::move(msg));
}

// A reply from the tree_store (the caller flushes).
void take_reply(session_broker* self, int64_t seq, action_result res) {
  auto& st = self->state;
  st.pending.erase(seq);
  st.pending_watches.erase(seq);
  if (res.login == action_result::login_outcome::succeeded) {
    st.needs_login = false;
    st.restricted = res.login_restricted;
  }
  int64_t request_qlen = 0;
  if (auto it = st.request_qlen.find(seq); it != st.request_qlen.end()) {
    request_qlen = it->second;
    st.request_qlen.erase(it);
  }
  bool cancelled = st.cancelled.erase(seq) > 0;
  if (cancelled) {
    // Stopped before it ran to the client: a stream still gets its end, a single nothing.
    if (res.stream) {
      if (res.open) self->send(st.store, cancel_atom::value, st.conn, seq);
      send_single(self, seq, value(map{{"state", "end"}}));
    }
    return;
  }
  if (res.stream) {
    start_stream(self, seq, request_qlen, std::move(res));
  } else {
    send_single(self, seq, res.messages.empty() ? value(map{}) : std::move(res.messages.front()));
  }
}

caf::behavior session_impl(session_broker* self, caf::io::connection_handle hdl, caf::actor store,
                           std::shared_ptr<tock_clock> clock, session_options opts) {
  auto& st = self->state;
  st.conn = new_connection_id();
  st.hdl = hdl;
  st.store = store;
  st.clock = std::move(clock);
  st.opts = opts;
  if (opts.connections) {
    st.slot.counter = opts.connections;  // released when the session goes
    int64_t open = opts.connections->fetch_add(1);
    if (open >= opts.max_connections) {
      spdlog::warn(
          "client connection {} ({}): refused, {} connections are open "
          "(kv.server.limits.connections)",
          st.conn, self->remote_addr(hdl), open);
      if (!opts.tls)
        write_msg(
            self,
            value(map{{"error", "RuntimeError('too many connections: " + std::to_string(open) +
                                    " are open (kv.server.limits.connections)')"}}));
      self->flush(hdl);
      self->close(hdl);
      self->quit();
      return {};
    }
  }
  decode_limits limits;
  limits.max_bytes = opts.max_message_bytes;
  st.decoder = std::make_unique<stream_decoder>(limits);
  self->configure_read(hdl, caf::io::receive_policy::at_most(65536));
  if (opts.tls) {
    st.tls = std::make_unique<tls_channel>(opts.tls);
    self->delayed_send(self, opts.tls_handshake_timeout, tls_timeout_atom::value);
  }
  self->send(store, hello_atom::value, st.conn, caf::actor_cast<caf::actor>(self),
             self->remote_addr(hdl));
  auto shutdown = [self] {
    if (self->state.closing) return;
    self->state.closing = true;
    send_requests(self);
    self->send(self->state.store, closed_atom::value, self->state.conn);
    self->quit();
  };
  // A client that cannot speak TLS to us gets no answer but its alert (if any) and a close;
  // the log says who and why, as nothing else will.
  auto refuse_tls = [self, shutdown](const std::string& why) {
    auto& st = self->state;
    spdlog::warn("client connection {} ({}): closing, no TLS: {}", st.conn,
                 self->remote_addr(st.hdl), why);
    send_tls_output(self);
    self->flush(st.hdl);
    self->close(st.hdl);
    shutdown();
  };
  return {
      [self](greeting_atom, value greeting) {
        // A greeting naming a current auth method (batteries §1.1) means: log in first.
        const value* auth = greeting.find("auth");
        self->state.needs_login = auth && auth->is_sequence() && !auth->elements().empty() &&
                                  !auth->elements().front().is_nil();
        // The client expects the greeting as its first application data: never before the
        // handshake, where it could not be encrypted anyway.
        if (self->state.tls && !self->state.tls->handshake_done()) {
          self->state.held_greeting = std::move(greeting);
          return;
        }
        write_msg(self, std::move(greeting));
        self->flush(self->state.hdl);
      },
      [self, refuse_tls](tls_timeout_atom) {
        auto& st = self->state;
        if (st.closing || st.tls->handshake_done()) return;
        refuse_tls("no TLS handshake within " +
                   std::to_string(st.opts.tls_handshake_timeout.count()) + " ms");
      },
      [self, shutdown, refuse_tls](const caf::io::new_data_msg& msg) {
        auto& st = self->state;
        if (st.closing) return;
        const char* data = reinterpret_cast<const char*>(msg.buf.data());
        size_t size = msg.buf.size();
        std::string plain;  // the decrypted bytes (TLS only; clear text is decoded in place)
        if (st.tls) {
          bool was_done = st.tls->handshake_done();
          plain = st.tls->feed_encrypted(std::string_view(data, size));
          if (st.tls->failed()) {
            if (!was_done) return refuse_tls(st.tls->error());
            spdlog::warn("client connection {}: closing after a TLS error: {}", st.conn,
                         st.tls->error());
            self->close(st.hdl);
            shutdown();
            return;
          }
          send_tls_output(self);
          if (!was_done && st.tls->handshake_done() && st.held_greeting) {
            write_msg(self, std::move(*st.held_greeting));
            st.held_greeting.reset();
          }
          data = plain.data();
          size = plain.size();
        }
        st.decoder->feed(data, size);
        try {
          value v;
          while (st.decoder->next(v)) handle_message(self, std::move(v));
          send_requests(self);
        } catch (const decode_error& e) {
          send_requests(self);  // what came before the bad bytes still counts
          spdlog::warn("client connection {}: closing after undecodable data: {}", st.conn,
                       e.what());
          // msgpack-c reports a string, array or map above the configured limit as a
          // "size overflow": say which limit it is.
          std::string why = e.what();
          if (why.find("size overflow") != std::string::npos)
            why = "request too large (" + why + "; kv.server.limits.message_bytes is " +
                  std::to_string(st.opts.max_message_bytes) + ")";
          else
            why = "undecodable request: " + why;
          send_error(self, nullptr, why);
          self->flush(st.hdl);
          self->close(st.hdl);
          shutdown();
          return;
        }
        if (st.decoder->pending_bytes() > st.opts.max_message_bytes) {
          send_error(self, nullptr, "request too large");
          self->flush(st.hdl);
          self->close(st.hdl);
          shutdown();
          return;
        }
        self->flush(st.hdl);
      },
      [self](reply_atom, reply_batch& batch) {
        for (auto& [seq, res] : batch.replies) take_reply(self, seq, std::move(res));
        self->flush(self->state.hdl);
      },
      [self](event_atom, int64_t seq, value& msg) { enqueue(self, seq, std::move(msg)); },
      [shutdown](const caf::io::connection_closed_msg&) { shutdown(); },
  };
}

}  // namespace

uint64_t new_connection_id() {
  return next_connection_id.fetch_add(1);
}

void start_session(caf::io::broker* listener, caf::io::connection_handle hdl, caf::actor store,
                   std::shared_ptr<tock_clock> clock, session_options opts) {
  auto session = listener->fork(session_impl, hdl, std::move(store), std::move(clock), opts);
  listener->link_to(session);
}

}  // namespace moatkv
