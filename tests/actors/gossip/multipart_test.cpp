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

TEST_CASE("held parts cost their bytes, not their indices; the bytes held are bounded") {
  // Review for the fuzz work (issue 6): a 20-byte part claiming index 20000 made the assembler
  // allocate 20000 slots (≈ 800 KB), and 1000 such sets ≈ 800 MB from 20 KB of peer input.
  multipart_assembler a;
  for (int64_t seq = 1; seq <= 1000; ++seq)
    CHECK_FALSE(a.feed(value(map{{"_p0", array{"n", seq, 20000, bin{"x"}}}}), 0).has_value());
  CHECK(a.pending() == 1000);
  CHECK(a.pending_bytes() < 100 * 1000);

  multipart_assembler::limits l;
  l.max_bytes = 1000;
  multipart_assembler b(l);
  std::string chunk(300, 'B');
  CHECK_FALSE(b.feed(value(map{{"_p0", array{"n", 1, 1, bin{chunk}}}}), 0).has_value());
  CHECK_FALSE(b.feed(value(map{{"_p0", array{"n", 2, 1, bin{chunk}}}}), 1).has_value());
  CHECK_FALSE(b.feed(value(map{{"_p0", array{"n", 3, 1, bin{chunk}}}}), 2).has_value());
  CHECK(b.pending() == 2);  // the oldest set made room
  CHECK(b.pending_bytes() <= 1000);
  // One set larger than the bound is dropped with an error; the others stay.
  CHECK_FALSE(b.feed(value(map{{"_p0", array{"n", 4, 1, bin{chunk}}}}), 3).has_value());
  CHECK_THROWS_AS(b.feed(value(map{{"_p0", array{"n", 4, 2, bin{std::string(800, 'B')}}}}), 3),
                  multipart_error);
  CHECK(b.pending_bytes() <= 1000);
  // A repeated part replaces the earlier one instead of adding to the total.
  size_t before = b.pending_bytes();
  CHECK_FALSE(b.feed(value(map{{"_p0", array{"n", 3, 1, bin{chunk}}}}), 4).has_value());
  CHECK(b.pending_bytes() == before);
}

TEST_CASE("parts in any order reassemble; a part beyond the last one spoils the set") {
  value msg(map{{"node", "n1"}, {"tick", 12}, {"value", std::string(1000, 'B')}});
  uint64_t part_seq = 0;
  auto parts = pack_multipart(msg, "n1", part_seq);
  REQUIRE(parts.size() == 3);
  multipart_assembler a;
  CHECK_FALSE(a.feed(decode(parts[2]), 0).has_value());
  CHECK_FALSE(a.feed(decode(parts[0]), 0).has_value());
  auto whole = a.feed(decode(parts[1]), 0);
  REQUIRE(whole.has_value());
  CHECK(*whole == msg);
  CHECK(a.pending_bytes() == 0);

  CHECK_FALSE(a.feed(value(map{{"_p0", array{"n", 9, -2, bin{"\x81"}}}}), 0).has_value());
  CHECK_THROWS_AS(a.feed(value(map{{"_p0", array{"n", 9, 3, bin{"x"}}}}), 0), multipart_error);
  CHECK(a.pending() == 0);
  CHECK(a.pending_bytes() == 0);
}
