#include "actors/persister/state_dir.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <stdexcept>

namespace moatkv {

namespace fs = std::filesystem;

namespace {

// "snapshot.12.mpk" -> ("snapshot", 12); anything else -> nullopt.
std::optional<std::pair<std::string, uint64_t>> parse_name(const std::string& name) {
  static constexpr std::string_view suffix = ".mpk";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  auto dot = name.find('.');
  std::string kind = name.substr(0, dot);
  if (kind != "snapshot" && kind != "log") return std::nullopt;
  const char* b = name.data() + dot + 1;
  const char* e = name.data() + name.size() - suffix.size();
  uint64_t gen = 0;
  auto [p, ec] = std::from_chars(b, e, gen);
  if (ec != std::errc() || p != e || b == e) return std::nullopt;
  return std::make_pair(kind, gen);
}

}  // namespace

std::string snapshot_file(const std::string& dir, uint64_t generation) {
  return (fs::path(dir) / ("snapshot." + std::to_string(generation) + ".mpk")).string();
}

std::string log_file(const std::string& dir, uint64_t generation) {
  return (fs::path(dir) / ("log." + std::to_string(generation) + ".mpk")).string();
}

state_dir_plan plan_state_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("state directory " + dir + ": " + ec.message());
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + " is not a directory");
  std::map<uint64_t, std::string> snapshots, logs;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    auto parsed = parse_name(de.path().filename().string());
    if (!parsed || !de.is_regular_file()) continue;
    (parsed->first == "snapshot" ? snapshots : logs)[parsed->second] = de.path().string();
  }
  if (ec) throw std::runtime_error("state directory " + dir + ": " + ec.message());
  state_dir_plan plan;
  uint64_t from = 0;
  if (!snapshots.empty()) {
    plan.snapshot = snapshots.rbegin()->second;
    from = snapshots.rbegin()->first;
    plan.generation = from;
  }
  for (const auto& [gen, path] : logs) {
    if (gen < from) continue;  // superseded by the snapshot; removed after the next one
    plan.logs.push_back(path);
    plan.generation = std::max(plan.generation, gen);
  }
  return plan;
}

size_t remove_old_generations(const std::string& dir, uint64_t keep) {
  size_t removed = 0;
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    std::string name = de.path().filename().string();
    auto parsed = parse_name(name);
    bool stale_tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
                     parse_name(name.substr(0, name.size() - 4)).has_value();
    if ((parsed && parsed->second < keep) || stale_tmp) doomed.push_back(de.path());
  }
  for (const auto& p : doomed)
    if (fs::remove(p, ec)) ++removed;
  return removed;
}

}  // namespace moatkv
