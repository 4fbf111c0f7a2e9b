// Persistence as a user meets it (issue 4, server-internals §6): a node with a state directory
// that is killed with SIGKILL and comes back from it, damaged and cut logs, `moatkv log save`,
// `log dest [-i]` / `log stop` and `server -l FILE…`, snapshot rotation and clean stops.
//
// Every test works in its own directory (mkdtemp under /tmp, removed at the end) and stops the
// nodes it started by their PIDs. Nothing waits by sleeping except the crash test's load phase
// (the load runs for a fixed time before the kill) and bounded polls of the state directory.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "actors/persister/record_file.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "messages/path_syntax.hpp"
#include "messages/value.hpp"
#include "tests/integration/client_ok.hpp"
#include "tests/integration/cluster_helpers.hpp"
#include "tests/integration/node_process.hpp"
#include "transport/client_connection.hpp"

namespace moatkv::test {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// ---- scaffolding ------------------------------------------------------------------------------

// A fresh directory under /tmp, removed (recursively) by the destructor.
class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = "/tmp/moatkv-persist-test.XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> server_args(const std::string& name, std::vector<std::string> extra) {
  std::vector<std::string> argv{"server", name};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"-C", "kv.server.bind_default.host=127.0.0.1", "-C",
                           "kv.server.bind_default.port=0"});
  return argv;
}

// A node like node_process, but with its stderr captured (the load warnings go there).
class captured_node {
 public:
  captured_node(const std::string& name, std::vector<std::string> extra)
      : proc_(with_binary(server_args(name, std::move(extra))),
              {.capture_stderr = true, .stdin_data = {}}) {
    static const std::regex ready(R"(serving on 127\.0\.0\.1:(\d+)\r?\n)");
    std::string port;
    bool ok = proc_.wait_for_stdout(
        [&](const std::string& out) {
          std::smatch m;
          if (!std::regex_search(out, m, ready)) return false;
          port = m[1].str();
          return true;
        },
        20s);
    if (!ok) {
      if (proc_.stdout_closed()) proc_.wait_exit(5s);
      throw std::runtime_error("node " + name + " did not start serving\nstdout: " +
                               proc_.stdout_text() + "\nstderr: " + proc_.stderr_text());
    }
    port_ = static_cast<uint16_t>(std::stoul(port));
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  int stop() { return proc_.stop(); }
  // Reads what the node wrote so far (for `for_ms` at most) and returns its stderr.
  const std::string& stderr_text() {
    proc_.wait_for_stdout([](const std::string&) { return false; }, 50ms);
    return proc_.stderr_text();
  }
  command_result client(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"-h", "127.0.0.1", "-p", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_moatkv(argv);
  }

 private:
  static std::vector<std::string> with_binary(std::vector<std::string> args) {
    args.insert(args.begin(), moatkv_binary());
    return args;
  }
  child_process proc_;
  uint16_t port_ = 0;
};

value path_of(const std::string& dotted) {
  return parse_path(dotted);
}

value request(uint16_t port, const std::string& action, map params) {
  client_connection c("127.0.0.1", port, 10s);
  return c.request(action, std::move(params));
}

value set_value(uint16_t port, const std::string& path, const value& v) {
  return request(port, "set_value", {{"path", path_of(path)}, {"value", v}, {"nchain", 1}});
}

void delete_value(uint16_t port, const std::string& path) {
  request(port, "delete_value", {{"path", path_of(path)}});
}

std::optional<value> get_value(uint16_t port, const std::string& path) {
  value reply = request(port, "get_value", {{"path", path_of(path)}, {"nchain", 0}});
  const value* v = reply.find("value");
  if (!v) return std::nullopt;
  return *v;
}

// The head tick of a chain (-1 if there is none).
int64_t chain_tick(const value* chain) {
  if (!chain || !chain->is_map()) return -1;
  int64_t tick = -1;
  if (const value* t = chain->find("tick")) t->get_int(tick);
  return tick;
}

int64_t tick_of(const value& chain_holder) {
  return chain_tick(chain_holder.find("chain"));
}

// Same values, chains and tocks.
std::string tree_and_tock_diff(const tree_snapshot& a, const tree_snapshot& b) {
  return tree_diff(a, b) + tock_diff(a, b);
}

std::string dump_all(const node_process& node) {
  return ok(node, {"data", ":", "get", "-r"}).out;
}

struct dir_file {
  std::string kind;  // snapshot | log | other
  uint64_t generation = 0;
  std::string path;
};

std::vector<dir_file> list_state_dir(const std::string& dir) {
  static const std::regex name_re(R"((snapshot|log)\.(\d+)\.mpk)");
  std::vector<dir_file> out;
  for (const auto& de : fs::directory_iterator(dir)) {
    std::string name = de.path().filename().string();
    std::smatch m;
    dir_file f;
    f.path = de.path().string();
    if (std::regex_match(name, m, name_re)) {
      f.kind = m[1].str();
      f.generation = std::stoull(m[2].str());
    } else {
      f.kind = "other";
    }
    out.push_back(f);
  }
  return out;
}

std::string describe_dir(const std::string& dir) {
  std::string s;
  for (const auto& f : list_state_dir(dir))
    s += f.path + " (" + std::to_string(fs::file_size(f.path)) + " bytes)\n";
  return s;
}

// The newest log.<G>.mpk of a state directory.
std::string newest_log(const std::string& dir) {
  std::optional<dir_file> best;
  for (const auto& f : list_state_dir(dir))
    if (f.kind == "log" && (!best || f.generation > best->generation)) best = f;
  if (!best) throw std::runtime_error("no log file in " + dir + ":\n" + describe_dir(dir));
  return best->path;
}

struct file_record {
  size_t offset;
  value rec;
};

std::vector<file_record> read_records(const std::string& file) {
  record_file_reader reader(file);
  std::vector<file_record> out;
  value rec;
  for (;;) {
    auto st = reader.next(rec);
    if (st == record_file_reader::status::end) break;
    if (st != record_file_reader::status::record)
      throw std::runtime_error(file + ": unexpected damage at " + std::to_string(reader.offset()));
    out.push_back({reader.offset(), rec});
  }
  return out;
}

void sigkill(node_process& node) {
  REQUIRE(kill(node.pid(), SIGKILL) == 0);
  CHECK(node.stop() == -SIGKILL);  // reaps it
}

// ---- the crash test ---------------------------------------------------------------------------

struct writer_stats {
  int64_t acked = 0;     // keys k0 … k(acked-1) were acknowledged
  int64_t max_tick = 0;  // highest chain tick in any reply
  std::string error;     // what ended the loop (after the kill)
};

void write_until_failure(uint16_t port, int thread, const std::atomic<bool>& give_up,
                         writer_stats& out) {
  try {
    client_connection c("127.0.0.1", port, 10s);
    const std::string t = "t" + std::to_string(thread);
    for (int64_t i = 0; !give_up.load(); ++i) {
      value reply =
          c.request("set_value", {{"path", value::make_path({"crash", t, "k" + std::to_string(i)})},
                                  {"value", i},
                                  {"nchain", 1}});
      out.acked = i + 1;
      out.max_tick = std::max(out.max_tick, tick_of(reply));
    }
    out.error = "gave up";
  } catch (const std::exception& e) {
    out.error = e.what();
  }
}

// Runs the crash test against a node started with `extra` options (besides --state DIR
// --sync ack); returns the number of acknowledged writes.
int64_t crash_and_recover(const std::string& state, const std::vector<std::string>& extra) {
  constexpr int threads = 4;
  std::vector<std::string> args{"--state", state, "--sync", "ack"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<writer_stats> stats(threads);
  {
    node_process node("crashnode", args);
    std::atomic<bool> give_up{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back(write_until_failure, node.port(), t, std::cref(give_up),
                           std::ref(stats[t]));
    // The load phase: writes keep coming while the node is killed. The writers go on until
    // their connection fails (`give_up` only if the kill itself failed).
    std::this_thread::sleep_for(1500ms);
    const bool killed = kill(node.pid(), SIGKILL) == 0;
    if (!killed) give_up = true;
    for (auto& w : workers) w.join();
    REQUIRE(killed);
    CHECK(node.stop() == -SIGKILL);
    for (int t = 0; t < threads; ++t) {
      INFO("thread " << t << ": " << stats[t].error);
      // Each writer was still busy when the node died: its loop ended with a transport error.
      CHECK(stats[t].error != "gave up");
    }
  }
  int64_t acked = 0, max_tick = 0;
  for (const auto& s : stats) {
    acked += s.acked;
    max_tick = std::max(max_tick, s.max_tick);
  }
  MESSAGE("crash test: " << acked << " writes acknowledged before SIGKILL (per thread: "
                         << stats[0].acked << ", " << stats[1].acked << ", " << stats[2].acked
                         << ", " << stats[3].acked << "), highest tick " << max_tick);
  CHECK(acked > 100);  // the node was under real load

  node_process node("crashnode", args);
  tree_snapshot tree = fetch_tree(node.port());
  int64_t present = 0, tick_in_tree = 0;
  for (int t = 0; t < threads; ++t) {
    // Each writer's keys are a prefix k0 … k(n-1) of its sequence (the log is in order), and
    // it covers every acknowledged key: n >= acked.
    int64_t n = 0;
    for (;; ++n) {
      auto it = tree.find("crash.t" + std::to_string(t) + ".k" + std::to_string(n));
      if (it == tree.end()) break;
      CHECK(it->second.data == value(n));
      tick_in_tree = std::max(tick_in_tree, chain_tick(&it->second.chain));
    }
    INFO("thread " << t << ": " << stats[t].acked << " acknowledged, " << n << " present");
    CHECK(n >= stats[t].acked);
    CHECK(n <= stats[t].acked + 1);  // at most the write in flight
    present += n;
  }
  MESSAGE("after the restart: " << present << " of the writes present (" << acked
                                << " acknowledged)");
  CHECK(static_cast<size_t>(present) == tree.size());  // no other keys, no holes

  // The node goes on from its old ticks: a new write gets a tick never used before.
  value reply = set_value(node.port(), "crash.after", value(1));
  int64_t new_tick = tick_of(reply);
  INFO("new tick " << new_tick << ", highest acknowledged " << max_tick << ", highest loaded "
                   << tick_in_tree);
  CHECK(new_tick > max_tick);
  CHECK(new_tick > tick_in_tree);
  CHECK(get_value(node.port(), "crash.after") == std::optional<value>(value(1)));
  CHECK(node.stop() == 0);
  return acked;
}

}  // namespace

TEST_CASE(
    "persistence: a node with --sync ack killed with SIGKILL keeps every acknowledged write") {
  scratch_dir dir;
  crash_and_recover(dir.file("state"), {});
}

TEST_CASE("persistence: SIGKILL while snapshots rotate under load loses no acknowledged write") {
  scratch_dir dir;
  const std::string state = dir.file("state");
  // Snapshots built in steps of 7 entries: writes land between the steps (a fuzzy snapshot
  // plus the log begun before it must load to every acknowledged write).
  int64_t acked = crash_and_recover(state, {"-C", "kv.server.state.snapshot_records=250", "-C",
                                            "kv.server.state.snapshot_step=7"});
  // Many rotations happened before the kill; one generation is left after the restart.
  uint64_t newest = 0;
  size_t files = 0;
  for (const auto& f : list_state_dir(state)) {
    if (f.kind == "other") continue;
    newest = std::max(newest, f.generation);
    ++files;
  }
  INFO(describe_dir(state));
  CHECK(newest > static_cast<uint64_t>(acked / 250));
  CHECK(files == 2);
}

// ---- damaged state logs -------------------------------------------------------------------------

TEST_CASE("persistence: a state log with a cut tail loads up to the cut, with a warning") {
  scratch_dir dir;
  const std::string state = dir.file("state");
  constexpr int keys = 6;
  {
    node_process node("cutnode", {"--state", state, "--sync", "ack"});
    for (int i = 0; i < keys; ++i) set_value(node.port(), "cut.k" + std::to_string(i), value(i));
    sigkill(node);
  }
  const std::string log = newest_log(state);
  std::vector<file_record> recs = read_records(log);
  REQUIRE(recs.size() >= keys);
  const value* last = recs.back().rec.find("value");
  REQUIRE_MESSAGE(last != nullptr, debug_string(recs.back().rec));
  REQUIRE(*last == value(keys - 1));
  const auto size = fs::file_size(log);
  REQUIRE(size - recs.back().offset > 3);
  fs::resize_file(log, size - 3);  // into the last record

  captured_node node("cutnode", {"--state", state});
  const std::string err = node.stderr_text();
  INFO("stderr: " << err);
  CHECK(err.find(log) != std::string::npos);
  CHECK(err.find("offset " + std::to_string(recs.back().offset)) != std::string::npos);
  for (int i = 0; i < keys - 1; ++i)
    CHECK(get_value(node.port(), "cut.k" + std::to_string(i)) == std::optional<value>(value(i)));
  CHECK(get_value(node.port(), "cut.k" + std::to_string(keys - 1)) == std::nullopt);
  // It keeps working, and the cut record is not in the way after another restart.
  set_value(node.port(), "cut.new", value(99));
  CHECK(node.stop() == 0);
  node_process again("cutnode", {"--state", state});
  CHECK(get_value(again.port(), "cut.new") == std::optional<value>(value(99)));
  CHECK(get_value(again.port(), "cut.k0") == std::optional<value>(value(0)));
  CHECK(again.stop() == 0);
}

TEST_CASE(
    "persistence: damage in the middle of a state log stops the start unless --skip-damaged") {
  scratch_dir dir;
  const std::string state = dir.file("state");
  constexpr int keys = 10;
  {
    node_process node("dmgnode", {"--state", state, "--sync", "ack"});
    for (int i = 0; i < keys; ++i) set_value(node.port(), "dmg.k" + std::to_string(i), value(i));
    sigkill(node);
  }
  const std::string log = newest_log(state);
  std::vector<file_record> recs = read_records(log);
  REQUIRE(recs.size() == keys);
  constexpr int damaged = 4;
  const size_t offset = recs[damaged].offset;
  {
    std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(0xc1));  // never valid msgpack
    REQUIRE(f.good());
  }

  // Without --skip-damaged: a clear refusal, no serving.
  command_result r = run_moatkv(server_args("dmgnode", {"--state", state}), std::nullopt, 20s);
  {
    INFO(r.describe());
    CHECK(!r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("serving on") == std::string::npos);
    CHECK(r.err.find(log) != std::string::npos);
    CHECK(r.err.find("offset " + std::to_string(offset)) != std::string::npos);
    CHECK(r.err.find("--skip-damaged") != std::string::npos);
  }
  // The refused start changed nothing: the damaged log is still there for the next attempt.
  CHECK(fs::exists(log));

  captured_node node("dmgnode", {"--state", state, "--skip-damaged"});
  {
    const std::string err = node.stderr_text();
    INFO("stderr: " << err);
    CHECK(err.find(log) != std::string::npos);
    CHECK(err.find("offset " + std::to_string(offset)) != std::string::npos);
  }
  for (int i = 0; i < keys; ++i) {
    INFO("key " << i);
    auto v = get_value(node.port(), "dmg.k" + std::to_string(i));
    if (i == damaged)
      CHECK(v == std::nullopt);
    else
      CHECK(v == std::optional<value>(value(i)));
  }
  // New writes get fresh ticks and survive a clean restart.
  value reply = set_value(node.port(), "dmg.new", value(7));
  CHECK(tick_of(reply) > keys);
  CHECK(node.stop() == 0);
  node_process again("dmgnode", {"--state", state});
  CHECK(get_value(again.port(), "dmg.new") == std::optional<value>(value(7)));
  CHECK(get_value(again.port(), "dmg.k9") == std::optional<value>(value(9)));
  CHECK(again.stop() == 0);
}

// ---- save / load ------------------------------------------------------------------------------

TEST_CASE(
    "persistence: `log save` and `server -l` reproduce the tree; `save -f` adds the meta tree") {
  scratch_dir dir;
  const std::string plain = dir.file("plain.mpk"), full = dir.file("full.mpk");
  std::string expected_dump;
  tree_snapshot expected_tree;
  {
    node_process node("saver", {});
    ok(node, {"data", "sv.a", "set", "-e", ":", "123"});
    ok(node, {"data", "sv.b.c", "set", "-v", ":", "some text"});
    ok(node, {"data", "sv.b.d.e", "set", "-e", ":", "(1, 2)"});
    ok(node, {"data", "sv.b", "set", "-v", "x", "hello", "-e", "y", "2"});
    ok(node, {"data", "sv.gone", "set", "-e", ":", "5"});
    ok(node, {"data", "sv.a", "set", "-e", ":", "124"});
    ok(node, {"data", "sv.gone", "delete"});
    ok(node, {"data", "other.z", "set", "-e", ":", "1.5"});
    // Something in the meta tree, which only a full save contains.
    request(node.port(), "set_internal", {{"path", path_of("persisttest.x")}, {"value", 42}});
    ok(node, {"log", "save", plain});
    ok(node, {"log", "save", "-f", full});
    expected_dump = dump_all(node);
    expected_tree = fetch_tree(node.port());
    CHECK(node.stop() == 0);
  }
  CHECK(expected_tree.size() == 5);
  CHECK(expected_tree.count("sv.gone") == 0);
  REQUIRE(fs::exists(plain));
  REQUIRE(fs::exists(full));
  CHECK(fs::file_size(full) > fs::file_size(plain));
  {
    // The file starts with the state record (§6).
    std::vector<file_record> recs = read_records(plain);
    REQUIRE(!recs.empty());
    CHECK(recs.front().rec.find("nodes") != nullptr);
    CHECK(recs.front().rec.find("path") == nullptr);
  }

  node_process loaded("loader", {"-l", plain});
  CHECK(dump_all(loaded) == expected_dump);
  tree_snapshot tree = fetch_tree(loaded.port());
  CHECK_MESSAGE(tree_and_tock_diff(expected_tree, tree).empty(),
                tree_and_tock_diff(expected_tree, tree));
  CHECK(get_value(loaded.port(), "sv.gone") == std::nullopt);
  value meta = request(loaded.port(), "get_internal", {{"path", path_of("persisttest.x")}});
  CHECK(meta.find("value") == nullptr);
  // The loading node writes with its own name and ticks.
  value reply = set_value(loaded.port(), "sv.new", value(1));
  CHECK(reply.find("chain")->find("node")->as_str() == "loader");
  CHECK(loaded.stop() == 0);

  node_process loaded_full("fullloader", {"-l", full});
  CHECK(dump_all(loaded_full) == expected_dump);
  value meta_full =
      request(loaded_full.port(), "get_internal", {{"path", path_of("persisttest.x")}});
  REQUIRE_MESSAGE(meta_full.find("value") != nullptr, debug_string(meta_full));
  CHECK(*meta_full.find("value") == value(42));
  CHECK(loaded_full.stop() == 0);
}

TEST_CASE("persistence: `log dest`, `log stop` and `log dest -i` replay to the same tree") {
  scratch_dir dir;
  const std::string log_full = dir.file("full-log.mpk");
  const std::string save = dir.file("save.mpk"), log_inc = dir.file("inc-log.mpk");
  std::string dump_at_stop, dump_at_inc_stop;
  tree_snapshot tree_at_stop, tree_at_inc_stop;
  {
    // With a state directory too: its log and the client's log are fed side by side.
    node_process node("logger", {"--state", dir.file("logger-state")});
    ok(node, {"data", "ld.before", "set", "-e", ":", "1"});  // in the log's initial dump
    ok(node, {"log", "dest", log_full});
    ok(node, {"data", "ld.a", "set", "-e", ":", "1"});
    ok(node, {"data", "ld.b", "set", "-e", ":", "2"});
    ok(node, {"data", "ld.a", "set", "-e", ":", "3"});  // overwrite
    ok(node, {"data", "ld.b", "delete"});
    ok(node, {"data", "ld.c.d", "set", "-v", ":", "four"});
    ok(node, {"log", "stop"});
    dump_at_stop = dump_all(node);
    tree_at_stop = fetch_tree(node.port());
    ok(node, {"data", "ld.after", "set", "-e", ":", "9"});  // not logged

    // Incremental: a save first, then only the changes.
    ok(node, {"log", "save", save});
    ok(node, {"log", "dest", "-i", log_inc});
    ok(node, {"data", "inc.x", "set", "-e", ":", "1"});
    ok(node, {"data", "inc.y.z", "set", "-e", ":", "2"});
    ok(node, {"data", "ld.a", "delete"});                    // a deletion record …
    ok(node, {"data", "ld.c.e", "set", "-e", ":", "5"});     // … then a depth-compressed path
    ok(node, {"data", "ld.c.d", "set", "-v", ":", "five"});  // overwrite of a saved entry
    ok(node, {"data", "inc.y.w", "set", "-e", ":", "3"});
    ok(node, {"log", "stop"});
    dump_at_inc_stop = dump_all(node);
    tree_at_inc_stop = fetch_tree(node.port());
    ok(node, {"data", "inc.after", "set", "-e", ":", "10"});  // not logged
    CHECK(node.stop() == 0);
  }
  CHECK(tree_at_stop.count("ld.b") == 0);
  CHECK(tree_at_inc_stop.count("ld.a") == 0);

  {
    node_process replay("replay", {"-l", log_full});
    CHECK(dump_all(replay) == dump_at_stop);
    tree_snapshot tree = fetch_tree(replay.port());
    CHECK_MESSAGE(tree_and_tock_diff(tree_at_stop, tree).empty(),
                  tree_and_tock_diff(tree_at_stop, tree));
    CHECK(get_value(replay.port(), "ld.b") == std::nullopt);
    CHECK(get_value(replay.port(), "ld.after") == std::nullopt);
    CHECK(get_value(replay.port(), "ld.a") == std::optional<value>(value(3)));
    CHECK(get_value(replay.port(), "ld.before") == std::optional<value>(value(1)));
    CHECK(replay.stop() == 0);
  }
  {
    // The incremental log alone has no data of the time before it.
    std::vector<file_record> recs = read_records(log_inc);
    REQUIRE(!recs.empty());
    CHECK(recs.front().rec.find("nodes") != nullptr);
    size_t deletions = 0;
    for (const auto& r : recs)
      if (r.rec.find("path") && !r.rec.find("value")) ++deletions;
    CHECK(deletions == 1);
  }
  {
    node_process replay("increplay", {"-l", save, "-l", log_inc});
    CHECK(dump_all(replay) == dump_at_inc_stop);
    tree_snapshot tree = fetch_tree(replay.port());
    CHECK_MESSAGE(tree_and_tock_diff(tree_at_inc_stop, tree).empty(),
                  tree_and_tock_diff(tree_at_inc_stop, tree));
    CHECK(get_value(replay.port(), "ld.a") == std::nullopt);
    CHECK(get_value(replay.port(), "ld.c.e") == std::optional<value>(value(5)));
    CHECK(get_value(replay.port(), "inc.after") == std::nullopt);
    CHECK(replay.stop() == 0);
  }
}

// ---- the state directory over time ------------------------------------------------------------

TEST_CASE("persistence: snapshots rotate after kv.server.state.snapshot_records and old files go") {
  scratch_dir dir;
  const std::string state = dir.file("state");
  constexpr int keys = 350;
  {
    node_process node("rotnode", {"--state", state, "-C", "kv.server.state.snapshot_records=100"});
    client_connection c("127.0.0.1", node.port(), 10s);
    for (int i = 0; i < keys; ++i)
      c.request("set_value",
                {{"path", value::make_path({"rot", "k" + std::to_string(i)})}, {"value", i}});
    // The persister writes the snapshot after the tree_store asked for it: poll a little.
    auto deadline = clock_type::now() + 10s;
    uint64_t newest = 0;
    bool settled = false;
    while (!settled && clock_type::now() < deadline) {
      newest = 0;
      uint64_t oldest = UINT64_MAX;
      bool other = false;
      for (const auto& f : list_state_dir(state)) {
        if (f.kind == "other") {
          // The node's lock file stays; temporary files of a snapshot do not.
          if (fs::path(f.path).filename() != "lock") other = true;
          continue;
        }
        oldest = std::min(oldest, f.generation);
        if (f.kind == "snapshot") newest = std::max(newest, f.generation);
      }
      settled = newest >= 4 && oldest == newest && !other;
      if (!settled) std::this_thread::sleep_for(20ms);
    }
    INFO(describe_dir(state));
    CHECK(settled);
    CHECK(newest == 4);  // generation 1 at the start, then one per 100 records
    CHECK(fs::exists(state + "/snapshot.4.mpk"));
    CHECK(fs::exists(state + "/log.4.mpk"));
    sigkill(node);
  }
  node_process node("rotnode", {"--state", state});
  tree_snapshot tree = fetch_tree(node.port());
  CHECK(tree.size() == keys);
  for (int i = 0; i < keys; ++i) {
    auto it = tree.find("rot.k" + std::to_string(i));
    REQUIRE_MESSAGE(it != tree.end(), "rot.k" << i);
    CHECK(it->second.data == value(i));
  }
  CHECK(node.stop() == 0);
  // The restart compacted into generation 5.
  INFO(describe_dir(state));
  CHECK(fs::exists(state + "/snapshot.5.mpk"));
  CHECK(!fs::exists(state + "/snapshot.4.mpk"));
}

TEST_CASE("persistence: a clean stop with --sync none or interval keeps everything") {
  for (const char* mode : {"none", "interval"}) {
    INFO("--sync " << mode);
    scratch_dir dir;
    const std::string state = dir.file("state");
    {
      node_process node("cleannode", {"--state", state, "--sync", mode});
      for (int i = 0; i < 20; ++i) set_value(node.port(), "clean.k" + std::to_string(i), value(i));
      set_value(node.port(), "clean.k3", value("three"));
      delete_value(node.port(), "clean.k5");
      CHECK(node.stop() == 0);
    }
    node_process node("cleannode", {"--state", state, "--sync", mode});
    tree_snapshot tree = fetch_tree(node.port());
    CHECK(tree.size() == 19);
    CHECK(get_value(node.port(), "clean.k3") == std::optional<value>(value("three")));
    CHECK(get_value(node.port(), "clean.k5") == std::nullopt);
    CHECK(get_value(node.port(), "clean.k19") == std::optional<value>(value(19)));
    CHECK(node.stop() == 0);
  }
}

TEST_CASE("persistence: a second node on the same state directory is refused") {
  scratch_dir dir;
  const std::string state = dir.file("state");
  node_process node("locknode", {"--state", state});
  set_value(node.port(), "lock.a", value(1));
  const std::string before = describe_dir(state);
  for (const char* name : {"locknode", "othernode"}) {
    command_result r = run_moatkv(server_args(name, {"--state", state}), std::nullopt, 20s);
    INFO(name << ": " << r.describe());
    CHECK(!r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("serving on") == std::string::npos);
    CHECK(r.err.find(state) != std::string::npos);
    CHECK(r.err.find("in use") != std::string::npos);
  }
  // The running node's files are untouched, and what it acknowledges after that survives.
  CHECK(describe_dir(state) == before);
  set_value(node.port(), "lock.b", value(2));
  CHECK(node.stop() == 0);
  node_process again("locknode", {"--state", state});
  CHECK(get_value(again.port(), "lock.a") == std::optional<value>(value(1)));
  CHECK(get_value(again.port(), "lock.b") == std::optional<value>(value(2)));
  CHECK(again.stop() == 0);
}

// ---- errors -----------------------------------------------------------------------------------

TEST_CASE("persistence: bad files and bad options give clear errors") {
  scratch_dir dir;
  SUBCASE("log save / log dest into a missing directory: an error, the node keeps serving") {
    node_process node("errnode", {});
    ok(node, {"data", "e.a", "set", "-e", ":", "1"});
    for (const char* sub : {"save", "dest"}) {
      command_result r = node.client({"log", sub, "/nonexistent-dir/x"});
      INFO("log " << sub << ": " << r.describe());
      CHECK(r.exit_code != 0);
      CHECK(!r.timed_out);
      CHECK(r.err.find("/nonexistent-dir/x") != std::string::npos);
    }
    CHECK(node.running());
    ok(node, {"data", "e.b", "set", "-e", ":", "2"});
    CHECK(ok(node, {"data", "e.a"}).out == "1\n");
    // A failed `log dest` left no log running: `log stop` still works.
    ok(node, {"log", "stop"});
    CHECK(node.stop() == 0);
  }
  SUBCASE("server --sync bogus is refused") {
    command_result r =
        run_moatkv(server_args("errnode", {"--state", dir.file("s1"), "--sync", "bogus"}));
    INFO(r.describe());
    CHECK(!r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("serving on") == std::string::npos);
    CHECK(r.err.find("bogus") != std::string::npos);
    CHECK(r.err.find("sync") != std::string::npos);
  }
  SUBCASE("kv.server.state.sync=bogus is refused before the state directory is touched") {
    const std::string state = dir.file("s2");
    {
      node_process node("errnode", {"--state", state});
      set_value(node.port(), "e.a", value(1));
      CHECK(node.stop() == 0);
    }
    const std::string before = describe_dir(state);
    command_result r =
        run_moatkv(server_args("errnode", {"--state", state, "-C", "kv.server.state.sync=bogus"}));
    INFO(r.describe());
    CHECK(!r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("bogus") != std::string::npos);
    CHECK(r.err.find("kv.server.state.sync") != std::string::npos);
    CHECK(describe_dir(state) == before);
  }
  SUBCASE("a missing -l file is refused with its name") {
    const std::string missing = dir.file("missing.mpk");
    command_result r = run_moatkv(server_args("errnode", {"-l", missing}));
    INFO(r.describe());
    CHECK(!r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find(missing) != std::string::npos);
  }
}

}  // namespace moatkv::test
