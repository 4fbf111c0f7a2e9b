// The `-a` / `kv.conn.auth` spec (batteries.md §1.2): the original's gen_auth + split_arg syntax
// and its client schemas. The login itself runs against a real node in
// tests/integration/auth_cli_test.cpp.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/temp_dir.hpp"
#include "transport/client_auth.hpp"

namespace moatkv {
namespace {

// A prompt that must not be called.
std::string no_prompt(const std::string& p) {
  FAIL("unexpected prompt: " << p);
  return {};
}

// Answers prompts from a list and records what was asked.
struct scripted_prompt {
  std::vector<std::string> answers;
  std::vector<std::string> asked;
  prompt_function fn() {
    return [this](const std::string& p) {
      asked.push_back(p);
      REQUIRE(!answers.empty());
      std::string a = answers.front();
      answers.erase(answers.begin());
      return a;
    };
  }
};

}  // namespace

TEST_CASE("auth spec: METHOD k=v, values that read as ints become ints") {
  auth_spec s = parse_auth_spec("password name=joe password=test123", no_prompt);
  CHECK(s.method == "password");
  CHECK(s.ident() == "joe");
  REQUIRE(s.param("password"));
  CHECK(*s.param("password") == value("test123"));
  CHECK(s.chroot.empty());

  map kw;
  split_arg("n=42", kw, no_prompt);
  split_arg("m=-7", kw, no_prompt);
  split_arg("u=1_000", kw, no_prompt);
  split_arg("s=4x", kw, no_prompt);
  split_arg("e=", kw, no_prompt);
  split_arg("eq=a=b", kw, no_prompt);
  CHECK(map_find(kw, "n")->is_int());
  CHECK(*map_find(kw, "n") == value(42));
  CHECK(*map_find(kw, "m") == value(-7));
  CHECK(*map_find(kw, "u") == value(1000));
  CHECK(map_find(kw, "s")->is_str());
  CHECK(*map_find(kw, "e") == value(""));
  CHECK(*map_find(kw, "eq") == value("a=b"));
  split_arg("n=43", kw, no_prompt);  // a later value wins
  CHECK(*map_find(kw, "n") == value(43));
}

TEST_CASE("auth spec: root takes no parameters, its ident is '*'") {
  auth_spec s = parse_auth_spec("root", no_prompt);
  CHECK(s.method == "root");
  CHECK(s.ident() == "*");
  CHECK(s.params.empty());
  CHECK_THROWS_AS(parse_auth_spec("root name=joe", no_prompt), auth_spec_error);
  CHECK_THROWS_WITH_AS(parse_auth_spec("root name=joe", no_prompt),
                       doctest::Contains("takes no parameters"), auth_spec_error);
}

TEST_CASE("auth spec: k? and k?=Prompt ask without echo through the prompt function") {
  scripted_prompt p{{"s3cret!", "12345x"}, {}};
  auth_spec s = parse_auth_spec("password name=joe password?", p.fn());
  CHECK(p.asked == std::vector<std::string>{"password? "});
  CHECK(*s.param("password") == value("s3cret!"));

  s = parse_auth_spec("password name=joe password?=Code", p.fn());
  CHECK(p.asked.back() == "Code: ");
  CHECK(*s.param("password") == value("12345x"));

  // `k?` keeps the answer a string; `k?=Prompt` converts it as the original does.
  map kw;
  scripted_prompt q{{"123", "456"}, {}};
  split_arg("a?", kw, q.fn());
  split_arg("b?=Number", kw, q.fn());
  CHECK(*map_find(kw, "a") == value("123"));
  CHECK(map_find(kw, "a")->is_str());
  CHECK(map_find(kw, "b")->is_int());
  CHECK(q.asked == std::vector<std::string>{"a? ", "Number: "});
}

TEST_CASE("auth spec: =FILE is a YAML map with the method under 'type'") {
  test::temp_dir dir;
  std::string file = dir.path() + "/auth.yaml";
  {
    std::ofstream f(file);
    f << "type: password\nname: joe\npassword: '12345'\nchroot: a.b\n";
  }
  auth_spec s = parse_auth_spec("=" + file, no_prompt);
  CHECK(s.method == "password");
  CHECK(s.ident() == "joe");
  CHECK(*s.param("password") == value("12345"));  // quoted: stays a string
  CHECK(!s.param("type"));
  CHECK(!s.param("chroot"));
  CHECK(s.chroot == array{value("a"), value("b")});

  {
    std::ofstream f(file);
    f << "name: joe\n";
  }
  CHECK_THROWS_WITH_AS(parse_auth_spec("=" + file, no_prompt), doctest::Contains("type: METHOD"),
                       auth_spec_error);
  {
    std::ofstream f(file);
    f << "- a\n- b\n";
  }
  CHECK_THROWS_WITH_AS(parse_auth_spec("=" + file, no_prompt), doctest::Contains("YAML map"),
                       auth_spec_error);
  CHECK_THROWS_WITH_AS(parse_auth_spec("=" + dir.path() + "/missing.yaml", no_prompt),
                       doctest::Contains("cannot read"), auth_spec_error);
}

TEST_CASE("auth spec: chroot (or root) is a path in P() syntax, for every method") {
  auth_spec s = parse_auth_spec("root chroot=tenant.one", no_prompt);
  CHECK(s.params.empty());
  CHECK(s.chroot == array{value("tenant"), value("one")});
  s = parse_auth_spec("_test name=bob root=x:5", no_prompt);
  CHECK(s.chroot == array{value("x"), value(5)});
  CHECK_THROWS_AS(parse_auth_spec("root chroot=a..b", no_prompt), auth_spec_error);
}

TEST_CASE("auth spec: the original's client schemas") {
  auto fails = [](const std::string& spec, const std::string& text) {
    CAPTURE(spec);
    CHECK_THROWS_WITH_AS(parse_auth_spec(spec, no_prompt), doctest::Contains(text.c_str()),
                         auth_spec_error);
  };
  fails("", "empty auth spec");
  fails("kerberos name=joe", "unknown auth method 'kerberos'");
  fails("password password=test123", "needs name=NAME");
  fails("password name=joe", "needs password=");
  fails("password name=joe password=abcd", "at least 5 characters");
  fails("password name=joe password=123456", "must be a string");
  fails("password name=1joe password=test123", "must be a letter followed by");
  fails("password name=jo-e password=test123", "must be a letter followed by");
  fails("password name=5 password=test123", "name must be a string");
  fails("_test", "needs name=NAME");
  fails("_test name=joe extra=1", "takes only name=NAME");
  fails("password name=joe junk", "is not KEY=VALUE");
  fails("password =x", "has no KEY");
  // password allows more parameters (additionalProperties), _test accepts exactly name.
  CHECK_NOTHROW(parse_auth_spec("password name=j_1 password=abcde extra=1", no_prompt));
  CHECK(parse_auth_spec("_test name=Joe_2", no_prompt).ident() == "Joe_2");
}

}  // namespace moatkv
