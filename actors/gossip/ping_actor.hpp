// The "ping actor" (asyncactor 0.24 `Actor`, server-internals §4) as a plain, deterministic class.
//
// Contract
//   * One instance per group: the server ping (`<root>/ping`, enabled, cycle 10 / gap 2 from
//     `server.ping`) and the delete group (`<root>/del`, started disabled, cycle 100 / gap 10 /
//     version 1 from `server.delete`). The config is a parameter (`ping_config`).
//   * No threads, no clock, no randomness of its own: the owner (a CAF actor) passes the time
//     (seconds, any monotonic origin) into every call and supplies `random()` in [0, 1). The
//     owner calls `start(now)` once, `receive(msg, now)` for every decoded payload of the
//     group's topic (its own publications included, each exactly once), `on_timer(now)` once
//     `next_deadline()` has passed, and `set_value(v)` whenever its value changes.
//   * Output goes through the `hooks`: `send(msg)` (a map; the owner packs it with plain msgpack,
//     §1.1, and publishes it) and `on_event(event)`. Hooks run synchronously inside the calls
//     above and must not call back into the instance (post to yourself instead).
//   * `receive` never throws and never crashes on bad input: a message that is not a well-formed
//     init/vers/ping/hist map is ignored and reported through the return value (exceptions
//     thrown by the hooks themselves do propagate). Single-threaded: all calls come from the
//     owner's actor. Without a `random` hook 0.5 is used.
//
// Wire format (what we send; plain msgpack maps, 0.24 key order, exactly these keys):
//   {"t":"init","node":N}
//   {"t":"vers","node":N,"cycle":C,"gap":G,"nodes":5,"splits":4,"n_hosts":10,"version":V,
//    "force_in":0}                               cycle/gap keep their type: int 2 stays int 2
//   {"t":"ping","node":N,"value":V,"history":[N, previous pingers…]}   history[:splits]
//   {"t":"hist","value":V,"history":[…]}         recovery ping, its node is history[0]
//
// Original behaviour kept (asyncactor 0.24 `_run` / `process_msg`, see §4.3–§4.5): the start
// delay ((rand/2 + 1.5)·gap + cycle) with messages queued until the first ping, the main loop's
// tagged state machine with its `t_dest` timer, the next-ping formula with the same sequence of
// random draws, collision / split detection with RecoverEvent, delayed `hist` and `vers`
// replies, the ping debouncer (a fixed 2·gap window from the first fed message, as the source
// does — §4.4's "until none arrives for 2·gap" describes it loosely), enable/disable.
//
// Deliberate differences (each would crash or wedge the original):
//   * Malformed messages (not a map, unknown `t`, missing or mistyped keys, empty history,
//     non-string names, a vers that fails the original's own `verify()`) are ignored. Unknown
//     extra keys are tolerated and dropped.
//   * The raw event is emitted only for well-formed messages (the original emits it for anything
//     and then dies on the malformed ones).
//   * Our own `init` seen twice emits `collision_event` and is dropped (original:
//     ActorCollisionError ends the server). Own `init` not seen by the end of the start delay
//     emits `echo_missing_event` and the actor carries on (original: ActorTimeoutError).
//   * Values that Python cannot order (e.g. str vs int, maps) count as equal in `has_priority`,
//     so the lower name wins (original: TypeError). See `python_greater`.
//   * An adopted vers is stored and re-sent with only the known keys, in 0.24 order, values
//     keeping their received types (0.24 would re-send unknown keys too, which 0.25+ rejects).
//   * Messages arriving during the start delay are queued up to 99 (the original's queue size);
//     further ones are dropped instead of blocking the reader.
//   * `disable(nullopt)` leaves the history bound unchanged (the original sets it to None and
//     then fails on the next `+=`).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "messages/value.hpp"

namespace moatkv {

/// The actor's configuration, i.e. the content of a `vers` message (0.24 DEFAULTS).
/// `cycle`, `gap` and `force_in` stay `value`s so that their wire type survives (config
/// `gap: 2` goes out as int 2, `gap: 1.5` as float64, a received bool `force_in` as bool).
struct ping_config {
  value cycle = 10;
  value gap = 1.5;
  int64_t nodes = 5;  // history bound; <= 0 = unbounded
  int64_t splits = 4;
  int64_t n_hosts = 10;
  int64_t version = 0;
  value force_in = 0;

  double cycle_seconds() const;
  double gap_seconds() const;
  bool force_in_set() const;
  /// The original's `SetupMessage.verify()` plus finiteness: cycle >= 1, gap >= 0,
  /// cycle >= 3 * gap; cycle and gap are numbers (not bool).
  bool valid() const;

  /// `server.ping` default: cycle 10, gap 2.
  static ping_config server_ping();
  /// `server.delete` default: cycle 100, gap 10, version 1.
  static ping_config server_delete();
};

/// Python's `a > b` for the values a ping can carry: numbers (bool/int/float, exact across
/// kinds; NaN compares false), str (code points), bin (bytes), arrays (tuple rule: first unequal
/// element decides, else length). nullopt where Python raises TypeError (mixed kinds, nil vs
/// anything at a deciding position, maps, Paths, ext).
std::optional<bool> python_greater(const value& a, const value& b);

/// A bounded list of node names with asyncactor's `NodeList.__iadd__` rule (§4.2).
struct node_list {
  std::vector<std::string> names;
  int64_t maxlen = 0;  // <= 0: unbounded

  /// Move `name` to the front (or add it); drops the last entry if `name` was removed from a
  /// non-last position or the list was full.
  void push_front(const std::string& name);
  /// Index of `name`, or -1.
  int64_t index_of(const std::string& name) const;
  bool empty() const { return names.empty(); }
};

/*
 * The tagged state (`_tagged`) and its timers, as driven by `_run`'s loop. G = gap, C = cycle.
 * "wait t" is the loop's receive timeout; t_dest is the end of the current state's wait.
 *
 *        enable(): empty history, ping               disable(): UntagEvent if in 3
 *   +---------------------------+             +--------------------------------- any state
 *   |                           |             v
 *   |   +------------------------------------------+
 *   |   | -1 disabled: wait 2G (no-op); messages    |
 *   |   |  only feed the debouncer; no pings        |
 *   |   +------------------------------------------+
 *   v
 *   +-------------------------------+ <-----------------------------------------------+
 *   | 0 idle: wait until            | <--------------------------------+              |
 *   |   next_ping_time (§4.5)       |                                  |              |
 *   +-------------------------------+                                  |              |
 *        | timeout: send ping                                          |              |
 *        | (the first ping of an empty history stays in 0)             |              |
 *        v                                                             |              |
 *   +-------------------------------+  a valid successor ping, or a    |              |
 *   | 1 pinged                      |  colliding ping with priority ---+              |
 *   +-------------------------------+  (from 1, 2 or 3; in 3 it emits                 |
 *        | t_dest passed (at once):     UntagEvent resp. DetagEvent)                  |
 *        | wait G                       Any message in 1 -> 0 (0.24: practically      |
 *        v                              never, 1 -> 2 happens at once)                |
 *   +-------------------------------+                                                 |
 *   | 2 about to be "it"            |                                                 |
 *   +-------------------------------+                                                 |
 *        | G passed: TagEvent, valid_pings += 1, wait C - G/2                         |
 *        v                                                                            |
 *   +-------------------------------+  C - G/2 passed: UntagEvent, count_not_on = 0,  |
 *   | 3 "it"                        | -- wait 1.5G; its timeout in 0 sends a ping ----+
 *   +-------------------------------+     (G + C - G/2 + 1.5G = C + 2G = the last
 *                                          pinger's next_ping_time)
 *
 * Side timers: start delay ((rand/2 + 1.5)G + C, then the first ping); ping debouncer (2G after
 * the first fed message: PingEvent if tagged <= 0); a delayed `hist` per recovering side
 * (G(1 - 2^-pos), cancelled by a *ping* from that side's last pinger); the delayed `vers`
 * answer (G(1 - 2^-pos), cancelled by a vers of equal version).
 */
/// What a ping-group message tells about its sender (§4.6, the owner's RawMsgEvent handler):
/// the node's name (`node`, or a hist's first `history` entry) and the tock and tick of its
/// `value` [tock, tick] where those are non-negative integers. Nothing without a name.
struct ping_sender {
  std::string name;
  std::optional<uint64_t> tick, tock;
};
std::optional<ping_sender> ping_sender_of(const value& msg);

class ping_actor {
 public:
  // Events (asyncactor's event classes).
  struct tag_event {  // TagEvent: we are "it" now
    value val;        // our value at that moment
  };
  struct untag_event {};  // UntagEvent: no longer "it"
  struct detag_event {    // DetagEvent: a colliding ping with priority took "it" from us
    std::string node;
  };
  struct good_node_event {  // GoodNodeEvent: while our value is nil, nodes that have one
    std::vector<std::string> nodes;
  };
  struct recover_event {  // RecoverEvent: a healed split (or a newcomer) was detected
    int64_t prio;         // our position in our side's history (0 = last pinger)
    bool replace;         // the other side's history won
    std::vector<std::string> local_nodes;
    std::vector<std::string> remote_nodes;
  };
  struct ping_event {  // PingEvent: debounced "someone else pinged"
    value msg;
  };
  struct setup_event {  // SetupEvent: a higher vers was adopted
    value msg;
  };
  struct raw_event {  // RawMsgEvent: every well-formed incoming message, before processing
    value msg;
  };
  struct collision_event {};     // our own init arrived twice: another node uses our name
  struct echo_missing_event {};  // our own init had not arrived by the end of the start delay
  using event =
      std::variant<tag_event, untag_event, detag_event, good_node_event, recover_event, ping_event,
                   setup_event, raw_event, collision_event, echo_missing_event>;

  struct hooks {
    std::function<void(const value& msg)> send;
    std::function<void(const event& ev)> on_event;
    std::function<double()> random;  // uniform in [0, 1)
  };

  /// `enabled = false` starts in state -1 (the delete actor). `send_raw` enables raw_event.
  ping_actor(std::string name, ping_config cfg, hooks h, bool enabled = true, bool send_raw = true);

  /// Sends init and vers and arms the start delay. Call once.
  void start(double now);
  /// One decoded payload from the group's topic. Returns nullopt if accepted, else why it was
  /// ignored (for the owner's log). Due timers (deadline <= now) run first.
  std::optional<std::string> receive(const value& msg, double now);
  /// Runs everything whose deadline is <= now.
  void on_timer(double now);
  /// The earliest pending deadline (nullopt before start()).
  std::optional<double> next_deadline() const;

  /// The value sent in our pings ([tock, tick] for the server; nil = not ready).
  void set_value(value v) { value_ = std::move(v); }
  /// asyncactor's `set_ready` (the server never calls it).
  void set_ready() { ready_ = true; }
  /// §4.5: raise `nodes` to `length` (bumping and sending the version); if disabled, become
  /// idle with an empty history and ping at once (during the start delay the first ping does
  /// it). The loop's current wait is left alone, as in the original.
  void enable(double now, std::optional<int64_t> length = std::nullopt);
  /// §4.5: stop pinging; `length` bounds the passive history (nullopt: leave it).
  void disable(std::optional<int64_t> length = 0);

  // Observers (for the owner and tests).
  const std::string& name() const { return name_; }
  int tagged() const { return tagged_; }
  const std::vector<std::string>& history() const { return history_.names; }
  const ping_config& config() const { return cfg_; }
  /// The `node` of the current vers (another node's name once a higher vers was adopted).
  const std::string& config_node() const { return cfg_node_; }
  /// The value a node sent last (nil if unknown); ours as of our last ping.
  value value_of(const std::string& node) const;
  /// asyncactor's `has_priority(a, b)`: higher value wins (nil lowest), then the lower name.
  bool has_priority(const std::string& a, const std::string& b) const;
  int64_t valid_pings() const { return valid_pings_; }

 private:
  enum class msg_type { init, vers, ping, hist };
  struct message {
    msg_type t;
    std::string node;  // hist: history[0]
    value val;
    std::vector<std::string> hist;
    std::string cfg_node;  // vers
    ping_config cfg;       // vers
    value raw;
  };
  struct pending_hist {  // a `_send_delay_ping` task waiting on its Event
    double deadline;
    std::vector<std::string> history;
    bool fired = false;  // the Event was set; the task removes the entry when it wakes
  };
  using recover_entry = std::variant<int64_t, pending_hist>;

  static std::optional<message> parse(const value& msg, std::string& why);
  void emit(event ev);
  void send_msg(const value& msg);
  value vers_message() const;
  double cycle() const { return cfg_.cycle_seconds(); }
  double gap() const { return cfg_.gap_seconds(); }
  int64_t nodes() const { return tagged_ < 0 ? off_nodes_ : cfg_.nodes; }
  double random();

  void first_ping(double now);
  void loop_head(double now);
  void handle_message(const message& m, double now);
  std::optional<bool> process_msg(const message& m, double now);
  void send_ping(double now, const std::vector<std::string>* history = nullptr);
  void send_delay_ping(int64_t pos, const std::vector<std::string>& hist, double now);
  void feed_debouncer(const value& msg, double now);
  void next_ping_time(double now);
  double time_to_next_ping();
  double ping_delay(int64_t pos, int64_t length, int64_t todo, int64_t total);
  bool run_one_due(double now);
  void reap_fired();

  std::string name_;
  ping_config cfg_;
  std::string cfg_node_;
  hooks hooks_;
  bool send_raw_;

  enum class phase { created, starting, running } phase_ = phase::created;
  double start_deadline_ = 0;
  std::deque<message> start_queue_;  // messages received during the start delay
  bool self_seen_ = false;

  value value_;
  bool ready_ = false;
  int tagged_;
  int64_t off_nodes_;
  node_list history_;
  std::map<std::string, value> values_;
  double next_ping_time_ = 0;
  double t_dest_ = 0;
  double wait_until_ = 0;  // the loop's current receive timeout
  int64_t valid_pings_ = 0;
  int64_t count_not_on_ = 0;
  std::map<std::string, recover_entry> recover_pings_;
  std::optional<double> version_job_;  // deadline of the delayed vers answer
  std::optional<double> debounce_until_;
  value debounce_msg_;
};

}  // namespace moatkv
