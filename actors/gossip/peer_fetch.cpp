#include "actors/gossip/peer_fetch.hpp"

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include "actors/tree_store/actions.hpp"
#include "actors/tree_store/depth_compression.hpp"
#include "messages/node_messages.hpp"
#include "transport/client_auth.hpp"
#include "transport/client_connection.hpp"

namespace moatkv {

namespace {

constexpr size_t batch_size = 2000;
constexpr int64_t fetch_window = 1000;  // entries in flight from the peer

// Apply a batch of full-path entry records and wait until the tree_store has done so.
void apply_batch(caf::blocking_actor* self, const caf::actor& store, std::vector<value>& batch) {
  if (batch.empty()) return;
  store_call call{[b = std::move(batch)](kv_store& s) {
    for (const auto& rec : b) s.apply_update(rec);
    return value();
  }};
  batch.clear();
  self->request(store, caf::infinite, store_call_atom::value, std::move(call))
      .receive([](value&) {}, [](caf::error&) {});
}

// Stream one tree (data or meta) from the peer into the store; returns the record count.
int64_t fetch_tree(caf::blocking_actor* self, client_connection& c, const caf::actor& store,
                   const char* action, array prefix, const std::string& own_name) {
  path_longener longener(prefix);
  std::vector<value> batch;
  int64_t n = 0;
  std::string error;
  // The request's own window (§7.6): with the connection's (kv.server.buffer, 10) a fetch
  // waits for a round trip every few entries; 1000 keeps the peer streaming.
  c.stream(action,
           {{"path", value::make_path({})},
            {"nchain", -1},
            {"from_server", own_name},
            {"qlen", fetch_window}},
           [&](const value& rec) {
             value r = rec;
             if (!longener.apply(r, error))
               throw client_error("bad record from the peer: " + error);
             batch.push_back(std::move(r));
             ++n;
             if (batch.size() >= batch_size) apply_batch(self, store, batch);
             return true;
           });
  apply_batch(self, store, batch);
  return n;
}

// The login for peers that require one. A node has no terminal to ask on, so `k?` fails.
std::optional<auth_spec> peer_login(const std::string& own_name, const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    return parse_auth_spec(text, [](const std::string& prompt) -> std::string {
      throw auth_spec_error("cannot ask '" + prompt + "' in a server");
    });
  } catch (const std::exception& e) {
    spdlog::error("{}: kv.conn.auth is unusable, fetching without a login: {}", own_name, e.what());
    return std::nullopt;
  }
}

void fetch_impl(caf::blocking_actor* self, std::string own_name,
                std::vector<peer_address_entry> peers, caf::actor store, caf::actor owner,
                std::string auth_text, std::optional<tls_client_config> tls, bool probe) {
  std::string errors;
  std::optional<auth_spec> spec = peer_login(own_name, auth_text);
  for (const auto& p : peers) {
    try {
      client_connection c(p.host, p.port,
                          client_options{std::chrono::seconds(probe ? 2 : 10), tls});
      try {
        login(c, spec ? &*spec : nullptr);
      } catch (const std::exception& e) {
        spdlog::error("fetch from {} ({}:{}): cannot log in (check kv.conn.auth): {}", p.name,
                      p.host, p.port, e.what());
        throw;
      }
      c.set_timeout(std::chrono::seconds(60));
      int64_t n = fetch_tree(self, c, store, "get_tree", {}, own_name);
      int64_t m = fetch_tree(self, c, store, "get_tree_internal", {value()}, own_name);
      value state = c.request(
          "get_state",
          {{"nodes", true}, {"known", true}, {"deleted", true}, {"from_server", own_name}});
      self->request(store, caf::infinite, store_call_atom::value, store_call{[state](kv_store& s) {
                      s.process_state(state);
                      return value();
                    }})
          .receive([](value&) {}, [](caf::error&) {});
      self->send(owner, fetched_atom::value, true,
                 "from " + p.name + ": " + std::to_string(n) + " entries, " + std::to_string(m) +
                     " meta entries");
      return;
    } catch (const std::exception& e) {
      spdlog::log(probe ? spdlog::level::debug : spdlog::level::warn,
                  "fetch from {} ({}:{}) failed: {}", p.name, p.host, p.port, e.what());
      errors += (errors.empty() ? "" : "; ") + p.name + ": " + e.what();
    }
  }
  self->send(owner, fetched_atom::value, false, errors);
}

}  // namespace

caf::actor spawn_peer_fetch(caf::actor_system& sys, std::string own_name,
                            std::vector<peer_address_entry> peers, caf::actor store,
                            caf::actor owner, std::string auth,
                            std::optional<tls_client_config> tls, bool probe) {
  return sys.spawn(fetch_impl, std::move(own_name), std::move(peers), std::move(store),
                   std::move(owner), std::move(auth), std::move(tls), probe);
}

}  // namespace moatkv
