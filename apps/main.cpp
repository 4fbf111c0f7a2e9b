// moatkv: the command line of a MoaT-KV node and its clients (`moat kv …` → `moatkv …`).
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

int command_status = 0;

node_config global_options::config() const {
  node_config cfg = node_config::load(config_file);
  for (const auto& o : overrides) cfg.apply_override(o);
  return cfg;
}

std::string global_options::connect_host(const node_config& cfg) const {
  return host.empty() ? cfg.get_string("kv.conn.host", "127.0.0.1") : host;
}

uint16_t global_options::connect_port(const node_config& cfg) const {
  int64_t p = port > 0 ? port : cfg.get_int("kv.conn.port", 27586);
  if (p <= 0 || p > 65535) throw config_error("port " + std::to_string(p) + " is out of range");
  return static_cast<uint16_t>(p);
}

// kv.conn.ssl: false/absent (clear text), true (TLS, verified against the system's CAs), or
// {ca: FILE, cert: FILE, key: FILE, verify: bool, server_name: NAME}.
std::optional<tls_client_config> client_tls(const node_config& cfg) {
  YAML::Node ssl = cfg.get("kv.conn.ssl");
  if (!ssl.IsDefined() || ssl.IsNull()) return std::nullopt;
  if (ssl.IsScalar()) {
    bool on;
    if (!YAML::convert<bool>::decode(ssl, on))
      throw config_error("kv.conn.ssl must be true, false or a map, not '" + ssl.Scalar() + "'");
    return on ? std::optional<tls_client_config>(tls_client_config{}) : std::nullopt;
  }
  if (!ssl.IsMap()) throw config_error("kv.conn.ssl must be true, false or a map");
  tls_client_config c;
  for (auto it = ssl.begin(); it != ssl.end(); ++it) {
    std::string key = it->first.as<std::string>();
    try {
      if (key == "ca")
        c.ca_file = it->second.as<std::string>();
      else if (key == "cert")
        c.cert_file = it->second.as<std::string>();
      else if (key == "key")
        c.key_file = it->second.as<std::string>();
      else if (key == "verify")
        c.verify = it->second.as<bool>();
      else if (key == "server_name")
        c.server_name = it->second.as<std::string>();
      else
        throw config_error("kv.conn.ssl." + key +
                           " is not a known key (ca, cert, key, verify, server_name)");
    } catch (const YAML::Exception&) {
      throw config_error("kv.conn.ssl." + key + " has the wrong type");
    }
  }
  return c;
}

std::unique_ptr<client_connection> client_setup::connect(const std::string& host,
                                                         uint16_t port) const {
  auto conn = std::make_unique<client_connection>(host, port, options);
  login(*conn, auth ? &*auth : nullptr);
  return conn;
}

client_setup global_options::setup(const node_config& cfg) const {
  client_setup s;
  // Parsed (and prompted for) before connecting, as the original does, so a typo in the spec
  // fails before any traffic.
  std::string spec_text = auth ? *auth : cfg.get_string("kv.conn.auth", "");
  if (!spec_text.empty()) s.auth = parse_auth_spec(spec_text);
  s.options.tls = client_tls(cfg);
  return s;
}

std::unique_ptr<client_connection> global_options::connect() const {
  node_config cfg = config();
  return setup(cfg).connect(connect_host(cfg), connect_port(cfg));
}

}  // namespace moatkv

int main(int argc, char** argv) {
  using namespace moatkv;
  CLI::App app{"moatkv: a master-less distributed key-value store (MoaT-KV compatible)"};
  // -h is the host, as in `moat kv -h HOST`; help is --help only.
  app.set_help_flag("--help", "Print this help message and exit");
  app.require_subcommand(1);
  app.fallthrough();
  global_options g;
  app.add_option("-c,--cfg", g.config_file, "Configuration file (YAML, the original's layout)")
      ->check(CLI::ExistingFile);
  app.add_option("-C,--config", g.overrides, "Override one config key: KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  app.add_option("-h,--host", g.host, "Host of the node to talk to (default: kv.conn.host)");
  app.add_option("-p,--port", g.port, "Port of the node to talk to (default: kv.conn.port)")
      ->check(CLI::Range(1, 65535));
  app.add_flag("-m,--metadata", g.metadata, "Print full replies, with chain and tock");
  app.add_option("-a,--auth", g.auth,
                 "Log in: 'METHOD k=v …' (k? asks for k without echo) or '=FILE' (YAML with "
                 "'type: METHOD'); default: kv.conn.auth. Ignored if the node needs no login");
  app.add_flag("-v,--verbose", g.verbose, "More log output (repeatable)");
  add_server_command(app, g);
  add_data_command(app, g);
  add_bench_command(app, g);
  add_log_command(app, g);
  add_auth_command(app, g);
  add_acl_command(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const config_error& e) {
    std::cerr << "moatkv: " << e.what() << "\n";
    return 2;
  } catch (const client_error& e) {
    std::cerr << "moatkv: " << e.what() << "\n";
    return 1;
  } catch (const server_error& e) {
    std::cerr << "moatkv: the server replied with an error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {  // bad paths, bad literals, …
    std::cerr << "moatkv: " << e.what() << "\n";
    return 2;
  }
  return command_status;
}
