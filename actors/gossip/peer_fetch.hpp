// Initial download of a joining node (server-internals §5.3 fetch_data): connect to a peer as
// an ordinary client, stream `get_tree` and `get_tree_internal` with full chains into the
// tree_store, then apply the peer's `get_state` (node ticks, superseded and deleted ranges).
//
// Runs in its own blocking actor (the client is synchronous); it applies records in batches
// and waits for each batch to be applied, so a large tree never piles up in a mailbox.
// Candidates are tried in order until one succeeds; the result goes to `owner` as
// (fetched_atom, bool ok, std::string detail). With `probe` the candidates are guesses (the
// peers of kv.hostmap, tried before the ping protocol named one): they may not serve yet, so a
// failure is logged at debug level only and each gets 2 s instead of 10 to answer.
//
// A peer that requires a login gets one from `auth` (the `kv.conn.auth` spec, client_auth.hpp);
// when the spec is missing, unusable or refused the log names the peer and the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "transport/tls_channel.hpp"

namespace moatkv {

struct peer_address_entry {
  std::string name;
  std::string host;
  uint16_t port = 0;
};

caf::actor spawn_peer_fetch(caf::actor_system& sys, std::string own_name,
                            std::vector<peer_address_entry> peers, caf::actor store,
                            caf::actor owner, std::string auth = {},
                            std::optional<tls_client_config> tls = std::nullopt,
                            bool probe = false);

}  // namespace moatkv
