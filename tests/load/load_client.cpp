// moatkv-load: a load test against a running cluster (issue 6, hardening). Benchmarks measure
// speed (`moatkv bench`); this checks that nothing goes wrong under sustained concurrent load.
//
//   writers   (1 − watchers-fraction of --clients) one connection each, to node id % N. Each
//             does, as fast as the node answers (or --rate), set_value (80 %), get_value (15 %)
//             and delete_value (5 %) on its own keys PREFIX.c<id>.k<n>, n < --keys-per-client,
//             and remembers for every key the last ACKNOWLEDGED state (value or deleted). A
//             get_value must return exactly that state (the writer is the key's only writer and
//             reads from the node it wrote to).
//   watchers  (the rest) one connection each, to node (w + 1) % N, with one `watch` per writer
//             id ≡ w (mod watchers) that is connected to another node: the events travel
//             through the backend. Each watcher must get events; the last event it saw of
//             every key must be the key's final state.
//
// Every reply with `error` is a failure (its text is kept for the report), and so is a lost
// connection. After --duration the writers stop; then every node is polled with get_tree
// PREFIX until it holds exactly the acknowledged final state of every key (lost, mismatched,
// resurrected keys are reported per node) or --converge-timeout passes.
//
// Exit status: 0 all checks passed, 1 a check failed, 2 bad arguments or the cluster unusable
// (unreachable, or PREFIX not empty: a previous run's keys would look like lost updates).
//
// Threads: one per client (blocking connections, client_connection is not thread-safe), so
// the nodes see --clients concurrent TCP connections, plus one for the convergence polls.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "messages/path_syntax.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::load {

namespace {

using load_clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct endpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

struct load_options {
  std::string nodes_text;
  std::vector<endpoint> nodes;
  int clients = 200;
  double watchers_fraction = 0.25;
  double duration = 60;
  int keys_per_client = 20;
  bool json = false;
  std::string prefix = "load";
  double rate = 0;  // ops/s per writer, 0: as fast as the node answers
  double timeout = 30;
  double converge_timeout = 60;
  uint64_t seed = 1;
  array prefix_path;  // parsed `prefix`
};

// The operation mix of a writer (cumulative): mostly writes, some reads, a few deletes.
constexpr double share_set = 0.80;
constexpr double share_get = 0.95;  // 0.80 … 0.95: get_value, the rest: delete_value

// The report quotes at most this many problem texts of each kind.
constexpr size_t max_samples = 10;

// ---- keys and values --------------------------------------------------------------------------

std::string writer_element(int writer) {
  return "c" + std::to_string(writer);
}
std::string key_element(int key) {
  return "k" + std::to_string(key);
}

value writer_path(const load_options& o, int writer) {
  array p = o.prefix_path;
  p.emplace_back(writer_element(writer));
  return value::make_path(std::move(p));
}

value key_path(const load_options& o, int writer, int key) {
  array p = o.prefix_path;
  p.emplace_back(writer_element(writer));
  p.emplace_back(key_element(key));
  return value::make_path(std::move(p));
}

// Unique per write (writer, key, the writer's write counter), so a stale value is never
// mistaken for the current one.
value key_value(int writer, int key, int64_t n) {
  return value(map{{"c", writer}, {"k", key}, {"n", n}, {"s", "0123456789abcdef"}});
}

bool same(const value& a, const value& b) {
  return a == b && same_type_equal(a, b);
}

// The last acknowledged state of one key.
struct key_state {
  enum class kind : uint8_t {
    untouched,  // never written: absent
    present,    // the set of write number `n` was acknowledged
    deleted,    // a delete was acknowledged: absent
    uncertain,  // the last request got an error or no reply: either state is possible
  };
  kind k = kind::untouched;
  int64_t n = 0;
};

// What a key must look like at the end: nullopt = absent. Uncertain keys have no expectation.
std::optional<value> expected_value(int writer, int key, const key_state& s) {
  if (s.k == key_state::kind::present) return key_value(writer, key, s.n);
  return std::nullopt;
}

std::string show(const std::optional<value>& v) {
  return v ? debug_string(*v) : "(absent)";
}

// Streamed paths arrive depth-compressed (server-internals §7.5): `path` is the rest after the
// first `depth` elements of the previous record's path, both relative to the stream's prefix.
struct path_expander {
  array last;
  bool expand(const value& rec, array& out) {
    const value* p = rec.find("path");
    if (!p || !p->is_sequence()) return false;
    int64_t depth = int_field(rec, "depth", 0);
    if (depth < 0 || static_cast<size_t>(depth) > last.size()) return false;
    out.assign(last.begin(), last.begin() + depth);
    for (const value& e : p->elements()) out.push_back(e);
    last = out;
    return true;
  }
};

// "k<n>" -> n, or -1.
int parse_index(const value& elem, char letter, int limit) {
  if (!elem.is_str()) return -1;
  const std::string& s = elem.as_str();
  if (s.size() < 2 || s[0] != letter || s.size() > 10) return -1;
  int n = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    n = n * 10 + (s[i] - '0');
  }
  return n < limit ? n : -1;
}

// ---- latency histogram ------------------------------------------------------------------------

// Log-scale buckets, 20 per decade from 1 µs: cheap enough for every request of 200 threads
// over minutes, precise to ~12 % for the percentiles.
class histogram {
 public:
  static constexpr int per_decade = 20;
  static constexpr int buckets = per_decade * 9;  // up to 1000 s
  void add(double us) {
    int b = us <= 1 ? 0 : static_cast<int>(std::log10(us) * per_decade);
    ++counts_[static_cast<size_t>(std::clamp(b, 0, buckets - 1))];
    ++total_;
  }
  void merge(const histogram& h) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += h.counts_[i];
    total_ += h.total_;
  }
  double percentile(double p) const {
    if (total_ == 0) return 0;
    auto want = static_cast<int64_t>(std::ceil(p * static_cast<double>(total_)));
    int64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= want) return std::pow(10.0, (static_cast<double>(i) + 0.5) / per_decade);
    }
    return std::pow(10.0, 9.0);
  }

 private:
  std::vector<int64_t> counts_ = std::vector<int64_t>(buckets, 0);
  int64_t total_ = 0;
};

// ---- shared run state -------------------------------------------------------------------------

struct run_control {
  explicit run_control(std::ptrdiff_t clients) : ready(clients) {}
  std::latch ready;  // every client connected (and every watch registered)
  std::latch go{1};  // the load starts
  std::atomic<bool> stop_writers{false};
  std::atomic<bool> stop_watchers{false};
  std::atomic<int64_t> ops{0};
  std::atomic<int64_t> failures{0};  // error replies, read mismatches, lost connections
  load_clock::time_point t0;
};

// A problem with a bounded list of example texts.
struct problems {
  int64_t count = 0;
  std::vector<std::string> samples;
  void add(std::string text) {
    ++count;
    if (samples.size() < max_samples) samples.push_back(std::move(text));
  }
  void merge(const problems& p) {
    count += p.count;
    for (const auto& s : p.samples)
      if (samples.size() < max_samples) samples.push_back(s);
  }
};

std::string error_text(const value& reply) {
  const value* e = reply.find("error");
  return e && e->is_str() ? e->as_str() : debug_string(e ? *e : reply);
}

// ---- writers ----------------------------------------------------------------------------------

struct writer_result {
  int node = 0;
  int64_t sets = 0, gets = 0, deletes = 0;
  problems error_replies;
  problems read_mismatches;
  std::string lost_connection;  // set if the connection failed (the writer stopped there)
  histogram latency;
  std::vector<key_state> keys;
};

void run_writer(const load_options& o, run_control& rc, int id, writer_result& r) {
  r.node = id % static_cast<int>(o.nodes.size());
  const endpoint& ep = o.nodes[static_cast<size_t>(r.node)];
  r.keys.assign(static_cast<size_t>(o.keys_per_client), key_state{});
  std::unique_ptr<client_connection> c;
  try {
    c = std::make_unique<client_connection>(
        ep.host, ep.port, std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000)));
  } catch (const std::exception& e) {
    r.lost_connection =
        "writer c" + std::to_string(id) + " cannot connect to " + ep.text() + ": " + e.what();
    rc.failures.fetch_add(1, std::memory_order_relaxed);
  }
  rc.ready.count_down();
  rc.go.wait();
  if (!c) return;

  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(id));
  std::uniform_int_distribution<int> pick_key(0, o.keys_per_client - 1);
  std::uniform_real_distribution<double> pick_op(0, 1);
  int64_t writes = 0;
  int64_t done = 0;
  key_state* in_flight = nullptr;  // a write whose reply has not arrived
  auto failed = [&](std::string text, problems& where) {
    where.add("c" + std::to_string(id) + "@" + ep.text() + ": " + std::move(text));
    rc.failures.fetch_add(1, std::memory_order_relaxed);
  };
  try {
    while (!rc.stop_writers.load(std::memory_order_relaxed)) {
      if (o.rate > 0) {  // paced: op k starts at t0 + k/rate (no catching up bursts)
        auto due = rc.t0 + std::chrono::duration_cast<load_clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(done) / o.rate));
        if (due > load_clock::now()) std::this_thread::sleep_until(due);
        if (rc.stop_writers.load(std::memory_order_relaxed)) break;
      }
      int k = pick_key(rng);
      key_state& ks = r.keys[static_cast<size_t>(k)];
      value path = key_path(o, id, k);
      double op = pick_op(rng);
      auto t = load_clock::now();
      if (op < share_set) {
        int64_t n = ++writes;
        in_flight = &ks;
        int64_t seq = c->send_request(
            "set_value", {{"path", path}, {"value", key_value(id, k, n)}, {"nchain", 0}});
        value reply = c->read_for(seq);
        in_flight = nullptr;
        if (reply.find("error")) {
          ks.k = key_state::kind::uncertain;
          failed("set_value " + key_element(k) + ": " + error_text(reply), r.error_replies);
        } else {
          ks = {key_state::kind::present, n};
        }
        ++r.sets;
      } else if (op < share_get) {
        int64_t seq = c->send_request("get_value", {{"path", path}, {"nchain", 0}});
        value reply = c->read_for(seq);
        if (reply.find("error")) {
          failed("get_value " + key_element(k) + ": " + error_text(reply), r.error_replies);
        } else if (ks.k != key_state::kind::uncertain) {
          std::optional<value> want = expected_value(id, k, ks);
          const value* got = reply.find("value");
          if (want.has_value() != (got != nullptr) || (got && !same(*got, *want)))
            failed("get_value " + key_element(k) + " = " +
                       show(got ? std::optional<value>(*got) : std::nullopt) + ", acknowledged " +
                       show(want),
                   r.read_mismatches);
        }
        ++r.gets;
      } else {
        in_flight = &ks;
        int64_t seq = c->send_request("delete_value", {{"path", path}, {"nchain", 0}});
        value reply = c->read_for(seq);
        in_flight = nullptr;
        if (reply.find("error")) {
          ks.k = key_state::kind::uncertain;
          failed("delete_value " + key_element(k) + ": " + error_text(reply), r.error_replies);
        } else {
          ks.k = key_state::kind::deleted;
        }
        ++r.deletes;
      }
      r.latency.add(std::chrono::duration<double, std::micro>(load_clock::now() - t).count());
      ++done;
      rc.ops.fetch_add(1, std::memory_order_relaxed);
    }
  } catch (const server_error& e) {  // a connection-level error message
    if (in_flight) in_flight->k = key_state::kind::uncertain;
    failed(std::string("connection error: ") + e.what(), r.error_replies);
    r.lost_connection = "writer c" + std::to_string(id) + "@" + ep.text() + ": " + e.what();
  } catch (const std::exception& e) {
    if (in_flight) in_flight->k = key_state::kind::uncertain;
    r.lost_connection = "writer c" + std::to_string(id) + "@" + ep.text() + ": " + e.what();
    rc.failures.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---- watchers ---------------------------------------------------------------------------------

// The last event a watcher saw for one key.
struct seen_state {
  bool any = false;
  std::optional<value> v;  // nullopt: the event had no value (deleted)
};

struct watcher_result {
  int node = 0;
  std::vector<int> writers;  // watched writers
  std::atomic<int64_t> events{0};
  problems error_replies;
  problems odd_events;  // events outside the watched keys
  std::string lost_connection;
  std::unique_ptr<client_connection> conn;  // kept until joined: main shuts its socket down
  std::atomic<int> fd{-1};
  std::mutex mu;                              // guards `seen` (read by main while running)
  std::vector<std::vector<seen_state>> seen;  // [watched writer][key]
};

void run_watcher(const load_options& o, run_control& rc, int id, watcher_result& r) {
  const endpoint& ep = o.nodes[static_cast<size_t>(r.node)];
  auto failed = [&](std::string text, problems& where) {
    where.add("w" + std::to_string(id) + "@" + ep.text() + ": " + std::move(text));
    rc.failures.fetch_add(1, std::memory_order_relaxed);
  };
  std::map<int64_t, size_t> stream_of;  // watch seq -> index into r.writers
  std::vector<path_expander> paths(r.writers.size());
  size_t started = 0;
  // Returns false once the watcher should stop reading.
  auto handle = [&](const value& msg) {
    int64_t seq = int_field(msg, "seq", -1);
    auto it = stream_of.find(seq);
    if (msg.find("error")) {
      failed((it == stream_of.end() ? std::string("connection")
                                    : "watch " + writer_element(r.writers[it->second])) +
                 ": " + error_text(msg),
             r.error_replies);
      if (it == stream_of.end()) return false;
      ++started;  // a refused watch gets no {state: start}: do not wait for one
      return true;
    }
    if (it == stream_of.end()) return true;  // e.g. the hello's answer
    size_t w = it->second;
    if (const value* st = msg.find("state"); st && st->is_str()) {
      if (st->as_str() == "start") ++started;
      if (st->as_str() == "end")
        failed("watch " + writer_element(r.writers[w]) + " ended by the node", r.error_replies);
      return true;
    }
    array rel;
    int key = -1;
    if (paths[w].expand(msg, rel) && rel.size() == 1)
      key = parse_index(rel[0], 'k', o.keys_per_client);
    if (key < 0) {
      r.odd_events.add("w" + std::to_string(id) + ": " + debug_string(msg));
      rc.failures.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    const value* v = msg.find("value");
    {
      std::lock_guard lock(r.mu);
      r.seen[w][static_cast<size_t>(key)] = {true, v ? std::optional<value>(*v) : std::nullopt};
    }
    r.events.fetch_add(1, std::memory_order_relaxed);
    return true;
  };

  r.seen.assign(r.writers.size(), std::vector<seen_state>(static_cast<size_t>(o.keys_per_client)));
  bool ok = true;
  try {
    r.conn = std::make_unique<client_connection>(
        ep.host, ep.port, std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000)));
    for (size_t w = 0; w < r.writers.size(); ++w)
      stream_of[r.conn->send_request(
          "watch", {{"path", writer_path(o, r.writers[w])}, {"max_depth", -1}})] = w;
    // Registered before any writer starts, so the watcher sees every change.
    while (started < r.writers.size())
      if (!handle(r.conn->read_message())) break;
    r.fd.store(r.conn->fd());
  } catch (const std::exception& e) {
    r.lost_connection = "watcher w" + std::to_string(id) + "@" + ep.text() + ": " + e.what();
    rc.failures.fetch_add(1, std::memory_order_relaxed);
    ok = false;
  }
  rc.ready.count_down();
  rc.go.wait();
  if (!ok) return;
  // Quiet phases (convergence) must not time out: the end comes as a shutdown of the socket.
  r.conn->set_timeout(std::chrono::hours(24));
  try {
    for (;;)
      if (!handle(r.conn->read_message())) break;
  } catch (const std::exception& e) {
    if (!rc.stop_watchers.load()) {
      r.lost_connection = "watcher w" + std::to_string(id) + "@" + ep.text() + ": " + e.what();
      rc.failures.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

// ---- convergence ------------------------------------------------------------------------------

// The final state every node must hold: key (relative path text) -> value, nullopt = absent.
// Keys whose last request failed are left out (`uncertain`: only agreement is checked).
struct final_state {
  std::map<std::string, std::optional<value>> keys;
  std::vector<std::string> uncertain;
};

std::string rel_key(int writer, int key) {
  return writer_element(writer) + "." + key_element(key);
}

final_state expected_state(const load_options& o, const std::vector<writer_result>& writers) {
  final_state f;
  for (size_t w = 0; w < writers.size(); ++w)
    for (int k = 0; k < o.keys_per_client; ++k) {
      const key_state& s = writers[w].keys[static_cast<size_t>(k)];
      if (s.k == key_state::kind::uncertain)
        f.uncertain.push_back(rel_key(static_cast<int>(w), k));
      else
        f.keys[rel_key(static_cast<int>(w), k)] = expected_value(static_cast<int>(w), k, s);
    }
  return f;
}

// Everything a node holds under the prefix, by relative path text. Throws on transport errors.
std::map<std::string, value> fetch_subtree(const load_options& o, client_connection& c) {
  std::map<std::string, value> out;
  path_expander paths;
  int64_t seq =
      c.send_request("get_tree", {{"path", value::make_path(o.prefix_path)}, {"nchain", 0}});
  for (;;) {
    value msg = c.read_for(seq);
    if (msg.find("error")) {
      // A node that never saw the prefix has no such entry: an empty subtree.
      if (error_text(msg).rfind("KeyError", 0) == 0) return out;
      throw server_error("get_tree: " + error_text(msg));
    }
    if (const value* st = msg.find("state"); st && st->is_str()) {
      if (st->as_str() == "end") return out;
      continue;
    }
    array rel;
    if (!paths.expand(msg, rel)) throw client_error("get_tree: bad path in " + debug_string(msg));
    const value* v = msg.find("value");
    if (v) out[format_path(value(rel))] = *v;
  }
}

struct node_diff {
  int64_t lost = 0;         // acknowledged value missing
  int64_t mismatched = 0;   // another value than the acknowledged one
  int64_t resurrected = 0;  // a value where the acknowledged state is "deleted"
  int64_t unexpected = 0;   // a key no writer uses
  int64_t disagreeing = 0;  // an uncertain key that differs from the first node
  std::vector<std::string> samples;
  std::string unreachable;
  int64_t total() const { return lost + mismatched + resurrected + unexpected + disagreeing; }
};

node_diff compare(const final_state& want, const std::map<std::string, value>& have,
                  const std::map<std::string, value>* first) {
  node_diff d;
  auto sample = [&](std::string s) {
    if (d.samples.size() < max_samples) d.samples.push_back(std::move(s));
  };
  for (const auto& [key, v] : want.keys) {
    auto it = have.find(key);
    if (v && it == have.end()) {
      ++d.lost;
      sample("lost " + key + " = " + debug_string(*v));
    } else if (v && !same(it->second, *v)) {
      ++d.mismatched;
      sample("mismatched " + key + ": " + debug_string(it->second) + ", acknowledged " +
             debug_string(*v));
    } else if (!v && it != have.end()) {
      ++d.resurrected;
      sample("resurrected " + key + " = " + debug_string(it->second) + " (acknowledged deleted)");
    }
  }
  for (const auto& [key, v] : have)
    if (!want.keys.count(key) &&
        std::find(want.uncertain.begin(), want.uncertain.end(), key) == want.uncertain.end()) {
      ++d.unexpected;
      sample("unexpected " + key + " = " + debug_string(v));
    }
  if (first)
    for (const auto& key : want.uncertain) {
      auto a = first->find(key);
      auto b = have.find(key);
      bool a_has = a != first->end(), b_has = b != have.end();
      if (a_has != b_has || (a_has && !same(a->second, b->second))) {
        ++d.disagreeing;
        sample("disagreeing (uncertain) " + key);
      }
    }
  return d;
}

struct convergence_result {
  bool converged = false;
  double seconds = 0;
  std::vector<node_diff> nodes;
};

convergence_result wait_converged(const load_options& o, const final_state& want) {
  convergence_result res;
  auto t0 = load_clock::now();
  auto deadline = t0 + std::chrono::duration_cast<load_clock::duration>(
                           std::chrono::duration<double>(o.converge_timeout));
  std::vector<std::unique_ptr<client_connection>> conns(o.nodes.size());
  for (;;) {
    res.nodes.assign(o.nodes.size(), node_diff{});
    std::vector<std::map<std::string, value>> trees(o.nodes.size());
    bool all = true;
    for (size_t i = 0; i < o.nodes.size(); ++i) {
      try {
        if (!conns[i])
          conns[i] = std::make_unique<client_connection>(o.nodes[i].host, o.nodes[i].port,
                                                         std::chrono::seconds(20));
        trees[i] = fetch_subtree(o, *conns[i]);
        res.nodes[i] = compare(want, trees[i], i > 0 && conns[0] ? &trees[0] : nullptr);
      } catch (const std::exception& e) {
        conns[i].reset();  // reconnect on the next round
        res.nodes[i].unreachable = e.what();
      }
      if (!res.nodes[i].unreachable.empty() || res.nodes[i].total() > 0) all = false;
    }
    res.seconds = std::chrono::duration<double>(load_clock::now() - t0).count();
    if (all) {
      res.converged = true;
      return res;
    }
    if (load_clock::now() >= deadline) return res;
    std::this_thread::sleep_for(250ms);
  }
}

// Keys whose last watch event differs from the final state (uncertain keys aside).
int64_t stale_watch_keys(const load_options& o, const std::vector<writer_result>& writers,
                         watcher_result& w, std::vector<std::string>* samples) {
  int64_t stale = 0;
  std::lock_guard lock(w.mu);
  for (size_t i = 0; i < w.writers.size(); ++i) {
    int writer = w.writers[i];
    for (int k = 0; k < o.keys_per_client; ++k) {
      const key_state& ks = writers[static_cast<size_t>(writer)].keys[static_cast<size_t>(k)];
      if (ks.k == key_state::kind::uncertain) continue;
      std::optional<value> want = expected_value(writer, k, ks);
      const seen_state& s = w.seen[i][static_cast<size_t>(k)];
      std::optional<value> got = s.any ? s.v : std::nullopt;
      if (want.has_value() == got.has_value() && (!want || same(*want, *got))) continue;
      ++stale;
      if (samples && samples->size() < max_samples)
        samples->push_back("watcher@node " + std::to_string(w.node) + ": last event of " +
                           rel_key(writer, k) + " " + show(got) + ", final " + show(want));
    }
  }
  return stale;
}

// ---- report -----------------------------------------------------------------------------------

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

std::string json_strings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_string(v[i]);
  return out + "]";
}

std::vector<endpoint> parse_nodes(const std::string& text) {
  std::vector<endpoint> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw CLI::ValidationError("--nodes", "'" + item + "' is not HOST:PORT");
    endpoint ep;
    ep.host = item.substr(0, colon);
    try {
      size_t used = 0;
      int port = std::stoi(item.substr(colon + 1), &used);
      if (used != item.size() - colon - 1 || port <= 0 || port > 65535) throw std::out_of_range("");
      ep.port = static_cast<uint16_t>(port);
    } catch (const std::exception&) {
      throw CLI::ValidationError("--nodes", "'" + item + "' has no valid port");
    }
    out.push_back(ep);
    start = end + 1;
  }
  return out;
}

int run(load_options& o) {
  const int n_nodes = static_cast<int>(o.nodes.size());
  // At least one writer; watchers only where there is someone to watch.
  int n_watchers = o.clients < 2
                       ? 0
                       : std::clamp(static_cast<int>(std::lround(o.clients * o.watchers_fraction)),
                                    0, o.clients - 1);
  int n_writers = o.clients - n_watchers;

  // A previous run's keys under the prefix would look like lost or unexpected updates.
  try {
    client_connection c(o.nodes[0].host, o.nodes[0].port, std::chrono::seconds(20));
    auto existing = fetch_subtree(o, c);
    if (!existing.empty()) {
      std::fprintf(stderr,
                   "moatkv-load: %s already holds %zu entries under %s: use a fresh cluster or "
                   "another --prefix\n",
                   o.nodes[0].text().c_str(), existing.size(), o.prefix.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moatkv-load: %s: %s\n", o.nodes[0].text().c_str(), e.what());
    return 2;
  }

  run_control rc(o.clients);
  std::vector<writer_result> writers(static_cast<size_t>(n_writers));
  std::vector<watcher_result> watchers(static_cast<size_t>(n_watchers));
  for (int w = 0; w < n_watchers; ++w) {
    watcher_result& r = watchers[static_cast<size_t>(w)];
    r.node = (w + 1) % n_nodes;
    for (int i = w; i < n_writers; i += n_watchers)
      if (n_nodes == 1 || i % n_nodes != r.node) r.writers.push_back(i);
  }
  std::vector<std::thread> writer_threads, watcher_threads;
  for (int w = 0; w < n_watchers; ++w)
    watcher_threads.emplace_back(
        [&, w] { run_watcher(o, rc, w, watchers[static_cast<size_t>(w)]); });
  for (int i = 0; i < n_writers; ++i)
    writer_threads.emplace_back([&, i] { run_writer(o, rc, i, writers[static_cast<size_t>(i)]); });
  rc.ready.wait();
  rc.t0 = load_clock::now();
  rc.go.count_down();
  std::fprintf(stderr, "moatkv-load: %d writers, %d watchers on %d nodes, %.0f s\n", n_writers,
               n_watchers, n_nodes, o.duration);

  // Progress every 10 s on stderr, so a long run shows that it is alive (and when it went bad).
  auto end = rc.t0 + std::chrono::duration_cast<load_clock::duration>(
                         std::chrono::duration<double>(o.duration));
  int64_t last_ops = 0;
  auto last_t = rc.t0;
  for (auto next = rc.t0 + 10s; next < end; next += 10s) {
    std::this_thread::sleep_until(next);
    int64_t ops = rc.ops.load();
    std::fprintf(
        stderr, "moatkv-load: %4.0f s: %lld ops (%.0f ops/s), %lld failures\n",
        std::chrono::duration<double>(next - rc.t0).count(), static_cast<long long>(ops),
        static_cast<double>(ops - last_ops) / std::chrono::duration<double>(next - last_t).count(),
        static_cast<long long>(rc.failures.load()));
    last_ops = ops;
    last_t = next;
  }
  std::this_thread::sleep_until(end);
  rc.stop_writers = true;
  for (auto& t : writer_threads) t.join();
  double load_seconds = std::chrono::duration<double>(load_clock::now() - rc.t0).count();

  final_state want = expected_state(o, writers);
  std::fprintf(stderr, "moatkv-load: load done; waiting for the nodes to converge\n");
  convergence_result conv = wait_converged(o, want);

  // The watchers' events may still be on their way when the nodes agree: give them a moment.
  std::vector<std::string> stale_samples;
  int64_t stale = 0;
  auto grace_end = load_clock::now() + 10s;
  for (;;) {
    stale = 0;
    for (auto& w : watchers) stale += stale_watch_keys(o, writers, w, nullptr);
    if (stale == 0 || load_clock::now() >= grace_end) break;
    std::this_thread::sleep_for(100ms);
  }
  if (stale > 0)
    for (auto& w : watchers) stale_watch_keys(o, writers, w, &stale_samples);
  rc.stop_watchers = true;
  for (auto& w : watchers)
    if (int fd = w.fd.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  for (auto& t : watcher_threads) t.join();

  // ---- totals ----
  int64_t sets = 0, gets = 0, deletes = 0;
  problems errors, mismatches, odd;
  std::vector<std::string> lost_connections;
  histogram lat;
  for (auto& r : writers) {
    sets += r.sets;
    gets += r.gets;
    deletes += r.deletes;
    errors.merge(r.error_replies);
    mismatches.merge(r.read_mismatches);
    lat.merge(r.latency);
    if (!r.lost_connection.empty()) lost_connections.push_back(r.lost_connection);
  }
  int64_t events = 0, min_events = -1, max_events = 0, watched_writers = 0, silent_watchers = 0;
  for (auto& w : watchers) {
    errors.merge(w.error_replies);
    odd.merge(w.odd_events);
    if (!w.lost_connection.empty()) lost_connections.push_back(w.lost_connection);
    int64_t e = w.events.load();
    events += e;
    watched_writers += static_cast<int64_t>(w.writers.size());
    if (w.writers.empty()) continue;
    min_events = min_events < 0 ? e : std::min(min_events, e);
    max_events = std::max(max_events, e);
    if (e == 0) ++silent_watchers;
  }
  if (min_events < 0) min_events = 0;
  int64_t ops = sets + gets + deletes;
  double ops_s = static_cast<double>(ops) / load_seconds;
  int64_t lost = 0, mismatched = 0, resurrected = 0, unexpected = 0, disagreeing = 0;
  for (auto& d : conv.nodes) {
    lost += d.lost;
    mismatched += d.mismatched;
    resurrected += d.resurrected;
    unexpected += d.unexpected;
    disagreeing += d.disagreeing;
  }
  bool pass = errors.count == 0 && mismatches.count == 0 && odd.count == 0 &&
              lost_connections.empty() && conv.converged && silent_watchers == 0 && stale == 0;

  if (o.json) {
    std::printf(
        "{\"pass\": %s, \"clients\": %d, \"writers\": %d, \"watchers\": %d, \"nodes\": %d,\n",
        pass ? "true" : "false", o.clients, n_writers, n_watchers, n_nodes);
    std::printf(
        " \"seconds\": %.1f, \"ops\": %lld, \"sets\": %lld, \"gets\": %lld, \"deletes\": %lld, "
        "\"ops_s\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f,\n",
        load_seconds, static_cast<long long>(ops), static_cast<long long>(sets),
        static_cast<long long>(gets), static_cast<long long>(deletes), ops_s, lat.percentile(0.5),
        lat.percentile(0.99));
    std::printf(" \"error_replies\": %lld, \"errors\": %s,\n", static_cast<long long>(errors.count),
                json_strings(errors.samples).c_str());
    std::printf(" \"read_mismatches\": %lld, \"read_mismatch_samples\": %s,\n",
                static_cast<long long>(mismatches.count), json_strings(mismatches.samples).c_str());
    std::printf(" \"lost_connections\": %s,\n", json_strings(lost_connections).c_str());
    std::printf(
        " \"keys\": %zu, \"uncertain_keys\": %zu, \"converged\": %s, "
        "\"convergence_s\": %.2f,\n",
        want.keys.size() + want.uncertain.size(), want.uncertain.size(),
        conv.converged ? "true" : "false", conv.seconds);
    std::printf(" \"per_node\": [");
    for (size_t i = 0; i < conv.nodes.size(); ++i) {
      const node_diff& d = conv.nodes[i];
      std::printf(
          "%s\n  {\"node\": %s, \"lost\": %lld, \"mismatched\": %lld, \"resurrected\": %lld, "
          "\"unexpected\": %lld, \"disagreeing\": %lld, \"unreachable\": %s, \"samples\": %s}",
          i ? "," : "", json_string(o.nodes[i].text()).c_str(), static_cast<long long>(d.lost),
          static_cast<long long>(d.mismatched), static_cast<long long>(d.resurrected),
          static_cast<long long>(d.unexpected), static_cast<long long>(d.disagreeing),
          json_string(d.unreachable).c_str(), json_strings(d.samples).c_str());
    }
    std::printf("],\n");
    std::printf(
        " \"watch_events\": %lld, \"watch_events_min\": %lld, \"watch_events_max\": %lld, "
        "\"watched_writers\": %lld, \"silent_watchers\": %lld, \"stale_watch_keys\": %lld, "
        "\"stale_watch_samples\": %s, \"odd_watch_events\": %lld}\n",
        static_cast<long long>(events), static_cast<long long>(min_events),
        static_cast<long long>(max_events), static_cast<long long>(watched_writers),
        static_cast<long long>(silent_watchers), static_cast<long long>(stale),
        json_strings(stale_samples).c_str(), static_cast<long long>(odd.count));
  } else {
    auto list = [](const char* title, const std::vector<std::string>& v) {
      for (const auto& s : v) std::printf("    %s: %s\n", title, s.c_str());
    };
    std::printf("load:        %d writers + %d watchers on %d nodes for %.1f s\n", n_writers,
                n_watchers, n_nodes, load_seconds);
    std::printf(
        "ops:         %lld (%lld set, %lld get, %lld delete): %.0f ops/s, p50 %.0f us, "
        "p99 %.0f us\n",
        static_cast<long long>(ops), static_cast<long long>(sets), static_cast<long long>(gets),
        static_cast<long long>(deletes), ops_s, lat.percentile(0.5), lat.percentile(0.99));
    std::printf("errors:      %lld error replies, %lld read mismatches, %zu lost connections\n",
                static_cast<long long>(errors.count), static_cast<long long>(mismatches.count),
                lost_connections.size());
    list("error", errors.samples);
    list("read", mismatches.samples);
    list("connection", lost_connections);
    std::printf("convergence: %s after %.2f s (%zu keys, %zu uncertain)\n",
                conv.converged ? "converged" : "NOT converged", conv.seconds,
                want.keys.size() + want.uncertain.size(), want.uncertain.size());
    for (size_t i = 0; i < conv.nodes.size(); ++i) {
      const node_diff& d = conv.nodes[i];
      std::printf(
          "  node %s: lost %lld, mismatched %lld, resurrected %lld, unexpected %lld, "
          "disagreeing %lld%s%s\n",
          o.nodes[i].text().c_str(), static_cast<long long>(d.lost),
          static_cast<long long>(d.mismatched), static_cast<long long>(d.resurrected),
          static_cast<long long>(d.unexpected), static_cast<long long>(d.disagreeing),
          d.unreachable.empty() ? "" : ", unreachable: ", d.unreachable.c_str());
      list("diff", d.samples);
    }
    std::printf(
        "watchers:    %lld events (per watcher %lld…%lld) over %lld watched writers; "
        "%lld without events, %lld stale keys, %lld odd events\n",
        static_cast<long long>(events), static_cast<long long>(min_events),
        static_cast<long long>(max_events), static_cast<long long>(watched_writers),
        static_cast<long long>(silent_watchers), static_cast<long long>(stale),
        static_cast<long long>(odd.count));
    list("stale", stale_samples);
    list("odd", odd.samples);
    std::printf("result:      %s\n", pass ? "PASS" : "FAIL");
  }
  std::fflush(stdout);
  return pass ? 0 : 1;
}

}  // namespace

}  // namespace moatkv::load

int main(int argc, char** argv) {
  moatkv::load::load_options o;
  CLI::App app{
      "moatkv-load: concurrent writers and watchers against a running cluster, then a check that "
      "every node holds every acknowledged write.\nExit status: 0 pass, 1 a check failed, 2 bad "
      "arguments or unusable cluster."};
  app.add_option("--nodes", o.nodes_text,
                 "The nodes' client ports, HOST:PORT,HOST:PORT,… (writers connect round robin)")
      ->required();
  app.add_option("--clients", o.clients, "Client connections in all (writers + watchers)")
      ->check(CLI::Range(1, 5000))
      ->capture_default_str();
  app.add_option("--watchers-fraction", o.watchers_fraction,
                 "Share of the clients that watch writers' subtrees on another node")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--duration", o.duration, "Seconds of load")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--keys-per-client", o.keys_per_client, "Keys each writer cycles through")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_flag("--json", o.json, "Print the summary as one JSON object");
  app.add_option("--prefix", o.prefix,
                 "Path (path syntax) under which the keys live; must be empty at the start")
      ->capture_default_str();
  app.add_option("--rate", o.rate, "Operations per second per writer (0: as fast as answered)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--timeout", o.timeout, "Seconds a request may wait for its reply")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--converge-timeout", o.converge_timeout,
                 "Seconds the nodes get after the load to hold the final state")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the writers' random choices")->capture_default_str();
  try {
    app.parse(argc, argv);
    o.nodes = moatkv::load::parse_nodes(o.nodes_text);
    moatkv::value p = moatkv::parse_path(o.prefix);
    o.prefix_path = p.elements();
    if (o.prefix_path.empty()) throw CLI::ValidationError("--prefix", "must not be the root");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moatkv-load: %s\n", e.what());
    return 2;
  }
  return moatkv::load::run(o);
}
