// Multipart framing against the original's captured bytes (cluster-mqtt-messages.tsv: the
// 653-byte update of big.blob that n1 sent in two parts).
#include <doctest/doctest.h>
#include "tests/hex.hpp"

#include <fstream>
#include <sstream>

#include "actors/gossip/multipart.hpp"
#include "messages/msgpack_codec.hpp"

using namespace moatkv;
using moatkv::test::hex;
using moatkv::test::unhex;

namespace {

// The payloads of the captured big.blob update on broker A, run 1.
std::vector<std::string> captured_parts() {
  std::ifstream in(MOATKV_CONFORMANCE_DATA "/cluster-mqtt-messages.tsv");
  REQUIRE(in);
  std::string line;
  std::vector<std::string> out;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() == 5 && f[0].rfind("run1:", 0) == 0 && f[1] == "A" && f[3] == "moat/kv/update" &&
        f[4].rfind("81a35f7030", 0) == 0)
      out.push_back(unhex(f[4]));
  }
  return out;
}

}  // namespace

TEST_CASE("captured parts reassemble into the original update") {
  auto parts = captured_parts();
  REQUIRE(parts.size() == 2);
  multipart_assembler a;
  CHECK_FALSE(a.feed(decode(parts[0]), 0).has_value());
  CHECK(a.pending() == 1);
  auto msg = a.feed(decode(parts[1]), 0);
  REQUIRE(msg.has_value());
  CHECK(a.pending() == 0);
  CHECK(*msg->find("path") == value::make_path({"big", "blob"}));
  CHECK(*msg->find("value") == value(std::string(600, 'B')));
  CHECK(*msg->find("node") == value("n1"));
  CHECK(msg->find("_p0") == nullptr);
}

TEST_CASE("splitting the same update gives the original's bytes") {
  auto parts = captured_parts();
  multipart_assembler a;
  a.feed(decode(parts[0]), 0);
  value whole = *a.feed(decode(parts[1]), 0);
  uint64_t seq = 0;
  auto ours = pack_multipart(whole, "n1", seq);
  REQUIRE(ours.size() == 2);
  CHECK(ours[0] == parts[0]);
  CHECK(ours[1] == parts[1]);
  CHECK(seq == 1);
}

TEST_CASE("small messages go out whole; escaped _p keys survive the round trip") {
  uint64_t seq = 0;
  value small(map{{"node", "a"}, {"tick", 1}});
  auto out = pack_multipart(small, "a", seq);
  REQUIRE(out.size() == 1);
  CHECK(decode(out[0]) == small);
  CHECK(seq == 0);

  value tricky(map{{"_p0", "x"}, {"_p1", 2}, {"data", std::string(2000, 'z')}});
  auto parts = pack_multipart(tricky, "node-b", seq);
  CHECK(parts.size() > 4);
  multipart_assembler a;
  std::optional<value> got;
  // Parts may arrive in any order.
  for (size_t i = parts.size(); i-- > 0;) got = a.feed(decode(parts[i]), 0);
  REQUIRE(got.has_value());
  CHECK(*got == tricky);
}

TEST_CASE("incomplete sets expire; malformed parts are errors") {
  multipart_assembler::limits l;
  l.expiry_seconds = 10;
  multipart_assembler a(l);
  value p1(map{{"_p0", array{"n", 1, 1, bin{"\x81"}}}});
  CHECK_FALSE(a.feed(p1, 0).has_value());
  value other(map{{"_p0", array{"n", 2, 1, bin{"x"}}}});
  a.feed(other, 20);  // the first set is older than 10 s by now
  CHECK(a.pending() == 1);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 3, 1000000000, bin{"x"}}}}), 0),
                  multipart_error);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 3, INT64_MIN, bin{"x"}}}}), 0),
                  multipart_error);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 3, 0, bin{"x"}}}}), 0), multipart_error);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 3}}}), 0), multipart_error);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", 5}}), 0), multipart_error);
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 4, -1, bin{"\xc1"}}}}), 0), multipart_error);
}
