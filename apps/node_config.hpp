// Configuration in the original's YAML layout (`kv: conn / server / …`), with our defaults
// merged underneath and `-C key=value` overrides on top.
//
// Defaults that differ from the original, on purpose: `kv.server.backend` is `none` (a node
// runs standalone until a broker is configured) and the listener binds 127.0.0.1, not every
// address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

namespace moatkv {

struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class node_config {
 public:
  /// Defaults, then the file (if any) merged over them. Throws config_error.
  static node_config load(const std::optional<std::string>& file);

  /// `-C kv.server.port=27600`: the value is parsed as YAML (so numbers stay numbers).
  void apply_override(const std::string& assignment);

  /// The node at a dotted key, or an undefined node.
  YAML::Node get(const std::string& dotted) const;
  std::string get_string(const std::string& dotted, const std::string& dflt) const;
  int64_t get_int(const std::string& dotted, int64_t dflt) const;
  double get_double(const std::string& dotted, double dflt) const;

  const YAML::Node& root() const { return root_; }

 private:
  YAML::Node root_;
};

}  // namespace moatkv
