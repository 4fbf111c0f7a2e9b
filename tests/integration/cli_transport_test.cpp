// `moatkv --transport msgpack|caf`: the `data` commands over the node's remote actor interface
// (kv.server.remote, through the client library) against a real node, checked against the same
// commands over msgpack: what one transport writes the other reads, recursive reads and lists
// print the same text, a monitor over caf sees changes made over msgpack. Other commands refuse
// --transport caf at once (exit 2), an unknown transport is a usage error (exit 2), and `bench
// get|set --transport caf` (the README's command line) still runs.
//
// Every command is a separate `moatkv` process; the node is `moatkv server NAME -I Init` with its
// remote actors on a free loopback port.
#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/cli_output.hpp"
#include "tests/integration/client_ok.hpp"
#include "tests/integration/node_process.hpp"
#include "tests/integration/service_process.hpp"

namespace moatkv::test {
namespace {

const std::string caf_refusal =
    "--transport caf: only `data` commands can use the remote actor interface";

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string command_line(const std::vector<std::string>& args) {
  std::string cmd = "moatkv";
  for (const auto& a : args) cmd += " " + a;
  return cmd;
}

// A node with its remote actor interface on a free loopback port.
struct caf_node {
  uint16_t remote_port = free_loopback_port();
  node_process node{"cafnode",
                    {"-I", "Init", "-C", "kv.server.remote.host=127.0.0.1", "-C",
                     "kv.server.remote.port=" + std::to_string(remote_port)}};

  // `moatkv -h 127.0.0.1 -p REMOTE_PORT --transport caf ARGS…`
  std::vector<std::string> caf_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"-h",          "127.0.0.1", "-p", std::to_string(remote_port),
                                  "--transport", "caf"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  command_result caf(const std::vector<std::string>& args) const {
    return run_moatkv(caf_argv(args));
  }
  // Like `ok`: must exit 0 in time.
  command_result caf_ok(const std::vector<std::string>& args) const {
    command_result r = caf(args);
    INFO(command_line(caf_argv(args)) << ": " << r.describe());
    CHECK(r.exit_code == 0);
    CHECK(!r.timed_out);
    return r;
  }
  // The same command over both transports; both must succeed with the same output.
  std::string same_output(const std::vector<std::string>& args) const {
    command_result m = ok(node, args);
    command_result c = caf_ok(args);
    INFO(command_line(args) << "\n--- msgpack ---\n" << m.out << "--- caf ---\n" << c.out);
    CHECK(c.out == m.out);
    CHECK(c.err == m.err);
    return m.out;
  }
};

std::vector<std::string> with_binary(std::vector<std::string> args) {
  args.insert(args.begin(), moatkv_binary());
  return args;
}

}  // namespace

TEST_CASE_FIXTURE(caf_node, "--transport caf: data set over caf is read over msgpack, and back") {
  // caf -> msgpack
  caf_ok({"data", "demo.a", "set", "-e", ":", "123"});
  CHECK(ok(node, {"data", "demo.a"}).out == "123\n");
  // msgpack -> caf, a map built key by key; then changed key by key over caf (get + set with
  // the chain over the remote interface)
  ok(node, {"data", "demo.b", "set", "-v", "x", "hello", "-e", "y", "2"});
  {
    command_result r = caf_ok({"data", "demo.b"});
    YAML::Node y = YAML::Load(r.out);
    REQUIRE(y.IsMap());
    CHECK(y.size() == 2);
    CHECK(y["x"].as<std::string>() == "hello");
    CHECK(y["y"].as<int>() == 2);
  }
  caf_ok({"data", "demo.b", "set", "-e", "z", "3"});
  caf_ok({"data", "demo.b", "set", "-e", "y", "-"});
  {
    YAML::Node y = YAML::Load(ok(node, {"data", "demo.b"}).out);
    REQUIRE(y.IsMap());
    CHECK(y.size() == 2);
    CHECK(y["x"].as<std::string>() == "hello");
    CHECK(y["z"].as<int>() == 3);
    CHECK(!y["y"]);
  }
  // strings print alike
  ok(node, {"data", "demo.b.c", "set", "-v", ":", "some text"});
  CHECK(caf_ok({"data", "demo.b.c", "get"}).out == "'some text'\n");
  // -m: the same reply (chain of this node, tock) over both
  {
    std::string out = same_output({"-m", "data", "demo.a"});
    YAML::Node y = YAML::Load(out);
    CHECK(y["value"].as<int>() == 123);
    CHECK(y["chain"]["node"].as<std::string>() == "cafnode");
    CHECK(y["tock"].as<long long>() > 0);
  }
  // -m on a set over caf: changed, with the new chain
  {
    command_result r = caf_ok({"-m", "data", "demo.a", "set", "-e", ":", "124"});
    YAML::Node y = YAML::Load(r.out);
    CHECK(y["changed"].as<bool>());
    CHECK(y["chain"]["node"].as<std::string>() == "cafnode");
    CHECK(ok(node, {"data", "demo.a"}).out == "124\n");
  }
  // nothing there: exit 1 and "No data", as over msgpack
  {
    command_result m = node.client({"data", "demo.nothing"});
    command_result c = caf({"data", "demo.nothing"});
    INFO("msgpack: " << m.describe() << "\ncaf: " << c.describe());
    CHECK(c.exit_code == 1);
    CHECK(c.out.empty());
    CHECK(contains(c.err, "No data at demo.nothing"));
    CHECK(m.exit_code == c.exit_code);
    CHECK(m.err == c.err);
  }
  // Without -p the caf port is kv.server.remote.port (not kv.conn.port: nothing listens on
  // 27586 for this node).
  {
    std::vector<std::string> args{
        "-C",          "kv.server.remote.port=" + std::to_string(remote_port),
        "--transport", "caf",
        "data",        "demo.a"};
    command_result r = run_moatkv(args);
    INFO(command_line(args) << ": " << r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out == "124\n");
  }
  CHECK(node.running());
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: get -r, -d and list print what msgpack prints") {
  ok(node, {"data", "demo.a", "set", "-e", ":", "123"});
  ok(node, {"data", "demo.b", "set", "-v", "x", "hello", "-e", "y", "2"});
  ok(node, {"data", "demo.b.c", "set", "-v", ":", "some text"});
  ok(node, {"data", "demo.b.c.d.e", "set", "-e", ":", "(1, 2)"});
  ok(node, {"data", "demo.b.f", "set", "-e", ":", "None"});

  {
    std::string out = same_output({"data", "demo", "get", "-r"});
    auto ls = lines_of(out);
    // paths relative to the requested path, in tree order, however deep
    CHECK(std::count(ls.begin(), ls.end(), "- !P a: 123") == 1);
    CHECK(std::count(ls.begin(), ls.end(), "- !P b.c: some text") == 1);
    YAML::Node y = YAML::Load(out);
    REQUIRE(y.IsSequence());
    std::vector<std::string> paths;
    for (const auto& item : y) paths.push_back(item.begin()->first.as<std::string>());
    CHECK(paths == std::vector<std::string>{"a", "b", "b.c", "b.c.d.e", "b.f"});
  }
  {
    // a deeper request path: relative to it, not to the parent
    std::string out = same_output({"data", "demo.b", "get", "-r"});
    YAML::Node y = YAML::Load(out);
    REQUIRE(y.IsSequence());
    std::vector<std::string> paths;
    for (const auto& item : y) paths.push_back(item.begin()->first.as<std::string>());
    CHECK(paths == std::vector<std::string>{":", "c", "c.d.e", "f"});
  }
  {
    std::string out = same_output({"data", "demo", "get", "-r", "-m", "2", "-M", "2"});
    YAML::Node y = YAML::Load(out);
    REQUIRE(y.IsSequence());
    REQUIRE(y.size() == 2);
    CHECK(y[0].begin()->first.as<std::string>() == "b.c");
    CHECK(y[1].begin()->first.as<std::string>() == "b.f");
  }
  {
    std::string out = same_output({"data", "demo", "get", "-r", "-d", "_"});
    YAML::Node y = YAML::Load(out);
    REQUIRE(y.IsMap());
    CHECK(y["a"]["_"].as<int>() == 123);
    CHECK(y["b"]["c"]["_"].as<std::string>() == "some text");
    CHECK(y["b"]["c"]["d"]["e"]["_"][1].as<int>() == 2);
  }
  {
    // -m: chains and tocks, the same records over both
    std::string out = same_output({"-m", "data", "demo.b", "get", "-r"});
    YAML::Node y = YAML::Load(out);
    REQUIRE(y.IsSequence());
    REQUIRE(y.size() == 4);
    CHECK(y[1]["c"]["value"].as<std::string>() == "some text");
    CHECK(y[1]["c"]["chain"]["node"].as<std::string>() == "cafnode");
  }
  CHECK(lines_of(same_output({"data", "demo", "list"})) == std::vector<std::string>{"a", "b"});
  CHECK(lines_of(same_output({"data", "demo.b", "list"})) == std::vector<std::string>{"c", "f"});
  CHECK(lines_of(same_output({"data", "demo", "list", "-m", "3"})) ==
        std::vector<std::string>{"a", "b", "b.c", "b.c.d", "b.f"});
  same_output({"data", "demo", "list", "-d", "_"});
  same_output({"data", ":", "get", "-r"});
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: delete and delete -r") {
  ok(node, {"data", "demo.a", "set", "-e", ":", "1"});
  ok(node, {"data", "demo.b", "set", "-e", ":", "2"});
  ok(node, {"data", "demo.b.c", "set", "-e", ":", "3"});

  {
    command_result r = caf_ok({"data", "demo.a", "delete"});
    CHECK(r.out.empty());
    command_result m = node.client({"data", "demo.a"});
    INFO(m.describe());
    CHECK(m.exit_code == 1);
    CHECK(contains(m.err, "No data at demo.a"));
  }
  CHECK(ok(node, {"data", "demo.b.c"}).out == "3\n");
  {
    command_result r = caf_ok({"data", "demo.b", "delete", "-r"});
    YAML::Node y = YAML::Load(r.out);
    INFO(r.out);
    CHECK(y["changed"].as<int>() == 2);
  }
  for (const char* p : {"demo.b", "demo.b.c"}) {
    command_result m = node.client({"data", p});
    INFO(p << ": " << m.describe());
    CHECK(m.exit_code == 1);
  }
  CHECK(ok(node, {"data", "demo", "get", "-r"}).out.find("!P") == std::string::npos);
  CHECK(ok(node, {"data", ":"}).out == "'Init'\n");
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: monitor prints changes made over msgpack") {
  ok(node, {"data", "demo.a", "set", "-e", ":", "123"});
  monitor_client mon(node, with_binary(caf_argv({"data", "demo", "monitor"})));
  REQUIRE_MESSAGE(mon.wait_subscribed("demo.probe"), mon.describe());
  size_t seen = mon.proc().stdout_text().size();

  ok(node, {"data", "demo.a", "set", "-e", ":", "124"});
  ok(node, {"data", "demo.a", "delete"});
  ok(node, {"data", "other.x", "set", "-e", ":", "1"});  // outside demo: not reported
  ok(node, {"data", "demo.z.deep", "set", "-v", ":", "nine"});
  bool all = mon.proc().wait_for_stdout(
      [&](const std::string& out) { return count_documents(out.substr(seen)) >= 3; }, 10s);
  INFO(mon.describe());
  REQUIRE(all);
  std::vector<YAML::Node> docs = monitor_documents(mon.proc().stdout_text().substr(seen));
  REQUIRE(docs.size() == 3);
  CHECK(docs[0]["path"].Tag() == "!P");
  CHECK(docs[0]["path"].as<std::string>() == "demo.a");
  CHECK(docs[0]["value"].as<int>() == 124);
  CHECK(docs[1]["path"].as<std::string>() == "demo.a");
  CHECK(!docs[1]["value"]);
  CHECK(docs[2]["path"].as<std::string>() == "demo.z.deep");
  CHECK(docs[2]["value"].as<std::string>() == "nine");
  CHECK(!contains(mon.proc().stdout_text(), "other"));
  CHECK(mon.proc().running());

  // The node goes away: the monitor notices and fails (it does not reconnect).
  CHECK(node.stop() == 0);
  std::optional<int> code = mon.proc().wait_exit(10s);
  CHECK(code.has_value());
  CHECK(code.value_or(0) == 1);
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: monitor -s -m prints what it prints over msgpack") {
  ok(node, {"data", "demo.a", "set", "-e", ":", "1"});
  ok(node, {"data", "demo.b.c", "set", "-v", ":", "x"});
  monitor_client over_msgpack(node, node.client_argv({"-m", "data", "demo", "monitor", "-s"}));
  monitor_client over_caf(node, with_binary(caf_argv({"-m", "data", "demo", "monitor", "-s"})));
  for (monitor_client* m : {&over_msgpack, &over_caf})
    REQUIRE_MESSAGE(m->proc().wait_for_stdout_text("uptodate", 10s), m->describe());
  ok(node, {"data", "demo.a", "set", "-e", ":", "2"});
  for (monitor_client* m : {&over_msgpack, &over_caf})
    REQUIRE_MESSAGE(m->proc().wait_for_stdout(
                        [](const std::string& out) { return count_documents(out) >= 4; }, 10s),
                    m->describe());
  INFO(over_msgpack.describe() << "\n" << over_caf.describe());
  CHECK(over_caf.proc().stdout_text() == over_msgpack.proc().stdout_text());
  std::vector<YAML::Node> docs = monitor_documents(over_caf.proc().stdout_text());
  REQUIRE(docs.size() == 4);
  CHECK(docs[0]["path"].as<std::string>() == "demo.a");
  CHECK(docs[1]["path"].as<std::string>() == "demo.b.c");
  CHECK(docs[2]["state"].as<std::string>() == "uptodate");
  CHECK(docs[3]["value"].as<int>() == 2);
  CHECK(docs[3]["chain"]["node"].as<std::string>() == "cafnode");
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: a login (-a) goes over the remote interface too") {
  CHECK(ok(node, {"auth", "-m", "root", "user", "add"}).out == "*\n");
  CHECK(ok(node, {"auth", "-m", "root", "init"}).out == "Authorization switched to root\n");
  {
    // without a login: refused alike over both
    command_result m = node.client({"data", ":"});
    command_result c = caf({"data", ":"});
    INFO("msgpack: " << m.describe() << "\ncaf: " << c.describe());
    CHECK(c.exit_code == 1);
    CHECK(c.out.empty());
    CHECK(contains(c.err, "ClientAuthRequiredError"));
    CHECK(c.err == m.err);
  }
  CHECK(caf_ok({"-a", "root", "data", "demo.x", "set", "-e", ":", "5"}).out.empty());
  CHECK(caf_ok({"-a", "root", "data", "demo.x"}).out == "5\n");
  CHECK(ok(node, {"-a", "root", "data", "demo.x"}).out == "5\n");
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: other commands refuse it at once (exit 2)") {
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"auth", "list"},
                                             {"acl", "list"},
                                             {"log", "stop"},
                                             {"auth", "-m", "root", "user", "add"},
                                             {"server", "x", "-C", "kv.server.bind_default.port=0",
                                              "-C", "kv.server.remote.port=0"}}) {
    command_result r = caf(cmd);
    INFO(command_line(caf_argv(cmd)) << ": " << r.describe());
    CHECK(r.exit_code == 2);
    CHECK(!r.timed_out);
    CHECK(r.out.empty());
    CHECK(contains(r.err, caf_refusal));
  }
  // no connection was even tried: nothing listens on this port
  {
    std::vector<std::string> args{"-p", "1", "--transport", "caf", "acl", "list"};
    command_result r = run_moatkv(args);
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, caf_refusal));
  }
  // the root user was not added by the refused command above
  CHECK(ok(node, {"auth", "-m", "root", "user", "list"}).out.empty());
  // msgpack (given or by default) still works for them
  ok(node, {"--transport", "msgpack", "acl", "list"});
}

TEST_CASE("--transport: anything but msgpack or caf is a usage error (exit 2)") {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--transport", "tcp", "data", "x"},
                                             {"--transport", "CAF", "data", "x", "get", "-r"},
                                             {"-p", "1", "bench", "get", "--transport", "grpc"}}) {
    command_result r = run_moatkv(args);
    INFO(command_line(args) << ": " << r.describe());
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(contains(r.err, "--transport"));
    CHECK(contains(r.err, "msgpack"));
    CHECK(contains(r.err, "caf"));
  }
}

TEST_CASE("--help describes --transport and where caf connects") {
  command_result r = run_moatkv({"--help"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "--transport"));
  CHECK(contains(r.out, "kv.server.remote.port"));
  CHECK(contains(r.out, "kv.server.remote.host"));
  command_result mon = run_moatkv({"data", "x", "monitor", "--help"});
  CHECK(mon.exit_code == 0);
  CHECK(contains(mon.out, "no reconnect"));
}

TEST_CASE_FIXTURE(caf_node, "--transport caf: bench get|set (the README's command line)") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"-p", std::to_string(node.port()), "bench", "get", "--transport", "caf",
            "--remote-port", std::to_string(remote_port), "--count", "40"},
           {"-p", std::to_string(node.port()), "--transport", "caf", "bench", "set",
            "--remote-port", std::to_string(remote_port), "--count", "40"},
           {"-p", std::to_string(node.port()), "-C",
            "kv.server.remote.port=" + std::to_string(remote_port), "bench", "get", "--no-fill",
            "--transport", "caf", "--count", "40"},
           // asynchronous calls of the library, over both transports
           {"-p", std::to_string(node.port()), "--transport", "caf", "bench", "set",
            "--remote-port", std::to_string(remote_port), "--count", "40", "--pipeline", "8"},
           {"-p", std::to_string(node.port()), "bench", "get", "--library", "--count", "40",
            "--pipeline", "8"}}) {
    command_result r = run_moatkv(args);
    INFO(command_line(args) << ": " << r.describe());
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, ": 40 ops in "));
  }
  // caf is for set/get only: a usage error
  std::vector<std::string> tree{
      "-p", std::to_string(node.port()), "--transport", "caf", "bench", "tree", "--count", "10"};
  command_result r = run_moatkv(tree);
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "caf is for the modes set and get"));
}

}  // namespace moatkv::test
