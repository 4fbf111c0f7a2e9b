// A client command that must succeed, for doctest cases that drive the command line.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/integration/node_process.hpp"

namespace moatkv::test {

/// Runs `moatkv -p PORT ARGS…` against `node`; fails the check (with the command and its
/// output) unless it exits 0 in time.
inline command_result ok(const node_process& node, const std::vector<std::string>& args) {
  command_result r = node.client(args);
  std::string cmd = "moatkv";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << ": " << r.describe());
  CHECK(r.exit_code == 0);
  CHECK(!r.timed_out);
  return r;
}

}  // namespace moatkv::test
