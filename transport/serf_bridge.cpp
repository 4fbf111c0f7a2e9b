// The Serf backend bridge (see serf_bridge.hpp for the contract, the wire format and the
// reconnect diagram).
#include "transport/serf_bridge.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "messages/backend_messages.hpp"
#include "messages/msgpack_codec.hpp"
#include "transport/mqtt_bridge.hpp"  // mqtt_topic: filter syntax and matching

namespace moatkv {

namespace {

using namespace std::chrono_literals;

using sf_retry_atom = caf::atom_constant<caf::atom("sf_retry")>;    // (uint64 epoch)
using sf_timeout_atom = caf::atom_constant<caf::atom("sf_tmout")>;  // (uint64 connection)

constexpr auto backoff_min = std::chrono::milliseconds(100);
constexpr auto backoff_max = std::chrono::milliseconds(5000);
constexpr auto reply_timeout = std::chrono::seconds(5);  // handshake and stream acknowledgements
constexpr size_t max_event_bytes = 512;                  // Serf's user_event_size_limit default
constexpr size_t read_chunk =
    8 * 1024;  // events are < 600 bytes; CAF allocates this per connection

enum class phase { waiting, handshaking, subscribing, up };

enum class request_kind { handshake, event, stream };

struct request {
  request_kind kind;
  std::string filter;     // stream: the filter it serves
  bool wildcard = false;  // stream: "user" (all user events), matched locally against `filter`
  bool acked = false;     // stream: its bare-header acknowledgement came
};

struct serf_state {
  static inline const char* name = "serf_bridge";

  serf_bridge_options opts;
  caf::actor owner;
  phase ph = phase::waiting;
  std::optional<caf::io::connection_handle> hdl;
  std::unique_ptr<stream_decoder> decoder;
  uint64_t next_seq = 1;
  std::map<uint64_t, request> requests;  // this connection's outstanding requests and streams
  std::optional<uint64_t> body_for;      // a stream record's header was read: its body is next
  size_t unacked_streams = 0;
  uint64_t connection = 0;  // counts connections (stale timeouts compare it)
  std::set<std::string> filters;
  bool reported_up = false;
  std::chrono::milliseconds backoff = backoff_min;
  uint64_t retry_epoch = 0;
  uint64_t attempts = 0;  // connect attempts in this outage (for the log)
  uint64_t dropped_outage = 0;
  bool warned_outage = false;
};

using serf_broker = caf::io::stateful_broker<serf_state>;

std::string topic_to_event(std::string topic) {
  std::replace(topic.begin(), topic.end(), '/', '.');
  return topic;
}

std::string event_to_topic(std::string name) {
  std::replace(name.begin(), name.end(), '.', '/');
  return name;
}

// The agent checks name + payload against its limit, and then the user event as it gossips it:
// a type byte and the msgpack map {LTime, Name, Payload, CC} (measured: name + payload = 512 is
// refused "after encoding"). This is that encoding's size with the widest LTime (uint64) and
// string/bin headers, so what passes here is never refused by the agent.
size_t encoded_event_size(size_t name, size_t payload) {
  auto header = [](size_t n) -> size_t { return n < 32 ? 2 : n < 256 ? 3 : n < 65536 ? 3 : 5; };
  constexpr size_t fixed = 1 /* message type */ + 1 /* fixmap */ + 6 /* "LTime" */ +
                           9 /* uint64 */ + 5 /* "Name" */ + 8 /* "Payload" */ + 3 /* "CC" */ +
                           1 /* bool */;
  return fixed + header(name) + name + header(payload) + payload;
}

std::string endpoint(const serf_state& st) {
  return st.opts.host + ":" + std::to_string(st.opts.port);
}

void schedule_retry(serf_broker* self) {
  auto& st = self->state;
  st.ph = phase::waiting;
  self->delayed_send(self, st.backoff, sf_retry_atom::value, ++st.retry_epoch);
  st.backoff = std::min(st.backoff * 2, std::chrono::milliseconds(backoff_max));
}

// Ends the current connection (if any), reports a lost link and schedules the reconnect.
void drop_connection(serf_broker* self, const std::string& why) {
  auto& st = self->state;
  if (st.hdl) {
    self->close(*st.hdl);
    st.hdl.reset();
  }
  st.decoder.reset();
  st.requests.clear();
  st.body_for.reset();
  st.unacked_streams = 0;
  if (st.ph == phase::up) {
    spdlog::warn("serf bridge {}: link lost: {}", endpoint(st), why);
    st.attempts = 0;
  } else {
    spdlog::log(st.attempts <= 1 ? spdlog::level::info : spdlog::level::debug,
                "serf bridge {}: {}; retrying in {} ms", endpoint(st), why, st.backoff.count());
  }
  if (st.reported_up) {
    st.reported_up = false;
    self->send(st.owner, link_atom::value, false);
  }
  schedule_retry(self);
}

void write_value(serf_broker* self, const value& v) {
  std::string bytes = encode(v);
  self->write(*self->state.hdl, bytes.size(), bytes.data());
}

uint64_t send_request(serf_broker* self, const char* command, const value* body, request req) {
  auto& st = self->state;
  uint64_t seq = st.next_seq++;
  write_value(self, value(map{{"Command", command}, {"Seq", seq}}));
  if (body) write_value(self, *body);
  self->flush(*st.hdl);
  st.requests.emplace(seq, std::move(req));
  return seq;
}

void open_stream(serf_broker* self, const std::string& filter) {
  auto& st = self->state;
  bool plain = filter.find_first_of("+#") == std::string::npos;
  std::string type = plain ? "user:" + topic_to_event(filter) : "user";
  value body(map{{"Type", type}});
  send_request(self, "stream", &body, request{request_kind::stream, filter, !plain, false});
  ++st.unacked_streams;
}

void go_up(serf_broker* self) {
  auto& st = self->state;
  st.ph = phase::up;
  st.backoff = backoff_min;
  st.attempts = 0;
  if (st.dropped_outage > 0)
    spdlog::warn("serf bridge {}: link up; {} publication(s) dropped while it was down",
                 endpoint(st), st.dropped_outage);
  else
    spdlog::info("serf bridge {}: link up", endpoint(st));
  st.dropped_outage = 0;
  st.warned_outage = false;
  if (!st.reported_up) {
    st.reported_up = true;
    self->send(st.owner, link_atom::value, true);
  }
}

void connect_agent(serf_broker* self) {
  auto& st = self->state;
  ++st.attempts;
  auto hdl = self->add_tcp_scribe(st.opts.host, st.opts.port);
  if (!hdl) {
    spdlog::log(st.attempts <= 1 ? spdlog::level::info : spdlog::level::debug,
                "serf bridge {}: cannot connect ({}); retrying in {} ms", endpoint(st),
                self->system().render(hdl.error()), st.backoff.count());
    schedule_retry(self);
    return;
  }
  st.hdl = *hdl;
  st.decoder = std::make_unique<stream_decoder>();
  st.requests.clear();
  st.body_for.reset();
  st.unacked_streams = 0;
  st.next_seq = 1;
  self->configure_read(*hdl, caf::io::receive_policy::at_most(read_chunk));
  st.ph = phase::handshaking;
  value body(map{{"Version", 1}});
  send_request(self, "handshake", &body, request{request_kind::handshake, {}, false, false});
  self->delayed_send(self, reply_timeout, sf_timeout_atom::value, ++st.connection);
}

void count_drop(serf_broker* self) {
  auto& st = self->state;
  ++st.dropped_outage;
  if (!st.warned_outage) {
    st.warned_outage = true;
    spdlog::warn("serf bridge {}: link down, dropping publications; further drops are counted",
                 endpoint(st));
  }
}

// A stream record's body: {Event: "user", LTime, Name, Payload, Coalesce}.
void on_stream_record(serf_broker* self, const request& stream, const value& body) {
  auto& st = self->state;
  const value* name = body.is_map() ? body.find("Name") : nullptr;
  const value* payload = body.is_map() ? body.find("Payload") : nullptr;
  if (!name || !name->is_str()) {
    spdlog::debug("serf bridge {}: stream record without a name ignored", endpoint(st));
    return;
  }
  std::string data;
  if (payload && payload->is_bin())
    data = payload->as_bin();
  else if (payload && payload->is_str())
    data = payload->as_str();
  std::string topic = event_to_topic(name->as_str());
  if (stream.wildcard && !mqtt_topic::matches(stream.filter, topic)) return;
  self->send(st.owner, received_atom::value, stream.filter, std::move(topic), std::move(data));
}

// One complete msgpack object from the agent. Returns false (after dropping the connection) on
// a protocol violation.
bool on_object(serf_broker* self, const value& obj) {
  auto& st = self->state;
  if (st.body_for) {
    uint64_t seq = *st.body_for;
    st.body_for.reset();
    auto it = st.requests.find(seq);
    if (it != st.requests.end()) on_stream_record(self, it->second, obj);
    return true;
  }
  const value* seqv = obj.is_map() ? obj.find("Seq") : nullptr;
  const value* errv = obj.is_map() ? obj.find("Error") : nullptr;
  int64_t seq = 0;
  if (!seqv || !seqv->get_int(seq) || !errv || !errv->is_str()) {
    drop_connection(self, "not a Serf RPC response: " + debug_string(obj).substr(0, 200));
    return false;
  }
  auto it = st.requests.find(static_cast<uint64_t>(seq));
  if (it == st.requests.end()) {
    drop_connection(self, "response to unknown Seq " + std::to_string(seq));
    return false;
  }
  const std::string& error = errv->as_str();
  request& req = it->second;
  switch (req.kind) {
    case request_kind::handshake:
      st.requests.erase(it);
      if (!error.empty()) {
        drop_connection(self, "handshake refused: " + error);
        return false;
      }
      st.ph = phase::subscribing;
      for (auto& f : st.filters) open_stream(self, f);
      if (st.unacked_streams == 0) go_up(self);
      return true;
    case request_kind::event:
      st.requests.erase(it);
      if (!error.empty()) spdlog::warn("serf bridge {}: event refused: {}", endpoint(st), error);
      return true;
    case request_kind::stream:
      if (!req.acked) {
        req.acked = true;
        --st.unacked_streams;
        if (!error.empty()) {
          spdlog::error("serf bridge {}: stream for '{}' refused: {} (retried after a reconnect)",
                        endpoint(st), req.filter, error);
          st.requests.erase(it);
        }
        if (st.ph == phase::subscribing && st.unacked_streams == 0) go_up(self);
      } else if (error.empty()) {
        st.body_for = static_cast<uint64_t>(seq);
      } else {
        spdlog::warn("serf bridge {}: stream '{}' reports: {}", endpoint(st), req.filter, error);
      }
      return true;
  }
  return true;
}

// A publication goes to the agent as a user event at once.
void publish(serf_broker* self, std::string& topic, std::string& payload) {
  auto& st = self->state;
  if (st.ph != phase::up && st.ph != phase::subscribing) return count_drop(self);
  if (!mqtt_topic::topic_valid(topic)) {
    spdlog::error("serf bridge {}: not a valid topic name to publish on: '{}'", endpoint(st),
                  topic);
    return;
  }
  std::string name = topic_to_event(std::move(topic));
  if (size_t n = encoded_event_size(name.size(), payload.size()); n > max_event_bytes) {
    spdlog::warn(
        "serf bridge {}: event {} with {} bytes of payload ({} encoded) exceeds "
        "Serf's limit of {}; dropped",
        endpoint(st), name, payload.size(), n, max_event_bytes);
    return;
  }
  value body(
      map{{"Name", std::move(name)}, {"Payload", bin{std::move(payload)}}, {"Coalesce", false}});
  send_request(self, "event", &body, request{request_kind::event, {}, false, false});
}

caf::behavior serf_bridge_impl(serf_broker* self, serf_bridge_options opts, caf::actor owner) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.owner = std::move(owner);
  self->monitor(st.owner);
  // Close the agent connection before quitting: a scribe still open when the broker ends is
  // never freed by CAF 0.17 (LeakSanitizer shows it).
  auto close_and_quit = [self](caf::error reason) {
    if (self->state.hdl) {
      self->close(*self->state.hdl);
      self->state.hdl.reset();
    }
    self->quit(std::move(reason));
  };
  self->set_down_handler([self, close_and_quit](const caf::down_msg& msg) {
    if (msg.source == self->state.owner.address()) close_and_quit(msg.reason);
  });
  self->set_exit_handler(
      [close_and_quit](const caf::exit_msg& msg) { close_and_quit(msg.reason); });
  connect_agent(self);
  return {
      [self](publish_atom, std::string& topic, std::string& payload) {
        publish(self, topic, payload);
      },
      // Nothing queues here to go ahead of: the same as publish.
      [self](publish_first_atom, std::string& topic, std::string& payload) {
        publish(self, topic, payload);
      },
      [self](subscribe_atom, std::string& filter) {
        auto& st = self->state;
        if (!mqtt_topic::filter_valid(filter)) {
          spdlog::error("serf bridge {}: invalid topic filter '{}' ignored", endpoint(st), filter);
          return;
        }
        if (!st.filters.insert(filter).second) return;
        // While not connected it is streamed after the next handshake.
        if (st.ph == phase::up || st.ph == phase::subscribing) open_stream(self, filter);
      },
      [self](const caf::io::new_data_msg& msg) {
        auto& st = self->state;
        if (!st.hdl || msg.handle != *st.hdl || !st.decoder) return;
        try {
          st.decoder->feed(msg.buf.data(), msg.buf.size());
          value obj;
          while (st.decoder && st.decoder->next(obj))
            if (!on_object(self, obj)) return;
        } catch (const decode_error& e) {
          drop_connection(self, std::string("garbage from the agent: ") + e.what());
        }
      },
      [self](const caf::io::connection_closed_msg& msg) {
        auto& st = self->state;
        if (!st.hdl || msg.handle != *st.hdl) return;
        st.hdl.reset();  // already gone
        drop_connection(self, "connection closed by the agent");
      },
      [self](sf_timeout_atom, uint64_t connection) {
        auto& st = self->state;
        if (connection != st.connection || !st.hdl) return;
        if (st.ph == phase::handshaking || st.ph == phase::subscribing)
          drop_connection(self, "no answer to the handshake/stream requests within 5 s");
      },
      [self](sf_retry_atom, uint64_t epoch) {
        auto& st = self->state;
        if (epoch != st.retry_epoch || st.ph != phase::waiting) return;
        connect_agent(self);
      },
  };
}

}  // namespace

caf::actor spawn_serf_bridge(caf::actor_system& sys, serf_bridge_options opts, caf::actor owner) {
  return sys.middleman().spawn_broker(serf_bridge_impl, std::move(opts), std::move(owner));
}

}  // namespace moatkv
