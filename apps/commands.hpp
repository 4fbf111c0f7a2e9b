// The `moatkv` command line: global options and the registration of each subcommand
// (one file per command group, as the original's `moat kv` modules).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/node_config.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"
#include "transport/kv_client.hpp"
#include "transport/tls_channel.hpp"

namespace CLI {
class App;
}

namespace moatkv {

/// How client commands connect: TLS (kv.conn.ssl) and the login (-a / kv.conn.auth), parsed
/// (and prompted for) once, for any number of connections.
struct client_setup {
  client_options options;
  std::optional<auth_spec> auth;
  /// Connected, greeted and logged in (when the node requires it).
  std::unique_ptr<client_connection> connect(const std::string& host, uint16_t port) const;
};

/// A command line that is wrong in a way CLI11 cannot check (exit status 2).
struct usage_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct global_options {
  std::optional<std::string> config_file;  // -c
  std::vector<std::string> overrides;      // -C key=value
  std::string host;                        // -h (default: kv.conn.host / kv.server.remote.host)
  int port = 0;                            // -p (default: kv.conn.port / kv.server.remote.port)
  bool metadata = false;                   // -m: print chains and tocks
  std::optional<std::string> auth;         // -a "METHOD k=v…" | "=FILE" (default: kv.conn.auth)
  int verbose = 0;                         // -v (repeatable)
  std::string transport = "msgpack";       // --transport msgpack | caf (checked by CLI11)

  /// The merged configuration (file, then overrides). Throws config_error.
  node_config config() const;
  /// --transport.
  client_transport transport_kind() const;
  /// Where client commands connect over --transport: -h / -p, else msgpack: kv.conn.host /
  /// kv.conn.port; caf: kv.server.remote.host / kv.server.remote.port.
  std::string connect_host(const node_config& cfg) const;
  uint16_t connect_port(const node_config& cfg) const;
  /// The same for a given transport (bench uses both).
  std::string connect_host(const node_config& cfg, client_transport t) const;
  uint16_t connect_port(const node_config& cfg, client_transport t) const;
  /// TLS and login of client connections. Throws config_error / auth_spec_error.
  client_setup setup(const node_config& cfg) const;
  /// A connection for a client command: connected, greeted and (when configured) logged in.
  /// Every msgpack-only client command connects through this function (or `setup`, for
  /// several). Throws usage_error with --transport caf.
  std::unique_ptr<client_connection> connect() const;
  /// What a kv_client of the `data` commands gets: --transport, host, port, TLS (msgpack
  /// only), the login. Throws config_error / auth_spec_error.
  kv_client_options client_library_options(const node_config& cfg) const;
};

/// The message of every msgpack-only command run with --transport caf.
extern const char* const caf_only_for_data;

/// kv.conn.ssl as a client TLS config (nullopt: clear text). Throws config_error. Used by the
/// client commands and by a node fetching from its peers.
std::optional<tls_client_config> client_tls(const node_config& cfg);

/// Exit status of a command (set by its callback; main returns it).
extern int command_status;

void add_server_command(CLI::App& app, global_options& g);
void add_data_command(CLI::App& app, global_options& g);
void add_bench_command(CLI::App& app, global_options& g);
void add_log_command(CLI::App& app, global_options& g);
void add_auth_command(CLI::App& app, global_options& g);
void add_acl_command(CLI::App& app, global_options& g);

}  // namespace moatkv
