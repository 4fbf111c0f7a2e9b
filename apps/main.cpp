// moatkv: the command line of a MoaT-KV node and its clients (`moat kv …` → `moatkv …`).
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"
#include "transport/kv_client.hpp"

namespace moatkv {

int command_status = 0;

const char* const caf_only_for_data =
    "--transport caf: only `data` commands can use the remote actor interface";

node_config global_options::config() const {
  node_config cfg = node_config::load(config_file);
  for (const auto& o : overrides) cfg.apply_override(o);
  return cfg;
}

client_transport global_options::transport_kind() const {
  std::optional<client_transport> t = parse_client_transport(transport);
  if (!t) throw usage_error("--transport must be msgpack or caf, not '" + transport + "'");
  return *t;
}

std::string global_options::connect_host(const node_config& cfg) const {
  return connect_host(cfg, transport_kind());
}

uint16_t global_options::connect_port(const node_config& cfg) const {
  return connect_port(cfg, transport_kind());
}

std::string global_options::connect_host(const node_config& cfg, client_transport t) const {
  if (!host.empty()) return host;
  return t == client_transport::caf ? cfg.get_string("kv.server.remote.host", "127.0.0.1")
                                    : cfg.get_string("kv.conn.host", "127.0.0.1");
}

uint16_t global_options::connect_port(const node_config& cfg, client_transport t) const {
  if (port > 0) return static_cast<uint16_t>(port);  // -p is checked by CLI11
  if (t == client_transport::caf) {
    int64_t p = cfg.get_int("kv.server.remote.port", 27587);
    if (p == 0)
      throw config_error(
          "kv.server.remote.port is 0 (the remote actor interface is off): give -p PORT");
    if (p < 0 || p > 65535)
      throw config_error("kv.server.remote.port " + std::to_string(p) + " is out of range");
    return static_cast<uint16_t>(p);
  }
  int64_t p = cfg.get_int("kv.conn.port", 27586);
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
  // main refuses such command lines before any command runs; this is the backstop.
  if (transport_kind() != client_transport::msgpack) throw usage_error(caf_only_for_data);
  node_config cfg = config();
  return setup(cfg).connect(connect_host(cfg), connect_port(cfg));
}

kv_client_options global_options::client_library_options(const node_config& cfg) const {
  kv_client_options o;
  o.transport = transport_kind();
  // The login spec is parsed (and prompted for) before connecting, as with `setup`.
  client_setup s = setup(cfg);
  o.host = connect_host(cfg, o.transport);
  o.port = connect_port(cfg, o.transport);
  o.timeout = s.options.timeout;
  // kv.conn.ssl is the msgpack listener's; the remote actor interface has no TLS.
  if (o.transport == client_transport::msgpack) o.tls = s.options.tls;
  o.auth = s.auth;
  return o;
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
  app.add_option("-h,--host", g.host,
                 "Host of the node to talk to (default: kv.conn.host; with --transport caf: "
                 "kv.server.remote.host)");
  app.add_option("-p,--port", g.port,
                 "Port of the node to talk to (default: kv.conn.port, 27586; with --transport "
                 "caf: kv.server.remote.port, 27587; `bench` keeps -p for msgpack and takes "
                 "--remote-port for caf)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--transport", g.transport,
                 "How client commands talk to the node: msgpack (the client protocol, the "
                 "default) or caf (the node's remote actor interface, kv.server.remote; no TLS; "
                 "only `data` and `bench set|get`)")
      ->check(CLI::IsMember({"msgpack", "caf"}));
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
  // Runs after parsing, before any command's callback: commands other than `data` (and bench's
  // set/get, which check for themselves) speak the msgpack protocol only, so --transport caf
  // fails here at once rather than with a connection attempt.
  app.parse_complete_callback([&app, &g] {
    if (g.transport != "caf") return;
    for (const CLI::App* sub : app.get_subcommands())
      if (sub->get_name() != "data" && sub->get_name() != "bench")
        throw usage_error(caf_only_for_data);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors exit with 2, as the original's (click) and our other bad-input errors do.
    int status = app.exit(e);
    return status == 0 ? 0 : 2;
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
