// The ping actor; see ping_actor.hpp for the contract and the differences to asyncactor 0.24.
#include "actors/gossip/ping_actor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace moatkv {

namespace {

bool is_real_number(const value& v) {
  return v.is_int() || v.is_float();
}

double number_of(const value& v) {
  if (v.is_float()) return v.as_double();
  if (v.type() == kind::uint64) return static_cast<double>(v.as_uint64());
  if (v.type() == kind::int64) return static_cast<double>(v.as_int64());
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  return std::numeric_limits<double>::quiet_NaN();
}

// An int that fits int64 (not bool: a bool there is a sender bug, not a count).
bool get_plain_int(const value& v, int64_t& out) {
  return v.is_int() && v.get_int(out);
}

// 1 - 2^-pos: the share of a gap that the node at `pos` of a history waits before it answers
// for its side (pos 0 at once, then 1/2, 3/4, …).
double backoff(int64_t pos) {
  return 1 - std::ldexp(1.0, -static_cast<int>(std::clamp<int64_t>(pos, 0, 1000)));
}

// Python `list[:n]`.
std::vector<std::string> py_head(const std::vector<std::string>& v, int64_t n) {
  int64_t len = static_cast<int64_t>(v.size());
  int64_t end = n >= 0 ? std::min(n, len) : std::max<int64_t>(len + n, 0);
  return {v.begin(), v.begin() + end};
}

// Python `list[a:b]` for 0 <= a <= b.
std::vector<std::string> py_slice(const std::vector<std::string>& v, size_t a, size_t b) {
  a = std::min(a, v.size());
  b = std::min(b, v.size());
  return {v.begin() + a, v.begin() + b};
}

value names_value(const std::vector<std::string>& names) {
  array a;
  a.reserve(names.size());
  for (const auto& n : names) a.emplace_back(n);
  return value(std::move(a));
}

// Exact numeric `a < b` across bool / int64 / uint64 / float64 (Python compares exactly).
// Integers are widened to __int128, which holds both int64 and uint64.
using wide = __int128;

wide wide_of(const value& v) {
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  if (v.type() == kind::uint64) return static_cast<wide>(v.as_uint64());
  return static_cast<wide>(v.as_int64());
}

// -1 / 0 / 1 for integer i vs finite-or-infinite, non-NaN double d.
int cmp_int_double(wide i, double d) {
  if (d >= 18446744073709551616.0) return -1;  // 2^64: above every integer we hold
  if (d < -9223372036854775808.0) return 1;    // below -2^63
  double t = std::trunc(d);
  wide ti = static_cast<wide>(t);
  if (i != ti) return i < ti ? -1 : 1;
  double frac = d - t;
  return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

bool number_less(const value& a, const value& b) {
  if (a.is_float() && b.is_float()) return a.as_double() < b.as_double();
  if (a.is_float()) {
    if (std::isnan(a.as_double())) return false;
    return cmp_int_double(wide_of(b), a.as_double()) > 0;
  }
  if (b.is_float()) {
    if (std::isnan(b.as_double())) return false;
    return cmp_int_double(wide_of(a), b.as_double()) < 0;
  }
  return wide_of(a) < wide_of(b);
}

// Python `a < b`; nullopt = TypeError.
std::optional<bool> python_less(const value& a, const value& b) {
  if (a.is_number() && b.is_number()) return number_less(a, b);
  if (a.is_str() && b.is_str()) return a.as_str() < b.as_str();  // UTF-8 bytes = code points
  if (a.is_bin() && b.is_bin()) return a.as_bin() < b.as_bin();
  if (a.is_array() && b.is_array()) {
    const array& x = a.as_array();
    const array& y = b.as_array();
    size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i)
      if (x[i] != y[i]) return python_less(x[i], y[i]);
    return x.size() < y.size();
  }
  return std::nullopt;
}

}  // namespace

std::optional<bool> python_greater(const value& a, const value& b) {
  return python_less(b, a);
}

// ---- ping_config ---------------------------------------------------------------------------

double ping_config::cycle_seconds() const {
  return number_of(cycle);
}
double ping_config::gap_seconds() const {
  return number_of(gap);
}

bool ping_config::force_in_set() const {
  if (force_in.is_bool()) return force_in.as_bool();
  if (is_real_number(force_in)) return number_of(force_in) != 0;
  return false;
}

bool ping_config::valid() const {
  if (!is_real_number(cycle) || !is_real_number(gap)) return false;
  double c = cycle_seconds(), g = gap_seconds();
  if (!std::isfinite(c) || !std::isfinite(g)) return false;
  // gap > 0 (the original allows 0, with which its disabled loop spins).
  return c >= 1 && g > 0 && c >= 3 * g;
}

ping_config ping_config::server_ping() {
  ping_config c;
  c.cycle = 10;
  c.gap = 2;
  return c;
}

ping_config ping_config::server_delete() {
  ping_config c;
  c.cycle = 100;
  c.gap = 10;
  c.version = 1;
  return c;
}

// ---- node_list -----------------------------------------------------------------------------

int64_t node_list::index_of(const std::string& name) const {
  auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int64_t>(it - names.begin());
}

void node_list::push_front(const std::string& name) {
  int64_t i = index_of(name);
  if (i >= 0) names.erase(names.begin() + i);
  int64_t len = static_cast<int64_t>(names.size());
  // Shortening by one when a node moves up from the middle lets stale nodes (e.g. the other
  // side of a split) drop off the end gradually.
  if (maxlen > 0 && len > 0 && ((0 <= i && i < len) || len == maxlen)) names.pop_back();
  names.insert(names.begin(), name);
}

// ---- ping_actor ----------------------------------------------------------------------------

ping_actor::ping_actor(std::string name, ping_config cfg, hooks h, bool enabled, bool send_raw)
    : name_(std::move(name)),
      cfg_(std::move(cfg)),
      cfg_node_(name_),
      hooks_(std::move(h)),
      send_raw_(send_raw),
      tagged_(enabled ? 0 : -1),
      off_nodes_(cfg_.nodes) {
  history_.maxlen = nodes();
}

double ping_actor::random() {
  return hooks_.random ? hooks_.random() : 0.5;
}

void ping_actor::emit(event ev) {
  if (hooks_.on_event) hooks_.on_event(ev);
}

void ping_actor::send_msg(const value& msg) {
  if (hooks_.send) hooks_.send(msg);
}

value ping_actor::value_of(const std::string& node) const {
  auto it = values_.find(node);
  return it == values_.end() ? value() : it->second;
}

value ping_actor::vers_message() const {
  return value(map{{"t", "vers"},
                   {"node", cfg_node_},
                   {"cycle", cfg_.cycle},
                   {"gap", cfg_.gap},
                   {"nodes", cfg_.nodes},
                   {"splits", cfg_.splits},
                   {"n_hosts", cfg_.n_hosts},
                   {"version", cfg_.version},
                   {"force_in", cfg_.force_in}});
}

std::optional<ping_actor::message> ping_actor::parse(const value& msg, std::string& why) {
  auto fail = [&](std::string w) -> std::optional<message> {
    why = std::move(w);
    return std::nullopt;
  };
  if (!msg.is_map()) return fail("not a map");
  for (const auto& [k, v] : msg.as_map())
    if (!k.is_str()) return fail("non-string key");
  const value* t = msg.find("t");
  if (!t || !t->is_str()) return fail("no type");
  message m;
  m.raw = msg;
  const std::string& ts = t->as_str();
  if (ts == "init") {
    m.t = msg_type::init;
  } else if (ts == "vers") {
    m.t = msg_type::vers;
  } else if (ts == "ping") {
    m.t = msg_type::ping;
  } else if (ts == "hist") {
    m.t = msg_type::hist;
  } else {
    return fail("unknown type '" + ts + "'");
  }

  if (m.t != msg_type::hist) {
    const value* n = msg.find("node");
    if (!n || !n->is_str()) return fail("no node name");
    // init and ping are asyncactor `_NodeMessage`s, which require a non-empty name.
    if (m.t != msg_type::vers && n->as_str().empty()) return fail("empty node name");
    m.node = n->as_str();
  }

  if (m.t == msg_type::ping || m.t == msg_type::hist) {
    const value* v = msg.find("value");
    const value* h = msg.find("history");
    if (!v) return fail("no value");
    if (!h || !h->is_array()) return fail("no history");
    for (const auto& e : h->as_array()) {
      if (!e.is_str()) return fail("non-string name in history");
      m.hist.push_back(e.as_str());
    }
    // Every sender puts itself (ping) or its side's last pinger (hist) first; an empty history
    // would later leave ours empty, which the original then dies on.
    if (m.hist.empty()) return fail("empty history");
    m.val = *v;
    if (m.t == msg_type::hist) m.node = m.hist.front();
  }

  if (m.t == msg_type::vers) {
    m.cfg_node = m.node;
    auto get_int = [&](const char* key, int64_t& out) {
      const value* v = msg.find(key);
      return v && get_plain_int(*v, out);
    };
    const value* c = msg.find("cycle");
    const value* g = msg.find("gap");
    if (!c || !g) return fail("vers without cycle/gap");
    m.cfg.cycle = *c;
    m.cfg.gap = *g;
    if (!get_int("nodes", m.cfg.nodes) || !get_int("splits", m.cfg.splits) ||
        !get_int("n_hosts", m.cfg.n_hosts) || !get_int("version", m.cfg.version))
      return fail("vers with missing or non-integer fields");
    if (const value* f = msg.find("force_in")) {
      if (!f->is_bool() && !f->is_int()) return fail("vers with bad force_in");
      m.cfg.force_in = *f;
    }
    if (!m.cfg.valid()) return fail("vers with invalid cycle/gap");
  }
  return m;
}

std::optional<ping_sender> ping_sender_of(const value& msg) {
  ping_sender p;
  if (const value* n = msg.find("node"); n && n->is_str()) {
    p.name = n->as_str();
  } else if (const value* h = msg.find("history");
             h && h->is_array() && !h->as_array().empty() && h->as_array()[0].is_str()) {
    p.name = h->as_array()[0].as_str();
  }
  if (p.name.empty()) return std::nullopt;
  if (const value* v = msg.find("value"); v && v->is_array() && v->as_array().size() == 2) {
    int64_t a, b;
    if (v->as_array()[0].get_int(a) && a >= 0) p.tock = static_cast<uint64_t>(a);
    if (v->as_array()[1].get_int(b) && b >= 0) p.tick = static_cast<uint64_t>(b);
  }
  return p;
}

void ping_actor::start(double now) {
  if (phase_ != phase::created) return;
  phase_ = phase::starting;
  send_msg(value(map{{"t", "init"}, {"node", name_}}));
  send_msg(vers_message());
  start_deadline_ = now + (random() / 2 + 1.5) * gap() + cycle();
}

std::optional<std::string> ping_actor::receive(const value& raw, double now) {
  std::string why;
  auto m = parse(raw, why);
  if (!m) return why;

  // Timers that are already due fire before the message is taken, as trio checks the
  // deadline before receiving.
  on_timer(now);

  if (send_raw_) emit(raw_event{raw});
  if (m->t == msg_type::init && m->node == name_) {
    if (self_seen_) {
      emit(collision_event{});
      return "our own init seen twice: name collision";
    }
    self_seen_ = true;
  }

  if (phase_ != phase::running) {
    // `_run` is still in its start delay: the reader queues the message.
    if (start_queue_.size() >= 99) return "start queue full";
    // A newcomer without data need not sit out its start delay (C + ~1.75G, 14 s by default)
    // before it learns who has data: the sync can run while the protocol still waits. This
    // changes only when we fetch, not what we send; later GoodNodeEvents are ignored while a
    // fetch runs. (The original waits; measured in issue 6 it was most of a new node's sync.)
    if (tagged_ >= 0 && value_.is_nil() && m->node != name_ && !m->val.is_nil() &&
        (m->t == msg_type::ping || m->t == msg_type::hist))
      emit(good_node_event{{m->node}});
    start_queue_.push_back(std::move(*m));
    return std::nullopt;
  }
  handle_message(*m, now);
  on_timer(now);  // zero-delay jobs (the prio-0 hist, the pos-0 vers answer)
  return std::nullopt;
}

std::optional<double> ping_actor::next_deadline() const {
  if (phase_ == phase::created) return std::nullopt;
  if (phase_ == phase::starting) return start_deadline_;
  double d = wait_until_;
  for (const auto& [node, e] : recover_pings_)
    if (auto* p = std::get_if<pending_hist>(&e); p && !p->fired) d = std::min(d, p->deadline);
  if (version_job_) d = std::min(d, *version_job_);
  if (debounce_until_) d = std::min(d, *debounce_until_);
  return d;
}

void ping_actor::on_timer(double now) {
  // Each step moves a deadline into the future (cycle >= 1 is enforced), so this ends.
  while (run_one_due(now)) {
  }
}

bool ping_actor::run_one_due(double now) {
  if (phase_ == phase::created) return false;
  if (phase_ == phase::starting) {
    if (now < start_deadline_) return false;
    first_ping(now);
    return true;
  }

  // The earliest due job runs first.
  enum class job { none, wait, recover, version, debounce } which = job::none;
  double best = std::numeric_limits<double>::infinity();
  std::string recover_node;
  auto consider = [&](double d, job j) {  // on a tie the first one considered runs first
    if (d <= now && d < best) {
      best = d;
      which = j;
      return true;
    }
    return false;
  };
  for (const auto& [node, e] : recover_pings_)
    if (auto* p = std::get_if<pending_hist>(&e); p && !p->fired)
      if (consider(p->deadline, job::recover)) recover_node = node;
  if (version_job_) consider(*version_job_, job::version);
  if (debounce_until_) consider(*debounce_until_, job::debounce);
  consider(wait_until_, job::wait);

  switch (which) {
    case job::none:
      return false;
    case job::wait:
      // The loop's receive timed out.
      if (tagged_ == 0) send_ping(now);
      loop_head(now);
      return true;
    case job::recover: {
      // `_send_delay_ping` timed out without hearing the side's pinger: we send the hist.
      auto hist = std::get<pending_hist>(recover_pings_[recover_node]).history;
      recover_pings_.erase(recover_node);
      send_ping(now, &hist);
      return true;
    }
    case job::version:
      version_job_.reset();
      send_msg(vers_message());
      return true;
    case job::debounce: {
      debounce_until_.reset();
      value msg = std::move(debounce_msg_);
      debounce_msg_ = value();
      if (tagged_ <= 0) {
        ++valid_pings_;
        emit(ping_event{std::move(msg)});
      }
      return true;
    }
  }
  return false;
}

void ping_actor::first_ping(double now) {
  phase_ = phase::running;
  if (!self_seen_) emit(echo_missing_event{});
  send_ping(now);
  t_dest_ = 0;
  loop_head(now);
  while (!start_queue_.empty()) {
    message m = std::move(start_queue_.front());
    start_queue_.pop_front();
    handle_message(m, now);
  }
}

// The top of `_run`'s loop: state transitions that are due, then the receive timeout.
void ping_actor::loop_head(double now) {
  if (tagged_ == 0) {
    wait_until_ = std::max(next_ping_time_, now);
    return;
  }
  if (now < t_dest_) {
    wait_until_ = t_dest_;
    return;
  }
  double t = 0;
  if (tagged_ < 0) {
    t = 2 * gap();
  } else if (tagged_ == 1) {
    t = gap();
    tagged_ = 2;
  } else if (tagged_ == 2) {
    t = cycle() - gap() / 2;
    emit(tag_event{value_});
    tagged_ = 3;
    ++valid_pings_;
  } else {
    // Timing check: G + (C - G/2) + 1.5G == C + 2G, the next-ping time of the last pinger.
    t = gap() * 1.5;
    emit(untag_event{});
    count_not_on_ = 0;
    tagged_ = 0;
  }
  t_dest_ = now + t;
  wait_until_ = t_dest_;
}

// The body of `_run`'s loop for a received message.
void ping_actor::handle_message(const message& m, double now) {
  if (tagged_ == 1) tagged_ = 0;  // about to be tagged and a message arrives: skip this turn
  if (process_msg(m, now).value_or(false)) {
    if (tagged_ == 3) {
      emit(untag_event{});
      count_not_on_ = 0;
    }
    tagged_ = 0;
  }
  reap_fired();
  loop_head(now);
}

// The woken `_send_delay_ping` tasks remove their entries (they were heard, so no hist).
void ping_actor::reap_fired() {
  std::erase_if(recover_pings_, [](const auto& kv) {
    auto* p = std::get_if<pending_hist>(&kv.second);
    return p && p->fired;
  });
}

std::optional<bool> ping_actor::process_msg(const message& m, double now) {
  if (tagged_ < 0) {
    // Passive: no history; every message (init and vers included) feeds the debouncer.
    next_ping_time(now);
    feed_debouncer(m.raw, now);
    return std::nullopt;
  }

  // We pinged first, so the history is not empty (parse rejects empty ones).
  std::string prev_node = history_.empty() ? std::string() : history_.names.front();

  switch (m.t) {
    case msg_type::ping: {
      // A ping from a side's last pinger answers a pending recovery wait; otherwise note when
      // we saw it so that a recovery starting soon does not send a hist for it.
      auto it = recover_pings_.find(m.node);
      if (it != recover_pings_.end() && std::holds_alternative<pending_hist>(it->second))
        std::get<pending_hist>(it->second).fired = true;
      else
        recover_pings_[m.node] = valid_pings_;
      break;
    }
    case msg_type::init:
      return std::nullopt;
    case msg_type::vers:
      if (m.cfg.version > cfg_.version) {
        cfg_ = m.cfg;
        cfg_node_ = m.cfg_node;
        emit(setup_event{vers_message()});
      } else if (m.cfg.version < cfg_.version) {
        // Someone runs an old config: whoever is "it" answers at once, the others in the order
        // of the history, each answer cancelling the pending ones.
        if (tagged_ > 1) {
          send_msg(vers_message());
        } else if (int64_t pos = history_.index_of(name_); pos >= 0) {
          version_job_ = now + gap() * backoff(pos);
        }
      } else {
        version_job_.reset();
      }
      return std::nullopt;
    case msg_type::hist:
      break;
  }

  if (m.node == name_ || m.node == prev_node) return std::nullopt;

  values_[m.node] = m.val;
  if (value_.is_nil() && !m.val.is_nil()) {
    std::vector<std::string> good;
    for (const auto& h : m.hist)
      if (!value_of(h).is_nil()) good.push_back(h);
    emit(good_node_event{std::move(good)});
  }

  if (py_slice(m.hist, 1, 2) == py_slice(history_.names, 0, 1)) {
    // The sender pinged after the last pinger we know of: the regular successor.
    if (m.t == msg_type::hist) return std::nullopt;  // recovery already started when sent
    history_.push_front(m.node);
    next_ping_time(now);
    feed_debouncer(m.raw, now);
    return true;
  }

  // Colliding pings.
  bool same_prev = py_slice(m.hist, 1, 2) == py_slice(history_.names, 1, 2);
  bool prefer_new = has_priority(m.node, prev_node);
  std::vector<std::string> old_hist = history_.names;
  if (prefer_new) {
    history_ = node_list{m.hist, nodes()};
    if (tagged_) {
      if (tagged_ == 3) emit(detag_event{m.node});
      tagged_ = 0;
    }
    next_ping_time(now);
    feed_debouncer(m.raw, now);
  }
  if (same_prev) return prefer_new;  // both refer to the same previous ping: plain collision

  // A healed split, or a newcomer.
  if (!value_.is_nil()) {
    auto it = std::find(old_hist.begin(), old_hist.end(), name_);
    if (it != old_hist.end()) {
      int64_t pos = it - old_hist.begin();
      node_list remote{m.hist, 0};
      if (m.t != msg_type::hist) remote.push_front(m.node);
      emit(recover_event{pos, prefer_new, old_hist, remote.names});
      send_delay_ping(pos, old_hist, now);
    }
  }
  return prefer_new;
}

bool ping_actor::has_priority(const std::string& a, const std::string& b) const {
  value va = value_of(a), vb = value_of(b);
  if (va.is_nil()) {
    if (!vb.is_nil()) return false;
  } else if (vb.is_nil()) {
    return true;
  } else if (va != vb) {
    // Python raises for values it cannot order; we fall back to the names (documented).
    if (auto g = python_greater(va, vb)) return *g;
  }
  return a < b;  // std::string compares bytes: UTF-8 byte order is code-point order
}

void ping_actor::send_ping(double now, const std::vector<std::string>* history) {
  if (tagged_ < 0) return;
  if (history) {
    value v = history->empty() ? value() : value_of(history->front());
    send_msg(value(map{
        {"t", "hist"}, {"value", v}, {"history", names_value(py_head(*history, cfg_.splits))}}));
    return;
  }
  values_[name_] = value_;
  if (!history_.empty()) tagged_ = 1;  // the very first ping of a lone node is not tagged
  history_.push_front(name_);
  next_ping_time(now);
  send_msg(value(map{{"t", "ping"},
                     {"node", name_},
                     {"value", value_},
                     {"history", names_value(py_head(history_.names, cfg_.splits))}}));
}

void ping_actor::send_delay_ping(int64_t pos, const std::vector<std::string>& hist, double now) {
  if (hist.empty()) return;
  const std::string& node = hist.front();
  auto it = recover_pings_.find(node);
  if (it != recover_pings_.end()) {
    if (std::holds_alternative<pending_hist>(it->second)) return;  // already waiting
    int64_t seen = std::get<int64_t>(it->second);
    if (nodes() > 1 && static_cast<double>(seen) < valid_pings_ - nodes() / 2.0) {
      recover_pings_.erase(it);
      return;
    }
  }
  // Earlier positions answer first; pos 0 immediately (run at the end of receive()).
  recover_pings_[node] = pending_hist{now + gap() * backoff(pos), hist};
}

void ping_actor::feed_debouncer(const value& msg, double now) {
  // The original's `_ping` task: the first message opens a 2·gap window; later ones only
  // replace the message reported when it closes.
  if (!debounce_until_) debounce_until_ = now + 2 * gap();
  debounce_msg_ = msg;
}

void ping_actor::next_ping_time(double now) {
  double f = time_to_next_ping();
  next_ping_time_ = now + cycle() + gap() * f;
}

double ping_actor::time_to_next_ping() {
  if (history_.empty()) return 1.9 - random() / 5;  // we might be the only node
  if (history_.names.front() == name_) return 2;    // we sent the last ping
  // Is there a node with a value in the first half of the chain? If not, a node that is not
  // ready yet does not push itself forward.
  int64_t p = 0, s = 0, lv = 1;
  for (const auto& h : history_.names) {
    if (p == 0 && !value_of(h).is_nil()) p = lv;
    if (h == name_) s = lv;
    ++lv;
    if (nodes() > 0 && lv > nodes()) break;
  }
  if (!ready_ && p > lv / 2) return 2 + random() / 3;
  int64_t todo = nodes() > 0 ? nodes() - static_cast<int64_t>(history_.names.size()) : 1;
  int64_t total = std::max<int64_t>(static_cast<int64_t>(values_.size()), cfg_.n_hosts);
  return ping_delay(s - 1, lv, todo, total);
}

double ping_actor::ping_delay(int64_t pos, int64_t length, int64_t todo, int64_t total) {
  if (pos >= 0) {
    // On the chain: later members ping earlier (0.5, 0.75, 0.875, … of a gap).
    return 1 - (1 - backoff(length - pos)) / 2;
  }
  double tot = static_cast<double>(std::max<int64_t>(total, 1));
  if (cfg_.force_in_set()) {
    // Every participant must get on the chain: try harder.
    if (count_not_on_ >= total) return random() / 4;
    if (random() > (count_not_on_ - 1) / tot) return 0.5 + random() / 2;
    return random() / 2;
  }
  double f;
  if (todo > 0) {
    f = static_cast<double>(todo);  // the chain is too short: try somewhat harder to get on
  } else {
    ++count_not_on_;
    f = tot;
  }
  if (random() < 1 / f / tot) return random() / 3;  // butt in early
  return 1.5 + random() / 2;                        // fall back late
}

void ping_actor::enable(double now, std::optional<int64_t> length) {
  if (length && cfg_.nodes < *length) {
    cfg_.nodes = *length;
    cfg_.version += 1;
    send_msg(vers_message());
  }
  if (tagged_ != -1) return;
  tagged_ = 0;
  history_.names.clear();
  history_.maxlen = nodes();
  count_not_on_ = 1;
  if (phase_ == phase::running) send_ping(now);
}

void ping_actor::disable(std::optional<int64_t> length) {
  if (tagged_ == 3) emit(untag_event{});
  if (length) {
    off_nodes_ = *length;
    history_.maxlen = *length;
  }
  tagged_ = -1;
}

}  // namespace moatkv
