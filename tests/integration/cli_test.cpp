// The `moatkv data` command line against a real node, driven exactly as a user would: every
// step is a separate `moatkv -h 127.0.0.1 -p PORT data …` process whose exit code, stdout and
// stderr are checked (batteries.md §8.1 commands, §8.4 output). The node is `moatkv server NAME
// -I Init` on a free loopback port.
//
// The output format is the original's (`yprint`, `yaml_dump`); where details are a matter of
// YAML styling the tests parse the YAML (yaml-cpp) or assert the essential lines, e.g.
// `- !P a: 123` for a recursive get.
//
// Long-running clients (`data … monitor`) are child processes whose stdout is read as it comes;
// they are stopped by PID like the node. Nothing waits by sleeping.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/cli_output.hpp"
#include "tests/integration/client_ok.hpp"
#include "tests/integration/node_process.hpp"

namespace moatkv::test {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  auto ls = lines_of(text);
  return std::find(ls.begin(), ls.end(), line) != ls.end();
}

YAML::Node parse_yaml(const command_result& r) {
  try {
    return YAML::Load(r.out);
  } catch (const YAML::Exception& e) {
    FAIL("output is not YAML (" << e.what() << "): " << r.describe());
  }
  return {};
}

}  // namespace

TEST_CASE("a user's session with `moatkv data`: set, get, get -r, list, -m, delete") {
  node_process node("clinode", {"-I", "Init"});

  // The steps build on each other, as in a user's shell session.
  // set with a literal, then print it
  ok(node, {"data", "demo.a", "set", "-e", ":", "123"});
  {
    command_result r = ok(node, {"data", "demo.a"});
    CHECK(r.out == "123\n");
  }
  // set a map from a string and a literal; set a string below it
  ok(node, {"data", "demo.b", "set", "-v", "x", "hello", "-e", "y", "2"});
  {
    command_result r = ok(node, {"data", "demo.b"});
    YAML::Node y = parse_yaml(r);
    REQUIRE(y.IsMap());
    CHECK(y.size() == 2);
    CHECK(y["x"].as<std::string>() == "hello");
    CHECK(y["y"].as<int>() == 2);
  }
  ok(node, {"data", "demo.b.c", "set", "-v", ":", "some text"});
  {
    command_result r = ok(node, {"data", "demo.b.c"});
    CHECK(r.out == "'some text'\n");  // yprint: strings as Python repr
  }

  // recursive get: a sequence of one-key maps `- !P path: value`, in tree order
  {
    command_result r = ok(node, {"data", "demo", "get", "-r"});
    INFO(r.describe());
    CHECK(has_line(r.out, "- !P a: 123"));
    CHECK(has_line(r.out, "- !P b.c: some text"));
    YAML::Node y = parse_yaml(r);
    REQUIRE(y.IsSequence());
    REQUIRE(y.size() == 3);
    std::vector<std::string> paths;
    for (const auto& item : y) {
      REQUIRE(item.IsMap());
      REQUIRE(item.size() == 1);
      auto kv = *item.begin();
      CHECK(kv.first.Tag() == "!P");
      paths.push_back(kv.first.as<std::string>());
    }
    CHECK(paths == std::vector<std::string>{"a", "b", "b.c"});
    CHECK(y[0]["a"].as<int>() == 123);
    CHECK(y[1]["b"]["x"].as<std::string>() == "hello");
    CHECK(y[1]["b"]["y"].as<int>() == 2);
    CHECK(y[2]["b.c"].as<std::string>() == "some text");
  }

  // recursive get as a nested map, values under `_`
  {
    command_result r = ok(node, {"data", "demo", "get", "-r", "-d", "_"});
    INFO(r.describe());
    YAML::Node y = parse_yaml(r);
    REQUIRE(y.IsMap());
    CHECK(y.size() == 2);
    CHECK(y["a"]["_"].as<int>() == 123);
    CHECK(y["b"]["_"]["x"].as<std::string>() == "hello");
    CHECK(y["b"]["_"]["y"].as<int>() == 2);
    CHECK(y["b"]["c"]["_"].as<std::string>() == "some text");
  }

  // list: the children of demo, one per line
  {
    command_result r = ok(node, {"data", "demo", "list"});
    CHECK(lines_of(r.out) == std::vector<std::string>{"a", "b"});
  }

  // -m: the full reply with chain (this node, tick) and tock
  {
    command_result r = ok(node, {"-m", "data", "demo.a"});
    INFO(r.describe());
    YAML::Node y = parse_yaml(r);
    REQUIRE(y.IsMap());
    CHECK(y["value"].as<int>() == 123);
    REQUIRE(y["chain"].IsMap());
    CHECK(y["chain"]["node"].as<std::string>() == "clinode");
    CHECK(y["chain"]["tick"].as<int>() >= 1);
    CHECK(y["chain"]["prev"].IsNull());
    CHECK(y["tock"].as<long long>() > 0);
  }
  // -m on a set: the reply says changed, with the new chain (the next tick of this node)
  {
    command_result before = ok(node, {"-m", "data", "demo.b"});
    int tick_before = parse_yaml(before)["chain"]["tick"].as<int>();
    command_result r = ok(node, {"-m", "data", "demo.b", "set", "-e", "z", "3"});
    INFO(r.describe());
    YAML::Node y = parse_yaml(r);
    REQUIRE(y.IsMap());
    CHECK(y["changed"].as<bool>());
    CHECK(y["chain"]["node"].as<std::string>() == "clinode");
    CHECK(y["chain"]["tick"].as<int>() > tick_before);
    CHECK(y["tock"].as<long long>() > 0);
    command_result now = ok(node, {"data", "demo.b"});
    YAML::Node v = parse_yaml(now);
    CHECK(v.size() == 3);
    CHECK(v["z"].as<int>() == 3);
    CHECK(v["x"].as<std::string>() == "hello");
  }

  // delete a value: reading it fails with exit 1 and "No data"
  ok(node, {"data", "demo.a", "delete"});
  {
    command_result r = node.client({"data", "demo.a"});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.find("No data") != std::string::npos);
  }
  // the sibling is untouched
  CHECK(ok(node, {"data", "demo.b.c"}).out == "'some text'\n");

  // delete -r: every value below demo.b (demo.b and demo.b.c)
  {
    command_result r = ok(node, {"data", "demo.b", "delete", "-r"});
    INFO(r.describe());
    YAML::Node y = parse_yaml(r);
    CHECK(y["changed"].as<int>() == 2);
  }
  for (const char* p : {"demo.b", "demo.b.c"}) {
    command_result r = node.client({"data", p});
    INFO(p << ": " << r.describe());
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("No data") != std::string::npos);
  }
  {
    command_result r = ok(node, {"data", "demo", "get", "-r"});
    INFO(r.describe());
    YAML::Node y = parse_yaml(r);
    CHECK((y.IsNull() || (y.IsSequence() && y.size() == 0)));
  }
  // the root still holds the -I value
  CHECK(ok(node, {"data", ":"}).out == "'Init'\n");

  CHECK(node.running());
  CHECK_MESSAGE(node.stop() == 0, "the node did not stop cleanly on SIGTERM");
}

TEST_CASE("`data PATH monitor` prints later changes below PATH as YAML documents") {
  node_process node("monnode", {"-I", "Init"});
  ok(node, {"data", "demo.a", "set", "-e", ":", "123"});

  monitor_client mon(node, node.client_argv({"data", "demo", "monitor"}));
  REQUIRE_MESSAGE(mon.wait_subscribed("demo.probe"), mon.describe());
  size_t seen = mon.proc().stdout_text().size();

  ok(node, {"data", "demo.a", "set", "-e", ":", "124"});
  ok(node, {"data", "demo.a", "delete"});
  ok(node, {"data", "other.x", "set", "-e", ":", "1"});  // outside demo: not reported
  ok(node, {"data", "demo.zz", "set", "-e", ":", "9"});  // marks the end
  bool all = mon.proc().wait_for_stdout(
      [&](const std::string& out) { return count_documents(out.substr(seen)) >= 3; }, 10s);
  INFO(mon.describe());
  REQUIRE(all);

  std::string tail = mon.proc().stdout_text().substr(seen);
  std::vector<YAML::Node> docs = monitor_documents(tail);
  REQUIRE(docs.size() == 3);
  // the set: full path (as a Path) and the new value
  CHECK(docs[0]["path"].Tag() == "!P");
  CHECK(docs[0]["path"].as<std::string>() == "demo.a");
  CHECK(docs[0]["value"].as<int>() == 124);
  // the delete: the path without a value
  CHECK(docs[1]["path"].as<std::string>() == "demo.a");
  CHECK(!docs[1]["value"]);
  // other.x is not below demo; the next document is demo.zz
  CHECK(docs[2]["path"].as<std::string>() == "demo.zz");
  CHECK(docs[2]["value"].as<int>() == 9);
  CHECK(tail.find("other") == std::string::npos);

  CHECK(mon.proc().running());
  mon.proc().stop();
  CHECK(node.running());
}

TEST_CASE("`data PATH monitor -s` prints the current state, then `state: uptodate`, then changes") {
  node_process node("monnode", {"-I", "Init"});
  ok(node, {"data", "demo.a", "set", "-e", ":", "1"});
  ok(node, {"data", "demo.b.c", "set", "-v", ":", "x"});

  monitor_client mon(node, node.client_argv({"-m", "data", "demo", "monitor", "-s"}));
  REQUIRE_MESSAGE(mon.proc().wait_for_stdout_text("uptodate", 10s), mon.describe());
  ok(node, {"data", "demo.a", "set", "-e", ":", "2"});
  REQUIRE_MESSAGE(mon.proc().wait_for_stdout(
                      [](const std::string& out) { return count_documents(out) >= 4; }, 10s),
                  mon.describe());
  INFO(mon.describe());
  std::vector<YAML::Node> docs = monitor_documents(mon.proc().stdout_text());
  REQUIRE(docs.size() == 4);
  CHECK(docs[0]["path"].as<std::string>() == "demo.a");
  CHECK(docs[0]["value"].as<int>() == 1);
  CHECK(docs[1]["path"].as<std::string>() == "demo.b.c");
  CHECK(docs[1]["value"].as<std::string>() == "x");
  CHECK(docs[2]["state"].as<std::string>() == "uptodate");
  CHECK(docs[3]["path"].as<std::string>() == "demo.a");
  CHECK(docs[3]["value"].as<int>() == 2);
  // -m: chain and tock are shown
  CHECK(docs[3]["chain"]["node"].as<std::string>() == "monnode");
  CHECK(docs[3]["tock"].as<long long>() > docs[0]["tock"].as<long long>());
}

TEST_CASE("bad input on the command line: a clear error, exit code 2, the node keeps serving") {
  node_process node("badnode", {"-I", "Init"});

  SUBCASE("a bad path") {
    command_result r = node.client({"data", "a..b"});
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("a..b") != std::string::npos);  // names what is wrong
    CHECK(r.err.find("path") != std::string::npos);
    command_result s = node.client({"data", "x..", "set", "-e", ":", "1"});
    INFO(s.describe());
    CHECK(s.exit_code == 2);
  }
  SUBCASE("a bad literal") {
    command_result r = node.client({"data", "demo.x", "set", "-e", ":", "foo("});
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("foo(") != std::string::npos);
    CHECK(r.err.find("literal") != std::string::npos);
    // nothing was written
    command_result g = node.client({"data", "demo.x"});
    INFO(g.describe());
    CHECK(g.exit_code == 1);
  }

  CHECK(node.running());
  ok(node, {"data", "demo.ok", "set", "-e", ":", "7"});
  CHECK(ok(node, {"data", "demo.ok"}).out == "7\n");
}

TEST_CASE("`data --help` describes every subcommand") {
  command_result r = run_moatkv({"data", "--help"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  std::vector<std::string> lines = lines_of(r.out);
  for (const char* sub : {"get", "list", "set", "delete", "monitor"}) {
    INFO("subcommand " << sub);
    CHECK(std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.rfind(std::string("  ") + sub + " ", 0) == 0;  // listed with its description
    }));
  }
  CHECK(r.out.find("PATH") != std::string::npos);
}

TEST_CASE("the node stops cleanly on SIGTERM while a client is connected") {
  node_process node("termnode", {"-I", "Init"});
  monitor_client mon(node, node.client_argv({"data", "demo", "monitor"}));
  REQUIRE_MESSAGE(mon.wait_subscribed("demo.probe"), mon.describe());
  CHECK_MESSAGE(node.stop() == 0, "exit code after SIGTERM (-9: it had to be killed after 5 s)");
  // The client notices that its server went away and exits on its own.
  std::optional<int> code = mon.proc().wait_exit(5s);
  INFO(mon.describe());
  CHECK(code.has_value());
  CHECK(code.value_or(0) != 0);
}

}  // namespace moatkv::test
