// The MQTT backend bridge (see mqtt_bridge.hpp for the contract and the reconnect diagram).
#include "transport/mqtt_bridge.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <string_view>

#include <MQTTAsync.h>
#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "messages/backend_messages.hpp"

namespace moatkv {

// ---------------------------------------------------------------------------------------------
// MQTT topic syntax (MQTT 3.1.1 §4.7)

namespace mqtt_topic {

bool topic_valid(std::string_view topic) {
  return !topic.empty() && topic.size() <= 65535 &&
         topic.find_first_of(std::string_view("+#\0", 3)) == std::string_view::npos;
}

bool filter_valid(std::string_view filter) {
  if (filter.empty() || filter.size() > 65535 || filter.find('\0') != std::string_view::npos)
    return false;
  size_t start = 0;
  for (;;) {
    size_t end = filter.find('/', start);
    std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find_first_of("+#") != std::string_view::npos && level.size() != 1) return false;
    if (level == "#" && end != std::string_view::npos) return false;  // '#' must be last
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool matches(std::string_view filter, std::string_view topic) {
  // Wildcards at the first level do not match topics starting with '$' (§4.7.2).
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#'))
    return false;
  size_t f = 0, t = 0;
  for (;;) {
    size_t fe = filter.find('/', f);
    std::string_view flevel = filter.substr(f, fe == filter.npos ? filter.npos : fe - f);
    if (flevel == "#") return true;      // also matches the parent level ("a/#" matches "a")
    if (t > topic.size()) return false;  // topic exhausted, filter is not
    size_t te = topic.find('/', t);
    std::string_view tlevel = topic.substr(t, te == topic.npos ? topic.npos : te - t);
    if (flevel != "+" && flevel != tlevel) return false;
    bool f_last = fe == filter.npos, t_last = te == topic.npos;
    if (f_last && t_last) return true;
    if (f_last) return false;
    f = fe + 1;
    // Past the topic's last level: only a trailing "/#" can still match.
    t = t_last ? topic.size() + 1 : te + 1;
  }
}

}  // namespace mqtt_topic

namespace {

using namespace std::chrono_literals;

// Internal messages (paho callbacks and timers -> the bridge actor). `int conn` is the index of
// the connection (sub_conn, pub_conn).
using mq_conn_atom = caf::atom_constant<caf::atom("mq_conn")>;    // (int conn) connect succeeded
using mq_cfail_atom = caf::atom_constant<caf::atom("mq_cfail")>;  // (int conn, int code, text)
using mq_lost_atom = caf::atom_constant<caf::atom("mq_lost")>;    // (int conn, text) lost
using mq_suback_atom =
    caf::atom_constant<caf::atom("mq_suback")>;                   // (int token, bool ok, int code)
using mq_msg_atom = caf::atom_constant<caf::atom("mq_msg")>;      // (topic, payload)
using mq_sent_atom = caf::atom_constant<caf::atom("mq_sent")>;    // a publication left paho
using mq_retry_atom = caf::atom_constant<caf::atom("mq_retry")>;  // (uint64 epoch)

constexpr auto backoff_min = std::chrono::milliseconds(100);
constexpr auto backoff_max = std::chrono::milliseconds(5000);

// The two connections (see the header: why two).
constexpr int sub_conn = 0;  // subscribes, receives; writes only SUBSCRIBE and keep-alives
constexpr int pub_conn = 1;  // publishes; subscribes to nothing
constexpr const char* conn_name[] = {"subscriber", "publisher"};

// What a paho callback may touch: immutable after construction.
struct callback_target {
  caf::actor_addr bridge;  // weak: the client (owned by the bridge) must not keep it alive
  int conn = sub_conn;
};

template <class... Ts>
void to_bridge(void* context, Ts&&... xs) {
  const auto* target = static_cast<const callback_target*>(context);
  if (auto bridge = caf::actor_cast<caf::actor>(target->bridge))
    caf::anon_send(bridge, std::forward<Ts>(xs)...);
}

int conn_of(void* context) {
  return static_cast<const callback_target*>(context)->conn;
}

// paho callbacks: run on paho's threads with paho's global mutex held. They copy what they get
// and hand it to the actor; they never block and never call back into paho.

int on_message(void* context, char* topic_name, int topic_len, MQTTAsync_message* msg) {
  size_t tlen = topic_len > 0 ? static_cast<size_t>(topic_len) : std::strlen(topic_name);
  std::string topic(topic_name, tlen);
  std::string payload(static_cast<const char*>(msg->payload),
                      static_cast<size_t>(std::max(msg->payloadlen, 0)));
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic_name);
  to_bridge(context, mq_msg_atom::value, std::move(topic), std::move(payload));
  return 1;
}

void on_connection_lost(void* context, char* cause) {
  to_bridge(context, mq_lost_atom::value, conn_of(context), std::string(cause ? cause : ""));
}

void on_connect_success(void* context, MQTTAsync_successData*) {
  to_bridge(context, mq_conn_atom::value, conn_of(context));
}

void on_connect_failure(void* context, MQTTAsync_failureData* data) {
  int code = data ? data->code : MQTTASYNC_FAILURE;
  std::string text = data && data->message ? data->message : "";
  to_bridge(context, mq_cfail_atom::value, conn_of(context), code, std::move(text));
}

void on_subscribe_success(void* context, MQTTAsync_successData* data) {
  // For a batch paho reports success even if the broker refused some filters (qosList has
  // 0x80 there); the batch is still complete.
  to_bridge(context, mq_suback_atom::value, data ? data->token : 0, true, 0);
}

void on_subscribe_failure(void* context, MQTTAsync_failureData* data) {
  to_bridge(context, mq_suback_atom::value, data ? data->token : 0, false,
            data ? data->code : MQTTASYNC_FAILURE);
}

// For QoS 0 paho calls one of these when the publication is written to the socket, or fails
// (also when its connection goes away with the publication still queued): either way it has
// left paho's command list.
void on_publish_done(void* context, MQTTAsync_successData*) {
  to_bridge(context, mq_sent_atom::value);
}

void on_publish_failed(void* context, MQTTAsync_failureData*) {
  to_bridge(context, mq_sent_atom::value);
}

// Owns one paho client and the context its callbacks get.
//
// Teardown: paho 1.3 invokes every callback (message, connection lost, connect and subscribe
// results) with its global `mqttasync_mutex` held, and `MQTTAsync_destroy` takes the same mutex
// before it closes the session (DISCONNECT packet, socket close), drops the client's queued
// commands (their callbacks are not called) and unlinks the client from paho's lists. So when
// destroy returns, no callback of this client is running and none can start; only then is the
// context freed (member order). Destroy is never called from a callback (paho forbids it; it
// would deadlock on that mutex), and the callbacks take no lock of ours, so there is no lock
// order to invert. Messages a callback sent just before are in the mailbox of a terminating
// actor and are dropped by CAF.
class paho_client {
 public:
  paho_client() = default;
  paho_client(const paho_client&) = delete;
  paho_client& operator=(const paho_client&) = delete;
  ~paho_client() {
    if (handle_) MQTTAsync_destroy(&handle_);
    // target_ is destroyed after this body: no callback can reach it any more.
  }

  // Returns an error text, or empty on success.
  std::string create(const std::string& uri, const std::string& client_id, int max_buffered,
                     caf::actor_addr bridge, int conn) {
    target_ = std::make_unique<callback_target>(callback_target{std::move(bridge), conn});
    MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer;
    copts.MQTTVersion = MQTTVERSION_3_1_1;
    copts.sendWhileDisconnected = 0;
    // Applies while connected too: the default 100 makes a burst fail with -12.
    copts.maxBufferedMessages = std::max(max_buffered, 1);
    int rc = MQTTAsync_createWithOptions(&handle_, uri.c_str(), client_id.c_str(),
                                         MQTTCLIENT_PERSISTENCE_NONE, nullptr, &copts);
    if (rc != MQTTASYNC_SUCCESS) {
      handle_ = nullptr;
      return "MQTTAsync_create(" + uri + "): " + MQTTAsync_strerror(rc);
    }
    rc = MQTTAsync_setCallbacks(handle_, target_.get(), on_connection_lost, on_message, nullptr);
    if (rc != MQTTASYNC_SUCCESS)
      return std::string("MQTTAsync_setCallbacks: ") + std::to_string(rc);
    return {};
  }

  MQTTAsync handle() const { return handle_; }
  void* context() const { return target_.get(); }

 private:
  std::unique_ptr<callback_target> target_;
  MQTTAsync handle_ = nullptr;
};

enum class link_state { connecting, subscribing, up, waiting, broken };

struct connection {
  paho_client client;
  bool connected = false;
  bool connecting = false;  // a connect was started and has not been answered
};

struct mqtt_state {
  static inline const char* name = "mqtt_bridge";

  mqtt_bridge_options opts;
  std::string client_id;
  caf::actor owner;
  std::array<connection, 2> conns;  // [sub_conn], [pub_conn]
  link_state state = link_state::connecting;
  bool reported_up = false;  // the last link message sent to the owner was `true`
  std::set<std::string> filters;
  int batch_token = -1;  // token of the subscribe batch that completes `subscribing`
  std::chrono::milliseconds backoff = backoff_min;
  uint64_t retry_epoch = 0;
  // Publications waiting for a place in paho's window, and how many paho holds.
  std::deque<std::pair<std::string, std::string>> queue;
  // publish_first: handed to paho before `queue`. The ping protocol times its turns, and behind
  // a backlog of updates its pings came late enough for peers to see splits that were none.
  std::deque<std::pair<std::string, std::string>> urgent;
  int in_paho = 0;
  bool backlog_reported = false;  // the last backlog message to the owner said `true`
  // Publications dropped in this outage (reported when the link comes back).
  uint64_t dropped_outage = 0;
  bool warned_outage = false;
  // Publications dropped because the queue was full (reported when it has drained).
  uint64_t dropped_full = 0;
  uint64_t attempts = 0;  // connect attempts in this outage (for the log)

  bool all_connected() const { return conns[sub_conn].connected && conns[pub_conn].connected; }
};

using mqtt_actor = caf::stateful_actor<mqtt_state>;

std::string make_client_id() {
  static std::atomic<uint32_t> counter{0};
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "moatkv-%d-%u-%08x", static_cast<int>(getpid()),
                counter.fetch_add(1), static_cast<unsigned>(rd()));
  return buf;
}

void schedule_retry(mqtt_actor* self) {
  auto& st = self->state;
  st.state = link_state::waiting;
  self->delayed_send(self, st.backoff, mq_retry_atom::value, ++st.retry_epoch);
  st.backoff = std::min(st.backoff * 2, std::chrono::milliseconds(backoff_max));
}

// Tell the owner when the queue passes the high-water mark and when it is back below the low
// one (not on every change: the owner holds writes in between).
void report_backlog(mqtt_actor* self) {
  auto& st = self->state;
  size_t waiting = st.queue.size() + st.urgent.size();
  bool high = st.backlog_reported ? waiting > static_cast<size_t>(st.opts.backlog_low)
                                  : waiting >= static_cast<size_t>(st.opts.backlog_high);
  if (high == st.backlog_reported) return;
  st.backlog_reported = high;
  spdlog::debug("mqtt bridge {}: {} publications wait: backlog {}", st.opts.uri, waiting,
                high ? "high" : "low again");
  self->send(st.owner, backlog_atom::value, high);
}

void count_drop(mqtt_actor* self, const char* why) {
  auto& st = self->state;
  ++st.dropped_outage;
  if (!st.warned_outage) {
    st.warned_outage = true;
    spdlog::warn("mqtt bridge {}: dropping publications ({}); further drops are counted",
                 st.opts.uri, why);
  }
}

void report_down(mqtt_actor* self) {
  auto& st = self->state;
  // What waits for a connection that is gone would go out late and out of order with what
  // the owner resends once it knows the link is back: dropped and counted, like new ones.
  for (size_t i = 0; i < st.queue.size() + st.urgent.size(); ++i) count_drop(self, "link down");
  st.queue.clear();
  st.urgent.clear();
  report_backlog(self);  // nothing waits now: writers need not wait for a link that is gone
  st.in_paho = 0;        // paho reports the ones it held as failed, or never: start afresh
  if (st.reported_up) {
    st.reported_up = false;
    self->send(st.owner, link_atom::value, false);
  }
}

void report_up(mqtt_actor* self) {
  auto& st = self->state;
  st.state = link_state::up;
  st.backoff = backoff_min;
  if (st.dropped_outage > 0)
    spdlog::warn("mqtt bridge {}: link up; {} publication(s) dropped while it was down",
                 st.opts.uri, st.dropped_outage);
  else
    spdlog::info("mqtt bridge {}: link up", st.opts.uri);
  st.dropped_outage = 0;
  st.warned_outage = false;
  st.attempts = 0;
  if (!st.reported_up) {
    st.reported_up = true;
    self->send(st.owner, link_atom::value, true);
  }
}

// Hand queued publications to paho while its window has room.
void drain(mqtt_actor* self) {
  auto& st = self->state;
  MQTTAsync pub = st.conns[pub_conn].client.handle();
  while (st.in_paho < st.opts.paho_window && (!st.urgent.empty() || !st.queue.empty())) {
    auto& from = st.urgent.empty() ? st.queue : st.urgent;
    auto [topic, payload] = std::move(from.front());
    from.pop_front();
    MQTTAsync_responseOptions ropts = MQTTAsync_responseOptions_initializer;
    ropts.onSuccess = on_publish_done;
    ropts.onFailure = on_publish_failed;
    ropts.context = st.conns[pub_conn].client.context();
    int rc = MQTTAsync_send(pub, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 0,
                            0, &ropts);
    if (rc == MQTTASYNC_SUCCESS) {
      ++st.in_paho;
      continue;
    }
    count_drop(self, MQTTAsync_strerror(rc));
    if (rc == MQTTASYNC_DISCONNECTED) break;  // mq_lost follows and drops the rest
  }
  // Drained well below the limit after a spell of full-queue drops: say how many were lost.
  if (st.dropped_full > 0 && st.queue.size() <= static_cast<size_t>(st.opts.max_buffered / 2)) {
    spdlog::warn(
        "mqtt bridge {}: publication queue drained; {} publication(s) dropped while it "
        "was full",
        st.opts.uri, st.dropped_full);
    st.dropped_full = 0;
  }
  report_backlog(self);
}

// Queue a publication (at the back of `queue`, or of `urgent` for publish_first) and hand
// what fits to paho.
void enqueue(mqtt_actor* self, std::string& topic, std::string& payload, bool first) {
  auto& st = self->state;
  if (st.state != link_state::up && st.state != link_state::subscribing)
    return count_drop(self, "link down");
  if (!mqtt_topic::topic_valid(topic)) {
    spdlog::error("mqtt bridge {}: not a valid topic name to publish on: '{}'", st.opts.uri, topic);
    return;
  }
  auto& q = first ? st.urgent : st.queue;
  if (q.size() >= static_cast<size_t>(st.opts.max_buffered)) {
    // The oldest goes: it is the stalest, and with keys written again and again it is
    // almost always superseded by a later publication still queued, so peers only need
    // the cheap "known" answer for its tick. Dropping the newest instead lost exactly the
    // final writes (a 300 s scripts/loadtest run had 700-800 keys per node still stale 60 s
    // after the load).
    q.pop_front();
    if (st.dropped_full++ == 0)
      spdlog::warn(
          "mqtt bridge {}: {} publications wait for the broker; dropping the oldest "
          "until the queue has drained",
          st.opts.uri, q.size() + 1);
  }
  q.emplace_back(std::move(topic), std::move(payload));
  drain(self);
}

// Subscribe one or more filters; `batch`: its completion brings the link up.
bool subscribe_filters(mqtt_actor* self, const std::vector<std::string>& filters, bool batch) {
  auto& st = self->state;
  std::vector<char*> topics;
  std::vector<int> qos(filters.size(), 0);
  for (auto& f : filters) topics.push_back(const_cast<char*>(f.c_str()));
  MQTTAsync_responseOptions ropts = MQTTAsync_responseOptions_initializer;
  ropts.onSuccess = on_subscribe_success;
  ropts.onFailure = on_subscribe_failure;
  ropts.context = st.conns[sub_conn].client.context();
  int rc =
      MQTTAsync_subscribeMany(st.conns[sub_conn].client.handle(), static_cast<int>(filters.size()),
                              topics.data(), qos.data(), &ropts);
  if (rc != MQTTASYNC_SUCCESS) {
    spdlog::error("mqtt bridge {}: subscribe refused by the client library ({})", st.opts.uri,
                  MQTTAsync_strerror(rc));
    return false;
  }
  if (batch) st.batch_token = ropts.token;
  return true;
}

void disconnect(mqtt_actor* self, int conn) {
  auto& c = self->state.conns[static_cast<size_t>(conn)];
  MQTTAsync_disconnectOptions dopts = MQTTAsync_disconnectOptions_initializer;
  MQTTAsync_disconnect(c.client.handle(), &dopts);
  c.connected = false;
}

void on_connected(mqtt_actor* self) {
  auto& st = self->state;
  if (st.state != link_state::connecting || !st.all_connected()) return;
  if (st.filters.empty()) return report_up(self);
  st.state = link_state::subscribing;
  std::vector<std::string> all(st.filters.begin(), st.filters.end());
  if (!subscribe_filters(self, all, true)) {
    // The client library refused while connected: start over with a fresh connection.
    disconnect(self, sub_conn);
    schedule_retry(self);
  }
}

void start_connect(mqtt_actor* self) {
  auto& st = self->state;
  st.state = link_state::connecting;
  ++st.attempts;
  for (int i : {sub_conn, pub_conn}) {
    connection& c = st.conns[static_cast<size_t>(i)];
    if (c.connected || c.connecting) continue;
    MQTTAsync_connectOptions copts = MQTTAsync_connectOptions_initializer;
    copts.MQTTVersion = MQTTVERSION_3_1_1;
    copts.cleansession = 1;
    // The subscriber notices a silent broker within ~1.5 keep-alives, and takes the publisher
    // down with it (mq_lost). The publisher has none: paho 1.3 pings when it has *received*
    // nothing for a keep-alive interval, which for a connection without subscriptions is every
    // interval, and it cannot read the answer while a write is unfinished, so under a steady
    // backlog it gave up on a healthy connection ("already connected, closing old connection"
    // in mosquitto's log, every 1-2 minutes under scripts/loadtest).
    copts.keepAliveInterval = i == sub_conn ? 10 : 0;
    copts.connectTimeout = 5;      // a port that accepts but never answers CONNECT
    copts.automaticReconnect = 0;  // paho's intervals are whole seconds; ours start at 0.1 s
    copts.onSuccess = on_connect_success;
    copts.onFailure = on_connect_failure;
    copts.context = c.client.context();
    int rc = MQTTAsync_connect(c.client.handle(), &copts);
    if (rc != MQTTASYNC_SUCCESS) {
      spdlog::warn("mqtt bridge {}: connect ({}) not started: {}", st.opts.uri, conn_name[i],
                   MQTTAsync_strerror(rc));
      return schedule_retry(self);
    }
    c.connecting = true;
  }
  on_connected(self);  // both may have stayed connected through the retry
}

caf::behavior mqtt_bridge_impl(mqtt_actor* self, mqtt_bridge_options opts, caf::actor owner) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.opts.paho_window = std::max(st.opts.paho_window, 1);
  st.owner = std::move(owner);
  st.client_id = st.opts.client_id.empty() ? make_client_id() : st.opts.client_id;
  self->monitor(st.owner);
  self->set_down_handler([self](const caf::down_msg& msg) {
    if (msg.source == self->state.owner.address()) self->quit(msg.reason);
  });
  // The subscriber keeps the configured id (what the broker's log shows for this node).
  std::string err =
      st.conns[sub_conn].client.create(st.opts.uri, st.client_id, 100, self->address(), sub_conn);
  if (err.empty())
    err = st.conns[pub_conn].client.create(st.opts.uri, st.client_id + ".pub",
                                           2 * st.opts.paho_window, self->address(), pub_conn);
  if (!err.empty()) {
    // A bad URI cannot get better by retrying: stay alive (the node keeps serving), link down.
    spdlog::error("mqtt bridge: {}", err);
    st.state = link_state::broken;
  } else {
    start_connect(self);
  }
  return {
      [self](publish_atom, std::string& topic, std::string& payload) {
        enqueue(self, topic, payload, false);
      },
      [self](publish_first_atom, std::string& topic, std::string& payload) {
        enqueue(self, topic, payload, true);
      },
      [self](mq_sent_atom) {
        auto& st = self->state;
        if (st.in_paho > 0) --st.in_paho;
        if (st.state == link_state::up || st.state == link_state::subscribing) drain(self);
      },
      [self](subscribe_atom, std::string& filter) {
        auto& st = self->state;
        if (!mqtt_topic::filter_valid(filter)) {
          spdlog::error("mqtt bridge {}: invalid topic filter '{}' ignored", st.opts.uri, filter);
          return;
        }
        if (!st.filters.insert(filter).second) return;
        // While connecting/waiting it is subscribed with the batch after the next connect.
        if (st.state == link_state::up || st.state == link_state::subscribing)
          subscribe_filters(self, {filter}, false);
      },
      [self](mq_msg_atom, std::string& topic, std::string& payload) {
        auto& st = self->state;
        // Once per matching filter (the broker sends one copy for overlapping filters).
        for (auto& f : st.filters)
          if (mqtt_topic::matches(f, topic))
            self->send(st.owner, received_atom::value, f, topic, payload);
      },
      [self](mq_conn_atom, int conn) {
        auto& st = self->state;
        connection& c = st.conns[static_cast<size_t>(conn)];
        c.connecting = false;
        c.connected = true;
        spdlog::debug("mqtt bridge {}: {} connected as {}{}", st.opts.uri, conn_name[conn],
                      st.client_id, conn == pub_conn ? ".pub" : "");
        on_connected(self);
      },
      [self](mq_cfail_atom, int conn, int code, std::string& text) {
        auto& st = self->state;
        st.conns[static_cast<size_t>(conn)].connecting = false;
        if (st.state != link_state::connecting) return;
        // Once per outage at info level, then at debug (a broker may stay away for long).
        auto level = st.attempts == 1 ? spdlog::level::info : spdlog::level::debug;
        spdlog::log(level, "mqtt bridge {}: connect ({}) failed ({} {}); retrying in {} ms",
                    st.opts.uri, conn_name[conn], code, text, st.backoff.count());
        schedule_retry(self);
      },
      [self](mq_lost_atom, int conn, std::string& cause) {
        auto& st = self->state;
        st.conns[static_cast<size_t>(conn)].connected = false;
        // The two go down and come back together: the publisher has no keep-alive of its own.
        int other = conn == sub_conn ? pub_conn : sub_conn;
        if (st.conns[static_cast<size_t>(other)].connected) disconnect(self, other);
        if (st.state == link_state::waiting || st.state == link_state::broken) return;
        if (st.state != link_state::connecting)
          spdlog::warn("mqtt bridge {}: connection lost ({}){}{}", st.opts.uri, conn_name[conn],
                       cause.empty() ? "" : ": ", cause);
        st.attempts = 0;
        report_down(self);
        schedule_retry(self);
      },
      [self](mq_suback_atom, int token, bool ok, int code) {
        auto& st = self->state;
        if (!ok)
          spdlog::error(
              "mqtt bridge {}: subscribe failed ({}); filters are retried after the "
              "next reconnect",
              st.opts.uri, code);
        if (st.state == link_state::subscribing && token == st.batch_token) {
          report_up(self);
          drain(self);
        }
      },
      [self](mq_retry_atom, uint64_t epoch) {
        auto& st = self->state;
        if (epoch != st.retry_epoch || st.state != link_state::waiting) return;
        start_connect(self);
      },
  };
}

}  // namespace

caf::actor spawn_mqtt_bridge(caf::actor_system& sys, mqtt_bridge_options opts, caf::actor owner) {
  return sys.spawn(mqtt_bridge_impl, std::move(opts), std::move(owner));
}

}  // namespace moatkv
