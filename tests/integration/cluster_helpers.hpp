// Helpers for the multi-node tests (cluster_test.cpp): per-test config files in a temp dir, a
// replicating `moatkv server` node whose log is captured, client operations against a node, and
// whole-tree snapshots (values, chains and tocks via `get_tree nchain -1`) compared across
// nodes while polling with a deadline.
//
// Contract:
//   * a `cluster_node` is a `moatkv -v -c NAME.yaml server NAME` child (-vv with
//     MOATKV_TEST_NODE_DEBUG=1 set) on a client port chosen
//     up front (so every node's `kv.hostmap` can name every peer, restarts included); the
//     constructor returns once the node printed its `serving on` line (it is ready, i.e. it has
//     its data) and throws with the node's output otherwise; the destructor stops it by PID;
//   * the node's output (its log: spdlog writes to stdout) and stderr are captured; `pump` keeps
//   reading the pipes so a chatty node
//     never blocks on a full pipe, and failure messages can quote the log;
//   * nothing sleeps to synchronise: waits poll a condition until a deadline, and between two
//     polls they read the nodes' pipes (poll() with a short timeout);
//   * clients talk to 127.0.0.1 only; each operation opens its own connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "messages/value.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/temp_dir.hpp"

namespace moatkv::test {

/// What goes into a node's YAML config.
struct cluster_node_config {
  std::string backend = "mqtt";  // mqtt | serf
  std::string mqtt_uri;          // backend mqtt
  uint16_t serf_rpc_port = 0;    // backend serf (host 127.0.0.1)
  double ping_cycle = 2.0;       // short, so joins and recovery take seconds
  double ping_gap = 0.5;
  std::map<std::string, uint16_t> hostmap;  // peer name -> client port on 127.0.0.1
  std::string state_dir;                    // kv.server.state.dir (empty: no state directory)
  std::string mqtt_extra;  // YAML lines inside kv.server.mqtt, each indented by 6 spaces
};

/// The YAML text of that config.
std::string node_yaml(const cluster_node_config& cfg);

/// A replicating node (see the file comment).
class cluster_node {
 public:
  cluster_node(const temp_dir& dir, std::string name, uint16_t port, const cluster_node_config& cfg,
               std::optional<std::string> init = std::nullopt,
               std::chrono::milliseconds ready_timeout = 40s);
  /// Stops the node; with MOATKV_TEST_LOG_DIR set, saves its log as DIR/NAME-PID.log.
  ~cluster_node();
  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  bool running() { return proc_->running(); }
  int stop() { return proc_->stop(); }
  /// How long the node took from start to serving.
  std::chrono::milliseconds ready_after() const { return ready_after_; }
  /// Reads what the node wrote so far, for `timeout` (at least 1 ms).
  void pump(std::chrono::milliseconds timeout = 0ms);
  /// The node's log so far (spdlog writes to stdout; stderr holds anything else).
  const std::string& log() const { return proc_->stdout_text(); }
  /// The last `max_lines` lines of the log, for failure messages.
  std::string log_tail(size_t max_lines = 40) const;
  /// Whether the log contains `needle` at or after byte offset `from`.
  bool log_has(const std::string& needle, size_t from = 0) const;

 private:
  std::string name_;
  uint16_t port_;
  std::unique_ptr<child_process> proc_;
  std::chrono::milliseconds ready_after_{0};
};

// ---- client operations (one connection each; throw client_error / server_error) -------------

/// set_value PATH (path syntax) = v; returns the reply (an acknowledged write).
value set_value(const cluster_node& n, const std::string& path, const value& v);
/// delete_value PATH; returns the reply.
value delete_value(const cluster_node& n, const std::string& path);
/// get_value PATH: the value, or nullopt if the entry has none.
std::optional<value> get_value(const cluster_node& n, const std::string& path);

/// One entry of a tree snapshot.
struct tree_entry {
  value data;   // the value
  value chain;  // the full chain (nchain -1)
  value tock;
};
/// The whole tree of a node: formatted full path -> entry (entries with a value only).
using tree_snapshot = std::map<std::string, tree_entry>;

/// `get_tree {path: (), nchain: -1}` with the paths expanded.
tree_snapshot fetch_tree(const cluster_node& n);
/// The same for any node on 127.0.0.1:`port`.
tree_snapshot fetch_tree(uint16_t port, std::chrono::milliseconds timeout = 20s);

/// Differences in values and chains between two snapshots (empty if none), at most `max` lines.
std::string tree_diff(const tree_snapshot& a, const tree_snapshot& b, size_t max = 20);
/// Entries whose tocks differ (values and chains aside).
std::string tock_diff(const tree_snapshot& a, const tree_snapshot& b, size_t max = 20);
/// The snapshot as text, for failure messages.
std::string describe(const tree_snapshot& t);

/// Polls `cond` until it holds or `timeout` passed; between polls reads the nodes' pipes for
/// `interval`. Returns whether it held.
bool poll_until(const std::vector<cluster_node*>& nodes, const std::function<bool()>& cond,
                std::chrono::milliseconds timeout, std::chrono::milliseconds interval = 150ms);

/// Result of waiting for identical trees.
struct convergence {
  bool converged = false;
  std::chrono::milliseconds took{0};
  std::vector<tree_snapshot> trees;  // the last snapshots, in node order
  std::string detail;                // on failure: the last difference seen
  /// Every change of the difference while polling: (time since the start, difference).
  std::vector<std::pair<std::chrono::milliseconds, std::string>> history;
  std::string history_text() const;
};

/// Polls until all nodes have identical trees (values and chains) or `timeout` passed. A node
/// that cannot be reached counts as not converged (and is mentioned in `detail`).
convergence wait_converged(const std::vector<cluster_node*>& nodes,
                           std::chrono::milliseconds timeout);

/// Polls until every node has `v` at `path` (or, with nullopt, no value there).
bool wait_value_everywhere(const std::vector<cluster_node*>& nodes, const std::string& path,
                           const std::optional<value>& v, std::chrono::milliseconds timeout);

/// The full path of program `name` found on $PATH (child_process execs without a PATH search);
/// throws std::runtime_error if there is none.
std::string find_program(const std::string& name);

/// A debugging aid: with MOATKV_TEST_LOG_DIR set, records every message on the broker
/// (`mosquitto_sub -t '#' -F '%U %t %x'`: unix time, topic, payload in hex) and saves it as
/// DIR/NAME.txt when destroyed; without it, does nothing.
class broker_capture {
 public:
  broker_capture(uint16_t broker_port, std::string name);
  ~broker_capture();
  broker_capture(const broker_capture&) = delete;
  broker_capture& operator=(const broker_capture&) = delete;

 private:
  std::string file_;
  std::unique_ptr<child_process> proc_;
};

/// The logs of all nodes (tails), for failure messages.
std::string logs_of(const std::vector<cluster_node*>& nodes, size_t max_lines = 40);

}  // namespace moatkv::test
