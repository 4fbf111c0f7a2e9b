// The error text a request gets from a node, for tests that expect refusals.
#pragma once

#include <string>

#include "transport/client_connection.hpp"

namespace moatkv::test {

/// The `error` of a single-reply request; empty if it succeeded.
inline std::string error_text(client_connection& c, const std::string& action, map params) {
  try {
    c.request(action, std::move(params));
  } catch (const server_error& e) {
    return e.what();
  }
  return "";
}

/// The error of a streamed request (e.g. `auth`); empty if it ended without one.
inline std::string stream_error(client_connection& c, const std::string& action, map params) {
  try {
    c.stream(action, std::move(params), [](const value&) { return true; });
  } catch (const server_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace moatkv::test
