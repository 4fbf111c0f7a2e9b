// `moatkv bench set|get|tree|watch`: a load generator for a running node. Prints ops/s and
// p50/p99 latency (or JSON with ops_s, p50_us, p99_us). Benchmarks are programs, not tests.
//
//   set/get  N connections, each keeping W requests in flight (pipeline), over --count ops in
//            total; values {"v": i, "s": 20 chars} at 4-level paths bench.c<conn>.k<i/100>.<i%100>
//   tree     writes --count entries (unless --no-fill), then times one get_tree over them
//   watch    a watcher (on --watch-host/--watch-port, default the same node) and a writer doing
//            sequential sets; latency = set sent until the watcher sees the change
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "transport/client_connection.hpp"

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
};

struct bench_result {
  double ops_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  int64_t ops = 0;
  double seconds = 0;
};

value key_path(const bench_options& o, int conn, int64_t i) {
  return value::make_path({value(o.prefix), value("c" + std::to_string(conn)),
                           value("k" + std::to_string(i / 100)), value(i % 100)});
}

value sample_value(int64_t i) {
  return value(map{{"v", i}, {"s", "abcdefghijklmnopqrst"}});
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

// One connection's share of a set/get run: keep `pipeline` requests in flight.
void run_requests(const bench_options& o, const std::string& host, uint16_t port, int conn,
                  int64_t n, bool is_set, std::vector<double>& lat) {
  auto cp = open_connection(host, port);
  client_connection& c = *cp;
  lat.reserve(static_cast<size_t>(n));
  std::vector<bench_clock::time_point> sent(static_cast<size_t>(n));
  std::unordered_map<int64_t, int64_t> seq_to_i;
  int64_t next = 0, done = 0;
  while (done < n) {
    while (next < n && next - done < o.pipeline) {
      sent[static_cast<size_t>(next)] = bench_clock::now();
      int64_t seq = is_set ? c.send_request("set_value", {{"path", key_path(o, conn, next)},
                                                          {"value", sample_value(next)},
                                                          {"nchain", 0}})
                           : c.send_request("get_value", {{"path", key_path(o, conn, next)}});
      seq_to_i[seq] = next++;
    }
    value reply = c.read_message();
    int64_t seq = int_field(reply, "seq", -1);
    auto it = seq_to_i.find(seq);
    if (it == seq_to_i.end()) continue;
    if (reply.find("error"))
      throw server_error("bench request failed: " + debug_string(*reply.find("error")));
    lat.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() -
                                                            sent[static_cast<size_t>(it->second)])
                      .count());
    seq_to_i.erase(it);
    ++done;
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
  c.stream("get_tree", {{"path", value::make_path({value(o.prefix)})}}, [&](const value&) {
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
    writer.send_request("set_value", {{"path", p}, {"value", sample_value(i)}, {"nchain", 0}});
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

}  // namespace

void add_bench_command(CLI::App& app, global_options& g) {
  auto o = std::make_shared<bench_options>();
  auto* cmd = app.add_subcommand("bench", "Measure a running node: ops/s and p50/p99 latency");
  cmd->add_option("MODE", o->mode, "set | get | tree | watch")
      ->required()
      ->check(CLI::IsMember({"set", "get", "tree", "watch"}));
  cmd->add_option("--connections", o->connections, "Client connections (threads)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--pipeline", o->pipeline, "Requests in flight per connection")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--count", o->count, "Operations in total (tree: entries)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_flag("--json", o->json, "Print one JSON object: ops_s, p50_us, p99_us");
  cmd->add_flag("--no-fill", o->no_fill, "tree/get: do not write the entries first");
  cmd->add_option("--prefix", o->prefix,
                  "First path element of the benchmark's keys (default bench_MODE)");
  cmd->add_option("--watch-host", o->watch_host, "watch: the node the watcher connects to");
  cmd->add_option("--watch-port", o->watch_port, "watch: its port");
  cmd->callback([&g, o] {
    if (o->prefix.empty()) o->prefix = "bench_" + o->mode;
    node_config cfg = g.config();
    std::string host = g.connect_host(cfg);
    uint16_t port = g.connect_port(cfg);
    client_setup setup = g.setup(cfg);
    bench_setup = &setup;
    bench_result r;
    if (o->mode == "set") {
      r = run_parallel(*o, host, port, true);
    } else if (o->mode == "get") {
      if (!o->no_fill) {
        bench_options fill = *o;
        fill.pipeline = std::max(o->pipeline, 64);
        run_parallel(fill, host, port, true);
      }
      r = run_parallel(*o, host, port, false);
    } else if (o->mode == "tree") {
      r = run_tree(*o, host, port);
    } else {
      r = run_watch(*o, host, port);
    }
    if (o->json) {
      std::printf(
          "{\"mode\": \"%s\", \"ops\": %lld, \"seconds\": %.3f, \"ops_s\": %.1f, "
          "\"p50_us\": %.1f, \"p99_us\": %.1f}\n",
          o->mode.c_str(), static_cast<long long>(r.ops), r.seconds, r.ops_s, r.p50_us, r.p99_us);
    } else {
      std::printf("%s: %lld ops in %.3f s: %.0f ops/s, p50 %.1f us, p99 %.1f us\n", o->mode.c_str(),
                  static_cast<long long>(r.ops), r.seconds, r.ops_s, r.p50_us, r.p99_us);
    }
  });
}

}  // namespace moatkv
