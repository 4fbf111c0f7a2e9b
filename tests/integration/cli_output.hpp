// What the command-line tests read from `moatkv` output: lines, the YAML documents a `data …
// monitor` prints, and a monitor running in the background (cli_test, cli_transport_test).
#pragma once

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/node_process.hpp"

namespace moatkv::test {

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Splits the monitor output into its YAML documents (each ends with a `---` line).
inline std::vector<YAML::Node> monitor_documents(const std::string& out) {
  std::vector<YAML::Node> docs;
  std::string cur;
  for (const auto& l : lines_of(out)) {
    if (l == "---") {
      docs.push_back(YAML::Load(cur));
      cur.clear();
    } else {
      cur += l + "\n";
    }
  }
  return docs;
}

inline size_t count_documents(const std::string& out) {
  auto ls = lines_of(out);
  return static_cast<size_t>(std::count(ls.begin(), ls.end(), "---"));
}

// A `data PATH monitor` client (`argv`: the whole command line, binary first), started in the
// background. `wait_subscribed` makes sure the node has registered the watch: it writes
// `probe_path` (a sibling below the monitored path) over msgpack until the monitor prints that
// change, each attempt bounded; no sleeping.
class monitor_client {
 public:
  monitor_client(const node_process& node, std::vector<std::string> argv)
      : node_(node), proc_(std::move(argv), {.capture_stderr = true, .stdin_data = {}}) {}

  bool wait_subscribed(const std::string& probe_path) {
    using namespace std::chrono_literals;
    for (int attempt = 1; attempt <= 20; ++attempt) {
      command_result r =
          node_.client({"data", probe_path, "set", "-e", ":", std::to_string(attempt)});
      if (r.exit_code != 0) return false;
      // Subscribed once this attempt's change is printed; changes arrive in order, so nothing
      // of the probe is printed after it.
      bool seen = proc_.wait_for_stdout(
          [&](const std::string& out) {
            for (const auto& doc : monitor_documents(out))
              if (doc["value"] && doc["value"].as<std::string>() == std::to_string(attempt))
                return true;
            return false;
          },
          500ms);
      if (seen) return true;
      if (!proc_.running()) return false;
    }
    return false;
  }
  child_process& proc() { return proc_; }
  std::string describe() {
    return "monitor " + std::string(proc_.running() ? "running" : "exited") + "\n--- stdout ---\n" +
           proc_.stdout_text() + "--- stderr ---\n" + proc_.stderr_text();
  }

 private:
  const node_process& node_;
  child_process proc_;
};

}  // namespace moatkv::test
