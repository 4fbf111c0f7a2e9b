#include "tests/integration/cluster_helpers.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "actors/tree_store/depth_compression.hpp"
#include "messages/path_syntax.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- config -----------------------------------------------------------------------------------

std::string node_yaml(const cluster_node_config& cfg) {
  std::ostringstream y;
  y << "kv:\n";
  y << "  server:\n";
  y << "    backend: " << cfg.backend << "\n";
  if (cfg.backend == "mqtt")
    y << "    mqtt:\n      uri: \"" << cfg.mqtt_uri << "\"\n" << cfg.mqtt_extra;
  if (cfg.backend == "serf")
    y << "    serf:\n      host: 127.0.0.1\n      port: " << cfg.serf_rpc_port << "\n";
  y << "    ping:\n      cycle: " << cfg.ping_cycle << "\n      gap: " << cfg.ping_gap << "\n";
  if (!cfg.state_dir.empty()) y << "    state:\n      dir: \"" << cfg.state_dir << "\"\n";
  y << "    remote:\n      port: 0\n";  // its default port is fixed: several nodes would share it
  if (!cfg.hostmap.empty()) {
    y << "  hostmap:\n";
    for (const auto& [name, port] : cfg.hostmap)
      y << "    " << name << ": [\"127.0.0.1\", " << port << "]\n";
  }
  return y.str();
}

// ---- cluster_node -----------------------------------------------------------------------------

cluster_node::cluster_node(const temp_dir& dir, std::string name, uint16_t port,
                           const cluster_node_config& cfg, std::optional<std::string> init,
                           milliseconds ready_timeout)
    : name_(std::move(name)), port_(port) {
  std::string file = dir.write(name_ + ".yaml", node_yaml(cfg));
  // MOATKV_TEST_NODE_DEBUG=1 in the environment: debug logging (e.g. to follow a recovery).
  const char* debug = std::getenv("MOATKV_TEST_NODE_DEBUG");
  std::vector<std::string> argv{
      moatkv_binary(), debug && *debug ? "-vv" : "-v", "-c", file, "server", name_};
  if (init) argv.insert(argv.end(), {"-I", *init});
  argv.insert(argv.end(), {"-C", "kv.server.bind_default.host=127.0.0.1", "-C",
                           "kv.server.bind_default.port=" + std::to_string(port)});
  child_process::options opts;
  opts.capture_stderr = true;
  auto t0 = clock_type::now();
  proc_ = std::make_unique<child_process>(argv, opts);
  static const std::regex ready_line(R"(moatkv node (\S+) serving on (\S+):(\d+)\r?\n)");
  std::smatch m;
  bool ready = proc_->wait_for_stdout(
      [&](const std::string& out) { return std::regex_search(out, m, ready_line); }, ready_timeout);
  if (!ready) {
    std::optional<int> code = proc_->stdout_closed() ? proc_->wait_exit(5s) : std::nullopt;
    std::string state = code
                            ? "exited with " + std::to_string(*code)
                            : "not serving within " + std::to_string(ready_timeout.count()) + " ms";
    std::string msg = "node " + name_ + " " + state + "\nlog:\n" + log_tail(60);
    proc_->stop();
    throw std::runtime_error(msg);
  }
  ready_after_ = std::chrono::duration_cast<milliseconds>(clock_type::now() - t0);
  if (m[1].str() != name_ || m[2].str() != "127.0.0.1" || m[3].str() != std::to_string(port))
    throw std::runtime_error("node " + name_ + " announced " + m[0].str());
}

cluster_node::~cluster_node() {
  proc_->stop();
  proc_->wait_exit(2s);  // drains the pipes
  const char* dir = std::getenv("MOATKV_TEST_LOG_DIR");
  if (dir && *dir) {
    std::ofstream out(std::string(dir) + "/" + name_ + "-" + std::to_string(proc_->pid()) + ".log");
    out << log();
    if (!proc_->stderr_text().empty()) out << "[stderr]\n" << proc_->stderr_text();
  }
}

void cluster_node::pump(milliseconds timeout) {
  // wait_for_stdout reads nothing once its deadline has passed: give it at least 1 ms.
  proc_->wait_for_stdout([](const std::string&) { return false; }, std::max(timeout, 1ms));
}

std::string cluster_node::log_tail(size_t max_lines) const {
  std::string l = log();
  if (!proc_->stderr_text().empty()) l += "[stderr]\n" + proc_->stderr_text();
  size_t pos = l.size();
  size_t lines = 0;
  while (pos > 0 && lines <= max_lines) {
    pos = l.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  return l.substr(pos);
}

bool cluster_node::log_has(const std::string& needle, size_t from) const {
  return log().find(needle, from) != std::string::npos;
}

// ---- client operations ------------------------------------------------------------------------

namespace {

value request(const cluster_node& n, const std::string& action, map params) {
  client_connection c("127.0.0.1", n.port(), 5s);
  return c.request(action, std::move(params));
}

}  // namespace

value set_value(const cluster_node& n, const std::string& path, const value& v) {
  return request(n, "set_value", {{"path", parse_path(path)}, {"value", v}, {"nchain", 2}});
}

value delete_value(const cluster_node& n, const std::string& path) {
  return request(n, "delete_value", {{"path", parse_path(path)}, {"nchain", 2}});
}

std::optional<value> get_value(const cluster_node& n, const std::string& path) {
  value reply = request(n, "get_value", {{"path", parse_path(path)}, {"nchain", 0}});
  const value* v = reply.find("value");
  if (!v) return std::nullopt;
  return *v;
}

tree_snapshot fetch_tree(const cluster_node& n) {
  return fetch_tree(n.port(), 5s);
}

tree_snapshot fetch_tree(uint16_t port, milliseconds timeout) {
  client_connection c("127.0.0.1", port, timeout);
  tree_snapshot out;
  path_longener pl;
  std::string error;
  c.stream("get_tree", {{"path", value::make_path({})}, {"nchain", -1}}, [&](const value& rec) {
    value r = rec;
    if (!r.find("path")) return true;
    if (!pl.apply(r, error)) throw std::runtime_error("get_tree record: " + error);
    tree_entry e;
    if (const value* v = r.find("value")) e.data = *v;
    if (const value* ch = r.find("chain")) e.chain = *ch;
    if (const value* t = r.find("tock")) e.tock = *t;
    out[format_path(*r.find("path"))] = std::move(e);
    return true;
  });
  return out;
}

namespace {

std::string diff_impl(const tree_snapshot& a, const tree_snapshot& b, size_t max, bool tocks) {
  std::ostringstream d;
  size_t lines = 0;
  auto line = [&](const std::string& s) {
    if (lines++ < max) d << s << "\n";
  };
  for (const auto& [p, ea] : a) {
    auto it = b.find(p);
    if (it == b.end()) {
      if (!tocks) line("only in first: " + p + " = " + debug_string(ea.data));
      continue;
    }
    const tree_entry& eb = it->second;
    if (tocks) {
      if (ea.tock != eb.tock)
        line(p + ": tock " + debug_string(ea.tock) + " vs " + debug_string(eb.tock));
      continue;
    }
    if (ea.data != eb.data || !same_type_equal(ea.data, eb.data))
      line(p + ": value " + debug_string(ea.data) + " vs " + debug_string(eb.data));
    if (ea.chain != eb.chain)
      line(p + ": chain " + debug_string(ea.chain) + " vs " + debug_string(eb.chain));
  }
  if (!tocks)
    for (const auto& [p, eb] : b)
      if (!a.count(p)) line("only in second: " + p + " = " + debug_string(eb.data));
  if (lines > max) d << "… " << (lines - max) << " more\n";
  return d.str();
}

}  // namespace

std::string tree_diff(const tree_snapshot& a, const tree_snapshot& b, size_t max) {
  return diff_impl(a, b, max, false);
}

std::string tock_diff(const tree_snapshot& a, const tree_snapshot& b, size_t max) {
  return diff_impl(a, b, max, true);
}

std::string describe(const tree_snapshot& t) {
  std::ostringstream d;
  for (const auto& [p, e] : t)
    d << "  " << p << " = " << debug_string(e.data) << "  chain " << debug_string(e.chain)
      << "  tock " << debug_string(e.tock) << "\n";
  return d.str();
}

bool poll_until(const std::vector<cluster_node*>& nodes, const std::function<bool()>& cond,
                milliseconds timeout, milliseconds interval) {
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (clock_type::now() >= deadline) return false;
    // Wait by reading the nodes' pipes (their logs), never by sleeping blind.
    auto per = std::max<milliseconds>(
        1ms, interval / static_cast<long>(std::max<size_t>(nodes.size(), 1)));
    if (nodes.empty()) poll(nullptr, 0, static_cast<int>(interval.count()));
    for (cluster_node* n : nodes) n->pump(per);
  }
}

namespace {
milliseconds since(clock_type::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(clock_type::now() - t0);
}
}  // namespace

std::string convergence::history_text() const {
  std::string out;
  for (const auto& [t, d] : history) out += "+" + std::to_string(t.count()) + " ms: " + d;
  return out;
}

convergence wait_converged(const std::vector<cluster_node*>& nodes, milliseconds timeout) {
  convergence c;
  auto t0 = clock_type::now();
  c.converged = poll_until(
      nodes,
      [&] {
        c.trees.clear();
        for (cluster_node* n : nodes) {
          try {
            c.trees.push_back(fetch_tree(*n));
          } catch (const std::exception& e) {
            std::string detail = "node " + n->name() + " unreachable: " + e.what() + "\n";
            if (detail != c.detail) c.history.emplace_back(since(t0), detail);
            c.detail = std::move(detail);
            return false;
          }
        }
        for (size_t i = 1; i < c.trees.size(); ++i) {
          std::string d = tree_diff(c.trees[0], c.trees[i]);
          if (!d.empty()) {
            std::string detail = nodes[0]->name() + " vs " + nodes[i]->name() + ":\n" + d;
            if (detail != c.detail) c.history.emplace_back(since(t0), detail);
            c.detail = std::move(detail);
            return false;
          }
        }
        return true;
      },
      timeout);
  c.took = since(t0);
  if (c.converged) c.detail.clear();
  return c;
}

bool wait_value_everywhere(const std::vector<cluster_node*>& nodes, const std::string& path,
                           const std::optional<value>& v, milliseconds timeout) {
  return poll_until(
      nodes,
      [&] {
        for (cluster_node* n : nodes) {
          try {
            std::optional<value> got = get_value(*n, path);
            if (got.has_value() != v.has_value()) return false;
            if (got && !(*got == *v && same_type_equal(*got, *v))) return false;
          } catch (const std::exception&) {
            return false;
          }
        }
        return true;
      },
      timeout);
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  throw std::runtime_error("program " + name + " not found on PATH");
}

broker_capture::broker_capture(uint16_t broker_port, std::string name) {
  const char* dir = std::getenv("MOATKV_TEST_LOG_DIR");
  if (!dir || !*dir) return;
  file_ = std::string(dir) + "/" + name + ".txt";
  proc_ = std::make_unique<child_process>(
      std::vector<std::string>{find_program("mosquitto_sub"), "-h", "127.0.0.1", "-p",
                               std::to_string(broker_port), "-t", "#", "-F", "%U %t %x"});
}

broker_capture::~broker_capture() {
  if (!proc_) return;
  proc_->stop();
  proc_->wait_exit(2s);
  std::ofstream(file_) << proc_->stdout_text();
}

std::string logs_of(const std::vector<cluster_node*>& nodes, size_t max_lines) {
  std::string out;
  for (cluster_node* n : nodes) {
    n->pump(20ms);
    out += "---- log of " + n->name() + " (pid " + std::to_string(n->pid()) + ")\n" +
           n->log_tail(max_lines);
  }
  return out;
}

}  // namespace moatkv::test
