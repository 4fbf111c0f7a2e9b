// The client side of MoaT-KV logins (batteries.md §1.2, §1.4): the `-a` / `kv.conn.auth` spec
// and the login after the greeting. No CAF, no output; used by the command line and by a
// joining node that downloads a peer's tree (peer_fetch).
//
// Spec syntax, as the original's `gen_auth` / moat-util `split_arg`:
//   "METHOD k=v k2=v2 …"   v becomes an int when it parses as one ("5" → 5, "x5" stays a string)
//   "METHOD … k?"          asks "k? " on the terminal, without echo (the answer stays a string)
//   "METHOD … k?=Prompt"   asks "Prompt: " (the answer is converted to an int if it parses, as
//                          the original does)
//   "=FILE"                a YAML map: `type: METHOD` plus the parameters
// validated as the original's client schemas: `root` takes no parameters; `_test` needs `name`
// (^[a-zA-Z][a-zA-Z0-9_]*$) and nothing else; `password` needs `name` and `password` (a string
// of at least 5 characters). Our one extension: `chroot` (or `root`), a path in P() syntax (or
// a list in a YAML file), sent as the login's `root` (the tenant sub-tree, §1.3).
//
// Login (after the greeting): no `auth` in the greeting, or `auth[0]` nil → nothing to do, a
// given spec is ignored. Otherwise the spec's method must be `auth[0]`:
//   root / _test: {action: auth, typ, ident ("*" / name), data: {}, root: [chroot…]}
//   password:     {action: diffie_hellman, pubkey, length: 1024} → {pubkey}, then
//                 {action: auth, typ: password, ident: name, password: nonce||secretbox(sha256)}
// The `auth` reply is a stream: {state: start}, then {state: end} or an `error` message.
// The original client sends the chroot as `chroot`; its server reads `root`, so we send `root`.
//
// The Diffie-Hellman key stays on the connection (client_connection::session_key): the server
// allows one `diffie_hellman` per connection, and `auth_set` of a password needs the same key.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "messages/value.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

/// A spec that cannot be used: syntax, unreadable file, schema violation, unknown method.
/// The command line reports it with exit status 2 (a usage error).
struct auth_spec_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// The server wants a login we cannot give (none configured, another method). The text starts
/// with the original's exception name (ClientAuthRequiredError, ClientAuthMethodError).
struct client_auth_error : client_error {
  using client_error::client_error;
};

/// Asks the user for a secret: gets the prompt text ("password? ", "Code: "), returns the answer.
using prompt_function = std::function<std::string(const std::string& prompt)>;

/// Reads one line from the controlling terminal (/dev/tty) with echo off. Throws
/// auth_spec_error when there is no terminal (a server, a pipe without a tty).
std::string terminal_prompt(const std::string& prompt);

/// The auth methods the original ships and we implement.
bool known_auth_method(std::string_view method);

struct auth_spec {
  std::string method;  // root, _test, password
  map params;          // name, password, … (chroot/root removed, see below)
  array chroot;        // the `chroot` / `root` parameter; empty: the connection's root

  /// A parameter, or nullptr.
  const value* param(std::string_view key) const { return map_find(params, key); }
  /// The identity sent with the login: "*" for root, else `name`.
  std::string ident() const;
};

/// One `split_arg` token into `kw` ("k=v", "k?", "k?=Prompt"). Throws auth_spec_error for a
/// token without '=' or '?' (the original raises ValueError there).
void split_arg(const std::string& token, map& kw, const prompt_function& prompt);

/// Parses and validates an `-a` / `kv.conn.auth` string (see the file comment).
auth_spec parse_auth_spec(const std::string& text, const prompt_function& prompt = terminal_prompt);

/// The client side of a Diffie-Hellman exchange over any transport: `request` sends the
/// `diffie_hellman` request's fields ({pubkey, length}) and returns the reply. Returns the
/// 32-byte SecretBox key. `length` selects the group as the original does (1024 → 14).
std::string dh_session_key(const std::function<value(map)>& request, int64_t length = 1024);

/// Runs the Diffie-Hellman exchange unless the connection already has a session key; returns
/// the key (dh_session_key over this connection).
const std::string& ensure_session_key(client_connection& conn, int64_t length = 1024);

/// The fields of the `auth` request for `spec` (transport-independent). `session_key`: the
/// Diffie-Hellman key, used by the password method only (empty for the others).
map auth_request(const auth_spec& spec, const std::string& session_key);

/// Sends the login for `spec` and waits for its end (no greeting checks; on a connection that
/// is already logged in the server only verifies it — `auth user auth`). Throws server_error
/// when the server refuses (e.g. "AuthFailedError('Password hashes do not match', 'joe')").
void authenticate(client_connection& conn, const auth_spec& spec);

/// Whether a server with this greeting wants a login, and that `spec` is the method it wants
/// (the checks of `login`, for any transport). Throws client_auth_error as `login` does.
bool login_needed(const value& greeting, const auth_spec* spec);

/// The original client's login after the greeting (see the file comment). `spec` may be null.
/// Throws client_auth_error (login required / wrong method) or server_error (refused).
void login(client_connection& conn, const auth_spec* spec);

}  // namespace moatkv
