// `moatkv bench MODE`: a load generator for running nodes. Prints ops/s and p50/p99 latency
// (or JSON). Benchmarks are programs, not tests; scripts/bench runs the README's whole table.
//
//   set/get  N connections, each keeping W requests in flight (pipeline), over --count ops in
//            total; values {"v": i, "s": 20 chars} at 4-level paths
//            PREFIX.c<conn>.k<i/100>.<i%100>. With --converge HOST:PORT,…: afterwards, the time
//            until every listed node holds every value this run wrote (they replicate from the node
//            the sets went to).
//   tree     writes --count entries (unless --no-fill), then times one get_tree over them
//   watch    a watcher (on --watch-host/--watch-port, default the same node) and a writer doing
//            sequential sets; latency = set sent until the watcher sees the change
//   memory   the node's RSS growth (--pid, a local node) per entry for --count new entries
//   sync     a node that is joining a cluster (-p): the time from the start of this command
//            until it holds all --count entries that `set --prefix PREFIX --count N` wrote
//            elsewhere (start it right after the node)
//
// set/get honour the global --transport caf: each connection is then a kv_client (the client
// library, transport/kv_client.hpp) attached to the node's remote actor interface
// (kv.server.remote, issue 7; --remote-port, -h), with its blocking calls (--pipeline 1) or
// `pipeline` asynchronous ones in flight; the fill of `get` still goes over msgpack (-p stays
// the msgpack port). `--library` runs msgpack set/get through kv_client the same way, so the
// two transports of the library compare like for like.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>

#include "actors/tree_store/depth_compression.hpp"
#include "apps/commands.hpp"
#include "transport/client_connection.hpp"
#include "transport/kv_client.hpp"

namespace moatkv {

namespace {

using bench_clock = std::chrono::steady_clock;

struct bench_options {
  std::string mode;
  int connections = 1;
  int pipeline = 1;
  int64_t count = 10000;
  bool json = false;
  bool no_fill = false;
  std::string prefix;  // default: bench_<mode>, so modes do not count each other's keys
  std::string watch_host;
  int watch_port = 0;
  std::vector<std::string> converge;  // set: HOST:PORT of nodes that must catch up
  int pid = 0;                        // memory: the node's process
  double wait_s = 120;                // converge / sync: give up after this long
  std::string run_tag;                // the "s" of this run's values (20 chars)
  int64_t qlen = 0;                   // tree: the request's flow-control window (0: connection's)
  std::string transport = "msgpack";  // set/get: msgpack | caf (the global --transport)
  std::string remote_host;            // caf: -h, else kv.server.remote.host
  int remote_port = 0;                // caf: the node's remote actor port (0: from the config)
  bool library = false;               // set/get over msgpack through kv_client
};

struct bench_result {
  double ops_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  int64_t ops = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> extra;  // mode-specific figures
};

value key_path(const bench_options& o, int conn, int64_t i) {
  return value::make_path({value(o.prefix), value("c" + std::to_string(conn)),
                           value("k" + std::to_string(i / 100)), value(i % 100)});
}

// Every run writes its own tag into its values, so a convergence check cannot be fooled by
// what an earlier run left on a node.
std::string make_run_tag() {
  std::random_device rd;
  char buf[21];
  std::snprintf(buf, sizeof buf, "run-%016llx",
                static_cast<unsigned long long>((uint64_t{rd()} << 32) | rd()));
  return buf;
}

value sample_value(const bench_options& o, int64_t i) {
  return value(map{{"v", i}, {"s", o.run_tag}});
}

// The index a benchmark key stands for, from its path below PREFIX (c<conn>, k<i/100>, i%100);
// -1 for anything else.
int64_t key_index(const array& rel) {
  int64_t low;
  if (rel.size() != 3 || !rel[1].is_str() || rel[1].as_str().size() < 2 || !rel[2].get_int(low))
    return -1;
  const std::string& k = rel[1].as_str();
  if (k[0] != 'k' || k.find_first_not_of("0123456789", 1) != std::string::npos) return -1;
  return std::stoll(k.substr(1)) * 100 + low;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

// How the benchmark's connections are made (TLS, login): set once by the command's callback.
const client_setup* bench_setup = nullptr;

std::unique_ptr<client_connection> open_connection(const std::string& host, uint16_t port) {
  return bench_setup->connect(host, port);
}

// One connection's share of a set/get run through the client library (over caf: the remote
// actor interface): `pipeline` asynchronous requests in flight (1: the blocking calls).
void run_requests_library(const bench_options& o, const std::string& host, uint16_t port, int conn,
                          int64_t n, bool is_set, std::vector<double>& lat) {
  kv_client_options ko;
  ko.transport = o.transport == "caf" ? client_transport::caf : client_transport::msgpack;
  ko.host = ko.transport == client_transport::caf ? o.remote_host : host;
  ko.port = ko.transport == client_transport::caf ? static_cast<uint16_t>(o.remote_port) : port;
  ko.timeout = bench_setup->options.timeout;
  if (ko.transport == client_transport::msgpack) ko.tls = bench_setup->options.tls;
  ko.auth = bench_setup->auth;
  ko.reconnect = false;
  kv_client kv(ko);
  lat.reserve(static_cast<size_t>(n));
  auto micros = [](bench_clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(bench_clock::now() - t0).count();
  };
  if (o.pipeline == 1) {
    for (int64_t i = 0; i < n; ++i) {
      auto t0 = bench_clock::now();
      if (is_set)
        kv.set(key_path(o, conn, i), sample_value(o, i));
      else
        kv.get(key_path(o, conn, i));
      lat.push_back(micros(t0));
    }
    return;
  }
  // The handlers run on the client's I/O thread; this thread only keeps the window full.
  std::mutex mx;
  std::condition_variable cv;
  int64_t in_flight = 0;
  std::string failed;
  for (int64_t i = 0; i < n; ++i) {
    {
      std::unique_lock<std::mutex> lock(mx);
      cv.wait(lock, [&] { return in_flight < o.pipeline; });
      if (!failed.empty()) break;
      ++in_flight;
    }
    auto t0 = bench_clock::now();
    auto done = [&, t0](value, const kv_error& e) {
      std::lock_guard<std::mutex> lock(mx);
      lat.push_back(micros(t0));
      if (e && failed.empty()) failed = e.text;
      --in_flight;
      cv.notify_all();
    };
    if (is_set)
      kv.set_async(key_path(o, conn, i), sample_value(o, i), {}, done);
    else
      kv.get_async(key_path(o, conn, i), {}, done);
  }
  std::unique_lock<std::mutex> lock(mx);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (!failed.empty()) throw client_error(failed);
}

// One connection's share of a set/get run: keep `pipeline` requests in flight.
void run_requests(const bench_options& o, const std::string& host, uint16_t port, int conn,
                  int64_t n, bool is_set, std::vector<double>& lat) {
  if (o.transport == "caf" || o.library)
    return run_requests_library(o, host, port, conn, n, is_set, lat);
  auto cp = open_connection(host, port);
  client_connection& c = *cp;
  lat.reserve(static_cast<size_t>(n));
  std::vector<bench_clock::time_point> sent(static_cast<size_t>(n));
  std::unordered_map<int64_t, int64_t> seq_to_i;
  int64_t next = 0, done = 0;
  auto take = [&](const value& reply) {
    int64_t seq = int_field(reply, "seq", -1);
    auto it = seq_to_i.find(seq);
    if (it == seq_to_i.end()) return;
    if (reply.find("error"))
      throw server_error("bench request failed: " + debug_string(*reply.find("error")));
    lat.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() -
                                                            sent[static_cast<size_t>(it->second)])
                      .count());
    seq_to_i.erase(it);
    ++done;
  };
  while (done < n) {
    // Refill the window in one write, then take every reply that has arrived.
    c.cork();
    while (next < n && next - done < o.pipeline) {
      sent[static_cast<size_t>(next)] = bench_clock::now();
      int64_t seq = is_set ? c.send_request("set_value", {{"path", key_path(o, conn, next)},
                                                          {"value", sample_value(o, next)},
                                                          {"nchain", 0}})
                           : c.send_request("get_value", {{"path", key_path(o, conn, next)}});
      seq_to_i[seq] = next++;
    }
    c.uncork();
    take(c.read_message());
    while (auto more = c.poll_message()) take(*more);
  }
}

bench_result run_parallel(const bench_options& o, const std::string& host, uint16_t port,
                          bool is_set) {
  std::vector<std::vector<double>> lats(static_cast<size_t>(o.connections));
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(o.connections));
  int64_t per = o.count / o.connections;
  auto t0 = bench_clock::now();
  for (int k = 0; k < o.connections; ++k)
    threads.emplace_back([&, k] {
      try {
        run_requests(o, host, port, k, per, is_set, lats[static_cast<size_t>(k)]);
      } catch (...) {
        errors[static_cast<size_t>(k)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(bench_clock::now() - t0).count();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  std::vector<double> all;
  for (auto& l : lats) all.insert(all.end(), l.begin(), l.end());
  bench_result r;
  r.ops = static_cast<int64_t>(all.size());
  r.seconds = secs;
  r.ops_s = static_cast<double>(r.ops) / secs;
  r.p50_us = percentile(all, 0.50);
  r.p99_us = percentile(all, 0.99);
  return r;
}

bench_result run_tree(const bench_options& o, const std::string& host, uint16_t port) {
  if (!o.no_fill) {
    bench_options fill = o;
    fill.pipeline = std::max(o.pipeline, 64);
    run_parallel(fill, host, port, true);
  }
  auto cp = open_connection(host, port);
  client_connection& c = *cp;
  c.set_timeout(std::chrono::minutes(10));
  int64_t entries = 0;
  auto t0 = bench_clock::now();
  map params{{"path", value::make_path({value(o.prefix)})}};
  if (o.qlen > 0) params.emplace_back("qlen", o.qlen);
  c.stream("get_tree", std::move(params), [&](const value&) {
    ++entries;
    return true;
  });
  bench_result r;
  r.seconds = std::chrono::duration<double>(bench_clock::now() - t0).count();
  r.ops = entries;
  r.ops_s = static_cast<double>(entries) / r.seconds;
  return r;
}

bench_result run_watch(const bench_options& o, const std::string& host, uint16_t port) {
  std::string whost = o.watch_host.empty() ? host : o.watch_host;
  uint16_t wport = o.watch_port > 0 ? static_cast<uint16_t>(o.watch_port) : port;
  auto writer_conn = open_connection(host, port);
  auto watcher_conn = open_connection(whost, wport);
  client_connection& writer = *writer_conn;
  client_connection& watcher = *watcher_conn;
  value wpath = value::make_path({value(o.prefix), value("watch")});
  int64_t wseq = watcher.send_request("watch", {{"path", wpath}, {"max_depth", -1}});
  value start = watcher.read_for(wseq);  // {state: start}: the watch is registered
  if (start.find("error")) throw server_error(debug_string(*start.find("error")));
  std::vector<double> lat;
  auto t0 = bench_clock::now();
  for (int64_t i = 0; i < o.count; ++i) {
    value p = value::make_path({value(o.prefix), value("watch"), value(i % 100)});
    auto sent = bench_clock::now();
    writer.send_request("set_value", {{"path", p}, {"value", sample_value(o, i)}, {"nchain", 0}});
    for (;;) {  // until the watcher reports this very value
      value ev = watcher.read_for(wseq);
      if (const value* v = ev.find("value"); v && v->is_map() && int_field(*v, "v", -1) == i) break;
    }
    lat.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() - sent).count());
    writer.read_message();  // the set's own reply
  }
  bench_result r;
  r.seconds = std::chrono::duration<double>(bench_clock::now() - t0).count();
  r.ops = o.count;
  r.ops_s = static_cast<double>(o.count) / r.seconds;
  r.p50_us = percentile(lat, 0.5);
  r.p99_us = percentile(lat, 0.99);
  return r;
}

// How many of the benchmark's entries under PREFIX a node holds with the value a run wrote:
// {"v": i} at the key of index i, and (unless `tag` is empty) that run's "s".
int64_t count_written(client_connection& c, const bench_options& o, const std::string& tag) {
  int64_t good = 0;
  path_longener longener;
  array rel;
  c.stream("get_tree", {{"path", value::make_path({value(o.prefix)})}}, [&](const value& msg) {
    const value* p = msg.find("path");
    if (!longener.expand(p && p->is_sequence() ? p->elements() : array{},
                         int_field(msg, "depth", 0), rel))
      throw client_error("the server sent a depth beyond the previous path");
    const value* v = msg.find("value");
    if (!v || !v->is_map() || int_field(*v, "v", -1) != key_index(rel)) return true;
    const value* s = v->find("s");
    if (tag.empty() || (s && s->is_str() && s->as_str() == tag)) ++good;
    return true;
  });
  return good;
}

std::pair<std::string, uint16_t> split_host_port(const std::string& hp, const std::string& host) {
  auto colon = hp.rfind(':');
  if (colon == std::string::npos) return {host, static_cast<uint16_t>(std::stoi(hp))};
  return {hp.substr(0, colon), static_cast<uint16_t>(std::stoi(hp.substr(colon + 1)))};
}

double seconds_since(bench_clock::time_point t0) {
  return std::chrono::duration<double>(bench_clock::now() - t0).count();
}

// A connection to a node that may not listen yet (it listens once it is in sync).
std::unique_ptr<client_connection> open_when_up(const std::string& host, uint16_t port,
                                                const bench_options& o,
                                                bench_clock::time_point t0) {
  for (;;) {
    try {
      auto cp = open_connection(host, port);
      cp->set_timeout(std::chrono::minutes(5));
      return cp;
    } catch (const client_error&) {
      if (seconds_since(t0) > o.wait_s) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

// Whether the last key each writer of a run wrote holds its value (a cheap probe before the
// full count, so that polling does not load the node it waits for). Empty tag: any run's.
bool last_keys_there(client_connection& c, const bench_options& o, const std::string& tag) {
  int64_t per = o.count / o.connections;
  try {
    for (int k = 0; k < o.connections; ++k) {
      value reply = c.request("get_value", {{"path", key_path(o, k, per - 1)}});
      const value* v = reply.find("value");
      if (!v || !v->is_map() || int_field(*v, "v", -1) != per - 1) return false;
      const value* s = v->find("s");
      if (!tag.empty() && !(s && s->is_str() && s->as_str() == tag)) return false;
    }
  } catch (const server_error&) {
    return false;  // not ready to answer yet
  }
  return true;
}

// After a set run: wait until every --converge node holds everything this run wrote.
void wait_converged(const bench_options& o, const std::string& host, bench_result& r) {
  auto t0 = bench_clock::now();
  double slowest = 0;
  for (const std::string& hp : o.converge) {
    auto [h, p] = split_host_port(hp, host);
    auto cp = open_when_up(h, p, o, t0);
    for (;;) {
      if (last_keys_there(*cp, o, o.run_tag)) {
        double at = seconds_since(t0);
        int64_t have = count_written(*cp, o, o.run_tag);
        if (have >= r.ops) {
          slowest = std::max(slowest, at);
          break;
        }
        if (seconds_since(t0) > o.wait_s)
          throw client_error(hp + " holds " + std::to_string(have) + " of the " +
                             std::to_string(r.ops) + " values after " +
                             std::to_string(static_cast<int>(o.wait_s)) + " s");
      }
      if (seconds_since(t0) > o.wait_s)
        throw client_error(hp + " did not get this run's last values within " +
                           std::to_string(static_cast<int>(o.wait_s)) + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  r.extra.emplace_back("converged_s", slowest);
}

// VmRSS of a local process, in bytes.
int64_t rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  throw client_error("cannot read the RSS of process " + std::to_string(pid) +
                     " (is it a local node?)");
}

bench_result run_memory(const bench_options& o, const std::string& host, uint16_t port) {
  int64_t before = rss_bytes(o.pid);
  bench_options fill = o;
  fill.connections = std::max(o.connections, 4);
  fill.pipeline = std::max(o.pipeline, 64);
  bench_result r = run_parallel(fill, host, port, true);
  // The last replies can overtake the allocator's bookkeeping by a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int64_t after = rss_bytes(o.pid);
  r.p50_us = r.p99_us = 0;
  r.extra.emplace_back("rss_before_mb", static_cast<double>(before) / 1e6);
  r.extra.emplace_back("rss_after_mb", static_cast<double>(after) / 1e6);
  r.extra.emplace_back("bytes_per_entry",
                       static_cast<double>(after - before) / static_cast<double>(r.ops));
  return r;
}

// A joining node: from this command's start until it serves every entry `set` wrote.
bench_result run_sync(const bench_options& o, const std::string& host, uint16_t port) {
  auto t0 = bench_clock::now();
  auto cp = open_when_up(host, port, o, t0);
  int64_t want = o.count / o.connections * o.connections;
  bench_result r;
  for (;;) {
    if (last_keys_there(*cp, o, "")) {
      double at = seconds_since(t0);
      int64_t have = count_written(*cp, o, "");
      if (have >= want) {
        r.seconds = at;
        r.ops = have;
        break;
      }
    }
    if (seconds_since(t0) > o.wait_s)
      throw client_error("the node did not hold all " + std::to_string(want) + " entries after " +
                         std::to_string(static_cast<int>(o.wait_s)) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.ops_s = static_cast<double>(r.ops) / r.seconds;
  return r;
}

}  // namespace

void add_bench_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<bench_options>();
  auto* cmd = app.add_subcommand("bench", "Measure a running node: ops/s and p50/p99 latency");
  cmd->add_option("MODE", o->mode, "set | get | tree | watch | memory | sync")
      ->required()
      ->check(CLI::IsMember({"set", "get", "tree", "watch", "memory", "sync"}));
  cmd->add_option("--connections", o->connections, "Client connections (threads)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--pipeline", o->pipeline, "Requests in flight per connection")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--count", o->count,
                  "Operations in total (tree, memory, sync: entries; sync needs the same "
                  "--count and --connections as the set run that wrote them)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_flag("--json", o->json, "Print one JSON object: ops_s, p50_us, p99_us, …");
  cmd->add_flag("--no-fill", o->no_fill, "tree/get: do not write the entries first");
  cmd->add_option("--prefix", o->prefix,
                  "First path element of the benchmark's keys (default bench_MODE; memory: a "
                  "fresh one per run; sync: bench_set)");
  cmd->add_option("--watch-host", o->watch_host, "watch: the node the watcher connects to");
  cmd->add_option("--watch-port", o->watch_port, "watch: its port");
  cmd->add_option("--converge", o->converge,
                  "set: HOST:PORT (or PORT) of other nodes; report when all hold this run's "
                  "values")
      ->delimiter(',');
  cmd->add_option("--qlen", o->qlen,
                  "tree: the get_tree request's own flow-control window (default: the "
                  "connection's, kv.server.buffer)")
      ->check(CLI::Range(int64_t{4}, int64_t{1000000}));
  cmd->add_option("--pid", o->pid, "memory: the process ID of the (local) node")
      ->check(CLI::PositiveNumber);
  // --transport is the global option (`moatkv bench get --transport caf` reaches it through
  // fallthrough): set/get over caf have one request in flight per connection.
  cmd->add_option("--remote-port", o->remote_port,
                  "--transport caf: the node's remote actor port (default: "
                  "kv.server.remote.port, 27587; -p stays the msgpack port)")
      ->check(CLI::Range(1, 65535));
  cmd->add_flag("--library", o->library,
                "set/get over msgpack through the client library (kv_client), as --transport "
                "caf always does (--pipeline > 1: its asynchronous calls)");
  cmd->add_option("--wait", o->wait_s, "converge/sync: give up after this many seconds")
      ->check(CLI::PositiveNumber);
  cmd->callback([&g, o] {
    o->transport = g.transport;
    if (o->mode == "memory" && o->pid <= 0)
      throw CLI::ValidationError("--pid", "memory needs --pid");
    if (o->transport == "caf" && o->mode != "set" && o->mode != "get")
      throw CLI::ValidationError("--transport", "caf is for the modes set and get");
    if (o->library && o->mode != "set" && o->mode != "get")
      throw CLI::ValidationError("--library", "is for the modes set and get");
    o->run_tag = make_run_tag();
    if (o->prefix.empty())
      o->prefix = o->mode == "memory" ? "bench_memory_" + o->run_tag.substr(4)
                  : o->mode == "sync" ? "bench_set"
                                      : "bench_" + o->mode;
    node_config cfg = g.config();
    // -h / -p are the msgpack connections' (and the fill's); caf: -h / --remote-port.
    std::string host = g.connect_host(cfg, client_transport::msgpack);
    uint16_t port = g.connect_port(cfg, client_transport::msgpack);
    client_setup setup = g.setup(cfg);
    bench_setup = &setup;
    if (o->transport == "caf") {
      o->remote_host = g.connect_host(cfg, client_transport::caf);
      if (o->remote_port == 0) {
        int64_t rp = cfg.get_int("kv.server.remote.port", 27587);
        if (rp <= 0 || rp > 65535)
          throw CLI::ValidationError("--remote-port", "kv.server.remote.port is off: give one");
        o->remote_port = static_cast<int>(rp);
      }
    }
    bench_result r;
    if (o->mode == "set") {
      r = run_parallel(*o, host, port, true);
      if (!o->converge.empty()) wait_converged(*o, host, r);
    } else if (o->mode == "get") {
      if (!o->no_fill) {
        bench_options fill = *o;
        fill.pipeline = std::max(o->pipeline, 64);
        fill.transport = "msgpack";
        run_parallel(fill, host, port, true);
      }
      r = run_parallel(*o, host, port, false);
    } else if (o->mode == "tree") {
      r = run_tree(*o, host, port);
    } else if (o->mode == "watch") {
      r = run_watch(*o, host, port);
    } else if (o->mode == "memory") {
      r = run_memory(*o, host, port);
    } else {
      r = run_sync(*o, host, port);
    }
    std::string extra_json, extra_text;
    for (const auto& [k, v] : r.extra) {
      char buf[96];
      std::snprintf(buf, sizeof buf, ", \"%s\": %.3f", k.c_str(), v);
      extra_json += buf;
      std::snprintf(buf, sizeof buf, ", %s %.3f", k.c_str(), v);
      extra_text += buf;
    }
    if (o->json) {
      std::printf(
          "{\"mode\": \"%s\", \"ops\": %lld, \"seconds\": %.3f, \"ops_s\": %.1f, "
          "\"p50_us\": %.1f, \"p99_us\": %.1f%s}\n",
          o->mode.c_str(), static_cast<long long>(r.ops), r.seconds, r.ops_s, r.p50_us, r.p99_us,
          extra_json.c_str());
    } else {
      std::printf("%s: %lld ops in %.3f s: %.0f ops/s, p50 %.1f us, p99 %.1f us%s\n",
                  o->mode.c_str(), static_cast<long long>(r.ops), r.seconds, r.ops_s, r.p50_us,
                  r.p99_us, extra_text.c_str());
    }
  });
}

}  // namespace moatkv
