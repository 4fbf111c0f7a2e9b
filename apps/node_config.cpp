#include "apps/node_config.hpp"

#include <fstream>
#include <sstream>
#include <vector>

namespace moatkv {

namespace {

const char* default_config = R"(
kv:
  conn:
    host: 127.0.0.1
    port: 27586
    init_timeout: 5
  server:
    backend: none
    buffer: 10
    root: moat.kv
    ping:
      cycle: 10
      gap: 2
    delete:
      cycle: 100
      gap: 10
    change:
      length: 5
    bind_default:
      host: 127.0.0.1
      port: 27586
    mqtt:
      uri: mqtt://localhost:1883
    serf:
      host: localhost
      port: 7373
)";

std::vector<std::string> split_dotted(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) {
    if (p.empty()) throw config_error("bad config key '" + key + "': empty part");
    parts.push_back(p);
  }
  if (parts.empty()) throw config_error("empty config key");
  return parts;
}

// Merge `over` into `base` (maps recursively, everything else replaced).
void merge(YAML::Node base, const YAML::Node& over) {
  for (auto it = over.begin(); it != over.end(); ++it) {
    std::string key = it->first.as<std::string>();
    if (it->second.IsMap() && base[key] && base[key].IsMap())
      merge(base[key], it->second);
    else
      base[key] = YAML::Clone(it->second);
  }
}

// Set parts[i..] below `node`, creating maps on the way (recursion instead of reassigning
// Node handles, which in yaml-cpp would overwrite contents instead of moving the handle).
void assign(YAML::Node node, const std::vector<std::string>& parts, size_t i,
            const YAML::Node& val) {
  if (i + 1 == parts.size()) {
    node[parts[i]] = val;
    return;
  }
  if (!node[parts[i]].IsDefined() || !node[parts[i]].IsMap())
    node[parts[i]] = YAML::Node(YAML::NodeType::Map);
  assign(node[parts[i]], parts, i + 1, val);
}

}  // namespace

node_config node_config::load(const std::optional<std::string>& file) {
  node_config c;
  c.root_ = YAML::Load(default_config);
  if (file) {
    std::ifstream in(*file);
    if (!in) throw config_error("cannot read config file " + *file);
    YAML::Node user;
    try {
      user = YAML::Load(in);
    } catch (const YAML::Exception& e) {
      throw config_error("config file " + *file + ": " + e.what());
    }
    if (user && !user.IsNull()) {
      if (!user.IsMap()) throw config_error("config file " + *file + " must hold a map");
      merge(c.root_, user);
    }
  }
  return c;
}

void node_config::apply_override(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos)
    throw config_error("config override '" + assignment + "' must be KEY=VALUE");
  auto parts = split_dotted(assignment.substr(0, eq));
  YAML::Node val;
  try {
    val = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw config_error("config override '" + assignment + "': " + e.what());
  }
  assign(root_, parts, 0, val);
}

namespace {
// Descend without assigning one Node handle to another: in yaml-cpp that rebinds contents.
YAML::Node descend(const YAML::Node& cur, const std::vector<std::string>& parts, size_t i) {
  if (i == parts.size()) return cur;
  if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node next = cur[parts[i]];
  if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return descend(next, parts, i + 1);
}
}  // namespace

YAML::Node node_config::get(const std::string& dotted) const {
  return descend(root_, split_dotted(dotted), 0);
}

std::string node_config::get_string(const std::string& dotted, const std::string& dflt) const {
  YAML::Node n = get(dotted);
  if (!n.IsDefined() || !n.IsScalar()) return dflt;
  return n.as<std::string>();
}

int64_t node_config::get_int(const std::string& dotted, int64_t dflt) const {
  YAML::Node n = get(dotted);
  if (!n.IsDefined() || !n.IsScalar()) return dflt;
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    throw config_error("config key " + dotted + " must be an integer, not '" + n.as<std::string>() +
                       "'");
  }
}

double node_config::get_double(const std::string& dotted, double dflt) const {
  YAML::Node n = get(dotted);
  if (!n.IsDefined() || !n.IsScalar()) return dflt;
  try {
    return n.as<double>();
  } catch (const YAML::Exception&) {
    throw config_error("config key " + dotted + " must be a number, not '" + n.as<std::string>() +
                       "'");
  }
}

}  // namespace moatkv
